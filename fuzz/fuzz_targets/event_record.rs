//! A record from the kernel's ring buffer, decoded and written as an `--events` line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::events;

fuzz_target!(|data: &[u8]| {
    if let Some(event) = events::decode(data) {
        let _ = event.to_json("fuzzed", Some(1));
    }
});
