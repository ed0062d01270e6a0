//! The node agent: `tracer attach --exe NAME` started before any process of the program, then
//! processes started at different times, each made to race once traced — one of them in a container-like cgroup and in its
//! own pid and mount namespaces — one exits and another takes its place. Each one's race is
//! reported (JSON, with its pid) and counted under the right `executable` label, a restarted
//! program's counters go on from its predecessor's, the container id labels its target, and
//! once every process is gone tracer holds no more descriptors than before the first one came.

mod common;

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc::{self, Receiver},
    time::Duration,
};

use common::*;

/// A container id as runtimes name them (64 hex digits).
const CONTAINER: &str = "c0ffee00d15ea5e5c0ffee00d15ea5e5c0ffee00d15ea5e5c0ffee00d15ea5e5";

/// How long a started process may take to be found, analysed and traced, and its race reported.
const FOUND: Duration = Duration::from_secs(60);

/// tracer's standard error, line by line, read by a thread of its own.
struct Lines(Receiver<String>, Vec<String>);

impl Lines {
    /// The first line (from now on) that `matches` gives a value for.
    fn wait<T>(&mut self, what: &str, mut matches: impl FnMut(&str) -> Option<T>) -> T {
        loop {
            let line = self
                .0
                .recv_timeout(FOUND)
                .unwrap_or_else(|_| panic!("no line saying {what}: {:#?}", self.1));
            self.1.push(line.clone());
            if let Some(value) = matches(&line) {
                return value;
            }
        }
    }
}

/// A cgroup named the way container runtimes name theirs (`…/docker/<id>` in cgroup v1's pids
/// hierarchy, or `…/docker-<id>.scope` in cgroup v2), removed when dropped.
struct ContainerCgroup(PathBuf);

impl ContainerCgroup {
    fn create(id: &str) -> Self {
        let root = Path::new("/sys/fs/cgroup");
        let dir = if root.join("cgroup.procs").exists() {
            root.join(format!("tracer-test-{}", std::process::id()))
                .join(format!("docker-{id}.scope"))
        } else {
            root.join("pids")
                .join(format!("tracer-test-{}", std::process::id()))
                .join(id)
        };
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
        Self(dir)
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The value of the series of `name` whose labels include all of `labels`, if exported.
fn metric(address: SocketAddr, name: &str, labels: &[&str]) -> Option<f64> {
    let (_, text) = http_get(address, "/metrics").ok()?;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(series, _)| {
            series.split('{').next() == Some(name)
                && labels.iter().all(|label| series.contains(label))
        })
        .map(|(_, value)| value.parse().unwrap())
}

/// Whether the JSON report file holds a race report of process `pid`.
fn race_reported(reports: &Path, pid: u32) -> bool {
    std::fs::read_to_string(reports).is_ok_and(|text| {
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .any(|record| record["type"] == "race" && record["pid"] == pid)
    })
}

/// Makes a traced fixture race (see its `race` command).
fn race(target: &mut LoopingTarget) {
    target.send("race");
    assert_eq!(target.next_line(), "raced");
}

#[test]
fn the_node_agent_follows_processes_as_they_come_and_go() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let built = built_fixture("nodeagent", "1.26.6", Variant::Default);
    // A name no other process on the machine has.
    let name = format!("nodeagent-{}", std::process::id());
    let binary = dir.path().join(&name);
    std::fs::copy(&built, &binary).unwrap();
    let reports = dir.path().join("races.json");

    let mut tracer = tracer()
        .args(["attach", "--exe", &name, "--metrics-addr", "127.0.0.1:0"])
        .args(["--format", "json", "--output"])
        .arg(&reports)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, receiver) = mpsc::channel();
    let stderr = BufReader::new(tracer.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Lines(receiver, Vec::new());
    let running = lines.wait("what is watched", |line| {
        line.strip_prefix(&format!("tracer: watching for {name}: "))
            .map(str::to_owned)
    });
    assert_eq!(running, "0 running now");
    let metrics = lines.wait("the metrics address", announced_metrics_address);
    let descriptors_before = open_descriptors(tracer.id());
    let traced_pid = |line: &str| {
        line.strip_prefix("tracer: tracing pid ")?
            .split_once(' ')?
            .0
            .parse::<u32>()
            .ok()
    };

    // First process: found as it starts, traced, its race reported and counted.
    let first = LoopingTarget::start(&binary);
    let mut first = first;
    let first_pid = first.pid;
    assert_eq!(
        lines.wait("the first process traced", traced_pid),
        first_pid
    );
    race(&mut first);
    wait_for("the first process's race", FOUND, || {
        race_reported(&reports, first_pid)
    });
    let label = format!(r#"executable="{name}""#);
    let second_label = format!(r#"executable="{name}#2""#);
    wait_for("the first process's race counted", FOUND, || {
        metric(metrics, "tracer_distinct_races_total", &[&label]) == Some(1.0)
    });

    // Second process of the same program, while the first runs: a label of its own.
    let second = LoopingTarget::start(&binary);
    let mut second = second;
    let second_pid = second.pid;
    assert_eq!(
        lines.wait("the second process traced", traced_pid),
        second_pid
    );
    race(&mut second);
    wait_for("the second process's race", FOUND, || {
        race_reported(&reports, second_pid)
    });
    wait_for("the second process's race counted", FOUND, || {
        metric(metrics, "tracer_distinct_races_total", &[&second_label]) == Some(1.0)
    });
    assert_eq!(metric(metrics, "tracer_targets", &[]), Some(2.0));

    // The first one exits: its summary is written, its target is dropped.
    let (code, _) = first.finish();
    assert_eq!(code, Some(0));
    lines.wait("the first process's summary", |line| {
        (line == format!("tracer: --- pid {first_pid} ({name}) ---")).then_some(())
    });
    wait_for("one target left", FOUND, || {
        metric(metrics, "tracer_targets", &[]) == Some(1.0)
    });

    // A third one starts in a container's cgroup and namespaces: it takes the freed label, its
    // race adds to that label's count, and its container id labels its target.
    let cgroup = ContainerCgroup::create(CONTAINER);
    let mut in_container = Command::new("unshare");
    in_container
        .args(["--pid", "--mount", "--fork", "sh", "-c"])
        .arg(format!(
            r#"echo $$ > {}/cgroup.procs && exec "$0" loop"#,
            cgroup.0.display()
        ))
        .arg(&binary);
    let mut third = LoopingTarget::start_with(in_container);
    let third_pid = lines.wait("the containerised process traced", traced_pid);
    race(&mut third);
    assert!(
        ![first_pid, second_pid].contains(&third_pid),
        "{third_pid} was traced already"
    );
    wait_for("the third process's race", FOUND, || {
        race_reported(&reports, third_pid)
    });
    wait_for(
        "the third race counted under the freed label",
        FOUND,
        || metric(metrics, "tracer_distinct_races_total", &[&label]) == Some(2.0),
    );
    let container = format!(r#"container="{CONTAINER}""#);
    assert_eq!(
        metric(metrics, "tracer_target_info", &[&label, &container]),
        Some(1.0)
    );
    assert_eq!(
        metric(
            metrics,
            "tracer_target_info",
            &[&second_label, r#"container="""#]
        ),
        Some(1.0)
    );

    // Everything exits: no target left, and no descriptor of theirs either.
    let (code, _) = third.finish();
    assert_eq!(code, Some(0));
    let (code, _) = second.finish();
    assert_eq!(code, Some(0));
    wait_for("no target left", FOUND, || {
        metric(metrics, "tracer_targets", &[]) == Some(0.0)
    });
    wait_for("the targets' descriptors closed", FOUND, || {
        open_descriptors(tracer.id()) == descriptors_before
    });
    drop(cgroup);

    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let output = wait_with_timeout(tracer, "tracer to stop", Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(66), "{:#?}", lines.1);
    let summaries: Vec<u64> = json_lines(&reports)
        .into_iter()
        .filter(|record| record["type"] == "summary")
        .map(|record| record["pid"].as_u64().unwrap())
        .collect();
    let mut expected = vec![
        u64::from(first_pid),
        u64::from(second_pid),
        u64::from(third_pid),
    ];
    expected.sort_unstable();
    let mut summaries = summaries;
    summaries.sort_unstable();
    assert_eq!(summaries, expected);
}
