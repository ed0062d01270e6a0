//! Runtime struct offsets of real binaries from every supported toolchain: from DWARF when the
//! build has it, from the version table when stripped, and checked against `readelf`'s reading
//! of the same DWARF. Corrupt DWARF must give an error or a fallback, never a panic.

mod common;

use std::{collections::HashMap, path::Path, process::Command};

use common::*;
use object::{Object as _, ObjectSection as _};
use tracer::analyse::{
    dwarf::{
        offsets_for_version, offsets_from_dwarf, runtime_offsets, OffsetSource, OffsetsError,
        RuntimeOffsets,
    },
    GoVersion,
};

const FIXTURE: &str = "mapwrites";

fn go_version(version: &str) -> GoVersion {
    GoVersion::parse(&format!("go{version}")).unwrap()
}

/// A version newer than any table entry.
const UNKNOWN_VERSION: GoVersion = GoVersion {
    major: 1,
    minor: 28,
    patch: 0,
};

fn with_file<T>(data: &[u8], f: impl FnOnce(&object::File<'_>) -> T) -> T {
    f(&object::File::parse(data).expect("an ELF file"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn every_variant_gets_its_toolchains_layout() {
    for version in GO_VERSIONS {
        let go = go_version(version);
        let table = offsets_for_version(go).unwrap_or_else(|| panic!("no table for {go}"));
        for (variant, source) in [
            (Variant::Default, OffsetSource::Dwarf),
            (Variant::Stripped, OffsetSource::VersionTable),
            (Variant::Pie, OffsetSource::Dwarf),
        ] {
            let data = read(&built_fixture(FIXTURE, version, variant));
            let offsets = with_file(&data, |file| runtime_offsets(file, go))
                .unwrap_or_else(|error| panic!("{go} {variant:?}: {error}"));
            assert_eq!(
                offsets,
                RuntimeOffsets { source, ..table },
                "{go} {variant:?}"
            );
        }
    }
}

#[test]
fn dwarf_decides_for_versions_missing_from_the_table() {
    for version in [GO_VERSIONS[0], GO_VERSIONS[6]] {
        let table = offsets_for_version(go_version(version)).unwrap();
        let with_dwarf = read(&built_fixture(FIXTURE, version, Variant::Default));
        let offsets = with_file(&with_dwarf, |file| runtime_offsets(file, UNKNOWN_VERSION));
        assert_eq!(
            offsets.unwrap(),
            RuntimeOffsets {
                source: OffsetSource::Dwarf,
                ..table
            },
            "go{version}"
        );

        let stripped = read(&built_fixture(FIXTURE, version, Variant::Stripped));
        assert!(with_file(&stripped, offsets_from_dwarf).unwrap().is_none());
        match with_file(&stripped, |file| runtime_offsets(file, UNKNOWN_VERSION)) {
            Err(error @ OffsetsError::UnknownLayout { dwarf: None, .. }) => {
                assert!(error.to_string().contains("go1.28"), "{error}");
            }
            other => panic!("go{version} stripped as go1.28: expected a refusal, got {other:?}"),
        }
    }
}

/// Member offsets of the named top-level structs, as `readelf --debug-dump=info` prints them.
fn readelf_structs(dump: &str, names: &[&str]) -> HashMap<String, HashMap<String, u64>> {
    let mut structs: HashMap<String, HashMap<String, u64>> = HashMap::new();
    // (depth, tag) of the entry whose attributes follow, and the wanted struct it is part of.
    let mut entry = None;
    let mut current_struct = None;
    let mut member_name = None;
    for line in dump.lines().map(str::trim) {
        if let Some((depth, tag)) = die_header(line) {
            if depth <= 1 {
                current_struct = None;
            }
            member_name = None;
            entry = Some((depth, tag));
            continue;
        }
        let Some((attribute, value)) = line
            .split_once('>')
            .and_then(|(_, rest)| rest.split_once(':'))
        else {
            continue;
        };
        let (attribute, value) = (attribute.trim(), value.trim());
        match (entry, attribute, &current_struct) {
            (Some((1, "DW_TAG_structure_type")), "DW_AT_name", _)
                if names.contains(&value) && !structs.contains_key(value) =>
            {
                structs.insert(value.to_owned(), HashMap::new());
                current_struct = Some(value.to_owned());
            }
            (Some((2, "DW_TAG_member")), "DW_AT_name", Some(_)) => {
                member_name = Some(value.to_owned());
            }
            (_, "DW_AT_data_member_location", Some(name)) => {
                let member = member_name.take().expect("the name precedes the location");
                let offset = value.parse().expect("a constant location");
                structs.get_mut(name).unwrap().insert(member, offset);
            }
            _ => {}
        }
    }
    structs
}

/// ` <2><6e3a1>: Abbrev Number: 14 (DW_TAG_member)` → (2, "DW_TAG_member").
fn die_header(line: &str) -> Option<(u32, &str)> {
    let depth = line.strip_prefix('<')?.split_once('>')?.0.parse().ok()?;
    let tag = line.rsplit_once('(')?.1.strip_suffix(')')?;
    line.contains("Abbrev Number").then_some((depth, tag))
}

/// binutils' DWARF reader, not ours: it must see the same offsets for every field.
#[test]
fn readelf_agrees_with_the_dwarf_reader() {
    for version in GO_VERSIONS {
        let path = built_fixture(FIXTURE, version, Variant::Default);
        let output = Command::new("readelf")
            .arg("--debug-dump=info")
            .arg(&path)
            .output()
            .expect("readelf (binutils) runs");
        assert!(output.status.success(), "readelf failed on go{version}");
        let dump = String::from_utf8_lossy(&output.stdout);
        let names = [
            "runtime.g",
            "runtime.m",
            "runtime.stack",
            "runtime.hchan",
            "runtime.timer",
        ];
        let structs = readelf_structs(&dump, &[&names[..], &["runtime.timeTimer"]].concat());
        let [g, m, stack, hchan, timer] = names.map(|name| {
            structs
                .get(name)
                .unwrap_or_else(|| panic!("go{version}: readelf shows no {name}"))
        });
        let field = |members: &HashMap<String, u64>, name: &str| -> u16 {
            let offset = *members
                .get(name)
                .unwrap_or_else(|| panic!("go{version}: readelf shows no member {name}"));
            offset.try_into().unwrap()
        };
        let expected = RuntimeOffsets {
            g_stack_lo: field(g, "stack") + field(stack, "lo"),
            g_stack_hi: field(g, "stack") + field(stack, "hi"),
            g_m: field(g, "m"),
            g_atomicstatus: field(g, "atomicstatus"),
            g_goid: field(g, "goid"),
            g_parent_goid: field(g, "parentGoid"),
            g_startpc: field(g, "startpc"),
            m_curg: field(m, "curg"),
            hchan_qcount: field(hchan, "qcount"),
            hchan_dataqsiz: field(hchan, "dataqsiz"),
            hchan_buf: field(hchan, "buf"),
            hchan_elemsize: field(hchan, "elemsize"),
            hchan_closed: field(hchan, "closed"),
            hchan_sendx: field(hchan, "sendx"),
            hchan_recvx: field(hchan, "recvx"),
            hchan_lock: field(hchan, "lock"),
            // The timer `time.resetTimer` is passed is inside a `runtime.timeTimer` from 1.23.
            timer_callback: structs
                .get("runtime.timeTimer")
                .map_or(0, |time_timer| field(time_timer, "timer"))
                + field(timer, "arg")
                + 8,
            // Coroutines came with Go 1.23.
            g_coroarg: g.get("coroarg").map(|_| field(g, "coroarg")),
            source: OffsetSource::Dwarf,
        };
        let data = read(&path);
        let offsets = with_file(&data, offsets_from_dwarf).unwrap().unwrap();
        assert_eq!(offsets, expected, "go{version}");
    }
}

/// A deterministic byte stream for choosing corruptions (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

const SHF_COMPRESSED: u64 = 0x800;

/// `data` with `.debug_info` replaced by `contents`, stored uncompressed at the end of the file,
/// so that corruptions reach the DWARF parser instead of failing zlib's checksum.
fn with_debug_info(data: &[u8], contents: &[u8]) -> Vec<u8> {
    let index = with_file(data, |file| {
        file.section_by_name(".debug_info").unwrap().index().0
    });
    let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(data[at..at + 2].try_into().unwrap());
    // Elf64_Ehdr.e_shoff and e_shentsize; Elf64_Shdr.sh_flags, sh_offset and sh_size.
    let header = u64_at(0x28) as usize + index * usize::from(u16_at(0x3a));
    let mut patched = data.to_vec();
    let flags = u64_at(header + 8) & !SHF_COMPRESSED;
    patched[header + 8..header + 16].copy_from_slice(&flags.to_le_bytes());
    patched[header + 24..header + 32].copy_from_slice(&(data.len() as u64).to_le_bytes());
    patched[header + 32..header + 40].copy_from_slice(&(contents.len() as u64).to_le_bytes());
    patched.extend_from_slice(contents);
    patched
}

/// Reads a corrupted file every way, asserting that the tabled `go` always gets offsets and an
/// unknown version gets DWARF offsets or a refusal. Returns `go`'s offsets and the DWARF result.
fn read_corrupted(
    data: &[u8],
    go: GoVersion,
    what: &str,
) -> (RuntimeOffsets, Result<Option<RuntimeOffsets>, OffsetsError>) {
    with_file(data, |file| {
        let offsets = runtime_offsets(file, go).unwrap_or_else(|error| panic!("{what}: {error}"));
        let unknown = runtime_offsets(file, UNKNOWN_VERSION);
        assert!(
            matches!(
                unknown,
                Ok(RuntimeOffsets {
                    source: OffsetSource::Dwarf,
                    ..
                }) | Err(OffsetsError::UnknownLayout { dwarf: Some(_), .. })
            ),
            "{what}: {unknown:?}"
        );
        (offsets, offsets_from_dwarf(file))
    })
}

#[test]
fn corrupt_dwarf_is_an_error_or_a_fallback_never_a_panic() {
    for version in [GO_VERSIONS[0], GO_VERSIONS[6]] {
        let go = go_version(version);
        let table = offsets_for_version(go).unwrap();
        let data = read(&built_fixture(FIXTURE, version, Variant::Default));
        let (compressed, info) = with_file(&data, |file| {
            let section = file.section_by_name(".debug_info").unwrap();
            let (start, size) = section.file_range().unwrap();
            (
                start as usize..(start + size) as usize,
                section.uncompressed_data().unwrap().into_owned(),
            )
        });

        // Flips in the compressed bytes (Elf64_Chdr, zlib header, stream, checksum): zlib or
        // the DWARF walk fails and the table takes over, or the data survived intact.
        for at in [
            0,
            4,
            8,
            15,
            24,
            25,
            compressed.len() / 2,
            compressed.len() - 1,
        ] {
            let mut corrupted = data.clone();
            corrupted[compressed.start + at] ^= 0x5a;
            let what = format!("go{version}, compressed byte {at} flipped");
            let (offsets, _) = read_corrupted(&corrupted, go, &what);
            assert_eq!(
                RuntimeOffsets {
                    source: OffsetSource::VersionTable,
                    ..offsets
                },
                table,
                "{what}"
            );
        }

        // The uncompressed rewrite itself must still be readable, or the cases below prove nothing.
        let rewritten = with_debug_info(&data, &info);
        let offsets = with_file(&rewritten, offsets_from_dwarf).unwrap();
        assert_eq!(
            offsets,
            Some(RuntimeOffsets {
                source: OffsetSource::Dwarf,
                ..table
            })
        );

        // Go writes type names inline, so runtime.g's entries are found without a parser (the
        // first match is the name of `*runtime.g`, which directly precedes the struct).
        let g_name = find(&info, b"runtime.g\0").expect("runtime.g in .debug_info");

        // Truncated inside runtime.g: its unit overruns the section, which must be an error.
        let truncated = with_debug_info(&data, &info[..g_name + 40]);
        let (_, result) = read_corrupted(&truncated, go, &format!("go{version} truncated"));
        assert!(result.is_err(), "go{version} truncated: {result:?}");

        // Random flips in the first unit header and around runtime.g.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut errors = 0;
        for round in 0..40 {
            let mut corrupted = info.clone();
            for _ in 0..1 + rng.below(4) {
                let at = if rng.below(4) == 0 {
                    rng.below(16)
                } else {
                    g_name - 16 + rng.below(1024)
                };
                corrupted[at] ^= 1 << rng.below(8);
            }
            let what = format!("go{version}, round {round}");
            if read_corrupted(&with_debug_info(&data, &corrupted), go, &what)
                .1
                .is_err()
            {
                errors += 1;
            }
        }
        assert!(
            errors > 0,
            "go{version}: no corruption reached the parser's error paths"
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
