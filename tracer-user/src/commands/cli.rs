//! Command-line interface (the contract is in docs/cli.md).

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    error::TracerError,
    metrics::server::parse_address,
    report::{race_log::RaceLog, Format},
    session::sampling::Sampling,
};

/// Find data races on maps in running, unmodified Go programs, with eBPF.
///
/// tracer places uprobes on a Go program's map operations and synchronisation, rebuilds the
/// happens-before order of its goroutines and reports every pair of unordered map accesses with
/// both stacks, like `go build -race`, without rebuilding or restarting the program. Tracing
/// needs root, or CAP_BPF and CAP_PERFMON.
#[derive(Debug, Parser)]
#[command(name = "tracer", version, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success, no race (attach); for run, the program's own exit status (128+N if killed by N)
  2    invalid command line
  66   a data race was reported (as with go build -race)
  70   internal error
  80   no such process
  81   not a Go program
  82   unsupported Go version (Go 1.21 to 1.27 are supported)
  83   unsupported binary (e.g. not x86-64)
  84   missing privileges (root, or CAP_BPF and CAP_PERFMON)
  85   the kernel refused the probes
  86   cannot read or write a file
  87   replay: the file is not a tracer recording
  88   cannot serve metrics on the --metrics-addr address
  126  run: the program is not executable
  127  run: the program was not found";

/// What `tracer inspect` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what tracer learns from a Go executable and every place it would probe (no root needed).
    #[command(after_help = EXIT_STATUS_HELP)]
    Inspect {
        /// The executable to analyse.
        #[arg(
            value_name = "PATH",
            required_unless_present = "pid",
            conflicts_with = "pid"
        )]
        path: Option<PathBuf>,
        /// Analyse the executable of a running process instead.
        #[arg(long, value_name = "PID", value_parser = parse_pid)]
        pid: Option<u32>,
        /// Output format: a summary (text) or every probe site (json).
        #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
        format: InspectFormat,
    },
    /// Trace running Go processes until Ctrl-C, SIGTERM, --duration or their exit.
    ///
    /// With --exe, tracer is a node agent: it traces every process of the named programs that
    /// runs now and each one that starts later (containers included), reports each one's races
    /// as they are found and its summary when it exits, and runs until Ctrl-C, SIGTERM or
    /// --duration.
    #[command(after_help = EXIT_STATUS_HELP)]
    Attach {
        /// Process id of a Go program to trace; repeat to trace several at once (their metrics
        /// are told apart by the executable label).
        #[arg(
            long = "pid",
            value_name = "PID",
            required_unless_present = "exes",
            value_parser = parse_pid
        )]
        pids: Vec<u32>,
        /// Trace every process whose executable has this base name (e.g. `myservice`), now and
        /// as they start (the kernel reports each exec); repeat for several programs.
        #[arg(long = "exe", value_name = "NAME", value_parser = parse_executable_name)]
        exes: Vec<String>,
        #[command(flatten)]
        options: TraceArgs,
    },
    /// Re-run race detection over a recording made with --events (deterministic).
    #[command(after_help = EXIT_STATUS_HELP)]
    Replay {
        /// The recording (JSON lines written by --events).
        #[arg(value_name = "FILE")]
        recording: PathBuf,
        #[command(flatten)]
        reports: ReportArgs,
    },
    /// Start PROGRAM with every probe in place before its first instruction; exit with its status.
    ///
    /// Ctrl-C and SIGTERM are passed on to PROGRAM, and tracing goes on until it exits.
    #[command(after_help = EXIT_STATUS_HELP)]
    Run {
        #[command(flatten)]
        options: TraceArgs,
        /// The Go program to start, and its arguments.
        #[arg(
            value_name = "PROGRAM",
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Write every event as one JSON line to FILE ("-" for standard output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Stop tracing after this long (e.g. 30s, 5m, 250ms; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Print running totals to standard error this often (e.g. 1s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub stats_interval: Option<Duration>,
    /// Do not probe map reads (lookups and range loops): only writes are traced, which cuts the
    /// cost on read-heavy programs; write/write races are still found, read/write ones are not.
    #[arg(long)]
    pub no_reads: bool,
    /// Record every map access. By default the kernel drops an access that repeats its
    /// goroutine's previous recorded event (the same map, operation and call path, nothing
    /// else of that goroutine in between, such as the steps of one `for range` loop): it cannot
    /// change a verdict, and the summary counts it. Use this for exact per-map counts in
    /// --events recordings.
    #[arg(long)]
    pub every_access: bool,
    /// Keep tracing's cost within this share of the target's own CPU time (counted as at least
    /// one CPU's worth, so that a quiet service is traced too: it may cost this share of one
    /// CPU): the probes are in place for windows of 200 ms, a window opening only when the budget has room for it (while
    /// tracing costs less than the budget, the probes stay), and removed in between. Each window
    /// is analysed on its own, so a race is found when both accesses fall in one window, and
    /// never invented from a gap; `off` traces all the time, for tests and short programs where
    /// every race matters more than speed.
    #[arg(
        long,
        value_name = "PERCENT|off",
        env = "TRACER_OVERHEAD_BUDGET",
        default_value = "10%",
        value_parser = parse_budget,
        allow_hyphen_values = true
    )]
    pub overhead_budget: Sampling,
    /// Trace ON out of every PERIOD (e.g. 100ms/1s) whatever it costs, instead of following
    /// --overhead-budget; the probes are removed in between.
    #[arg(
        long,
        value_name = "ON/PERIOD",
        value_parser = parse_sample,
        allow_hyphen_values = true
    )]
    pub sample: Option<Sampling>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics while tracing: HOST:PORT, or a bare
    /// PORT for 127.0.0.1:PORT (port 0 picks a free port; the URL is printed).
    #[arg(long, value_name = "ADDRESS", value_parser = parse_address)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// With --metrics-addr, once every target has exited: keep serving the final values until
    /// they are scraped once more, for at most this long (0 to stop at once; Ctrl-C stops
    /// waiting), so that Prometheus sees the last races and the target's fatal error.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_linger,
        allow_hyphen_values = true
    )]
    pub metrics_linger: Duration,
    /// Size of the kernel's event ring buffer (a power of two from 4K to 1G, e.g. 64M): events
    /// that do not fit while tracer catches up are dropped and counted. Bigger absorbs longer
    /// bursts, at the cost of locked kernel memory.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "16M",
        value_parser = parse_buffer_size,
        allow_hyphen_values = true
    )]
    pub buffer_size: u32,
    #[command(flatten)]
    pub reports: ReportArgs,
}

/// `64K`, `16M`, `1G` or a number of bytes: a power of two from 4 KiB (a page) to 1 GiB.
pub fn parse_buffer_size(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("buffer size {text:?} cannot be negative"));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return Err(format!("unknown unit in {text:?} (use K, M or G)")),
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a size"))?;
    match bytes {
        4096..=0x4000_0000 if bytes.is_power_of_two() => Ok(bytes as u32),
        _ => Err(format!(
            "{text} is not a power of two between 4K and 1G (the kernel requires it)"
        )),
    }
}

/// Where and how race reports are written.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Race report format: the `WARNING: DATA RACE` text of `go build -race`, JSON lines, or one
    /// SARIF 2.1.0 log for code-scanning tools (written when tracing ends; use with --output).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write race reports to FILE instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write one Graphviz graph per distinct race into DIR (race-N.dot; created if
    /// missing): both goroutines' recent operations, the happens-before edges between them,
    /// and the missing one dashed. Render with `dot -Tsvg race-1.dot -o race-1.svg`.
    #[arg(long, value_name = "DIR")]
    pub dot_dir: Option<PathBuf>,
}

impl ReportArgs {
    /// Opens the race log these options describe.
    pub fn race_log(&self) -> Result<RaceLog, TracerError> {
        RaceLog::open(self.format, self.output.as_deref(), self.dot_dir.as_deref())
    }
}

/// `250ms`, `1.5s`, `10s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("duration {text:?} cannot be negative"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (try 30s, 5m or 250ms)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h)"
            ))
        }
    };
    if !(seconds > 0.0 && seconds.is_finite() && seconds < 1e9) {
        return Err(format!("duration {text:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `--metrics-linger`: a duration, or 0 for none.
pub fn parse_linger(text: &str) -> Result<Duration, String> {
    match text.trim().trim_end_matches(['s', 'm', 'h']) {
        "0" | "0.0" | "0m" => Ok(Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// Parses an `--exe`: an executable's base name, as the kernel's `/proc/PID/exe` ends.
pub fn parse_executable_name(text: &str) -> Result<String, String> {
    match text {
        "" => Err("an empty name matches no executable".to_owned()),
        _ if text.contains('/') => Err(format!(
            "`{text}` is a path; give the executable's base name (e.g. `{}`)",
            text.rsplit('/')
                .find(|part| !part.is_empty())
                .unwrap_or(text)
        )),
        _ => Ok(text.to_owned()),
    }
}

/// Parses a `--pid`: a process id (pid 0 is the scheduler, not a process tracer can trace).
pub fn parse_pid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("pid 0 is not a process (pids start at 1)".to_owned()),
        Ok(pid) => Ok(pid),
        Err(_) => Err(format!("{text:?} is not a process id")),
    }
}

/// Parses `--sample ON/PERIOD` (e.g. `100ms/1s`): ON must be shorter than PERIOD.
pub fn parse_sample(text: &str) -> Result<Sampling, String> {
    let (on, period) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not ON/PERIOD (e.g. 100ms/1s)"))?;
    let on = parse_duration(on)?;
    let period = parse_duration(period)?;
    if on.is_zero() || on >= period {
        return Err(format!(
            "in `{text}`, ON must be above zero and shorter than PERIOD"
        ));
    }
    Ok(Sampling::Fixed { on, period })
}

/// Parses `--overhead-budget`: a percentage (`10%`, `2.5%`, or a bare `10`) of the target's
/// own CPU time from 0.1% to 1000%, or `off` to trace all the time.
pub fn parse_budget(text: &str) -> Result<Sampling, String> {
    if text == "off" {
        return Ok(Sampling::Full);
    }
    let percent: f64 = text
        .strip_suffix('%')
        .unwrap_or(text)
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (e.g. 10%) or `off`"))?;
    if !(0.1..=1000.0).contains(&percent) {
        return Err(format!("{text}: the budget must be from 0.1% to 1000%"));
    }
    Ok(Sampling::Budget(percent / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn buffer_sizes_are_powers_of_two_within_the_kernel_limits() {
        assert_eq!(parse_buffer_size("16M"), Ok(16 << 20));
        assert_eq!(parse_buffer_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_buffer_size("4096"), Ok(4096));
        assert_eq!(parse_buffer_size("1G"), Ok(1 << 30));
        for bad in ["3M", "2K", "2G", "16X", "", "M", "99999999999999999999K"] {
            assert!(parse_buffer_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "0", "-1s", "10x", "1e3", "nan"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn run_takes_the_program_and_its_flags_verbatim() {
        let cli = Cli::try_parse_from([
            "tracer", "run", "--events", "e.json", "--", "prog", "-x", "--y",
        ])
        .unwrap();
        let Command::Run { options, command } = cli.command else {
            panic!("not run")
        };
        assert_eq!(options.events, Some(PathBuf::from("e.json")));
        assert_eq!(command, ["prog", "-x", "--y"]);
        let cli = Cli::try_parse_from(["tracer", "run", "prog", "--events", "x"]).unwrap();
        let Command::Run { options, command } = cli.command else {
            panic!("not run")
        };
        assert_eq!(options.events, None);
        assert_eq!(command, ["prog", "--events", "x"]);
    }

    #[test]
    fn inspect_takes_a_path_or_a_pid_but_not_both() {
        assert!(Cli::try_parse_from(["tracer", "inspect", "/bin/x"]).is_ok());
        assert!(
            Cli::try_parse_from(["tracer", "inspect", "--pid", "7", "--format", "json"]).is_ok()
        );
        assert!(Cli::try_parse_from(["tracer", "inspect"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "inspect", "/bin/x", "--pid", "7"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "inspect", "/bin/x", "--format", "xml"]).is_err());
    }

    #[test]
    fn attach_requires_a_numeric_pid() {
        assert!(Cli::try_parse_from(["tracer", "attach"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "attach", "--pid", "abc"]).is_err());
        assert!(
            Cli::try_parse_from(["tracer", "attach", "--pid", "42", "--duration", "2s"]).is_ok()
        );
        let cli = Cli::try_parse_from(["tracer", "attach", "--pid", "4", "--pid", "2"]).unwrap();
        let Command::Attach { pids, .. } = cli.command else {
            panic!("not attach")
        };
        assert_eq!(pids, [4, 2]);
    }

    #[test]
    fn attach_takes_executable_names_instead_of_pids() {
        let cli =
            Cli::try_parse_from(["tracer", "attach", "--exe", "api", "--exe", "worker"]).unwrap();
        let Command::Attach { pids, exes, .. } = cli.command else {
            panic!("not attach")
        };
        assert!(pids.is_empty());
        assert_eq!(exes, ["api", "worker"]);
        assert!(Cli::try_parse_from(["tracer", "attach"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "attach", "--exe", "/usr/bin/api"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "attach", "--exe", ""]).is_err());
        assert!(parse_executable_name("/usr/bin/api")
            .unwrap_err()
            .contains("`api`"));
    }

    #[test]
    fn metrics_address_defaults_to_loopback() {
        let cli = Cli::try_parse_from(["tracer", "attach", "--pid", "4", "--metrics-addr", "9464"])
            .unwrap();
        let Command::Attach { options, .. } = cli.command else {
            panic!("not attach")
        };
        assert_eq!(
            options.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert!(
            Cli::try_parse_from(["tracer", "attach", "--pid", "4", "--metrics-addr", "x:y"])
                .is_err()
        );
    }

    #[test]
    fn sample_and_budget_options_parse_or_say_why_not() {
        assert_eq!(
            parse_sample("100ms/1s"),
            Ok(Sampling::Fixed {
                on: Duration::from_millis(100),
                period: Duration::from_secs(1)
            })
        );
        for bad in ["100ms", "1s/100ms", "1s/1s", "0s/1s", "x/1s", "1s/"] {
            assert!(parse_sample(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_budget("10%"), Ok(Sampling::Budget(0.10)));
        assert_eq!(parse_budget("2.5%"), Ok(Sampling::Budget(0.025)));
        assert_eq!(parse_budget("50"), Ok(Sampling::Budget(0.5)));
        assert_eq!(parse_budget("off"), Ok(Sampling::Full));
        for bad in ["", "0%", "0.01%", "2000%", "ten", "-5%", "NaN"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_zero_linger_means_none_and_pids_start_at_one() {
        assert_eq!(parse_linger("0"), Ok(Duration::ZERO));
        assert_eq!(parse_linger("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_linger("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_linger("-1s").is_err());
        assert_eq!(parse_pid("42"), Ok(42));
        assert!(parse_pid("0").unwrap_err().contains("not a process"));
        assert!(parse_pid("-3").is_err());
    }
}
