//! Metrics end to end: tracer as a node agent following two racy Go services, scraped by a real
//! Prometheus server (the Debian package, started here on 127.0.0.1 with its own config and
//! data directory). Through Prometheus' HTTP API: the scrape is up, the race counters are
//! positive, both targets are told apart by their executable label, and every expression of
//! every panel of the shipped dashboard returns data. The exposition passes
//! `promtool check metrics`.

mod common;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::*;
use serde_json::Value;

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A Prometheus server scraping one target every second.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    _data: tempfile::TempDir,
}

impl Prometheus {
    fn start(scraped: SocketAddr) -> Self {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tracer\n    static_configs:\n      \
                 - targets: ['{scraped}']\n"
            ),
        )
        .unwrap();
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (cargo xtask setup)");
        let prometheus = Self {
            child,
            address,
            _data: data,
        };
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            http_get(address, "/-/ready").is_ok_and(|(status, _)| status == 200)
        });
        prometheus
    }

    /// The result vector of an instant query.
    fn query(&self, expression: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(expression));
        let (status, body) = http_get(self.address, &path).unwrap();
        let response: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{expression}: HTTP {status}: {body}"));
        assert_eq!(response["status"], "success", "{expression}: {body}");
        response["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `expression` returns at least one series; returns them.
    fn wait_for_data(&self, expression: &str, timeout: Duration) -> Vec<Value> {
        let mut result = Vec::new();
        wait_for(&format!("data from {expression}"), timeout, || {
            result = self.query(expression);
            !result.is_empty()
        });
        result
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo service with its built-in load running for long enough.
fn start_demo(binary: &Path) -> Child {
    Command::new(binary)
        .args(["-duration", "10m", "-clients", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn value_of(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_sees_data_for_every_dashboard_panel() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binaries = [
        build_demo("1.27.3", dir.path()),
        build_demo("1.23.9", dir.path()),
    ];
    // The node agent, as deployed: started first, it finds the services as they start.
    let mut tracer = tracer()
        .args([
            "attach",
            "--metrics-addr",
            "127.0.0.1:0",
            "--format",
            "json",
        ])
        .args(binaries.iter().flat_map(|binary| {
            let name = binary.file_name().unwrap().to_str().unwrap();
            ["--exe".to_owned(), name.to_owned()]
        }))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, stderr_lines) = mpsc::channel();
    let stderr = BufReader::new(tracer.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let metrics_address: SocketAddr = loop {
        let line = stderr_lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no metrics address announced: {seen:#?}"));
        if let Some(address) = announced_metrics_address(&line) {
            break address;
        }
        seen.push(line);
    };
    let mut demos: Vec<Child> = binaries.iter().map(|binary| start_demo(binary)).collect();

    // The exposition itself passes promtool's lint.
    let (status, exposition) = http_get(metrics_address, "/metrics").unwrap();
    assert_eq!(status, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let prometheus = Prometheus::start(metrics_address);
    let up = prometheus.wait_for_data(r#"up{job="tracer"} == 1"#, Duration::from_secs(60));
    assert_eq!(up.len(), 1);
    let races = prometheus.wait_for_data(
        r#"sum by (executable) (tracer_races_total{job="tracer"}) > 0"#,
        Duration::from_secs(120),
    );
    assert!(races.iter().all(|series| value_of(series) > 0.0));
    let targets = prometheus.wait_for_data("tracer_target_info", Duration::from_secs(10));
    let mut executables: Vec<&str> = targets
        .iter()
        .map(|series| series["metric"]["executable"].as_str().unwrap())
        .collect();
    executables.sort_unstable();
    assert_eq!(executables, ["demo-1.23.9", "demo-1.27.3"]);
    let traced = prometheus.query("tracer_targets");
    assert_eq!(value_of(&traced[0]), 2.0);

    let dashboard = dashboard::load();
    let expressions = dashboard::expressions(&dashboard);
    assert!(expressions.len() >= 10);
    for (title, expression) in expressions {
        let concrete = dashboard::substitute(&expression);
        let mut result = Vec::new();
        let mut wait = || {
            result = prometheus.query(&concrete);
            !result.is_empty()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !wait() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            !result.is_empty(),
            "panel {title:?}: no data for {concrete}"
        );
    }

    // Ending the session: both targets' races are reported, exit status 66.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let status = wait_with_timeout(tracer, "tracer to stop", Duration::from_secs(30)).status;
    assert_eq!(status.code(), Some(66));
    for demo in &mut demos {
        assert_eq!(demo.try_wait().unwrap(), None, "a traced demo died");
        let _ = demo.kill();
        let _ = demo.wait();
    }
}

/// Before any race, the race panels say 0 rather than "No data": a clean dashboard must read as
/// "nothing found", not as "nothing measured".
#[test]
fn race_panels_show_zero_before_the_first_race() {
    require_root();
    let binary = built_fixture("mapwrites", "1.26.6", Variant::Default);
    let target = LoopingTarget::start(&binary);
    let metrics_address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let prometheus = Prometheus::start(metrics_address);
    let tracer = tracer()
        .args([
            "attach",
            "--pid",
            &target.pid.to_string(),
            "--metrics-linger",
            "0",
        ])
        .arg("--metrics-addr")
        .arg(metrics_address.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    prometheus.wait_for_data("tracer_targets == 1", Duration::from_secs(60));
    let dashboard = dashboard::load();
    for wanted in ["Racing access pairs", "Races per second by kind"] {
        let (_, expression) = dashboard::expressions(&dashboard)
            .into_iter()
            .find(|(title, _)| title == wanted)
            .unwrap_or_else(|| panic!("no panel {wanted:?}"));
        let result =
            prometheus.wait_for_data(&dashboard::substitute(&expression), Duration::from_secs(30));
        assert!(
            result.iter().all(|series| value_of(series) == 0.0),
            "{wanted}: {result:?}"
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let output = wait_with_timeout(tracer, "tracer to stop", Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let (code, rest) = target.finish();
    assert_eq!(code, Some(0), "{rest}");
}

/// A target that dies of `fatal error: concurrent map writes` while sampling has its probes
/// paused: the crash is counted, and the endpoint stays up after the target is gone until a
/// real Prometheus has scraped the final values.
#[test]
fn prometheus_sees_a_fatal_map_error_after_the_target_is_gone() {
    require_root();
    let binary = built_fixture("fatalmap", "1.26.6", Variant::Default);
    let metrics_address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let prometheus = Prometheus::start(metrics_address);
    let output = tracer()
        .args(["run", "--sample", "10ms/60s", "--metrics-linger", "60s"])
        .arg("--metrics-addr")
        .arg(metrics_address.to_string())
        .arg("--")
        .arg(&binary)
        .arg("2s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("raised fatal error: concurrent map writes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("serving the final metrics"),
        "tracer did not wait for the last scrape: {stderr}"
    );
    let fatal = prometheus.wait_for_data(
        r#"tracer_target_fatal_errors_total{reason="concurrent map writes"} > 0"#,
        Duration::from_secs(30),
    );
    assert_eq!(fatal.len(), 1, "{fatal:#?}");
    assert_eq!(fatal[0]["metric"]["executable"], "fatalmap");
}
