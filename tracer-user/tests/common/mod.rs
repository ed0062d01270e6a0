//! Helpers shared by the integration tests: Go toolchains installed by `cargo xtask setup`,
//! fixtures built from source, the `tracer` binary, and waiting on conditions with a timeout.
#![allow(dead_code)] // each test binary uses a different subset

pub mod dashboard;

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

/// Every supported Go version, as installed by `cargo xtask setup`.
pub const GO_VERSIONS: [&str; 7] = [
    "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// Defines one `#[test]` per supported Go version, `go1_21` … `go1_27`, each calling
/// `$check(version)`; use it inside a module named after what is checked.
#[macro_export]
macro_rules! test_each_go_version {
    ($check:path) => {
        #[test]
        fn go1_21() {
            $check("1.21.13")
        }
        #[test]
        fn go1_22() {
            $check("1.22.10")
        }
        #[test]
        fn go1_23() {
            $check("1.23.9")
        }
        #[test]
        fn go1_24() {
            $check("1.24.11")
        }
        #[test]
        fn go1_25() {
            $check("1.25.5")
        }
        #[test]
        fn go1_26() {
            $check("1.26.6")
        }
        #[test]
        fn go1_27() {
            $check("1.27.3")
        }
        #[test]
        fn every_supported_version_is_tested() {
            assert_eq!(
                ["1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"],
                $crate::common::GO_VERSIONS
            );
        }
    };
}

/// Debian's Go 1.19 (package golang-1.19-go): older than tracer supports.
pub const OLD_GO: &str = "/usr/lib/go-1.19/bin/go";

/// Where `cargo xtask setup` put the Go toolchains (same rule as xtask/src/setup.rs).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRACER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("tracer");
    }
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/tracer")
}

pub fn go(version: &str) -> PathBuf {
    let go = cache_dir().join("go").join(version).join("go/bin/go");
    assert!(
        go.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`)",
        go.display()
    );
    go
}

pub fn require_root() {
    // SAFETY: no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test loads eBPF programs: run it as root (cargo xtask test)"
    );
}

/// The repository's root (fixtures, the demo and the corpus live below it).
pub fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Builds the Go package in `source` with the `go` command into `output`, with extra build
/// flags and environment (e.g. `GOARCH`, `CGO_ENABLED`); offline and with a shared cache.
pub fn go_build(
    go: &Path,
    source: &Path,
    output: &Path,
    flags: &[&str],
    env: &[(&str, &str)],
) -> PathBuf {
    let result = Command::new(go)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(output)
        .arg(".")
        .current_dir(source)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", cache_dir().join("gocache"))
        .envs(env.iter().copied())
        .output()
        .expect("go runs");
    assert!(
        result.status.success(),
        "building {} with {}: {}",
        source.display(),
        go.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    output.to_owned()
}

/// Builds `tests/fixtures/<fixture>` with the `go` command into `dir`, with extra build flags.
pub fn build_fixture(go: &Path, fixture: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    let source = repository()
        .join("tracer-user/tests/fixtures")
        .join(fixture);
    go_build(go, &source, &dir.join(fixture), flags, &[])
}

/// Builds the demo service (examples/demo) with Go `version` into `dir`.
pub fn build_demo(version: &str, dir: &Path) -> PathBuf {
    let source = repository().join("examples/demo");
    go_build(
        &go(version),
        &source,
        &dir.join(format!("demo-{version}")),
        &[],
        &[],
    )
}

/// How a fixture is built: the three shapes of Go executables tracer must handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `go build`: static, with symbol table and DWARF.
    Default,
    /// `go build -ldflags=-s -w`: no symbol table, no DWARF.
    Stripped,
    /// `go build -buildmode=pie`: position independent.
    Pie,
}

impl Variant {
    pub const ALL: [Self; 3] = [Self::Default, Self::Stripped, Self::Pie];

    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Default => &[],
            Self::Stripped => &["-ldflags=-s -w"],
            Self::Pie => &["-buildmode=pie"],
        }
    }
}

/// `tests/fixtures/<fixture>` built with Go `version` as `variant`, once per test process
/// (later calls return the same file).
pub fn built_fixture(fixture: &str, version: &str, variant: Variant) -> PathBuf {
    use std::{collections::HashMap, sync::Mutex, sync::OnceLock};
    static BUILDS: OnceLock<(tempfile::TempDir, Mutex<HashMap<String, PathBuf>>)> = OnceLock::new();
    let (root, builds) = BUILDS.get_or_init(|| (tempfile::tempdir().unwrap(), Mutex::default()));
    let key = format!("{fixture}-{version}-{variant:?}");
    if let Some(path) = builds.lock().unwrap().get(&key) {
        return path.clone();
    }
    let dir = root.path().join(&key);
    std::fs::create_dir_all(&dir).unwrap();
    let path = build_fixture(&go(version), fixture, &dir, variant.flags());
    builds.lock().unwrap().insert(key, path.clone());
    path
}

/// The tracer binary, tracing all the time: the tests check what is seen, not the sampling
/// (tests/sampling.rs does, with an explicit `--overhead-budget`).
pub fn tracer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracer"));
    command.env("TRACER_OVERHEAD_BUDGET", "off");
    command
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes (then panics with `what`).
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit within `timeout` (killing it and panicking otherwise).
pub fn wait_with_timeout(mut child: Child, what: &str, timeout: Duration) -> Output {
    let mut status = None;
    wait_for(what, timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    child.wait_with_output().expect("collect output")
}

/// How long a looping fixture may take to answer a command or to exit.
const FIXTURE_TIMEOUT: Duration = Duration::from_secs(60);

/// A Go fixture running in `loop` mode: it writes maps until its standard input closes. Its
/// standard output is read by a thread of its own, so that every wait for a line has a deadline
/// and a stuck fixture fails the test instead of hanging it.
pub struct LoopingTarget {
    pub child: Child,
    pub pid: u32,
    lines: Receiver<String>,
}

impl LoopingTarget {
    pub fn start(binary: &Path) -> Self {
        let mut command = Command::new(binary);
        command.arg("loop");
        Self::start_with(command)
    }

    /// Like [`LoopingTarget::start`], through `command` (which ends up running the fixture in
    /// `loop` mode, e.g. after a shell put itself in a cgroup); `pid` is the command's.
    pub fn start_with(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fixture");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id();
        let target = Self { child, pid, lines };
        let ready = target.next_line();
        assert!(
            ready.starts_with("ready "),
            "unexpected first line {ready:?}"
        );
        target
    }

    /// Sends one command line to the fixture (see its `loop` mode).
    pub fn send(&mut self, command: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{command}").expect("write a command");
        stdin.flush().expect("flush a command");
    }

    /// The fixture's next line of standard output (without its line end).
    pub fn next_line(&self) -> String {
        match self.lines.recv_timeout(FIXTURE_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "the fixture (pid {}) printed nothing for {FIXTURE_TIMEOUT:?}",
                    self.pid
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the fixture (pid {}) closed its output", self.pid)
            }
        }
    }

    /// Closes standard input and returns (exit code, the rest of standard output).
    pub fn finish(mut self) -> (Option<i32>, String) {
        drop(self.child.stdin.take());
        let mut status = None;
        wait_for("the fixture to exit", FIXTURE_TIMEOUT, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(FIXTURE_TIMEOUT) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the fixture's output stayed open after it exited")
                }
            }
        }
        (status.and_then(|status| status.code()), rest.join("\n"))
    }
}

impl Drop for LoopingTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of a JSON-lines file (race reports, `--events` recordings), parsed.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The race reports of a `--format json` report file, without its summary lines.
pub fn race_reports(path: &Path) -> Vec<serde_json::Value> {
    json_lines(path)
        .into_iter()
        .filter(|record| record["type"] == "race")
        .collect()
}

/// Every function of a race report's two stacks.
pub fn race_functions(race: &serde_json::Value) -> Vec<String> {
    ["current", "previous"]
        .iter()
        .flat_map(|side| race[side]["stack"].as_array().unwrap().clone())
        .map(|frame| frame["function"].as_str().unwrap().to_owned())
        .collect()
}

/// A replay's JSON reports give the live run's races in the same order, then a summary with the
/// same counts; only the live run knows when each race was found.
pub fn replay_agrees(live: &Path, replayed: &Path, version: &str) {
    let without_time = |records: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        records
            .into_iter()
            .map(|mut record| {
                if let Some(fields) = record.as_object_mut() {
                    fields.remove("found_at");
                    fields.remove("found_after");
                }
                record
            })
            .collect()
    };
    assert_eq!(
        without_time(race_reports(replayed)),
        without_time(race_reports(live)),
        "go{version}: replay differs from the live run"
    );
    let summary = |path: &Path| json_lines(path).pop().unwrap();
    let (live, again) = (summary(live), summary(replayed));
    assert_eq!(live["type"], "summary", "go{version}");
    assert_eq!(
        again["races"], live["races"],
        "go{version}: replay counts differ from the live run"
    );
}

/// Number of lines in a file (0 if it does not exist yet).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// The number written just before the last `marker` in `text`.
pub fn number_before(text: &str, marker: &str) -> u64 {
    let (before, _) = text
        .rsplit_once(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {text:?}"));
    before
        .rsplit(' ')
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no number before {marker:?} in {text:?}"))
}

/// The number before " dropped" in tracer's summary on standard error.
pub fn dropped_in_summary(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("tracer: traced for"))
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    assert!(
        line.ends_with(" dropped"),
        "summary does not end in drops: {line:?}"
    );
    number_before(line, " dropped")
}

/// A plain HTTP/1.0 GET: (status code, body).
pub fn http_get(address: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The address in tracer's "serving Prometheus metrics at http://ADDRESS/metrics" line.
pub fn announced_metrics_address(line: &str) -> Option<std::net::SocketAddr> {
    line.strip_prefix("tracer: serving Prometheus metrics at http://")?
        .strip_suffix("/metrics")?
        .parse()
        .ok()
}
