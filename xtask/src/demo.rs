//! `cargo xtask demo`: build tracer (release) and the bundled demo Go service, then run the
//! service under `tracer run` so its map writes stream by.

use std::process::Command;

use anyhow::bail;

use crate::{
    setup::{Environment, DEMO_GO_VERSION},
    shell::{self, workspace_root},
};

pub fn run(environment: &Environment) -> anyhow::Result<()> {
    shell::run(Command::new("cargo").args(["build", "--release", "--package", "tracer-user"]))?;
    let root = workspace_root();
    let build_dir = root.join("target/demo");
    std::fs::create_dir_all(&build_dir)?;
    let demo = build_dir.join("demo");
    shell::run(
        Command::new(environment.go(DEMO_GO_VERSION))
            .args(["build", "-o"])
            .arg(&demo)
            .arg(".")
            .current_dir(root.join("examples/demo"))
            .envs(go_environment(environment)),
    )?;
    let events = build_dir.join("events.jsonl");
    eprintln!(
        "xtask: tracing the demo service; every event is also written to {}",
        events.display()
    );
    let mut tracer = Command::new(root.join("target/release/tracer"));
    tracer
        .args(["run", "--stats-interval", "1s", "--events"])
        .arg(&events)
        .arg("--")
        .arg(&demo);
    eprintln!("xtask: $ {}", shell::describe(&tracer));
    let status = tracer.status()?;
    match status.code() {
        Some(66) => {
            eprintln!(
                "xtask: tracer reported the demo's data race (exit status 66, as with -race)"
            );
            Ok(())
        }
        Some(0) => {
            eprintln!("xtask: the demo ran without tracer seeing its race this time");
            Ok(())
        }
        _ => bail!("tracer failed: {status}"),
    }
}

/// Offline, reproducible Go builds: standard library only, toolchain as installed.
pub fn go_environment(environment: &Environment) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("GOTOOLCHAIN", "local".into()),
        ("GOPROXY", "off".into()),
        ("GOFLAGS", "-mod=mod".into()),
        (
            "GOCACHE",
            environment.cache_dir.join("gocache").into_os_string(),
        ),
    ]
}
