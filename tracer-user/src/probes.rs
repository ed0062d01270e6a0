//! Loading the kernel programs and attaching a [`ProbePlan`] to one process. Dropping
//! [`AttachedProbes`] detaches every probe; the ring buffer and counters outlive it so the last
//! events can still be drained.

use std::{io, num::NonZeroU32, path::Path};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope},
        UProbe,
    },
    Ebpf,
};
use tracer_common::{names, ProbeCookie};

use crate::{error::TracerError, plan::ProbePlan};

/// The kernel programs, built by build.rs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Attached probes (detached on drop).
///
/// Detaching costs about 0.1 s per probe here: the kernel waits for an RCU grace period when a
/// uprobe perf event is closed, under a global mutex, so closing them in parallel does not help.
pub struct AttachedProbes {
    _ebpf: Ebpf,
    pub attached: usize,
}

/// What userspace reads from the kernel while tracing.
pub struct KernelChannels {
    pub events: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
}

/// Loads the programs and attaches every map-write site of `plan` to `target` (the executable as
/// a path the kernel can open, e.g. `/proc/PID/exe`), for process `pid` only. `goid_offset` is
/// where `runtime.g` keeps the goroutine id in the target's Go version.
pub fn attach(
    plan: &ProbePlan,
    goid_offset: u16,
    target: &Path,
    pid: u32,
) -> Result<(AttachedProbes, KernelChannels), TracerError> {
    let mut ebpf =
        Ebpf::load(EBPF_OBJECT).map_err(|error| classify("loading the eBPF programs", &error))?;
    let events = ebpf
        .take_map(names::EVENTS)
        .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {} map", names::EVENTS))?;
    let counters = ebpf
        .take_map(names::COUNTERS)
        .ok_or_else(|| anyhow::anyhow!("the eBPF object has no {} map", names::COUNTERS))?;
    let channels = KernelChannels {
        events: RingBuf::try_from(events).map_err(anyhow::Error::from)?,
        counters: PerCpuArray::try_from(counters).map_err(anyhow::Error::from)?,
    };
    let program: &mut UProbe = ebpf
        .program_mut(names::MAP_WRITE_PROGRAM)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the eBPF object has no {} program",
                names::MAP_WRITE_PROGRAM
            )
        })?
        .try_into()
        .map_err(anyhow::Error::from)?;
    program
        .load()
        .map_err(|error| classify("loading the map-write program", &error))?;
    let scope = UProbeScope::OneProcess(
        NonZeroU32::new(pid).ok_or_else(|| anyhow::anyhow!("pid 0 cannot be traced"))?,
    );
    let mut attached = 0;
    for site in &plan.sites {
        let Some(kind) = site.map_write_kind() else {
            continue;
        };
        let cookie = ProbeCookie {
            kind,
            key: site.key,
            goid_offset,
        };
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(site.file_offset),
            cookie: Some(cookie.pack()),
        };
        program.attach(point, target, scope).map_err(|error| {
            classify(
                &format!("attaching to {} at {:#x}", site.function, site.address),
                &error,
            )
        })?;
        attached += 1;
    }
    let probes = AttachedProbes {
        _ebpf: ebpf,
        attached,
    };
    Ok((probes, channels))
}

impl KernelChannels {
    /// Sum over CPUs of one of the kernel's counters (`tracer_common::counter`).
    pub fn counter(&self, index: u32) -> u64 {
        self.counters
            .get(&index, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}

/// Missing privileges get their own error (and exit status); everything else is a refusal.
fn classify(what: &str, error: &(dyn std::error::Error + 'static)) -> TracerError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io_error) = current.downcast_ref::<io::Error>() {
            if matches!(io_error.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                return TracerError::NoPrivileges(format!(
                    "{what}: {io_error}; {}",
                    crate::privileges::REQUIRED
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
