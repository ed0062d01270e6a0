//! `cargo xtask soak --minutes N`: the demo service under its own steady load, with tracer
//! attached for N minutes and serving metrics. Checks what a long session must keep true:
//! - steady memory: tracer's resident memory in the last quarter of the run stays within 20 %
//!   (plus 16 MB) of its peak in the second quarter, once the tables have filled;
//! - no drops at this nominal rate (the summary and the metrics agree);
//! - a stable race set: the races the metrics show halfway are all the session reports, and
//!   that is the demo's one race.
//!
//! It prints tracer's memory over time; `cargo xtask test` runs a one-minute soak.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _};

use crate::{
    demo::{go_build, scrape},
    setup::Environment,
    shell::{self, workspace_root},
};

const SOAK_GO_VERSION: &str = "1.27.3";

/// One reading of tracer, taken every second.
struct Sample {
    at: Duration,
    rss_kb: u64,
}

pub fn run(environment: &Environment, minutes: u64) -> anyhow::Result<()> {
    ensure!(minutes > 0, "--minutes must be at least 1");
    shell::run(Command::new("cargo").args(["build", "--release", "--package", "tracer-user"]))?;
    let dir = workspace_root().join("target/soak");
    std::fs::create_dir_all(&dir)?;
    let demo = dir.join("demo");
    go_build(
        environment,
        SOAK_GO_VERSION,
        &workspace_root().join("examples/demo"),
        &demo,
        &[],
    )?;
    let mut service = Command::new(&demo)
        .args(["-duration", &format!("{}m", minutes + 5), "-clients", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the demo")?;
    let result = soak(&dir, service.id(), Duration::from_secs(minutes * 60));
    let _ = service.kill();
    let _ = service.wait();
    result
}

fn soak(dir: &std::path::Path, pid: u32, length: Duration) -> anyhow::Result<()> {
    let reports = dir.join("races.jsonl");
    let mut tracer = Command::new(workspace_root().join("target/release/tracer"));
    tracer
        .args([
            "attach",
            // Memory under the full event rate, and the race as soon as it happens.
            "--overhead-budget",
            "off",
            "--metrics-addr",
            "127.0.0.1:0",
            "--format",
            "json",
        ])
        .arg("--output")
        .arg(&reports)
        .args(["--pid", &pid.to_string()])
        .stderr(Stdio::piped());
    eprintln!("xtask: $ {}", shell::describe(&tracer));
    let mut tracer = tracer.spawn()?;
    let mut stderr = BufReader::new(tracer.stderr.take().expect("piped")).lines();
    let address = loop {
        let line = stderr
            .next()
            .context("tracer ended before serving metrics")??;
        eprintln!("{line}");
        if let Some(url) = line.strip_prefix("tracer: serving Prometheus metrics at http://") {
            break url.trim_end_matches("/metrics").to_owned();
        }
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut races_halfway = None;
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_secs(1));
        let status = std::fs::read_to_string(format!("/proc/{}/status", tracer.id()))
            .context("tracer ended during the soak")?;
        samples.push(Sample {
            at: started.elapsed(),
            rss_kb: resident_kb(&status).context("no VmRSS")?,
        });
        if races_halfway.is_none() && started.elapsed() >= length / 2 {
            races_halfway = Some(race_series(&scrape(&address)?));
        }
    }
    let exposition = scrape(&address)?;
    let metrics_dropped = counter(&exposition, "tracer_events_dropped_total");
    let races_at_end = race_series(&exposition);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = stderr.map_while(Result::ok).collect();
    let status = tracer.wait()?;
    let summary = rest
        .iter()
        .find(|line| line.starts_with("tracer: traced for"))
        .context("no summary")?;
    eprintln!("{summary}");
    eprintln!("{}", memory_table(&samples));

    ensure!(
        status.code() == Some(66),
        "tracer exited with {status}, not 66 (a race)"
    );
    let dropped: u64 = summary
        .rsplit_once(' ')
        .and_then(|(head, _)| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .context("no drop count in the summary")?;
    ensure!(dropped == 0, "{dropped} events dropped at the nominal rate");
    ensure!(
        metrics_dropped == Some(0.0),
        "the metrics count {metrics_dropped:?} drops"
    );
    let steady = steady_memory(&samples)?;
    eprintln!("xtask: memory {steady}");
    ensure!(
        races_halfway.as_ref() == Some(&races_at_end),
        "the race set changed after halfway: {races_halfway:?} then {races_at_end:?}"
    );
    // The race reports, without the closing summary.
    let reported = std::fs::read_to_string(&reports)?
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|record| record["type"] == "race")
        })
        .count();
    if reported != 1 || races_at_end.len() != 1 {
        bail!("{reported} races reported, {races_at_end:?} in the metrics: the demo has one");
    }
    eprintln!("xtask: soak passed: steady memory, no drops, one stable race");
    Ok(())
}

fn resident_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `tracer_races_total` series (their label sets) in an exposition.
fn race_series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("tracer_races_total{"))
        .filter_map(|rest| rest.split_once('}').map(|(labels, _)| labels.to_owned()))
        .collect()
}

fn counter(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series.split('{').next()? == name).then(|| value.trim().parse().ok())?
    })
}

/// Checks the last quarter's peak against the second quarter's; describes both.
fn steady_memory(samples: &[Sample]) -> anyhow::Result<String> {
    let quarter = samples.len() / 4;
    ensure!(quarter > 0, "too few samples for a memory trend");
    let peak = |range: &[Sample]| range.iter().map(|sample| sample.rss_kb).max().unwrap_or(0);
    let second = peak(&samples[quarter..2 * quarter]);
    let last = peak(&samples[samples.len() - quarter..]);
    let allowed = second + second / 5 + 16 * 1024;
    ensure!(
        last <= allowed,
        "tracer's memory grew: peak {} MB in the second quarter, {} MB in the last",
        second / 1024,
        last / 1024
    );
    Ok(format!(
        "peak {} MB in the second quarter, {} MB in the last",
        second / 1024,
        last / 1024
    ))
}

/// Resident memory at each tenth of the run.
fn memory_table(samples: &[Sample]) -> String {
    let mut table = String::from("| elapsed | tracer RSS |\n|---|---|\n");
    let step = (samples.len() / 10).max(1);
    for sample in samples.iter().step_by(step) {
        table.push_str(&format!(
            "| {:.0} s | {} MB |\n",
            sample.at.as_secs_f64(),
            sample.rss_kb / 1024
        ));
    }
    table
}
