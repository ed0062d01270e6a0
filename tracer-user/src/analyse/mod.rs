//! Stage 1, analyse: what a Go executable is. In: the executable's bytes (a path, or
//! `/proc/PID/exe`). Out: a [`GoBinary`] with its Go version, functions and inlined frames
//! (pclntab), load segments, runtime struct offsets (DWARF, or the version's known ones) and the
//! call sites of its synchronisation (disassembly). Pure functions of the file: no root, no
//! running process.

pub mod buildinfo;
pub mod disasm;
pub mod dwarf;
pub mod pclntab;
pub mod syncsites;
pub mod typed_atomics;
pub mod version;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use object::{Object as _, ObjectSection as _, ObjectSegment as _, ObjectSymbol as _};

pub use buildinfo::BuildInfo;
pub use dwarf::RuntimeField;
pub use version::GoVersion;

use crate::error::TracerError;

/// A function from the symbol table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub address: u64,
    pub size: u64,
}

/// A `PT_LOAD` segment: how virtual addresses map to file offsets.
#[derive(Clone, Copy, Debug)]
struct Segment {
    address: u64,
    size_in_file: u64,
    file_offset: u64,
}

/// How the runtime implements maps: it decides which functions iterate and how headers look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MapImplementation {
    /// `runtime.hmap` buckets: Go 1.21–1.23, and 1.24–1.25 built with `GOEXPERIMENT=noswissmap`.
    Classic,
    /// `internal/runtime/maps` Swiss tables: the default from Go 1.24.
    Swiss,
}

/// How the executable is linked (`go version -m` calls it the build mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    /// `ET_EXEC` without an interpreter: the default `go build`.
    Static,
    /// `ET_DYN` (`-buildmode=pie`): loaded at a random base; probes use file offsets anyway.
    Pie,
    /// `ET_EXEC` with an ELF interpreter (cgo, `-linkmode=external`).
    Dynamic,
}

/// Where function names and addresses come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolSource {
    /// The ELF symbol table.
    Symtab,
    /// `.gopclntab`, for stripped executables (`-ldflags=-s -w`).
    Pclntab,
}

/// An analysed Go executable.
#[derive(Debug)]
pub struct GoBinary {
    /// The name shown to the user (for `attach`, where `/proc/PID/exe` points).
    pub path: PathBuf,
    pub build_info: BuildInfo,
    pub version: GoVersion,
    pub maps: MapImplementation,
    pub linkage: Linkage,
    /// Runtime struct offsets the kernel programs read (DWARF, else the version's table).
    pub offsets: dwarf::RuntimeOffsets,
    /// Where the function table came from.
    pub symbols: SymbolSource,
    /// Go's own tables: symbolization and inline trees, stripped or not.
    pclntab: pclntab::Pclntab,
    functions: HashMap<String, Function>,
    segments: Vec<Segment>,
    data: Bytes,
}

/// An executable's bytes: mapped from its file (only the pages the analysis touches become
/// resident), or owned (tests that mutate executables).
#[derive(Debug)]
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Owned(bytes)
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(mapped) => mapped,
            Self::Owned(owned) => owned,
        }
    }
}

impl GoBinary {
    /// Reads and analyses the executable at `path`; errors name `display_path`.
    pub fn open(path: &Path, display_path: &Path) -> Result<Self, TracerError> {
        let file = std::fs::File::open(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::PermissionDenied => TracerError::NoPrivileges(format!(
                "cannot read {}: {error}",
                display_path.display()
            )),
            // A missing or unreadable file says nothing about what it would have been.
            _ => TracerError::Output {
                path: display_path.to_owned(),
                source: error,
            },
        })?;
        // SAFETY: the mapping is read-only and private. A running executable cannot be written
        // (ETXTBSY) and deployments replace binaries by renaming, which leaves this inode intact.
        let mapped =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|error| TracerError::NotGoProgram {
                path: display_path.to_owned(),
                reason: format!("cannot map the executable: {error}"),
            })?;
        Self::parse(display_path, Bytes::Mapped(mapped))
    }

    /// Analyses an executable's bytes.
    pub fn parse(path: &Path, data: impl Into<Bytes>) -> Result<Self, TracerError> {
        let data = data.into();
        let not_go = |reason: &str| TracerError::NotGoProgram {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let unsupported = |reason: String| TracerError::UnsupportedBinary {
            path: path.to_owned(),
            reason,
        };
        let file = object::File::parse(&*data).map_err(|_| not_go("not an ELF executable"))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(not_go("not an ELF executable"));
        }
        if file.architecture() != object::Architecture::X86_64 {
            return Err(unsupported(format!(
                "built for {:?}; tracer supports x86-64 only",
                file.architecture()
            )));
        }
        let segments: Vec<Segment> = file
            .segments()
            .map(|segment| {
                let (file_offset, size_in_file) = segment.file_range();
                Segment {
                    address: segment.address(),
                    size_in_file,
                    file_offset,
                }
            })
            .collect();
        let read_memory = |address: u64, len: usize| -> Option<Vec<u8>> {
            let offset = file_offset_in(&segments, address)?;
            let start = usize::try_from(offset).ok()?;
            data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
        };
        let section = file
            .section_by_name(".go.buildinfo")
            .ok_or_else(|| not_go("it has no Go build information (.go.buildinfo)"))?;
        let section_data = section
            .data()
            .map_err(|_| not_go("its .go.buildinfo section is unreadable"))?;
        let build_info = buildinfo::parse(section_data, read_memory)
            .map_err(|error| not_go(&error.to_string()))?;
        let version = GoVersion::parse(&build_info.version)
            .filter(|version| version.is_supported())
            .ok_or_else(|| TracerError::UnsupportedGoVersion {
                path: path.to_owned(),
                version: build_info.version.clone(),
            })?;
        let pclntab = pclntab::Pclntab::from_elf(&file, &data)
            .map_err(|error| unsupported(format!("unreadable Go function table: {error}")))?;
        let offsets = dwarf::runtime_offsets(&file, version)
            .map_err(|error| unsupported(error.to_string()))?;
        let maps = map_implementation(version, &build_info);
        let has_interpreter = file.section_by_name(".interp").is_some();
        let linkage = match (file.kind(), has_interpreter) {
            (object::ObjectKind::Dynamic, _) => Linkage::Pie,
            (_, true) => Linkage::Dynamic,
            _ => Linkage::Static,
        };
        let (symbols, functions) = if file.section_by_name(".symtab").is_some() {
            (SymbolSource::Symtab, symtab_functions(&file))
        } else {
            (SymbolSource::Pclntab, pclntab_functions(&pclntab))
        };
        Ok(Self {
            path: path.to_owned(),
            build_info,
            version,
            maps,
            linkage,
            offsets,
            symbols,
            pclntab,
            functions,
            segments,
            data,
        })
    }

    pub fn function(&self, name: &str) -> Option<Function> {
        self.functions.get(name).copied()
    }

    /// Function, file and line of `pc`, innermost inlined frame first (empty if unknown).
    pub fn symbolize(&self, pc: u64) -> Vec<pclntab::Frame> {
        self.pclntab.symbolize(pc)
    }

    /// The inline tree of the function that contains `address`.
    pub fn inlined_calls(&self, address: u64) -> Vec<pclntab::InlinedCall> {
        self.pclntab
            .function_at(address)
            .map(|function| self.pclntab.inlined_calls(&function))
            .unwrap_or_default()
    }

    /// The stack pointer's depth below its entry value over the function that starts at
    /// `entry` (see [`pclntab::Pclntab::stack_depths`]).
    pub fn stack_depths(&self, entry: u64) -> Vec<(std::ops::Range<u64>, i64)> {
        self.pclntab.stack_depths(entry)
    }

    /// Every function in address order (deterministic, unlike [`GoBinary::functions`]).
    pub fn functions_by_address(&self) -> Vec<(&str, Function)> {
        let mut functions: Vec<(&str, Function)> = self.functions().collect();
        functions.sort_by_key(|&(name, function)| (function.address, name));
        functions
    }

    /// Every function, by name, in no particular order.
    pub fn functions(&self) -> impl Iterator<Item = (&str, Function)> + '_ {
        self.functions
            .iter()
            .map(|(name, function)| (name.as_str(), *function))
    }

    /// The file offset of a virtual address, as uprobes want it (works for static and PIE alike).
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        file_offset_in(&self.segments, address)
    }

    /// The machine code of a function, as stored in the file.
    pub fn code(&self, function: Function) -> Option<&[u8]> {
        self.bytes_at(function.address, function.size)
    }

    /// Where the program's structs keep typed atomics and which registers point at them (from
    /// DWARF; empty for stripped binaries). Read on demand: only the probe plan needs it.
    pub fn typed_atomics(&self) -> typed_atomics::TypedAtomics {
        object::File::parse(&*self.data)
            .map(|file| typed_atomics::TypedAtomics::from_dwarf(&file))
            .unwrap_or_default()
    }

    /// Where the code starts (`.text`), the base of the text offsets in Go's method tables.
    pub fn text_start(&self) -> u64 {
        object::File::parse(&*self.data)
            .ok()
            .and_then(|file| Some(file.section_by_name(".text")?.address()))
            .unwrap_or(0)
    }

    /// The contents of every loaded section that is not code (read-only and writable data,
    /// type information, interface tables), as stored in the file; Go's function table
    /// (`.gopclntab`, which lists every function's offset) apart.
    pub fn data_sections(&self) -> Vec<&[u8]> {
        let Ok(file) = object::File::parse(&*self.data) else {
            return Vec::new();
        };
        file.sections()
            .filter(|section| section.name() != Ok(".gopclntab"))
            .filter(|section| {
                matches!(
                    section.kind(),
                    object::SectionKind::Data
                        | object::SectionKind::ReadOnlyData
                        | object::SectionKind::ReadOnlyDataWithRel
                )
            })
            .filter_map(|section| {
                let (offset, size) = section.file_range()?;
                self.data.get(
                    usize::try_from(offset).ok()?
                        ..usize::try_from(offset.checked_add(size)?).ok()?,
                )
            })
            .collect()
    }

    /// `len` bytes at a link-time virtual address, as stored in the file (code, read-only data).
    pub fn bytes_at(&self, address: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(self.file_offset(address)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }
}

fn symtab_functions(file: &object::File<'_>) -> HashMap<String, Function> {
    file.symbols()
        .filter(|symbol| symbol.kind() == object::SymbolKind::Text && symbol.address() != 0)
        .filter_map(|symbol| {
            let name = symbol.name().ok()?;
            let function = Function {
                address: symbol.address(),
                size: symbol.size(),
            };
            Some((name.to_owned(), function))
        })
        .collect()
}

/// pclntab names an assembly function and its ABI wrapper alike (`.symtab` adds `.abi0`); the
/// wrapper is the small one that calls the other, so the larger body keeps the name.
fn pclntab_functions(pclntab: &pclntab::Pclntab) -> HashMap<String, Function> {
    let mut functions: HashMap<String, Function> = HashMap::new();
    for entry in pclntab.functions() {
        let function = Function {
            address: entry.entry,
            size: entry.end.saturating_sub(entry.entry),
        };
        functions
            .entry(entry.name)
            .and_modify(|kept| {
                if function.size > kept.size {
                    *kept = function;
                }
            })
            .or_insert(function);
    }
    functions
}

/// Swiss tables from 1.24 on, unless the binary was built with `GOEXPERIMENT=noswissmap` (which
/// 1.24 and 1.25 accept and record in the build settings and the version string).
fn map_implementation(version: GoVersion, build_info: &BuildInfo) -> MapImplementation {
    let opted_out = build_info.version.contains("noswissmap")
        || build_info
            .setting("GOEXPERIMENT")
            .is_some_and(|experiments| experiments.split(',').any(|e| e == "noswissmap"));
    if version.minor >= 24 && !opted_out {
        MapImplementation::Swiss
    } else {
        MapImplementation::Classic
    }
}

fn file_offset_in(segments: &[Segment], address: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| address >= s.address && address - s.address < s.size_in_file)
        .and_then(|s| (address - s.address).checked_add(s.file_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect_not_go(data: Vec<u8>) {
        match GoBinary::parse(Path::new("x"), data) {
            Err(TracerError::NotGoProgram { .. }) => {}
            other => panic!("expected NotGoProgram, got {other:?}"),
        }
    }

    #[test]
    fn non_elf_input_is_not_a_go_program() {
        expect_not_go(Vec::new());
        expect_not_go(b"#!/bin/sh\necho hi\n".to_vec());
        expect_not_go(vec![0x7f, b'E', b'L', b'F', 2, 1, 1]);
    }

    #[test]
    fn a_c_program_is_not_a_go_program() {
        // This test binary itself: an x86-64 ELF file without .go.buildinfo.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        expect_not_go(me);
    }

    #[test]
    fn swiss_maps_from_1_24_unless_opted_out() {
        let info = |version: &str, experiment: Option<&str>| BuildInfo {
            version: version.into(),
            settings: experiment
                .map(|e| vec![("GOEXPERIMENT".to_owned(), e.to_owned())])
                .unwrap_or_default(),
        };
        let of = |text: &str, experiment| {
            map_implementation(GoVersion::parse(text).unwrap(), &info(text, experiment))
        };
        assert_eq!(of("go1.23.9", None), MapImplementation::Classic);
        assert_eq!(of("go1.24.11", None), MapImplementation::Swiss);
        assert_eq!(
            of("go1.24.11 X:noswissmap", None),
            MapImplementation::Classic
        );
        assert_eq!(
            of("go1.25.5", Some("noswissmap")),
            MapImplementation::Classic
        );
        assert_eq!(
            of("go1.25.5", Some("aliastypeparams,noswissmap")),
            MapImplementation::Classic
        );
        assert_eq!(of("go1.27.3", Some("greenteagc")), MapImplementation::Swiss);
    }

    #[test]
    fn segment_translation_respects_bounds() {
        let segments = [Segment {
            address: 0x40_0000,
            size_in_file: 0x1000,
            file_offset: 0,
        }];
        assert_eq!(file_offset_in(&segments, 0x40_0010), Some(0x10));
        assert_eq!(file_offset_in(&segments, 0x40_1000), None);
        assert_eq!(file_offset_in(&segments, 0x3f_ffff), None);
    }
}
