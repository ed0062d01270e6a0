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
use tracer::{analyse::GoBinary, plan::plan};

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

/// Traced all the time: these tests check the probes while tracing, and under a budget a
/// loaded machine can close a window (removing them) between two checks.
fn attach(pid: u32, events: &Path, extra: &[&str]) -> Child {
    tracer()
        .args([
            "attach",
            "--overhead-budget",
            "off",
            "--pid",
            &pid.to_string(),
        ])
        .arg("--events")
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

/// Whether every site of `before` holds a breakpoint `now`: an `INT3`, or, on a 5-byte NOP
/// whose probe has been hit, the `CALL` into the kernel's uprobe trampoline that replaces it
/// (Linux 6.18 on).
fn all_probed(before: &[(u64, u8)], now: &[(u64, u8)]) -> bool {
    const NOP5_FIRST: u8 = 0x0f;
    const CALL: u8 = 0xe8;
    before.len() == now.len()
        && before
            .iter()
            .zip(now)
            .all(|(&(at, original), &(at_now, byte))| {
                at == at_now && (byte == INT3 || (original == NOP5_FIRST && byte == CALL))
            })
}

fn no_breakpoint(bytes: &[(u64, u8)]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&(_, byte)| byte != INT3)
}

/// The events of a recording, without its other lines (stacks, where the analysis starts).
fn recorded_events(path: &Path) -> Vec<serde_json::Value> {
    json_lines(path)
        .into_iter()
        .filter(|line| line.get("op").is_some())
        .collect()
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
        all_probed(&before, &during),
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
fn every_line_on_standard_error_starts_with_tracer() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.26.6", dir.path());
    let target = LoopingTarget::start(&binary);
    // Debug logging too: warnings and log lines follow the one output style.
    let tracer = tracer()
        .args([
            "attach",
            "--pid",
            &target.pid.to_string(),
            "--duration",
            "300ms",
        ])
        .env("RUST_LOG", "tracer=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_with_timeout(tracer, "tracer to stop after --duration", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("tracer: debug "), "no debug line: {stderr}");
    for line in stderr.lines() {
        assert!(line.starts_with("tracer: "), "{line:?} in {stderr}");
    }
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
    for event in recorded_events(&events) {
        assert_eq!(
            event["pid"], traced.pid,
            "event of another process: {event}"
        );
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
    assert!(all_probed(&before, &probed_bytes(target.pid, &binary)));
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
    assert!(all_probed(&before, &probed_bytes(target.pid, &binary)));
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

/// The target replaces its program (here with itself): tracer sees the `execve` in the event
/// stream right after the old program's last event, stops tracing there (what follows is
/// another program) and removes its probes; the new program runs unprobed.
#[test]
fn an_exec_ends_the_trace() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.26.6", dir.path());
    let mut target = LoopingTarget::start(&binary);
    let before = probed_bytes(target.pid, &binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(target.pid, &events, 1000);
    target.send("exec");
    let ready = target.next_line();
    assert_eq!(
        ready.trim(),
        format!("ready {}", target.pid),
        "the new program"
    );
    let output = wait_with_timeout(tracer, "tracer to stop after the exec", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let expected = format!(
        "stopped (pid {} replaced its program with execve); all probes removed",
        target.pid
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The recording holds integer map keys: readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&events).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let recorded = recorded_events(&events);
    let execs: Vec<usize> = (0..recorded.len())
        .filter(|&index| recorded[index]["op"] == "exec")
        .collect();
    assert_eq!(execs, [recorded.len() - 1], "one exec, the last event");
    assert_eq!(probed_bytes(target.pid, &binary), before);
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "the new program: {rest}");
    assert!(rest.starts_with("ok "), "the new program: {rest}");
}

/// Children of the target are not traced and run unharmed: os/exec's fork and exec, and a bare
/// fork whose copy of the program — breakpoints included — reads a map through a probed
/// runtime function before it exits with the value read.
#[test]
fn children_of_the_target_are_not_traced_and_unharmed() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.27.3", dir.path());
    let mut target = LoopingTarget::start(&binary);
    let events = dir.path().join("events.jsonl");
    let tracer = attach_and_see_events(target.pid, &events, 1000);
    target.send("spawn");
    assert_eq!(target.next_line().trim(), "spawned");
    target.send("fork");
    assert_eq!(target.next_line().trim(), "forked 49", "the forked child");
    let (code, stderr) = stop(tracer, libc::SIGINT);
    assert_eq!(code, Some(0), "{stderr}");
    for event in recorded_events(&events) {
        assert_eq!(
            event["pid"], target.pid,
            "event of another process: {event}"
        );
    }
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "{rest}");
}

/// The state letter of `/proc/PID/stat`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A target killed with SIGKILL becomes a zombie until its parent (this test) reaps it: tracer
/// ends the session as for any exit, and refuses to attach to the zombie.
#[test]
fn a_killed_target_ends_the_session_and_its_zombie_is_refused() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.25.5", dir.path());
    let target = LoopingTarget::start(&binary);
    let events = dir.path().join("events.jsonl");
    let session = attach_and_see_events(target.pid, &events, 1000);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(target.pid as i32, libc::SIGKILL) };
    let output = wait_with_timeout(session, "tracer to stop after the kill", TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("stopped (pid {} exited)", target.pid)),
        "{stderr}"
    );
    wait_for("the target to be a zombie", TIMEOUT, || {
        process_state(target.pid) == Some('Z')
    });
    let output = tracer()
        .args(["attach", "--pid", &target.pid.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(80), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("tracer: process {} has exited", target.pid)
    );
}

/// Makes the next process created get `pid` (the kernel hands out `ns_last_pid + 1`); returns
/// whether the spawned process did get it (another process may have been created in between).
fn spawn_with_pid(pid: u32, binary: &Path) -> (LoopingTarget, bool) {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
    let target = LoopingTarget::start(binary);
    let reused = target.pid == pid;
    (target, reused)
}

/// A session follows the process, not its pid: when the target exits and a new process gets
/// its pid (forced through ns_last_pid), tracer stops and never probes the newcomer.
#[test]
fn a_reused_pid_is_not_traced() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.24.11", dir.path());
    let mut reused = false;
    for _attempt in 0..20 {
        let target = LoopingTarget::start(&binary);
        let pid = target.pid;
        let events = dir.path().join("events.jsonl");
        let tracer = attach_and_see_events(pid, &events, 100);
        drop(target); // killed and reaped: the pid is free
        let (newcomer, same_pid) = spawn_with_pid(pid, &binary);
        let output = wait_with_timeout(tracer, "tracer to stop after the exit", TIMEOUT);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!("stopped (pid {pid} exited)")),
            "{stderr}"
        );
        assert!(
            no_breakpoint(&probed_bytes(newcomer.pid, &binary)),
            "the newcomer was probed"
        );
        for event in recorded_events(&events) {
            assert_eq!(event["pid"], pid, "{event}");
        }
        let (code, rest) = newcomer.finish();
        assert_eq!(code, Some(0), "{rest}");
        if same_pid {
            reused = true;
            break;
        }
    }
    assert!(reused, "no attempt got the pid reused");
}

/// Ctrl-C while tracer is still analysing and attaching: it stops at its next step with a clear
/// message and status 130, and leaves no probe behind (or, if the probes were all in place
/// already, ends the session as usual).
#[test]
fn ctrl_c_while_attaching_leaves_nothing_behind() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.23.9", dir.path());
    let target = LoopingTarget::start(&binary);
    let before = probed_bytes(target.pid, &binary);
    let tracer = attach(target.pid, &dir.path().join("events.jsonl"), &[]);
    // The first thing tracer does is to pin the target with a pidfd.
    let fds = format!("/proc/{}/fd", tracer.id());
    wait_for("tracer to pin the target", TIMEOUT, || {
        std::fs::read_dir(&fds).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                std::fs::read_link(entry.path())
                    .is_ok_and(|link| link.to_string_lossy().contains("pidfd"))
            })
        })
    });
    let (code, stderr) = stop(tracer, libc::SIGINT);
    match code {
        Some(130) => assert_eq!(
            stderr.trim(),
            "tracer: interrupted before tracing started; no probe was left in place"
        ),
        Some(0) => assert!(stderr.contains("stopped (interrupted)"), "{stderr}"),
        other => panic!("exit status {other:?}: {stderr}"),
    }
    assert_eq!(probed_bytes(target.pid, &binary), before);
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "{rest}");
}

/// A process in another mount namespace, as in a container: its executable exists only there,
/// at a path that means nothing outside. tracer reaches it through `/proc/PID/exe`, traces it,
/// and names it by the path the process sees.
#[test]
fn a_process_in_another_mount_namespace_is_traced() {
    use std::io::{BufRead as _, BufReader};
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_looping_fixture("1.22.10", dir.path());
    let hidden = dir.path().join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    let app = hidden.join("app");
    // A private mount namespace where a tmpfs covers `hidden`; the fixture runs from there.
    let script = format!(
        "mount -t tmpfs tracer-test {hidden} && cp {binary} {app} && exec {app} loop",
        hidden = hidden.display(),
        binary = binary.display(),
        app = app.display()
    );
    let mut target = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(target.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line
        .strip_prefix("ready ")
        .expect("ready line")
        .trim()
        .to_owned();
    assert!(
        !app.exists(),
        "the executable must not be visible outside its namespace"
    );

    let output = tracer()
        .args(["attach", "--pid", &pid, "--duration", "500ms"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("tracing pid {pid} ({}, go1.22.10)", app.display())),
        "{stderr}"
    );
    assert!(!stderr.contains(" 0 events"), "{stderr}");
    let inspected = tracer().args(["inspect", "--pid", &pid]).output().unwrap();
    assert!(inspected.status.success(), "{inspected:?}");

    drop(target.stdin.take());
    assert!(target.wait().unwrap().success());
}
