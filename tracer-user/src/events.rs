//! Decoding the kernel's records into events, and their JSON-lines form (`--events FILE`).

use serde::Serialize;
use tracer_common::{EventKind, KeyClass, RawEvent};

/// The key of a map operation, as far as the probe records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Not recorded (generic maps pass a pointer; `clear` has none).
    Unknown,
    /// Integer and pointer keys (`*_fast32`, `*_fast64`, `*_fast64ptr`).
    Integer(u64),
    /// String keys: only the length is recorded, never the contents.
    StringOfLength(u64),
}

/// One decoded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub goroutine: u64,
    /// The map header address.
    pub map: u64,
    pub key: Key,
}

/// Decodes one ring-buffer record; `None` for a record of the wrong size or an unknown kind.
pub fn decode(record: &[u8]) -> Option<Event> {
    if record.len() != std::mem::size_of::<RawEvent>() {
        return None;
    }
    // SAFETY: the length matches and RawEvent is plain old data valid for any bit pattern.
    let raw = unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<RawEvent>()) };
    let kind = EventKind::from_u8(raw.kind)?;
    let key = match KeyClass::from_u8(raw.key_class) {
        KeyClass::None => Key::Unknown,
        KeyClass::U32 | KeyClass::U64 => Key::Integer(raw.key),
        KeyClass::Str => Key::StringOfLength(raw.key),
    };
    Some(Event {
        kind,
        ts_ns: raw.ts_ns,
        pid: raw.pid,
        tid: raw.tid,
        goroutine: raw.goroutine,
        map: raw.object,
        key,
    })
}

/// The name of an operation in every output (`"op"` in JSON, the summary).
pub fn op_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::MapAssign => "assign",
        EventKind::MapDelete => "delete",
        EventKind::MapClear => "clear",
    }
}

/// The JSON-lines record of one event. Field names are part of the CLI contract (docs/cli.md).
#[derive(Serialize)]
struct EventRecord {
    op: &'static str,
    /// Lowercase hex, as Go's `%p` prints the map.
    map: String,
    goroutine: u64,
    pid: u32,
    tid: u32,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_len: Option<u64>,
}

impl Event {
    pub fn to_json(&self) -> String {
        let record = EventRecord {
            op: op_name(self.kind),
            map: format!("{:#x}", self.map),
            goroutine: self.goroutine,
            pid: self.pid,
            tid: self.tid,
            ts: self.ts_ns,
            key: match self.key {
                Key::Integer(value) => Some(value),
                _ => None,
            },
            key_len: match self.key {
                Key::StringOfLength(len) => Some(len),
                _ => None,
            },
        };
        serde_json::to_string(&record).expect("an event always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(raw: &RawEvent) -> Vec<u8> {
        // SAFETY: RawEvent is plain old data without padding.
        unsafe {
            std::slice::from_raw_parts(
                (raw as *const RawEvent).cast::<u8>(),
                std::mem::size_of::<RawEvent>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_a_fast64_assign_into_json() {
        let raw = RawEvent {
            ts_ns: 123,
            goroutine: 7,
            object: 0xc0_0007_4180,
            key: 42,
            pid: 100,
            tid: 101,
            kind: EventKind::MapAssign as u8,
            key_class: KeyClass::U64 as u8,
            _reserved: [0; 6],
        };
        let event = decode(&bytes_of(&raw)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(json["op"], "assign");
        assert_eq!(json["map"], "0xc000074180");
        assert_eq!(json["goroutine"], 7);
        assert_eq!(json["tid"], 101);
        assert_eq!(json["pid"], 100);
        assert_eq!(json["ts"], 123);
        assert_eq!(json["key"], 42);
        assert!(json.get("key_len").is_none());
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
        assert_eq!(event.key, Key::StringOfLength(5));
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(json["op"], "delete");
        assert_eq!(json["key_len"], 5);
        assert!(json.get("key").is_none());
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
