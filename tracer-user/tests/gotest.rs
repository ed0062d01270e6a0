//! tracer as a CI gate: `go test -exec 'tracer run --overhead-budget off --' ./...` runs every
//! test binary of a module under tracer (tests/fixtures/gotests: one package whose test races on
//! a map, one whose tests lock or order through a `testing/synctest` bubble's `Wait`). The racy package fails — its binary exits with status 66 after
//! its tests passed — with a report that names the racing functions and the test that started
//! them; the clean one passes.

mod common;

use std::process::Command;

use common::*;

#[test]
fn go_test_exec_fails_the_racy_package_and_passes_the_clean_one() {
    require_root();
    let module = repository().join("tracer-user/tests/fixtures/gotests");
    let exec = format!(
        "{} run --overhead-budget off --",
        env!("CARGO_BIN_EXE_tracer")
    );
    let output = Command::new(go("1.26.6"))
        .args(["test", "-count=1", "-exec", &exec, "./..."])
        .current_dir(&module)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", cache_dir().join("gocache"))
        .output()
        .expect("go runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    // `go test` prints one "<verdict>\t<package>\t<time>" line per package.
    let verdict = |package: &str| {
        let package = format!("example.com/gotests/{package}");
        stdout.lines().find_map(|line| {
            let mut fields = line.split('\t');
            let verdict = fields.next()?.trim();
            (fields.next()? == package).then(|| verdict.to_owned())
        })
    };
    assert_eq!(verdict("clean").as_deref(), Some("ok"), "{stdout}");
    assert_eq!(verdict("racy").as_deref(), Some("FAIL"), "{stdout}");
    // The racy package's own tests passed: the failure is tracer's exit status.
    assert!(stdout.contains("PASS"), "{stdout}");
    assert_eq!(stdout.matches("WARNING: DATA RACE").count(), 1, "{stdout}");
    for named in [
        "example.com/gotests/racy.Fill.func1",
        "example.com/gotests/racy.Fill.func2",
        "example.com/gotests/racy.TestFillFromTwoGoroutines",
    ] {
        assert!(stdout.contains(named), "{named} not in {stdout}");
    }
}
