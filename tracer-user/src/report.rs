//! Race reports for people (the `WARNING: DATA RACE` shape Go developers know from `-race`) and
//! for programs (one JSON object per race, as docs/cli.md specifies).

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    detect::{Access, RaceReport},
    stacks::SourceFrame,
};

/// A race with its accesses' stacks resolved.
#[derive(Clone, Debug)]
pub struct ResolvedRace {
    pub race: RaceReport,
    pub current_stack: Vec<SourceFrame>,
    pub previous_stack: Vec<SourceFrame>,
    /// Where each goroutine was started (the `go` statement's stack), when that was seen.
    pub current_created_at: Vec<SourceFrame>,
    pub previous_created_at: Vec<SourceFrame>,
    /// The two goroutines' steps around the race, when `--dot-dir` asked for graphs.
    pub graph: Option<crate::graph::RaceGraph>,
}

fn capitalised(op: &str) -> String {
    let mut chars = op.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The frames from the first one outside the runtime on: the map function the probe sits in
/// is noise to the reader.
fn user_frames(frames: &[SourceFrame]) -> impl Iterator<Item = &SourceFrame> {
    frames
        .iter()
        .skip_while(move |frame| frame.function.starts_with("runtime.") && frames.len() > 1)
}

/// The function a stack's access happened in, as reports show it first.
pub fn access_function(frames: &[SourceFrame]) -> &str {
    user_frames(frames)
        .next()
        .map_or("unknown", |frame| frame.function.as_str())
}

fn write_stack(text: &mut String, frames: &[SourceFrame]) {
    for frame in user_frames(frames) {
        let _ = writeln!(text, "  {}()", frame.function);
        let _ = writeln!(text, "      {}:{}", frame.file, frame.line);
    }
}

/// The text report of one race.
pub fn text(race: &ResolvedRace) -> String {
    let mut text = String::from("==================\nWARNING: DATA RACE\n");
    let describe = |access: &Access, previous: bool| {
        let op = if previous {
            format!("Previous {}", access.op())
        } else {
            capitalised(access.op())
        };
        format!(
            "{op} at {:#x} (map) by goroutine {}:\n",
            race.race.map, access.goroutine
        )
    };
    text.push_str(&describe(&race.race.current, false));
    write_stack(&mut text, &race.current_stack);
    text.push('\n');
    text.push_str(&describe(&race.race.previous, true));
    write_stack(&mut text, &race.previous_stack);
    for (access, created_at) in [
        (&race.race.current, &race.current_created_at),
        (&race.race.previous, &race.previous_created_at),
    ] {
        if !created_at.is_empty() {
            let _ = write!(text, "\nGoroutine {} created at:\n", access.goroutine);
            write_stack(&mut text, created_at);
        }
    }
    if race.race.count > 1 {
        let _ = writeln!(
            text,
            "\n(seen {} times at these two sites)",
            race.race.count
        );
    }
    text.push_str("==================\n");
    text
}

#[derive(Serialize)]
struct JsonAccess<'a> {
    goroutine: u64,
    op: &'static str,
    stack: &'a [SourceFrame],
    /// The stack of the `go` statement that started the goroutine, if seen.
    #[serde(skip_serializing_if = "<[SourceFrame]>::is_empty")]
    created_at: &'a [SourceFrame],
}

#[derive(Serialize)]
struct JsonRace<'a> {
    #[serde(rename = "type")]
    kind_of_record: &'static str,
    map: String,
    kind: &'static str,
    current: JsonAccess<'a>,
    previous: JsonAccess<'a>,
    count: u64,
}

/// The JSON line of one race.
pub fn json(race: &ResolvedRace) -> String {
    fn access<'s>(
        access: &Access,
        stack: &'s [SourceFrame],
        created_at: &'s [SourceFrame],
    ) -> JsonAccess<'s> {
        JsonAccess {
            goroutine: access.goroutine,
            op: access.op(),
            stack,
            created_at,
        }
    }
    let record = JsonRace {
        kind_of_record: "race",
        map: format!("{:#x}", race.race.map),
        kind: race.race.kind(),
        current: access(
            &race.race.current,
            &race.current_stack,
            &race.current_created_at,
        ),
        previous: access(
            &race.race.previous,
            &race.previous_stack,
            &race.previous_created_at,
        ),
        count: race.race.count,
    };
    serde_json::to_string(&record).expect("a race always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> SourceFrame {
        SourceFrame {
            function: function.into(),
            file: "/src/app/main.go".into(),
            line,
        }
    }

    fn race() -> RaceReport {
        let access = |goroutine, write, seq| Access {
            goroutine,
            write,
            site: 1,
            seq,
            created_at: None,
        };
        RaceReport {
            map: 0xc000_0100,
            current: access(8, true, 20),
            previous: access(7, false, 10),
            count: 3,
        }
    }

    #[test]
    fn text_report_has_the_race_detector_shape() {
        let race = race();
        let resolved = ResolvedRace {
            race: race.clone(),
            current_stack: vec![
                frame("runtime.mapassign_fast64", 1),
                frame("main.writer", 42),
            ],
            previous_stack: vec![frame("main.reader", 17)],
            current_created_at: vec![frame("main.main", 9)],
            previous_created_at: Vec::new(),
            graph: None,
        };
        let text = text(&resolved);
        assert!(
            text.starts_with("==================\nWARNING: DATA RACE\n"),
            "{text}"
        );
        assert!(text.contains("Write at 0xc0000100 (map) by goroutine 8:\n  main.writer()\n      /src/app/main.go:42\n"), "{text}");
        assert!(
            text.contains("Previous read at 0xc0000100 (map) by goroutine 7:\n  main.reader()"),
            "{text}"
        );
        assert!(
            !text.contains("mapassign"),
            "runtime frames are left out: {text}"
        );
        assert!(text.contains("seen 3 times"), "{text}");
        assert!(
            text.contains("Goroutine 8 created at:\n  main.main()\n      /src/app/main.go:9\n"),
            "{text}"
        );
        assert!(!text.contains("Goroutine 7 created at"), "{text}");
    }

    #[test]
    fn json_report_follows_the_contract() {
        let race = race();
        let resolved = ResolvedRace {
            race: race.clone(),
            current_stack: vec![frame("main.writer", 42)],
            previous_stack: vec![frame("main.reader", 17)],
            current_created_at: vec![frame("main.main", 9)],
            previous_created_at: Vec::new(),
            graph: None,
        };
        let json: serde_json::Value = serde_json::from_str(&json(&resolved)).unwrap();
        assert_eq!(json["type"], "race");
        assert_eq!(json["map"], "0xc0000100");
        assert_eq!(json["kind"], "write/read");
        assert_eq!(json["current"]["goroutine"], 8);
        assert_eq!(json["current"]["op"], "write");
        assert_eq!(json["current"]["stack"][0]["function"], "main.writer");
        assert_eq!(json["previous"]["stack"][0]["line"], 17);
        assert_eq!(json["count"], 3);
        assert_eq!(json["current"]["created_at"][0]["line"], 9);
        assert!(json["previous"].get("created_at").is_none());
    }
}
