//! `cargo xtask corpus`: accuracy on the labelled corpus (corpus/*/main.go).
//!
//! Each program's header says whether it races on a map (`// corpus: racy` or `safe`), what it
//! covers, and — for patterns tracer cannot observe — why (`// unobservable: …`); racy programs
//! mark their two racing lines with a trailing `// race`. The labels are first confirmed with
//! `go build -race`, then every program runs under `tracer run` with every supported Go
//! version. A racy program is found when a report names both racing lines; any other report is
//! a false one. The task prints precision and recall per version and overall, lists every
//! program it got wrong, and fails on any miss or false report among observable programs.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::{
    demo::go_environment,
    setup::{Environment, GO_VERSIONS},
    shell::{self, workspace_root},
};

/// The Go version that confirms the labels with `-race`: the newest whose reports keep the
/// user's line for `m[k]` (1.27 reads through a wrapper and shows only the runtime's frames).
const RACE_DETECTOR_GO: &str = "1.26.6";

/// A program that runs longer than this is stuck (they take well under a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Racy,
    Safe,
}

/// One corpus program, as its header describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub label: Label,
    pub covers: Vec<String>,
    /// Why tracer cannot observe the synchronisation involved, if it cannot.
    pub unobservable: Option<String>,
    /// The two racing lines (racy programs).
    pub race_lines: Vec<u32>,
}

/// Reads a program's header and `// race` markers.
pub fn parse_program(name: &str, source: &str) -> anyhow::Result<Program> {
    let header = |key: &str| {
        source
            .lines()
            .take_while(|line| line.starts_with("//"))
            .find_map(|line| line.strip_prefix(&format!("// {key}:")))
            .map(str::trim)
    };
    let label = match header("corpus") {
        Some("racy") => Label::Racy,
        Some("safe") => Label::Safe,
        other => bail!("{name}: the first line must be `// corpus: racy|safe`, not {other:?}"),
    };
    let covers = header("covers")
        .with_context(|| format!("{name}: no `// covers:` line"))?
        .split(',')
        .map(|tag| tag.trim().to_owned())
        .collect();
    let race_lines: Vec<u32> = (1..)
        .zip(source.lines())
        .filter(|(_, line)| line.trim_end().ends_with("// race"))
        .map(|(number, _)| number)
        .collect();
    match (label, race_lines.len()) {
        (Label::Racy, 2) | (Label::Safe, 0) => {}
        (_, count) => bail!("{name}: {label:?} with {count} `// race` lines"),
    }
    Ok(Program {
        name: name.to_owned(),
        label,
        covers,
        unobservable: header("unobservable").map(str::to_owned),
        race_lines,
    })
}

/// What tracer did with one program on one Go version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Racy, and a report named both racing lines (and no other report).
    Found,
    /// Racy, and no report named both racing lines.
    Missed,
    /// Safe and silent.
    Clean,
    /// A report that is not the program's race (on a safe program, or beside the real one).
    FalseReport(String),
    /// The program or tracer failed.
    Broken(String),
}

/// The lines of `main.go` an access's stack passes through.
fn stack_lines(access: &Value) -> Vec<u32> {
    access["stack"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|frame| {
            frame["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("/main.go"))
        })
        .filter_map(|frame| frame["line"].as_u64().and_then(|l| u32::try_from(l).ok()))
        .collect()
}

/// Whether a JSON race report is the program's marked race: one side's stack passes through
/// each racing line.
fn names_the_race(report: &Value, race_lines: &[u32]) -> bool {
    let [first, second] = race_lines else {
        return false;
    };
    let (current, previous) = (
        stack_lines(&report["current"]),
        stack_lines(&report["previous"]),
    );
    (current.contains(first) && previous.contains(second))
        || (current.contains(second) && previous.contains(first))
}

/// Judges one run from its JSON race reports.
pub fn judge(program: &Program, reports: &[Value]) -> Verdict {
    let describe = |report: &Value| {
        format!(
            "{} between lines {:?} and {:?}",
            report["kind"].as_str().unwrap_or("?"),
            stack_lines(&report["current"]),
            stack_lines(&report["previous"])
        )
    };
    let (matching, other): (Vec<&Value>, Vec<&Value>) = reports
        .iter()
        .partition(|report| names_the_race(report, &program.race_lines));
    if let Some(false_report) = other.first() {
        return Verdict::FalseReport(describe(false_report));
    }
    match (program.label, matching.is_empty()) {
        (Label::Racy, false) => Verdict::Found,
        (Label::Racy, true) => Verdict::Missed,
        (Label::Safe, _) => Verdict::Clean,
    }
}

/// Counts of one group of runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub found: u32,
    pub missed: u32,
    pub clean: u32,
    pub false_reports: u32,
    pub broken: u32,
}

impl Score {
    fn add(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Found => self.found += 1,
            Verdict::Missed => self.missed += 1,
            Verdict::Clean => self.clean += 1,
            Verdict::FalseReport(_) => self.false_reports += 1,
            Verdict::Broken(_) => self.broken += 1,
        }
    }

    /// Of the reports, the share that were real races (1 when nothing was reported).
    pub fn precision(&self) -> f64 {
        let reported = self.found + self.false_reports;
        if reported == 0 {
            1.0
        } else {
            f64::from(self.found) / f64::from(reported)
        }
    }

    /// Of the racy programs, the share found.
    pub fn recall(&self) -> f64 {
        let racy = self.found + self.missed;
        if racy == 0 {
            1.0
        } else {
            f64::from(self.found) / f64::from(racy)
        }
    }

    fn row(&self, name: &str) -> String {
        format!(
            "{name:<14} {:>6} {:>7} {:>6} {:>7} {:>7} {:>10.3} {:>7.3}\n",
            self.found,
            self.missed,
            self.clean,
            self.false_reports,
            self.broken,
            self.precision(),
            self.recall()
        )
    }
}

/// One run's outcome.
pub struct Run<'a> {
    pub program: &'a Program,
    pub version: &'a str,
    pub verdict: Verdict,
}

/// The precision/recall table: per version and overall for observable programs, then the
/// unobservable ones apart, then every program that was got wrong.
pub fn table(runs: &[Run<'_>]) -> String {
    let mut per_version: BTreeMap<&str, Score> = BTreeMap::new();
    let mut overall = Score::default();
    let mut unobservable = Score::default();
    for run in runs {
        if run.program.unobservable.is_some() {
            unobservable.add(&run.verdict);
        } else {
            per_version
                .entry(run.version)
                .or_default()
                .add(&run.verdict);
            overall.add(&run.verdict);
        }
    }
    let mut text =
        String::from("version         found  missed  clean   false  broken  precision  recall\n");
    for (version, score) in &per_version {
        text.push_str(&score.row(&format!("go{version}")));
    }
    text.push_str(&overall.row("overall"));
    text.push_str(&unobservable.row("unobservable"));
    let _ = writeln!(
        text,
        "(unobservable: programs whose synchronisation tracer cannot see, counted apart; see \
         docs/status.md)"
    );
    for run in runs.iter().filter(|run| wrong(&run.verdict)) {
        let what = match &run.verdict {
            Verdict::Missed => "missed the race".to_owned(),
            Verdict::FalseReport(report) => format!("false report: {report}"),
            Verdict::Broken(why) => format!("broken: {why}"),
            Verdict::Found | Verdict::Clean => unreachable!("not wrong"),
        };
        let unobservable = if run.program.unobservable.is_some() {
            " (unobservable)"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "  go{} {}{unobservable}: {what}",
            run.version, run.program.name
        );
    }
    text
}

fn wrong(verdict: &Verdict) -> bool {
    !matches!(verdict, Verdict::Found | Verdict::Clean)
}

/// Every corpus program, sorted by name.
fn load_corpus(root: &Path) -> anyhow::Result<Vec<(Program, PathBuf)>> {
    let mut programs = Vec::new();
    for entry in std::fs::read_dir(root).context("reading corpus/")? {
        let dir = entry?.path();
        let source = dir.join("main.go");
        if !source.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let program = parse_program(&name, &std::fs::read_to_string(&source)?)?;
        programs.push((program, dir));
    }
    programs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(programs)
}

fn go_build(
    environment: &Environment,
    version: &str,
    source: &Path,
    output: &Path,
    race: bool,
) -> anyhow::Result<()> {
    let mut command = Command::new(environment.go(version));
    command.arg("build");
    if race {
        command.arg("-race");
    }
    let result = command
        .arg("-o")
        .arg(output)
        .arg("main.go")
        .current_dir(source)
        .envs(go_environment(environment))
        .env("GO111MODULE", "off")
        .output()?;
    if !result.status.success() {
        bail!(
            "go{version} build {}: {}",
            source.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(())
}

/// Runs `command` to completion within [`RUN_TIMEOUT`]: (exit code, standard error).
fn run_with_timeout(command: &mut Command) -> anyhow::Result<(Option<i32>, String)> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((status.code(), reader.join().unwrap_or_default()))
}

/// Checks every label with Go's own race detector.
fn confirm_labels(
    environment: &Environment,
    programs: &[(Program, PathBuf)],
    work: &Path,
) -> anyhow::Result<()> {
    eprintln!(
        "xtask: confirming {} labels with go{RACE_DETECTOR_GO} build -race",
        programs.len()
    );
    let mut wrong = Vec::new();
    for (program, dir) in programs {
        let binary = work.join(format!("{}-race", program.name));
        go_build(environment, RACE_DETECTOR_GO, dir, &binary, true)?;
        // Without the race runtime's default one-second pause at exit.
        let (code, stderr) =
            run_with_timeout(Command::new(&binary).env("GORACE", "atexit_sleep_ms=0"))?;
        let warned = stderr.contains("WARNING: DATA RACE");
        let on_lines = program
            .race_lines
            .iter()
            .all(|line| stderr.contains(&format!("main.go:{line}")));
        let confirmed = match program.label {
            Label::Racy => code == Some(66) && warned && on_lines,
            Label::Safe => code == Some(0) && !warned,
        };
        if !confirmed {
            wrong.push(format!(
                "{} ({:?}): -race exited {code:?}\n{stderr}",
                program.name, program.label
            ));
        }
    }
    if !wrong.is_empty() {
        bail!(
            "-race disagrees with the corpus labels:\n{}",
            wrong.join("\n")
        );
    }
    Ok(())
}

/// Runs one program under tracer and judges the result.
fn trace(tracer: &Path, program: &Program, binary: &Path, reports: &Path) -> Verdict {
    let _ = std::fs::remove_file(reports);
    let mut command = Command::new(tracer);
    command
        // Accuracy is the detector's, on complete traces: no sampling.
        .args([
            "run",
            "--overhead-budget",
            "off",
            "--format",
            "json",
            "--output",
        ])
        .arg(reports)
        .arg("--")
        .arg(binary);
    let (code, stderr) = match run_with_timeout(&mut command) {
        Ok(outcome) => outcome,
        Err(error) => return Verdict::Broken(error.to_string()),
    };
    if !matches!(code, Some(0 | 66)) {
        let last = stderr.lines().last().unwrap_or("").to_owned();
        return Verdict::Broken(format!("exit status {code:?}: {last}"));
    }
    let text = std::fs::read_to_string(reports).unwrap_or_default();
    let parsed: Result<Vec<Value>, _> = text.lines().map(serde_json::from_str).collect();
    // The race reports, without the closing summary.
    let parsed = parsed.map(|records| {
        records
            .into_iter()
            .filter(|record| record["type"] == "race")
            .collect::<Vec<_>>()
    });
    match parsed {
        Ok(reports) if (code == Some(66)) != reports.is_empty() => judge(program, &reports),
        Ok(_) => Verdict::Broken(format!("exit status {code:?} disagrees with the reports")),
        Err(error) => Verdict::Broken(format!("unreadable reports: {error}")),
    }
}

pub fn run(
    environment: &Environment,
    versions: &[String],
    filter: Option<&str>,
) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut programs = load_corpus(&root.join("corpus"))?;
    if let Some(filter) = filter {
        programs.retain(|(program, _)| program.name.contains(filter));
    }
    if programs.is_empty() {
        bail!("no corpus program matches");
    }
    let versions: Vec<&str> = if versions.is_empty() {
        GO_VERSIONS.to_vec()
    } else {
        versions.iter().map(String::as_str).collect()
    };
    let work = root.join("target/corpus");
    std::fs::create_dir_all(&work)?;
    shell::run(Command::new("cargo").args(["build", "--release", "--package", "tracer-user"]))?;
    let tracer = root.join("target/release/tracer");
    confirm_labels(environment, &programs, &work)?;

    let mut runs = Vec::new();
    for version in &versions {
        eprintln!(
            "xtask: go{version}: {} programs under tracer run",
            programs.len()
        );
        for (program, dir) in &programs {
            let binary = work.join(format!("{}-{version}", program.name));
            go_build(environment, version, dir, &binary, false)?;
            let reports = work.join("reports.jsonl");
            let verdict = trace(&tracer, program, &binary, &reports);
            if wrong(&verdict) {
                eprintln!("xtask:   {}: {verdict:?}", program.name);
            }
            runs.push(Run {
                program,
                version,
                verdict,
            });
        }
    }
    print!("{}", table(&runs));
    let failures = runs
        .iter()
        .filter(|run| run.program.unobservable.is_none() && wrong(&run.verdict))
        .count();
    if failures > 0 {
        bail!("{failures} wrong verdicts on observable programs");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RACY: &str = "// corpus: racy\n// covers: mutex, int-keys\n// Two writers.\n\n\
                        package main\n\nfunc a() { m[1] = 1 // race\n}\nfunc b() { m[2] = 2 // race\n}\n";

    fn report(current: u32, previous: u32) -> Value {
        let side =
            |line| json!({"stack": [{"function": "main.f", "file": "/c/x/main.go", "line": line}]});
        json!({"type": "race", "kind": "write/write", "current": side(current), "previous": side(previous)})
    }

    #[test]
    fn parses_headers_and_race_markers() {
        let program = parse_program("racy-x", RACY).unwrap();
        assert_eq!(program.label, Label::Racy);
        assert_eq!(program.covers, ["mutex", "int-keys"]);
        assert_eq!(program.race_lines, [7, 9]);
        assert_eq!(program.unobservable, None);
        let safe = "// corpus: safe\n// covers: atomic\n// unobservable: atomics\npackage main\n";
        let safe = parse_program("safe-x", safe).unwrap();
        assert_eq!(safe.unobservable.as_deref(), Some("atomics"));
        assert!(parse_program("bad", "package main\n").is_err());
        assert!(parse_program("bad", "// corpus: racy\n// covers: x\n").is_err());
    }

    #[test]
    fn judges_by_the_racing_lines() {
        let racy = parse_program("racy-x", RACY).unwrap();
        assert_eq!(judge(&racy, &[report(9, 7)]), Verdict::Found);
        assert_eq!(judge(&racy, &[report(7, 9)]), Verdict::Found);
        assert_eq!(judge(&racy, &[]), Verdict::Missed);
        assert!(matches!(
            judge(&racy, &[report(9, 7), report(3, 7)]),
            Verdict::FalseReport(_)
        ));
        assert!(matches!(
            judge(&racy, &[report(9, 9)]),
            Verdict::FalseReport(_)
        ));
        let safe = parse_program("safe-x", "// corpus: safe\n// covers: x\n").unwrap();
        assert_eq!(judge(&safe, &[]), Verdict::Clean);
        assert!(matches!(
            judge(&safe, &[report(1, 2)]),
            Verdict::FalseReport(_)
        ));
    }

    #[test]
    fn the_table_scores_versions_and_lists_mistakes() {
        let racy = parse_program("racy-x", RACY).unwrap();
        let safe = parse_program("safe-x", "// corpus: safe\n// covers: x\n").unwrap();
        let mut atomic = safe.clone();
        atomic.name = "safe-atomic".into();
        atomic.unobservable = Some("atomics".into());
        let runs = [
            Run {
                program: &racy,
                version: "1.21.13",
                verdict: Verdict::Found,
            },
            Run {
                program: &safe,
                version: "1.21.13",
                verdict: Verdict::Clean,
            },
            Run {
                program: &racy,
                version: "1.27.3",
                verdict: Verdict::Missed,
            },
            Run {
                program: &safe,
                version: "1.27.3",
                verdict: Verdict::FalseReport("r".into()),
            },
            Run {
                program: &atomic,
                version: "1.27.3",
                verdict: Verdict::FalseReport("a".into()),
            },
        ];
        let text = table(&runs);
        assert!(
            text.contains(
                "go1.21.13           1       0      1       0       0      1.000   1.000"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "go1.27.3            0       1      0       1       0      0.000   0.000"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "overall             1       1      1       1       0      0.500   0.500"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "unobservable        0       0      0       1       0      0.000   1.000"
            ),
            "{text}"
        );
        assert!(text.contains("go1.27.3 racy-x: missed the race"), "{text}");
        assert!(
            text.contains("go1.27.3 safe-atomic (unobservable): false report: a"),
            "{text}"
        );
        assert!(!text.contains("go1.21.13 racy-x"), "{text}");
    }
}
