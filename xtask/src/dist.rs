//! `cargo xtask dist`: a statically linked `tracer` (the eBPF object is embedded in it) for
//! machines with no Rust, no Go and no bpf-linker, in `target/dist/tracer`. It is checked the
//! way it will be used: its ELF has no interpreter, it analyses a Go program inside an empty root
//! that holds only the two binaries, and it traces the demo service from the host.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

use crate::{
    demo::go_build,
    setup::Environment,
    shell::{self, workspace_root},
};

/// The host target, named so that the static flag applies to it only (not to build scripts,
/// nor to the eBPF crate that tracer's build script builds).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The Go version the checks build the demo with.
const CHECK_GO: &str = "1.26.6";

pub fn run(environment: &Environment) -> anyhow::Result<()> {
    let binary = build()?;
    if has_interpreter(&std::fs::read(&binary)?)? {
        bail!("{}: still dynamically linked", binary.display());
    }
    let demo = build_demo(environment)?;
    inspect_in_empty_root(&binary, &demo)?;
    trace_the_demo(&binary, &demo)?;
    let size = std::fs::metadata(&binary)?.len();
    eprintln!(
        "xtask: {} ({:.1} MB, static) is ready; deploy/Containerfile packages it",
        binary.display(),
        size as f64 / 1e6
    );
    Ok(())
}

fn build() -> anyhow::Result<PathBuf> {
    shell::run(
        Command::new("cargo")
            .args(["build", "--release", "--package", "tracer-user"])
            .args(["--bin", "tracer", "--target", TARGET])
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                "-C target-feature=+crt-static",
            ),
    )?;
    let built = workspace_root()
        .join("target")
        .join(TARGET)
        .join("release/tracer");
    let dist = workspace_root().join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let binary = dist.join("tracer");
    std::fs::copy(&built, &binary)
        .with_context(|| format!("copying {} to {}", built.display(), binary.display()))?;
    Ok(binary)
}

/// Whether a 64-bit little-endian ELF executable names a program interpreter (the dynamic
/// loader): a program header of type `PT_INTERP`.
fn has_interpreter(elf: &[u8]) -> anyhow::Result<bool> {
    const PT_INTERP: u32 = 3;
    let field = |at: usize, width: usize| -> anyhow::Result<u64> {
        let bytes = elf.get(at..at + width).context("truncated ELF header")?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0, |value, &byte| value << 8 | u64::from(byte)))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        bail!("not a 64-bit ELF file");
    }
    let headers = usize::try_from(field(0x20, 8)?)?;
    let size = usize::try_from(field(0x36, 2)?)?;
    let count = usize::try_from(field(0x38, 2)?)?;
    for index in 0..count {
        if field(headers + index * size, 4)? == u64::from(PT_INTERP) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn build_demo(environment: &Environment) -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("target/dist-check");
    std::fs::create_dir_all(&dir)?;
    let demo = dir.join("demo");
    go_build(
        environment,
        CHECK_GO,
        &workspace_root().join("examples/demo"),
        &demo,
        &[],
    )?;
    Ok(demo)
}

/// `tracer --version` and `tracer inspect` inside a root that holds nothing but the two
/// binaries: no loader, no libc, no toolchain.
fn inspect_in_empty_root(binary: &Path, demo: &Path) -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("tracer-dist-root-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let result = (|| {
        std::fs::copy(binary, root.join("tracer"))?;
        std::fs::copy(demo, root.join("demo"))?;
        shell::run(
            Command::new("chroot")
                .arg(&root)
                .args(["/tracer", "--version"]),
        )?;
        let output = Command::new("chroot")
            .arg(&root)
            .args(["/tracer", "inspect", "/demo"])
            .output()
            .context("running chroot")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !text.contains(&format!("go{CHECK_GO}")) {
            bail!(
                "tracer inspect in an empty root: {}{text}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        eprintln!("xtask: tracer inspect works in an empty root");
        Ok(())
    })();
    std::fs::remove_dir_all(&root)?;
    result
}

/// The static binary loads its embedded kernel programs and finds the demo's race.
fn trace_the_demo(binary: &Path, demo: &Path) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args([
            "run",
            "--overhead-budget",
            "off",
            "--output",
            "/dev/null",
            "--",
        ])
        .arg(demo)
        .args(["-duration", "3s"])
        .output()
        .context("running the static tracer")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() != Some(66) {
        bail!("the static tracer did not report the demo's race: {stderr}");
    }
    eprintln!("xtask: the static tracer traced the demo and reported its race");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_is_found_in_the_program_headers() {
        let own = std::fs::read("/proc/self/exe").unwrap();
        // The test binary is linked like any Rust binary here: dynamically.
        assert!(has_interpreter(&own).unwrap());
        assert!(has_interpreter(b"\x7fELF\x01").is_err());
        assert!(has_interpreter(b"MZ").is_err());
    }
}
