//! `--format sarif`: the session's findings as one SARIF 2.1.0 log, the format code-scanning
//! UIs read. One result per distinct race, located at the later access, with the earlier one
//! as a related location and both goroutines' stacks as the thread flows of one code flow; the
//! target's fatal map errors are results of their own rule. A SARIF log is one document, so it
//! is written when the session ends (the text and JSON reports are written as races are found).

use serde_json::{json, Value};

use super::{FatalCrash, Finding};
use crate::{
    detect::pipeline::ResolvedRace,
    events::stacks::{file_name, user_frames, SourceFrame},
};

/// The rule of a race between two map accesses.
const RACE_RULE: &str = "go-map-data-race";
/// The rule of the Go runtime's own fatal error on a map.
const FATAL_RULE: &str = "go-fatal-map-error";

/// The results of a session, in the order they were found.
#[derive(Debug, Default)]
pub struct SarifLog {
    results: Vec<Value>,
}

impl SarifLog {
    pub fn race(&mut self, race: &ResolvedRace, finding: &Finding<'_>) {
        let report = &race.race;
        let (current, previous) = (&report.current, &report.previous);
        let text = format!(
            "{} race on map {:#x}: {} by goroutine {} at {}, unordered with the earlier {} by \
             goroutine {} at {}",
            report.kind(),
            report.map,
            current.op(),
            current.goroutine,
            place(&race.current_stack),
            previous.op(),
            previous.goroutine,
            place(&race.previous_stack),
        );
        let flow = |goroutine: u64, op: &str, stack: &[SourceFrame]| {
            json!({
                "message": { "text": format!("goroutine {goroutine}: the {op}") },
                "locations": stack.iter().filter_map(|frame| {
                    Some(json!({ "location": location(frame, &frame.function)? }))
                }).collect::<Vec<_>>(),
            })
        };
        let mut result = json!({
            "ruleId": RACE_RULE,
            "level": "error",
            "message": { "text": text },
            "locations": first_location(&race.current_stack, "the later access"),
            "relatedLocations": first_location(&race.previous_stack, "the earlier access")
                .into_iter()
                .map(|mut related| {
                    related["id"] = json!(1);
                    related
                })
                .collect::<Vec<_>>(),
            "codeFlows": [{
                "threadFlows": [
                    flow(current.goroutine, current.op(), &race.current_stack),
                    flow(previous.goroutine, previous.op(), &race.previous_stack),
                ],
            }],
            "properties": properties(finding),
        });
        result["properties"]["map"] = json!(format!("{:#x}", report.map));
        result["properties"]["kind"] = json!(report.kind());
        self.results.push(result);
    }

    pub fn crash(&mut self, crash: &FatalCrash, finding: &Finding<'_>) {
        self.results.push(json!({
            "ruleId": FATAL_RULE,
            "level": "error",
            "message": {
                "text": format!("fatal error: {} (goroutine {})", crash.message, crash.goroutine),
            },
            "locations": first_location(&crash.stack, "where the runtime noticed"),
            "properties": properties(finding),
        }));
    }

    /// The log as one JSON document.
    pub fn document(&self) -> String {
        let log = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {
                    "driver": {
                        "name": "tracer",
                        "version": env!("CARGO_PKG_VERSION"),
                        "rules": [
                            {
                                "id": RACE_RULE,
                                "name": "MapDataRace",
                                "shortDescription": {
                                    "text": "Two goroutines access a map, at least one writing, \
                                             with no happens-before order between them",
                                },
                                "defaultConfiguration": { "level": "error" },
                            },
                            {
                                "id": FATAL_RULE,
                                "name": "FatalMapError",
                                "shortDescription": {
                                    "text": "The Go runtime stopped the program on concurrent \
                                             map use",
                                },
                                "defaultConfiguration": { "level": "error" },
                            },
                        ],
                    },
                },
                "results": self.results,
            }],
        });
        serde_json::to_string_pretty(&log).expect("a SARIF log always serialises") + "\n"
    }
}

/// Where a result is: its stack's first frame outside the runtime, as a one-element array
/// (empty when no frame has a file).
fn first_location(stack: &[SourceFrame], what: &str) -> Vec<Value> {
    user_frames(stack)
        .find_map(|frame| location(frame, &format!("{what}, in {}", frame.function)))
        .into_iter()
        .collect()
}

/// A SARIF location for `frame` (`None` without a file).
fn location(frame: &SourceFrame, message: &str) -> Option<Value> {
    if frame.file.is_empty() {
        return None;
    }
    let mut physical = json!({ "artifactLocation": { "uri": uri(&frame.file) } });
    if frame.line > 0 {
        physical["region"] = json!({ "startLine": frame.line });
    }
    Some(json!({
        "physicalLocation": physical,
        "message": { "text": message },
    }))
}

/// A file path as a URI: absolute paths as `file://` URIs, others as relative references.
fn uri(path: &str) -> String {
    let escaped: String = path
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '%' => "%25".to_owned(),
            '#' => "%23".to_owned(),
            '?' => "%3F".to_owned(),
            c => c.to_string(),
        })
        .collect();
    if escaped.starts_with('/') {
        format!("file://{escaped}")
    } else {
        escaped
    }
}

/// `function (file:line)` of a stack's first frame outside the runtime.
fn place(stack: &[SourceFrame]) -> String {
    user_frames(stack).next().map_or_else(
        || "an unknown place".to_owned(),
        |frame| {
            let file = file_name(&frame.file);
            format!("{} ({file}:{})", frame.function, frame.line)
        },
    )
}

fn properties(finding: &Finding<'_>) -> Value {
    json!({
        "pid": finding.pid,
        "executable": finding.executable,
        "id": finding.number,
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::report::tests::resolved;

    /// The OASIS schema of SARIF 2.1.0 (errata 01), kept beside the tests.
    const SCHEMA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sarif/sarif-schema-2.1.0.json"
    );

    /// Validates `document` against the schema with Python's `jsonschema` (installed by
    /// `cargo xtask setup`); returns the validator's complaint, if any.
    fn schema_errors(document: &str) -> Option<String> {
        let check = "import json, sys, jsonschema\n\
                     schema = json.load(open(sys.argv[1]))\n\
                     jsonschema.Draft4Validator(schema).validate(json.load(sys.stdin))";
        let mut child = Command::new("python3")
            .args(["-c", check, SCHEMA])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), document.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
    }

    fn finding() -> Finding<'static> {
        Finding {
            number: 1,
            pid: 42,
            executable: "svc",
            at: None,
            after: None,
        }
    }

    #[test]
    fn a_race_and_a_crash_make_a_valid_sarif_log() {
        let mut log = SarifLog::default();
        log.race(&resolved(5), &finding());
        log.crash(
            &FatalCrash {
                message: "concurrent map writes".into(),
                goroutine: 7,
                stack: vec![SourceFrame {
                    function: "main.worker".into(),
                    file: "/src/app dir/main.go".into(),
                    line: 12,
                }],
                map: None,
            },
            &finding(),
        );
        let document = log.document();
        assert_eq!(schema_errors(&document), None, "{document}");
        let parsed: Value = serde_json::from_str(&document).unwrap();
        let results = &parsed["runs"][0]["results"];
        assert_eq!(results.as_array().unwrap().len(), 2);
        let race = &results[0];
        assert_eq!(race["ruleId"], RACE_RULE);
        assert_eq!(
            race["codeFlows"][0]["threadFlows"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(
            race["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("file:///")
        );
        assert_eq!(results[1]["ruleId"], FATAL_RULE);
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "file:///src/app%20dir/main.go"
        );
    }

    #[test]
    fn the_validator_rejects_what_is_not_sarif() {
        let wrong = r#"{"version":"2.1.0","runs":[{"results":[]}]}"#;
        let complaint = schema_errors(wrong).expect("a run without a tool is not SARIF");
        assert!(complaint.contains("tool"), "{complaint}");
    }
}
