//! An `--events` recording given to `tracer replay`: parsed, then analysed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::{detect::pipeline::Detection, events::recording::Recording};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(recording) = Recording::parse(std::path::Path::new("fuzzed"), text) else {
        return;
    };
    let mut detection = Detection::default();
    detection.replay(recording);
    let _ = detection.races();
});
