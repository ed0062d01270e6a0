//! Stage 3, attach. In: the plan's kernel sites and a pid. Out: the kernel programs loaded and
//! attached ([`AttachedProbes`]), the ring buffer and counters they write to ([`KernelChannels`]);
//! also what a probe hit costs on this machine ([`calibrate`]) and whether tracer may do all this
//! ([`privileges`]).
//!
//! Loading the kernel programs and attaching a [`ProbePlan`](crate::plan::ProbePlan) to one process.
//!
//! All the sites of one program are attached through a single uprobe_multi link (Linux 6.6+):
//! the kernel then removes them together, after one RCU grace period, when the link is closed.
//! Attaching one perf-event uprobe per site (what aya's `UProbe::attach` does) costs a grace
//! period *per site* on detach — about 0.1 s each, minutes for a binary with hundreds of inlined
//! sync sites. aya 0.14 cannot load a program for uprobe_multi links (the expected attach type
//! must be set at load time), so the program is loaded here from the relocated object; aya still
//! creates and reads the maps.

pub mod calibrate;
mod exec_watch;
pub mod kernel_layout;
pub mod privileges;
mod ring;

pub use exec_watch::ExecWatch;
pub use ring::EventRing;

use std::{
    ffi::{CStr, CString},
    io,
    os::{
        fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use aya::{
    maps::{Array, Map, MapData, PerCpuArray, StackTraceMap},
    programs::{raw_trace_point::RawTracePointLink, RawTracePoint},
    Ebpf, EbpfLoader,
};
use aya_obj::generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_insn, bpf_prog_type};
use tracer_common::{names, ProbeClass, RuntimeConfig, SiteParams, MAX_SITES};

use crate::{
    error::TracerError,
    plan::{cold::WatchedCall, sites::KernelSite},
};

/// The kernel programs, built by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Attached probes: closing the links detaches every site of the plan at once. Sampling
/// windows [`pause`](Self::pause) and [`resume`](Self::resume) them: the programs, maps and
/// the execve watch stay loaded in between.
pub struct AttachedProbes {
    /// One per probe class; empty while paused.
    links: Vec<OwnedFd>,
    /// The sites that stay in place while the others are paused (see
    /// [`KernelSite::always_in_place`]).
    _permanent: Vec<OwnedFd>,
    /// Notices the process's `execve` (in the event stream, after its last event).
    _exec_watch: RawTracePointLink,
    /// What each link places: a loaded program at its sites.
    classes: Vec<ClassSites>,
    /// The cold-code watch (see `plan::cold`), in place between windows too.
    watch: Watch,
    /// The executable as a path the kernel can open.
    target: CString,
    pid: u32,
    /// The window's number while every probe is in place, else 0 (see
    /// [`AttachedProbes::pause`]).
    recording: Array<MapData, u32>,
    /// The last window's number: each window gets a new one, so that a map access in one never
    /// passes for a repeat of an access in an earlier one.
    window: u32,
    /// The per-site parameters and runtime layout the programs read.
    _tables: (
        Array<MapData, SiteParams>,
        Array<MapData, RuntimeConfig>,
        Vec<Map>,
    ),
    pub attached: usize,
}

/// What userspace reads from the kernel while tracing.
pub struct KernelChannels {
    pub events: EventRing,
    pub counters: PerCpuArray<MapData, u64>,
    /// User stacks, by the ids events carry.
    pub stacks: StackTraceMap<MapData>,
}

/// Loads the programs and attaches every site of `sites` to `target` (the executable as a path
/// the kernel can open, e.g. `/proc/PID/exe`), for process `pid` only: one uprobe_multi link
/// per probe class, and one watching the `watched` calls (each with its index as the cookie).
/// Events go through a ring buffer of `buffer_bytes`.
pub fn attach(
    sites: &[KernelSite],
    watched: &[WatchedCall],
    config: RuntimeConfig,
    target: &Path,
    pid: u32,
    buffer_bytes: u32,
) -> Result<(AttachedProbes, KernelChannels), TracerError> {
    let site_count = u32::try_from(sites.len())
        .ok()
        .filter(|&count| count <= MAX_SITES)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} probe sites exceed the limit of {MAX_SITES}",
                sites.len()
            )
        })?;
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(names::SITES, site_count.max(1))
        .map_max_entries(names::EVENTS, buffer_bytes)
        .load(EBPF_OBJECT)
        .map_err(|error| classify("creating the eBPF maps", &error))?;
    let exec_watch = watch_exec(&mut ebpf)?;
    let events = take_map(&mut ebpf, names::EVENTS)?;
    let counters = take_map(&mut ebpf, names::COUNTERS)?;
    let site_table = take_map(&mut ebpf, names::SITES)?;
    let config_table = take_map(&mut ebpf, names::CONFIG)?;
    let stacks = take_map(&mut ebpf, names::STACKS)?;
    let recording = take_map(&mut ebpf, names::RECORDING)?;
    let kernel_only = names::KERNEL_ONLY
        .into_iter()
        .map(|name| take_map(&mut ebpf, name))
        .collect::<Result<Vec<_>, _>>()?;
    let mut map_fds = vec![
        (names::EVENTS, raw_fd(&events)?),
        (names::COUNTERS, raw_fd(&counters)?),
        (names::SITES, raw_fd(&site_table)?),
        (names::CONFIG, raw_fd(&config_table)?),
        (names::STACKS, raw_fd(&stacks)?),
        (names::RECORDING, raw_fd(&recording)?),
    ];
    for (name, map) in names::KERNEL_ONLY.into_iter().zip(&kernel_only) {
        map_fds.push((name, raw_fd(map)?));
    }
    let mut site_array: Array<MapData, SiteParams> =
        Array::try_from(site_table).map_err(anyhow::Error::from)?;
    for (index, site) in (0u32..).zip(sites) {
        site_array
            .set(index, site.params, 0)
            .map_err(|error| classify("writing the probe sites", &error))?;
    }
    let recording = Array::try_from(recording).map_err(anyhow::Error::from)?;
    let mut config_array: Array<MapData, RuntimeConfig> =
        Array::try_from(config_table).map_err(anyhow::Error::from)?;
    config_array
        .set(0, config, 0)
        .map_err(|error| classify("writing the runtime layout", &error))?;

    let mut classes = Vec::new();
    let mut permanent = Vec::new();
    for class in ProbeClass::ALL {
        let of_class = |always: bool| -> (Vec<u64>, Vec<u64>) {
            (0u64..)
                .zip(sites)
                .filter(|(_, site)| site.class == class && site.always_in_place() == always)
                .map(|(index, site)| (site.file_offset, index))
                .unzip()
        };
        for always in [false, true] {
            let (offsets, cookies) = of_class(always);
            if offsets.is_empty() {
                continue;
            }
            let program = match (always, class.always_program()) {
                (false, _) => class.program(),
                (true, Some(program)) => program,
                (true, None) => {
                    return Err(anyhow::anyhow!(
                        "{class:?} probes cannot stay in place between windows"
                    )
                    .into())
                }
            };
            let sites = ClassSites {
                program: load_program(program, &map_fds)?,
                offsets,
                cookies,
            };
            match always {
                true => permanent.push(sites),
                false => classes.push(sites),
            }
        }
    }
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| anyhow::anyhow!("executable path contains a NUL byte"))?;
    let permanent = permanent
        .iter()
        .map(|sites| attach_uprobe_multi(sites, &target, pid))
        .collect::<Result<_, _>>()?;
    let watch = Watch {
        program: load_program(ProbeClass::ColdWatch.program(), &map_fds)?,
        offsets: watched.iter().map(|call| call.file_offset).collect(),
        chunks: Vec::new(),
    };
    let channels = KernelChannels {
        events: match events {
            Map::RingBuf(data) => EventRing::new(data, buffer_bytes)?,
            other => return Err(anyhow::anyhow!("unexpected events map {other:?}").into()),
        },
        counters: PerCpuArray::try_from(counters).map_err(anyhow::Error::from)?,
        stacks: StackTraceMap::try_from(stacks).map_err(anyhow::Error::from)?,
    };
    let mut probes = AttachedProbes {
        links: Vec::new(),
        _permanent: permanent,
        recording,
        window: 0,
        _exec_watch: exec_watch,
        classes,
        watch,
        target,
        pid,
        _tables: (site_array, config_array, kernel_only),
        attached: sites.len(),
    };
    probes.watch_only(0..watched.len() as u32)?;
    probes.resume()?;
    Ok((probes, channels))
}

/// The cold-code watch's program, every call it may watch, and the links placing those it
/// does: one per [`WATCH_CHUNK`] calls, so that dropping a call re-places only its chunk (each
/// breakpoint removed costs about 0.1 ms, and a big program has tens of thousands of calls).
struct Watch {
    program: OwnedFd,
    /// Every call's file offset, by index.
    offsets: Vec<u64>,
    /// Per chunk: the calls it places now, and its link (none when it places none).
    chunks: Vec<(Vec<u32>, Option<OwnedFd>)>,
}

/// Calls per link of the cold-code watch.
const WATCH_CHUNK: usize = 512;

/// One probe class's program and where it goes: file offsets, each with its site's index as
/// the cookie.
struct ClassSites {
    program: OwnedFd,
    offsets: Vec<u64>,
    cookies: Vec<u64>,
}

impl AttachedProbes {
    /// Removes every probe from the process (the breakpoints are gone when this returns).
    /// Closing a link waits for an RCU grace period: the links are closed together, so that
    /// the waits overlap. Removing them takes 150–200 ms on a busy target, during which the
    /// probes still trap: the programs stop recording first, so that those hits cost only
    /// their trap.
    pub fn pause(&mut self) {
        self.set_recording(false);
        std::thread::scope(|scope| {
            for link in self.links.drain(..) {
                scope.spawn(move || drop(link));
            }
        });
    }

    /// Places every probe again (a no-op while they are in place).
    pub fn resume(&mut self) -> Result<(), TracerError> {
        if !self.links.is_empty() {
            return Ok(());
        }
        // All or nothing: a half-placed set would only mislead the analysis, so nothing is
        // recorded until every probe is in place.
        self.links = self
            .classes
            .iter()
            .map(|class| attach_uprobe_multi(class, &self.target, self.pid))
            .collect::<Result<_, _>>()?;
        self.set_recording(true);
        Ok(())
    }

    fn set_recording(&mut self, on: bool) {
        let window = match on {
            true => {
                self.window = self.window.checked_add(1).unwrap_or(1);
                self.window
            }
            false => 0,
        };
        if let Err(error) = self.recording.set(0, window, 0) {
            // Only a bug could cause this; the analysis marks stay right either way.
            log::warn!("could not switch the probes' recording: {error}");
        }
    }

    pub fn is_paused(&self) -> bool {
        self.links.is_empty()
    }

    /// Watches the calls of the given indices (of the `watched` calls given to [`attach`]) from
    /// now on, and no others: each chunk whose calls change gets a new link, in place before
    /// its old one goes, so that no call kept goes unwatched meanwhile.
    pub fn watch_only(&mut self, calls: impl Iterator<Item = u32>) -> Result<(), TracerError> {
        let watch = &mut self.watch;
        let chunk_count = watch.offsets.len().div_ceil(WATCH_CHUNK);
        let mut wanted: Vec<Vec<u32>> = vec![Vec::new(); chunk_count];
        for call in calls.filter(|&call| (call as usize) < watch.offsets.len()) {
            wanted[call as usize / WATCH_CHUNK].push(call);
        }
        watch.chunks.resize_with(chunk_count, || (Vec::new(), None));
        for (calls, (placed, link)) in wanted.into_iter().zip(&mut watch.chunks) {
            if calls == *placed && (link.is_some() || calls.is_empty()) {
                continue;
            }
            let offsets: Vec<u64> = calls
                .iter()
                .map(|&call| watch.offsets[call as usize])
                .collect();
            let cookies: Vec<u64> = calls.iter().map(|&call| u64::from(call)).collect();
            *link = match offsets.is_empty() {
                true => None,
                false => Some(attach_program(
                    &watch.program,
                    &offsets,
                    &cookies,
                    &self.target,
                    self.pid,
                )?),
            };
            *placed = calls;
        }
        Ok(())
    }
}

/// Places an empty program (`return 0`) at `file_offset` of tracer's own executable, for this
/// process only: measuring what a hit costs (see `calibrate`). Removed with the link.
pub fn probe_own_code(file_offset: u64) -> Result<OwnedFd, TracerError> {
    // SAFETY: an all-zero instruction is valid; only the opcode is set.
    let instruction = |code: u8| bpf_insn {
        code,
        ..unsafe { std::mem::zeroed() }
    };
    // BPF_ALU64 | BPF_MOV | BPF_K (r0 = 0), then BPF_JMP | BPF_EXIT.
    let return_zero = [instruction(0xb7), instruction(0x95)];
    let class = ClassSites {
        program: load_instructions("calibration", &return_zero, c"GPL")?,
        offsets: vec![file_offset],
        cookies: vec![0],
    };
    let own = CString::new("/proc/self/exe").expect("no NUL byte");
    attach_uprobe_multi(&class, &own, std::process::id())
}

impl KernelChannels {
    /// The program counters of walked stack `id`, innermost first (empty if it is gone).
    pub fn stack(&self, id: u32) -> Vec<u64> {
        self.stacks
            .get(&id, 0)
            .map(|trace| trace.frames().iter().map(|frame| frame.ip).collect())
            .unwrap_or_default()
    }

    /// Sum over CPUs of one of the kernel's counters (`tracer_common::counter`).
    pub fn counter(&self, index: u32) -> u64 {
        self.counters
            .get(&index, 0)
            .map_or(0, |per_cpu| per_cpu.iter().sum())
    }
}

/// Attaches the program that records the traced process's `execve` (it reads the pid from
/// `CONFIG`). The link outlives `ebpf`, and the kernel keeps the program with it.
fn watch_exec(ebpf: &mut Ebpf) -> Result<RawTracePointLink, TracerError> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(names::EXEC_PROGRAM)
        .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {} program", names::EXEC_PROGRAM))?
        .try_into()
        .map_err(anyhow::Error::from)?;
    program
        .load()
        .map_err(|error| classify("loading the execve watch", &error))?;
    let link = program
        .attach(names::EXEC_TRACEPOINT)
        .map_err(|error| classify("attaching the execve watch", &error))?;
    program
        .take_link(link)
        .map_err(|error| anyhow::anyhow!("keeping the execve watch: {error}").into())
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<Map, TracerError> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {name} map").into())
}

fn raw_fd(map: &Map) -> Result<RawFd, TracerError> {
    let (Map::RingBuf(data)
    | Map::PerCpuArray(data)
    | Map::Array(data)
    | Map::StackTraceMap(data)
    | Map::LruHashMap(data)) = map
    else {
        return Err(anyhow::anyhow!("unexpected map type {map:?}").into());
    };
    Ok(data.fd().as_fd().as_raw_fd())
}

/// Loads program `name` for uprobe_multi links, with its map references pointing at `map_fds`.
fn load_program(name: &str, map_fds: &[(&str, RawFd)]) -> Result<OwnedFd, TracerError> {
    let mut object = aya_obj::Object::parse(EBPF_OBJECT)
        .map_err(|error| anyhow::anyhow!("parsing the eBPF object: {error}"))?;
    let text_sections = object
        .functions
        .keys()
        .map(|(section_index, _)| *section_index)
        .collect();
    let maps: Vec<(&str, RawFd, aya_obj::Map)> = map_fds
        .iter()
        .map(|&(map, fd)| {
            let definition = object
                .maps
                .get(map)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {map} map"))?;
            Ok((map, fd, definition))
        })
        .collect::<Result<_, anyhow::Error>>()?;
    // A map left out would not fail the relocation: its references would point elsewhere.
    if let Some(missing) = object
        .maps
        .keys()
        .find(|name| !map_fds.iter().any(|(given, _)| given == name))
    {
        return Err(anyhow::anyhow!("no map was created for the eBPF object's {missing}").into());
    }
    object
        .relocate_maps(
            maps.iter()
                .map(|(map, fd, definition)| (*map, *fd, definition)),
            &text_sections,
        )
        .and_then(|()| object.relocate_calls(&text_sections))
        .map_err(|error| anyhow::anyhow!("relocating the eBPF object: {error}"))?;
    let program = object
        .programs
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {name} program"))?;
    let function = &object.functions[&program.function_key()];
    load_instructions(name, &function.instructions, &program.license)
}

/// Loads `instructions` as program `name` for uprobe_multi links.
fn load_instructions(
    name: &str,
    instructions: &[bpf_insn],
    license: &CStr,
) -> Result<OwnedFd, TracerError> {
    let load = |log: &mut [u8]| {
        // SAFETY: an all-zero bpf_attr is the documented way to start one.
        let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
        // SAFETY: writing the BPF_PROG_LOAD member of the union.
        let load = unsafe { &mut attr.__bindgen_anon_3 };
        load.prog_type = bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32;
        load.expected_attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
        load.insn_cnt = instructions.len() as u32;
        load.insns = instructions.as_ptr() as u64;
        load.license = license.as_ptr() as u64;
        if !log.is_empty() {
            load.log_level = 1;
            load.log_size = log.len() as u32;
            load.log_buf = log.as_mut_ptr() as u64;
        }
        for (slot, byte) in load.prog_name.iter_mut().zip(name.bytes().take(15)) {
            *slot = byte as libc::c_char;
        }
        bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr)
    };
    // Without a log first: the verifier's log of a program this size can outgrow any buffer,
    // and a full buffer fails the load. Only a rejected program is loaded again for its log,
    // whose end says why.
    load(&mut []).map_err(|error| {
        let mut log = vec![0u8; 1 << 24];
        let retried = load(&mut log);
        let written = &log[..log.iter().position(|&byte| byte == 0).unwrap_or(log.len())];
        let verifier = String::from_utf8_lossy(written);
        // The last lines (cut on bytes, which cannot split a character in two).
        let end = &written[written.len().saturating_sub(2000)..];
        let end = &end[end
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(0, |i| i + 1)..];
        let tail = String::from_utf8_lossy(end);
        let tail = tail.trim();
        log::debug!(
            "verifier log of {name} ({:?}):\n{verifier}",
            retried.as_ref().err()
        );
        classify(
            &format!("loading the {name} program (verifier: {tail})"),
            &error,
        )
    })
}

/// One link placing a class's program at each of its file offsets of `target`, each with its
/// cookie, for process `pid` only (the kernel does not even place breakpoints in other
/// processes).
fn attach_uprobe_multi(
    class: &ClassSites,
    target: &CString,
    pid: u32,
) -> Result<OwnedFd, TracerError> {
    attach_program(&class.program, &class.offsets, &class.cookies, target, pid)
}

/// [`attach_uprobe_multi`], for a program and its offsets and cookies given apart.
fn attach_program(
    program: &OwnedFd,
    offsets: &[u64],
    cookies: &[u64],
    target: &CString,
    pid: u32,
) -> Result<OwnedFd, TracerError> {
    // SAFETY: an all-zero bpf_attr is the documented way to start one.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the BPF_LINK_CREATE member of the union.
    let link = unsafe { &mut attr.link_create };
    link.__bindgen_anon_1.prog_fd = program.as_raw_fd() as u32;
    link.attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
    // SAFETY: writing the uprobe_multi member of the link_create union.
    let multi = unsafe { &mut link.__bindgen_anon_3.uprobe_multi };
    multi.path = target.as_ptr() as u64;
    multi.offsets = offsets.as_ptr() as u64;
    multi.cookies = cookies.as_ptr() as u64;
    multi.cnt = offsets.len() as u32;
    multi.pid = pid;
    bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr).map_err(|error| {
        if error.raw_os_error() == Some(libc::ESRCH) {
            return TracerError::NoSuchProcess(pid);
        }
        classify(
            &format!(
                "attaching {} probes to {}",
                offsets.len(),
                target.to_string_lossy()
            ),
            &error,
        )
    })
}

/// The bpf(2) system call for commands that return a new file descriptor.
fn bpf(command: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid, fully initialised bpf_attr whose pointers outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command as libc::c_long,
            std::ptr::from_mut::<bpf_attr>(attr),
            size_of::<bpf_attr>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Missing privileges get their own error (and exit status); everything else is a refusal.
fn classify(what: &str, error: &(dyn std::error::Error + 'static)) -> TracerError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io_error) = current.downcast_ref::<io::Error>() {
            if matches!(io_error.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                return TracerError::NoPrivileges(format!(
                    "{what}: {io_error}; {}",
                    privileges::REQUIRED
                ));
            }
        }
        cause = current.source();
    }
    TracerError::ProbesRejected(format!("{what}: {}", error_chain(error)))
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}
