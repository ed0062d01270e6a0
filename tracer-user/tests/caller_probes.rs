//! Returns observed in the callers (see `plan/returns.rs`), on every supported Go version: a
//! receive in a branch that rejoins the code after it (`v, ok := <-ch`, whose result the probe
//! reads) is probed where both paths go on, under the guard that records it only when the call
//! has just returned there. Every receive is recorded as completed, and the other path (which
//! made a call of its own, so its return address is not the receive's) records nothing. Sends
//! returning where paths join, or into their function's epilogue (nothing there the kernel
//! emulates), have no return probe at all, and complete at the goroutine's next event.

mod common;

use common::*;
use tracer::{
    analyse::GoBinary,
    plan::{plan, Placement},
};

/// `notify`'s sends and quiet calls, `poll`'s receives and quiet calls, and `report`'s sends,
/// in the fixture (tests/fixtures/joinedreturn).
const SENDS: usize = 100;
const QUIET: usize = 20;
const RECEIVES: usize = 30;
const QUIET_POLLS: usize = 10;
const REPORTS: usize = 50;

fn returns_observed_where_paths_join(version: &str) {
    require_root();
    let fixture = built_fixture("joinedreturn", version, Variant::Default);
    let binary = GoBinary::open(&fixture, &fixture).unwrap();
    let planned = plan(&binary);
    let in_function = |address: u64, name: &str| {
        binary
            .symbolize(address)
            .last()
            .is_some_and(|frame| frame.function == name)
    };
    let guarded = planned
        .sites
        .iter()
        .filter(|site| {
            site.function == "runtime.chanrecv2"
                && site.placement == Placement::AfterCallIfReturned
                && in_function(site.address, "main.poll")
        })
        .count();
    assert_eq!(
        guarded, 1,
        "go{version}: the receive's return is not guarded"
    );
    for sender in ["main.notify", "main.report"] {
        assert_eq!(
            planned
                .completed_at_next_event
                .iter()
                .filter(|&&address| in_function(address, sender))
                .count(),
            1,
            "go{version}: {sender}'s send is not completed at the next event"
        );
        assert!(
            !planned.sites.iter().any(|site| {
                site.function == "runtime.chansend1" && in_function(site.address, sender)
            }),
            "go{version}: {sender}'s send still has a return probe"
        );
    }

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
    // The runtime's own receives at start-up are `chanrecv1`s.
    let polls = |op: &str| {
        json_lines(&events)
            .iter()
            .filter(|event| event["op"] == op && event["function"] == "runtime.chanrecv2")
            .filter(|event| main_goroutine(event))
            .map(|event| event["arg"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(polls("receive").len(), RECEIVES, "go{version}");
    assert_eq!(
        polls("receive-done"),
        vec![serde_json::json!(1); RECEIVES],
        "go{version}: receives completed with a value, {QUIET_POLLS} quiet calls besides"
    );
    // Each made-up completion comes before main's next event, the next send.
    let ops: Vec<String> = json_lines(&events)
        .iter()
        .filter(|event| main_goroutine(event))
        .filter_map(|event| event["op"].as_str().map(str::to_owned))
        .filter(|op| op.starts_with("send"))
        .collect();
    assert!(
        ops.chunks(2).all(|pair| pair == ["send", "send-done"]),
        "go{version}: {ops:?}"
    );
}

mod returns_observed_where_paths_join {
    crate::test_each_go_version!(super::returns_observed_where_paths_join);
}
