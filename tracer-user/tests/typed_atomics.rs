//! Loads of typed atomics kept in struct fields (`p.table.Load()` on an `atomic.Pointer[T]`
//! field), which several Go versions compile to a plain `MOV` without an inline mark: found
//! through the DWARF types of the variables and fields (docs/how-it-works.md). Checked on every
//! supported Go version against the fixture's `// acquire` comments; without DWARF (a stripped
//! build) only those the inline tree shows can be found.

mod common;

use std::{collections::BTreeSet, path::Path};

use common::*;
use tracer::{
    analyse::{syncsites::Primitive, GoBinary},
    plan::plan,
};

const FIXTURE: &str = "typedatomics";

/// The lines of the fixture marked `// acquire`.
fn marked_lines() -> BTreeSet<u32> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(FIXTURE)
        .join("main.go");
    std::fs::read_to_string(source)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_end().ends_with("// acquire"))
        .map(|(index, _)| index as u32 + 1)
        .collect()
}

/// The fixture lines whose atomic instruction the plan acquires after.
fn acquired_lines(path: &Path) -> BTreeSet<u32> {
    let binary = GoBinary::open(path, path).unwrap();
    plan(&binary)
        .sync_sites
        .iter()
        .filter(|site| site.primitive == Primitive::AtomicAcquire)
        .filter_map(|site| {
            let caller = binary.symbolize(site.atomic).pop()?;
            caller
                .file
                .ends_with("fixtures/typedatomics/main.go")
                .then_some(caller.line)
        })
        .collect()
}

fn every_typed_field_load_is_acquired(version: &str) {
    let marked = marked_lines();
    assert_eq!(marked.len(), 5, "fixture comments");
    for variant in [Variant::Default, Variant::Pie] {
        let found = acquired_lines(&built_fixture(FIXTURE, version, variant));
        assert_eq!(found, marked, "go{version} {variant:?}");
    }
    let stripped = acquired_lines(&built_fixture(FIXTURE, version, Variant::Stripped));
    assert!(
        stripped.is_subset(&marked),
        "go{version} stripped: {stripped:?} not within {marked:?}"
    );
}

mod typed_field_loads_are_acquired {
    crate::test_each_go_version!(super::every_typed_field_load_is_acquired);
}
