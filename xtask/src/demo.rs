//! `cargo xtask demo`: build tracer (release) and the bundled demo Go service, then run the
//! service under `tracer run` so its map writes stream by, with Prometheus metrics served (the
//! URL and a curl command are printed, and the race counter is scraped once it appears).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::bail;

use crate::{
    setup::{Environment, DEMO_GO_VERSION},
    shell::{self, workspace_root},
};

/// The demo service's own arguments: 20 s of steady load at a service's usual pace (a few hundred
/// requests per second, a few percent of one CPU), with tracer at its default settings.
pub const DEMO_ARGUMENTS: [&str; 4] = ["-duration", "20s", "-rps", "200"];

pub fn run(environment: &Environment) -> anyhow::Result<()> {
    shell::run(Command::new("cargo").args(["build", "--release", "--package", "tracer-user"]))?;
    let root = workspace_root();
    let build_dir = root.join("target/demo");
    std::fs::create_dir_all(&build_dir)?;
    let demo = build_dir.join("demo");
    go_build(
        environment,
        DEMO_GO_VERSION,
        &root.join("examples/demo"),
        &demo,
        &[],
    )?;
    let events = build_dir.join("events.jsonl");
    eprintln!(
        "xtask: tracing the demo service; every event is also written to {}",
        events.display()
    );
    let mut tracer = Command::new(root.join("target/release/tracer"));
    tracer
        .args([
            "run",
            "--stats-interval",
            "1s",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .arg("--events")
        .arg(&events)
        .arg("--")
        .arg(&demo)
        .args(DEMO_ARGUMENTS)
        .stderr(Stdio::piped());
    eprintln!("xtask: $ {}", shell::describe(&tracer));
    let mut child = tracer.spawn()?;
    let stderr = BufReader::new(child.stderr.take().expect("piped"));
    // Pass tracer's messages through, and show its metrics once the race has been counted.
    for line in stderr.lines() {
        let line = line?;
        eprintln!("{line}");
        if let Some(url) = line.strip_prefix("tracer: serving Prometheus metrics at ") {
            eprintln!(
                "xtask: while the demo runs (20 s), see the metrics with:\n\
                 xtask:   curl -s {url} | grep '^tracer_'"
            );
            show_races_metric(url.to_owned());
        }
    }
    let status = child.wait()?;
    match status.code() {
        Some(66) => {
            eprintln!(
                "xtask: tracer reported the demo's data race (exit status 66, as with -race)"
            );
            Ok(())
        }
        Some(0) => {
            eprintln!("xtask: the demo ran without tracer seeing its race this time");
            Ok(())
        }
        _ => bail!("tracer failed: {status}"),
    }
}

/// In the background: polls the metrics until the race counter appears and prints it.
fn show_races_metric(url: String) {
    std::thread::spawn(move || {
        let Some(address) = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .map(str::to_owned)
        else {
            return;
        };
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(exposition) = scrape(&address) else {
                return; // tracer has stopped
            };
            let races: Vec<&str> = exposition
                .lines()
                .filter(|line| line.starts_with("tracer_races_total{"))
                .collect();
            if !races.is_empty() {
                eprintln!("xtask: scraped {url}:\n{}", races.join("\n"));
                return;
            }
        }
    });
}

/// One GET of /metrics.
pub fn scrape(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Builds the Go package in `source` with Go `version` into `output`, with extra build flags.
pub fn go_build(
    environment: &Environment,
    version: &str,
    source: &std::path::Path,
    output: &std::path::Path,
    flags: &[&str],
) -> anyhow::Result<()> {
    shell::run(
        Command::new(environment.go(version))
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(output)
            .arg(".")
            .current_dir(source)
            .envs(go_environment(environment)),
    )
}

/// Offline, reproducible Go builds: standard library only, toolchain as installed.
pub fn go_environment(environment: &Environment) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("GOTOOLCHAIN", "local".into()),
        ("GOPROXY", "off".into()),
        ("GOFLAGS", "-mod=mod".into()),
        (
            "GOCACHE",
            environment.cache_dir.join("gocache").into_os_string(),
        ),
    ]
}
