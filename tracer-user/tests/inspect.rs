//! `tracer inspect` on real executables of every supported Go version and shape (default,
//! stripped, PIE, cgo): what it reports about the binary, and that every planned file offset
//! really points at the instruction the plan says (checked on the file's bytes).

mod common;

use std::path::Path;

use common::*;

fn inspect_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = tracer()
        .arg("inspect")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Entry probes sit on `PUSHQ BP` (0x55), return probes on `RET` (0xc3) and call probes on a
/// `CALL` (0xe8 direct; 0xff indirect, after a 0x41 prefix for R8–R15): reading the bytes at
/// each planned file offset checks the address → offset translation independently.
fn assert_offsets_point_at_their_instructions(path: &Path, report: &serde_json::Value) {
    let file = std::fs::read(path).unwrap();
    let sites = report["sites"].as_array().unwrap();
    assert!(sites.len() > 40, "{path:?}: only {} sites", sites.len());
    for site in sites {
        let offset = site["file_offset"].as_u64().unwrap() as usize;
        let instruction: &[&[u8]] = match site["placement"].as_str().unwrap() {
            "after-stack-check" => &[&[0x55]],
            "return" => &[&[0xc3]],
            // A direct CALL, or an indirect one (through R8–R15 after its REX.B prefix).
            "at-call" | "return-at-call" => &[&[0xe8], &[0xff], &[0x41, 0xff]],
            _ => continue,
        };
        let bytes = &file[offset..offset + 2];
        assert!(
            instruction.iter().any(|start| bytes.starts_with(start)),
            "{path:?}: {bytes:02x?} at {site}"
        );
        assert!(
            site["line"].as_u64().unwrap() > 0,
            "{path:?}: no line for {site}"
        );
    }
    let sync_sites = report["sync_sites"].as_array().unwrap();
    assert!(!sync_sites.is_empty());
    for site in sync_sites {
        // The probe is the instruction right before or after a LOCK-prefixed one, never it.
        let offset = site["file_offset"].as_u64().unwrap() as usize;
        assert_ne!(
            file[offset], 0xf0,
            "{path:?}: probe on a LOCK prefix: {site}"
        );
    }
}

#[test]
fn reports_version_layout_and_offsets_of_every_build() {
    for version in GO_VERSIONS {
        let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
        for variant in Variant::ALL {
            let path = built_fixture("syncsites", version, variant);
            let report = inspect_json(&[path.as_os_str()]);
            let context = format!("go{version} {variant:?}");
            assert_eq!(report["go_version"], format!("go{version}"), "{context}");
            assert_eq!(
                report["maps"],
                if minor >= 24 { "swiss" } else { "classic" },
                "{context}"
            );
            let (linkage, source) = match variant {
                Variant::Default => ("static", "dwarf"),
                Variant::Stripped => ("static", "version-table"),
                Variant::Pie => ("pie", "dwarf"),
            };
            assert_eq!(report["linkage"], linkage, "{context}");
            assert_eq!(report["offsets"]["source"], source, "{context}");
            let goid = if matches!(minor, 23 | 24) { 160 } else { 152 };
            assert_eq!(report["offsets"]["g_goid"], goid, "{context}");
            assert_eq!(
                report["unconfirmed_sync_calls"].as_array().unwrap().len(),
                0,
                "{context}"
            );
            assert_offsets_point_at_their_instructions(&path, &report);
        }
    }
}

/// The sites of channel slots: every call that copies into or clears a slot in the three
/// channel functions, and the entries of the hand-off functions.
#[test]
fn channel_slot_sites_are_planned_in_every_version() {
    for version in GO_VERSIONS {
        for variant in [Variant::Default, Variant::Stripped] {
            let path = built_fixture("syncseq", version, variant);
            let report = inspect_json(&[path.as_os_str()]);
            let sites = report["sites"].as_array().unwrap();
            let count = |operation: &str, function: &str| {
                sites
                    .iter()
                    .filter(|site| site["operation"] == operation && site["function"] == function)
                    .count()
            };
            let context = format!("go{version} {variant:?}");
            // chansend copies into a slot once; chanrecv clears a slot, and clears or fills the
            // receiver's variable; selectgo does both.
            assert_eq!(count("chan-slot", "runtime.chansend"), 1, "{context}");
            assert_eq!(count("chan-slot", "runtime.chanrecv"), 4, "{context}");
            assert_eq!(count("chan-slot", "runtime.selectgo"), 4, "{context}");
            assert_eq!(count("chan-hand-off", "runtime.send"), 1, "{context}");
            assert_eq!(count("chan-hand-off", "runtime.recv"), 1, "{context}");
            assert_offsets_point_at_their_instructions(&path, &report);
        }
    }
}

/// Finalizers are ordered on the finalizer goroutine's call of `reflectcall`, an assembly
/// function whose body `.symtab` names `runtime.reflectcall.abi0` and pclntab (stripped builds)
/// `runtime.reflectcall`: found either way. Go 1.24's `runfinq` also calls cleanups, as
/// function values.
#[test]
fn the_finalizer_call_is_planned_in_every_version_and_build() {
    for version in GO_VERSIONS {
        for variant in [Variant::Default, Variant::Stripped] {
            let path = built_fixture("syncseq", version, variant);
            let report = inspect_json(&[path.as_os_str()]);
            let calls = report["sites"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|site| {
                    site["operation"] == "sync"
                        && site["placement"] == "at-call"
                        && (site["function"] == "runtime.runfinq"
                            || site["function"] == "runtime.runFinalizers")
                })
                .count();
            let expected = if version.starts_with("1.24.") { 2 } else { 1 };
            assert_eq!(calls, expected, "go{version} {variant:?}");
        }
    }
}

#[test]
fn text_report_names_what_matters() {
    let path = built_fixture("syncsites", "1.25.5", Variant::Stripped);
    let output = tracer().arg("inspect").arg(&path).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "go version    go1.25.5",
        "maps          swiss",
        "offsets       from version-table: g.goid 152",
        "mutex-lock",
        "mutex-try-lock",
        "once-do",
        "map-assign",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

#[test]
fn inspects_a_running_process() {
    let path = built_fixture("mapwrites", "1.26.6", Variant::Default);
    let target = LoopingTarget::start(&path);
    let report = inspect_json(&["--pid".as_ref(), target.pid.to_string().as_ref()]);
    assert_eq!(report["path"], path.to_str().unwrap());
    assert_eq!(report["counts"]["map-assign"], 5);
    let (code, _) = target.finish();
    assert_eq!(code, Some(0));
}

fn build_cgo(version: &str, dir: &Path) -> std::path::PathBuf {
    go_build(
        &go(version),
        &repository().join("tracer-user/tests/fixtures/cgomaps"),
        &dir.join(format!("cgomaps-{version}")),
        &[],
        &[("CGO_ENABLED", "1")],
    )
}

#[test]
fn cgo_executables_are_recognised_and_analysed() {
    let dir = tempfile::tempdir().unwrap();
    for version in GO_VERSIONS {
        let path = build_cgo(version, dir.path());
        let report = inspect_json(&[path.as_os_str()]);
        assert_eq!(report["linkage"], "dynamic", "go{version}");
        assert_offsets_point_at_their_instructions(&path, &report);
        // A cgo call's return (as -race, C may synchronise) is observed on its call of
        // `exitsyscall`, which the kernel emulates, not on its single-stepped `RET`.
        let cgocall: Vec<&serde_json::Value> = report["sites"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|site| site["function"] == "runtime.cgocall")
            .map(|site| &site["placement"])
            .collect();
        assert_eq!(
            cgocall,
            ["after-stack-check", "return-at-call"],
            "go{version}"
        );
    }
}

#[test]
fn cgo_executables_are_traced() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let path = build_cgo("1.24.11", dir.path());
    let events = dir.path().join("events.jsonl");
    // Every access: the writes of the fixture's loop repeat one another.
    let output = tracer()
        .args(["run", "--every-access", "--events"])
        .arg(&events)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let ["map", map, "assign", count] = words[..] else {
        panic!("unexpected output {stdout:?}")
    };
    let seen = json_lines(&events)
        .into_iter()
        .filter(|event| event["op"] == "assign" && event["map"] == map)
        .count();
    assert_eq!(seen.to_string(), count);
}

/// A function reached only by direct calls has its returns observed in its callers: one probe
/// per call site, on the instruction after the call or on the first instruction the kernel
/// emulates a few instructions later (or, for a send or receive returning where a probe would be
/// single-stepped, none and its return address listed), and no `RET` probe left — a call site
/// without either would be a return tracer never sees.
#[test]
fn returns_moved_to_callers_cover_every_call_site() {
    use tracer::analyse::{disasm, GoBinary};
    use tracer::plan::{plan, MovedResult, Placement};
    for version in GO_VERSIONS {
        for variant in [Variant::Default, Variant::Stripped] {
            let path = built_fixture("syncseq", version, variant);
            let binary = GoBinary::open(&path, &path).unwrap();
            let plan = plan(&binary);
            let context = format!("go{version} {variant:?}");
            let after_call = |placement: Placement| {
                matches!(
                    placement,
                    Placement::AfterCall | Placement::AfterCallIfReturned
                )
            };
            let moved: std::collections::BTreeSet<&str> = plan
                .sites
                .iter()
                .filter(|site| after_call(site.placement))
                .map(|site| site.function)
                .collect();
            assert!(moved.contains("runtime.chanrecv1"), "{context}: {moved:?}");
            assert!(moved.contains("runtime.newproc1"), "{context}: {moved:?}");
            for callee in moved {
                assert!(
                    !plan
                        .sites
                        .iter()
                        .any(|site| site.function == callee && site.placement == Placement::Return),
                    "{context}: {callee} is probed on its returns too"
                );
                let target = binary.function(callee).unwrap().address;
                let calls: Vec<disasm::CallSite> = binary
                    .functions_by_address()
                    .into_iter()
                    .flat_map(|(_, function)| {
                        disasm::calls_to(binary.code(function).unwrap(), function.address, target)
                    })
                    .collect();
                let probes: Vec<u64> = plan
                    .sites
                    .iter()
                    .filter(|site| site.function == callee && after_call(site.placement))
                    .map(|site| site.address)
                    .collect();
                // A send or receive returning where a probe would be single-stepped has none:
                // its return address is listed, and its completion made up at the goroutine's
                // next event.
                let completed_later = |call: &disasm::CallSite| {
                    plan.completed_at_next_event.contains(&call.return_to)
                };
                let unprobed = calls.iter().filter(|call| completed_later(call)).count();
                assert_eq!(probes.len() + unprobed, calls.len(), "{context}: {callee}");
                for call in &calls {
                    if completed_later(call) {
                        assert!(
                            !disasm::kernel_emulates(binary.bytes_at(call.return_to, 15).unwrap()),
                            "{context}: {callee} returns to an emulated {:#x} unprobed",
                            call.return_to
                        );
                        continue;
                    }
                    // The first probe after the call, at the latest on the next call of the
                    // callee (the kernel emulates calls), within the walk's twenty instructions
                    // (at most 15 bytes each).
                    let next_call = calls
                        .iter()
                        .map(|other| other.call)
                        .filter(|&other| other > call.call)
                        .min()
                        .unwrap_or(u64::MAX);
                    let probe = probes
                        .iter()
                        .copied()
                        .filter(|&probe| probe >= call.return_to)
                        .min()
                        .filter(|&probe| probe <= next_call && probe < call.return_to + 20 * 15)
                        .unwrap_or_else(|| {
                            panic!("{context}: no probe after the call at {:#x}", call.call)
                        });
                    assert!(
                        probe == call.return_to
                            || disasm::kernel_emulates(binary.bytes_at(probe, 15).unwrap()),
                        "{context}: {callee} probed at {probe:#x}, after {:#x}",
                        call.call
                    );
                }
            }
            // The fixture's main functions store each new map in a frame slot and reuse AX
            // before the next call: those returns are read from the slot, which is what
            // tests/event_sequences.rs then checks against the fixture's own map addresses.
            assert!(
                plan.sites
                    .iter()
                    .any(|site| site.function == "runtime.makemap_small"
                        && matches!(site.result_moved, Some(MovedResult::FrameSlot(_)))),
                "{context}: no makemap_small return read from a frame slot"
            );
        }
    }
}

/// `mu.RLock(); n, ok := m[k]; mu.RUnlock()` leaves nothing the kernel emulates between the
/// lookup's call and the RUnlock's atomic: on every version, the fixture's `service.get` has its
/// release probed on that call (a `CALL` the kernel emulates, of the map function whose event
/// it then follows), and no other site of the function is single-stepped.
#[test]
fn a_release_after_a_lookup_is_probed_on_the_lookups_call() {
    use tracer::analyse::{disasm, GoBinary};
    use tracer::plan::plan;
    for version in GO_VERSIONS {
        let path = built_fixture("syncseq", version, Variant::Default);
        let binary = GoBinary::open(&path, &path).unwrap();
        let plan = plan(&binary);
        let file = std::fs::read(&path).unwrap();
        let get: Vec<_> = plan
            .sync_sites
            .iter()
            .filter(|site| site.function == "main.(*service).get")
            .collect();
        let release = get
            .iter()
            .find(|site| site.after_map_call.is_some())
            .unwrap_or_else(|| panic!("go{version}: no release on a map call in {get:#?}"));
        assert_eq!(
            format!("{:?}", release.primitive),
            "RwMutexRUnlock",
            "go{version}"
        );
        let callee = binary
            .symbolize(release.after_map_call.unwrap())
            .into_iter()
            .next()
            .map(|frame| frame.function);
        assert_eq!(
            callee.as_deref(),
            Some("runtime.mapaccess2_faststr"),
            "go{version}"
        );
        assert_eq!(
            file[release.file_offset as usize], 0xe8,
            "go{version}: a CALL"
        );
        for site in &get {
            let code = &file[site.file_offset as usize..];
            assert!(
                disasm::kernel_emulates(code),
                "go{version}: {site:?} is single-stepped"
            );
        }
    }
}

/// Two probes on one instruction fire in no defined order (a release could be recorded after
/// what follows it), and are one trap too many: no inlined sync site shares an instruction with
/// another site, on every supported version (releases move back to emulated instructions, as
/// far as a wrapper's prologue, where an out-of-line function's entry probe was).
#[test]
fn no_two_probes_share_an_instruction() {
    use std::collections::HashSet;
    use tracer::analyse::GoBinary;
    use tracer::plan::plan;
    for version in GO_VERSIONS {
        let path = built_fixture("syncseq", version, Variant::Default);
        let binary = GoBinary::open(&path, &path).unwrap();
        let plan = plan(&binary);
        let mut seen = HashSet::new();
        let addresses = plan
            .sites
            .iter()
            .map(|site| site.address)
            .chain(plan.sync_sites.iter().map(|site| site.probe));
        for address in addresses {
            assert!(
                seen.insert(address),
                "go{version}: two probes at {address:#x}"
            );
        }
    }
}

/// The cold-code watch (see docs/how-it-works.md) watches the map calls of the program's own
/// code and nothing else: on every version, each watched call is a `CALL` (0xe8, which the
/// kernel emulates) in a `main.` function, and the fixture's functions that write or read a map
/// themselves are all among them.
#[test]
fn the_cold_code_watch_covers_the_programs_own_map_calls() {
    use tracer::analyse::GoBinary;
    use tracer::plan::cold::watched_calls;
    for version in GO_VERSIONS {
        for variant in [Variant::Default, Variant::Stripped] {
            let path = built_fixture("syncseq", version, variant);
            let binary = GoBinary::open(&path, &path).unwrap();
            let file = std::fs::read(&path).unwrap();
            let watched = watched_calls(&binary);
            let context = format!("go{version} {variant:?}");
            for call in &watched {
                assert_eq!(file[call.file_offset as usize], 0xe8, "{context}: {call:?}");
                assert!(call.function.starts_with("main."), "{context}: {call:?}");
            }
            let functions: std::collections::BTreeSet<&str> =
                watched.iter().map(|call| call.function.as_str()).collect();
            // `m[1] = 1` and `sink = m[1]` in the goroutines of `mutex`, `sink = m[1]` in the one
            // of `rwmutex` and `m[2] = 2` in `rwmutex` itself.
            for function in [
                "main.mutex.func1",
                "main.mutex.func2",
                "main.rwmutex.func1",
                "main.rwmutex",
            ] {
                assert!(functions.contains(function), "{context}: {functions:?}");
            }
        }
    }
}
