//! `tracer attach` to a running Go program: it stops on SIGINT, on `--duration` and when the
//! target exits, removes every probe when it stops, and leaves the target working normally.

mod common;

use std::{
    fs::File,
    os::unix::fs::FileExt as _,
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use common::*;
use tracer::{gobin::GoBinary, plan::plan};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The first byte of every probed instruction (runtime entries and returns, inlined sync
/// sites), as the target's memory holds it now.
fn probed_bytes(pid: u32, binary: &Path) -> Vec<(u64, u8)> {
    let go_binary = GoBinary::open(binary, binary).unwrap();
    let memory = File::open(format!("/proc/{pid}/mem")).unwrap();
    let plan = plan(&go_binary);
    let addresses = plan.sites.iter().map(|site| site.address);
    let sync = plan.sync_sites.iter().map(|site| site.probe);
    addresses
        .chain(sync)
        .map(|address| {
            let mut byte = [0u8];
            memory.read_exact_at(&mut byte, address).unwrap();
            (address, byte[0])
        })
        .collect()
}

const INT3: u8 = 0xcc;

fn attach(pid: u32, events: &Path, extra: &[&str]) -> Child {
    tracer()
        .args(["attach", "--pid", &pid.to_string(), "--events"])
        .arg(events)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Attaches to `pid` and waits until at least `events_wanted` events were written to `events`.
fn attach_and_see_events(pid: u32, events: &Path, events_wanted: usize) -> Child {
    let tracer = attach(pid, events, &[]);
    wait_for("traced events", TIMEOUT, || {
        line_count(events) >= events_wanted
    });
    tracer
}

/// Sends `signal` to a tracer process and returns its output once it has stopped.
fn stop(tracer: Child, signal: i32) -> (Option<i32>, String) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, signal) };
    let output = wait_with_timeout(tracer, "tracer to stop after a signal", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

fn all_bytes_are(bytes: &[(u64, u8)], value: u8) -> bool {
    bytes.iter().all(|&(_, byte)| byte == value)
}

fn no_breakpoint(bytes: &[(u64, u8)]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&(_, byte)| byte != INT3)
}

fn build_looping_fixture(version: &str, dir: &Path) -> std::path::PathBuf {
    build_fixture(&go(version), "mapwrites", dir, &[])
}

fn detach_on_sigint_leaves_target_healthy(version: &str) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture(version, dir.path());
    let target = LoopingTarget::start(&binary);
    let before = probed_bytes(target.pid, &binary);
    assert!(no_breakpoint(&before), "go{version}: {before:x?}");

    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(target.pid, &events, 1000);
    let during = probed_bytes(target.pid, &binary);
    assert!(
        all_bytes_are(&during, INT3),
        "go{version}: probes not in place while tracing: {during:x?}"
    );

    let (code, stderr) = stop(tracer, libc::SIGINT);
    assert_eq!(code, Some(0), "go{version}: {stderr}");
    assert!(
        stderr.contains("stopped (interrupted); all probes removed"),
        "{stderr}"
    );

    let after = probed_bytes(target.pid, &binary);
    assert_eq!(
        after, before,
        "go{version}: original instructions not restored"
    );
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "go{version}: target after detach: {rest}");
    assert!(
        rest.starts_with("ok "),
        "go{version}: target after detach: {rest}"
    );
}

#[test]
fn sigint_detaches_and_target_stays_healthy_go1_21() {
    detach_on_sigint_leaves_target_healthy("1.21.13");
}

#[test]
fn sigint_detaches_and_target_stays_healthy_go1_27() {
    detach_on_sigint_leaves_target_healthy("1.27.3");
}

#[test]
fn duration_ends_the_session() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.26.6", dir.path());
    let target = LoopingTarget::start(&binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach(target.pid, &events, &["--duration", "500ms"]);
    let output = wait_with_timeout(tracer, "tracer to stop after --duration", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped (duration reached)"), "{stderr}");
    assert!(line_count(&events) > 0, "{stderr}");
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "{rest}");
}

#[test]
fn target_exit_ends_the_session() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.24.11", dir.path());
    let target = LoopingTarget::start(&binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(target.pid, &events, 100);
    let (code, _) = target.finish();
    assert_eq!(code, Some(0));
    let output = wait_with_timeout(tracer, "tracer to stop after the target's exit", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("exited); all probes removed"), "{stderr}");
}

#[test]
fn run_passes_on_the_exit_status_and_signals() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.25.5", dir.path());
    // An unknown mode makes the fixture exit 2 straight away.
    let output = tracer()
        .arg("run")
        .arg(&binary)
        .arg("bogus-mode")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // SIGTERM to tracer reaches the program (the Go runtime dies of it: 128 + 15).
    let events = dir.path().join("events.jsonl");
    let run = tracer()
        .args(["run", "--events"])
        .arg(&events)
        .arg("--")
        .arg(&binary)
        .arg("loop")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("traced events", TIMEOUT, || line_count(&events) >= 100);
    let (code, stderr) = stop(run, libc::SIGTERM);
    assert_eq!(code, Some(128 + libc::SIGTERM), "{stderr}");
    assert!(stderr.contains("exited); all probes removed"), "{stderr}");
}

#[test]
fn only_the_target_process_is_traced() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.23.9", dir.path());
    // Two processes of the same executable: only the one attached to may produce events.
    let traced = LoopingTarget::start(&binary);
    let bystander = LoopingTarget::start(&binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(traced.pid, &events, 500);
    let bystander_bytes = probed_bytes(bystander.pid, &binary);
    assert!(
        no_breakpoint(&bystander_bytes),
        "breakpoints placed in a process that is not traced: {bystander_bytes:x?}"
    );
    let (code, stderr) = stop(tracer, libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&events).unwrap();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["type"] == "stack" {
            continue;
        }
        assert_eq!(event["pid"], traced.pid, "event of another process: {line}");
    }
    for target in [traced, bystander] {
        let (code, rest) = target.finish();
        assert_eq!(code, Some(0), "{rest}");
    }
}

/// tracer killed with SIGKILL cannot clean up: the kernel removes its probes when the last
/// descriptor of their link closes, and the target goes on unharmed.
#[test]
fn a_killed_tracer_leaves_the_target_healthy() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.27.3", dir.path());
    let target = LoopingTarget::start(&binary);
    let before = probed_bytes(target.pid, &binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(target.pid, &events, 1000);
    assert!(all_bytes_are(&probed_bytes(target.pid, &binary), INT3));
    let (code, _) = stop(tracer, libc::SIGKILL);
    assert_eq!(code, None, "killed by a signal");
    wait_for("the kernel to remove the probes", TIMEOUT, || {
        probed_bytes(target.pid, &binary) == before
    });
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "target after tracer was killed: {rest}");
    assert!(
        rest.starts_with("ok "),
        "target after tracer was killed: {rest}"
    );
}

/// Two tracers on one process trace it independently: each gets every event, and stopping one
/// leaves the other's probes in place.
#[test]
fn two_tracers_on_one_process_are_independent() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.27.3", dir.path());
    let target = LoopingTarget::start(&binary);
    let before = probed_bytes(target.pid, &binary);
    let first_events = dir.path().join("first.jsonl");
    let second_events = dir.path().join("second.jsonl");
    let first = attach_and_see_events(target.pid, &first_events, 1000);
    let second = attach_and_see_events(target.pid, &second_events, 1000);
    let (code, stderr) = stop(second, libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(all_bytes_are(&probed_bytes(target.pid, &binary), INT3));
    let seen = line_count(&first_events);
    wait_for("the first tracer to go on", TIMEOUT, || {
        line_count(&first_events) > seen + 1000
    });
    let (code, stderr) = stop(first, libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(probed_bytes(target.pid, &binary), before);
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "target after two tracers: {rest}");
}
