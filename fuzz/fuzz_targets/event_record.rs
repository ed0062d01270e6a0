//! A record from the kernel's ring buffer, decoded and written as an `--events` line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::events::{self, recording};

fuzz_target!(|data: &[u8]| {
    if let Some(event) = events::decode(data) {
        let _ = recording::Line::Event(recording::EventRecord::of(&event, "fuzzed", Some(1))).to_json();
    }
});
