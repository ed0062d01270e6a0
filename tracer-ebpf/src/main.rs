//! tracer's kernel side: uprobes on an unmodified Go binary that record what happened, where and
//! by which goroutine into one ring buffer. Nothing here decides anything; userspace does.
//!
//! One program per probe class; each site's parameters (what the object is, which registers to
//! keep) are in the `SITES` array at the index given by the attach cookie, and the target's
//! runtime layout is in `CONFIG`.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{
    bindings::{pt_regs, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_get_prandom_u32, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_user, generated,
    },
    macros::{map, raw_tracepoint, uprobe},
    maps::{Array, PerCpuArray, RingBuf, StackTrace},
    programs::{tracing::StackIdContext as _, ProbeContext, RawTracePointContext},
    EbpfContext as _,
};
use tracer_common::{
    buffer_shape, counter, effect, event_flags, guard, is_map_access, object, register, site_flags,
    ColdCall, EventKind, KernelLayout, KeyClass, ProbeClass, RawEvent, RuntimeConfig, SiteParams,
    ANY_PROCESS, G_PREFIX_WORDS, LAST_ACCESS_SLOTS, MAPS_MADE_BUCKETS, MAX_SELECT_CASES, MAX_SITES,
    MAX_STACKS, RING_BUFFER_BYTES, SELECT_CASE_SEND,
};

/// Size of `runtime.scase` (`c *hchan; elem unsafe.Pointer`), Go 1.21–1.27.
const SCASE_SIZE: u64 = 16;

/// Every event, in reservation order (one buffer so that order is global across CPUs).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BUFFER_BYTES, 0);

/// Per-CPU counters indexed by `tracer_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Per-site parameters, indexed by the attach cookie.
#[map]
static SITES: Array<SiteParams> = Array::with_max_entries(MAX_SITES, 0);

/// The target's runtime layout (one entry).
#[map]
static CONFIG: Array<RuntimeConfig> = Array::with_max_entries(1, 0);

/// User stacks of map and fatal events.
#[map]
static STACKS: StackTrace = StackTrace::with_max_entries(MAX_STACKS, 0);

/// The stack id first recorded for each call path (see [`call_path`] and [`stack_of`]): a
/// frame-pointer walk costs more than the probe itself (1.2 µs on a short stack), so each path
/// is walked once. A set-associative cache in an array, [`STACK_CACHE_WAYS`] paths to a set: an
/// array's lookup is a few instructions where an LRU hash map's cost ~75 ns per map event.
#[map]
static CALLER_STACKS: Array<[u64; STACK_CACHE_WAYS]> = Array::with_max_entries(STACK_CACHE_SETS, 0);

/// Paths per set of `CALLER_STACKS`: a path is only walked again when more than this many
/// paths of its set are in use, which 65 536 entries make rare.
const STACK_CACHE_WAYS: usize = 4;

/// Sets of `CALLER_STACKS` (a power of two).
const STACK_CACHE_SETS: u32 = 1 << 14;

/// Events dropped so far, all CPUs together (one entry), stamped on every event so userspace
/// knows where the stream has holes.
#[map]
static LOST: Array<u64> = Array::with_max_entries(1, 0);

/// The first [`G_PREFIX_WORDS`] words of the running `g`, for an event that needs several of its
/// fields (see [`RunningG`]): too large for the program's stack.
#[map]
static G_PREFIX: PerCpuArray<[u64; G_PREFIX_WORDS]> = PerCpuArray::with_max_entries(1, 0);

/// The top of the goroutine's stack at a map function's entry (see [`StackTop`]).
#[map]
static STACK_TOP: PerCpuArray<[u64; STACK_TOP_WORDS]> = PerCpuArray::with_max_entries(1, 0);

/// Words of the stack read at once at a map function's entry: its return address and, on most
/// call paths, the frame records [`call_path`] hashes (each read apart cost ~80 ns).
const STACK_TOP_WORDS: usize = 256;

/// The goroutine id of recently seen `g`s, by the `g`'s address (see [`known_goid`]).
#[map]
static GOIDS: Array<[u64; 2]> = Array::with_max_entries(GOID_SLOTS, 0);

/// Entries of `GOIDS` (a power of two).
const GOID_SLOTS: u32 = 1 << 12;

/// The sampling window's number (from 1) while every probe of it is in place; 0 while they are
/// being placed or removed, when events would not be analysed (userspace marks the analysed
/// stretch) and are not worth their program time and ring-buffer space.
#[map]
static RECORDING: Array<u32> = Array::with_max_entries(1, 0);

/// Each goroutine's previous recorded event, if a map access: see
/// [`tracer_common::LAST_ACCESS_SLOTS`].
#[map]
static LAST_ACCESS: Array<u64> = Array::with_max_entries(LAST_ACCESS_SLOTS, 0);

/// Maps created so far at addresses of each bucket (see [`made_at`]), all CPUs together: part of
/// a map access's repeat key, so that an access to a new map at a reused address never passes for
/// a repeat of one to the old map.
#[map]
static MAPS_MADE: Array<u64> = Array::with_max_entries(MAPS_MADE_BUCKETS, 0);

/// `BPF_F_USER_STACK`: walk the user stack, not the kernel's.
const USER_STACK: u64 = 1 << 8;

/// ZF in RFLAGS.
const ZERO_FLAG: u64 = 1 << 6;

#[inline(always)]
fn bump(index: u32) {
    add(index, 1);
}

#[inline(always)]
fn add(index: u32, amount: u64) {
    if let Some(value) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, and a uprobe program is not re-entered on the same CPU.
        unsafe { *value += amount };
    }
}

/// The window whose probes are all in place, or 0 (see `RECORDING`).
#[inline(always)]
fn window() -> u64 {
    // SAFETY: a valid map value, written only by userspace; a stale read only moves the edge of
    // the window by one event, which the analysis marks bound anyway.
    RECORDING
        .get_ptr(0)
        .map_or(0, |window| u64::from(unsafe { read_shared(window) }))
}

/// A map value's current content. A volatile read: the verifier rejects the program when the
/// compiler keeps the map-value pointer around for unrelated arithmetic.
///
/// # Safety
/// `value` is a valid map value; other CPUs may write it (a stale read is the caller's concern).
#[inline(always)]
unsafe fn read_shared<T: Copy>(value: *const T) -> T {
    // SAFETY: the caller's.
    unsafe { core::ptr::read_volatile(value) }
}

#[inline(always)]
fn read_u64(address: u64) -> Option<u64> {
    // SAFETY: a user-memory read that fails cleanly on a bad address.
    unsafe { bpf_probe_read_user(address as *const u64) }.ok()
}

#[inline(always)]
fn register(regs: &pt_regs, index: u8) -> u64 {
    match index {
        register::RAX => regs.rax,
        register::RBX => regs.rbx,
        register::RCX => regs.rcx,
        register::RDX => regs.rdx,
        register::RSI => regs.rsi,
        register::RDI => regs.rdi,
        register::RBP => regs.rbp,
        register::RSP => regs.rsp,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        15 => regs.r15,
        _ => 0,
    }
}

/// The first `bytes` (at most `N` words) of the target's memory at `address`, read at once into
/// this CPU's `scratch` block (too large for the program's stack); `None` if the read failed.
#[inline(always)]
fn read_block<const N: usize>(
    scratch: &'static PerCpuArray<[u64; N]>,
    address: u64,
    bytes: u64,
) -> Option<&'static [u64; N]> {
    let words = scratch.get_ptr_mut(0)?;
    let bytes = bytes.min((N * 8) as u64) as u32;
    // SAFETY: a per-CPU map value of at least `bytes` (a uprobe program is not re-entered on the
    // same CPU), and a user-memory read that fails cleanly on a bad address.
    let failed =
        unsafe { generated::bpf_probe_read_user(words.cast(), bytes, address as *const _) } != 0;
    // SAFETY: written just above, and this program's alone until it returns.
    (!failed).then(|| unsafe { &*words })
}

/// The running `g`'s fields that map events need — stack bounds, goid and start function — read
/// at once: each `bpf_probe_read_user` costs mostly its fixed part (user reads were 15% of the
/// CPU time of a fully traced service), so one read of its first words replaces three.
#[derive(Clone, Copy)]
struct RunningG<'a> {
    words: &'a [u64; G_PREFIX_WORDS],
    config: &'a RuntimeConfig,
}

impl<'a> RunningG<'a> {
    /// `None` when R14 does not point to readable memory.
    #[inline(always)]
    fn read(regs: &pt_regs, config: &'a RuntimeConfig) -> Option<Self> {
        let words = read_block(&G_PREFIX, regs.r14, (G_PREFIX_WORDS * 8) as u64)?;
        Some(Self { words, config })
    }

    /// The word at byte `offset` rounded down to a word (userspace checks every offset it
    /// configures lies in the block; 0 beyond it). Bounded on the byte offset, not on an index,
    /// so that the verifier knows the rounded offset stays below the block's end.
    #[inline(always)]
    fn field(&self, offset: u16) -> u64 {
        let offset = usize::from(offset) & !7;
        if offset > (G_PREFIX_WORDS - 1) * 8 {
            return 0;
        }
        // SAFETY: at most the block's last word, and a word-aligned offset into it.
        unsafe {
            self.words
                .as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<u64>()
                .read()
        }
    }

    fn goid(&self) -> u64 {
        self.field(self.config.g_goid)
    }

    /// `g.stack`: `lo`, then `hi`.
    fn stack(&self) -> [u64; 2] {
        let lo = self.config.g_stack;
        [self.field(lo), self.field(lo.wrapping_add(8))]
    }

    fn start(&self) -> u64 {
        self.field(self.config.g_startpc)
    }
}

/// The words of the goroutine's stack from RSP up (at most [`STACK_TOP_WORDS`], never past the
/// stack's top), read at once: a map event wants its return address and the frame records above
/// it, and each `bpf_probe_read_user` costs mostly its fixed part.
#[derive(Clone, Copy)]
struct StackTop<'a> {
    words: &'a [u64; STACK_TOP_WORDS],
    from: u64,
    bytes: u64,
}

impl<'a> StackTop<'a> {
    /// `None` when RSP is not within the goroutine's stack bounds or the read failed.
    #[inline(always)]
    fn read(regs: &pt_regs, [lo, hi]: [u64; 2]) -> Option<Self> {
        let from = regs.rsp;
        if from < lo || from >= hi {
            return None;
        }
        let bytes = (hi - from).min((STACK_TOP_WORDS * 8) as u64) & !7;
        let words = read_block(&STACK_TOP, from, bytes)?;
        Some(Self { words, from, bytes })
    }

    /// The word at `address`, if the block holds all of it.
    #[inline(always)]
    fn word(&self, address: u64) -> Option<u64> {
        let offset = address.wrapping_sub(self.from);
        if offset > (STACK_TOP_WORDS as u64 - 1) * 8 || offset + 8 > self.bytes {
            return None;
        }
        // SAFETY: the word lies within the block's first `bytes` (checked above).
        Some(unsafe {
            self.words
                .as_ptr()
                .cast::<u8>()
                .add(offset as usize)
                .cast::<u64>()
                .read_unaligned()
        })
    }
}

/// The two words at `address` on the stack: from `top` when it holds them, else read apart.
#[inline(always)]
fn stack_words(top: Option<StackTop<'_>>, address: u64) -> Option<[u64; 2]> {
    if let Some(top) = top {
        if let (Some(first), Some(second)) = (top.word(address), top.word(address + 8)) {
            return Some([first, second]);
        }
    }
    // SAFETY: a user-memory read that fails cleanly on a bad address.
    unsafe { bpf_probe_read_user(address as *const [u64; 2]) }.ok()
}

/// What makes a `GOIDS` entry hold `goid` for the `g` at `g` in `window` (never 0, so an empty
/// entry holds nothing; a torn entry, half written by another CPU, fails it).
#[inline(always)]
fn goid_check(window: u64, g: u64, goid: u64) -> u64 {
    mix(mix(window, g), goid) | 1
}

/// The goroutine id of the `g` at `g`, if remembered in this window: a read of the target's
/// memory costs a fifth of an inline-sync program. Sound because a `g` is never freed and its
/// `goid` only changes in `newproc1` (in Go 1.21–1.27; `oneNewExtraM` sets that of a new `g`),
/// whose return is probed in every window and remembers the new id (see `record`); entries of
/// earlier windows, when goroutines were created unseen, fail the check.
#[inline(always)]
fn known_goid(window: u64, g: u64) -> Option<u64> {
    let entry = GOIDS.get(bucket(g, GOID_SLOTS))?;
    // SAFETY: a valid map value of plain words; a torn read fails the check.
    let [check, goid] = unsafe { read_shared(entry) };
    (window != 0 && check == goid_check(window, g, goid)).then_some(goid)
}

/// Remembers that the `g` at `g` runs goroutine `goid` in `window` (nothing outside windows);
/// a `goid` of 0 (unreadable) forgets what its entry held.
#[inline(always)]
fn remember_goid(window: u64, g: u64, goid: u64) {
    if window == 0 {
        return;
    }
    if let Some(entry) = GOIDS.get_ptr_mut(bucket(g, GOID_SLOTS)) {
        let check = match goid {
            0 => 0,
            goid => goid_check(window, g, goid),
        };
        // SAFETY: a valid map value; a reader of a half-written entry fails its check.
        unsafe { core::ptr::write_volatile(entry, [check, goid]) };
    }
}

/// The id of the goroutine running Go code here: R14 holds the current g at every Go
/// (ABIInternal) instruction; on the system stack that is g0 (goid 0), whose m.curg is the user
/// goroutine that switched to it. `running` is R14's g when it was read already.
#[inline(always)]
fn current_goroutine(
    regs: &pt_regs,
    config: &RuntimeConfig,
    running: Option<RunningG<'_>>,
    window: u64,
) -> Option<u64> {
    let g = regs.r14;
    let goid = match running {
        Some(running) => running.goid(),
        None => match known_goid(window, g) {
            Some(goid) => return Some(goid),
            None => {
                let goid = read_u64(g + u64::from(config.g_goid))?;
                if goid != 0 {
                    remember_goid(window, g, goid);
                }
                goid
            }
        },
    };
    if goid != 0 {
        return Some(goid);
    }
    let m = match running {
        Some(running) => running.field(config.g_m),
        None => read_u64(g + u64::from(config.g_m))?,
    };
    let curg = read_u64(m + u64::from(config.m_curg))?;
    if curg == 0 {
        return Some(0);
    }
    read_u64(curg + u64::from(config.g_goid))
}

/// A channel's `dataqsiz`, `buf` and `elemsize`, consecutive words in every Go release (userspace
/// checks), read at once: what the buffer of a send, receive or `select` case is.
#[repr(C)]
#[derive(Clone, Copy)]
struct ChannelShape {
    capacity: u64,
    buffer: u64,
    /// `elemsize` is a uint16; the word read holds the fields after it too.
    element_size: u64,
}

impl ChannelShape {
    /// The shape of the `runtime.hchan` at `address` (zeros where unreadable). A nil channel
    /// (a `select` case disabled that way, a tenth of the demo's cases) is not read: the read
    /// would fault, which costs more than the rest of the program.
    #[inline(always)]
    fn read(config: &RuntimeConfig, address: u64) -> Self {
        let unknown = Self {
            capacity: 0,
            buffer: 0,
            element_size: 0,
        };
        if address == 0 {
            return unknown;
        }
        let at = address.wrapping_add(u64::from(config.hchan_dataqsiz));
        // SAFETY: a user-memory read that fails cleanly on a bad address.
        let shape = unsafe { bpf_probe_read_user(at as *const Self) }.unwrap_or(unknown);
        Self {
            element_size: shape.element_size & 0xffff,
            ..shape
        }
    }

    /// The buffer's address and [`buffer_shape`].
    #[inline(always)]
    fn buffer(&self) -> (u64, u64) {
        (self.buffer, buffer_shape(self.capacity, self.element_size))
    }
}

/// In `runtime.send`/`recv(c, sg, …)`, under the lock of the channel at `channel`: the slot the
/// value goes through (`recvx`; unbuffered channels have `recvx = 0` and `buf` = their own
/// address) and the goroutine id of the parked partner (`sg.g`, the sudog's first field).
#[inline(always)]
fn hand_off(config: &RuntimeConfig, channel: u64, sudog: u64) -> (u64, u64) {
    let shape = ChannelShape::read(config, channel);
    let index = read_u64(channel.wrapping_add(u64::from(config.hchan_recvx))).unwrap_or(0);
    let slot = shape
        .buffer
        .wrapping_add(index.wrapping_mul(shape.element_size));
    let partner = read_u64(sudog)
        .and_then(|g| read_u64(g.wrapping_add(u64::from(config.g_goid))))
        .unwrap_or(0);
    (slot, partner)
}

/// One hit in this many, chosen at random, times the program (the time is counted this many
/// times over): reading the clock costs 0.1 µs in a VM, and two reads on every hit were 4% of a
/// fully traced service's CPU time.
const TIMED_ONE_IN: u32 = 8;

/// Records the event of the site named by the attach cookie (only while every probe of the
/// window is in place, unless the site is `always` recorded), and an estimate of the time that
/// took.
#[inline(always)]
fn probe(ctx: &ProbeContext, class: ProbeClass, always: bool) -> u32 {
    // SAFETY: no preconditions.
    let timed = unsafe { bpf_get_prandom_u32() } % TIMED_ONE_IN == 0;
    // SAFETY: no preconditions.
    let started = if timed {
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };
    let window = window();
    let result = if always || window != 0 {
        record(ctx, class, window)
    } else {
        skip(ctx, class)
    };
    if timed {
        // SAFETY: no preconditions.
        let elapsed = unsafe { bpf_ktime_get_ns() } - started;
        add(counter::PROGRAM_NS, elapsed * u64::from(TIMED_ONE_IN));
    }
    result
}

/// Counts a hit while the window's probes are being placed or removed, without recording it.
#[inline(always)]
fn skip(ctx: &ProbeContext, class: ProbeClass) -> u32 {
    bump(counter::HITS + class as u32);
    bump(counter::EDGE_SKIPPED);
    // SAFETY: a uprobe context always carries a cookie (0 when none was set).
    let site = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    if SITES
        .get(site)
        .is_some_and(|params| params.flags & site_flags::SINGLE_STEPPED != 0)
    {
        bump(counter::STEPPED_HITS);
    }
    0
}

/// Records the event of the site named by the attach cookie: where its object is, whose
/// goroutine it is, its key or channel buffer, its caller and stack, then one ring-buffer
/// record (and one per case for a `select`) — unless it is a map access that repeats its
/// goroutine's previous recorded event (see [`LAST_ACCESS_SLOTS`]).
#[inline(always)]
fn record(ctx: &ProbeContext, class: ProbeClass, window: u64) -> u32 {
    bump(counter::HITS + class as u32);
    // SAFETY: a uprobe context always carries a cookie (0 when none was set).
    let site = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    let (Some(params), Some(config)) = (SITES.get(site), CONFIG.get(0)) else {
        return 0;
    };
    if params.flags & site_flags::SINGLE_STEPPED != 0 {
        bump(counter::STEPPED_HITS);
    }
    // SAFETY: `regs` points to the trapped task's saved user registers.
    let regs = unsafe { &*ctx.regs };
    // Reached by a jump to where the call returns, not by the return: nothing happened.
    if params.guard == guard::RETURNED_HERE && read_u64(regs.rsp.wrapping_sub(8)) != Some(regs.rip)
    {
        return 0;
    }
    let Located {
        object,
        mut arg,
        goroutine,
    } = locate(regs, params, config, window);
    // Map events (and releases on a map call) want the goroutine's stack bounds.
    let running = match params.flags & (site_flags::SKIP_STACK_OBJECTS | site_flags::CAPTURE_STACK)
    {
        0 if params.effect != effect::AFTER_MAP_CALL => None,
        _ => RunningG::read(regs, config),
    };
    let stack = running.map(|running| running.stack());
    // A map on the goroutine's own stack cannot be shared: not worth an event.
    if params.flags & site_flags::SKIP_STACK_OBJECTS != 0 && on_stack(stack, object) {
        bump(counter::STACK_FILTERED);
        return 0;
    }
    let goroutine = if let Some(goid) =
        goroutine.or_else(|| current_goroutine(regs, config, running, window))
    {
        goid
    } else {
        bump(counter::GOID_UNREADABLE);
        0
    };
    let (key, key_class, shape) = key_of(regs, params, config, object);
    let capture_stack = params.flags & site_flags::CAPTURE_STACK != 0;
    // Zeros, not an absent value: the compiler must not leave the bounds' registers undefined
    // (it may compute with whatever they hold, which the verifier rejects).
    let bounds = stack.unwrap_or([0, 0]);
    let top = if capture_stack {
        StackTop::read(regs, bounds)
    } else {
        None
    };
    let caller = if params.flags & site_flags::CALLER_AT_SP != 0 {
        top.and_then(|top| top.word(regs.rsp))
            .or_else(|| read_u64(regs.rsp))
            .unwrap_or(0)
    } else {
        regs.rip
    };
    let path = if capture_stack {
        call_path(
            regs,
            caller,
            bounds,
            running.map_or(0, |running| running.start()),
            top,
        )
    } else {
        0
    };
    // Checked and written here rather than after the record: values carried to the end of the
    // program keep the verifier from merging its paths (it explored twice as many
    // instructions), and the written key already covers a record that fails (a lost event).
    if goroutine != 0 {
        let access = if capture_stack && is_map_access(params.kind) && config.drop_repeats != 0 {
            repeat_key(window, goroutine, object, params.kind, path)
        } else {
            0
        };
        // Hashed, so that goroutines of neighbouring ids, running on other CPUs, seldom write
        // one cache line.
        let slot = bucket(goroutine, LAST_ACCESS_SLOTS);
        if let Some(last) = LAST_ACCESS.get_ptr_mut(slot) {
            // SAFETY: a valid map value; only this goroutine's events write its key there
            // (goroutines sharing the slot write others), one after another.
            let previous = unsafe { read_shared(last) };
            if access != 0 && previous == access {
                bump(counter::REPEATS_DROPPED);
                return 0;
            }
            // Written only when it changes (most events find 0 and leave 0): a write takes the
            // cache line from the other CPUs.
            if previous != access {
                // SAFETY: as above.
                unsafe { core::ptr::write_volatile(last, access) };
            }
        }
    }
    if params.kind == EventKind::MapMake as u8 {
        if let Some(made) = MAPS_MADE.get_ptr_mut(made_at(object)) {
            // SAFETY: a valid, aligned map value shared by all CPUs, only changed atomically.
            unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(made, 1) };
        }
    }
    let stack_id = if capture_stack {
        stack_of(ctx, path)
    } else {
        -1
    };
    let mut flags = if zero_flag(regs, params, arg) {
        event_flags::ZERO_FLAG
    } else {
        0
    };
    // The map the trapped `CALL` passes (in RBX) on the goroutine's own stack: the map
    // function's probe records nothing (`SKIP_STACK_OBJECTS`), so the release takes effect at
    // once.
    if params.effect == effect::AFTER_MAP_CALL && !on_stack(stack, regs.rbx) {
        flags |= event_flags::AFTER_MAP_CALL;
    }
    if params.flags & site_flags::SELECT_CASES != 0 {
        // selectgo(cas0 *scase, order0 *uint16, pc0 *uintptr, nsends, nrecvs int, block bool)
        arg = regs.rdi.wrapping_add(regs.rsi);
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let event = RawEvent {
        // SAFETY: no preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        goroutine,
        object,
        arg,
        key,
        caller,
        probe: site,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        kind: params.kind,
        key_class,
        flags,
        _reserved: 0,
        stack_id,
        lost: 0,
        buffer_shape: shape,
    };
    emit(event);
    if params.flags & site_flags::SELECT_CASES != 0 {
        emit_select_cases(regs, config, event);
    }
    0
}

/// What makes a map access a repeat of its goroutine's previous one (never 0): the goroutine,
/// map, operation and call path, in the same window, with no event lost (all CPUs together) and
/// no map made at an address of the map's bucket in between.
#[inline(always)]
fn repeat_key(window: u64, goroutine: u64, map: u64, kind: u8, path: u64) -> u64 {
    // SAFETY (both): valid map values, changed only atomically.
    let lost = LOST
        .get_ptr(0)
        .map_or(0, |lost| unsafe { read_shared(lost) });
    let made = MAPS_MADE
        .get_ptr(made_at(map))
        .map_or(0, |made| unsafe { read_shared(made) });
    [lost, made, goroutine, map, u64::from(kind), path]
        .into_iter()
        .fold(window, mix)
        | 1
}

/// The `MAPS_MADE` bucket of a map's address: a map made at another address of the bucket only
/// costs the next access of its bucket's maps its drop.
#[inline(always)]
fn made_at(map: u64) -> u32 {
    bucket(map, MAPS_MADE_BUCKETS)
}

/// Which of `buckets` (a power of two) `word` falls in: the top bits of its hash, so that
/// neighbouring words spread.
#[inline(always)]
fn bucket(word: u64, buckets: u32) -> u32 {
    (mix(0, word) >> (u64::BITS - buckets.trailing_zeros())) as u32
}

/// One step of a word-at-a-time hash (a bijection of `hash` for each `word`).
#[inline(always)]
fn mix(hash: u64, word: u64) -> u64 {
    (hash ^ word)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

/// Whether `address` lies within the goroutine's stack bounds (`g.stack`: `lo`, `hi`).
#[inline(always)]
fn on_stack(stack: Option<[u64; 2]>, address: u64) -> bool {
    stack.is_some_and(|[lo, hi]| lo <= address && address < hi)
}

/// A site's object and what comes with it.
struct Located {
    object: u64,
    /// The site's second value: its `arg` register, or what the object's source replaces it
    /// with (the new goroutine's parent, the hand-off's partner).
    arg: u64,
    /// The goroutine the event belongs to, when it is not the one running (`go` statements
    /// are recorded for the parent, on the new g's fields).
    goroutine: Option<u64>,
}

/// Where the site's object is ([`object`] sources), from the trapped registers.
#[inline(always)]
fn locate(regs: &pt_regs, params: &SiteParams, config: &RuntimeConfig, window: u64) -> Located {
    let base = register(regs, params.base);
    let arg = register(regs, params.arg);
    let at = |object| Located {
        object,
        arg,
        goroutine: None,
    };
    match params.object {
        object::REGISTER => at(base.wrapping_add(params.offset as u64)),
        object::LOAD => at(
            match read_u64(base.wrapping_add(i64::from(params.at) as u64)) {
                Some(pointer) => pointer.wrapping_add(params.offset as u64),
                None => 0,
            },
        ),
        object::LOAD_TWICE => at(
            match read_u64(base.wrapping_add(i64::from(params.at) as u64))
                .and_then(|first| read_u64(first.wrapping_add(i64::from(params.then) as u64)))
            {
                Some(pointer) => pointer.wrapping_add(params.offset as u64),
                None => 0,
            },
        ),
        object::RIP_RELATIVE => at(regs.rip.wrapping_add(params.offset as u64)),
        object::CHILD_GOROUTINE => {
            // newproc1 has just set the new g's goid and parentGoid; the g may be a reused one,
            // whose id changed here (see `known_goid`).
            let parent = read_u64(base + u64::from(config.g_parent_goid)).unwrap_or(0);
            let child = read_u64(base + u64::from(config.g_goid)).unwrap_or(0);
            remember_goid(window, base, child);
            Located {
                object: child,
                arg: parent,
                goroutine: Some(parent),
            }
        }
        object::HAND_OFF => {
            let (slot, partner) = hand_off(config, base, arg);
            Located {
                object: slot,
                arg: partner,
                goroutine: None,
            }
        }
        object::WRITTEN_FLOW | object::READ_FLOW => Located {
            object: flow(base, params.object == object::READ_FLOW, &config.kernel),
            arg: base,
            goroutine: None,
        },
        _ => at(0),
    }
}

/// `S_IFMT` and `S_IFSOCK` of an inode's `i_mode`.
const S_IFMT: u16 = 0o170_000;
const S_IFSOCK: u16 = 0o140_000;
const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// Seeds of the hashes that make flow keys, so that the kinds never share a key.
const FILE_FLOW: u64 = 0x5f11e;
const CONNECTION_FLOW: u64 = 0xc0_4417;
const UNIX_FLOW: u64 = 0x0417_50c7;
const ENDPOINT: u64 = 0xe4d_9017;

#[inline(always)]
fn read_kernel<T: Copy>(address: u64) -> Option<T> {
    // SAFETY: a kernel-memory read that fails cleanly on a bad address.
    unsafe { bpf_probe_read_kernel(address as *const T) }.ok()
}

/// The key of the flow of data descriptor `fd` of the current process writes to (or, if
/// `reads`, reads from), read now, while the descriptor is what the call uses: for a TCP or UDP
/// socket its two endpoints in the direction of the data, so that what one end of a connection
/// writes is what the other reads (for a connected Unix socket, its kernel socket and its
/// peer's); for a pipe or a file its inode. 0 when unknown (an unconnected socket, an unknown
/// layout, a failed read). Below the tags of userspace's derived objects.
#[inline(always)]
fn flow(fd: u64, reads: bool, layout: &KernelLayout) -> u64 {
    if layout.known == 0 {
        return 0;
    }
    flow_of(fd, reads, layout).map_or(0, |key| key & ((1 << 48) - 1) | 1)
}

#[inline(always)]
fn flow_of(fd: u64, reads: bool, layout: &KernelLayout) -> Option<u64> {
    let field = |base: u64, offset: u16| base.wrapping_add(u64::from(offset));
    // SAFETY: no preconditions; the task is only read through checked kernel reads.
    let task = unsafe { generated::bpf_get_current_task() };
    let files: u64 = read_kernel(field(task, layout.task_files))?;
    let table: u64 = read_kernel(field(files, layout.files_fdt))?;
    let open: u32 = read_kernel(field(table, layout.fdt_max_fds))?;
    if fd >= u64::from(open) {
        return None;
    }
    let descriptors: u64 = read_kernel(field(table, layout.fdt_fd))?;
    let file: u64 = read_kernel(descriptors.wrapping_add(fd * 8))?;
    let inode: u64 = read_kernel(field(file, layout.file_inode))?;
    let mode: u16 = read_kernel(field(inode, layout.inode_mode))?;
    if mode & S_IFMT != S_IFSOCK {
        // Both ends of a pipe, and every descriptor of a file, share its inode.
        return Some(mix(FILE_FLOW, inode));
    }
    let socket: u64 = read_kernel(field(file, layout.file_private_data))?;
    let sock: u64 = read_kernel(field(socket, layout.socket_sk))?;
    let family: u16 = read_kernel(field(sock, layout.sk_family))?;
    if family == AF_UNIX {
        // A connected Unix socket and its peer point at each other; the kernel's sockets are
        // the endpoints (an unconnected one, or an unknown layout, has no flow).
        if layout.unix_peer == 0 {
            return None;
        }
        let peer: u64 = read_kernel(field(sock, layout.unix_peer))?;
        if peer == 0 {
            return None;
        }
        return Some(directed(UNIX_FLOW, sock, peer, reads));
    }
    // An endpoint: address (an IPv4 one, also when seen through a dual-stack IPv6 socket, as
    // its mapped form's last word) and port, both as the kernel stores them.
    let (local, remote) = match family {
        AF_INET => (
            [
                0,
                read_kernel::<u32>(field(sock, layout.sk_rcv_saddr))?.into(),
            ],
            [0, read_kernel::<u32>(field(sock, layout.sk_daddr))?.into()],
        ),
        AF_INET6 => (
            ipv6(read_kernel(field(sock, layout.sk_v6_rcv_saddr))?),
            ipv6(read_kernel(field(sock, layout.sk_v6_daddr))?),
        ),
        _ => return None,
    };
    // The local port in host order, the remote one in network order.
    let local_port: u16 = read_kernel(field(sock, layout.sk_num))?;
    let remote_port = u16::from_be(read_kernel(field(sock, layout.sk_dport))?);
    let endpoint =
        |[high, low]: [u64; 2], port: u16| mix(mix(mix(ENDPOINT, high), low), port.into());
    let (local, remote) = (endpoint(local, local_port), endpoint(remote, remote_port));
    Some(directed(CONNECTION_FLOW, local, remote, reads))
}

/// The flow between two endpoints in the direction of the data: from this end (`own`) to the
/// other when it writes, from the other to this end when it reads — so that one end's writes
/// and the other end's reads get the same key. (`mix` is symmetric in its two words: the
/// endpoints are folded into a running hash, in order.)
#[inline(always)]
fn directed(seed: u64, own: u64, other: u64, reads: bool) -> u64 {
    let (from, to) = if reads { (other, own) } else { (own, other) };
    mix(mix(seed, from), to)
}

/// An IPv6 address as two words, or an IPv4-mapped one (`::ffff:a.b.c.d`) as IPv4's.
#[inline(always)]
fn ipv6([high, low]: [u64; 2]) -> [u64; 2] {
    match (high, low as u32) {
        // Bytes 8–9 zero and 10–11 all ones, read little-endian: the IPv4 address follows.
        (0, 0xffff_0000) => [0, low >> 32],
        _ => [high, low],
    }
}

/// The map key the site passes (integer keys, a string key's length), or for a channel
/// operation its buffer: (value, [`KeyClass`], buffer shape).
#[inline(always)]
fn key_of(
    regs: &pt_regs,
    params: &SiteParams,
    config: &RuntimeConfig,
    object: u64,
) -> (u64, u8, u64) {
    if params.flags & site_flags::CHANNEL_BUFFER != 0 {
        let (buffer, shape) = ChannelShape::read(config, object).buffer();
        return (buffer, KeyClass::ChannelBuffer as u8, shape);
    }
    let key = match KeyClass::from_u8(params.key) {
        KeyClass::None | KeyClass::ChannelBuffer => 0,
        KeyClass::U32 => regs.rcx & 0xffff_ffff,
        KeyClass::U64 => regs.rcx,
        KeyClass::Str => regs.rdi,
    };
    (key, params.key, 0)
}

/// Whether an inlined Lock/TryLock acquired the mutex: ZF after its compare-and-swap, or the
/// flag a `SETE` left in the `arg` register.
#[inline(always)]
fn zero_flag(regs: &pt_regs, params: &SiteParams, arg: u64) -> bool {
    if params.flags & site_flags::ZERO_FLAG_IN_ARG != 0 {
        arg as u8 != 0
    } else {
        params.flags & site_flags::ZERO_FLAG != 0 && regs.eflags & ZERO_FLAG != 0
    }
}

/// One event per case of the `select` starting here (up to [`MAX_SELECT_CASES`]): its channel
/// and its buffer, index and direction (sends come first in the case array).
#[inline(always)]
fn emit_select_cases(regs: &pt_regs, config: &RuntimeConfig, enter: RawEvent) {
    let cases = regs.rax;
    let sends = regs.rdi;
    for index in 0..MAX_SELECT_CASES {
        if index >= enter.arg {
            break;
        }
        let channel = read_u64(cases.wrapping_add(index * SCASE_SIZE)).unwrap_or(0);
        let direction = if index < sends { SELECT_CASE_SEND } else { 0 };
        let (buffer, buffer_shape) = ChannelShape::read(config, channel).buffer();
        emit(RawEvent {
            kind: EventKind::SelectCase as u8,
            object: channel,
            arg: index | direction,
            key: buffer,
            key_class: KeyClass::ChannelBuffer as u8,
            buffer_shape,
            ..enter
        });
    }
}

/// Writes an event into the ring buffer, or counts it as dropped.
#[inline(always)]
fn emit(event: RawEvent) {
    let lost = LOST.get_ptr_mut(0);
    match EVENTS.reserve::<RawEvent>(0) {
        Some(mut entry) => {
            let mut event = event;
            if let Some(lost) = lost {
                // SAFETY: a valid map value; a racy read only delays the hole's mark.
                event.lost = unsafe { read_shared(lost) } as u32;
            }
            entry.write(event);
            // Userspace drains on a timer: a wakeup per event would cost more than the probe.
            entry.submit(u64::from(BPF_RB_NO_WAKEUP));
        }
        None => {
            bump(counter::DROPPED);
            if let Some(lost) = lost {
                // SAFETY: a valid, aligned map value shared by all CPUs, only accessed atomically
                // or read as a hint.
                // (core's atomics have no read-modify-write for the BPF target: use BPF's XADD.)
                unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(lost, 1) };
            }
        }
    }
}

/// Frames above the caller whose return addresses identify a call path (see [`call_path`]).
const PATH_FRAMES: usize = 3;

/// What tells the paths to a map function's entry apart without walking the whole stack: the
/// caller and the return addresses of the [`PATH_FRAMES`] frames above it (at a function's
/// entry RBP is still the caller's frame), how deep the goroutine's stack is (a frame of
/// another size anywhere further out changes it), and the function the goroutine started in
/// (the same code run by two goroutines). Paths that agree on all of these are taken to be one.
#[inline(always)]
fn call_path(
    regs: &pt_regs,
    caller: u64,
    stack: [u64; 2],
    start: u64,
    top: Option<StackTop<'_>>,
) -> u64 {
    let depth = match stack {
        [_, 0] => 0,
        [_, hi] => hi.wrapping_sub(regs.rsp),
    };
    let mut hash = mix(mix(caller, depth), start);
    let mut frame = regs.rbp;
    for _ in 0..PATH_FRAMES {
        // Frame records live on the goroutine's stack: past its top (the chain ends at 0 above a
        // goroutine's first function) a read would fault, which costs more than the rest of the
        // program (a goroutine looping over a map in its first function paid two per access).
        let [lo, hi] = stack;
        if hi != 0 && (frame < lo || frame >= hi) {
            break;
        }
        let Some([outer_frame, return_address]) = stack_words(top, frame) else {
            break;
        };
        hash = mix(hash, return_address);
        frame = outer_frame;
    }
    hash
}

/// The user stack for an event on call path `path` (see `CALLER_STACKS`): the cached one, or a
/// new walk. A walk that failed is cached too (as -1): the stack table's bucket stays taken by
/// another stack (nothing removes one), so every later walk of the path would fail as well, each
/// costing a whole walk and the fault at its end (the frame chain ends at 0) — 8 600 a second
/// on the demo.
///
/// An entry is one word, written at once (so another CPU never reads half of one): the path's
/// low 32 bits with the lowest set (never 0, which is an empty entry) above the stack id. A new
/// path takes an empty way of its set, else the way its hash picks.
#[inline(always)]
fn stack_of(ctx: &ProbeContext, path: u64) -> i32 {
    let tag = u64::from(path as u32 | 1);
    let set = CALLER_STACKS.get_ptr_mut(bucket(path, STACK_CACHE_SETS));
    let mut free = (path >> 32) as usize % STACK_CACHE_WAYS;
    let mut cached = None;
    if let Some(set) = set {
        // SAFETY: a valid map value of plain words, each written whole (see above).
        let entries = unsafe { read_shared(set) };
        for (way, entry) in entries.into_iter().enumerate() {
            if entry >> 32 == tag {
                cached = Some(entry as u32 as i32);
            } else if entry == 0 {
                free = way;
            }
        }
    }
    let id = match cached {
        Some(id) => id,
        None => {
            let id = ctx
                .get_stackid(&STACKS, USER_STACK)
                .map_or(-1, |id| id as i32);
            if let Some(set) = set {
                // SAFETY: as above; `free` is below the set's length.
                unsafe {
                    let entry = set.cast::<u64>().add(free % STACK_CACHE_WAYS);
                    core::ptr::write_volatile(entry, tag << 32 | u64::from(id as u32));
                }
            }
            id
        }
    };
    if id < 0 {
        bump(counter::STACK_FAILED);
    }
    id
}

/// Entries of map functions (after the stack check).
#[uprobe]
pub fn map_op(ctx: ProbeContext) -> u32 {
    probe(&ctx, ProbeClass::MapOp, false)
}

/// Entries of other runtime and sync functions.
#[uprobe]
pub fn call_entry(ctx: ProbeContext) -> u32 {
    probe(&ctx, ProbeClass::CallEntry, false)
}

/// Entries of the runtime's fatal-error functions: in place between windows too, and always
/// recording (see `KernelSite::always_in_place` in userspace).
#[uprobe]
pub fn call_entry_always(ctx: ProbeContext) -> u32 {
    probe(&ctx, ProbeClass::CallEntry, true)
}

/// RET instructions and the instructions after calls: results are in registers.
#[uprobe]
pub fn call_return(ctx: ProbeContext) -> u32 {
    probe(&ctx, ProbeClass::CallReturn, false)
}

/// Inlined sync fast paths: just before a release, just after an acquire.
#[uprobe]
pub fn sync_inline(ctx: ProbeContext) -> u32 {
    probe(&ctx, ProbeClass::SyncInline, false)
}

/// Watched calls of map functions in code outside the standard library: in place between
/// windows too, they only say when that code runs (userspace opens windows when rarely run code
/// is about to run again). One small record per hit; no stack, no goroutine.
#[uprobe]
pub fn cold_call(ctx: ProbeContext) -> u32 {
    // SAFETY: no preconditions.
    let started = unsafe { bpf_ktime_get_ns() };
    bump(counter::HITS + ProbeClass::ColdWatch as u32);
    let record = ColdCall {
        ts_ns: started,
        // SAFETY: a uprobe context always carries a cookie.
        call: unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
    };
    match EVENTS.reserve::<ColdCall>(0) {
        Some(mut entry) => {
            entry.write(record);
            entry.submit(u64::from(BPF_RB_NO_WAKEUP));
        }
        None => bump(counter::DROPPED),
    }
    // SAFETY: no preconditions.
    add(counter::PROGRAM_NS, unsafe { bpf_ktime_get_ns() } - started);
    0
}

/// Every `execve` that succeeds: the traced process's is recorded, after everything its old
/// program did (exec has stopped its other threads) and before its new program runs; with
/// [`ANY_PROCESS`] (the node agent's watch), every process's.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn process_exec(_ctx: RawTracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pid = (pid_tgid >> 32) as u32;
    let watched = CONFIG
        .get(0)
        .is_some_and(|config| config.target_pid == pid || config.target_pid == ANY_PROCESS);
    if watched {
        emit(RawEvent {
            // SAFETY: no preconditions.
            ts_ns: unsafe { bpf_ktime_get_ns() },
            pid,
            tid: pid_tgid as u32,
            kind: EventKind::Exec as u8,
            stack_id: -1,
            ..RawEvent::default()
        });
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// `bpf_probe_read_user` is GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
