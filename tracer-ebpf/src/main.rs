//! tracer's kernel side: uprobes on an unmodified Go binary that record what happened, where and
//! by which goroutine into one ring buffer. Nothing here decides anything; userspace does.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_attach_cookie, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
    },
    macros::{map, uprobe},
    maps::{PerCpuArray, RingBuf},
    programs::ProbeContext,
    EbpfContext as _,
};
use tracer_common::{counter, KeyClass, ProbeCookie, RawEvent, RING_BUFFER_BYTES};

/// Every event, in reservation order (one buffer so that order is global across CPUs).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BUFFER_BYTES, 0);

/// Per-CPU counters indexed by `tracer_common::counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

fn bump(index: u32) {
    if let Some(value) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, and a uprobe program is not re-entered on the same CPU.
        unsafe { *value += 1 };
    }
}

/// Entry of a map write function (`runtime.mapassign*`, `mapdelete*`, `mapclear`), placed after
/// the stack check. Go ABIInternal: RBX = map header, RCX = key (or key pointer), RDI = string key
/// length, R14 = current g.
#[uprobe]
pub fn map_write(ctx: ProbeContext) -> u32 {
    // SAFETY: a uprobe context always carries a cookie (0 when none was set).
    let cookie = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let Some(cookie) = ProbeCookie::unpack(cookie) else {
        return 0;
    };
    // SAFETY: `regs` points to the trapped task's saved user registers.
    let regs = unsafe { &*ctx.regs };
    let key = match cookie.key {
        KeyClass::None => 0,
        KeyClass::U32 => regs.rcx & 0xffff_ffff,
        KeyClass::U64 => regs.rcx,
        KeyClass::Str => regs.rdi,
    };
    let goid_address = regs.r14.wrapping_add(u64::from(cookie.goid_offset));
    // SAFETY: a user-memory read that fails cleanly on a bad address.
    let goroutine = match unsafe { bpf_probe_read_user(goid_address as *const u64) } {
        Ok(goid) => goid,
        Err(_) => {
            bump(counter::GOID_UNREADABLE);
            0
        }
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let event = RawEvent {
        // SAFETY: no preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        goroutine,
        object: regs.rbx,
        key,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        kind: cookie.kind as u8,
        key_class: cookie.key as u8,
        _reserved: [0; 6],
    };
    match EVENTS.reserve::<RawEvent>(0) {
        Some(mut entry) => {
            entry.write(event);
            // Userspace drains on a timer: a wakeup per event would cost more than the probe.
            entry.submit(BPF_RB_NO_WAKEUP as u64);
        }
        None => bump(counter::DROPPED),
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// `bpf_probe_read_user` is GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
