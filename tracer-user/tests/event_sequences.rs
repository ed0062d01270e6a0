//! What the kernel programs record for each synchronisation primitive, on every supported Go
//! version: the syncseq fixture performs known sequences (mutex hand-off, a contended mutex that
//! takes the slow path, WaitGroup, Once, RWMutex, channels, goroutine creation and exit,
//! channel slots and hand-offs, select, sync.Pool, time.AfterFunc, typed atomics) and prints the goroutines and objects involved; each goroutine's events on those
//! objects must be exactly the sequence the fixture performed, in order. (The fixture's new
//! maps and channels are recorded by probes that read them from the frame slot their caller
//! stored them in: tests/inspect.rs checks that they are.)

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use serde_json::Value;

/// `NAME key=value …` lines of the fixture, by scenario name.
fn scenarios(stdout: &str) -> HashMap<String, HashMap<String, String>> {
    stdout
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap().to_owned();
            let fields = words
                .map(|word| {
                    let (key, value) = word.split_once('=').unwrap();
                    (key.to_owned(), value.to_owned())
                })
                .collect();
            (name, fields)
        })
        .collect()
}

/// An event reduced to what the sequences compare: its op, the name (in the scenario line) of
/// the object it acts on, and a detail (acquired, argument, child, case) where it matters.
type Step = (String, String, String);

/// Each goroutine's steps on the objects of one scenario. `sync-exit` and `receive-done` carry
/// no object: they are given the object of the call they return from (per goroutine, calls
/// nest like a stack), which is what the detector does too.
fn steps(events: &[Value], objects: &HashMap<String, String>) -> BTreeMap<u64, Vec<Step>> {
    let name_of = |address: &str| {
        objects
            .iter()
            .find(|(_, value)| value.as_str() == address)
            .map(|(key, _)| key.clone())
    };
    let mut open_calls: HashMap<u64, Vec<(String, String)>> = HashMap::new();
    let mut steps: BTreeMap<u64, Vec<Step>> = BTreeMap::new();
    for event in events {
        let goroutine = event["goroutine"].as_u64().unwrap();
        let op = event["op"].as_str().unwrap();
        let function = event["function"].as_str().unwrap_or_default().to_owned();
        let address = event["map"]
            .as_str()
            .or_else(|| event["object"].as_str())
            .unwrap_or_default()
            .to_owned();
        let calls = open_calls.entry(goroutine).or_default();
        let object = match op {
            "sync-enter" | "receive" | "send" | "select-nb" => {
                calls.push((function.clone(), address.clone()));
                address
            }
            "sync-exit" | "receive-done" | "send-done" | "select-nb-done" => {
                match calls.iter().rposition(|(called, _)| *called == function) {
                    Some(index) => calls.drain(index..).next().unwrap().1,
                    None => String::new(),
                }
            }
            _ => address,
        };
        let detail = match op {
            "lock" | "trylock" => event["acquired"].to_string(),
            "select" => event["case"].to_string(),
            "once" | "receive-done" | "select-nb-done" | "select-case" | "hand-off" => {
                event["arg"].as_u64().unwrap_or(0).to_string()
            }
            "sync-enter" | "sync-exit" => short(&function),
            _ => String::new(),
        };
        // Creation and exit are checked on their own (an exit may come after the scenario).
        let object = match op {
            "exit" | "go" => None,
            _ => name_of(&object),
        };
        if let Some(object) = object {
            steps
                .entry(goroutine)
                .or_default()
                .push((op.to_owned(), object, detail));
        }
    }
    steps
}

/// `internal/sync.(*Mutex).lockSlow` → `Mutex.lockSlow`: the same name in every version.
fn short(function: &str) -> String {
    function
        .rsplit('/')
        .next()
        .unwrap()
        .trim_start_matches("sync.")
        .replace("(*", "")
        .replace(')', "")
}

fn step(op: &str, object: &str, detail: &str) -> Step {
    (op.to_owned(), object.to_owned(), detail.to_owned())
}

fn check(version: &str) {
    require_root();
    let fixture = built_fixture("syncseq", version, Variant::Default);
    let dir = tempfile::tempdir().unwrap();
    let events_path = dir.path().join("events.jsonl");
    let output = tracer()
        .arg("run")
        .arg("--events")
        .arg(&events_path)
        .arg(&fixture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "go{version}: {stderr}");
    assert_eq!(dropped_in_summary(&stderr), 0, "go{version}: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let scenarios = scenarios(&stdout);
    let events: Vec<Value> = json_lines(&events_path)
        .into_iter()
        .filter(|event| event.get("op").is_some())
        .collect();
    let goroutine =
        |scenario: &str, key: &str| -> u64 { scenarios[scenario][key].parse().unwrap() };
    let seen = |scenario: &str, key: &str| -> Vec<Step> {
        let objects: HashMap<String, String> = scenarios[scenario]
            .iter()
            .filter(|(_, value)| value.starts_with("0x") || value.parse::<u64>().is_ok())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        steps(&events, &objects)
            .remove(&goroutine(scenario, key))
            .unwrap_or_default()
    };
    let expect = |scenario: &str, key: &str, expected: Vec<Step>| {
        assert_eq!(
            seen(scenario, key),
            expected,
            "go{version} {scenario}: goroutine {key}"
        );
    };

    let uncontended_write = vec![
        step("lock", "mu", "true"),
        step("assign", "map", ""),
        step("unlock", "mu", ""),
    ];
    let contended_write = vec![
        step("lock", "mu", "false"),
        step("sync-enter", "mu", "Mutex.lockSlow"),
        step("sync-exit", "mu", "Mutex.lockSlow"),
        step("assign", "map", ""),
        step("unlock", "mu", ""),
    ];
    expect("mutex", "a", uncontended_write.clone());
    expect(
        "mutex",
        "b",
        vec![
            step("lock", "mu", "true"),
            step("read", "map", ""),
            step("unlock", "mu", ""),
        ],
    );
    expect(
        "contended",
        "main",
        vec![
            step("make-map", "map", ""),
            step("lock", "mu", "true"),
            step("assign", "map", ""),
            // unlockSlow follows (a waiter is woken) but means nothing of its own: the
            // inlined Unlock released, and unlockSlow is not probed.
            step("unlock", "mu", ""),
        ],
    );
    expect("contended", "w", contended_write.clone());
    // Through a sync.Locker, the same steps as inlined: the fast path's outcome, then the slow
    // path, and no probe of Lock's or Unlock's own (their bodies' fast paths stand for them).
    expect("locker", "a", uncontended_write);
    expect("locker", "w", contended_write);
    // Add's entry is the release (a negative delta); its returns mean nothing and are not
    // probed.
    for worker in ["w1", "w2"] {
        expect(
            "waitgroup",
            worker,
            vec![
                step("assign", "map", ""),
                step("done", "wg", ""),
                step("sync-enter", "wg", "WaitGroup.Add"),
            ],
        );
    }
    expect(
        "waitgroup",
        "main",
        vec![
            step("make-map", "map", ""),
            step("sync-enter", "wg", "WaitGroup.Add"),
            step("sync-enter", "wg", "WaitGroup.Wait"),
            step("sync-exit", "wg", "WaitGroup.Wait"),
            step("read", "map", ""),
        ],
    );
    expect(
        "once",
        "main",
        vec![
            step("make-map", "map", ""),
            step("once", "once", "0"),
            step("sync-enter", "once", "Once.doSlow"),
            step("assign", "map", ""),
            step("once-done", "once", ""),
            step("sync-exit", "once", "Once.doSlow"),
            step("once", "once", "1"),
        ],
    );
    expect(
        "rwmutex",
        "r",
        vec![
            step("rlock", "rw", ""),
            step("read", "map", ""),
            step("runlock", "rw", ""),
        ],
    );
    // The RUnlock right after the lookup is probed on the map call, one step early: the
    // stream still has it after the read.
    expect(
        "cached",
        "r",
        vec![
            step("rlock", "rw", ""),
            step("read", "map", ""),
            step("runlock", "rw", ""),
        ],
    );
    expect(
        "rwmutex",
        "main",
        vec![
            step("make-map", "map", ""),
            step("assign", "map", ""),
            // RWMutex.Lock takes its inner writer Mutex (at offset 0) on the inlined fast path,
            // then finds no reader inside: its own entry and RET are not probed.
            step("lock", "rw", "true"),
            step("readers-checked", "rw", ""),
            step("assign", "map", ""),
            step("sync-enter", "rw", "RWMutex.Unlock"),
            step("unlock", "rw", ""),
        ],
    );
    expect(
        "channel",
        "sender",
        vec![
            step("send", "unbuffered", ""),
            step("send-done", "unbuffered", ""),
            step("send", "buffered", ""),
            step("send-done", "buffered", ""),
            step("close", "unbuffered", ""),
        ],
    );
    expect(
        "channel",
        "main",
        vec![
            step("make-chan", "unbuffered", ""),
            step("make-chan", "buffered", ""),
            step("receive", "unbuffered", ""),
            step("receive-done", "unbuffered", "0"),
            step("receive", "buffered", ""),
            step("receive-done", "buffered", "0"),
            step("receive", "unbuffered", ""),
            step("receive-done", "unbuffered", "0"),
        ],
    );
    // Values through the slots, under the channel's lock: each slot a value enters or leaves,
    // and each hand-off to a parked goroutine with that goroutine's id.
    let sender = scenarios["slots"]["sender"].as_str();
    let receiver = scenarios["slots"]["receiver"].as_str();
    expect(
        "slots",
        "main",
        vec![
            step("make-chan", "buffered", ""),
            step("send", "buffered", ""),
            step("chan-slot", "slot0", ""),
            step("send-done", "buffered", ""),
            step("send", "buffered", ""),
            step("chan-slot", "slot1", ""),
            step("send-done", "buffered", ""),
            step("receive", "buffered", ""),
            step("hand-off", "slot0", sender),
            step("receive-done", "buffered", "0"),
            step("receive", "buffered", ""),
            step("chan-slot", "slot1", ""),
            step("receive-done", "buffered", "0"),
            step("receive", "buffered", ""),
            step("chan-slot", "slot0", ""),
            step("receive-done", "buffered", "0"),
            step("make-chan", "unbuffered", ""),
            step("send", "unbuffered", ""),
            step("hand-off", "handoff", receiver),
            step("send-done", "unbuffered", ""),
        ],
    );
    expect(
        "slots",
        "sender",
        vec![
            step("send", "buffered", ""),
            step("send-done", "buffered", ""),
        ],
    );
    expect(
        "slots",
        "receiver",
        vec![
            step("receive", "unbuffered", ""),
            step("receive-done", "unbuffered", "0"),
        ],
    );
    let spawn = &scenarios["spawn"];
    let child: u64 = spawn["child"].parse().unwrap();
    let creations: Vec<&Value> = events
        .iter()
        .filter(|event| event["op"] == "go" && event["child"] == child)
        .collect();
    assert_eq!(creations.len(), 1, "go{version}: creation of {child}");
    assert_eq!(
        creations[0]["goroutine"].to_string(),
        spawn["main"],
        "go{version}: parent"
    );
    let exits = events
        .iter()
        .filter(|e| e["op"] == "exit" && e["goroutine"] == child)
        .count();
    assert_eq!(exits, 1, "go{version}: exit of {child}");
    expect(
        "select",
        "main",
        vec![
            step("make-chan", "a", ""),
            step("make-chan", "b", ""),
            step("send", "b", ""),
            step("chan-slot", "bslot", ""),
            step("send-done", "b", ""),
            // selectgo's cases, receives laid out from the end: b is case 0, a case 1.
            step("select-case", "b", "0"),
            step("select-case", "a", "1"),
            // The select takes b's value out of its slot.
            step("chan-slot", "bslot", ""),
            step("select-nb", "a", ""),
            step("select-nb-done", "a", "0"),
        ],
    );
    let select_goroutine = goroutine("select", "main");
    let chosen: Vec<&Value> = events
        .iter()
        .filter(|e| e["op"] == "select" && e["goroutine"] == select_goroutine)
        .collect();
    assert_eq!(chosen.len(), 1, "go{version}: selectgo returns");
    // The compiler lays out scases with sends first and receives from the end backwards, so the
    // second receive case (from b) is index 0; it received a value (arg = recvOK).
    assert_eq!(chosen[0]["case"], 0, "go{version}: the receive from b ran");
    assert_eq!(chosen[0]["arg"], 1, "go{version}: it received a value");

    expect(
        "pool",
        "putter",
        vec![
            step("assign", "map", ""),
            step("pool-put", "map", ""),
            step("pool-put", "map", ""),
        ],
    );
    expect(
        "pool",
        "main",
        vec![
            step("make-map", "map", ""),
            step("pool-get", "map", ""),
            step("assign", "map", ""),
        ],
    );
    expect(
        "timer",
        "main",
        vec![
            step("make-map", "map", ""),
            step("assign", "map", ""),
            step("timer-arm", "callback", ""),
            // Timer.Reset: the callback read from the timer.
            step("assign", "map", ""),
            step("timer-arm", "callback", ""),
        ],
    );
    expect("timer", "fired", vec![step("assign", "map", "")]);
    // The timer fires on the scheduler's stack and starts the callback's goroutine there, on
    // the same thread.
    let callback = &scenarios["timer"]["callback"];
    let fired = goroutine("timer", "fired");
    let fire = events
        .iter()
        .find(|e| e["op"] == "timer-fire" && e["object"] == callback.as_str())
        .unwrap_or_else(|| panic!("go{version}: no timer-fire for {callback}"));
    let start = events
        .iter()
        .find(|e| e["op"] == "go" && e["child"] == fired)
        .unwrap_or_else(|| panic!("go{version}: goroutine {fired} was not seen starting"));
    assert_eq!(fire["tid"], start["tid"], "go{version}: {fire} {start}");

    expect(
        "atomics",
        "writer",
        vec![
            step("assign", "map", ""),
            step("atomic-release", "hits", ""),
            step("atomic-acquire", "hits", ""),
            step("atomic-release", "ready", ""),
        ],
    );
    expect(
        "atomics",
        "main",
        vec![
            step("make-map", "map", ""),
            step("atomic-acquire", "ready", ""),
            step("read", "map", ""),
        ],
    );
}

mod event_sequences_are_exact {
    crate::test_each_go_version!(super::check);
}
