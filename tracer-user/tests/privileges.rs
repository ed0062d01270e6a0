//! The capabilities tracer really needs, verified by running it as an unprivileged user
//! (nobody) with chosen capabilities: CAP_BPF and CAP_PERFMON trace a process of the same user;
//! another user's process needs CAP_SYS_PTRACE as well; without one of them tracer stops with
//! status 84 and says what is missing.

mod common;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use common::*;

const NOBODY: &str = "65534";

/// `setpriv` options that switch to nobody with exactly `capabilities` (e.g. `+bpf,+perfmon`).
fn as_nobody(capabilities: &str) -> Command {
    let set = format!("-all{capabilities}");
    let mut command = Command::new("setpriv");
    command.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        &format!("--inh-caps={set}"),
        &format!("--ambient-caps={set}"),
        "--",
    ]);
    command
}

/// The looping fixture, started as nobody (no capabilities) or as root.
fn start_target(binary: &Path, nobody: bool) -> Child {
    let mut command = if nobody {
        let mut command = as_nobody("");
        command.arg(binary);
        command
    } else {
        Command::new(binary)
    };
    command
        .arg("loop")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the fixture's "ready" line and returns its pid (the process setpriv became).
fn ready_pid(target: &mut Child) -> String {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::BufReader::new(target.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.strip_prefix("ready ").unwrap().trim().to_owned()
}

fn attach_as_nobody(capabilities: &str, pid: &str) -> Output {
    as_nobody(capabilities)
        .arg(env!("CARGO_BIN_EXE_tracer"))
        .args(["attach", "--pid", pid, "--duration", "500ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The event count of the summary line (`tracer: traced for 0.50s: 1234 events (…`).
fn events_traced(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("tracer: traced for"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    line.split(": ")
        .nth(2)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn assert_missing(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(84), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
}

#[test]
fn the_documented_capabilities_suffice_and_each_is_needed() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    // nobody must be able to run the fixture.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = build_fixture(&go("1.24.11"), "mapwrites", dir.path(), &[]);

    let mut own = start_target(&binary, true);
    let pid = ready_pid(&mut own);
    let output = attach_as_nobody(",+bpf,+perfmon", &pid);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(events_traced(&stderr) > 0, "{stderr}");
    assert_missing(
        &attach_as_nobody(",+bpf", &pid),
        "CAP_PERFMON not in the effective",
    );
    assert_missing(
        &attach_as_nobody(",+perfmon", &pid),
        "CAP_BPF not in the effective",
    );

    let mut roots = start_target(&binary, false);
    let pid = ready_pid(&mut roots);
    assert_missing(
        &attach_as_nobody(",+bpf,+perfmon", &pid),
        "needs CAP_SYS_PTRACE",
    );
    let output = attach_as_nobody(",+bpf,+perfmon,+sys_ptrace", &pid);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(events_traced(&stderr) > 0, "{stderr}");

    for mut target in [own, roots] {
        drop(target.stdin.take());
        assert!(target.wait().unwrap().success());
    }
}
