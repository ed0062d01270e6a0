//! The node agent's view of process starts: every successful `execve` on the machine, from the
//! kernel's `sched_process_exec` tracepoint — the program that ends a target's trace at its own
//! exec, loaded once more with [`ANY_PROCESS`] as its target — so a new process of a watched
//! program is found the moment it starts, without polling `/proc`.

use aya::{
    maps::{Array, MapData, RingBuf},
    programs::raw_trace_point::RawTracePointLink,
    EbpfLoader,
};
use tracer_common::{names, RuntimeConfig, ANY_PROCESS};

use super::{classify, take_map, watch_exec, EBPF_OBJECT};
use crate::{error::TracerError, events::op::Op};

/// Room for the execs of a busy node between two drains (88 bytes a record: about 3 000).
const WATCH_BUFFER_BYTES: u32 = 256 * 1024;

/// Watches every `execve`; [`ExecWatch::started`] says which processes started a new program.
pub struct ExecWatch {
    events: RingBuf<MapData>,
    /// Execs the kernel could not record (the ring buffer was full), in all.
    lost: Array<MapData, u64>,
    lost_seen: u64,
    _config: Array<MapData, RuntimeConfig>,
    _link: RawTracePointLink,
}

impl ExecWatch {
    /// Loads and attaches the watch (the other tables of the object are created at their
    /// smallest: the watch records no map operation and walks no stack).
    pub fn start() -> Result<Self, TracerError> {
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(names::SITES, 1)
            .map_max_entries(names::EVENTS, WATCH_BUFFER_BYTES)
            .map_max_entries(names::STACKS, 1)
            .map_max_entries(names::CALLER_STACKS, 1)
            .load(EBPF_OBJECT)
            .map_err(|error| classify("creating the execve watch's maps", &error))?;
        let mut config: Array<MapData, RuntimeConfig> =
            Array::try_from(take_map(&mut ebpf, names::CONFIG)?).map_err(anyhow::Error::from)?;
        let every_process = RuntimeConfig {
            target_pid: ANY_PROCESS,
            ..RuntimeConfig::default()
        };
        config
            .set(0, every_process, 0)
            .map_err(|error| classify("configuring the execve watch", &error))?;
        let link = watch_exec(&mut ebpf)?;
        let events =
            RingBuf::try_from(take_map(&mut ebpf, names::EVENTS)?).map_err(anyhow::Error::from)?;
        let lost =
            Array::try_from(take_map(&mut ebpf, names::LOST)?).map_err(anyhow::Error::from)?;
        Ok(Self {
            events,
            lost,
            lost_seen: 0,
            _config: config,
            _link: link,
        })
    }

    /// Whether execs went unrecorded since the last call (an exec storm filled the buffer): the
    /// processes started then must be looked for another way.
    pub fn missed_some(&mut self) -> bool {
        let lost = self.lost.get(&0, 0).unwrap_or(self.lost_seen);
        std::mem::replace(&mut self.lost_seen, lost) != lost
    }

    /// The processes (pids) that started a new program since the last call, in order.
    pub fn started(&mut self) -> Vec<u32> {
        let mut pids = Vec::new();
        while let Some(record) = self.events.next() {
            if let Some(event) = crate::events::decode(&record) {
                if event.op == Op::Exec {
                    pids.push(event.pid);
                }
            }
        }
        pids
    }
}
