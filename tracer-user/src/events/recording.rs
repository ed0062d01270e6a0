//! The `--events` recording, read back for `tracer replay`: it holds every event in stream
//! order with the code-site stacks, so replaying it gives the same races as the live run,
//! deterministically.

use std::path::Path;

use serde_json::Value;

use super::{kind_of_op, stacks::SourceFrame, ChannelBuffer, Event, Key};
use crate::error::TracerError;

/// A `--events` recording, parsed: the code sites' frames (ids 1, 2, … in order) and every
/// event with its probe site's function and its code-site id (0 = no stack).
#[derive(Default)]
pub struct Recording {
    /// The process recorded and its executable's name, from the header line (older
    /// recordings have none: the pid then comes from the first event).
    pub pid: u32,
    pub executable: Option<String>,
    pub sites: Vec<Vec<SourceFrame>>,
    pub events: Vec<(Event, String, u64)>,
    /// Where the analysis window moved, as the live session did it: each mark applies before
    /// the event at its index.
    pub marks: Vec<(usize, WindowMark)>,
}

/// A line of a recording that moves the analysis window (see `detect::pipeline::Detection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowMark {
    /// `{"type":"analysed-from","ts":T}`: every probe is in place from T on; the analysis
    /// starts over from there (attach, and each sampling window).
    From(u64),
    /// `{"type":"analysed-until","ts":T}`: the probes are removed from T on.
    Until(u64),
}

impl Recording {
    pub fn read(path: &Path) -> Result<Self, TracerError> {
        let text = std::fs::read_to_string(path).map_err(|source| TracerError::Output {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses a recording's text; errors name `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TracerError> {
        let mut recording = Self::default();
        if text.trim().is_empty() {
            return Err(TracerError::InvalidRecording {
                path: path.to_owned(),
                line: 1,
                reason: "the file is empty".to_owned(),
            });
        }
        for (number, line) in text.lines().enumerate() {
            let invalid = |what: &str| TracerError::InvalidRecording {
                path: path.to_owned(),
                line: number + 1,
                reason: what.to_owned(),
            };
            let record: Value =
                serde_json::from_str(line).map_err(|error| invalid(&error.to_string()))?;
            let mark = match record["type"].as_str() {
                Some("analysed-from") => Some(WindowMark::From as fn(u64) -> WindowMark),
                Some("analysed-until") => Some(WindowMark::Until as fn(u64) -> WindowMark),
                _ => None,
            };
            if let Some(mark) = mark {
                let ts = record["ts"].as_u64().ok_or_else(|| invalid("no ts"))?;
                recording.marks.push((recording.events.len(), mark(ts)));
                continue;
            }
            if record["type"] == "session" {
                if record["version"].as_u64() != Some(RECORDING_VERSION) {
                    return Err(invalid(&format!(
                        "recording version {} (this tracer reads version {RECORDING_VERSION})",
                        record["version"]
                    )));
                }
                recording.pid = record["pid"]
                    .as_u64()
                    .and_then(|pid| u32::try_from(pid).ok())
                    .ok_or_else(|| invalid("no pid"))?;
                recording.executable = record["executable"].as_str().map(str::to_owned);
                continue;
            }
            if record["type"] == "stack" {
                let frames: Vec<SourceFrame> = serde_json::from_value(record["frames"].clone())
                    .map_err(|error| invalid(&format!("bad stack frames: {error}")))?;
                recording.sites.push(frames);
                let id = recording.sites.len() as u64;
                if record["id"].as_u64() != Some(id) {
                    return Err(invalid(&format!(
                        "stack {} out of order (expected {id})",
                        record["id"]
                    )));
                }
                continue;
            }
            let event = event_of(&record).ok_or_else(|| invalid("not an event record"))?;
            if recording.pid == 0 {
                recording.pid = event.pid;
            }
            let function = record["function"].as_str().unwrap_or_default().to_owned();
            let site = record["stack"].as_u64().unwrap_or(0);
            recording.events.push((event, function, site));
        }
        Ok(recording)
    }
}

/// The version of the recording format `--events` writes (its first line says it).
pub const RECORDING_VERSION: u64 = 1;

/// The header line of a recording of process `pid`.
pub fn header(pid: u32, executable: &str) -> String {
    serde_json::json!({
        "type": "session",
        "version": RECORDING_VERSION,
        "pid": pid,
        "executable": executable,
    })
    .to_string()
}

/// The event of one JSON record (the fields `Event::to_json` writes).
fn event_of(record: &Value) -> Option<Event> {
    let kind = kind_of_op(record["op"].as_str()?)?;
    let hex = |field: &str| {
        record[field]
            .as_str()
            .and_then(|text| u64::from_str_radix(text.trim_start_matches("0x"), 16).ok())
    };
    let object = hex("map")
        .or_else(|| hex("object"))
        .or_else(|| record["child"].as_u64())
        .or_else(|| record["case"].as_u64())
        .unwrap_or(0);
    let key = match (record["key"].as_u64(), record["key_len"].as_u64()) {
        (Some(value), _) => Key::Integer(value),
        (None, Some(len)) => Key::StringOfLength(len),
        _ => Key::Unknown,
    };
    Some(Event {
        kind,
        ts_ns: record["ts"].as_u64()?,
        pid: u32::try_from(record["pid"].as_u64()?).ok()?,
        tid: u32::try_from(record["tid"].as_u64()?).ok()?,
        goroutine: record["goroutine"].as_u64()?,
        object,
        arg: record["arg"].as_u64().unwrap_or(0),
        key,
        caller: hex("caller").unwrap_or(0),
        site: 0,
        zero_flag: record["acquired"].as_bool().unwrap_or(false),
        stack: None,
        lost: u32::try_from(record["lost"].as_u64().unwrap_or(0)).ok()?,
        buffer: hex("buffer").map(|address| ChannelBuffer {
            address,
            capacity: record["capacity"].as_u64().unwrap_or(0),
            element_size: record["element_size"].as_u64().unwrap_or(0),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Recording, TracerError> {
        Recording::parse(Path::new("rec.jsonl"), text)
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
}
