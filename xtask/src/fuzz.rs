//! `cargo xtask fuzz [--seconds N]`: runs every fuzz target of `fuzz/` (cargo-fuzz, libFuzzer)
//! for a bounded time each, from seeds made here: real Go executables of the oldest and newest
//! supported versions (default and stripped), their `.go.buildinfo` sections, a kernel record and
//! a small `--events` recording. A crash fails the task and leaves its input in
//! `fuzz/artifacts/TARGET/`.

use std::{path::Path, process::Command};

use anyhow::Context as _;

use crate::{demo::go_build, setup::Environment, shell};

/// The fuzz targets (fuzz/fuzz_targets/*.rs).
const TARGETS: [&str; 4] = ["go_binary", "build_info", "event_record", "recording"];

/// Go versions whose executables seed `go_binary` and `build_info`.
const SEED_GO_VERSIONS: [&str; 2] = ["1.21.13", "1.27.3"];

pub fn run(environment: &Environment, seconds: u64) -> anyhow::Result<()> {
    let fuzz_dir = shell::workspace_root().join("fuzz");
    seed(environment, &fuzz_dir.join("corpus"))?;
    for target in TARGETS {
        // Executables are megabytes: let libFuzzer keep inputs that large.
        let max_len = if target == "go_binary" {
            8 << 20
        } else {
            1 << 16
        };
        shell::run(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
                .arg(&fuzz_dir)
                .arg(target)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-max_len={max_len}"))
                .args(["-rss_limit_mb=4096", "-timeout=60", "-print_final_stats=1"]),
        )
        .with_context(|| format!("fuzz target {target} failed (see fuzz/artifacts/{target}/)"))?;
    }
    Ok(())
}

/// Writes the seed inputs of every target into `corpus/TARGET/`.
fn seed(environment: &Environment, corpus: &Path) -> anyhow::Result<()> {
    let dir = |target: &str| -> anyhow::Result<std::path::PathBuf> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    let fixture = shell::workspace_root().join("tracer-user/tests/fixtures/mapwrites");
    for version in SEED_GO_VERSIONS {
        for (shape, flags) in [("default", &[][..]), ("stripped", &["-ldflags=-s -w"][..])] {
            let executable = dir("go_binary")?.join(format!("mapwrites-{version}-{shape}"));
            if !executable.exists() {
                go_build(environment, version, &fixture, &executable, flags)?;
            }
            let section = dir("build_info")?.join(format!("buildinfo-{version}-{shape}"));
            shell::run(
                Command::new("objcopy")
                    .args(["-O", "binary", "--only-section=.go.buildinfo"])
                    .arg(&executable)
                    .arg(&section),
            )?;
        }
    }
    // One assign record (kind 1) as the kernel writes it, key class u64.
    let mut record = vec![0u8; size_of::<u64>() * 10];
    record[..8].copy_from_slice(&1u64.to_le_bytes());
    record[16..24].copy_from_slice(&0xc000_1000u64.to_le_bytes());
    record[60] = 1;
    record[61] = 2;
    std::fs::write(dir("event_record")?.join("assign"), record)?;
    std::fs::write(
        dir("recording")?.join("two-writers"),
        concat!(
            r#"{"type":"analysed-from","ts":1}"#,
            "\n",
            r#"{"type":"stack","id":1,"frames":[{"function":"main.f","file":"m.go","line":3}]}"#,
            "\n",
            r#"{"op":"assign","map":"0xc000010000","goroutine":1,"pid":1,"tid":1,"ts":2,"function":"runtime.mapassign_fast64","stack":1}"#,
            "\n",
            r#"{"op":"lock","object":"0x5a0010","acquired":true,"goroutine":2,"pid":1,"tid":2,"ts":3,"function":"main.g"}"#,
            "\n",
            r#"{"op":"assign","map":"0xc000010000","goroutine":2,"pid":1,"tid":2,"ts":4,"function":"runtime.mapassign_fast64","stack":1}"#,
            "\n",
        ),
    )?;
    Ok(())
}
