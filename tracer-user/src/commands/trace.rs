//! `tracer attach` and `tracer run`: analyse → plan → attach → trace → report, for one or
//! several targets, with the metrics endpoint and its linger.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsString,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::signal::unix::{signal, SignalKind};

use tracer_common::{KernelLayout, ProbeClass};

use super::{runtime, RACE_EXIT_STATUS};
use crate::{
    analyse::GoBinary,
    commands::cli::TraceArgs,
    commands::inspect::UnprobedCall,
    error::TracerError,
    metrics::{server::MetricsListener, Metrics, ProbeCounts, TargetLabels},
    plan::sites::{self, KernelSite},
    plan::{
        self,
        cold::{self, WatchedCall},
        Placement,
    },
    probes::calibrate::{self, HitCosts},
    probes::privileges,
    probes::{self, AttachedProbes, ExecWatch, KernelChannels},
    report::{race_log::RaceLog, Outcome},
    session::sampling::Sampling,
    session::{self, Newcomers, Ownership, SessionOptions, SessionResult, TracedProcess},
    target::{self, discover},
};

/// What the session is asked to do. Under an overhead budget, this measures what a probe hit
/// costs here first (needs the privileges already checked).
fn session_options(args: &TraceArgs) -> SessionOptions {
    let sampling = args.sample.unwrap_or(args.overhead_budget);
    let hit_costs = match sampling {
        Sampling::Budget(_) => calibrate::measure().unwrap_or_else(|error| {
            log::warn!("could not measure what a probe hit costs ({error}); assuming it is dear");
            HitCosts::FALLBACK
        }),
        _ => HitCosts::FALLBACK,
    };
    log::debug!("probe hit costs: {hit_costs:?}");
    SessionOptions {
        events: args.events.clone(),
        duration: args.duration,
        stats_interval: args.stats_interval,
        graphs: args.reports.dot_dir.is_some(),
        sampling,
        hit_costs,
    }
}

/// An executable ready to be probed: analysed, its probe sites computed.
#[derive(Clone)]
struct Prepared {
    /// The executable as the kernel can open it.
    open_path: PathBuf,
    binary: Arc<GoBinary>,
    sites: Arc<[KernelSite]>,
    /// The cold-code watch's calls (none unless windows follow a budget).
    watched: Arc<[WatchedCall]>,
    /// Where the sends and receives return whose returns are not probed (see `plan::ProbePlan`).
    completed_at_next_event: Arc<HashSet<u64>>,
    probe_counts: ProbeCounts,
    /// `--buffer-size`.
    buffer_bytes: u32,
    /// Not `--every-access`.
    drop_repeats: bool,
    /// The running kernel's layout, read once and before `run` forks the target.
    kernel: KernelLayout,
}

impl Prepared {
    fn new(open_path: PathBuf, display_path: &Path, args: &TraceArgs) -> Result<Self, TracerError> {
        let binary = GoBinary::open(&open_path, display_path)?;
        let budgeted = matches!(
            args.sample.unwrap_or(args.overhead_budget),
            Sampling::Budget(_)
        );
        let (sites, watched, probe_counts, completed_at_next_event) =
            kernel_sites_for(&binary, !args.no_reads, budgeted);
        Ok(Self {
            open_path,
            binary: Arc::new(binary),
            sites: sites.into(),
            watched: watched.into(),
            completed_at_next_event: Arc::new(completed_at_next_event),
            probe_counts,
            buffer_bytes: args.buffer_size,
            drop_repeats: !args.every_access,
            kernel: probes::kernel_layout::running_kernel_layout(),
        })
    }

    /// Loads and attaches the probes to the running process `pid` (`exit`: its pidfd): the
    /// process is traced from here on. Its metrics carry `label` as the executable.
    fn attach(
        &self,
        pid: u32,
        exit: OwnedFd,
        label: &str,
        metrics: Option<&Metrics>,
    ) -> Result<TracedProcess, TracerError> {
        let container = discover::container_id(pid);
        let (probes, channels) = self.load_probes(pid, Some(&exit))?;
        let complete_from_ns = crate::events::monotonic_now_ns();
        session::setup_interrupted()?;
        let running = RunningProcess {
            pid,
            exit,
            complete_from_ns: Some(complete_from_ns),
        };
        Ok(self.traced(
            running,
            probes,
            channels,
            label,
            container.as_deref(),
            metrics,
        ))
    }

    /// Loads the kernel programs and attaches every site to process `pid`. The kernel resolves
    /// the pid when the probes are attached: if the process had exited by then (`exit`
    /// readable), the pid may be another process's, so the probes are removed again.
    fn load_probes(
        &self,
        pid: u32,
        exit: Option<&OwnedFd>,
    ) -> Result<(AttachedProbes, KernelChannels), TracerError> {
        let config =
            sites::runtime_config(&self.binary.offsets, pid, self.drop_repeats, self.kernel);
        let attached = probes::attach(
            &self.sites,
            &self.watched,
            config,
            &self.open_path,
            pid,
            self.buffer_bytes,
        )?;
        match exit {
            Some(exit) if target::has_exited(exit) => Err(TracerError::ProcessExited(pid)),
            _ => Ok(attached),
        }
    }

    /// The process as a session traces it, announced on standard error.
    fn traced(
        &self,
        running: RunningProcess,
        probes: AttachedProbes,
        channels: KernelChannels,
        label: &str,
        container: Option<&str>,
        metrics: Option<&Metrics>,
    ) -> TracedProcess {
        announce(
            &self.binary,
            running.pid,
            container,
            probes.attached,
            self.watched.len(),
        );
        TracedProcess {
            pid: running.pid,
            name: label.to_owned(),
            complete_from_ns: running.complete_from_ns,
            exit: running.exit,
            probes,
            channels,
            sites: Arc::clone(&self.sites),
            watched: Arc::clone(&self.watched),
            completed_at_next_event: Arc::clone(&self.completed_at_next_event),
            binary: Arc::clone(&self.binary),
            metrics: metrics.map(|metrics| {
                let labels = TargetLabels {
                    executable: label,
                    go_version: &self.binary.build_info.version,
                    container,
                };
                metrics.target(labels, self.probe_counts)
            }),
        }
    }
}

/// The process a [`Prepared`] executable's probes go to.
struct RunningProcess {
    pid: u32,
    /// Readable once the process has exited.
    exit: OwnedFd,
    /// When its analysis starts (see [`TracedProcess::complete_from_ns`]).
    complete_from_ns: Option<u64>,
}

/// `--metrics-addr`: the registry and its bound listener.
struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    listener: MetricsListener,
}

impl MetricsEndpoint {
    /// Binds the address now, so a bad one fails before anything is attached.
    fn bind(args: &TraceArgs) -> Result<Option<Self>, TracerError> {
        let Some(address) = args.metrics_addr else {
            return Ok(None);
        };
        Ok(Some(Self {
            metrics: Arc::new(Metrics::new()),
            listener: MetricsListener::bind(address)?,
        }))
    }

    /// Starts serving; call inside the session's runtime.
    fn serve(endpoint: Option<Self>) -> Result<Option<Served>, TracerError> {
        let Some(Self { metrics, listener }) = endpoint else {
            return Ok(None);
        };
        eprintln!(
            "tracer: serving Prometheus metrics at http://{}/metrics",
            listener.address
        );
        let address = listener.address;
        listener.serve(Arc::clone(&metrics))?;
        Ok(Some(Served { metrics, address }))
    }
}

/// Metrics being served.
struct Served {
    metrics: Arc<Metrics>,
    address: std::net::SocketAddr,
}

impl Served {
    /// After the last target exited: serves the final values until one more scrape, at most
    /// `linger` (`--metrics-linger`), or until Ctrl-C / SIGTERM.
    async fn linger(&self, linger: Duration) {
        if linger.is_zero() {
            return;
        }
        eprintln!(
            "tracer: the target is gone; serving the final metrics at http://{}/metrics until \
             they are scraped (at most {:.0} s; Ctrl-C to stop)",
            self.address,
            linger.as_secs_f64()
        );
        let signals = async {
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                },
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.metrics.next_scrape() => {}
            () = tokio::time::sleep(linger) => {}
            () = signals => {}
        }
    }
}

/// `tracer attach --pid PID… --exe NAME…`: returns the exit status (0, or 66 if a race was
/// reported).
pub fn attach(pids: &[u32], names: &[String], args: &TraceArgs) -> Result<i32, TracerError> {
    if !names.is_empty() {
        return watch(pids, names, args);
    }
    if let Some(&pid) = pids
        .iter()
        .enumerate()
        .find_map(|(index, pid)| pids[..index].contains(pid).then_some(pid))
    {
        return Err(TracerError::Usage(format!("pid {pid} is given twice")));
    }
    if pids.len() > 1 && args.events.is_some() {
        return Err(TracerError::Usage(
            "--events records one process; give a single --pid".into(),
        ));
    }
    session::catch_interrupts_during_setup();
    privileges::check()?;
    let options = session_options(args);
    let executables = pids
        .iter()
        .map(|&pid| target::running_executable(pid))
        .collect::<Result<Vec<_>, TracerError>>()?;
    let endpoint = MetricsEndpoint::bind(args)?;
    let mut race_log = args.reports.race_log()?;
    let mut exits = Vec::new();
    let mut prepared = Vec::new();
    for executable in executables {
        prepared.push(Prepared::new(
            executable.open_path,
            &executable.display_path,
            args,
        )?);
        exits.push(executable.exit);
        session::setup_interrupted()?;
    }
    let labels = distinct_labels(
        prepared
            .iter()
            .map(|target| executable_name(&target.binary.path)),
    );
    let runtime = runtime()?;
    let (results, served) = runtime.block_on(async {
        let served = MetricsEndpoint::serve(endpoint)?;
        let metrics = served.as_ref().map(|served| &*served.metrics);
        let processes = prepared
            .iter()
            .zip(pids.iter().zip(exits))
            .zip(&labels)
            .map(|((target, (&pid, exit)), label)| target.attach(pid, exit, label, metrics))
            .collect::<Result<Vec<_>, _>>()?;
        let results = session::trace(
            processes,
            &options,
            Ownership::Attached,
            &mut race_log,
            None,
        );
        Ok::<_, TracerError>((results.await?, served))
    })?;
    let several = results.len() > 1;
    let mut raced = false;
    for (result, target) in results.iter().zip(&prepared) {
        raced |= report(
            result,
            several.then_some(&target.binary.path),
            &mut race_log,
        )?;
    }
    race_log.close()?;
    linger(&runtime, served, &results, args);
    eprintln!("{}", own_usage());
    Ok(if raced { RACE_EXIT_STATUS } else { 0 })
}

/// `tracer run PROGRAM ARGS…`: returns PROGRAM's exit status (66 if a race was reported).
pub fn run(command: &[OsString], args: &TraceArgs) -> Result<i32, TracerError> {
    session::catch_interrupts_during_setup();
    let program = target::resolve_program(&command[0])?;
    let endpoint = MetricsEndpoint::bind(args)?;
    let mut race_log = args.reports.race_log()?;
    privileges::check()?;
    let options = session_options(args);
    // The pid is not known before the fork; the analysis must come first, single-threaded.
    let prepared = Prepared::new(program.clone(), &program, args)?;
    session::setup_interrupted()?;
    // Fork while still single-threaded: the async runtime starts afterwards.
    let child = target::spawn_paused(&program, command)?;
    let pid = child.pid;
    let attached = match prepared.load_probes(pid, None).and_then(|attached| {
        let exit = target::exit_notifier(pid)?;
        session::setup_interrupted().map(|()| (attached, exit))
    }) {
        Ok(attached) => attached,
        Err(error) => {
            child.abandon();
            return Err(error);
        }
    };
    let runtime = runtime()?;
    let traced = runtime.block_on(async {
        let served = MetricsEndpoint::serve(endpoint)?;
        let metrics = served.as_ref().map(|served| &*served.metrics);
        let ((probes, channels), exit) = attached;
        let label = executable_name(&prepared.binary.path);
        let running = RunningProcess {
            pid,
            exit,
            complete_from_ns: None,
        };
        let process = prepared.traced(running, probes, channels, &label, None, metrics);
        child.release()?;
        let results = session::trace(
            vec![process],
            &options,
            Ownership::Launched,
            &mut race_log,
            None,
        );
        Ok::<_, TracerError>((results.await?, served))
    });
    let (result, served) = match traced {
        Ok((mut results, served)) => (results.remove(0), served),
        Err(error) => {
            // Tracing failed after the program started: it keeps running, untraced.
            eprintln!("tracer: {error}; waiting for pid {pid} to exit");
            target::wait_exit_status(pid)?;
            return Err(error);
        }
    };
    let raced = report(&result, None, &mut race_log)?;
    race_log.close()?;
    linger(&runtime, served, std::slice::from_ref(&result), args);
    eprintln!("{}", own_usage());
    let status = target::wait_exit_status(pid)?;
    Ok(if raced { RACE_EXIT_STATUS } else { status })
}

/// `tracer attach --exe NAME…` (with any `--pid`s): the node agent. Traces every process of
/// the named programs that runs now and each one that starts later, until a signal or
/// `--duration`; reports each target's summary when it leaves.
fn watch(pids: &[u32], names: &[String], args: &TraceArgs) -> Result<i32, TracerError> {
    if args.events.is_some() {
        return Err(TracerError::Usage(
            "--events records one process; give a single --pid instead of --exe".into(),
        ));
    }
    session::catch_interrupts_during_setup();
    privileges::check()?;
    let options = session_options(args);
    let endpoint = MetricsEndpoint::bind(args)?;
    let mut race_log = args.reports.race_log()?;
    // The watch first: a process that starts while /proc is read is then seen either way.
    let watch = ExecWatch::start()?;
    let mut initial: Vec<u32> = pids.to_vec();
    initial.extend(discover::processes_named(names));
    initial.sort_unstable();
    initial.dedup();
    eprintln!(
        "tracer: watching for {}: {} running now",
        names.join(", "),
        initial.len()
    );
    let runtime = runtime()?;
    let (results, raced_earlier) = runtime.block_on(async {
        let served = MetricsEndpoint::serve(endpoint)?;
        let metrics = served.as_ref().map(|served| &*served.metrics);
        let mut agent = NodeAgent {
            names,
            watch,
            args,
            metrics,
            prepared: HashMap::new(),
            traced: HashMap::new(),
            deferred: Vec::new(),
            raced: false,
        };
        let processes = initial
            .into_iter()
            .filter_map(|pid| agent.join(pid))
            .collect();
        let results = session::trace(
            processes,
            &options,
            Ownership::Attached,
            &mut race_log,
            Some(&mut agent),
        )
        .await?;
        Ok::<_, TracerError>((results, agent.raced))
    })?;
    let mut raced = raced_earlier;
    for result in &results {
        raced |= report(result, Some(Path::new(&result.name)), &mut race_log)?;
    }
    race_log.close()?;
    eprintln!("{}", own_usage());
    Ok(if raced { RACE_EXIT_STATUS } else { 0 })
}

/// The node agent's side of a session: which processes join it and what happens when they
/// leave.
struct NodeAgent<'a> {
    names: &'a [String],
    watch: ExecWatch,
    args: &'a TraceArgs,
    metrics: Option<&'a Metrics>,
    /// The executables analysed, by file identity (device, inode): replicas and restarts of a
    /// program are analysed once; forgotten when no process of theirs is traced.
    prepared: HashMap<(u64, u64), Prepared>,
    /// The processes traced now, with their labels (`name`, or `name#2`… for a second process
    /// of one program at once).
    traced: HashMap<u32, String>,
    /// Processes that replaced their program while still traced as their old one: joined once
    /// the session has let the old one go.
    deferred: Vec<u32>,
    raced: bool,
}

impl NodeAgent<'_> {
    /// Starts tracing `pid`, or says on standard error why not (it may have exited already, or
    /// not be a Go program after all).
    fn join(&mut self, pid: u32) -> Option<TracedProcess> {
        match self.try_join(pid) {
            Ok(process) => Some(process),
            Err(error) => {
                eprintln!("tracer: warning: not tracing pid {pid}: {error}");
                None
            }
        }
    }

    fn try_join(&mut self, pid: u32) -> Result<TracedProcess, TracerError> {
        use std::os::unix::fs::MetadataExt as _;
        let executable = target::running_executable(pid)?;
        let file =
            std::fs::metadata(&executable.open_path).map_err(|source| TracerError::Output {
                path: executable.open_path.clone(),
                source,
            })?;
        let identity = (file.dev(), file.ino());
        let mut prepared = match self.prepared.get(&identity) {
            Some(prepared) => prepared.clone(),
            None => {
                let prepared = Prepared::new(
                    executable.open_path.clone(),
                    &executable.display_path,
                    self.args,
                )?;
                self.prepared.insert(identity, prepared.clone());
                prepared
            }
        };
        // The kernel opens the executable through this process's own /proc entry.
        prepared.open_path = executable.open_path;
        let label = self.free_label(&executable_name(&prepared.binary.path));
        let process = prepared.attach(pid, executable.exit, &label, self.metrics)?;
        self.traced.insert(pid, label);
        Ok(process)
    }

    /// `name` if no process traced now has it as its label, else the first free `name#N`.
    fn free_label(&self, name: &str) -> String {
        let taken = |label: &str| self.traced.values().any(|traced| traced == label);
        (1..)
            .map(|n| match n {
                1 => name.to_owned(),
                n => format!("{name}#{n}"),
            })
            .find(|label| !taken(label))
            .expect("labels are unbounded")
    }
}

impl Newcomers for NodeAgent<'_> {
    fn arrived(&mut self) -> Vec<TracedProcess> {
        let mut pids = std::mem::take(&mut self.deferred);
        pids.extend(self.watch.started().into_iter().filter(|&pid| {
            discover::executable_name(pid).is_some_and(|name| self.names.contains(&name))
        }));
        if self.watch.missed_some() {
            eprintln!("tracer: warning: execs came faster than recorded; looking through /proc");
            let mut untraced = discover::processes_named(self.names);
            untraced.retain(|pid| !self.traced.contains_key(pid) && !pids.contains(pid));
            pids.extend(untraced);
        }
        let mut processes = Vec::new();
        for pid in pids {
            if self.traced.contains_key(&pid) {
                self.deferred.push(pid);
            } else if let Some(process) = self.join(pid) {
                processes.push(process);
            }
        }
        processes
    }

    fn left(&mut self, result: SessionResult, race_log: &mut RaceLog) -> Result<(), TracerError> {
        self.raced |= report(&result, Some(Path::new(&result.name)), race_log)?;
        self.traced.remove(&result.pid);
        self.prepared
            .retain(|_, prepared| Arc::strong_count(&prepared.binary) > 1);
        Ok(())
    }
}

/// Keeps the metrics up after the session when every target has exited (`--metrics-linger`).
fn linger(
    runtime: &tokio::runtime::Runtime,
    served: Option<Served>,
    results: &[SessionResult],
    args: &TraceArgs,
) {
    let gone = results.iter().all(|result| {
        matches!(
            result.stop,
            session::StopReason::TargetExited | session::StopReason::Exec
        )
    });
    if let (Some(served), true) = (served, gone) {
        runtime.block_on(served.linger(args.metrics_linger));
    }
}

/// Every site the kernel programs record (map reads only if `reads`), with the plan's caveats
/// logged, and the count of sites per probe class (attached, and planned but not probed).
/// The kernel sites of `binary`'s plan (map reads only with `reads`), the calls the cold-code
/// watch places (only when `watching`), how many of each class, and the return addresses of
/// the sends and receives whose returns are not probed.
fn kernel_sites_for(
    binary: &GoBinary,
    reads: bool,
    watching: bool,
) -> (Vec<KernelSite>, Vec<WatchedCall>, ProbeCounts, HashSet<u64>) {
    let mut plan = plan::plan(binary);
    if !reads {
        plan.without_map_reads(binary);
    }
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
        let mut functions: Vec<String> = plan
            .unconfirmed_sync_calls
            .iter()
            .map(|&address| UnprobedCall::new(binary, address).in_function)
            .collect();
        functions.dedup();
        let shown = functions.len().min(3);
        let more = match functions.len() - shown {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        log::warn!(
            "{} sync slow-path calls have no recognisable fast path and are not probed, in {}{more} \
             (tracer inspect lists them)",
            plan.unconfirmed_sync_calls.len(),
            functions[..shown].join(", ")
        );
    }
    let sites = sites::kernel_sites(&plan, |address| binary.bytes_at(address, 15));
    let mut counts = ProbeCounts::default();
    for site in &sites {
        counts.attached[site.class as usize] += 1;
        if site.always_in_place() {
            counts.always[site.class as usize] += 1;
        }
    }
    counts.failed[ProbeClass::SyncInline as usize] = plan.unconfirmed_sync_calls.len();
    let watched = match watching {
        true => cold::watched_calls(binary),
        false => Vec::new(),
    };
    counts.attached[ProbeClass::ColdWatch as usize] = watched.len();
    counts.always[ProbeClass::ColdWatch as usize] = watched.len();
    let completed_at_next_event = plan.completed_at_next_event.into_iter().collect();
    (sites, watched, counts, completed_at_next_event)
}

fn announce(binary: &GoBinary, pid: u32, container: Option<&str>, probes: usize, watched: usize) {
    let container = container.map_or_else(String::new, |id| format!(", container {id:.12}"));
    let watched = match watched {
        0 => String::new(),
        watched => format!("; {watched} map calls of its own code watched between windows"),
    };
    eprintln!(
        "tracer: tracing pid {pid} ({}, {}{container}): {probes} probes on maps, \
         synchronisation and goroutines{watched}",
        display_name(&binary.path),
        binary.build_info.version
    );
}

/// `tracer: own CPU 1.23 s (user 1.00 s, system 0.23 s), peak memory 45 MB`: what tracing cost
/// tracer itself (the traced program's own cost is its slowdown).
fn own_usage() -> String {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    let (user, system) = (seconds(usage.ru_utime), seconds(usage.ru_stime));
    // ru_maxrss also holds the memory of the image before exec — the whole parent process
    // tracer was forked from — so the peak of tracer's own image comes from VmHWM.
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| peak_resident_kb(&status))
        .unwrap_or(usage.ru_maxrss as u64);
    format!(
        "tracer: own CPU {:.2} s (user {user:.2} s, system {system:.2} s), peak memory {} MB",
        user + system,
        peak_kb / 1024
    )
}

/// `VmHWM` of a `/proc/PID/status`: the peak resident memory of the process's current image, in
/// kB.
fn peak_resident_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// Closes one target's session (headed by the target when `several` targets were traced): its
/// fatal errors and totals on standard error, its summary in the race log; returns whether any
/// race was reported.
fn report(
    result: &SessionResult,
    several: Option<&Path>,
    race_log: &mut RaceLog,
) -> Result<bool, TracerError> {
    let pid = result.pid;
    let why = match result.stop {
        session::StopReason::TargetExited => format!("pid {pid} exited"),
        session::StopReason::Signal => "interrupted".to_owned(),
        session::StopReason::Duration => "duration reached".to_owned(),
        session::StopReason::Exec => format!("pid {pid} replaced its program with execve"),
    };
    if let Some(path) = several {
        eprintln!("tracer: --- pid {pid} ({}) ---", display_name(path));
    }
    for (message, count) in &result.fatal_errors {
        let times = if *count > 1 {
            format!(" ({count} times)")
        } else {
            String::new()
        };
        eprintln!("tracer: pid {pid} raised fatal error: {message}{times}");
    }
    eprintln!("tracer: stopped ({why}); all probes removed");
    eprint!("{}", result.summary.render(result.elapsed));
    race_log.summary(&Outcome {
        pid,
        executable: &result.name,
        stopped: &why,
        elapsed: Some(result.elapsed),
        cost: result.summary.cost,
        races: &result.races,
        fatal_errors: &result.fatal_errors,
    })?;
    Ok(!result.races.is_empty())
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// The executable labels of several targets: their names, with `#2`, `#3`… added to repeats so
/// two processes of one program keep separate series.
fn distinct_labels(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for name in names {
        let repeats = labels
            .iter()
            .filter(|label| label.split('#').next() == Some(name.as_str()))
            .count();
        labels.push(match repeats {
            0 => name,
            _ => format!("{name}#{}", repeats + 1),
        });
    }
    labels
}

/// The executable's file name: the bounded label that tells targets apart in metrics.
fn executable_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || display_name(path),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_executables_get_distinct_labels() {
        let names = ["api", "worker", "api", "api"].map(str::to_owned);
        assert_eq!(
            distinct_labels(names.into_iter()),
            ["api", "worker", "api#2", "api#3"]
        );
    }

    #[test]
    fn peak_memory_is_the_current_images_high_water_mark() {
        let status =
            "Name:\ttracer\nVmPeak:\t  900000 kB\nVmHWM:\t   69632 kB\nVmRSS:\t   51200 kB\n";
        assert_eq!(peak_resident_kb(status), Some(69_632));
        assert_eq!(peak_resident_kb("Name:\ttracer\n"), None);
        assert_eq!(peak_resident_kb("VmHWM:\t  lots\n"), None);
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(peak_resident_kb(&own).is_some_and(|kb| kb > 0), "{own}");
    }
}
