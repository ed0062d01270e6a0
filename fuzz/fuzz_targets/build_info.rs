//! The `.go.buildinfo` section, whose pointers (in old layouts) are resolved in the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::analyse::buildinfo;

fuzz_target!(|data: &[u8]| {
    let _ = buildinfo::parse(data, |address, len| {
        let start = usize::try_from(address).ok()?;
        data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
    });
});
