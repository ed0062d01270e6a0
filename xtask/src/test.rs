//! `cargo xtask test`: format check, clippy (userspace and kernel crates), unit tests, then the
//! integration tests, which load real eBPF programs into the kernel and so need root, then the
//! accuracy corpus on every Go version (`cargo xtask corpus`), a short run of every fuzz target,
//! a one-minute soak, and the static build of `cargo xtask dist` with its checks.

use std::{process::Command, time::Duration};

use anyhow::bail;

use crate::{corpus, dist, fuzz, setup::Environment, shell, soak};

/// Seconds each fuzz target runs in the test (a smoke test; `cargo xtask fuzz` goes longer).
const FUZZ_SECONDS: u64 = 20;

/// Time the integration tests get once built (they take about 5 minutes on two cores).
const INTEGRATION_TEST_LIMIT: Duration = Duration::from_secs(30 * 60);

pub fn run(environment: &Environment) -> anyhow::Result<()> {
    shell::run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    shell::run(Command::new("cargo").args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    shell::run(Command::new("cargo").args([
        "+nightly",
        "clippy",
        "--package",
        "tracer-ebpf",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ]))?;
    shell::run(Command::new("cargo").args(["test", "--lib", "--bins"]))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the integration tests load eBPF programs and attach uprobes: run `cargo xtask test` as root");
    }
    // Optimised: a debug build of tracer cannot keep up with a busy traced program, and the race
    // tests assert that no event was dropped. Built first, so that the limit counts the tests only.
    let integration_tests = || {
        let mut command = Command::new("cargo");
        command
            .args([
                "test",
                "--release",
                "--package",
                "tracer-user",
                "--test",
                "*",
            ])
            .env("TRACER_CACHE_DIR", &environment.cache_dir);
        command
    };
    shell::run(integration_tests().arg("--no-run"))?;
    shell::run_within(&mut integration_tests(), INTEGRATION_TEST_LIMIT)?;
    corpus::run(environment, &[], None)?;
    fuzz::run(environment, FUZZ_SECONDS, None)?;
    soak::run(environment, 1)?;
    dist::run(environment)
}
