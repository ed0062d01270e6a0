//! The inlined synchronisation sites tracer plans, checked against two independent truths on
//! every supported Go version and build variant: the fixture's own source (each inlined sync
//! call carries a `// site: KIND` comment) and, for builds with DWARF, the compiler's
//! `DW_TAG_inlined_subroutine` records. A stripped build must yield the same plan as the default
//! build, and mutated executables must never make the analysis panic.

mod common;

use std::{
    borrow::Cow,
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use common::*;
use object::{Object as _, ObjectSection as _};
use tracer::{
    analyse::{
        syncsites::{AddressExpr, Primitive},
        GoBinary,
    },
    plan::{plan, ProbePlan},
};

const FIXTURE: &str = "syncsites";

/// (line in main.go, kind word used in the fixture's comments)
type Site = (u32, &'static str);

fn kind(primitive: Primitive) -> &'static str {
    match primitive {
        Primitive::OnceDone => "once-done",
        Primitive::MutexLock => "lock",
        Primitive::MutexUnlock => "unlock",
        Primitive::MutexTryLock => "trylock",
        Primitive::RwMutexRLock => "rlock",
        Primitive::RwMutexRUnlock => "runlock",
        Primitive::RwMutexReadersChecked => "readers-checked",
        Primitive::OnceDo => "once",
        Primitive::WaitGroupDone => "done",
        Primitive::AtomicRelease => "atomic-release",
        Primitive::AtomicAcquire => "atomic-acquire",
    }
}

/// The kinds of an inlined typed atomic method, from its name (`sync/atomic.(*Bool).Store`).
fn atomic_kinds(function: &str) -> &'static [&'static str] {
    let Some((type_name, method)) = function
        .strip_prefix("sync/atomic.(*")
        .and_then(|rest| rest.split_once(")."))
    else {
        return &[];
    };
    // atomic.Pointer's writes call sync/atomic.StorePointer & co., probed out of line.
    if type_name.starts_with("Pointer[") && method != "Load" {
        return &[];
    }
    match method {
        "Load" => &["atomic-acquire"],
        "Store" => &["atomic-release"],
        "Add" | "Swap" | "CompareAndSwap" | "And" | "Or" => &["atomic-release", "atomic-acquire"],
        _ => &[],
    }
}

/// The kind word of an out-of-line sync method (Go 1.21 calls deferred Unlock/Done out of line).
fn out_of_line_kind(function: &str) -> Option<&'static str> {
    Some(match function {
        "sync.(*Mutex).Unlock" => "unlock",
        "sync.(*RWMutex).RUnlock" => "runlock",
        "sync.(*WaitGroup).Done" => "done",
        _ => return None,
    })
}

fn fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(FIXTURE)
        .join("main.go")
}

/// Every `// site: KIND` comment of the fixture, by line.
fn sites_in_source() -> BTreeSet<Site> {
    let kinds = [
        "lock",
        "unlock",
        "trylock",
        "rlock",
        "runlock",
        "once",
        "done",
        "atomic-release",
        "atomic-acquire",
    ];
    std::fs::read_to_string(fixture_source())
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .flat_map(|(index, line)| {
            let words = line.split("// site: ").nth(1).unwrap_or("");
            words.split_whitespace().map(move |word| {
                let kind = kinds.iter().find(|&&k| k == word).expect("known kind");
                (index as u32 + 1, *kind)
            })
        })
        .collect()
}

fn in_fixture(file: &str) -> bool {
    file.ends_with("fixtures/syncsites/main.go")
}

/// What tracer's plan says, as source sites: inlined sync sites at their caller's line, plus
/// direct calls of out-of-line sync methods from the fixture's code.
fn sites_in_plan(binary: &GoBinary, plan: &ProbePlan) -> BTreeSet<Site> {
    let mut sites = BTreeSet::new();
    for site in &plan.sync_sites {
        // The atomic instruction is the operation itself; an acquire's probe, on the next
        // instruction, may already belong to the next statement.
        let frames = binary.symbolize(site.atomic);
        let caller = frames.last().expect("a sync site symbolizes");
        if in_fixture(&caller.file) {
            assert!(
                sites.insert((caller.line, kind(site.primitive))),
                "two sites for {site:?}"
            );
        }
    }
    for (name, function) in binary
        .functions()
        .filter(|(name, _)| name.starts_with("main."))
    {
        let code = binary.code(function).unwrap();
        for (callee, kind) in [
            "sync.(*Mutex).Unlock",
            "sync.(*RWMutex).RUnlock",
            "sync.(*WaitGroup).Done",
        ]
        .iter()
        .filter_map(|callee| Some((binary.function(callee)?, out_of_line_kind(callee)?)))
        {
            for call in tracer::analyse::disasm::calls_to(code, function.address, callee.address) {
                let frames = binary.symbolize(call.call);
                let caller = frames.last().unwrap_or_else(|| panic!("{name} symbolizes"));
                if in_fixture(&caller.file) {
                    sites.insert((caller.line, kind));
                }
            }
        }
    }
    sites
}

/// The outermost inlined sync methods in `main.*` functions according to DWARF, at their call
/// lines: an independent reading of the compiler's own records. Go's inlined_subroutine entries
/// point at their abstract function in another compile unit (DW_FORM_ref_addr), so names are
/// collected by global offset first.
fn sites_in_dwarf(path: &Path) -> BTreeSet<Site> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(file
            .section_by_name(id.name())
            .map(|section| section.uncompressed_data().unwrap())
            .unwrap_or_default())
    };
    let sections = gimli::DwarfSections::load(load).unwrap();
    let dwarf = sections.borrow(|section| gimli::EndianSlice::new(section, gimli::LittleEndian));
    let units: Vec<_> = {
        let mut headers = dwarf.units();
        std::iter::from_fn(|| headers.next().unwrap())
            .map(|header| dwarf.unit(header).unwrap())
            .collect()
    };
    let global = |unit: &gimli::Unit<_>, offset: gimli::UnitOffset| {
        offset.to_debug_info_offset(&unit.header).unwrap().0
    };
    let name = |unit: &gimli::Unit<_>, entry: &gimli::DebuggingInformationEntry<'_, '_, _>| {
        let value = entry.attr_value(gimli::DW_AT_name).unwrap()?;
        Some(
            dwarf
                .attr_string(unit, value)
                .ok()?
                .to_string_lossy()
                .into_owned(),
        )
    };
    let mut names = std::collections::HashMap::new();
    for unit in &units {
        let mut entries = unit.entries();
        while let Some((_, entry)) = entries.next_dfs().unwrap() {
            if entry.tag() == gimli::DW_TAG_subprogram {
                if let Some(name) = name(unit, entry) {
                    names.insert(global(unit, entry.offset()), name);
                }
            }
        }
    }
    let mut sites = BTreeSet::new();
    for unit in &units {
        let mut entries = unit.entries();
        let mut depth = 0isize;
        let mut in_main = false;
        // Depth of the outermost sync inlined_subroutine being walked, if any.
        let mut inside_sync: Option<isize> = None;
        while let Some((delta, entry)) = entries.next_dfs().unwrap() {
            depth += delta;
            if inside_sync.is_some_and(|d| depth <= d) {
                inside_sync = None;
            }
            if entry.tag() == gimli::DW_TAG_subprogram && depth == 1 {
                in_main = name(unit, entry).is_some_and(|name| name.starts_with("main."));
            }
            if !in_main || entry.tag() != gimli::DW_TAG_inlined_subroutine || inside_sync.is_some()
            {
                continue;
            }
            let origin = match entry.attr_value(gimli::DW_AT_abstract_origin).unwrap() {
                Some(gimli::AttributeValue::UnitRef(offset)) => global(unit, offset),
                Some(gimli::AttributeValue::DebugInfoRef(offset)) => offset.0,
                other => panic!("unexpected abstract origin {other:?}"),
            };
            let name = names.get(&origin).map_or("", String::as_str);
            let kinds: &[&str] = match name {
                "sync.(*Mutex).Lock" => &["lock"],
                "sync.(*Mutex).Unlock" => &["unlock"],
                "sync.(*Mutex).TryLock" => &["trylock"],
                "sync.(*RWMutex).RLock" => &["rlock"],
                "sync.(*RWMutex).RUnlock" => &["runlock"],
                "sync.(*Once).Do" => &["once"],
                "sync.(*WaitGroup).Done" => &["done"],
                _ => atomic_kinds(name),
            };
            if kinds.is_empty() {
                continue;
            }
            inside_sync = Some(depth);
            let line = match entry.attr_value(gimli::DW_AT_call_line).unwrap() {
                Some(gimli::AttributeValue::Udata(line)) => line as u32,
                other => panic!("unexpected call line {other:?}"),
            };
            for kind in kinds {
                sites.insert((line, *kind));
            }
        }
    }
    sites
}

fn analyse(path: &Path) -> (GoBinary, ProbePlan) {
    let binary = GoBinary::open(path, path).unwrap();
    let plan = plan(&binary);
    (binary, plan)
}

fn every_written_site_is_found(version: &str) {
    let expected = sites_in_source();
    assert!(expected.len() >= 20, "fixture comments: {expected:?}");
    for variant in Variant::ALL {
        let path = built_fixture(FIXTURE, version, variant);
        let (binary, plan) = analyse(&path);
        assert!(
            plan.unconfirmed_sync_calls.is_empty(),
            "go{version} {variant:?}: unconfirmed {:x?}",
            plan.unconfirmed_sync_calls
        );
        let found = sites_in_plan(&binary, &plan);
        assert_eq!(
            found, expected,
            "go{version} {variant:?}: plan vs the fixture's comments"
        );
        if variant != Variant::Stripped {
            // The compiler's DWARF lists every inlined call independently of pclntab and of the
            // decoding: the plan's inlined sites in the fixture must be exactly those. (Go 1.21's
            // deferred Unlock/Done are out-of-line calls, in neither.)
            let inlined: BTreeSet<Site> = plan
                .sync_sites
                .iter()
                .filter_map(|site| {
                    let caller = binary.symbolize(site.atomic).pop()?;
                    in_fixture(&caller.file).then_some((caller.line, kind(site.primitive)))
                })
                .collect();
            assert_eq!(
                inlined,
                sites_in_dwarf(&path),
                "go{version} {variant:?}: inlined sites vs DWARF"
            );
        }
    }
}

/// The plan of a stripped build equals the default build's, but for where the offsets come from.
fn stripped_plan_matches(version: &str) {
    let normalise = |path: &Path| {
        let (binary, plan) = analyse(path);
        let sites: Vec<String> = plan
            .sites
            .iter()
            .map(|s| {
                format!(
                    "{:?} {} {:?} {:#x}",
                    s.operation, s.function, s.placement, s.address
                )
            })
            .collect();
        // Globals may sit at other addresses once the symbol table is gone: compare their form.
        let object = |object: AddressExpr| match object {
            AddressExpr::Static { .. } => "static".to_owned(),
            other => format!("{other:?}"),
        };
        let sync: Vec<String> = plan
            .sync_sites
            .iter()
            .map(|s| {
                let object = object(s.object);
                format!(
                    "{:?} {} {:#x} {object} {:?}",
                    s.primitive, s.function, s.probe, s.outcome
                )
            })
            .collect();
        (binary.version, sites, sync, plan.absent)
    };
    let default = normalise(&built_fixture(FIXTURE, version, Variant::Default));
    let stripped = normalise(&built_fixture(FIXTURE, version, Variant::Stripped));
    assert!(!default.1.is_empty() && !default.2.is_empty());
    assert_eq!(default, stripped, "go{version}: stripped plan differs");
}

mod written_sites_are_found {
    crate::test_each_go_version!(super::every_written_site_is_found);
}

mod stripped_plan_equals_default_plan {
    crate::test_each_go_version!(super::stripped_plan_matches);
}

/// Mutated executables (headers, build info, function tables, code) give an error or a plan,
/// never a panic.
#[test]
fn mutated_executables_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for variant in [Variant::Default, Variant::Stripped] {
        let path = built_fixture(FIXTURE, "1.27.3", variant);
        let original = std::fs::read(&path).unwrap();
        let file = object::File::parse(&*original).unwrap();
        let targets: Vec<(u64, u64)> = [
            ".go.buildinfo",
            ".gopclntab",
            ".text",
            ".noptrdata",
            ".go.module",
        ]
        .iter()
        .filter_map(|name| file.section_by_name(name)?.file_range())
        .chain([(0, 0x40), (0x40, 0x200)]) // ELF and program headers
        .collect();
        let (mut errors, mut plans) = (0, 0);
        for round in 0..60 {
            let mut data = original.clone();
            let (start, size) = targets[round % targets.len()];
            for _ in 0..1 + next() % 8 {
                let at = (start + next() % size.max(1)) as usize;
                data[at] ^= 1 << (next() % 8);
            }
            match GoBinary::parse(&path, data) {
                Ok(binary) => {
                    let _ = plan(&binary);
                    plans += 1;
                }
                Err(_) => errors += 1,
            }
        }
        assert!(
            errors > 0 && plans > 0,
            "{variant:?}: {errors} errors, {plans} plans"
        );
    }
}
