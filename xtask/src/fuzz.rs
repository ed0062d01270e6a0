//! `cargo xtask fuzz [--seconds N]`: runs every fuzz target of `fuzz/` (cargo-fuzz, libFuzzer)
//! for a bounded time each, from seeds made here: real Go executables of the oldest and newest
//! supported versions (default and stripped), their `.go.buildinfo` sections, a kernel record and
//! a small `--events` recording. A crash fails the task and leaves its input in
//! `fuzz/artifacts/TARGET/`; the error names libFuzzer's seed, which replays the run on another
//! machine (`--seed N`, with `fuzz/corpus` removed first: the inputs kept by earlier runs change
//! what is tried).

use std::{path::Path, process::Command};

use anyhow::Context as _;

use crate::{demo::go_build, setup::Environment, shell};

/// The fuzz targets (fuzz/fuzz_targets/*.rs).
const TARGETS: [&str; 4] = ["go_binary", "build_info", "event_record", "recording"];

/// Go versions whose executables seed `go_binary` and `build_info`.
const SEED_GO_VERSIONS: [&str; 2] = ["1.21.13", "1.27.3"];

pub fn run(environment: &Environment, seconds: u64, seed: Option<u32>) -> anyhow::Result<()> {
    let fuzz_dir = shell::workspace_root().join("fuzz");
    write_seeds(environment, &fuzz_dir.join("corpus"))?;
    // A run that fails in CI is gone with its machine: its seed (with the same seed inputs,
    // which are built here from the repository) replays it elsewhere.
    let seed = seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        // Never 0, which would make libFuzzer draw a seed of its own.
        now.map_or(1, |now| now.subsec_nanos() | 1)
    });
    eprintln!("xtask: fuzzing with -seed={seed}");
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
                .arg(format!("-seed={seed}"))
                .arg(format!("-max_len={max_len}"))
                .args(["-rss_limit_mb=4096", "-timeout=60", "-print_final_stats=1"]),
        )
        .with_context(|| {
            format!(
                "fuzz target {target} failed (see fuzz/artifacts/{target}/; \
                 `cargo xtask fuzz --seconds {seconds} --seed {seed}` replays the run)"
            )
        })?;
    }
    Ok(())
}

/// Writes the seed inputs of every target into `corpus/TARGET/`.
fn write_seeds(environment: &Environment, corpus: &Path) -> anyhow::Result<()> {
    let dir = |target: &str| -> anyhow::Result<std::path::PathBuf> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    let fixture = shell::workspace_root().join("tracer-user/tests/fixtures/mapwrites");
    for version in SEED_GO_VERSIONS {
        // -trimpath: the same bytes from any checkout, so that a seed replays a run elsewhere.
        let shapes = [
            ("default", &["-trimpath"][..]),
            ("stripped", &["-trimpath", "-ldflags=-s -w"][..]),
        ];
        for (shape, flags) in shapes {
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
