//! `.gopclntab`: Go's own function table, line tables and inline trees (present in stripped
//! binaries too).
//!
//! Layout of Go 1.20+ tables (magic `0xfffffff1`, unchanged through 1.27): a `pcHeader` whose
//! offsets locate the function name table, the compilation-unit file table, the file names, the
//! pc-value tables and the `functab` + `_func` records (`runtime/symtab.go`, `runtime2.go`). Two
//! things live outside the header and come from the module data (`runtime.moduledata`): the text
//! base that function entries are relative to (`pcHeader.textStart` is zero since Go 1.26) and
//! `gofunc`, the base of the funcdata that holds the inline trees.
//!
//! Addresses are link-time virtual addresses, for PIE binaries too. Assumes a single text section,
//! which is what the linker produces on amd64 (`moduledata.textsectmap` is ignored).

use std::ops::Range;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

/// `abi.Go120PCLnTabMagic`, used from Go 1.20 on.
const MAGIC: u32 = 0xffff_fff1;
const HEADER_LEN: usize = 72;
/// Fixed part of `runtime._func`; the `pcdata` and `funcdata` offset arrays follow it.
const FUNC_LEN: usize = 44;
/// `abi.PCDATA_InlTreeIndex`: per PC, the innermost inline tree entry (-1: the function itself).
const PCDATA_INL_TREE_INDEX: u32 = 2;
/// `abi.FUNCDATA_InlTree`: the function's array of `runtime.inlinedCall`.
const FUNCDATA_INL_TREE: u8 = 3;
/// Size of `runtime.inlinedCall` {funcID u8; _ [3]u8; nameOff i32; parentPc i32; startLine i32}.
const INLINED_CALL_LEN: usize = 16;
/// Longest chain of inlined frames followed at one PC, or ancestors counted for an inlined call;
/// only corrupt tables come close.
const MAX_INLINE_DEPTH: usize = 256;

/// `runtime.moduledata` field offsets that are the same in 1.21–1.27.
mod moduledata {
    pub const PC_HEADER: usize = 0;
    pub const FTAB: usize = 128;
    pub const TEXT: usize = 176;
    /// Go 1.27 inserted `typedesclen`, `itaboffset` and `itabsize` before `rodata` and `gofunc`;
    /// which slot points into `.rodata` tells the two layouts apart (its start when Go linked
    /// the binary, a little further in when an external linker put C constants first).
    pub const RODATA_GOFUNC: [(usize, usize); 2] = [(312, 320), (336, 344)];
    /// Enough for every field read here.
    pub const LEN: usize = 352;
}

#[derive(Debug, thiserror::Error)]
pub enum PclntabError {
    #[error("no .gopclntab section")]
    Missing,
    #[error("unsupported pclntab magic {0:#x} (tracer reads the Go 1.20+ format)")]
    Magic(u32),
    #[error("pclntab for {pointer_size}-byte pointers and {min_lc}-byte instructions, not x86-64")]
    Architecture { pointer_size: u8, min_lc: u8 },
    #[error("malformed pclntab: {0}")]
    Malformed(&'static str),
    #[error(
        "no module data describing .gopclntab (looked for runtime.firstmoduledata, .go.module \
         and .noptrdata)"
    )]
    NoModuledata,
    #[error(
        "unknown runtime.moduledata layout: no pointer into .rodata where Go 1.21-1.27 put it"
    )]
    ModuledataLayout,
}

/// A function of the table (the outer, physical function).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncEntry {
    pub name: String,
    pub entry: u64,
    /// End of its code, excluding the alignment padding before the next function.
    pub end: u64,
}

/// One logical frame at a PC: an inlined call or the outer function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// One entry of a function's inline tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlinedCall {
    pub callee: String,
    /// PCs where this call is the innermost inline frame (its nested calls have their own).
    pub ranges: Vec<Range<u64>>,
    /// An instruction whose source position is the call site (`entry + parentPc`).
    pub call_pc: u64,
    /// 0 when called directly from the outer function.
    pub depth: usize,
    /// Index of the enclosing inlined call in the same `Vec`.
    pub parent: Option<usize>,
}

/// A parsed `.gopclntab` with what it needs of the module data, owning its bytes.
#[derive(Debug)]
pub struct Pclntab {
    funcnametab: Vec<u8>,
    cutab: Vec<u8>,
    filetab: Vec<u8>,
    pctab: Vec<u8>,
    /// `functab` followed by the `_func` records it points to.
    pclntab: Vec<u8>,
    /// Per function, sorted by entry: (entry address, offset of its `_func` in `pclntab`).
    funcs: Vec<(u64, usize)>,
    /// The functab's final entry: the end of the last function.
    text_end: u64,
    /// From `moduledata.gofunc` to the end of its section: funcdata offsets index these bytes.
    gofunc: Vec<u8>,
}

impl Pclntab {
    /// Locates .gopclntab and the module data (moduledata) in an ELF file and copies what later
    /// lookups need. Errors when either is missing or the table's structure is inconsistent;
    /// damage inside individual records only shows up later, as missing results.
    pub fn from_elf(file: &object::File<'_>, data: &[u8]) -> Result<Self, PclntabError> {
        let image = Image::new(file, data);
        // PIE builds before Go 1.26 name it after the relro segment it lives in.
        let (table_address, table) = [".gopclntab", ".data.rel.ro.gopclntab"]
            .into_iter()
            .find_map(|name| image.section(file, name))
            .ok_or(PclntabError::Missing)?;
        let header = Header::parse(table)?;
        let module = Module::find(file, &image, table_address, &header)?;
        let slice = |range: Range<usize>| table[range].to_vec();
        let pclntab = slice(header.pclntab.clone());
        let (funcs, text_end) = parse_functab(&pclntab, header.nfunc, module.text)?;
        Ok(Self {
            funcnametab: slice(header.funcnametab),
            cutab: slice(header.cutab),
            filetab: slice(header.filetab),
            pctab: slice(header.pctab),
            pclntab,
            funcs,
            text_end,
            gofunc: module.gofunc.to_vec(),
        })
    }

    /// Every function, sorted by entry.
    pub fn functions(&self) -> Vec<FuncEntry> {
        (0..self.funcs.len())
            .filter_map(|index| self.func(index))
            .map(|func| self.func_entry(&func))
            .collect()
    }

    /// The (outer) function containing `pc`.
    pub fn function_at(&self, pc: u64) -> Option<FuncEntry> {
        self.func_containing(pc).map(|func| self.func_entry(&func))
    }

    /// The logical frames at `pc`: innermost inlined frame first, outer function last. Each
    /// frame's file:line is its position at `pc` or at the call it made, so the first frame has
    /// the position `go tool addr2line` prints. Empty when no function contains `pc`.
    pub fn symbolize(&self, pc: u64) -> Vec<Frame> {
        let Some(func) = self.func_containing(pc) else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        let mut at = pc;
        while frames.len() < MAX_INLINE_DEPTH {
            let Some(call) = self.inlined_call_at(&func, at) else {
                break;
            };
            frames.push(self.frame(&func, call.name_off, at));
            match func.entry.checked_add_signed(call.parent_pc.into()) {
                Some(parent_pc) => at = parent_pc,
                None => break,
            }
        }
        frames.push(self.frame(&func, func.name_off, at));
        frames
    }

    /// The inline tree of one function, indexed like the binary's tree. Empty when the function
    /// inlined nothing or its tree is malformed.
    pub fn inlined_calls(&self, function: &FuncEntry) -> Vec<InlinedCall> {
        self.try_inlined_calls(function).unwrap_or_default()
    }

    fn try_inlined_calls(&self, function: &FuncEntry) -> Option<Vec<InlinedCall>> {
        let index = self
            .funcs
            .binary_search_by_key(&function.entry, |&(entry, _)| entry)
            .ok()?;
        let func = self.func(index)?;
        let tree = self.inline_tree(&func)?;
        // The PCs where each tree entry is innermost, by index. Entries whose code was optimized
        // away own no PC but keep their index. Parents own their children's call PCs, so every
        // parent index appears in the table.
        let mut innermost: Vec<Vec<Range<u64>>> = Vec::new();
        // Read once: each entry's parent is looked up in it (a scan of the table per entry was
        // quadratic in a crafted function's size).
        let indices: Vec<(i32, Range<u64>)> = self
            .pc_values(func.pcdata(PCDATA_INL_TREE_INDEX)?, func.entry)?
            .collect();
        for (value, range) in indices.iter().cloned() {
            let Ok(index) = usize::try_from(value) else {
                continue; // -1: the outer function's own code
            };
            if index >= tree.len() / INLINED_CALL_LEN {
                return None;
            }
            if index >= innermost.len() {
                innermost.resize_with(index + 1, Vec::new);
            }
            match innermost[index].last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => innermost[index].push(range),
            }
        }
        let mut calls = innermost
            .into_iter()
            .enumerate()
            .map(|(index, ranges)| {
                let raw = RawInlinedCall::read(tree, index)?;
                let call_pc = func.entry.checked_add_signed(raw.parent_pc.into())?;
                Some(InlinedCall {
                    callee: self.name(raw.name_off),
                    ranges,
                    call_pc,
                    depth: 0,
                    parent: index_at(&indices, call_pc),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        for index in 0..calls.len() {
            let mut ancestor = calls[index].parent;
            while let Some(parent) = ancestor {
                calls[index].depth += 1;
                // A cycle, or a chain no compiler makes: walking it from each of its entries
                // would take time quadratic in the table's size.
                if calls[index].depth > MAX_INLINE_DEPTH {
                    return None;
                }
                ancestor = calls.get(parent)?.parent;
            }
        }
        Some(calls)
    }

    /// How far below its entry value the stack pointer is, over the PCs of the function that
    /// starts at `entry` (the `pcsp` table; the canonical frame address is `RSP + depth + 8`).
    pub fn stack_depths(&self, entry: u64) -> Vec<(Range<u64>, i64)> {
        let Ok(index) = self.funcs.binary_search_by_key(&entry, |&(entry, _)| entry) else {
            return Vec::new();
        };
        let Some(func) = self.func(index) else {
            return Vec::new();
        };
        self.pc_values(func.pcsp, func.entry)
            .map(|values| {
                values
                    .map(|(depth, range)| (range, i64::from(depth)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn func(&self, index: usize) -> Option<Func<'_>> {
        let &(entry, offset) = self.funcs.get(index)?;
        let limit = self
            .funcs
            .get(index + 1)
            .map_or(self.text_end, |&(next, _)| next);
        Func::parse(entry, limit, self.pclntab.get(offset..)?)
    }

    fn func_containing(&self, pc: u64) -> Option<Func<'_>> {
        let index = self
            .funcs
            .partition_point(|&(entry, _)| entry <= pc)
            .checked_sub(1)?;
        let func = self.func(index)?;
        (pc < self.end(&func)).then_some(func)
    }

    fn func_entry(&self, func: &Func<'_>) -> FuncEntry {
        FuncEntry {
            name: self.name(func.name_off),
            entry: func.entry,
            end: self.end(func),
        }
    }

    /// Where the function's code ends: every pc-value table covers exactly the function's code,
    /// while the next entry also counts the alignment padding.
    fn end(&self, func: &Func<'_>) -> u64 {
        self.pc_values(func.pcsp, func.entry)
            .and_then(Iterator::last)
            .map(|(_, range)| range.end)
            .filter(|&end| end > func.entry && end <= func.limit)
            .unwrap_or(func.limit)
    }

    /// A frame named `name_off` at `pc`; its position is "?":0 if unknown, as in the runtime.
    fn frame(&self, func: &Func<'_>, name_off: u32, pc: u64) -> Frame {
        let (file, line) = self
            .file_line(func, pc)
            .unwrap_or_else(|| ("?".to_owned(), 0));
        Frame {
            function: self.name(name_off),
            file,
            line,
        }
    }

    /// Like the runtime's `funcline1`.
    fn file_line(&self, func: &Func<'_>, pc: u64) -> Option<(String, u32)> {
        let file_index = u32::try_from(self.pc_value(func.pcfile, func.entry, pc)?).ok()?;
        let line = u32::try_from(self.pc_value(func.pcln, func.entry, pc)?).ok()?;
        let cu_slot = func.cu_offset.checked_add(file_index)? as usize;
        let file_offset = read_u32(&self.cutab, cu_slot.checked_mul(4)?)?;
        let file = c_string(&self.filetab, file_offset)?;
        Some((String::from_utf8_lossy(file).into_owned(), line))
    }

    fn name(&self, name_off: u32) -> String {
        c_string(&self.funcnametab, name_off).map_or_else(
            || "?".to_owned(),
            |name| String::from_utf8_lossy(name).into_owned(),
        )
    }

    /// The function's `runtime.inlinedCall` array, up to the end of the funcdata.
    fn inline_tree(&self, func: &Func<'_>) -> Option<&[u8]> {
        let offset = func.funcdata(FUNCDATA_INL_TREE)?;
        self.gofunc.get(offset as usize..)
    }

    /// Index in the inline tree of the innermost inlined call at `pc`.
    fn inline_index(&self, func: &Func<'_>, pc: u64) -> Option<usize> {
        let value = self.pc_value(func.pcdata(PCDATA_INL_TREE_INDEX)?, func.entry, pc)?;
        usize::try_from(value).ok()
    }

    /// The innermost inlined call at `pc`, if `pc` is in inlined code.
    fn inlined_call_at(&self, func: &Func<'_>, pc: u64) -> Option<RawInlinedCall> {
        RawInlinedCall::read(self.inline_tree(func)?, self.inline_index(func, pc)?)
    }

    /// The pc-value table at `offset` in `pctab` (offset 0 means the function has none).
    fn pc_values(&self, offset: u32, entry: u64) -> Option<PcValues<'_>> {
        if offset == 0 {
            return None;
        }
        Some(PcValues::new(self.pctab.get(offset as usize..)?, entry))
    }

    /// Like the runtime's `pcvalue`: the table's value at `pc`.
    fn pc_value(&self, offset: u32, entry: u64, pc: u64) -> Option<i32> {
        self.pc_values(offset, entry)?
            .find(|(_, range)| pc < range.end)
            .map(|(value, _)| value)
    }
}

/// A `runtime._func` record (layout identical in Go 1.21–1.27) and the address range the
/// functab gives it. Offsets are `u32`, so `as usize` is lossless on the 64-bit hosts supported.
struct Func<'a> {
    entry: u64,
    /// The next function's entry (or the end of text for the last one).
    limit: u64,
    name_off: u32,
    pcsp: u32,
    pcfile: u32,
    pcln: u32,
    npcdata: u32,
    cu_offset: u32,
    nfuncdata: u8,
    /// What follows the fixed part: `pcdata [npcdata]u32`, then `funcdata [nfuncdata]u32`.
    tables: &'a [u8],
}

impl<'a> Func<'a> {
    fn parse(entry: u64, limit: u64, record: &'a [u8]) -> Option<Self> {
        let field = |offset| read_u32(record, offset);
        Some(Self {
            entry,
            limit,
            name_off: field(4)?,
            pcsp: field(16)?,
            pcfile: field(20)?,
            pcln: field(24)?,
            npcdata: field(28)?,
            cu_offset: field(32)?,
            nfuncdata: *record.get(FUNC_LEN - 1)?,
            tables: record.get(FUNC_LEN..)?,
        })
    }

    /// Offset in `pctab` of pc-data table `table`.
    fn pcdata(&self, table: u32) -> Option<u32> {
        if table >= self.npcdata {
            return None;
        }
        read_u32(self.tables, 4 * table as usize)
    }

    /// Offset from `moduledata.gofunc` of funcdata `index`.
    fn funcdata(&self, index: u8) -> Option<u32> {
        if index >= self.nfuncdata {
            return None;
        }
        let slot = (self.npcdata as usize).checked_add(index.into())?;
        read_u32(self.tables, slot.checked_mul(4)?).filter(|&offset| offset != u32::MAX)
    }
}

/// The fields of a `runtime.inlinedCall` used here.
struct RawInlinedCall {
    name_off: u32,
    parent_pc: i32,
}

impl RawInlinedCall {
    fn read(tree: &[u8], index: usize) -> Option<Self> {
        let start = index.checked_mul(INLINED_CALL_LEN)?;
        let entry = tree.get(start..start.checked_add(INLINED_CALL_LEN)?)?;
        Some(Self {
            name_off: read_u32(entry, 4)?,
            parent_pc: read_u32(entry, 8)? as i32,
        })
    }
}

/// Decodes a pc-value table: (value, PCs it holds for) pairs, starting at the function entry.
/// Each step is a zig-zag varint value delta then a varint PC delta (PC quantum 1 on amd64); a
/// zero value delta after the first step ends the table. Stops early at malformed data.
struct PcValues<'a> {
    data: &'a [u8],
    pc: u64,
    value: i32,
    first: bool,
}

impl<'a> PcValues<'a> {
    fn new(data: &'a [u8], entry: u64) -> Self {
        Self {
            data,
            pc: entry,
            value: -1,
            first: true,
        }
    }

    fn step(&mut self) -> Option<(i32, Range<u64>)> {
        let value_delta = read_varint(&mut self.data).filter(|&delta| delta != 0 || self.first)?;
        let pc_delta = read_varint(&mut self.data)?;
        let end = self.pc.checked_add(pc_delta.into())?;
        self.first = false;
        self.value = self.value.wrapping_add(zigzag(value_delta));
        let start = std::mem::replace(&mut self.pc, end);
        Some((self.value, start..end))
    }
}

impl Iterator for PcValues<'_> {
    type Item = (i32, Range<u64>);

    fn next(&mut self) -> Option<Self::Item> {
        let step = self.step();
        if step.is_none() {
            self.data = &[];
        }
        step
    }
}

/// The inline-tree index at `pc` in a function's table of them, read in full (as
/// [`Pclntab::inline_index`], by binary search: the table's ranges are in ascending order).
fn index_at(indices: &[(i32, Range<u64>)], pc: u64) -> Option<usize> {
    let at = indices.partition_point(|(_, range)| range.end <= pc);
    usize::try_from(indices.get(at)?.0).ok()
}

/// The runtime's `readvarint`: little-endian base 128, at most 5 bytes for a `u32`.
fn read_varint(data: &mut &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for (index, &byte) in data.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *data = &data[index + 1..];
            return Some(value);
        }
    }
    None
}

fn zigzag(value: u32) -> i32 {
    ((value >> 1) as i32) ^ -((value & 1) as i32)
}

/// The `pcHeader` fields and the byte ranges of the tables it locates in `.gopclntab`.
struct Header {
    nfunc: usize,
    text_start: u64,
    funcnametab: Range<usize>,
    cutab: Range<usize>,
    filetab: Range<usize>,
    pctab: Range<usize>,
    pclntab: Range<usize>,
}

impl Header {
    fn parse(table: &[u8]) -> Result<Self, PclntabError> {
        let truncated = || PclntabError::Malformed("truncated header");
        let magic = read_u32(table, 0).ok_or_else(truncated)?;
        if magic != MAGIC {
            return Err(PclntabError::Magic(magic));
        }
        if table.len() < HEADER_LEN {
            return Err(truncated());
        }
        let (min_lc, pointer_size) = (table[6], table[7]);
        if (min_lc, pointer_size) != (1, 8) {
            return Err(PclntabError::Architecture {
                pointer_size,
                min_lc,
            });
        }
        let word = |offset| read_u64(table, offset).ok_or_else(truncated);
        let offset = |offset| {
            usize::try_from(word(offset)?).map_err(|_| PclntabError::Malformed("table offset"))
        };
        // The linker lays the tables out in this order after the header, each up to the next.
        let bounds = [
            HEADER_LEN,
            offset(32)?, // funcnametab
            offset(40)?, // cutab
            offset(48)?, // filetab
            offset(56)?, // pctab
            offset(64)?, // functab and _func records
            table.len(),
        ];
        if bounds.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(PclntabError::Malformed("header offsets out of order"));
        }
        let table = |index: usize| bounds[index + 1]..bounds[index + 2];
        Ok(Self {
            nfunc: offset(8)?,
            text_start: word(24)?,
            funcnametab: table(0),
            cutab: table(1),
            filetab: table(2),
            pctab: table(3),
            pclntab: table(4),
        })
    }
}

/// Reads the functab: (entry, `_func` offset) per function and the end of the last function,
/// checking that entries ascend and that every fixed-size record is in bounds.
fn parse_functab(
    pclntab: &[u8],
    nfunc: usize,
    text: u64,
) -> Result<(Vec<(u64, usize)>, u64), PclntabError> {
    let malformed = PclntabError::Malformed;
    // nfunc entries, then one holding the end of the last function.
    let len = nfunc
        .checked_add(1)
        .and_then(|n| n.checked_mul(8))
        .filter(|&len| len <= pclntab.len())
        .ok_or(malformed("functab larger than the table"))?;
    let (slots, last) = pclntab[..len].split_at(len - 8);
    let address = |entry_off: u32| {
        text.checked_add(entry_off.into())
            .ok_or(malformed("function address overflows"))
    };
    let mut funcs: Vec<(u64, usize)> = Vec::with_capacity(nfunc);
    for slot in slots.chunks_exact(8) {
        let entry = address(read_u32(slot, 0).unwrap_or_default())?;
        let offset = usize::try_from(read_u32(slot, 4).unwrap_or_default())
            .ok()
            .filter(|&offset| {
                offset
                    .checked_add(FUNC_LEN)
                    .is_some_and(|end| end <= pclntab.len())
            })
            .ok_or(malformed("function record out of bounds"))?;
        funcs.push((entry, offset));
    }
    let text_end = address(read_u32(last, 0).unwrap_or_default())?;
    let entries = funcs.iter().map(|&(entry, _)| entry).chain([text_end]);
    if entries.clone().zip(entries.skip(1)).any(|(a, b)| a > b) {
        return Err(malformed("functab not sorted"));
    }
    Ok((funcs, text_end))
}

/// What is needed from `runtime.moduledata`.
struct Module<'d> {
    /// `runtime.text`: the base of function entry offsets.
    text: u64,
    /// The funcdata, from `moduledata.gofunc` to the end of its section.
    gofunc: &'d [u8],
}

impl<'d> Module<'d> {
    /// Tries, in order: the `runtime.firstmoduledata` symbol (not in stripped binaries), the
    /// `.go.module` section (Go 1.26+), then every word of `.noptrdata` that points to the table.
    fn find(
        file: &object::File<'_>,
        image: &Image<'d>,
        table_address: u64,
        header: &Header,
    ) -> Result<Self, PclntabError> {
        let symbol = file
            .symbols()
            .find(|symbol| symbol.name() == Ok("runtime.firstmoduledata"))
            .map(|symbol| symbol.address());
        let section = |name| file.section_by_name(name);
        let go_module = section(".go.module").map(|section| section.address());
        let scanned = image
            .section(file, ".noptrdata")
            .into_iter()
            .flat_map(|(start, bytes)| {
                bytes
                    .chunks_exact(8)
                    .zip(0u64..)
                    .filter(|(word, _)| read_u64(word, 0) == Some(table_address))
                    .filter_map(move |(_, index)| start.checked_add(index * 8))
            });
        let rodata = section(".rodata").and_then(|section| {
            Some(section.address()..section.address().checked_add(section.size())?)
        });
        for address in symbol.into_iter().chain(go_module).chain(scanned) {
            if let Some(module) = Self::read(image, address, table_address, header, rodata.clone())?
            {
                return Ok(module);
            }
        }
        Err(PclntabError::NoModuledata)
    }

    /// Ok(None) if the words at `address` are not the module data of this table.
    fn read(
        image: &Image<'d>,
        address: u64,
        table_address: u64,
        header: &Header,
        rodata: Option<Range<u64>>,
    ) -> Result<Option<Self>, PclntabError> {
        let Some(bytes) = image
            .bytes_from(address)
            .filter(|b| b.len() >= moduledata::LEN)
        else {
            return Ok(None);
        };
        let field = |offset| read_u64(bytes, offset).unwrap_or_default();
        let ftab = table_address.checked_add(header.pclntab.start as u64);
        let text = field(moduledata::TEXT);
        let describes_table = field(moduledata::PC_HEADER) == table_address
            && Some(field(moduledata::FTAB)) == ftab
            && Some(field(moduledata::FTAB + 8)) == header.nfunc.checked_add(1).map(|n| n as u64)
            && (header.text_start == 0 || header.text_start == text);
        if !describes_table {
            return Ok(None);
        }
        let gofunc = moduledata::RODATA_GOFUNC
            .into_iter()
            .find(|&(rodata_offset, _)| {
                rodata
                    .as_ref()
                    .is_some_and(|rodata| rodata.contains(&field(rodata_offset)))
            })
            .map(|(_, gofunc_offset)| field(gofunc_offset))
            .ok_or(PclntabError::ModuledataLayout)?;
        let gofunc = image.bytes_from(gofunc).ok_or(PclntabError::Malformed(
            "moduledata.gofunc is not in any section",
        ))?;
        Ok(Some(Self { text, gofunc }))
    }
}

/// The file-backed sections of the ELF file: its static data, addressed like in memory.
struct Image<'d> {
    sections: Vec<(u64, &'d [u8])>,
    data: &'d [u8],
}

impl<'d> Image<'d> {
    fn new(file: &object::File<'_>, data: &'d [u8]) -> Self {
        let sections = file
            .sections()
            .filter(|section| section.address() != 0)
            .filter_map(|section| Some((section.address(), file_bytes(&section, data)?)))
            .collect();
        Self { sections, data }
    }

    /// The bytes from `address` to the end of the section that contains it.
    fn bytes_from(&self, address: u64) -> Option<&'d [u8]> {
        self.sections.iter().find_map(|&(start, bytes)| {
            let offset = usize::try_from(address.checked_sub(start)?).ok()?;
            (offset < bytes.len()).then(|| &bytes[offset..])
        })
    }

    /// A section's address and bytes.
    fn section(&self, file: &object::File<'_>, name: &str) -> Option<(u64, &'d [u8])> {
        let section = file.section_by_name(name)?;
        Some((section.address(), file_bytes(&section, self.data)?))
    }
}

/// A section's contents in the file (None for `SHT_NOBITS`).
fn file_bytes<'d>(section: &object::Section<'_, '_>, data: &'d [u8]) -> Option<&'d [u8]> {
    let (offset, size) = section.file_range()?;
    let start = usize::try_from(offset).ok()?;
    data.get(start..start.checked_add(usize::try_from(size).ok()?)?)
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let bytes = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let bytes = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The NUL-terminated string at `offset`.
fn c_string(bytes: &[u8], offset: u32) -> Option<&[u8]> {
    let rest = bytes.get(usize::try_from(offset).ok()?..)?;
    Some(&rest[..rest.iter().position(|&b| b == 0)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut data: &[u8] = &[0x05, 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f];
        assert_eq!(read_varint(&mut data), Some(5));
        assert_eq!(read_varint(&mut data), Some(128));
        assert_eq!(read_varint(&mut data), Some(u32::MAX));
        assert_eq!(data, [0x7f]);
    }

    #[test]
    fn unterminated_and_overlong_varints_are_rejected() {
        for bytes in [&[][..], &[0x80], &[0xff, 0xff], &[0x80; 6]] {
            assert_eq!(read_varint(&mut &bytes[..]), None, "{bytes:x?}");
        }
    }

    #[test]
    fn zigzag_alternates_signs() {
        let decoded = [0, 1, 2, 3, 4, 0xffff_fffe, u32::MAX].map(zigzag);
        assert_eq!(decoded, [0, -1, 1, -2, 2, i32::MAX, i32::MIN]);
    }

    fn decode(bytes: &[u8], entry: u64) -> Vec<(i32, Range<u64>)> {
        PcValues::new(bytes, entry).collect()
    }

    #[test]
    fn pc_value_tables_decode_to_ranges() {
        // -1 → 0 (+1, zig-zag 2) for 5 bytes, → 2 (+2: 4) for 0x100 bytes (varint 0x80 0x02),
        // → -1 (-3: 5) for 3 bytes, end.
        let table = [0x02, 0x05, 0x04, 0x80, 0x02, 0x05, 0x03, 0x00];
        assert_eq!(
            decode(&table, 0x1000),
            [
                (0, 0x1000..0x1005),
                (2, 0x1005..0x1105),
                (-1, 0x1105..0x1108)
            ]
        );
        // Only the first value delta may be zero (the value stays -1).
        assert_eq!(
            decode(&[0x00, 0x04, 0x02, 0x04, 0x00], 0x10),
            [(-1, 0x10..0x14), (0, 0x14..0x18)]
        );
    }

    #[test]
    fn malformed_pc_value_tables_stop() {
        // Truncated after a value delta, and before the terminator.
        assert_eq!(decode(&[0x02, 0x05, 0x04], 0), [(0, 0..5)]);
        assert_eq!(decode(&[0x02, 0x05], 0), [(0, 0..5)]);
        // A PC past the end of the address space.
        assert_eq!(
            decode(&[0x02, 0x05, 0x02, 0x05, 0x00], u64::MAX - 6),
            [(0, u64::MAX - 6..u64::MAX - 1)]
        );
        let mut values = PcValues::new(&[0x02, 0xff], 0);
        assert_eq!((values.next(), values.next()), (None, None));
    }

    /// A Go 1.21 header (text at 0x1000) and tables of the given lengths.
    fn header(tables: [usize; 5]) -> Vec<u8> {
        let mut bytes = MAGIC.to_le_bytes().to_vec();
        bytes.extend([0, 0, 1, 8]);
        for word in [1, 1, 0x1000] {
            bytes.extend(u64::to_le_bytes(word));
        }
        let mut offset = HEADER_LEN;
        for len in tables {
            bytes.extend((offset as u64).to_le_bytes());
            offset += len;
        }
        bytes.resize(offset, 0);
        bytes
    }

    #[test]
    fn header_locates_the_tables() {
        let parsed = Header::parse(&header([8, 4, 6, 10, 20])).unwrap();
        assert_eq!((parsed.nfunc, parsed.text_start), (1, 0x1000));
        assert_eq!(
            [
                parsed.funcnametab,
                parsed.cutab,
                parsed.filetab,
                parsed.pctab,
                parsed.pclntab
            ],
            [72..80, 80..84, 84..90, 90..100, 100..120]
        );
    }

    #[test]
    fn bad_headers_are_errors() {
        let good = header([8, 4, 6, 10, 20]);
        let with = |offset: usize, bytes: &[u8]| {
            let mut table = good.clone();
            table[offset..offset + bytes.len()].copy_from_slice(bytes);
            Header::parse(&table).err().unwrap()
        };
        assert!(matches!(with(0, &[0xf0]), PclntabError::Magic(0xffff_fff0)));
        assert!(matches!(
            with(6, &[4, 4]),
            PclntabError::Architecture {
                pointer_size: 4,
                min_lc: 4
            }
        ));
        // cutab before funcnametab; pclntab past the end.
        assert!(matches!(with(40, &[0x10]), PclntabError::Malformed(_)));
        assert!(matches!(with(64, &[0xff]), PclntabError::Malformed(_)));
        for len in [0, 3, 40] {
            assert!(Header::parse(&good[..len]).is_err(), "{len} bytes");
        }
    }

    /// A functab of (entryoff, funcoff) slots, the last one the end, followed by 2 records.
    fn functab(slots: &[(u32, u32)]) -> Vec<u8> {
        let mut bytes: Vec<u8> = slots
            .iter()
            .flat_map(|&(entry, func)| [entry.to_le_bytes(), func.to_le_bytes()])
            .flatten()
            .collect();
        bytes.resize(bytes.len() + 2 * FUNC_LEN, 0);
        bytes
    }

    #[test]
    fn functab_gives_entries_and_end() {
        let table = functab(&[(0, 24), (0x40, 24 + 44), (0x48, 0)]);
        assert_eq!(
            parse_functab(&table, 2, 0x40_1000).unwrap(),
            (vec![(0x40_1000, 24), (0x40_1040, 68)], 0x40_1048)
        );
    }

    #[test]
    fn bad_functabs_are_errors() {
        for (slots, nfunc) in [
            (&[(0x40, 24), (0, 68), (0x48, 0)][..], 2), // not sorted
            (&[(0, 24), (0x40, 69), (0x48, 0)], 2),     // record past the end
            (&[(0, 24), (0x40, 68), (0x48, 0)], 1000),  // more functions than slots
            (&[(0, 24), (0x40, 68), (0x38, 0)], 2),     // end before the last entry
        ] {
            let result = parse_functab(&functab(slots), nfunc, 0x1000);
            assert!(result.is_err(), "{slots:x?}: {result:x?}");
        }
    }

    /// Encodes a pc-value table of (value, byte count) runs, the way the Go compiler does.
    fn encode(runs: &[(i32, u32)]) -> Vec<u8> {
        fn varint(mut value: u32, out: &mut Vec<u8>) {
            while value >= 0x80 {
                out.push(value as u8 | 0x80);
                value >>= 7;
            }
            out.push(value as u8);
        }
        let mut out = Vec::new();
        let mut previous = -1;
        for &(value, len) in runs {
            let delta = value - previous;
            varint(((delta << 1) ^ (delta >> 31)) as u32, &mut out);
            varint(len, &mut out);
            previous = value;
        }
        out.push(0);
        out
    }

    /// main.f at 0x1000 (16 bytes, then padding) inlines pkg.A at 0x1002, and pkg.A inlines
    /// pkg.B at 0x1006; main.g at 0x1020 (8 bytes) has a size but no line table.
    fn synthetic() -> Pclntab {
        let mut pctab = vec![0]; // offset 0 means "no table"
        let mut add = |runs: &[(i32, u32)]| {
            let offset = pctab.len() as u32;
            pctab.extend(encode(runs));
            offset
        };
        let f_pcsp = add(&[(0, 16)]);
        let f_file = add(&[(0, 2), (1, 8), (0, 6)]);
        let f_line = add(&[(10, 2), (20, 4), (30, 2), (21, 2), (11, 6)]);
        let f_inline = add(&[(-1, 2), (0, 4), (1, 2), (0, 2), (-1, 6)]);
        let g_pcsp = add(&[(8, 8)]);

        let funcnametab = b"main.f\0main.g\0pkg.A\0pkg.B\0".to_vec();
        let filetab = b"main.go\0a.go\0".to_vec();
        let cutab = [0u32, 8].iter().flat_map(|o| o.to_le_bytes()).collect();
        // nameOff, pcsp, pcfile, pcln, npcdata, nfuncdata; then pcdata[], funcdata[].
        let record = |name: u32, pc: [u32; 3], pcdata: &[u32], funcdata: &[u32]| {
            let mut bytes = vec![0; FUNC_LEN];
            for (offset, value) in [(4, name), (16, pc[0]), (20, pc[1]), (24, pc[2])] {
                bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            }
            bytes[28..32].copy_from_slice(&(pcdata.len() as u32).to_le_bytes());
            bytes[43] = funcdata.len() as u8;
            bytes.extend(pcdata.iter().chain(funcdata).flat_map(|v| v.to_le_bytes()));
            bytes
        };
        let mut pclntab = record(
            0,
            [f_pcsp, f_file, f_line],
            &[0, 0, f_inline],
            &[!0, !0, !0, 0],
        );
        let g_offset = pclntab.len();
        pclntab.extend(record(7, [g_pcsp, 0, 0], &[], &[]));
        // {funcID, _, nameOff, parentPc, startLine}: pkg.A called at 0x1001, pkg.B at 0x1003.
        let gofunc = [[0, 14, 1, 0], [0, 20, 3, 0]]
            .iter()
            .flatten()
            .flat_map(|v: &u32| v.to_le_bytes())
            .collect();
        Pclntab {
            funcnametab,
            cutab,
            filetab,
            pctab,
            pclntab,
            funcs: vec![(0x1000, 0), (0x1020, g_offset)],
            text_end: 0x1030,
            gofunc,
        }
    }

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    #[test]
    fn functions_end_where_their_tables_end() {
        let table = synthetic();
        let entry = |name: &str, entry, end| FuncEntry {
            name: name.into(),
            entry,
            end,
        };
        let (f, g) = (
            entry("main.f", 0x1000, 0x1010),
            entry("main.g", 0x1020, 0x1028),
        );
        assert_eq!(table.functions(), [f.clone(), g.clone()]);
        assert_eq!(table.function_at(0x1000), Some(f.clone()));
        assert_eq!(table.function_at(0x100f), Some(f));
        assert_eq!(table.function_at(0x1027), Some(g));
        for padding in [0xfff, 0x1010, 0x101f, 0x1028, 0x1030] {
            assert_eq!(table.function_at(padding), None, "{padding:#x}");
            assert_eq!(table.symbolize(padding), [], "{padding:#x}");
        }
    }

    #[test]
    fn symbolize_walks_the_inline_tree() {
        let table = synthetic();
        assert_eq!(table.symbolize(0x1001), [frame("main.f", "main.go", 10)]);
        assert_eq!(
            table.symbolize(0x1002),
            [frame("pkg.A", "a.go", 20), frame("main.f", "main.go", 10)]
        );
        assert_eq!(
            table.symbolize(0x1007),
            [
                frame("pkg.B", "a.go", 30),
                frame("pkg.A", "a.go", 20),
                frame("main.f", "main.go", 10)
            ]
        );
        assert_eq!(
            table.symbolize(0x1009),
            [frame("pkg.A", "a.go", 21), frame("main.f", "main.go", 10)]
        );
        assert_eq!(table.symbolize(0x100a), [frame("main.f", "main.go", 11)]);
        // No line table: the runtime's "?" and 0.
        assert_eq!(table.symbolize(0x1020), [frame("main.g", "?", 0)]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // a list of one range is meant
    fn inlined_calls_form_the_tree() {
        let table = synthetic();
        let functions = table.functions();
        assert_eq!(
            table.inlined_calls(&functions[0]),
            [
                InlinedCall {
                    callee: "pkg.A".into(),
                    ranges: vec![0x1002..0x1006, 0x1008..0x100a],
                    call_pc: 0x1001,
                    depth: 0,
                    parent: None,
                },
                InlinedCall {
                    callee: "pkg.B".into(),
                    ranges: vec![0x1006..0x1008],
                    call_pc: 0x1003,
                    depth: 1,
                    parent: Some(0),
                },
            ]
        );
        assert_eq!(table.inlined_calls(&functions[1]), []);
    }

    #[test]
    fn corrupt_inline_trees_give_nothing_or_stop() {
        let mut table = synthetic();
        // pkg.A's call site inside pkg.B: a cycle.
        table.gofunc[8..12].copy_from_slice(&7u32.to_le_bytes());
        let f = table.functions().remove(0);
        assert_eq!(table.inlined_calls(&f), []);
        assert_eq!(table.symbolize(0x1007).len(), MAX_INLINE_DEPTH + 1);
        // A tree shorter than its indices.
        table.gofunc.truncate(INLINED_CALL_LEN);
        assert_eq!(table.inlined_calls(&f), []);
        assert_eq!(
            table.symbolize(0x1007),
            [frame("main.f", "a.go", 30)],
            "an unreadable entry ends the walk"
        );
    }
}
