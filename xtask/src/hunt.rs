//! Part `hunt` of `cargo xtask bench`: how soon tracer reports a map race under an overhead
//! budget, as a user attached to a live service would see it, and what that costs.
//!
//! bench/hunt serves HTTP on loopback with one write/read map race per period (a reloader
//! goroutine rewrites a map every request reads), starting only after the service has been
//! traced for a while, so that tracer's first moments do not count. A second process loads
//! it: busy (clients as fast as they can) or quiet (a few hundred requests per second). For
//! each setting, load and race period, the service runs under `tracer run --format json
//! --output FILE` until the first race report appears in FILE; the time from the first racy
//! write (the service prints it) to the report's `found_at` is the time to first report.
//! Then the throughput under each setting, each traced run paired with the untraced run just
//! before it.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context as _};

use crate::{
    bench::{Row, BENCH_GO_VERSION},
    demo::go_build,
    setup::Environment,
    shell::workspace_root,
};

/// How long the service runs traced before its race starts.
const RACE_AFTER: Duration = Duration::from_secs(5);

/// A budget setting: its name, tracer's options and what it must achieve.
struct Setting {
    name: &'static str,
    options: &'static [&'static str],
}

const DEFAULT: Setting = Setting {
    name: "default budget (10%)",
    options: &[],
};
const TWO_PERCENT: Setting = Setting {
    name: "--overhead-budget 2%",
    options: &["--overhead-budget", "2%"],
};

/// How the service is loaded.
#[derive(Clone, Copy)]
struct Load {
    name: &'static str,
    arguments: &'static [&'static str],
}

const BUSY: Load = Load {
    name: "busy",
    arguments: &["-clients", "4"],
};
const QUIET: Load = Load {
    name: "quiet (300 req/s)",
    arguments: &["-clients", "4", "-rps", "300"],
};

/// One cell of the table: a setting, a load, the race's period, how long to wait for a report
/// and the target for the median (if it sets one).
struct Case {
    setting: &'static Setting,
    load: Load,
    period: Duration,
    give_up: Duration,
    target: Option<Duration>,
}

impl Case {
    /// `busy, default budget (10%), race every 1s`.
    fn name(&self) -> String {
        format!(
            "{}, {}, race every {:?}",
            self.load.name, self.setting.name, self.period
        )
    }
}

fn cases() -> Vec<Case> {
    let seconds = Duration::from_secs;
    let millis = Duration::from_millis;
    let case = |setting, load, period, give_up, target: Option<u64>| Case {
        setting,
        load,
        period,
        give_up: seconds(give_up),
        target: target.map(seconds),
    };
    vec![
        case(&DEFAULT, BUSY, millis(100), 30, None),
        case(&DEFAULT, BUSY, seconds(1), 60, Some(5)),
        case(&DEFAULT, BUSY, seconds(5), 90, Some(20)),
        case(&DEFAULT, QUIET, millis(100), 30, None),
        case(&DEFAULT, QUIET, seconds(1), 60, None),
        case(&DEFAULT, QUIET, seconds(2), 60, Some(10)),
        case(&DEFAULT, QUIET, seconds(5), 90, None),
        case(&TWO_PERCENT, BUSY, seconds(1), 120, Some(60)),
        case(&TWO_PERCENT, QUIET, seconds(2), 90, None),
    ]
}

/// Length of each throughput run.
const THROUGHPUT_RUN: Duration = Duration::from_secs(10);
/// Untraced/traced pairs per throughput measurement.
const THROUGHPUT_PAIRS: usize = 3;
/// Tries per pair (the race may crash the service in the middle of one).
const THROUGHPUT_ATTEMPTS: usize = 4;

/// `only`: just the cases whose name contains it, without the throughput rows.
pub fn hunt(
    environment: &Environment,
    runs: usize,
    only: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let dir = workspace_root().join("target/bench/hunt");
    std::fs::create_dir_all(&dir)?;
    let program = dir.join("hunt");
    go_build(
        environment,
        BENCH_GO_VERSION,
        &workspace_root().join("bench/hunt"),
        &program,
        &[],
    )?;
    let tracer = workspace_root().join("target/release/tracer");
    let mut rows = Vec::new();
    let cases = cases()
        .into_iter()
        .filter(|case| only.is_none_or(|only| case.name().contains(only)));
    for case in cases {
        let mut outcomes = Vec::new();
        for run in 1..=runs {
            let outcome = first_report(&tracer, &program, &dir, &case)?;
            eprintln!(
                "bench: hunt {}, run {run}: {}",
                case.name(),
                match outcome {
                    Outcome::Found(time) => format!("{:.1} s", time.as_secs_f64()),
                    Outcome::Crashed => "the race crashed the service first (fatal map error \
                                         reported)"
                        .to_owned(),
                    Outcome::Nothing => format!("nothing within {:?}", case.give_up),
                }
            );
            outcomes.push(outcome);
        }
        rows.push(detection_row(&case, &outcomes));
    }
    if only.is_some() {
        return Ok(rows);
    }
    for setting in [&DEFAULT, &TWO_PERCENT] {
        for load in [BUSY, QUIET] {
            rows.push(throughput_row(&tracer, &program, setting, load)?);
        }
    }
    Ok(rows)
}

/// The table row of one case: median and worst time to first report (a run the race crashed
/// first counts as not found, and is counted apart).
fn detection_row(case: &Case, outcomes: &[Outcome]) -> Row {
    let mut times: Vec<Option<Duration>> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Found(time) => Some(*time),
            _ => None,
        })
        .collect();
    let crashed = outcomes
        .iter()
        .filter(|&&outcome| outcome == Outcome::Crashed)
        .count();
    // Not found sorts last.
    times.sort_by_key(|time| time.unwrap_or(Duration::MAX));
    let show = |time: Option<Duration>| {
        time.map_or_else(
            || format!("none within {:.0} s", case.give_up.as_secs_f64()),
            |time| format!("{:.1} s", time.as_secs_f64()),
        )
    };
    let median = times[times.len() / 2];
    let found = times.iter().flatten().count();
    let mut measurements = vec![
        ("first report, median", show(median)),
        ("worst", show(times[times.len() - 1])),
        ("found in", format!("{found} of {} runs", times.len())),
    ];
    if crashed > 0 {
        measurements.push((
            "crashed by the race first",
            format!("{crashed} (fatal map error reported)"),
        ));
    }
    if let Some(target) = case.target {
        let met = median.is_some_and(|median| median <= target);
        measurements.push((
            "target",
            format!(
                "median within {:.0} s: {}",
                target.as_secs_f64(),
                if met { "met" } else { "MISSED" }
            ),
        ));
    }
    Row {
        part: "hunt",
        case: format!(
            "{}, {}, race every {}",
            case.load.name,
            case.setting.name,
            period_name(case.period)
        ),
        measurements,
    }
}

fn period_name(period: Duration) -> String {
    match period.as_millis() {
        millis if millis < 1000 => format!("{millis} ms"),
        millis => format!("{} s", millis / 1000),
    }
}

/// The service under tracer, printing its address and its race's start.
struct TracedService {
    tracer: Child,
    lines: mpsc::Receiver<String>,
}

impl TracedService {
    fn start(
        tracer: &Path,
        program: &Path,
        options: &[&str],
        reports: &Path,
        race: &[String],
    ) -> anyhow::Result<(Self, String)> {
        let mut command = Command::new(tracer);
        command
            .arg("run")
            .args(options)
            .args(["--format", "json", "--output"])
            .arg(reports)
            .arg("--")
            .arg(program)
            .arg("serve")
            .args(race)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().context("starting tracer")?;
        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let service = Self {
            tracer: child,
            lines,
        };
        let address = service
            .line_starting("listening ", Duration::from_secs(60))?
            .context("the service did not start")?;
        Ok((service, address))
    }

    /// The rest of the first output line starting with `prefix`, if it comes within `timeout`.
    fn line_starting(&self, prefix: &str, timeout: Duration) -> anyhow::Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(Some(rest.to_owned()));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the service stopped"),
            }
        }
    }

    /// Ctrl-C: tracer passes it on to the service and ends with it.
    fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.tracer.id() as i32, libc::SIGINT) };
        self.tracer.wait()?;
        Ok(())
    }
}

fn start_load(
    program: &Path,
    address: &str,
    load: Load,
    duration: Duration,
) -> anyhow::Result<Child> {
    Command::new(program)
        .args(["load", "-addr", address])
        .args(load.arguments)
        .arg("-duration")
        .arg(format!("{}ms", duration.as_millis()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the load")
}

/// One run: the time from the first racy write to the first report, if within the case's
/// limit.
fn first_report(tracer: &Path, program: &Path, dir: &Path, case: &Case) -> anyhow::Result<Outcome> {
    let reports = dir.join("reports.jsonl");
    let race = [
        "-race-every".to_owned(),
        format!("{}ms", case.period.as_millis()),
        "-race-after".to_owned(),
        format!("{}ms", RACE_AFTER.as_millis()),
    ];
    let (service, address) =
        TracedService::start(tracer, program, case.setting.options, &reports, &race)?;
    let mut load = start_load(program, &address, case.load, RACE_AFTER + case.give_up * 2)?;
    let started = service
        .line_starting("race-start ", RACE_AFTER + Duration::from_secs(30))?
        .context("the race did not start")?;
    let race_start = SystemTime::UNIX_EPOCH + Duration::from_nanos(started.trim().parse()?);
    let deadline = Instant::now() + case.give_up;
    let outcome = loop {
        let records = records(&reports);
        if let Some(found_at) = first_found_at(&records) {
            break Outcome::Found(found_at.duration_since(race_start).unwrap_or_default());
        }
        if records.iter().any(|record| record["type"] == "fatal") {
            break Outcome::Crashed;
        }
        if Instant::now() > deadline {
            break Outcome::Nothing;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = load.kill();
    let _ = load.wait();
    service.stop()?;
    Ok(outcome)
}

/// How one run ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// A race report, this long after the first racy write.
    Found(Duration),
    /// The race crashed the service (`concurrent map read and map write`, which tracer
    /// reported) before tracer reported it as a race.
    Crashed,
    /// Neither within the case's limit.
    Nothing,
}

/// The records tracer has written to a report file so far (a fatal record: the service died
/// of a fatal map error).
fn records(reports: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(reports)
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `found_at` of the first race report among `records`.
fn first_found_at(records: &[serde_json::Value]) -> Option<SystemTime> {
    records
        .iter()
        .find(|record| record["type"] == "race")
        .and_then(|record| parse_rfc3339(record["found_at"].as_str()?))
}

/// `2026-12-05T06:40:12.345Z` (UTC, as tracer writes it).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let millis = number(20..23)?;
    // Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_millis((seconds * 1000 + millis) as u64))
}

/// What the load generator measured: requests per second and p99 latency (µs).
fn run_load(program: &Path, address: &str, load: Load) -> anyhow::Result<(f64, f64)> {
    let output = start_load(program, address, load, THROUGHPUT_RUN)?.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = stdout
        .lines()
        .find(|line| line.starts_with('{'))
        .with_context(|| {
            format!(
                "the load printed no result: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })
        .and_then(|line| Ok(serde_json::from_str(line)?))?;
    let number = |field: &str| {
        result[field]
            .as_f64()
            .with_context(|| format!("no {field}"))
    };
    Ok((number("requests_per_second")?, number("p99_us")?))
}

/// Throughput and p99 latency under `setting`, with the race once a second, against untraced
/// runs (a quiet load's throughput is its own pace: its latency shows the cost).
fn throughput_row(
    tracer: &Path,
    program: &Path,
    setting: &Setting,
    load: Load,
) -> anyhow::Result<Row> {
    let dir: PathBuf = workspace_root().join("target/bench/hunt");
    let race = [
        "-race-every".to_owned(),
        "1s".to_owned(),
        "-race-after".to_owned(),
        "0s".to_owned(),
    ];
    let pair = || -> anyhow::Result<(f64, f64)> {
        let mut untraced = Command::new(program)
            .arg("serve")
            .args(&race)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut first = String::new();
        BufReader::new(untraced.stdout.as_mut().expect("piped")).read_line(&mut first)?;
        let address = first
            .strip_prefix("listening ")
            .context("the service did not start")?
            .trim()
            .to_owned();
        let before = run_load(program, &address, load);
        let _ = untraced.kill();
        let _ = untraced.wait();
        let before = before?;
        let (service, address) = TracedService::start(
            tracer,
            program,
            setting.options,
            &dir.join("throughput-reports.jsonl"),
            &race,
        )?;
        let traced = run_load(program, &address, load);
        service.stop()?;
        let traced = traced?;
        Ok((traced.0 / before.0.max(1e-9), traced.1 / before.1.max(1.0)))
    };
    let (mut ratios, mut latencies) = (Vec::new(), Vec::new());
    for _ in 0..THROUGHPUT_PAIRS {
        // Now and then the race crashes the service (`concurrent map read and map write`, the
        // runtime's own check) in the middle of a run: that pair is measured again.
        let mut attempts = 0;
        let (ratio, latency) = loop {
            attempts += 1;
            match pair() {
                Ok(measured) => break measured,
                Err(error) if attempts < THROUGHPUT_ATTEMPTS => {
                    eprintln!("bench: hunt throughput pair failed ({error}); measuring it again");
                }
                Err(error) => return Err(error),
            }
        };
        ratios.push(ratio);
        latencies.push(latency);
    }
    ratios.sort_by(f64::total_cmp);
    latencies.sort_by(f64::total_cmp);
    let shown: Vec<String> = ratios.iter().map(|ratio| format!("{ratio:.2}x")).collect();
    Ok(Row {
        part: "hunt",
        case: format!("{}, {}: throughput and latency", load.name, setting.name),
        measurements: vec![
            (
                "vs untraced (median pair)",
                format!("{:.2}x", ratios[ratios.len() / 2]),
            ),
            ("pairs", shown.join(", ")),
            (
                "p99 latency vs untraced (median)",
                format!("{:.1}x", latencies[latencies.len() / 2]),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_report_times_tracer_writes() {
        let at = |text| {
            parse_rfc3339(text)
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        assert_eq!(at("1970-01-01T00:00:00.000Z"), 0);
        assert_eq!(at("2000-02-29T01:01:01.250Z"), 951_786_061_250);
        assert_eq!(at("2026-12-31T23:59:59.000Z"), 1_798_761_599_000);
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
