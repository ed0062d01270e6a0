//! Bad input gets one clear line on standard error and its own exit status, never a panic
//! (the statuses are documented in docs/cli.md and `tracer --help`).

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

/// Asserts `output` is a failure with `code` and exactly one line, containing `needle`.
fn assert_one_line_error(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("tracer: "), "{stderr:?}");
    assert!(stderr.contains(needle), "{stderr:?} lacks {needle:?}");
}

#[test]
fn no_such_pid() {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Pids are always below pid_max.
    let output = tracer()
        .args(["attach", "--pid", &pid_max.to_string()])
        .output()
        .unwrap();
    assert_one_line_error(&output, 80, &format!("no process with pid {pid_max}"));
}

#[test]
fn a_process_that_is_not_go() {
    require_root();
    let mut sleep = Command::new("sleep").arg("600").spawn().unwrap();
    let output = tracer()
        .args(["attach", "--pid", &sleep.id().to_string()])
        .output()
        .unwrap();
    sleep.kill().unwrap();
    sleep.wait().unwrap();
    assert_one_line_error(&output, 81, "not a Go program");
}

#[test]
fn a_file_that_is_not_go() {
    require_root();
    let output = tracer().args(["run", "--", "true"]).output().unwrap();
    assert_one_line_error(&output, 81, "not a Go program");
}

#[test]
fn go_older_than_1_21() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let old = build_fixture(std::path::Path::new(OLD_GO), "oldgo", dir.path(), &[]);
    let output = tracer().arg("run").arg(&old).output().unwrap();
    assert_one_line_error(&output, 82, "built with go1.19");
    // It must not have been started.
    assert!(output.stdout.is_empty());
}

#[test]
fn a_go_program_for_another_architecture() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let arm64 = go_build(
        &go("1.27.3"),
        &repository().join("tracer-user/tests/fixtures/oldgo"),
        &dir.path().join("arm64"),
        &[],
        &[("GOARCH", "arm64")],
    );
    let output = tracer().arg("inspect").arg(&arm64).output().unwrap();
    assert_one_line_error(&output, 83, "x86-64 only");
}

#[test]
fn missing_privileges() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.22.10"), "mapwrites", dir.path(), &[]);
    // Root without any capability (empty bounding set): what an unprivileged user has.
    let without_capabilities = |args: &[&std::ffi::OsStr]| -> Output {
        Command::new("setpriv")
            .args(["--bounding-set=-all", "--inh-caps=-all", "--"])
            .arg(env!("CARGO_BIN_EXE_tracer"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let output = without_capabilities(&["run".as_ref(), binary.as_os_str()]);
    assert_one_line_error(&output, 84, "CAP_BPF");
    assert!(
        output.stdout.is_empty(),
        "the program must not run untraced"
    );

    let target = LoopingTarget::start(&binary);
    let pid = target.pid.to_string();
    let output = without_capabilities(&["attach".as_ref(), "--pid".as_ref(), pid.as_ref()]);
    assert_one_line_error(&output, 84, "CAP_PERFMON");
    let (code, _) = target.finish();
    assert_eq!(code, Some(0));
}

#[test]
fn program_not_found_or_not_executable() {
    let output = tracer()
        .args(["run", "--", "/nonexistent/program"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 127, "cannot run /nonexistent/program");
    let file = tempfile::NamedTempFile::new().unwrap();
    let output = tracer().arg("run").arg(file.path()).output().unwrap();
    assert_one_line_error(&output, 126, "not executable");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["attach", "--pid", "not-a-number"][..],
        &["run"],
        &["attach"],
    ] {
        let output = tracer().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "tracer {args:?}");
    }
}

#[test]
fn pid_zero_and_negative_values_say_what_is_wrong() {
    for (args, reason) in [
        (&["attach", "--pid", "0"][..], "pid 0 is not a process"),
        (&["inspect", "--pid", "0"], "pid 0 is not a process"),
        (
            &["attach", "--pid", "1", "--overhead-budget", "-5%"],
            "the budget must be from 0.1% to 1000%",
        ),
        (
            &["attach", "--pid", "1", "--duration", "-1s"],
            "cannot be negative",
        ),
        (
            &["attach", "--pid", "1", "--sample", "-1s/2s"],
            "cannot be negative",
        ),
        (
            &["attach", "--pid", "1", "--buffer-size", "-4K"],
            "cannot be negative",
        ),
    ] {
        let output = tracer().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "tracer {args:?}: {stderr}");
        assert!(stderr.contains(reason), "tracer {args:?}: {stderr}");
    }
}

#[test]
fn inspecting_a_missing_file_says_it_is_missing() {
    let output = tracer()
        .args(["inspect", "/nonexistent/program"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 86, "/nonexistent/program: No such file");
}

#[test]
fn every_command_lists_the_exit_statuses_in_its_help() {
    for command in ["inspect", "attach", "run", "replay"] {
        let output = tracer().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{command}");
        for status in ["Exit status:", "66   a data race", "80   no such process"] {
            assert!(
                help.contains(status),
                "tracer {command} --help lacks {status:?}"
            );
        }
    }
}

#[test]
fn replay_of_something_that_is_not_a_recording() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "{\"op\":\"assign\"}\nnot json\n").unwrap();
    let output = tracer().arg("replay").arg(file.path()).output().unwrap();
    assert_one_line_error(&output, 87, ":1: not a tracer recording");
    let output = tracer()
        .args(["replay", "/nonexistent/recording"])
        .output()
        .unwrap();
    assert_one_line_error(&output, 86, "/nonexistent/recording");
}

#[test]
fn the_same_pid_twice_or_events_from_several() {
    let own = std::process::id().to_string();
    let twice = tracer()
        .args(["attach", "--pid", &own, "--pid", &own])
        .output()
        .unwrap();
    assert_one_line_error(&twice, 2, &format!("pid {own} is given twice"));
    let parent = std::os::unix::process::parent_id().to_string();
    let events = tracer()
        .args(["attach", "--pid", &own, "--pid", &parent, "--events", "x"])
        .output()
        .unwrap();
    assert_one_line_error(&events, 2, "--events records one process");
}

#[test]
fn a_metrics_address_in_use() {
    require_root();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.27.3"), "mapwrites", dir.path(), &[]);
    // Refused before the program starts: it never runs.
    let output = tracer()
        .args(["run", "--metrics-addr", &address, "--"])
        .arg(&binary)
        .output()
        .unwrap();
    assert_one_line_error(&output, 88, &format!("cannot serve metrics on {address}"));
    assert!(output.stdout.is_empty());
}

/// Truncated and corrupted Go executables: `inspect` either analyses them or fails with one
/// clear line (not a Go program, unsupported binary), never a panic or a hang.
#[test]
fn truncated_or_corrupted_executables() {
    let dir = tempfile::tempdir().unwrap();
    let original = build_fixture(&go("1.25.5"), "mapwrites", dir.path(), &[]);
    let data = std::fs::read(&original).unwrap();
    let mut damaged: Vec<(String, Vec<u8>)> = [64, 4096, data.len() / 2, data.len() - 4096]
        .into_iter()
        .map(|len| (format!("truncated to {len} bytes"), data[..len].to_vec()))
        .collect();
    // Every 97th byte of one eighth of the file inverted, one eighth at a time: each hits a
    // different part (headers, code, pclntab, build info, DWARF, section table).
    for eighth in 0..8 {
        let mut bytes = data.clone();
        let part = bytes.len() / 8;
        for at in (eighth * part..(eighth + 1) * part).step_by(97) {
            bytes[at] ^= 0xff;
        }
        damaged.push((format!("eighth {eighth} corrupted"), bytes));
    }
    for (what, bytes) in damaged {
        let path = dir.path().join("damaged");
        std::fs::write(&path, &bytes).unwrap();
        let output = tracer().arg("inspect").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        match output.status.code() {
            Some(0) => {}
            Some(81 | 83) => {
                assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
                assert!(stderr.starts_with("tracer: "), "{what}: {stderr}");
            }
            other => panic!("{what}: exit status {other:?}: {stderr}"),
        }
    }
}
