//! `cargo xtask bench`: measurements printed as one table. Every number comes from this run;
//! nothing is compared with a stored value.
//!
//! Part `inspect`: time and peak memory of `tracer inspect` on a large Go executable (the
//! standard-library-heavy program in bench/largebinary plus generated handlers that use maps,
//! mutexes and RWMutexes, like a big service), built normally and stripped.
//!
//! Part `probes`: the cost per hit of each probe class, from tight Go loops of one operation
//! (bench/probecost) timed untraced and under `tracer run` in the same run.
//!
//! Part `service`: the workload in bench/service (a loopback HTTP service with a mutex store,
//! an RWMutex cache and a worker pool, and its own load generator) run untraced, under
//! `tracer run` with default settings and with each overhead control, and built with `-race`:
//! throughput and p99 latency as ratios to untraced, and tracer's own CPU and peak memory.
//!
//! Part `scale`: tracer's own peak memory while a program keeps 100 000 goroutines alive,
//! creates 1 000 000 goroutines over its run, or creates 1 000 000 maps (bench/scale), next to
//! the same at a tenth of the size: bounded tables keep it flat, and no goroutine limit applies.
//!
//! Part `hunt` (only when asked for): how soon a race is reported under a budget, busy and
//! quiet, and what that costs (xtask/src/hunt.rs).
//!
//! Part `detector`: events per second the detection pipeline sustains on one core, and its
//! memory, replaying a recording of the demo service (made in the same run) until at least
//! 10 million events have gone through it (tracer-user/examples/detector_throughput.rs).

use std::{fmt::Write as _, process::Command};

use anyhow::{bail, Context as _};

use crate::{
    demo::go_build,
    setup::Environment,
    shell::{self, workspace_root},
};

/// The Go version benchmarks build with.
pub(crate) const BENCH_GO_VERSION: &str = "1.27.3";
/// Generated handlers: enough to take the executable past 30 MB.
const GENERATED_HANDLERS: usize = 12_000;
/// Runs per measurement; the median is reported.
const RUNS: usize = 3;

/// A benchmark part that can be run on its own with `--part`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Inspect,
    Probes,
    Detector,
    Service,
    Scale,
    /// Not part of the default set (it takes about half an hour): time to first report under
    /// a budget (see xtask/src/hunt.rs).
    Hunt,
}

/// One row of the result table.
pub(crate) struct Row {
    pub part: &'static str,
    pub case: String,
    pub measurements: Vec<(&'static str, String)>,
}

pub fn run(
    environment: &Environment,
    parts: &[Part],
    runs: usize,
    case: Option<&str>,
) -> anyhow::Result<()> {
    shell::run(Command::new("cargo").args(["build", "--release", "--package", "tracer-user"]))?;
    let parts = if parts.is_empty() {
        &[
            Part::Inspect,
            Part::Probes,
            Part::Detector,
            Part::Service,
            Part::Scale,
        ][..]
    } else {
        parts
    };
    let mut rows = Vec::new();
    for part in parts {
        match part {
            Part::Inspect => rows.extend(inspect(environment)?),
            Part::Probes => rows.extend(probes(environment)?),
            Part::Detector => rows.extend(detector(environment)?),
            Part::Service => rows.extend(service(environment)?),
            Part::Scale => rows.extend(scale(environment)?),
            Part::Hunt => rows.extend(crate::hunt::hunt(environment, runs, case)?),
        }
    }
    println!("{}", render(&rows));
    Ok(())
}

fn inspect(environment: &Environment) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/largebinary");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let source = workspace_root().join("bench/largebinary");
    for file in ["go.mod", "main.go"] {
        std::fs::copy(source.join(file), dir.join(file))?;
    }
    std::fs::write(
        dir.join("generated.go"),
        generated_handlers(GENERATED_HANDLERS),
    )?;
    let mut rows = Vec::new();
    for (case, flags) in [
        ("default build", &[][..]),
        ("stripped (-s -w)", &["-ldflags=-s -w"][..]),
    ] {
        let binary = dir.join(if flags.is_empty() {
            "large"
        } else {
            "large-stripped"
        });
        eprintln!(
            "bench: building {} ({case}) with Go {BENCH_GO_VERSION}",
            binary.display()
        );
        go_build(environment, BENCH_GO_VERSION, &dir, &binary, flags)?;
        let size = std::fs::metadata(&binary)?.len();
        let tracer = workspace_root().join("target/release/tracer");
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            let mut inspect = Command::new(&tracer);
            inspect.args(["inspect", "--format", "json"]).arg(&binary);
            runs.push(measure(&inspect)?);
        }
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let median = &runs[RUNS / 2];
        let report: serde_json::Value = match &median.stdout {
            Some(json) => {
                serde_json::from_str(json).context("tracer inspect printed invalid JSON")?
            }
            None => {
                rows.push(Row {
                    part: "inspect",
                    case: format!("{case}, {:.1} MB", mb(size)),
                    measurements: vec![("result", median.failure.clone())],
                });
                continue;
            }
        };
        let sync_sites = report["sync_sites"].as_array().map_or(0, Vec::len);
        let probe_sites = report["sites"].as_array().map_or(0, Vec::len);
        rows.push(Row {
            part: "inspect",
            case: format!("{case}, {:.1} MB", mb(size)),
            measurements: vec![
                ("time", format!("{:.2} s", median.seconds)),
                ("peak RSS", format!("{:.0} MB", mb(median.max_rss_bytes))),
                (
                    "RSS / file size",
                    format!("{:.2}", median.max_rss_bytes as f64 / size as f64),
                ),
                (
                    "sites",
                    format!("{probe_sites} entry/return, {sync_sites} inlined sync"),
                ),
            ],
        });
    }
    Ok(rows)
}

/// Loops of bench/probecost: (name, what one iteration hits, iterations untraced, traced).
const PROBE_LOOPS: [(&str, &str, u64, u64); 4] = [
    ("map", "1 map-entry probe (m[k] = v)", 5_000_000, 200_000),
    (
        "local",
        "1 map-entry probe, map on the stack (dropped in the kernel)",
        5_000_000,
        200_000,
    ),
    (
        "lock",
        "2 inline sync probes (Lock + Unlock)",
        5_000_000,
        100_000,
    ),
    (
        "call",
        "WaitGroup.Add+Done: entry and return probes",
        5_000_000,
        50_000,
    ),
];

fn probes(environment: &Environment) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/probecost");
    std::fs::create_dir_all(&dir)?;
    let binary = dir.join("probecost");
    go_build(
        environment,
        BENCH_GO_VERSION,
        &workspace_root().join("bench/probecost"),
        &binary,
        &[],
    )?;
    let tracer = workspace_root().join("target/release/tracer");
    let mut rows = Vec::new();
    for (name, hits, untraced_iterations, traced_iterations) in PROBE_LOOPS {
        let untraced = median_ns_per_op(
            Command::new(&binary)
                .arg(name)
                .arg(untraced_iterations.to_string()),
        )?;
        let traced = median_ns_per_op(
            Command::new(&tracer)
                .args(["run", "--overhead-budget", "off"])
                .arg(&binary)
                .arg(name)
                .arg(traced_iterations.to_string()),
        )?;
        rows.push(Row {
            part: "probes",
            case: format!("{name}: {hits}"),
            measurements: vec![
                ("untraced", format!("{untraced:.1} ns/op")),
                ("traced", format!("{traced:.1} ns/op")),
                ("cost per iteration", format!("{:.0} ns", traced - untraced)),
                ("ratio", format!("{:.0}x", traced / untraced)),
            ],
        });
    }
    Ok(rows)
}

/// How long each service run lasts: long enough for sampling windows to settle.
const SERVICE_DURATION: &str = "10s";

/// What tracer says of a run of the service: its own usage, and how long its probes were in
/// place at what estimated cost.
#[derive(Default)]
struct TracerLines {
    usage: Option<String>,
    sampling: Option<String>,
    /// tracer's own CPU time divided by the events it decoded, in microseconds.
    per_event_us: Option<f64>,
}

/// One run of the service workload: its JSON line, and tracer's lines if traced.
fn run_service(command: &mut Command) -> anyhow::Result<(serde_json::Value, TracerLines)> {
    let output = command.output().with_context(|| shell::describe(command))?;
    if !matches!(output.status.code(), Some(0 | 66)) {
        bail!(
            "`{}` failed: {}",
            shell::describe(command),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("no result line in {stdout:?}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let find = |prefix: &str| {
        stderr
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::to_owned)
    };
    let usage = find("tracer: own CPU ");
    // "tracer: traced for 2.01s: 1398257 events (…" and "tracer: own CPU 0.75 s (…".
    let events = find("tracer: traced for ").and_then(|rest| {
        let count = rest.split(": ").nth(1)?.split(' ').next()?;
        count.parse::<f64>().ok()
    });
    let cpu_seconds = usage
        .as_deref()
        .and_then(|usage| usage.split(' ').next()?.parse::<f64>().ok());
    let lines = TracerLines {
        per_event_us: cpu_seconds
            .zip(events.filter(|&events| events > 0.0))
            .map(|(seconds, events)| seconds * 1e6 / events),
        usage,
        sampling: find("tracer: probes in place "),
    };
    Ok((serde_json::from_str(line)?, lines))
}

fn service(environment: &Environment) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/service");
    std::fs::create_dir_all(&dir)?;
    let source = workspace_root().join("bench/service");
    let plain = dir.join("service");
    let race = dir.join("service-race");
    go_build(environment, BENCH_GO_VERSION, &source, &plain, &[])?;
    go_build(environment, BENCH_GO_VERSION, &source, &race, &["-race"])?;
    let untraced = || {
        let mut command = Command::new(&plain);
        command.args(["-duration", SERVICE_DURATION]);
        command
    };
    // This VM's neighbours move the untraced throughput by ±15% from one run to the next, and
    // the first run after a build is slower: after a warm-up, every traced run is paired with
    // an untraced run just before it and compared with that one. A budget's verdict is the
    // median over several pairs.
    run_service(&mut untraced())?;
    let mut untraced_runs = Vec::new();
    let mut rows = Vec::new();
    for (name, budget, mut command) in service_cases(&plain, &race) {
        let repeats = if budget.is_some() { BUDGET_PAIRS } else { 1 };
        let mut pairs = Vec::new();
        for _ in 0..repeats {
            let before = Throughput::of(&run_service(&mut untraced())?.0);
            let (result, lines) = run_service(&mut command)?;
            untraced_runs.push(before);
            pairs.push(Pair {
                untraced: before,
                traced: Throughput::of(&result),
                lines,
            });
        }
        rows.push(Row {
            part: "service",
            case: name.to_owned(),
            measurements: pair_measurements(pairs, budget),
        });
    }
    rows.insert(0, untraced_row(untraced_runs));
    Ok(rows)
}

/// What the service benchmark compares with the untraced service: (case, its overhead
/// budget, the command).
fn service_cases(
    plain: &std::path::Path,
    race: &std::path::Path,
) -> Vec<(&'static str, Option<f64>, Command)> {
    let tracer = workspace_root().join("target/release/tracer");
    let traced = |controls: &[&str]| {
        let mut command = Command::new(&tracer);
        command
            .arg("run")
            .args(controls)
            .arg("--")
            .arg(plain)
            .args(["-duration", SERVICE_DURATION]);
        command
    };
    let mut race_build = Command::new(race);
    race_build
        .args(["-duration", SERVICE_DURATION])
        .env("GORACE", "atexit_sleep_ms=0");
    vec![
        (
            "tracer run (default: --overhead-budget 10%)",
            Some(0.10),
            traced(&[]),
        ),
        (
            "tracer run --overhead-budget 30%",
            Some(0.30),
            traced(&["--overhead-budget", "30%"]),
        ),
        (
            "tracer run --sample 200ms/2s",
            None,
            traced(&["--sample", "200ms/2s"]),
        ),
        (
            "tracer run --overhead-budget off",
            None,
            traced(&["--overhead-budget", "off"]),
        ),
        (
            "tracer run --overhead-budget off --no-reads",
            None,
            traced(&["--overhead-budget", "off", "--no-reads"]),
        ),
        ("go build -race", None, race_build),
    ]
}

/// A case's row: the median pair's throughput and p99 against its untraced run, and for a
/// budget whether the slowdown stayed within it.
fn pair_measurements(mut pairs: Vec<Pair>, budget: Option<f64>) -> Vec<(&'static str, String)> {
    pairs.sort_by(|a, b| a.slowdown().total_cmp(&b.slowdown()));
    let slowdowns: Vec<String> = pairs
        .iter()
        .map(|pair| format!("{:.0}%", 100.0 * pair.slowdown()))
        .collect();
    let median = pairs.swap_remove(pairs.len() / 2);
    let mut measurements = vec![
        ("throughput", format!("{:.0} req/s", median.traced.rps)),
        (
            "vs untraced",
            format!("{:.2}x", median.traced.rps / median.untraced.rps),
        ),
        ("p99", format!("{:.2} ms", median.traced.p99_us / 1000.0)),
        (
            "p99 vs untraced",
            format!(
                "{:.1}x",
                median.traced.p99_us / median.untraced.p99_us.max(1.0)
            ),
        ),
    ];
    if let Some(budget) = budget {
        // What the budget bounds: the extra time per request.
        let verdict = if median.slowdown() <= budget {
            "within"
        } else {
            "OVER"
        };
        measurements.push((
            "slowdown",
            format!(
                "{:.0}% ({verdict} the {:.0}% budget; median of {})",
                100.0 * median.slowdown(),
                100.0 * budget,
                slowdowns.join(", ")
            ),
        ));
    }
    if let Some(sampling) = median.lines.sampling {
        measurements.push(("probes in place", sampling));
    }
    if let Some(usage) = median.lines.usage {
        measurements.push(("tracer's own CPU", usage));
    }
    if let Some(per_event) = median.lines.per_event_us {
        measurements.push(("tracer's CPU per event", format!("{per_event:.2} µs")));
    }
    measurements
}

/// The untraced baseline: the median of the runs made before each traced one, and their range.
fn untraced_row(mut runs: Vec<Throughput>) -> Row {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let base = runs[runs.len() / 2];
    Row {
        part: "service",
        case: format!("untraced ({} runs, one before each traced run)", runs.len()),
        measurements: vec![
            ("median throughput", format!("{:.0} req/s", base.rps)),
            (
                "range",
                format!(
                    "{:.0} to {:.0} req/s",
                    runs[0].rps,
                    runs[runs.len() - 1].rps
                ),
            ),
            ("p99", format!("{:.2} ms", base.p99_us / 1000.0)),
        ],
    }
}

/// Untraced/traced pairs run for each case with a budget: one pair says little when the
/// untraced throughput alone moves by more than the budget from run to run.
const BUDGET_PAIRS: usize = 3;

/// What the service's load generator measured.
#[derive(Clone, Copy)]
struct Throughput {
    rps: f64,
    p99_us: f64,
}

impl Throughput {
    fn of(result: &serde_json::Value) -> Self {
        Self {
            rps: result["requests_per_second"].as_f64().unwrap_or(0.0),
            p99_us: result["p99_us"].as_f64().unwrap_or(0.0),
        }
    }
}

/// A traced run and the untraced run just before it.
struct Pair {
    untraced: Throughput,
    traced: Throughput,
    lines: TracerLines,
}

impl Pair {
    /// The extra time per request.
    fn slowdown(&self) -> f64 {
        self.untraced.rps / self.traced.rps.max(1e-9) - 1.0
    }
}

/// The most memory tracer may take on the scale workloads: its tables are bounded (65 536
/// goroutines, maps and sync objects, clocks of at most 512 slots), which puts the ceiling at
/// about 350 MB; more means something grows without bound, and the part fails.
const SCALE_MEMORY_CEILING_MB: u64 = 768;

/// The scale workloads at full size: (mode, count).
const SCALE_CASES: [(&str, u64); 3] =
    [("live", 100_000), ("churn", 1_000_000), ("maps", 1_000_000)];

fn scale(environment: &Environment) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/scale");
    std::fs::create_dir_all(&dir)?;
    let program = dir.join("scale");
    go_build(
        environment,
        BENCH_GO_VERSION,
        &workspace_root().join("bench/scale"),
        &program,
        &[],
    )?;
    let tracer = workspace_root().join("target/release/tracer");
    let mut rows = Vec::new();
    for (mode, count) in SCALE_CASES {
        let mut peaks = Vec::new();
        for size in [count / 10, count] {
            let mut command = Command::new(&tracer);
            command
                .args(["run", "--overhead-budget", "off", "--"])
                .arg(&program)
                .args([mode, &size.to_string()]);
            let output = command
                .output()
                .with_context(|| shell::describe(&command))?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.code() != Some(0) {
                bail!("`{}` failed: {stderr}", shell::describe(&command));
            }
            let summary = stderr
                .lines()
                .find(|line| line.starts_with("tracer: traced for"))
                .with_context(|| format!("no summary in {stderr}"))?;
            let number_before = |text: &str, suffix: &str| -> Option<u64> {
                text.split(suffix).next()?.rsplit(' ').next()?.parse().ok()
            };
            let events = summary
                .split(": ")
                .nth(2)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("?")
                .to_owned();
            let dropped = number_before(summary, " dropped").unwrap_or(0);
            let peak_mb = stderr
                .lines()
                .find_map(|line| line.split("peak memory ").nth(1))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|mb| mb.parse::<u64>().ok())
                .context("no peak memory line")?;
            if peak_mb > SCALE_MEMORY_CEILING_MB {
                bail!("tracer took {peak_mb} MB on `scale {mode} {size}`: over the {SCALE_MEMORY_CEILING_MB} MB its bounded tables allow");
            }
            peaks.push(peak_mb);
            let mut measurements = vec![
                ("events", events),
                ("dropped", dropped.to_string()),
                ("tracer peak memory", format!("{peak_mb} MB")),
            ];
            if let [tenth, full] = peaks[..] {
                measurements.push((
                    "vs a tenth of the size",
                    format!("{:.2}x", full as f64 / tenth.max(1) as f64),
                ));
            }
            rows.push(Row {
                part: "scale",
                case: format!("{mode} {size}"),
                measurements,
            });
        }
    }
    Ok(rows)
}

/// Events the detector benchmark pushes through the pipeline, at least.
const DETECTOR_EVENTS: u64 = 10_000_000;

fn detector(environment: &Environment) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/detector");
    std::fs::create_dir_all(&dir)?;
    let demo = dir.join("demo");
    go_build(
        environment,
        BENCH_GO_VERSION,
        &workspace_root().join("examples/demo"),
        &demo,
        &[],
    )?;
    let recording = dir.join("demo-events.jsonl");
    let status = Command::new(workspace_root().join("target/release/tracer"))
        .args([
            "run",
            "--overhead-budget",
            "off",
            "--output",
            "/dev/null",
            "--events",
        ])
        .arg(&recording)
        .arg("--")
        .arg(&demo)
        .args(["-duration", "3s"])
        .stderr(std::process::Stdio::null())
        .status()?;
    if !matches!(status.code(), Some(0 | 66)) {
        bail!("recording the demo failed: {status}");
    }
    shell::run(Command::new("cargo").args([
        "build",
        "--release",
        "--package",
        "tracer-user",
        "--example",
        "detector_throughput",
    ]))?;
    // One replay's figure moves by a tenth with this VM's neighbours: the median of RUNS.
    let mut replays = (0..RUNS)
        .map(|_| replay_detector(&recording))
        .collect::<anyhow::Result<Vec<_>>>()?;
    replays.sort_by(|a, b| a.events_per_second.total_cmp(&b.events_per_second));
    let median = &replays[replays.len() / 2];
    let own_memory = replays
        .iter()
        .map(|replay| replay.own_bytes)
        .max()
        .unwrap_or(0);
    let recorded = std::fs::read_to_string(&recording)?
        .lines()
        .filter(|line| !line.starts_with(r#"{"type":"stack""#))
        .count();
    Ok(vec![Row {
        part: "detector",
        case: format!(
            "{:.1} M events (demo recording of {:.2} M events, replayed with fresh goroutines and addresses)",
            median.events / 1e6,
            recorded as f64 / 1e6
        ),
        measurements: vec![
            (
                "throughput",
                format!(
                    "{:.2} M events/s on one core (median of {RUNS}: {})",
                    median.events_per_second / 1e6,
                    replays
                        .iter()
                        .map(|replay| format!("{:.2}", replay.events_per_second / 1e6))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            ("time", format!("{:.1} s", median.seconds)),
            ("peak RSS", format!("{:.0} MB", mb(median.peak_rss_bytes))),
            ("detector's own (largest)", format!("{:.0} MB", mb(own_memory))),
        ],
    }])
}

/// One run of `detector_throughput` over a recording.
struct Replay {
    events: f64,
    events_per_second: f64,
    seconds: f64,
    peak_rss_bytes: u64,
    /// Peak RSS less the RSS before the replay (the parsed recording).
    own_bytes: u64,
}

fn replay_detector(recording: &std::path::Path) -> anyhow::Result<Replay> {
    let output = Command::new(workspace_root().join("target/release/examples/detector_throughput"))
        .arg(recording)
        .arg(DETECTOR_EVENTS.to_string())
        .output()?;
    if !output.status.success() {
        bail!(
            "detector_throughput failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |field: &str| result[field].as_f64().unwrap_or(0.0);
    Ok(Replay {
        events: number("events"),
        events_per_second: number("events_per_second"),
        seconds: number("seconds"),
        peak_rss_bytes: number("peak_rss_bytes") as u64,
        own_bytes: (number("peak_rss_bytes") - number("rss_before_bytes")).max(0.0) as u64,
    })
}

/// The median of RUNS runs of a probecost command's "ns/op X" line.
fn median_ns_per_op(command: &mut Command) -> anyhow::Result<f64> {
    let mut values = Vec::new();
    for _ in 0..RUNS {
        let output = command.output().with_context(|| shell::describe(command))?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}",
                shell::describe(command),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = stdout
            .lines()
            .find_map(|line| line.strip_prefix("ns/op "))
            .with_context(|| format!("no ns/op in {stdout:?}"))?;
        values.push(value.trim().parse::<f64>()?);
    }
    values.sort_by(f64::total_cmp);
    Ok(values[RUNS / 2])
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// `count` functions shaped like request handlers: a mutex-guarded map update and an
/// RWMutex-guarded cache read each, so the analysis has realistic work per function.
fn generated_handlers(count: usize) -> String {
    let mut code = String::from(
        "// Code generated by cargo xtask bench; DO NOT EDIT.\n\npackage main\n\nimport \"sync\"\n\n\
         type store struct {\n\tmu    sync.Mutex\n\trw    sync.RWMutex\n\tm     map[int]int\n\tcache map[int]string\n}\n",
    );
    for i in 0..count {
        let _ = write!(
            code,
            "\nfunc handler{i}(s *store, k int) int {{\n\ts.mu.Lock()\n\ts.m[k+{i}]++\n\tv := s.m[k]\n\ts.mu.Unlock()\n\
             \ts.rw.RLock()\n\tw := s.cache[k%{}]\n\ts.rw.RUnlock()\n\treturn v + len(w)\n}}\n",
            i + 7
        );
    }
    code.push_str("\nvar handlers = []func(*store, int) int{\n");
    for i in 0..count {
        let _ = writeln!(code, "\thandler{i},");
    }
    code.push_str("}\n\nfunc init() {\n\ts := &store{m: map[int]int{}, cache: map[int]string{}}\n\tfor _, h := range handlers[:3] {\n\t\th(s, 1)\n\t}\n}\n");
    code
}

struct Measurement {
    seconds: f64,
    max_rss_bytes: u64,
    /// Standard output when the command succeeded.
    stdout: Option<String>,
    /// Its last line of standard error otherwise.
    failure: String,
}

/// Runs `command` under GNU time, which forks it from its own small process: measuring from
/// xtask would not work, because Linux carries the exec'ing process's peak RSS (xtask's, through
/// vfork) into the child's.
fn measure(command: &Command) -> anyhow::Result<Measurement> {
    let report = std::env::temp_dir().join(format!("tracer-bench-time-{}", std::process::id()));
    let output = Command::new("/usr/bin/time")
        .args(["--format", "%e %M", "--output"])
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args())
        .output()
        .with_context(|| {
            format!(
                "cannot run {} under /usr/bin/time",
                shell::describe(command)
            )
        })?;
    let text = std::fs::read_to_string(&report).context("GNU time wrote no report")?;
    let _ = std::fs::remove_file(&report);
    let fields: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let [seconds, kilobytes] = fields[..] else {
        bail!("unexpected GNU time report {text:?}");
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    Ok(Measurement {
        seconds: seconds.parse()?,
        max_rss_bytes: kilobytes.parse::<u64>()? * 1024,
        stdout: output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned()),
        failure: stderr.lines().last().unwrap_or("failed").to_owned(),
    })
}

fn render(rows: &[Row]) -> String {
    let mut text = String::from("\n| part | case | measurements |\n|---|---|---|\n");
    for row in rows {
        let measurements: Vec<String> = row
            .measurements
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        let _ = writeln!(
            text,
            "| {} | {} | {} |",
            row.part,
            row.case,
            measurements.join("; ")
        );
    }
    text
}
