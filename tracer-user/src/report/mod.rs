//! Stage 6, report. In: resolved races, the session's counts and costs. Out: what people read:
//! race reports as found ([`race_log`]), DOT graphs ([`graph`]) and the closing summary
//! ([`summary`]).
//!
//! Race reports for people (the `WARNING: DATA RACE` shape Go developers know from `-race`) and
//! for programs (one JSON object per race, as docs/cli.md specifies), each written the moment
//! the race is first found; and the summary that closes a session: how often each race was
//! seen, the target's fatal map errors, and a verdict on what the session could have missed.

pub mod graph;
pub mod race_log;
pub mod sarif;
pub mod summary;

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    detect::{pipeline::ResolvedRace, Access},
    events::stacks::{access_function, user_frames, SourceFrame},
    report::summary::{counted, TracingCost},
};

fn capitalised(op: &str) -> String {
    let mut chars = op.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// How reports are written: the `WARNING: DATA RACE` text of `go build -race`, JSON lines, or
/// one SARIF log for code-scanning tools (written when the session ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Where, when and in which process a race was found: the heading of its report.
#[derive(Clone, Copy, Debug)]
pub struct Finding<'a> {
    /// 1-based, in order of discovery within the process.
    pub number: usize,
    pub pid: u32,
    /// The executable's name (the `executable` label of the metrics).
    pub executable: &'a str,
    /// When the report was written (live sessions; a replay has none).
    pub at: Option<SystemTime>,
    /// How long after tracing started.
    pub after: Option<Duration>,
}

impl Finding<'_> {
    /// `race 1 in pid 42 (demo), 2026-12-05T06:40:12.345Z, 2.4 s into tracing`.
    fn describe(&self, what: &str) -> String {
        let mut text = format!(
            "{what} {} in pid {} ({})",
            self.number, self.pid, self.executable
        );
        if let Some(at) = self.at {
            let _ = write!(text, ", {}", rfc3339(at));
        }
        if let Some(after) = self.after {
            let _ = write!(text, ", {:.1} s into tracing", after.as_secs_f64());
        }
        text
    }
}

/// `2026-12-05T06:40:12.345Z`: UTC, milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    let shifted = days as i64 + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

fn write_stack(text: &mut String, frames: &[SourceFrame]) {
    for frame in user_frames(frames) {
        let _ = writeln!(text, "  {}()", frame.function);
        let _ = writeln!(text, "      {}:{}", frame.file, frame.line);
    }
}

/// The text report of one race, as first found.
pub fn text(race: &ResolvedRace, finding: &Finding<'_>) -> String {
    let mut text = String::from("==================\nWARNING: DATA RACE\n");
    let _ = writeln!(text, "({})", finding.describe("race"));
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
        if created_at.is_empty() {
            let _ = write!(
                text,
                "\nGoroutine {} {UNSEEN_CREATION}.\n",
                access.goroutine
            );
        } else {
            let _ = write!(text, "\nGoroutine {} created at:\n", access.goroutine);
            write_stack(&mut text, created_at);
        }
    }
    text.push_str("==================\n");
    text
}

/// What a report says of a goroutine whose `go` statement tracer did not see: it was started
/// before tracer attached, or while the probes were paused between sampling windows (or it is
/// the main goroutine, which no `go` statement starts).
const UNSEEN_CREATION: &str = "was created while tracer was not watching (before it attached, or \
     while the probes were paused between sampling windows)";

#[derive(Serialize)]
struct JsonAccess<'a> {
    goroutine: u64,
    op: &'static str,
    stack: &'a [SourceFrame],
    /// The stack of the `go` statement that started the goroutine, if seen.
    #[serde(skip_serializing_if = "<[SourceFrame]>::is_empty")]
    created_at: &'a [SourceFrame],
    /// The `go` statement was not seen (see [`UNSEEN_CREATION`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    creation_unseen: bool,
}

/// Where and when, in JSON records.
#[derive(Serialize)]
struct JsonFinding<'a> {
    id: usize,
    pid: u32,
    executable: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    found_at: Option<String>,
    /// Seconds after tracing started.
    #[serde(skip_serializing_if = "Option::is_none")]
    found_after: Option<f64>,
}

impl<'a> From<&Finding<'a>> for JsonFinding<'a> {
    fn from(finding: &Finding<'a>) -> Self {
        Self {
            id: finding.number,
            pid: finding.pid,
            executable: finding.executable,
            found_at: finding.at.map(rfc3339),
            found_after: finding
                .after
                .map(|after| (after.as_secs_f64() * 1000.0).round() / 1000.0),
        }
    }
}

#[derive(Serialize)]
struct JsonRace<'a> {
    #[serde(rename = "type")]
    kind_of_record: &'static str,
    #[serde(flatten)]
    finding: JsonFinding<'a>,
    map: String,
    kind: &'static str,
    current: JsonAccess<'a>,
    previous: JsonAccess<'a>,
}

/// The JSON line of one race, as first found.
pub fn json(race: &ResolvedRace, finding: &Finding<'_>) -> String {
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
            creation_unseen: created_at.is_empty(),
        }
    }
    let record = JsonRace {
        kind_of_record: "race",
        finding: finding.into(),
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
    };
    serde_json::to_string(&record).expect("a race always serialises")
}

#[derive(Serialize)]
struct JsonFatal<'a> {
    #[serde(rename = "type")]
    kind_of_record: &'static str,
    #[serde(flatten)]
    finding: JsonFinding<'a>,
    message: &'a str,
    goroutine: u64,
    /// The map the goroutine last wrote, when that write was traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    map: Option<String>,
    stack: &'a [SourceFrame],
}

/// The target died of the runtime's own map check (`fatal error: concurrent map writes`): what
/// tracer knows of it, whatever the budget (the fatal probes stay in place between windows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatalCrash {
    pub message: String,
    /// The goroutine that noticed.
    pub goroutine: u64,
    /// Its stack, innermost first.
    pub stack: Vec<SourceFrame>,
    /// The map it last wrote, when that write was traced.
    pub map: Option<u64>,
}

impl FatalCrash {
    /// Whether a runtime fatal error is one of its map checks' (`concurrent map writes`,
    /// `concurrent map read and map write`, `concurrent map iteration and map write`…).
    pub fn is_map_error(message: &str) -> bool {
        message.starts_with("concurrent map")
    }

    /// The text report, in the shape of a race report.
    pub fn text(&self, finding: &Finding<'_>) -> String {
        let mut text = format!("==================\nFATAL ERROR: {}\n", self.message);
        let _ = writeln!(text, "({})", finding.describe("crash"));
        let _ = write!(text, "Noticed by goroutine {}", self.goroutine);
        match self.map {
            Some(map) => {
                let _ = writeln!(text, " writing {map:#x} (map):");
            }
            None => text.push_str(":\n"),
        }
        write_stack(&mut text, &self.stack);
        text.push_str(
            "\nThe other access is reported as a race above if both were traced; if not, it \
             happened while the probes were paused.\n==================\n",
        );
        text
    }

    /// The JSON line.
    pub fn json(&self, finding: &Finding<'_>) -> String {
        let record = JsonFatal {
            kind_of_record: "fatal",
            finding: finding.into(),
            message: &self.message,
            goroutine: self.goroutine,
            map: self.map.map(|map| format!("{map:#x}")),
            stack: &self.stack,
        };
        serde_json::to_string(&record).expect("a fatal record always serialises")
    }
}

/// How a session ended, for the summary that closes its reports.
pub struct Outcome<'a> {
    pub pid: u32,
    pub executable: &'a str,
    /// Why tracing stopped, in words (`duration reached`).
    pub stopped: &'a str,
    /// How long tracing lasted (a replay does not know).
    pub elapsed: Option<Duration>,
    /// How long the probes were in place, in how many windows.
    pub cost: Option<TracingCost>,
    pub races: &'a [ResolvedRace],
    /// The target's fatal errors (`concurrent map writes`…) and their counts.
    pub fatal_errors: &'a [(String, u64)],
}

impl Outcome<'_> {
    /// What a session without a race report means: how much of the time was traced, and so
    /// what kind of race may have gone unseen.
    pub fn verdict(&self) -> String {
        if !self.races.is_empty() {
            return format!("{} on maps found", counted(self.races.len(), "data race"));
        }
        let (Some(elapsed), Some(cost)) = (self.elapsed, self.cost) else {
            return "no race found in the recording".to_owned();
        };
        let traced = cost.traced.min(elapsed);
        let share = traced.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        if share >= 0.999 && cost.windows <= 1 {
            return format!(
                "no race found in {:.1} s traced all the time: no two map accesses that ran were \
                 unordered (code that did not run was not checked)",
                elapsed.as_secs_f64()
            );
        }
        format!(
            "no race found, but the probes were in place only {:.1} s of {:.1} s ({:.1}%, {}): \
             a race whose two accesses never fell in one window was not seen; trace longer, \
             raise --overhead-budget, or use --overhead-budget off on a test or staging copy",
            traced.as_secs_f64(),
            elapsed.as_secs_f64(),
            100.0 * share,
            counted(cost.windows, "window")
        )
    }

    /// The summary lines: each race's count, then the verdict.
    pub fn text(&self) -> String {
        let mut text = String::new();
        let target = format!("pid {} ({})", self.pid, self.executable);
        for (number, race) in (1..).zip(self.races) {
            let _ = writeln!(
                text,
                "tracer: {target}: race {number} seen {} ({} on map {:#x}: {} and {})",
                counted(race.race.count, "time"),
                race.race.kind(),
                race.race.map,
                access_function(&race.current_stack),
                access_function(&race.previous_stack),
            );
        }
        let _ = writeln!(
            text,
            "tracer: {target}: {}; stopped ({})",
            self.verdict(),
            self.stopped
        );
        text
    }

    /// The one JSON summary object.
    pub fn json(&self) -> String {
        let races: Vec<serde_json::Value> = (1..)
            .zip(self.races)
            .map(|(number, race): (usize, &ResolvedRace)| {
                serde_json::json!({
                    "id": number,
                    "count": race.race.count,
                    "kind": race.race.kind(),
                    "map": format!("{:#x}", race.race.map),
                    "functions": [
                        access_function(&race.current_stack),
                        access_function(&race.previous_stack),
                    ],
                })
            })
            .collect();
        let fatal_errors: Vec<serde_json::Value> = self
            .fatal_errors
            .iter()
            .map(|(message, count)| serde_json::json!({"message": message, "count": count}))
            .collect();
        let mut record = serde_json::json!({
            "type": "summary",
            "pid": self.pid,
            "executable": self.executable,
            "stopped": self.stopped,
            "races": races,
            "fatal_errors": fatal_errors,
            "verdict": self.verdict(),
        });
        if let Some(elapsed) = self.elapsed {
            record["duration"] = serde_json::json!(elapsed.as_secs_f64());
        }
        if let Some(cost) = self.cost {
            record["traced"] = serde_json::json!(cost.traced.as_secs_f64());
            record["windows"] = serde_json::json!(cost.windows);
        }
        record.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::RaceReport;

    fn frame(function: &str, line: u32) -> SourceFrame {
        SourceFrame {
            function: function.into(),
            file: "/src/app/main.go".into(),
            line,
        }
    }

    /// A write in `main.writer` racing with an earlier read in `main.reader`, seen `count`
    /// times.
    pub(crate) fn resolved(count: u64) -> ResolvedRace {
        let access = |goroutine, write, seq| Access {
            goroutine,
            write,
            site: 1,
            seq,
            created_at: None,
        };
        ResolvedRace {
            race: RaceReport {
                map: 0xc000_0100,
                current: access(8, true, 20),
                previous: access(7, false, 10),
                count,
            },
            current_stack: vec![
                frame("runtime.mapassign_fast64", 1),
                frame("main.writer", 42),
            ],
            previous_stack: vec![frame("main.reader", 17)],
            current_created_at: vec![frame("main.main", 9)],
            previous_created_at: Vec::new(),
            graph: None,
        }
    }

    fn finding() -> Finding<'static> {
        Finding {
            number: 2,
            pid: 42,
            executable: "svc",
            at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_916_812_345)),
            after: Some(Duration::from_millis(2_400)),
        }
    }

    #[test]
    fn text_report_has_the_race_detector_shape() {
        let text = text(&resolved(3), &finding());
        assert!(
            text.starts_with(
                "==================\nWARNING: DATA RACE\n(race 2 in pid 42 (svc), \
                 2025-12-05T06:40:12.345Z, 2.4 s into tracing)\n"
            ),
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
        assert!(
            !text.contains("seen"),
            "counts come with the summary: {text}"
        );
        assert!(
            text.contains("Goroutine 8 created at:\n  main.main()\n      /src/app/main.go:9\n"),
            "{text}"
        );
        assert!(!text.contains("Goroutine 7 created at"), "{text}");
        assert!(
            text.contains("Goroutine 7 was created while tracer was not watching"),
            "{text}"
        );
    }

    #[test]
    fn json_report_follows_the_contract() {
        let json: serde_json::Value =
            serde_json::from_str(&json(&resolved(3), &finding())).unwrap();
        assert_eq!(json["type"], "race");
        assert_eq!(json["id"], 2);
        assert_eq!(json["pid"], 42);
        assert_eq!(json["executable"], "svc");
        assert_eq!(json["found_at"], "2025-12-05T06:40:12.345Z");
        assert_eq!(json["found_after"], 2.4);
        assert_eq!(json["map"], "0xc0000100");
        assert_eq!(json["kind"], "write/read");
        assert_eq!(json["current"]["goroutine"], 8);
        assert_eq!(json["current"]["op"], "write");
        assert_eq!(
            json["current"]["stack"][0]["function"],
            "runtime.mapassign_fast64"
        );
        assert_eq!(json["previous"]["stack"][0]["line"], 17);
        assert!(json.get("count").is_none());
        assert_eq!(json["current"]["created_at"][0]["line"], 9);
        assert!(json["previous"].get("created_at").is_none());
        assert_eq!(json["previous"]["creation_unseen"], true);
        assert!(json["current"].get("creation_unseen").is_none());
        let replayed = Finding {
            at: None,
            after: None,
            ..finding()
        };
        let record: serde_json::Value =
            serde_json::from_str(&super::json(&resolved(3), &replayed)).unwrap();
        assert!(record.get("found_at").is_none() && record.get("found_after").is_none());
    }

    #[test]
    fn a_fatal_map_error_is_reported_with_its_goroutine_stack_and_map() {
        let crash = FatalCrash {
            message: "concurrent map writes".to_owned(),
            goroutine: 7,
            stack: vec![frame("runtime.fatal", 1), frame("main.writer", 14)],
            map: Some(0xc000_0100),
        };
        let text = crash.text(&finding());
        assert!(
            text.starts_with(
                "==================\nFATAL ERROR: concurrent map writes\n(crash 2 in pid 42 (svc)"
            ),
            "{text}"
        );
        assert!(
            text.contains("Noticed by goroutine 7 writing 0xc0000100 (map):\n  main.writer()"),
            "{text}"
        );
        let record: serde_json::Value = serde_json::from_str(&crash.json(&finding())).unwrap();
        assert_eq!(record["type"], "fatal");
        assert_eq!(record["id"], 2);
        assert_eq!(record["pid"], 42);
        assert_eq!(record["message"], "concurrent map writes");
        assert_eq!(record["goroutine"], 7);
        assert_eq!(record["map"], "0xc0000100");
        assert_eq!(record["stack"][1]["line"], 14);
        let untraced = FatalCrash { map: None, ..crash };
        let record: serde_json::Value = serde_json::from_str(&untraced.json(&finding())).unwrap();
        assert!(record.get("map").is_none(), "{record}");
        assert!(FatalCrash::is_map_error(
            "concurrent map read and map write"
        ));
        assert!(!FatalCrash::is_map_error("out of memory"));
    }

    #[test]
    fn wall_clock_times_are_rfc3339_utc() {
        let at = |seconds: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year), 2100-03-01 (no leap day in 2100).
        assert_eq!(at(951_782_400 + 3_661), "2000-02-29T01:01:01.000Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59.000Z");
    }

    fn outcome<'a>(races: &'a [ResolvedRace], cost: Option<TracingCost>) -> Outcome<'a> {
        Outcome {
            pid: 42,
            executable: "svc",
            stopped: "duration reached",
            elapsed: Some(Duration::from_secs(10)),
            cost,
            races,
            fatal_errors: &[],
        }
    }

    #[test]
    fn the_summary_counts_each_race_and_gives_a_verdict() {
        let races = [resolved(12)];
        let text = outcome(&races, None).text();
        assert!(
            text.contains(
                "tracer: pid 42 (svc): race 1 seen 12 times (write/read on map 0xc0000100: \
                 main.writer and main.reader)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tracer: pid 42 (svc): 1 data race on maps found; stopped (duration reached)"
            ),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&outcome(&races, None).json()).unwrap();
        assert_eq!(json["type"], "summary");
        assert_eq!(json["races"][0]["count"], 12);
        assert_eq!(json["races"][0]["functions"][1], "main.reader");
        assert_eq!(json["duration"], 10.0);
    }

    #[test]
    fn a_session_without_races_says_what_it_may_have_missed() {
        let sampled = TracingCost {
            windows: 3,
            traced: Duration::from_millis(600),
            ..TracingCost::default()
        };
        let verdict = outcome(&[], Some(sampled)).verdict();
        assert!(
            verdict.starts_with(
                "no race found, but the probes were in place only 0.6 s of 10.0 s (6.0%, 3 windows)"
            ),
            "{verdict}"
        );
        assert!(verdict.contains("--overhead-budget off"), "{verdict}");
        let full = TracingCost {
            windows: 1,
            traced: Duration::from_secs(10),
            ..TracingCost::default()
        };
        let verdict = outcome(&[], Some(full)).verdict();
        assert!(
            verdict.starts_with("no race found in 10.0 s traced all the time"),
            "{verdict}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&outcome(&[], Some(sampled)).json()).unwrap();
        assert_eq!(json["windows"], 3);
        assert_eq!(json["traced"], 0.6);
    }
}
