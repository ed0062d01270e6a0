//! Returns observed in the callers (see `plan/returns.rs`), on every supported Go version: a
//! send in a branch that rejoins the code after it is probed where both paths go on, under the
//! guard that records it only when the call has just returned there. Every send is recorded as
//! completed, and the other path (which made a call of its own, so its return address is not
//! the send's) records nothing. A send returning into its function's epilogue (nothing there
//! the kernel emulates) has no return probe at all, and completes at the goroutine's next event.

mod common;

use common::*;
use tracer::{
    analyse::GoBinary,
    plan::{plan, Placement},
};

/// `notify`'s sends and quiet calls, and `report`'s sends, in the fixture
/// (tests/fixtures/joinedreturn).
const SENDS: usize = 100;
const QUIET: usize = 20;
const REPORTS: usize = 50;

fn sends_complete_where_paths_join(version: &str) {
    require_root();
    let fixture = built_fixture("joinedreturn", version, Variant::Default);
    let binary = GoBinary::open(&fixture, &fixture).unwrap();
    let guarded = plan(&binary)
        .sites
        .iter()
        .filter(|site| {
            site.function == "runtime.chansend1"
                && site.placement == Placement::AfterCallIfReturned
                && binary
                    .symbolize(site.address)
                    .last()
                    .is_some_and(|frame| frame.function == "main.notify")
        })
        .count();
    assert_eq!(guarded, 1, "go{version}: the send's return is not guarded");
    let planned = plan(&binary);
    let in_report = |address: u64| {
        binary
            .symbolize(address)
            .last()
            .is_some_and(|frame| frame.function == "main.report")
    };
    assert_eq!(
        planned
            .completed_at_next_event
            .iter()
            .filter(|&&address| in_report(address))
            .count(),
        1,
        "go{version}: report's send is not completed at the next event"
    );
    assert!(
        !planned
            .sites
            .iter()
            .any(|site| site.function == "runtime.chansend1" && in_report(site.address)),
        "go{version}: report's send still has a return probe"
    );

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let output = tracer()
        .args(["run", "--events"])
        .arg(&events)
        .arg(&fixture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "go{version}: {stderr}");
    let main_goroutine = |event: &serde_json::Value| event["goroutine"] == 1;
    let count = |op: &str| {
        json_lines(&events)
            .iter()
            .filter(|event| event["op"] == op && main_goroutine(event))
            .count()
    };
    assert_eq!(count("send"), SENDS + REPORTS, "go{version}");
    assert_eq!(
        count("send-done"),
        SENDS + REPORTS,
        "go{version}: sends completed, {QUIET} quiet calls besides"
    );
    // Each of report's sends completes before main's next event, the next send.
    let ops: Vec<String> = json_lines(&events)
        .iter()
        .filter(|event| main_goroutine(event))
        .filter_map(|event| event["op"].as_str().map(str::to_owned))
        .filter(|op| op == "send" || op == "send-done")
        .collect();
    assert!(
        ops.chunks(2).all(|pair| pair == ["send", "send-done"]),
        "go{version}: {ops:?}"
    );
}

mod sends_complete_where_paths_join {
    crate::test_each_go_version!(super::sends_complete_where_paths_join);
}
