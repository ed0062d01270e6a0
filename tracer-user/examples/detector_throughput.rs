//! Detector throughput, for `cargo xtask bench --part detector`: replays a `--events` recording
//! through the whole detection pipeline (translation, happens-before engine, race bookkeeping)
//! on one core until at least EVENTS events have been processed. Each pass over the recording
//! gets fresh goroutine ids and object addresses, so the detector's state grows as in one long
//! trace instead of replaying known history; the events are rewritten for the next pass between
//! passes, outside the time measured, which is the pipeline's alone. Prints one JSON line:
//! events, seconds, events per second, races, and the resident memory before the detector ran
//! and at its peak.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tracer::{
    detect::pipeline::Detection,
    events::{recording::Recording, Event, Op},
};

/// Added to goroutine ids per pass (Go's ids stay far below it).
const GOROUTINE_STRIDE: u64 = 1 << 32;
/// Added to object addresses per pass (above any user-space address).
const ADDRESS_STRIDE: u64 = 1 << 48;

/// The event as it is in the next pass: other goroutines, other objects.
fn shifted(event: &Event) -> Event {
    let mut event = *event;
    let goroutine = |id: u64| {
        if id == 0 {
            0
        } else {
            id + GOROUTINE_STRIDE
        }
    };
    event.goroutine = goroutine(event.goroutine);
    let mut fields = event.op.fields();
    match event.op {
        Op::GoroutineCreate { .. } => {
            fields.object = goroutine(fields.object);
            fields.arg = goroutine(fields.arg);
        }
        // The chosen case's index, not an address.
        Op::SelectChosen { .. } => {}
        // The slot, and the parked partner's goroutine id.
        Op::HandOff { .. } => {
            fields.object = fields.object.wrapping_add(ADDRESS_STRIDE);
            fields.arg = goroutine(fields.arg);
        }
        _ if fields.object != 0 => {
            fields.object = fields.object.wrapping_add(ADDRESS_STRIDE);
        }
        _ => {}
    }
    event.op = Op::new(event.kind(), fields);
    event
}

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn memory(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: detector_throughput RECORDING EVENTS";
    let path = PathBuf::from(args.next().context(usage)?);
    let target: u64 = args.next().context(usage)?.parse().context(usage)?;
    let mut recording = Recording::read(&path)?;
    anyhow::ensure!(
        !recording.events.is_empty(),
        "{}: no events",
        path.display()
    );
    let mut detection = Detection::default();
    for frames in recording.sites.iter().cloned() {
        detection.add_site(frames);
    }
    // The peak so far is the parsing of the recording; from here on it is the detector's.
    // Writing 5 to clear_refs resets VmHWM (proc(5)); without it the peak would be the parse's.
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")?;
    let rss_before = memory("VmRSS:");
    let mut elapsed = Duration::ZERO;
    let mut processed = 0u64;
    while processed < target {
        if processed > 0 {
            for recorded in &mut recording.events {
                recorded.event = shifted(&recorded.event);
            }
        }
        let started = Instant::now();
        for recorded in &recording.events {
            detection.observe(&recorded.event, recorded.observes, recorded.stack);
        }
        elapsed += started.elapsed();
        processed += recording.events.len() as u64;
    }
    let seconds = elapsed.as_secs_f64();
    let line = serde_json::json!({
        "events": processed,
        "seconds": seconds,
        "events_per_second": processed as f64 / seconds,
        "races": detection.races().len(),
        "rss_before_bytes": rss_before,
        "peak_rss_bytes": memory("VmHWM:"),
    });
    println!("{line}");
    Ok(())
}
