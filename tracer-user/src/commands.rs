//! The `attach` and `run` commands: analyse → plan → attach → trace → summarise.

use std::{ffi::OsString, io::Write as _, path::Path};

use crate::{
    cli::{Format, ReportArgs, TraceArgs},
    error::TracerError,
    gobin::GoBinary,
    inspect,
    plan::{self, Placement},
    privileges, probes, report,
    report::ResolvedRace,
    session::{self, Ownership, SessionOptions, SessionResult},
    sites::{self, KernelSite},
    target,
};

impl From<&TraceArgs> for SessionOptions {
    fn from(args: &TraceArgs) -> Self {
        Self {
            events: args.events.clone(),
            duration: args.duration,
            stats_interval: args.stats_interval,
        }
    }
}

/// `tracer inspect PATH | --pid PID`: prints the analysis and the probe plan.
pub fn inspect(path: Option<&Path>, pid: Option<u32>, format: Format) -> Result<i32, TracerError> {
    let binary = match (path, pid) {
        (_, Some(pid)) => {
            let executable = target::running_executable(pid)?;
            GoBinary::open(&executable.open_path, &executable.display_path)?
        }
        (Some(path), None) => GoBinary::open(path, path)?,
        (None, None) => unreachable!("clap requires a path or a pid"),
    };
    let plan = plan::plan(&binary);
    let report = inspect::Report::new(&binary, &plan);
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Text => stdout.write_all(report.to_text().as_bytes()),
        Format::Json => report
            .write_json(&mut stdout)
            .and_then(|()| stdout.write_all(b"\n")),
    }
    .and_then(|()| stdout.flush())
    .map_err(|source| TracerError::Output {
        path: "standard output".into(),
        source,
    })?;
    Ok(0)
}

/// `tracer attach --pid PID`: returns the exit status (0).
pub fn attach(pid: u32, args: &TraceArgs) -> Result<i32, TracerError> {
    let executable = target::running_executable(pid)?;
    privileges::check()?;
    let binary = GoBinary::open(&executable.open_path, &executable.display_path)?;
    let sites = kernel_sites_for(&binary);
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let (probes, channels) = probes::attach(
            &sites,
            sites::runtime_config(&binary.offsets),
            &executable.open_path,
            pid,
        )?;
        announce(&binary, pid, probes.attached);
        session::trace(
            pid,
            probes,
            channels,
            &sites,
            &binary,
            &args.into(),
            Ownership::Attached,
        )
        .await
    })?;
    let raced = report(&result, pid, args)?;
    Ok(if raced { RACE_EXIT_STATUS } else { 0 })
}

/// `tracer run PROGRAM ARGS…`: returns PROGRAM's exit status.
pub fn run(command: &[OsString], args: &TraceArgs) -> Result<i32, TracerError> {
    let program = target::resolve_program(&command[0])?;
    privileges::check()?;
    let binary = GoBinary::open(&program, &program)?;
    let sites = kernel_sites_for(&binary);
    // Fork while still single-threaded: the async runtime starts afterwards.
    let child = target::spawn_paused(&program, command)?;
    let pid = child.pid;
    let config = sites::runtime_config(&binary.offsets);
    let attached = match probes::attach(&sites, config, &program, pid) {
        Ok(attached) => attached,
        Err(error) => {
            child.abandon();
            return Err(error);
        }
    };
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let (probes, channels) = attached;
        announce(&binary, pid, probes.attached);
        child.release()?;
        session::trace(
            pid,
            probes,
            channels,
            &sites,
            &binary,
            &args.into(),
            Ownership::Launched,
        )
        .await
    });
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            // Tracing failed after the program started: it keeps running, untraced.
            eprintln!("tracer: {error}; waiting for pid {pid} to exit");
            target::wait_exit_status(pid)?;
            return Err(error);
        }
    };
    let raced = report(&result, pid, args)?;
    let status = target::wait_exit_status(pid)?;
    Ok(if raced { RACE_EXIT_STATUS } else { status })
}

/// Every site the kernel programs record, with the plan's caveats logged.
fn kernel_sites_for(binary: &GoBinary) -> Vec<KernelSite> {
    let plan = plan::plan(binary);
    for site in plan
        .sites
        .iter()
        .filter(|site| site.placement == Placement::Entry)
    {
        log::warn!(
            "{}: no frame setup found; probing its first instruction (slower)",
            site.function
        );
    }
    if !plan.unconfirmed_sync_calls.is_empty() {
        log::warn!(
            "{} sync slow-path calls have no recognisable fast path and are not probed \
             (tracer inspect lists them)",
            plan.unconfirmed_sync_calls.len()
        );
    }
    sites::kernel_sites(&plan)
}

fn announce(binary: &GoBinary, pid: u32, probes: usize) {
    eprintln!(
        "tracer: tracing pid {pid} ({}, {}): {probes} probes on maps, synchronisation and goroutines",
        display_name(&binary.path),
        binary.build_info.version
    );
}

/// Exit status when at least one race was reported, as with `go build -race`.
pub const RACE_EXIT_STATUS: i32 = 66;

/// Writes the race reports and the summary; returns whether any race was reported.
fn report(result: &SessionResult, pid: u32, args: &TraceArgs) -> Result<bool, TracerError> {
    let why = match result.stop {
        session::StopReason::TargetExited => format!("pid {pid} exited"),
        session::StopReason::Signal => "interrupted".to_owned(),
        session::StopReason::Duration => "duration reached".to_owned(),
    };
    write_races(&result.races, &args.reports)?;
    eprintln!("tracer: stopped ({why}); all probes removed");
    eprint!("{}", result.summary.render(result.elapsed));
    announce_races(&result.races);
    Ok(!result.races.is_empty())
}

/// `tracer replay FILE`: the races of a recording; exit status 66 if there are any.
pub fn replay(recording: &Path, reports: &ReportArgs) -> Result<i32, TracerError> {
    let races = crate::replay::replay(recording)?;
    write_races(&races, reports)?;
    announce_races(&races);
    Ok(if races.is_empty() {
        0
    } else {
        RACE_EXIT_STATUS
    })
}

fn write_races(races: &[ResolvedRace], reports: &ReportArgs) -> Result<(), TracerError> {
    let text: String = races
        .iter()
        .map(|race| match reports.format {
            Format::Text => report::text(race),
            Format::Json => report::json(race) + "\n",
        })
        .collect();
    match &reports.output {
        Some(path) => std::fs::write(path, &text).map_err(|source| TracerError::Output {
            path: path.clone(),
            source,
        }),
        None => {
            eprint!("{text}");
            Ok(())
        }
    }
}

fn announce_races(races: &[ResolvedRace]) {
    if !races.is_empty() {
        eprintln!("tracer: found {} data race(s) on maps", races.len());
    }
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

fn runtime() -> Result<tokio::runtime::Runtime, TracerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("starting the async runtime: {error}").into())
}
