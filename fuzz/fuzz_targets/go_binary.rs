//! A whole executable, as `tracer inspect` and `attach` analyse it: ELF, Go build information,
//! function table and inline tree, DWARF offsets, the probe plan, and symbolization. A traced
//! program may be hostile; none of this may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::{
    analyse::GoBinary,
    plan::{self, sites},
};

fuzz_target!(|data: &[u8]| {
    let Ok(binary) = GoBinary::parse(std::path::Path::new("fuzzed"), data.to_vec()) else {
        return;
    };
    let plan = plan::plan(&binary);
    let _ = sites::kernel_sites(&plan, |address| binary.bytes_at(address, 15));
    for (_, function) in binary.functions().take(64) {
        let _ = binary.symbolize(function.address);
        let _ = binary.inlined_calls(function.address);
    }
});
