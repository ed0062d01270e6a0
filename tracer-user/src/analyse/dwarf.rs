//! Runtime struct field offsets from DWARF, with a per-version table when DWARF is absent.
//!
//! The kernel side reads fields of `runtime.g`, `runtime.m` and `runtime.hchan`, whose layouts
//! change between Go releases (docs/go-internals.md §4, §5). The binary's own DWARF is the
//! authority when present; stripped binaries (`-ldflags=-s -w`) fall back to a table read from the
//! DWARF of binaries built with each supported toolchain. A release missing from the table is
//! refused rather than guessed.

use std::{borrow::Cow, collections::HashMap};

use gimli::{EndianSlice, RunTimeEndian};
use object::{Object as _, ObjectSection as _};
use tracer_common::G_PREFIX_WORDS;

use crate::analyse::GoVersion;

/// Where the offsets came from (shown by `tracer inspect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetSource {
    Dwarf,
    VersionTable,
}

/// Byte offsets of the runtime fields the eBPF programs read, from the start of their struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeOffsets {
    /// `g.stack.lo` / `g.stack.hi`: bounds of the goroutine stack (stack-local maps are not shared).
    pub g_stack_lo: u16,
    pub g_stack_hi: u16,
    pub g_m: u16,
    pub g_atomicstatus: u16,
    pub g_goid: u16,
    pub g_parent_goid: u16,
    /// `g.startpc`: the function the goroutine started in (it tells call paths apart).
    pub g_startpc: u16,
    pub m_curg: u16,
    pub hchan_qcount: u16,
    pub hchan_dataqsiz: u16,
    pub hchan_buf: u16,
    pub hchan_elemsize: u16,
    pub hchan_closed: u16,
    pub hchan_sendx: u16,
    pub hchan_recvx: u16,
    pub hchan_lock: u16,
    /// Where a timer keeps its callback (the data word of `runtime.timer.arg`, which is the
    /// function `time.AfterFunc` was given), from the pointer `time.resetTimer` is passed.
    pub timer_callback: u16,
    /// `g.coroarg`: the coroutine a coroutine's goroutine is started for (Go 1.23+).
    pub g_coroarg: Option<u16>,
    pub source: OffsetSource,
}

/// A field that probes read an object from, by what it is (see [`RuntimeOffsets::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeField {
    /// A timer's callback, from the pointer `time.resetTimer` is passed.
    TimerCallback,
    /// The running g's `coroarg`.
    CoroutineArgument,
}

impl RuntimeOffsets {
    /// Where `field` is; none when this runtime has no such field.
    pub fn of(&self, field: RuntimeField) -> Option<u16> {
        match field {
            RuntimeField::TimerCallback => Some(self.timer_callback),
            RuntimeField::CoroutineArgument => self.g_coroarg,
        }
    }

    /// Whether the fields the programs read in one block lie where they read them: the running
    /// `g`'s within its first `G_PREFIX_WORDS` words, and a channel's `dataqsiz`, `buf` and
    /// `elemsize` in consecutive words. A future Go whose layout moved them is refused rather
    /// than read wrong.
    fn check_blocks_read(&self) -> Result<(), OffsetsError> {
        let g_block = G_PREFIX_WORDS * 8;
        let beyond = [
            ("runtime.g.stack.hi", self.g_stack_hi),
            ("runtime.g.m", self.g_m),
            ("runtime.g.goid", self.g_goid),
            ("runtime.g.startpc", self.g_startpc),
        ]
        .into_iter()
        .find(|&(_, offset)| usize::from(offset) + 8 > g_block);
        if let Some((field, offset)) = beyond {
            return Err(OffsetsError::BeyondRead {
                field,
                offset,
                limit: g_block,
            });
        }
        let shape = [self.hchan_dataqsiz, self.hchan_buf, self.hchan_elemsize];
        if shape != [0, 8, 16].map(|word| self.hchan_dataqsiz.saturating_add(word)) {
            return Err(OffsetsError::ChannelShape(shape));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("cannot read the {section} section: {source}")]
    Section {
        section: &'static str,
        #[source]
        source: object::Error,
    },
    #[error(
        "the {section} section claims {uncompressed} bytes once decompressed, from {compressed}: \
         refused as malformed"
    )]
    Oversized {
        section: &'static str,
        compressed: u64,
        uncompressed: u64,
    },
    #[error("malformed DWARF: {0}")]
    Malformed(#[from] gimli::Error),
    /// Missing, or not a constant offset that fits in 16 bits.
    #[error("DWARF has no usable offset for {0}")]
    Field(String),
    /// A field the programs read in one block with its neighbours lies beyond the block.
    #[error("{field} at byte {offset} lies beyond the first {limit} bytes the probes read")]
    BeyondRead {
        field: &'static str,
        offset: u16,
        limit: usize,
    },
    /// `runtime.hchan`'s `dataqsiz`, `buf` and `elemsize` are not consecutive words.
    #[error(
        "runtime.hchan's dataqsiz, buf and elemsize are at bytes {0:?}, not in consecutive words \
         as the probes read them"
    )]
    ChannelShape([u16; 3]),
    #[error(
        "the runtime struct layout of {version} is unknown: tracer has no table for this Go \
         version and the binary has no usable DWARF"
    )]
    UnknownLayout {
        version: GoVersion,
        /// Why the DWARF was unusable; `None` when the binary has none.
        #[source]
        dwarf: Option<Box<Self>>,
    },
}

/// DWARF if present and complete, else the table for `version`, else Err.
pub fn runtime_offsets(
    file: &object::File<'_>,
    version: GoVersion,
) -> Result<RuntimeOffsets, OffsetsError> {
    let dwarf_problem = match offsets_from_dwarf(file) {
        Ok(Some(offsets)) => return Ok(offsets),
        Ok(None) => None,
        Err(error) => Some(Box::new(error)),
    };
    match offsets_for_version(version) {
        Some(offsets) => {
            if let Some(problem) = &dwarf_problem {
                log::warn!("ignoring the binary's DWARF ({problem}); using the {version} layout");
            }
            Ok(offsets)
        }
        None => Err(OffsetsError::UnknownLayout {
            version,
            dwarf: dwarf_problem,
        }),
    }
}

/// The offsets described by the binary's DWARF; `None` when it has no `.debug_info`.
///
/// The decompressed sections live only for the duration of the call.
pub fn offsets_from_dwarf(file: &object::File<'_>) -> Result<Option<RuntimeOffsets>, OffsetsError> {
    let Some(info) = section_data(file, ".debug_info")? else {
        return Ok(None);
    };
    let abbrev = section_data(file, ".debug_abbrev")?.unwrap_or_default();
    // Go writes names inline (DW_FORM_string) and has neither section; other producers use them.
    let str = section_data(file, ".debug_str")?.unwrap_or_default();
    let line_str = section_data(file, ".debug_line_str")?.unwrap_or_default();
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = Sections {
        info: gimli::DebugInfo::new(&info, endian),
        abbrev: gimli::DebugAbbrev::new(&abbrev, endian),
        str: gimli::DebugStr::new(&str, endian),
        line_str: gimli::DebugLineStr::new(&line_str, endian),
    };
    let layouts = sections.find_structs()?;
    layouts.offsets().map(Some)
}

/// The layout of a known release, read from the DWARF of binaries built with its toolchain.
/// Every minor version is listed explicitly, so a new release is refused until it is added.
pub fn offsets_for_version(version: GoVersion) -> Option<RuntimeOffsets> {
    match (version.major, version.minor) {
        (1, 21) => Some(GO_1_21),
        (1, 22) => Some(GO_1_22),
        (1, 23 | 24) => Some(GO_1_23),
        (1, 25) => Some(GO_1_25),
        (1, 26 | 27) => Some(GO_1_26),
        _ => None,
    }
}

/// Go 1.21.
const GO_1_21: RuntimeOffsets = RuntimeOffsets {
    g_stack_lo: 0,
    g_stack_hi: 8,
    g_m: 48,
    g_atomicstatus: 144,
    g_goid: 152,
    g_parent_goid: 272,
    g_startpc: 296,
    m_curg: 192,
    hchan_qcount: 0,
    hchan_dataqsiz: 8,
    hchan_buf: 16,
    hchan_elemsize: 24,
    hchan_closed: 28,
    hchan_sendx: 40,
    hchan_recvx: 48,
    hchan_lock: 88,
    timer_callback: 40,
    g_coroarg: None,
    source: OffsetSource::VersionTable,
};

/// Go 1.22 added coroutines (`g.coroarg`; `iter.Pull` uses them from 1.23, and 1.22's
/// `GOEXPERIMENT=rangefunc`).
const GO_1_22: RuntimeOffsets = RuntimeOffsets {
    g_coroarg: Some(368),
    ..GO_1_21
};

/// Go 1.23 and 1.24 added `g.syscallbp` before `atomicstatus` and `hchan.timer` before `sendx`,
/// and pass `time.resetTimer` the `runtime.timeTimer` around the timer (16 bytes before it),
/// whose own fields before `arg` grew by 8.
const GO_1_23: RuntimeOffsets = RuntimeOffsets {
    g_atomicstatus: 152,
    g_goid: 160,
    g_parent_goid: 280,
    g_startpc: 304,
    hchan_sendx: 48,
    hchan_recvx: 56,
    hchan_lock: 96,
    timer_callback: 64,
    g_coroarg: Some(384),
    ..GO_1_22
};

/// Go 1.25 dropped `gobuf.ret` (−8 after `g.sched` and `m.morebuf`), added `hchan.bubble` and
/// `timer.rand` (before `arg`).
const GO_1_25: RuntimeOffsets = RuntimeOffsets {
    g_atomicstatus: 144,
    g_goid: 152,
    g_parent_goid: 272,
    g_startpc: 296,
    m_curg: 184,
    hchan_lock: 104,
    timer_callback: 72,
    g_coroarg: Some(376),
    ..GO_1_23
};

/// Go 1.26 and 1.27 added `g.fipsOnlyBypass`, `g.ditWanted` and `g.secret` before `parentGoid`.
const GO_1_26: RuntimeOffsets = RuntimeOffsets {
    g_parent_goid: 280,
    g_startpc: 304,
    g_coroarg: Some(384),
    ..GO_1_25
};

/// The structs whose members are read, as Go's linker names them.
const STRUCTS: [&str; 5] = [
    "runtime.g",
    "runtime.m",
    "runtime.stack",
    "runtime.hchan",
    "runtime.timer",
];

/// Structs read when present: `runtime.timeTimer` exists from Go 1.23.
const OPTIONAL_STRUCTS: [&str; 1] = ["runtime.timeTimer"];

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;

/// The DWARF sections needed to find struct members by name, and nothing more.
struct Sections<'a> {
    info: gimli::DebugInfo<Slice<'a>>,
    abbrev: gimli::DebugAbbrev<Slice<'a>>,
    str: gimli::DebugStr<Slice<'a>>,
    line_str: gimli::DebugLineStr<Slice<'a>>,
}

impl Sections<'_> {
    /// Walks the units until every struct of `STRUCTS` was seen, to the end of that unit for
    /// the optional ones (Go emits the runtime's types in one unit, so most units after it are
    /// never parsed).
    fn find_structs(&self) -> Result<Layouts, OffsetsError> {
        let mut layouts = HashMap::new();
        let mut units = self.info.units();
        let all_required =
            |layouts: &HashMap<&str, _>| STRUCTS.iter().all(|s| layouts.contains_key(s));
        while !all_required(&layouts) {
            let Some(unit) = units.next()? else { break };
            let abbreviations = unit.abbreviations(&self.abbrev)?;
            let mut tree = unit.entries_tree(&abbreviations, None)?;
            let mut entries = tree.root()?.children();
            while let Some(node) = entries.next()? {
                let entry = node.entry();
                // Skips declarations, which have no members (Go emits none; other producers do).
                if entry.tag() != gimli::DW_TAG_structure_type || !entry.has_children() {
                    continue;
                }
                let Some(name) = self.name(entry)? else {
                    continue;
                };
                let Some(wanted) = STRUCTS
                    .into_iter()
                    .chain(OPTIONAL_STRUCTS)
                    .find(|s| s.as_bytes() == name)
                else {
                    continue;
                };
                if !layouts.contains_key(wanted) {
                    layouts.insert(wanted, self.members(node)?);
                    if layouts.len() == STRUCTS.len() + OPTIONAL_STRUCTS.len() {
                        break;
                    }
                }
            }
        }
        Ok(Layouts(layouts))
    }

    /// Member name → offset for every member of a struct with a constant location.
    fn members(
        &self,
        node: gimli::EntriesTreeNode<'_, '_, '_, Slice<'_>>,
    ) -> Result<HashMap<String, u64>, OffsetsError> {
        let mut members = HashMap::new();
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_member {
                continue;
            }
            let location = entry
                .attr_value(gimli::DW_AT_data_member_location)?
                .and_then(|value| value.udata_value());
            if let (Some(name), Some(location)) = (self.name(entry)?, location) {
                members.insert(String::from_utf8_lossy(name).into_owned(), location);
            }
        }
        Ok(members)
    }

    /// `DW_AT_name` in the forms that need no per-unit base (`DW_FORM_strx` does; Go never uses it).
    fn name<'a>(
        &'a self,
        entry: &gimli::DebuggingInformationEntry<'_, '_, Slice<'a>>,
    ) -> Result<Option<&'a [u8]>, OffsetsError> {
        let name = match entry.attr_value(gimli::DW_AT_name)? {
            Some(gimli::AttributeValue::String(name)) => name,
            Some(gimli::AttributeValue::DebugStrRef(offset)) => self.str.get_str(offset)?,
            Some(gimli::AttributeValue::DebugLineStrRef(offset)) => {
                self.line_str.get_str(offset)?
            }
            _ => return Ok(None),
        };
        Ok(Some(name.slice()))
    }
}

/// Member offsets of the structs found, by struct name then member name.
struct Layouts(HashMap<&'static str, HashMap<String, u64>>);

impl Layouts {
    fn offsets(&self) -> Result<RuntimeOffsets, OffsetsError> {
        let g = |member| self.offset("runtime.g", member);
        let hchan = |member| self.offset("runtime.hchan", member);
        let stack = g("stack")?;
        // `g.stack` is an embedded `runtime.stack` struct, so its bounds are at a sum of offsets.
        let in_stack = |member| {
            stack
                .checked_add(self.offset("runtime.stack", member)?)
                .ok_or_else(|| OffsetsError::Field(format!("runtime.g.stack.{member}")))
        };
        let offsets = RuntimeOffsets {
            g_stack_lo: in_stack("lo")?,
            g_stack_hi: in_stack("hi")?,
            g_m: g("m")?,
            g_atomicstatus: g("atomicstatus")?,
            g_goid: g("goid")?,
            g_parent_goid: g("parentGoid")?,
            g_startpc: g("startpc")?,
            m_curg: self.offset("runtime.m", "curg")?,
            hchan_qcount: hchan("qcount")?,
            hchan_dataqsiz: hchan("dataqsiz")?,
            hchan_buf: hchan("buf")?,
            hchan_elemsize: hchan("elemsize")?,
            hchan_closed: hchan("closed")?,
            hchan_sendx: hchan("sendx")?,
            hchan_recvx: hchan("recvx")?,
            hchan_lock: hchan("lock")?,
            timer_callback: self.timer_callback()?,
            g_coroarg: g("coroarg").ok(),
            source: OffsetSource::Dwarf,
        };
        offsets.check_blocks_read()?;
        Ok(offsets)
    }

    /// `time.resetTimer` is passed a `*runtime.timer` up to Go 1.22 and, from 1.23, a
    /// `*runtime.timeTimer`, which embeds one; the callback is the second word of its `arg`.
    fn timer_callback(&self) -> Result<u16, OffsetsError> {
        let embedded = match self.0.contains_key("runtime.timeTimer") {
            true => self.offset("runtime.timeTimer", "timer")?,
            false => 0,
        };
        embedded
            .checked_add(self.offset("runtime.timer", "arg")?)
            .and_then(|arg| arg.checked_add(8))
            .ok_or_else(|| OffsetsError::Field("runtime.timer.arg".to_owned()))
    }

    fn offset(&self, structure: &str, member: &str) -> Result<u16, OffsetsError> {
        self.0
            .get(structure)
            .and_then(|members| members.get(member))
            .and_then(|&offset| u16::try_from(offset).ok())
            .ok_or_else(|| OffsetsError::Field(format!("{structure}.{member}")))
    }
}

/// How many times larger than its compressed bytes a section may claim to be. Go's zlib-compressed
/// DWARF decompresses to 2–3 times its size; a claim far beyond that is a malformed or hostile
/// header (a decompression bomb), refused before the buffer it names is allocated.
const MAX_DECOMPRESSION_RATIO: u64 = 64;

/// A section's contents, decompressed if needed; `None` when the file has no such section.
pub(crate) fn section_data<'data>(
    file: &object::File<'data>,
    name: &'static str,
) -> Result<Option<Cow<'data, [u8]>>, OffsetsError> {
    let Some(section) = file.section_by_name(name) else {
        return Ok(None);
    };
    let cannot_read = |source| OffsetsError::Section {
        section: name,
        source,
    };
    let range = section.compressed_file_range().map_err(cannot_read)?;
    if range.format != object::CompressionFormat::None
        && range.uncompressed_size
            > range
                .compressed_size
                .saturating_mul(MAX_DECOMPRESSION_RATIO)
    {
        return Err(OffsetsError::Oversized {
            section: name,
            compressed: range.compressed_size,
            uncompressed: range.uncompressed_size,
        });
    }
    section.uncompressed_data().map(Some).map_err(cannot_read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(minor: u32) -> GoVersion {
        GoVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }

    fn table(minor: u32) -> RuntimeOffsets {
        offsets_for_version(go(minor)).unwrap_or_else(|| panic!("no table for go1.{minor}"))
    }

    #[test]
    fn every_known_layout_fits_the_blocks_the_probes_read_and_another_is_refused() {
        for minor in 21..=27 {
            assert!(table(minor).check_blocks_read().is_ok(), "go1.{minor}");
        }
        let grown = RuntimeOffsets {
            g_startpc: 320,
            ..table(27)
        };
        let error = grown.check_blocks_read().unwrap_err();
        assert_eq!(
            error.to_string(),
            "runtime.g.startpc at byte 320 lies beyond the first 320 bytes the probes read"
        );
        let moved = RuntimeOffsets {
            hchan_elemsize: 32,
            ..table(27)
        };
        assert!(matches!(
            moved.check_blocks_read(),
            Err(OffsetsError::ChannelShape([8, 16, 32]))
        ));
    }

    /// The numbers published in docs/go-internals.md §4 (runtime.g) and §5 (hchan).
    #[test]
    fn table_matches_the_published_layouts() {
        // (minor, atomicstatus, goid, parentGoid, startpc, hchan.lock)
        let published = [
            (21, 144, 152, 272, 296, 88),
            (22, 144, 152, 272, 296, 88),
            (23, 152, 160, 280, 304, 96),
            (24, 152, 160, 280, 304, 96),
            (25, 144, 152, 272, 296, 104),
            (26, 144, 152, 280, 304, 104),
            (27, 144, 152, 280, 304, 104),
        ];
        for (minor, atomicstatus, goid, parent_goid, startpc, lock) in published {
            let offsets = table(minor);
            let actual = (
                offsets.g_atomicstatus,
                offsets.g_goid,
                offsets.g_parent_goid,
                offsets.g_startpc,
                offsets.hchan_lock,
            );
            assert_eq!(
                actual,
                (atomicstatus, goid, parent_goid, startpc, lock),
                "go1.{minor}"
            );
            // Same in every version: stack.lo/hi 0/8, m 48, hchan qcount 0 and closed 28.
            assert_eq!(
                (offsets.g_stack_lo, offsets.g_stack_hi, offsets.g_m),
                (0, 8, 48),
                "go1.{minor}"
            );
            assert_eq!(
                (offsets.hchan_qcount, offsets.hchan_closed),
                (0, 28),
                "go1.{minor}"
            );
            assert_eq!(offsets.source, OffsetSource::VersionTable);
        }
    }

    #[test]
    fn patch_releases_share_their_minor_layout() {
        let patched = GoVersion {
            patch: 13,
            ..go(21)
        };
        assert_eq!(offsets_for_version(patched), Some(table(21)));
    }

    #[test]
    fn unknown_versions_have_no_table() {
        for version in [go(20), go(28), GoVersion { major: 2, ..go(21) }] {
            assert_eq!(offsets_for_version(version), None, "{version}");
        }
    }

    /// An ELF file whose only section besides the names is `.debug_info`, compressed with zlib
    /// (`SHF_COMPRESSED`) as a stored block of `content`, its header claiming `claimed` bytes.
    fn elf_with_compressed_debug_info(content: &[u8], claimed: u64) -> Vec<u8> {
        let names = b"\0.shstrtab\0.debug_info\0";
        let mut section = Vec::new();
        for word in [1u32, 0] {
            section.extend(word.to_le_bytes()); // ch_type ELFCOMPRESS_ZLIB, reserved
        }
        section.extend(claimed.to_le_bytes()); // ch_size
        section.extend(1u64.to_le_bytes()); // ch_addralign
        let len = u16::try_from(content.len()).unwrap();
        section.extend([0x78, 0x01, 0x01]); // zlib header, a final stored block
        section.extend(len.to_le_bytes());
        section.extend((!len).to_le_bytes());
        section.extend(content);
        let (a, b) = content.iter().fold((1u32, 0u32), |(a, b), &byte| {
            let a = (a + u32::from(byte)) % 65_521;
            (a, (b + a) % 65_521)
        });
        section.extend(((b << 16) | a).to_be_bytes());

        let names_at = 64;
        let section_at = names_at + names.len();
        let headers_at = section_at + section.len();
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        elf.resize(16, 0);
        elf.extend(2u16.to_le_bytes()); // e_type EXEC
        elf.extend(62u16.to_le_bytes()); // e_machine x86-64
        elf.extend(1u32.to_le_bytes());
        elf.extend([0u64, 0, headers_at as u64].map(u64::to_le_bytes).concat());
        elf.extend(0u32.to_le_bytes());
        elf.extend([64u16, 56, 0, 64, 3, 1].map(u16::to_le_bytes).concat());
        elf.extend(names);
        elf.extend(&section);
        let header = |name: u32, kind: u32, flags: u64, offset: usize, size: usize| {
            let mut header = [name, kind].map(u32::to_le_bytes).concat();
            header.extend(
                [flags, 0, offset as u64, size as u64]
                    .map(u64::to_le_bytes)
                    .concat(),
            );
            header.extend([0u32, 0].map(u32::to_le_bytes).concat());
            header.extend([1u64, 0].map(u64::to_le_bytes).concat());
            header
        };
        elf.extend(vec![0; 64]);
        elf.extend(header(1, 3, 0, names_at, names.len())); // SHT_STRTAB
        elf.extend(header(11, 1, 0x800, section_at, section.len())); // SHF_COMPRESSED
        elf
    }

    #[test]
    fn compressed_sections_are_decompressed_within_a_bound() {
        let content = b"DWARF, compressed as a stored zlib block";
        let honest = elf_with_compressed_debug_info(content, content.len() as u64);
        let file = object::File::parse(&*honest).unwrap();
        let data = section_data(&file, ".debug_info").unwrap().unwrap();
        assert_eq!(&*data, content);

        // A header claiming a terabyte is refused before anything that large is allocated.
        let bomb = elf_with_compressed_debug_info(content, 1 << 40);
        let file = object::File::parse(&*bomb).unwrap();
        match section_data(&file, ".debug_info") {
            Err(OffsetsError::Oversized { uncompressed, .. }) => assert_eq!(uncompressed, 1 << 40),
            other => panic!("expected the section refused, got {other:?}"),
        }
        assert!(matches!(
            offsets_from_dwarf(&file),
            Err(OffsetsError::Oversized { .. })
        ));
    }

    /// This test executable has DWARF but no Go runtime types: incomplete DWARF is not trusted.
    #[test]
    fn dwarf_without_go_types_falls_back_or_fails() {
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let file = object::File::parse(&*data).unwrap();
        assert!(file.section_by_name(".debug_info").is_some());
        assert_eq!(runtime_offsets(&file, go(22)).unwrap(), table(22));
        match runtime_offsets(&file, go(28)) {
            Err(OffsetsError::UnknownLayout {
                dwarf: Some(problem),
                ..
            }) => assert!(
                matches!(&*problem, OffsetsError::Field(field) if field.starts_with("runtime.")),
                "{problem:?}"
            ),
            other => panic!("expected an unknown layout, got {other:?}"),
        }
    }
}
