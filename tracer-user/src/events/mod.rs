//! Stage 4, decode. In: the kernel's raw records (ring buffer) or a recording (`--events` file).
//! Out: decoded [`Event`]s in the order their operations took effect ([`order`]), the code
//! sites' symbolized stacks ([`stacks`]), and the recording written and read back
//! ([`recording`]).

pub mod op;
pub mod order;
pub mod recording;
pub mod stacks;

pub use op::{ChannelBuffer, Fields, Key, MapAccess, Op};

use tracer_common::{event_flags, ColdCall, EventKind, KeyClass, RawEvent, BUFFER_CAPACITY_MASK};

/// One decoded event: who did what, when, where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub goroutine: u64,
    /// Return address into the caller (entry probes) or the probed instruction (inline sites).
    pub caller: u64,
    /// Index of the probe that recorded it (see `plan::sites::kernel_sites`).
    pub probe: u32,
    /// The kernel's id of the walked user stack (map and fatal events).
    pub stack: Option<u32>,
    /// The kernel's count of dropped events when this one was recorded (low 32 bits).
    pub lost: u32,
    /// A release recorded on the call of a map function before it: it takes effect after the
    /// goroutine's map event from that call ([`order::EffectOrder`] puts it there).
    pub after_map_call: bool,
    pub op: Op,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.op.kind()
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The cold-code watch's record (see `plan::cold`), if `record` is one: told apart from events
/// by its size.
pub fn decode_cold_call(record: &[u8]) -> Option<ColdCall> {
    (record.len() == size_of::<ColdCall>()).then(|| {
        // SAFETY: the length matches and ColdCall is plain old data valid for any bit pattern.
        unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<ColdCall>()) }
    })
}

/// Decodes one ring-buffer record; `None` for a record of the wrong size or an unknown kind.
pub fn decode(record: &[u8]) -> Option<Event> {
    if record.len() != size_of::<RawEvent>() {
        return None;
    }
    // SAFETY: the length matches and RawEvent is plain old data valid for any bit pattern.
    let raw = unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<RawEvent>()) };
    let kind = EventKind::from_u8(raw.kind)?;
    let key_class = KeyClass::from_u8(raw.key_class);
    let key = match key_class {
        KeyClass::None | KeyClass::ChannelBuffer => Key::Unknown,
        KeyClass::U32 | KeyClass::U64 => Key::Integer(raw.key),
        KeyClass::Str => Key::StringOfLength(raw.key),
    };
    let buffer = (key_class == KeyClass::ChannelBuffer).then_some(ChannelBuffer {
        address: raw.key,
        capacity: raw.buffer_shape & BUFFER_CAPACITY_MASK,
        element_size: raw.buffer_shape >> 48,
    });
    let fields = Fields {
        object: raw.object,
        arg: raw.arg,
        key,
        zero_flag: raw.flags & event_flags::ZERO_FLAG != 0,
        buffer,
    };
    Some(Event {
        ts_ns: raw.ts_ns,
        pid: raw.pid,
        tid: raw.tid,
        goroutine: raw.goroutine,
        caller: raw.caller,
        probe: raw.probe,
        stack: u32::try_from(raw.stack_id).ok(),
        lost: raw.lost,
        after_map_call: raw.flags & event_flags::AFTER_MAP_CALL != 0,
        op: Op::new(kind, fields),
    })
}

#[cfg(test)]
impl Event {
    /// An event with only what unit tests care about set.
    pub(crate) fn example(kind: EventKind, goroutine: u64, object: u64, arg: u64) -> Self {
        Self {
            ts_ns: 0,
            pid: 1,
            tid: 1,
            goroutine,
            caller: 0,
            probe: 0,
            stack: None,
            lost: 0,
            after_map_call: false,
            op: Op::new(
                kind,
                Fields {
                    object,
                    arg,
                    ..Fields::default()
                },
            ),
        }
    }

    /// The event with its operation's values changed by `change`.
    pub(crate) fn with(mut self, change: impl FnOnce(&mut Fields)) -> Self {
        let mut fields = self.op.fields();
        change(&mut fields);
        self.op = Op::new(self.kind(), fields);
        self
    }
}

/// The kind named `op` in a recording (the inverse of [`EventKind::name`]).
pub fn kind_of_op(op: &str) -> Option<EventKind> {
    EventKind::ALL.into_iter().find(|kind| kind.name() == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(raw: &RawEvent) -> Vec<u8> {
        // SAFETY: RawEvent is plain old data without padding.
        unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref::<RawEvent>(raw).cast::<u8>(),
                size_of::<RawEvent>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn cold_call_records_are_told_from_events_by_their_size() {
        let call = ColdCall {
            ts_ns: 42,
            call: 7,
            pid: 1234,
        };
        let mut bytes = call.ts_ns.to_le_bytes().to_vec();
        bytes.extend(call.call.to_le_bytes());
        bytes.extend(call.pid.to_le_bytes());
        assert_eq!(decode_cold_call(&bytes), Some(call));
        assert_eq!(decode(&bytes), None);
        let event = bytes_of(&RawEvent {
            kind: EventKind::MapAssign as u8,
            ..RawEvent::default()
        });
        assert_eq!(decode_cold_call(&event), None);
        assert!(decode(&event).is_some());
    }

    fn json(raw: &RawEvent) -> serde_json::Value {
        let event = decode(&bytes_of(raw)).unwrap();
        serde_json::to_value(recording::EventRecord::of(&event, "runtime.f", Some(3))).unwrap()
    }

    #[test]
    fn decodes_a_fast64_assign_into_json() {
        let raw = RawEvent {
            ts_ns: 123,
            goroutine: 7,
            object: 0xc0_0007_4180,
            key: 42,
            caller: 0x47_1234,
            pid: 100,
            tid: 101,
            kind: EventKind::MapAssign as u8,
            key_class: KeyClass::U64 as u8,
            ..RawEvent::default()
        };
        let json = json(&raw);
        assert_eq!(json["op"], "assign");
        assert_eq!(json["map"], "0xc000074180");
        assert_eq!(json["goroutine"], 7);
        assert_eq!(json["tid"], 101);
        assert_eq!(json["pid"], 100);
        assert_eq!(json["ts"], 123);
        assert_eq!(json["key"], 42);
        assert_eq!(json["caller"], "0x471234");
        assert_eq!(json["function"], "runtime.f");
        assert_eq!(json["stack"], 3);
        assert!(json.get("key_len").is_none());
        assert!(json.get("object").is_none());
    }

    #[test]
    fn string_keys_record_only_their_length() {
        let raw = RawEvent {
            kind: EventKind::MapDelete as u8,
            key_class: KeyClass::Str as u8,
            key: 5,
            ..RawEvent::default()
        };
        let event = decode(&bytes_of(&raw)).unwrap();
        assert!(matches!(
            event.op,
            Op::Map {
                key: Key::StringOfLength(5),
                ..
            }
        ));
        let json = json(&raw);
        assert_eq!(json["op"], "delete");
        assert_eq!(json["key_len"], 5);
        assert!(json.get("key").is_none());
    }

    #[test]
    fn sync_and_goroutine_events_name_their_objects() {
        let lock = json(&RawEvent {
            kind: EventKind::MutexLock as u8,
            object: 0x5a_0010,
            flags: event_flags::ZERO_FLAG,
            ..RawEvent::default()
        });
        assert_eq!(lock["op"], "lock");
        assert_eq!(lock["object"], "0x5a0010");
        assert_eq!(lock["acquired"], true);
        assert!(lock.get("map").is_none());
        let go = json(&RawEvent {
            kind: EventKind::GoroutineCreate as u8,
            object: 18,
            arg: 1,
            goroutine: 1,
            ..RawEvent::default()
        });
        assert_eq!(go["op"], "go");
        assert_eq!(go["child"], 18);
        assert_eq!(go["arg"], 1);
    }

    #[test]
    fn every_op_name_maps_back_to_its_kind() {
        for kind in EventKind::ALL {
            assert_eq!(kind_of_op(kind.name()), Some(kind));
            assert_eq!(EventKind::from_u8(kind as u8), Some(kind));
        }
        assert_eq!(kind_of_op("frobnicate"), None);
    }

    #[test]
    fn rejects_short_records_and_unknown_kinds() {
        let raw = RawEvent {
            kind: 0,
            ..RawEvent::default()
        };
        assert_eq!(decode(&bytes_of(&raw)), None);
        assert_eq!(decode(&bytes_of(&raw)[..10]), None);
        assert_eq!(decode(&[]), None);
    }
}
