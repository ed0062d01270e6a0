//! Layouts shared by the kernel programs (`tracer-ebpf`) and userspace (`tracer-user`).
//!
//! Everything here is `#[repr(C)]`, fixed-size and `no_std`, because the same bytes are written by
//! the eBPF programs into the ring buffer and read back by userspace.
#![cfg_attr(not(test), no_std)]

/// What a traced operation did. The discriminant is stored in [`RawEvent::kind`] and in the
/// attach cookie, so values are stable: append, never renumber.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// `m[k] = v` and friends (`runtime.mapassign*`).
    MapAssign = 1,
    /// `delete(m, k)` (`runtime.mapdelete*`).
    MapDelete = 2,
    /// `clear(m)` and the range-and-delete idiom (`runtime.mapclear`).
    MapClear = 3,
}

impl EventKind {
    /// Every kind, in discriminant order.
    pub const ALL: [EventKind; 3] = [Self::MapAssign, Self::MapDelete, Self::MapClear];

    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::MapAssign),
            2 => Some(Self::MapDelete),
            3 => Some(Self::MapClear),
            _ => None,
        }
    }
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
}

impl KeyClass {
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::U32,
            2 => Self::U64,
            3 => Self::Str,
            _ => Self::None,
        }
    }
}

/// Per-attachment parameters handed to the kernel program through the uprobe's attach cookie,
/// so one program serves every probe site of its class.
///
/// Packed into 64 bits: `kind` in bits 0..8, `key` in bits 8..16, `goid_offset` in bits 16..32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCookie {
    pub kind: EventKind,
    pub key: KeyClass,
    /// Offset of `goid` in `runtime.g` for the target's Go version.
    pub goid_offset: u16,
}

impl ProbeCookie {
    pub const fn pack(self) -> u64 {
        (self.kind as u64) | ((self.key as u64) << 8) | ((self.goid_offset as u64) << 16)
    }

    /// `None` when the cookie does not name a known event kind (never attached by tracer).
    pub const fn unpack(cookie: u64) -> Option<Self> {
        let Some(kind) = EventKind::from_u8(cookie as u8) else {
            return None;
        };
        Some(Self {
            kind,
            key: KeyClass::from_u8((cookie >> 8) as u8),
            goid_offset: (cookie >> 16) as u16,
        })
    }
}

/// One traced operation, as written by the kernel into the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Go goroutine id (`runtime.g.goid`); 0 when it could not be read.
    pub goroutine: u64,
    /// Address of the object operated on (for maps: the map header, what `%p` prints).
    pub object: u64,
    /// Map key value (integer keys) or string length, as given by [`RawEvent::key_class`].
    pub key: u64,
    /// Thread group id (the process id).
    pub pid: u32,
    /// Kernel thread id.
    pub tid: u32,
    /// An [`EventKind`] discriminant.
    pub kind: u8,
    /// A [`KeyClass`] discriminant.
    pub key_class: u8,
    pub _reserved: [u8; 6],
}

/// Indices into the kernel's per-CPU `COUNTERS` array.
pub mod counter {
    /// Events lost because the ring buffer was full (`bpf_ringbuf_reserve` failed).
    pub const DROPPED: u32 = 0;
    /// Events whose goroutine id could not be read (the event is still recorded, goroutine 0).
    pub const GOID_UNREADABLE: u32 = 1;
    pub const COUNT: u32 = 2;
}

/// Names of the maps and programs in the eBPF object, shared so a rename breaks the build.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const MAP_WRITE_PROGRAM: &str = "map_write";
}

/// Size of the event ring buffer in bytes (a power-of-two multiple of the page size).
pub const RING_BUFFER_BYTES: u32 = 1 << 24;

#[cfg(feature = "user")]
// SAFETY: plain old data: integers only, `#[repr(C)]`, no padding holes (48 bytes, 8-aligned).
unsafe impl aya::Pod for RawEvent {}

const _: () = assert!(core::mem::size_of::<RawEvent>() == 48);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips_every_field() {
        for kind in EventKind::ALL {
            for key in [KeyClass::None, KeyClass::U32, KeyClass::U64, KeyClass::Str] {
                for goid_offset in [0u16, 152, 160, u16::MAX] {
                    let cookie = ProbeCookie {
                        kind,
                        key,
                        goid_offset,
                    };
                    assert_eq!(ProbeCookie::unpack(cookie.pack()), Some(cookie));
                }
            }
        }
    }

    #[test]
    fn cookie_without_known_kind_is_rejected() {
        assert_eq!(ProbeCookie::unpack(0), None);
        assert_eq!(ProbeCookie::unpack(0xff), None);
    }
}
