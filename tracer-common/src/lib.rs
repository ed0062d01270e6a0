//! Layouts shared by the kernel programs (`tracer-ebpf`) and userspace (`tracer-user`).
//!
//! Everything here is `#[repr(C)]`, fixed-size and `no_std`, because the same bytes are written
//! by one side and read by the other: records in the ring buffer, per-site parameters and the
//! runtime layout in BPF array maps.
#![cfg_attr(not(test), no_std)]

/// Declares [`EventKind`] from one list, so the enum, [`EventKind::ALL`], [`EventKind::from_u8`]
/// and [`EventKind::name`] cannot drift apart.
macro_rules! event_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident = $value:literal => $name:literal,)*) => {
        /// What a traced operation did. The discriminant is stored in [`RawEvent::kind`] and
        /// [`SiteParams::kind`], so values are stable: append, never renumber.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventKind {
            $($(#[doc = $doc])* $kind = $value,)*
        }

        impl EventKind {
            /// Every kind, in discriminant order.
            pub const ALL: [Self; [$($value),*].len()] = [$(Self::$kind),*];

            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$kind),)*
                    _ => None,
                }
            }

            /// The operation's name in every output (`"op"` in recordings, the summary).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }
        }
    };
}

event_kinds! {
    /// `m[k] = v` and friends (`runtime.mapassign*`).
    MapAssign = 1 => "assign",
    /// `delete(m, k)` (`runtime.mapdelete*`).
    MapDelete = 2 => "delete",
    /// `clear(m)` and the range-and-delete idiom (`runtime.mapclear`).
    MapClear = 3 => "clear",
    /// `v := m[k]`, `v, ok := m[k]` (`runtime.mapaccess*`).
    MapRead = 4 => "read",
    /// Start of a `for range` over a map.
    MapIterStart = 5 => "iterate",
    /// Each further step of a `for range` over a map.
    MapIterNext = 6 => "iterate-next",
    /// A map was created (`makemap*` returned it).
    MapMake = 7 => "make-map",
    ChanMake = 8 => "make-chan",
    ChanSend = 9 => "send",
    /// Entry of a receive (`chanrecv1/2`).
    ChanReceive = 10 => "receive",
    /// A receive returned (it got a value or saw the channel closed).
    ChanReceiveDone = 11 => "receive-done",
    ChanClose = 12 => "close",
    /// `select` with one case and `default`: entry.
    SelectNonBlocking = 13 => "select-nb",
    /// `select` with one case and `default`: return (whether the case ran).
    SelectNonBlockingDone = 14 => "select-nb-done",
    /// `selectgo` returned: `arg` = chosen case, flags carry whether a receive got a value.
    SelectChosen = 15 => "select",
    /// `go f()`: `object` = the new goroutine's id, `goroutine` = its parent.
    GoroutineCreate = 16 => "go",
    GoroutineExit = 17 => "exit",
    /// `runtime.fatal`/`throw`: `object` = message pointer, `arg` = its length.
    Fatal = 18 => "fatal",
    /// Entry of an out-of-line sync function or slow path (`object` = its first argument).
    SyncEnter = 19 => "sync-enter",
    /// Return of an out-of-line sync function or slow path.
    SyncExit = 20 => "sync-exit",
    /// Inlined `Mutex.Lock` fast path, after the CAS (flags: acquired or not).
    MutexLock = 21 => "lock",
    /// Inlined `Mutex.Unlock`, before the release.
    MutexUnlock = 22 => "unlock",
    MutexTryLock = 23 => "trylock",
    /// Inlined `RWMutex.RLock`, after the XADD (`arg` = the reader count it read, or that count
    /// plus one when the probe sits after the increment Go tests: the same sign in every state
    /// a RWMutex can be in, negative by about 2^30 while a writer waits).
    RwMutexRLock = 24 => "rlock",
    /// Inlined `RWMutex.RUnlock`, before the release.
    RwMutexRUnlock = 25 => "runlock",
    /// Inlined `Once.Do`, after loading `done` (`arg` = its value).
    OnceDo = 26 => "once",
    /// Inlined `WaitGroup.Done` (a call to Add(-1), also seen by Add's entry probe).
    WaitGroupDone = 27 => "done",
    /// A send (`chansend1`) returned: the value was handed over or buffered.
    ChanSendDone = 28 => "send-done",
    /// `atomic.Value.Store/Swap/CompareAndSwap`: `object` = the data word of the stored value
    /// (for a map, the map itself), `arg` = the Value.
    AtomicPublish = 29 => "atomic-publish",
    /// Entry of `runtime.newproc`: a `go` statement runs, with the user stack that created the
    /// goroutine (the `GoroutineCreate` that follows, on the system stack, has none).
    GoStatement = 30 => "go-statement",
    /// `Once.doSlow` is about to store `done = 1` (`object` = the Once).
    OnceDone = 31 => "once-done",
    /// `sync.(*Pool).Put` entry: `object` = the data word of the value put.
    PoolPut = 32 => "pool-put",
    /// `sync.(*Pool).Get` returned: `object` = the data word of the value got (0 if none).
    PoolGet = 33 => "pool-get",
    /// `time.AfterFunc` entry: `object` = the callback (func value).
    TimerArm = 34 => "timer-arm",
    /// `time.goFunc` entry, where a timer starts its callback's goroutine: `object` = the
    /// callback.
    TimerFire = 35 => "timer-fire",
    /// An inlined typed atomic write, before it: `object` = the atomic word.
    AtomicRelease = 36 => "atomic-release",
    /// An inlined typed atomic read, after it: `object` = the atomic word.
    AtomicAcquire = 37 => "atomic-acquire",
    /// `selectgo` entry: a blocking `select` starts (its cases may complete at once); `arg` =
    /// its number of cases.
    SelectEnter = 38 => "select-enter",
    /// One case of the `select` that just started: `object` = its channel, `arg` = its index,
    /// with [`SELECT_CASE_SEND`] set for a send.
    SelectCase = 39 => "select-case",
    /// A value entered or left a channel's buffer, under the channel's lock (the calls that
    /// copy into or clear a slot in `chansend`, `chanrecv` and `selectgo`): `object` = the
    /// pointer passed, a slot when it lies in the buffer of the channel being operated on.
    ChanSlot = 40 => "chan-slot",
    /// `runtime.send` / `runtime.recv`: a value passes between this goroutine and a parked one,
    /// under the channel's lock: `object` = the slot it goes through (`buf + recvx·elemsize`;
    /// `buf` itself for an unbuffered channel), `arg` = the parked goroutine's id.
    ChanHandOff = 41 => "hand-off",
    /// The traced process replaced its program (`execve`): what follows is not the program
    /// traced, and tracing it ends here.
    Exec = 42 => "exec",
    /// In `RWMutex.Lock`, after the writer announced itself to the readers (or counted those
    /// still inside): readers that have left released before (`object` = the RWMutex).
    RwMutexReadersChecked = 43 => "readers-checked",
}

/// How the key of a map operation is passed at the probed entry point (Go ABIInternal).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyClass {
    /// No key (`mapclear`) or a key passed by pointer that is not worth copying (generic maps).
    None = 0,
    /// `*_fast32`: the key is the low 32 bits of RCX.
    U32 = 1,
    /// `*_fast64` and `*_fast64ptr`: the key is RCX.
    U64 = 2,
    /// `*_faststr`: RCX is the string data pointer and RDI its length; only the length is kept.
    Str = 3,
    /// Not a map key: a channel event's buffer address (its shape is in
    /// [`RawEvent::buffer_shape`]).
    ChannelBuffer = 4,
}

impl KeyClass {
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::U32,
            2 => Self::U64,
            3 => Self::Str,
            4 => Self::ChannelBuffer,
            _ => Self::None,
        }
    }
}

/// Registers by index, in the order userspace and the kernel programs agree on.
pub mod register {
    pub const RAX: u8 = 0;
    pub const RBX: u8 = 1;
    pub const RCX: u8 = 2;
    pub const RDX: u8 = 3;
    pub const RSI: u8 = 4;
    pub const RDI: u8 = 5;
    pub const RBP: u8 = 6;
    pub const RSP: u8 = 7;
    /// R8 … R15 are 8 … 15.
    pub const R8: u8 = 8;
    /// The running goroutine's `g` in Go's register ABI.
    pub const R14: u8 = 14;
    /// No register: the value is 0.
    pub const NONE: u8 = 0xff;
}

/// Where a site's `object` comes from.
pub mod object {
    /// Nothing (0).
    pub const NONE: u8 = 0;
    /// `base + offset`.
    pub const REGISTER: u8 = 1;
    /// `*(u64 *)(base + at) + offset`.
    pub const LOAD: u8 = 2;
    /// `rip + offset`: a global, wherever the executable was loaded.
    pub const RIP_RELATIVE: u8 = 3;
    /// The goroutine id of the g in `base` (after `newproc1`); `arg` gets its parent's id.
    pub const CHILD_GOROUTINE: u8 = 4;
    /// `runtime.send`/`recv(c, sg, …)`: the slot the value goes through, from the channel in
    /// `base`; `arg` gets the goroutine id of the sudog in the `arg` register.
    pub const HAND_OFF: u8 = 5;
    /// `*(u64 *)(*(u64 *)(base + at) + then) + offset`: a pointer reached through two loads.
    pub const LOAD_TWICE: u8 = 6;
    /// The flow of data the file descriptor in `base` writes to: one direction of a TCP
    /// connection (its local then remote address and port) or of a connected Unix socket (its
    /// own then its peer's kernel socket), or a pipe's or file's inode
    /// (see [`super::KernelLayout`]); `arg` gets the descriptor. 0 when unknown.
    pub const WRITTEN_FLOW: u8 = 7;
    /// The flow of data the file descriptor in `base` reads from: for a connection, what the
    /// other end writes to (remote then local); `arg` gets the descriptor.
    pub const READ_FLOW: u8 = 8;
}

/// [`SiteParams::guard`] values.
pub mod guard {
    /// Always recorded.
    pub const NONE: u8 = 0;
    /// Recorded only when a call returned to the probed instruction just now: its return
    /// address is still the word below the stack pointer (Go frames call from one stack
    /// depth, and nothing else in the frame writes there). For a probe after a call where other
    /// paths join the code.
    pub const RETURNED_HERE: u8 = 1;
}

/// When a site's operation takes effect, relative to where it is recorded.
pub mod effect {
    /// Where it is recorded.
    pub const AT_ONCE: u8 = 0;
    /// A release recorded on the `CALL` of a map function that comes before its atomic
    /// instruction with nothing the kernel emulates in between (`mu.RLock(); v := m[k];
    /// mu.RUnlock()`): it takes effect after that call's map event, which the map function's
    /// entry probe records next for this goroutine. The event says so
    /// ([`super::event_flags::AFTER_MAP_CALL`]) unless the call's map (in RBX) lies on the
    /// goroutine's own stack, whose map events are not recorded.
    pub const AFTER_MAP_CALL: u8 = 1;
}

/// [`SiteParams::flags`] bits.
pub mod site_flags {
    /// Drop the event when the object lies on the current goroutine's own stack (a map that
    /// never escaped cannot be shared).
    pub const SKIP_STACK_OBJECTS: u8 = 1;
    /// Record ZF of the trapped instruction's flags (a compare-and-swap's success).
    pub const ZERO_FLAG: u8 = 2;
    /// Record the return address at `*(RSP)` (entry probes) as the caller.
    pub const CALLER_AT_SP: u8 = 4;
    /// Record a user stack (walked once per distinct call path, see `CALLER_STACKS`).
    pub const CAPTURE_STACK: u8 = 8;
    /// `selectgo` entry: also record each case's channel (`SelectCase` events), and put the
    /// number of cases in the event's `arg`.
    pub const SELECT_CASES: u8 = 16;
    /// The object is a channel: record its buffer (`key` = its address, with
    /// [`super::KeyClass::ChannelBuffer`], and [`super::RawEvent::buffer_shape`]).
    pub const CHANNEL_BUFFER: u8 = 32;
    /// The kernel single-steps the probed instruction (it emulates only pushes, jumps, calls
    /// and one-byte NOPs): such a hit costs several times more, which the overhead budget
    /// needs to know (`counter::STEPPED_HITS`).
    pub const SINGLE_STEPPED: u8 = 64;
    /// Record as ZF whether the low byte of the `arg` register is non-zero: a `SETE` kept a
    /// compare-and-swap's ZF there, and the probe sits further on, where the kernel emulates.
    pub const ZERO_FLAG_IN_ARG: u8 = 128;
}

/// A channel's capacity and element size packed into [`RawEvent::buffer_shape`] (the element
/// size is a `uint16` in `runtime.hchan`).
pub const fn buffer_shape(capacity: u64, element_size: u64) -> u64 {
    (capacity & BUFFER_CAPACITY_MASK) | (element_size << 48)
}

/// The capacity bits of a [`buffer_shape`].
pub const BUFFER_CAPACITY_MASK: u64 = (1 << 48) - 1;

/// Words of the running `runtime.g` the programs read at once for a map event (and a release on a
/// map call): its stack bounds, goid, start function and m (offsets 0–304 in Go 1.21–1.27;
/// userspace refuses a layout whose fields lie further).
pub const G_PREFIX_WORDS: usize = 40;

/// The most `select` cases whose channels are recorded; a larger select is modelled coarsely.
pub const MAX_SELECT_CASES: u64 = 8;

/// In a `SelectCase` event's `arg`: the case is a send (the low 32 bits are its index).
pub const SELECT_CASE_SEND: u64 = 1 << 32;

/// What one probe site records: everything the kernel program of its class needs to know about
/// that instruction. Stored in the `SITES` array; the attach cookie is the site's index.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteParams {
    /// An [`EventKind`] discriminant.
    pub kind: u8,
    /// A [`KeyClass`] discriminant (map entry sites).
    pub key: u8,
    /// An [`object`] source.
    pub object: u8,
    /// The base register of the object ([`register`] index).
    pub base: u8,
    /// Register copied into [`RawEvent::arg`] ([`register::NONE`] for none).
    pub arg: u8,
    /// [`site_flags`] bits.
    pub flags: u8,
    /// A [`guard`]: a condition the event is recorded under.
    pub guard: u8,
    /// An [`effect`]: when the recorded operation takes effect.
    pub effect: u8,
    /// For [`object::LOAD`] and [`object::LOAD_TWICE`]: where the pointer is, relative to the
    /// base.
    pub at: i32,
    /// For [`object::LOAD_TWICE`]: where the second pointer is, relative to the first.
    pub then: i32,
    /// Added to the base, the loaded pointer, or RIP.
    pub offset: i64,
}

/// Member offsets of the running kernel's structs (from its BTF), for finding a file
/// descriptor's flow of data: `task_struct.files → files_struct.fdt → fdtable.fd[fd] → file`,
/// then the file's inode, and for a socket its `sock_common` addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelLayout {
    pub task_files: u16,
    pub files_fdt: u16,
    pub fdt_max_fds: u16,
    pub fdt_fd: u16,
    pub file_inode: u16,
    pub file_private_data: u16,
    pub inode_mode: u16,
    pub socket_sk: u16,
    /// `sock.__sk_common`'s members, from the `sock`.
    pub sk_family: u16,
    pub sk_daddr: u16,
    pub sk_rcv_saddr: u16,
    pub sk_dport: u16,
    pub sk_num: u16,
    pub sk_v6_daddr: u16,
    pub sk_v6_rcv_saddr: u16,
    /// `unix_sock.peer`, from the `sock` (0 when unknown: Unix sockets then have no flow).
    pub unix_peer: u16,
    /// 1 when the offsets are known; 0: no flow is found.
    pub known: u16,
}

/// Field offsets of the target's runtime (from its DWARF or tracer's per-version table).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub g_goid: u16,
    pub g_parent_goid: u16,
    pub g_startpc: u16,
    /// `g.stack`: the goroutine's stack bounds, `lo` then `hi`.
    pub g_stack: u16,
    pub g_m: u16,
    pub m_curg: u16,
    pub hchan_dataqsiz: u16,
    pub hchan_buf: u16,
    pub hchan_elemsize: u16,
    pub hchan_recvx: u16,
    /// The traced process (its id in the initial pid namespace, as BPF helpers see it), or
    /// [`ANY_PROCESS`] for the node agent's watch of every `execve`.
    pub target_pid: u32,
    /// 1: drop a map access that repeats its goroutine's previous recorded event (see
    /// [`LAST_ACCESS_SLOTS`]); 0: record every access.
    pub drop_repeats: u32,
    pub kernel: KernelLayout,
}

/// [`RuntimeConfig::target_pid`] of an exec watch: every process's `execve` is recorded.
pub const ANY_PROCESS: u32 = u32::MAX;

/// [`RawEvent::flags`] bits.
pub mod event_flags {
    /// ZF was set after the probed instruction's predecessor (a successful CAS).
    pub const ZERO_FLAG: u8 = 1;
    /// The release takes effect after the goroutine's next event, the map event of the call
    /// it was recorded on ([`super::effect::AFTER_MAP_CALL`]).
    pub const AFTER_MAP_CALL: u8 = 2;
}

/// One traced operation, as written by the kernel into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Go goroutine id (`runtime.g.goid`); 0 when it could not be read.
    pub goroutine: u64,
    /// Address of the object operated on (map header, mutex, channel), or a goroutine id.
    pub object: u64,
    /// A second value whose meaning depends on the kind (see [`EventKind`]).
    pub arg: u64,
    /// Map key value (integer keys) or string length, as given by [`RawEvent::key_class`].
    pub key: u64,
    /// The return address into the caller (entry probes) or the site itself (inline sites).
    pub caller: u64,
    /// Index of the probe site (the attach cookie).
    pub probe: u32,
    /// Thread group id (the process id).
    pub pid: u32,
    /// Kernel thread id.
    pub tid: u32,
    /// An [`EventKind`] discriminant.
    pub kind: u8,
    /// A [`KeyClass`] discriminant.
    pub key_class: u8,
    /// [`event_flags`] bits.
    pub flags: u8,
    pub _reserved: u8,
    /// Id of the user stack in the `STACKS` map, or -1 (none requested or the walk failed).
    pub stack_id: i32,
    /// How many events the kernel had dropped (all CPUs) when this one was recorded: a change
    /// between consecutive events marks where the stream has a hole.
    pub lost: u32,
    /// Channel events with a [`KeyClass::ChannelBuffer`]: the channel's [`buffer_shape`].
    pub buffer_shape: u64,
}

/// The kernel programs, one per probe class.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeClass {
    /// Entries of map functions.
    MapOp = 0,
    /// Entries of other runtime and sync functions.
    CallEntry = 1,
    /// Returns (RET sites, and the instruction after a call).
    CallReturn = 2,
    /// Inlined synchronisation fast paths.
    SyncInline = 3,
    /// Calls of map functions in code outside the standard library, in place between windows
    /// too: they say when rarely run code runs ([`ColdCall`]).
    ColdWatch = 4,
}

impl ProbeClass {
    pub const ALL: [Self; 5] = [
        Self::MapOp,
        Self::CallEntry,
        Self::CallReturn,
        Self::SyncInline,
        Self::ColdWatch,
    ];

    /// The name of the class's program in the eBPF object.
    pub const fn program(self) -> &'static str {
        match self {
            Self::MapOp => "map_op",
            Self::CallEntry => "call_entry",
            Self::CallReturn => "call_return",
            Self::SyncInline => "sync_inline",
            Self::ColdWatch => "cold_call",
        }
    }

    /// The program for the class's sites that stay in place between sampling windows and
    /// always record (the runtime's fatal errors, entry probes), if it has such sites.
    pub const fn always_program(self) -> Option<&'static str> {
        match self {
            Self::CallEntry => Some("call_entry_always"),
            _ => None,
        }
    }
}

/// Indices into the kernel's per-CPU `COUNTERS` array.
pub mod counter {
    /// Events lost because the ring buffer was full (`bpf_ringbuf_reserve` failed).
    pub const DROPPED: u32 = 0;
    /// Events whose goroutine id could not be read (the event is still recorded, goroutine 0).
    pub const GOID_UNREADABLE: u32 = 1;
    /// Map operations on maps on the goroutine's own stack (not recorded: never shared).
    pub const STACK_FILTERED: u32 = 2;
    /// User stacks that could not be walked or stored.
    pub const STACK_FAILED: u32 = 3;
    /// Hits of sites marked [`super::site_flags::SINGLE_STEPPED`].
    pub const STEPPED_HITS: u32 = 4;
    /// Nanoseconds spent in the probe programs (not counting the trap around them), estimated
    /// from one hit in eight, chosen at random.
    pub const PROGRAM_NS: u32 = 5;
    /// Hits of each [`super::ProbeClass`] start here.
    pub const HITS: u32 = 6;
    /// Hits while a sampling window's probes were being placed or removed (`RECORDING` off):
    /// not recorded, since they would not be analysed.
    pub const EDGE_SKIPPED: u32 = HITS + super::ProbeClass::ALL.len() as u32;
    /// Map accesses not recorded because they repeat their goroutine's previous recorded event
    /// (see [`super::LAST_ACCESS_SLOTS`]).
    pub const REPEATS_DROPPED: u32 = EDGE_SKIPPED + 1;
    pub const COUNT: u32 = REPEATS_DROPPED + 1;
}

/// A watched call ([`ProbeClass::ColdWatch`]) was made, as written into the ring buffer: not an
/// operation to analyse, only when code ran (its size tells it apart from a [`RawEvent`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdCall {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// The watched call's index (the attach cookie).
    pub call: u32,
    /// Thread group id (the process id).
    pub pid: u32,
}

/// Names of the maps in the eBPF object, shared so a rename breaks the build.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SITES: &str = "SITES";
    pub const CONFIG: &str = "CONFIG";
    pub const STACKS: &str = "STACKS";
    pub const CALLER_STACKS: &str = "CALLER_STACKS";
    pub const LOST: &str = "LOST";
    pub const RECORDING: &str = "RECORDING";
    pub const G_PREFIX: &str = "G_PREFIX";
    pub const STACK_TOP: &str = "STACK_TOP";
    pub const GOIDS: &str = "GOIDS";
    pub const LAST_ACCESS: &str = "LAST_ACCESS";
    pub const MAPS_MADE: &str = "MAPS_MADE";
    /// The maps only the programs read and write: userspace creates them and keeps them open.
    pub const KERNEL_ONLY: [&str; 7] = [
        CALLER_STACKS,
        LOST,
        G_PREFIX,
        STACK_TOP,
        GOIDS,
        LAST_ACCESS,
        MAPS_MADE,
    ];
    /// The program that notices the traced process's `execve`, and its raw tracepoint.
    pub const EXEC_PROGRAM: &str = "process_exec";
    pub const EXEC_TRACEPOINT: &str = "sched_process_exec";
}

/// Size of the event ring buffer in bytes as compiled (a power-of-two multiple of the page
/// size); userspace sets the size it is told (`--buffer-size`) when it creates the map.
pub const RING_BUFFER_BYTES: u32 = 1 << 24;

/// Whether an [`EventKind`] discriminant is an access to a map's contents (`MapAssign` to
/// `MapIterNext`: not its creation).
pub const fn is_map_access(kind: u8) -> bool {
    kind >= EventKind::MapAssign as u8 && kind <= EventKind::MapIterNext as u8
}

/// Slots of the `LAST_ACCESS` table, indexed by a hash of the goroutine id: each holds a hash
/// of its goroutine's previous recorded event if that was a map access (goroutine, map,
/// operation, call path, window, events lost so far and maps made so far at addresses of the
/// map's bucket), else 0. A map access whose hash is already there repeats an access with
/// nothing of the goroutine's in between: a map access changes no clock, so it races with
/// exactly what that access races with, and its report would name the same two call paths.
/// The kernel drops it and counts it ([`counter::REPEATS_DROPPED`]). Goroutines that share a
/// slot only overwrite each other's hash: fewer drops, never a wrong one.
pub const LAST_ACCESS_SLOTS: u32 = 1 << 12;

/// Buckets of map addresses in the `MAPS_MADE` table, whose count of maps made is part of a
/// repeat's key (see [`LAST_ACCESS_SLOTS`]): a power of two.
pub const MAPS_MADE_BUCKETS: u32 = 1 << 12;

/// Most probe sites one target can have (the `SITES` array's size).
pub const MAX_SITES: u32 = 1 << 18;

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all three): plain old data: integers only, `#[repr(C)]`, explicit padding fields.
    unsafe impl aya::Pod for super::RawEvent {}
    unsafe impl aya::Pod for super::SiteParams {}
    unsafe impl aya::Pod for super::RuntimeConfig {}
    unsafe impl aya::Pod for super::ColdCall {}
}

const _: () = assert!(size_of::<RawEvent>() == 80);
const _: () = assert!(size_of::<ColdCall>() == 16);

/// Distinct user stacks kept (`STACKS` map size).
pub const MAX_STACKS: u32 = 1 << 14;
/// Deepest user stack recorded (the kernel's `PERF_MAX_STACK_DEPTH`).
pub const MAX_STACK_DEPTH: usize = 127;
const _: () = assert!(size_of::<SiteParams>() == 24);
const _: () = assert!(size_of::<KernelLayout>() == 34);
const _: () = assert!(size_of::<RuntimeConfig>() == 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_numbered_from_one_without_gaps_and_named_once() {
        // Discriminants are stored in records: 1, 2, … in declaration order, none skipped.
        for (index, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index + 1);
            assert_eq!(EventKind::from_u8(kind as u8), Some(kind));
            for other in &EventKind::ALL[index + 1..] {
                assert_ne!(kind.name(), other.name());
            }
        }
        assert_eq!(EventKind::from_u8(0), None);
        assert_eq!(EventKind::from_u8(EventKind::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn program_names_are_distinct() {
        for (i, a) in ProbeClass::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &ProbeClass::ALL[i + 1..] {
                assert_ne!(a.program(), b.program());
            }
        }
    }
}
