//! The `--events` recording: every event in stream order with the code-site stacks, one JSON
//! object per line, so `tracer replay` gives the same races as the live run, deterministically.
//!
//! [`Line`] is the format: the session writes it ([`Recorder`]) and replay reads it
//! ([`Recording`]), so a renamed field cannot break one side silently. Field names are part of
//! the CLI contract (docs/cli.md); [`RECORDING_VERSION`] changes when they do.

use std::{
    borrow::Cow,
    io::{self, BufWriter, Write},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tracer_common::EventKind;

use super::{kind_of_op, stacks::SourceFrame, ChannelBuffer, Event, Fields, Key, Op};
use crate::{error::TracerError, plan::catalogue::FunctionId};

/// The version of the recording format `--events` writes (its first line says it).
pub const RECORDING_VERSION: u64 = 1;

/// One line of a recording.
#[expect(
    clippy::large_enum_variant,
    reason = "a line lives only while it is written or read, and most lines are events"
)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line<'a> {
    /// The lines with a `"type"`.
    #[serde(borrow)]
    Marker(Marker<'a>),
    /// Everything else is an event.
    #[serde(borrow)]
    Event(EventRecord<'a>),
}

/// A line that is not an event, told apart by its `"type"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Marker<'a> {
    /// The first line: the format's version and the process recorded.
    Session {
        version: u64,
        pid: u32,
        #[serde(borrow)]
        executable: Cow<'a, str>,
    },
    /// A code site's frames, written before the first event that refers to it (ids 1, 2, …).
    Stack { id: u64, frames: Vec<SourceFrame> },
    /// Every probe is in place from `ts` on; the analysis starts over from there (attach, and
    /// each sampling window).
    AnalysedFrom { ts: u64 },
    /// The probes are removed from `ts` on.
    AnalysedUntil { ts: u64 },
}

/// Where the analysis window moved (see `detect::pipeline::Detection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowMark {
    From(u64),
    Until(u64),
}

/// The record of one event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord<'a> {
    #[serde(borrow)]
    pub op: Cow<'a, str>,
    /// Lowercase hex, as Go's `%p` prints the map.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub map: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub object: Option<u64>,
    /// `select`: the index of the case that ran (sends first, then receives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired: Option<bool>,
    pub goroutine: u64,
    pub pid: u32,
    pub tid: u32,
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_len: Option<u64>,
    /// The probe site's function.
    #[serde(default, borrow)]
    pub function: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub caller: Option<u64>,
    /// The id of the event's `{"type":"stack"}` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<u64>,
    /// Events the kernel had dropped so far (a change marks a hole in the stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u32>,
    /// Channel operations: the channel's buffer address, `cap(ch)` and element size.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex")]
    pub buffer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element_size: Option<u64>,
}

impl<'a> EventRecord<'a> {
    /// The record of `event`, observed by a probe in `function`, with the code site `stack`.
    pub fn of(event: &Event, function: &'a str, stack: Option<u64>) -> Self {
        use EventKind as K;
        let kind = event.kind();
        let fields = event.op.fields();
        let is_map = event.op.map_access().is_some() || kind == K::MapMake;
        let chosen = kind == K::SelectChosen;
        let created = kind == K::GoroutineCreate;
        let nonzero = |value: u64| (value != 0).then_some(value);
        Self {
            op: Cow::Borrowed(kind.name()),
            map: is_map.then_some(fields.object),
            child: created.then_some(fields.object),
            object: if is_map || chosen || created {
                None
            } else {
                nonzero(fields.object)
            },
            case: chosen.then_some(fields.object),
            arg: if is_map { None } else { nonzero(fields.arg) },
            acquired: matches!(kind, K::MutexLock | K::MutexTryLock).then_some(fields.zero_flag),
            goroutine: event.goroutine,
            pid: event.pid,
            tid: event.tid,
            ts: event.ts_ns,
            key: match fields.key {
                Key::Integer(value) => Some(value),
                _ => None,
            },
            key_len: match fields.key {
                Key::StringOfLength(len) => Some(len),
                _ => None,
            },
            function: Cow::Borrowed(function),
            caller: nonzero(event.caller),
            stack,
            lost: (event.lost != 0).then_some(event.lost),
            buffer: fields.buffer.map(|buffer| buffer.address),
            capacity: fields.buffer.map(|buffer| buffer.capacity),
            element_size: fields.buffer.map(|buffer| buffer.element_size),
        }
    }

    /// The event this record describes; `None` for an unknown `op`.
    pub fn event(&self) -> Option<Event> {
        let fields = Fields {
            object: self
                .map
                .or(self.object)
                .or(self.child)
                .or(self.case)
                .unwrap_or(0),
            arg: self.arg.unwrap_or(0),
            key: match (self.key, self.key_len) {
                (Some(value), _) => Key::Integer(value),
                (None, Some(len)) => Key::StringOfLength(len),
                _ => Key::Unknown,
            },
            zero_flag: self.acquired.unwrap_or(false),
            buffer: self.buffer.map(|address| ChannelBuffer {
                address,
                capacity: self.capacity.unwrap_or(0),
                element_size: self.element_size.unwrap_or(0),
            }),
        };
        Some(Event {
            ts_ns: self.ts,
            pid: self.pid,
            tid: self.tid,
            goroutine: self.goroutine,
            caller: self.caller.unwrap_or(0),
            probe: 0,
            stack: None,
            lost: self.lost.unwrap_or(0),
            // Recorded in the order operations took effect.
            after_map_call: false,
            op: Op::new(kind_of_op(&self.op)?, fields),
        })
    }
}

/// Addresses as `"0x…"` strings, the way Go prints pointers.
mod hex {
    use serde::{de::Error as _, Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(&format_args!("{value:#x}")),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        let Some(text) = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        u64::from_str_radix(digits, 16)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{text:?} is not a hexadecimal address")))
    }
}

impl Line<'_> {
    /// The line as JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a recording line always serialises")
    }
}

/// Writes a recording (`--events FILE`, `-` for standard output), header first.
pub struct Recorder {
    path: PathBuf,
    writer: BufWriter<Box<dyn Write>>,
}

impl Recorder {
    /// Creates (truncates) `path` and writes the header for process `pid` running `executable`.
    pub fn create(path: PathBuf, pid: u32, executable: &str) -> Result<Self, TracerError> {
        let output: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(io::stdout())
        } else {
            // Integer map keys are in it: readable by its owner only.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path);
            Box::new(file.map_err(|source| TracerError::Output {
                path: path.clone(),
                source,
            })?)
        };
        let mut recorder = Self {
            path,
            writer: BufWriter::with_capacity(1 << 16, output),
        };
        recorder.write(&Line::Marker(Marker::Session {
            version: RECORDING_VERSION,
            pid,
            executable: Cow::Borrowed(executable),
        }))?;
        Ok(recorder)
    }

    pub fn event(
        &mut self,
        event: &Event,
        function: &str,
        stack: Option<u64>,
    ) -> Result<(), TracerError> {
        self.write(&Line::Event(EventRecord::of(event, function, stack)))
    }

    pub fn stack(&mut self, id: u64, frames: &[SourceFrame]) -> Result<(), TracerError> {
        self.write(&Line::Marker(Marker::Stack {
            id,
            frames: frames.to_vec(),
        }))
    }

    pub fn window(&mut self, mark: WindowMark) -> Result<(), TracerError> {
        self.write(&Line::Marker(match mark {
            WindowMark::From(ts) => Marker::AnalysedFrom { ts },
            WindowMark::Until(ts) => Marker::AnalysedUntil { ts },
        }))
    }

    fn write(&mut self, line: &Line<'_>) -> Result<(), TracerError> {
        serde_json::to_writer(&mut self.writer, line)
            .map_err(io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|source| self.error(source))
    }

    pub fn flush(&mut self) -> Result<(), TracerError> {
        self.writer.flush().map_err(|source| self.error(source))
    }

    fn error(&self, source: io::Error) -> TracerError {
        TracerError::Output {
            path: self.path.clone(),
            source,
        }
    }
}

/// An event as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub event: Event,
    /// The probe site's function, and its catalogue entry when it has one.
    pub function: String,
    pub observes: Option<FunctionId>,
    /// Its code site's id (0 = no stack).
    pub stack: u64,
}

/// A recording, read: the code sites' frames (ids 1, 2, … in order) and every event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// The process recorded and its executable's name, from the header line (older
    /// recordings have none: the pid then comes from the first event).
    pub pid: u32,
    pub executable: Option<String>,
    pub sites: Vec<Vec<SourceFrame>>,
    pub events: Vec<RecordedEvent>,
    /// Where the analysis window moved, as the live session did it: each mark applies before
    /// the event at its index.
    pub marks: Vec<(usize, WindowMark)>,
}

impl Recording {
    pub fn read(path: &Path) -> Result<Self, TracerError> {
        let text = std::fs::read_to_string(path).map_err(|source| TracerError::Output {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses a recording's text; errors name `path` and the line.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TracerError> {
        if text.trim().is_empty() {
            return Err(TracerError::InvalidRecording {
                path: path.to_owned(),
                line: 1,
                reason: "the file is empty".to_owned(),
            });
        }
        let mut recording = Self::default();
        for (number, text) in text.lines().enumerate() {
            recording
                .add(text)
                .map_err(|reason| TracerError::InvalidRecording {
                    path: path.to_owned(),
                    line: number + 1,
                    reason,
                })?;
        }
        Ok(recording)
    }

    /// Adds one line; the error says what is wrong with it.
    fn add(&mut self, text: &str) -> Result<(), String> {
        let line = serde_json::from_str::<Line<'_>>(text).map_err(|error| {
            // Untagged enums only say that nothing matched: an event's own error says why.
            match serde_json::from_str::<EventRecord<'_>>(text) {
                Err(event_error) if text.contains("\"op\"") => event_error.to_string(),
                _ if text.contains("\"type\"") => serde_json::from_str::<Marker<'_>>(text)
                    .err()
                    .map_or_else(|| error.to_string(), |error| error.to_string()),
                _ => format!("not a recording line ({error})"),
            }
        })?;
        match line {
            Line::Marker(Marker::Session {
                version,
                pid,
                executable,
            }) => {
                if version != RECORDING_VERSION {
                    return Err(format!(
                        "recording version {version} (this tracer reads version \
                         {RECORDING_VERSION})"
                    ));
                }
                self.pid = pid;
                self.executable = Some(executable.into_owned());
            }
            Line::Marker(Marker::Stack { id, frames }) => {
                let expected = self.sites.len() as u64 + 1;
                if id != expected {
                    return Err(format!("stack {id} out of order (expected {expected})"));
                }
                self.sites.push(frames);
            }
            Line::Marker(Marker::AnalysedFrom { ts }) => {
                self.marks.push((self.events.len(), WindowMark::From(ts)));
            }
            Line::Marker(Marker::AnalysedUntil { ts }) => {
                self.marks.push((self.events.len(), WindowMark::Until(ts)));
            }
            Line::Event(record) => {
                let event = record
                    .event()
                    .ok_or_else(|| format!("unknown op {:?}", record.op))?;
                if self.pid == 0 {
                    self.pid = event.pid;
                }
                self.events.push(RecordedEvent {
                    event,
                    observes: FunctionId::of(&record.function),
                    function: record.function.into_owned(),
                    stack: record.stack.unwrap_or(0),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Recording, TracerError> {
        Recording::parse(Path::new("rec.jsonl"), text)
    }

    fn header(pid: u32, executable: &str) -> String {
        Line::Marker(Marker::Session {
            version: RECORDING_VERSION,
            pid,
            executable: executable.into(),
        })
        .to_json()
    }

    #[test]
    fn the_header_names_the_process_and_its_version_is_checked() {
        let event = r#"{"op":"assign","map":"0x10","goroutine":1,"pid":7,"tid":7,"ts":2}"#;
        let recording = parse(&format!("{}\n{event}\n", header(42, "svc"))).unwrap();
        assert_eq!(recording.pid, 42);
        assert_eq!(recording.executable.as_deref(), Some("svc"));
        assert_eq!(recording.events.len(), 1);
        // Without a header (older recordings), the pid comes from the first event.
        let recording = parse(event).unwrap();
        assert_eq!((recording.pid, recording.executable), (7, None));
        let newer = r#"{"type":"session","version":2,"pid":1,"executable":"svc"}"#;
        let error = parse(newer).err().unwrap().to_string();
        assert!(error.contains("recording version 2"), "{error}");
    }

    #[test]
    fn an_empty_file_is_not_a_recording() {
        for empty in ["", "\n \n"] {
            let error = parse(empty).err().unwrap();
            assert!(
                matches!(error, TracerError::InvalidRecording { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn a_bad_line_is_named_with_what_is_wrong() {
        let cases = [
            (r#"{"op":"assign","goroutine":1,"pid":7,"tid":7}"#, "ts"),
            (
                r#"{"op":"frobnicate","goroutine":1,"pid":7,"tid":7,"ts":1}"#,
                "frobnicate",
            ),
            (
                r#"{"op":"read","map":"zz","goroutine":1,"pid":7,"tid":7,"ts":1}"#,
                "\"zz\"",
            ),
            (r#"{"type":"stack","id":1}"#, "frames"),
            (r#"{"type":"stack","id":2,"frames":[]}"#, "out of order"),
            ("[1, 2]", "not a recording line"),
        ];
        for (line, reason) in cases {
            let error = parse(&format!("{}\n{line}\n", header(1, "svc")))
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains(reason), "{line}: {error}");
            assert!(error.starts_with("rec.jsonl:2:"), "{line}: {error}");
        }
    }

    /// One event of each kind, with every value its operation keeps set.
    fn events() -> Vec<Event> {
        EventKind::ALL
            .into_iter()
            .enumerate()
            .map(|(index, kind)| {
                let index = index as u64 + 1;
                let mut event =
                    Event::example(kind, index, 0xc000_0100 + index * 8, index).with(|fields| {
                        fields.zero_flag = true;
                        fields.key = match index % 3 {
                            0 => Key::Integer(index),
                            1 => Key::StringOfLength(index),
                            _ => Key::Unknown,
                        };
                        fields.buffer = Some(ChannelBuffer {
                            address: 0xc000_9000,
                            capacity: 4,
                            element_size: 8,
                        });
                    });
                event.ts_ns = 1_000 + index;
                event.pid = 42;
                event.tid = 43;
                event.caller = 0x47_0000 + index;
                event.lost = u32::from(index.is_multiple_of(3));
                event
            })
            .collect()
    }

    #[test]
    fn a_recording_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let frames = vec![SourceFrame {
            function: "main.worker".into(),
            file: "/src/app/main.go".into(),
            line: 12,
        }];
        let mut recorder = Recorder::create(path.clone(), 42, "svc").unwrap();
        recorder.window(WindowMark::From(900)).unwrap();
        recorder.stack(1, &frames).unwrap();
        let events = events();
        for (index, event) in events.iter().enumerate() {
            let stack = (index % 2 == 0).then_some(1);
            recorder.event(event, "runtime.chanrecv2", stack).unwrap();
        }
        recorder.window(WindowMark::Until(5_000)).unwrap();
        recorder.flush().unwrap();
        drop(recorder);

        let recording = Recording::read(&path).unwrap();
        let expected = Recording {
            pid: 42,
            executable: Some("svc".into()),
            sites: vec![frames],
            events: events
                .iter()
                .enumerate()
                .map(|(index, event)| RecordedEvent {
                    event: *event,
                    function: "runtime.chanrecv2".to_owned(),
                    observes: FunctionId::of("runtime.chanrecv2"),
                    stack: if index % 2 == 0 { 1 } else { 0 },
                })
                .collect(),
            marks: vec![
                (0, WindowMark::From(900)),
                (events.len(), WindowMark::Until(5_000)),
            ],
        };
        assert_eq!(recording, expected);
    }

    #[test]
    fn event_lines_keep_the_documented_field_names() {
        let mut assign = Event::example(EventKind::MapAssign, 7, 0xc0_0007_4180, 0)
            .with(|fields| fields.key = Key::Integer(42));
        assign.caller = 0x47_1234;
        let json: serde_json::Value =
            serde_json::to_value(EventRecord::of(&assign, "runtime.f", Some(3))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "op": "assign", "map": "0xc000074180", "goroutine": 7, "pid": 1, "tid": 1,
                "ts": 0, "key": 42, "function": "runtime.f", "caller": "0x471234", "stack": 3,
            })
        );
        let lock = Event::example(EventKind::MutexLock, 1, 0x5a_0010, 0)
            .with(|fields| fields.zero_flag = true);
        let json = serde_json::to_value(EventRecord::of(&lock, "main.f", None)).unwrap();
        assert_eq!(
            (&json["object"], &json["acquired"]),
            (&"0x5a0010".into(), &true.into())
        );
        let go = Event::example(EventKind::GoroutineCreate, 1, 18, 1);
        let json = serde_json::to_value(EventRecord::of(&go, "runtime.newproc1", None)).unwrap();
        assert_eq!((&json["child"], &json["arg"]), (&18.into(), &1.into()));
        assert!(json.get("object").is_none());
    }
}
