//! Where the typed atomics (`atomic.Pointer[T]`, `atomic.Int64`, `atomic.Bool`…) of the
//! program's structs are, and where the variables that point at such structs live, from DWARF.
//!
//! `p.table.Load()` on an `atomic.Pointer[T]` field compiles to a plain `MOV`, and on Go
//! 1.21–1.24 and 1.27 that instruction often keeps no inline mark of `Pointer.Load`: the inline
//! tree cannot tell it from any other load (docs/go-internals.md §3a). DWARF can: the struct
//! layouts say at which offsets a struct holds typed atomic words (and which pointer fields lead
//! to more), and the location lists say which register or stack slot holds which pointer
//! variable at each PC. `syncsites::typed_field_loads` follows them through the code. Stripped
//! binaries have no DWARF, and then only the inline tree is used.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    ops::Range,
};

use gimli::{AttributeValue, EndianSlice, Operation, RunTimeEndian};
use object::Object as _;

use crate::analyse::{dwarf::section_data, syncsites::Reg};

/// How many pointer fields deep a typed atomic is looked for (`s.cfg.table.Load()` is one).
const POINTER_HOPS: usize = 2;

/// The struct types that lead to typed atomics, and the variables that point at them.
#[derive(Debug, Default)]
pub struct TypedAtomics {
    layouts: Vec<Layout>,
    /// By the entry address of the function they belong to.
    variables: HashMap<u64, Vec<PointerVariable>>,
}

/// Where a struct keeps its typed atomic words and the pointers that lead to more, by offset
/// from its start (fields of nested structs included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub words: Vec<i64>,
    /// Pointer fields and the layout (an index into [`TypedAtomics::layouts`]) they point at.
    pub pointers: Vec<(i64, usize)>,
}

/// A variable pointing at a struct with typed atomics, where it is over a range of PCs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointerVariable {
    pub pcs: Range<u64>,
    pub home: Home,
    pub layout: usize,
}

/// Where a variable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Home {
    Register(Reg),
    /// A stack slot, at this offset from the canonical frame address (Go's frame base).
    Frame(i64),
}

impl TypedAtomics {
    /// What the binary's DWARF says; empty when it has none or it cannot be read (the loads are
    /// then found through the inline tree only).
    pub fn from_dwarf(file: &object::File<'_>) -> Self {
        match read(file) {
            Ok(found) => found,
            Err(error) => {
                log::debug!("typed atomics not read from DWARF: {error}");
                Self::default()
            }
        }
    }

    pub fn layouts(&self) -> &[Layout] {
        &self.layouts
    }

    /// The pointer variables of the function that starts at `entry`.
    pub fn variables(&self, entry: u64) -> &[PointerVariable] {
        self.variables.get(&entry).map_or(&[], Vec::as_slice)
    }
}

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;

/// A type entry, by its offset in `.debug_info`.
enum TypeEntry {
    Struct {
        typed_atomic: bool,
        members: Vec<(i64, usize)>,
    },
    Typedef(usize),
    Pointer(usize),
}

fn read(file: &object::File<'_>) -> Result<TypedAtomics, gimli::Error> {
    if file.section_by_name(".debug_info").is_none() {
        return Ok(TypedAtomics::default());
    }
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = gimli::DwarfSections::load(|id| {
        Ok::<_, gimli::Error>(
            section_data(file, id.name())
                .ok()
                .flatten()
                .unwrap_or(Cow::Borrowed(&[])),
        )
    })?;
    let dwarf = sections.borrow(|section| EndianSlice::new(section, endian));
    let types = read_types(&dwarf)?;
    let (layouts, by_pointer) = layouts(&types);
    if layouts.is_empty() {
        return Ok(TypedAtomics::default());
    }
    let variables = read_variables(&dwarf, &by_pointer)?;
    Ok(TypedAtomics { layouts, variables })
}

/// The `.debug_info` offset a type attribute refers to.
fn type_of(
    unit: &gimli::Unit<Slice<'_>>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>,
) -> Result<Option<usize>, gimli::Error> {
    Ok(match entry.attr_value(gimli::DW_AT_type)? {
        Some(AttributeValue::UnitRef(offset)) => offset
            .to_debug_info_offset(&unit.header)
            .map(|offset| offset.0),
        Some(AttributeValue::DebugInfoRef(offset)) => Some(offset.0),
        _ => None,
    })
}

/// Every struct, typedef and pointer type of the binary (Go puts types at the top of a unit).
fn read_types(dwarf: &gimli::Dwarf<Slice<'_>>) -> Result<HashMap<usize, TypeEntry>, gimli::Error> {
    let mut types = HashMap::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let mut tree = unit.entries_tree(None)?;
        let mut children = tree.root()?.children();
        while let Some(node) = children.next()? {
            let entry = node.entry();
            let Some(offset) = entry.offset().to_debug_info_offset(&unit.header) else {
                continue;
            };
            let found = match entry.tag() {
                gimli::DW_TAG_typedef => type_of(&unit, entry)?.map(TypeEntry::Typedef),
                gimli::DW_TAG_pointer_type => type_of(&unit, entry)?.map(TypeEntry::Pointer),
                gimli::DW_TAG_structure_type => {
                    let name = match entry.attr_value(gimli::DW_AT_name)? {
                        Some(AttributeValue::String(name)) => name.slice(),
                        _ => &[],
                    };
                    let typed_atomic = is_typed_atomic(name);
                    let mut members = Vec::new();
                    let mut fields = node.children();
                    while let Some(field) = fields.next()? {
                        let field = field.entry();
                        let location = field
                            .attr_value(gimli::DW_AT_data_member_location)?
                            .and_then(|value| value.udata_value())
                            .and_then(|offset| i64::try_from(offset).ok());
                        if let (Some(location), Some(type_offset)) =
                            (location, type_of(&unit, field)?)
                        {
                            members.push((location, type_offset));
                        }
                    }
                    Some(TypeEntry::Struct {
                        typed_atomic,
                        members,
                    })
                }
                _ => None,
            };
            if let Some(found) = found {
                types.insert(offset.0, found);
            }
        }
    }
    Ok(types)
}

/// The typed atomics of `sync/atomic`, whose only word is at offset 0 (the other fields are
/// zero-sized: `_ noCopy`, `_ align64`, `_ [0]*T`).
fn is_typed_atomic(name: &[u8]) -> bool {
    let Some(type_name) = name.strip_prefix(b"sync/atomic.") else {
        return false;
    };
    type_name.starts_with(b"Pointer[")
        || matches!(
            type_name,
            b"Bool" | b"Int32" | b"Int64" | b"Uint32" | b"Uint64" | b"Uintptr"
        )
}

/// Follows typedefs to the type they name (bounded: malformed DWARF may loop).
fn underlying(types: &HashMap<usize, TypeEntry>, mut offset: usize) -> usize {
    for _ in 0..8 {
        match types.get(&offset) {
            Some(TypeEntry::Typedef(target)) => offset = *target,
            _ => break,
        }
    }
    offset
}

/// The struct a pointer type points at, through typedefs on both sides.
fn pointee(types: &HashMap<usize, TypeEntry>, pointer: usize) -> Option<usize> {
    match types.get(&underlying(types, pointer))? {
        TypeEntry::Pointer(target) => {
            let target = underlying(types, *target);
            matches!(types.get(&target)?, TypeEntry::Struct { .. }).then_some(target)
        }
        _ => None,
    }
}

/// Members [`flatten`] visits for one struct, nested ones included: the largest struct of the
/// standard library needs 296 (Go 1.27), malformed DWARF whose structs each hold many copies of
/// the next would need exponentially many.
const FLATTEN_MEMBERS: usize = 16_384;

/// A struct's typed atomic words and pointer fields by offset, nested structs flattened, the
/// pointers naming the `.debug_info` offset of their struct; `depth` bounds malformed,
/// self-containing structs, `members_left` the work (both only ever reached by malformed DWARF).
fn flatten(
    types: &HashMap<usize, TypeEntry>,
    offset: usize,
    depth: usize,
    members_left: &mut usize,
) -> Layout {
    let mut layout = Layout::default();
    let Some(TypeEntry::Struct {
        typed_atomic,
        members,
    }) = types.get(&offset)
    else {
        return layout;
    };
    if *typed_atomic {
        layout.words.push(0);
        return layout;
    }
    if depth == 0 {
        return layout;
    }
    for &(at, member) in members {
        let Some(left) = members_left.checked_sub(1) else {
            break;
        };
        *members_left = left;
        let member = underlying(types, member);
        match types.get(&member) {
            Some(TypeEntry::Struct { .. }) => {
                let inner = flatten(types, member, depth - 1, members_left);
                let words = inner.words.iter().filter_map(|word| at.checked_add(*word));
                layout.words.extend(words);
                let pointers = (inner.pointers.iter())
                    .filter_map(|&(field, to)| Some((at.checked_add(field)?, to)));
                layout.pointers.extend(pointers);
            }
            Some(TypeEntry::Pointer(_)) => {
                if let Some(target) = pointee(types, member) {
                    layout.pointers.push((at, target));
                }
            }
            _ => {}
        }
    }
    layout
}

/// The layouts of the structs that lead to a typed atomic within [`POINTER_HOPS`] pointers, and
/// each pointer type's layout.
fn layouts(types: &HashMap<usize, TypeEntry>) -> (Vec<Layout>, HashMap<usize, usize>) {
    let flat: HashMap<usize, Layout> = types
        .iter()
        .filter(|(_, entry)| matches!(entry, TypeEntry::Struct { .. }))
        .map(|(&offset, _)| {
            let mut members_left = FLATTEN_MEMBERS;
            let layout = flatten(types, offset, 8, &mut members_left);
            if members_left == 0 {
                log::debug!("the struct at .debug_info+{offset:#x} is flattened only in part");
            }
            (offset, layout)
        })
        .filter(|(_, layout)| *layout != Layout::default())
        .collect();
    let mut leading: Vec<usize> = flat
        .iter()
        .filter(|(_, layout)| !layout.words.is_empty())
        .map(|(&offset, _)| offset)
        .collect();
    for _ in 0..POINTER_HOPS {
        let known: HashSet<usize> = leading.iter().copied().collect();
        leading.extend(flat.iter().filter_map(|(&offset, layout)| {
            let leads = layout.pointers.iter().any(|(_, to)| known.contains(to));
            (!known.contains(&offset) && leads).then_some(offset)
        }));
    }
    leading.sort_unstable();
    let index: HashMap<usize, usize> = leading
        .iter()
        .enumerate()
        .map(|(index, &offset)| (offset, index))
        .collect();
    let layouts = leading
        .iter()
        .map(|offset| Layout {
            words: flat[offset].words.clone(),
            pointers: flat[offset]
                .pointers
                .iter()
                .filter_map(|&(at, to)| Some((at, *index.get(&to)?)))
                .collect(),
        })
        .collect();
    let by_pointer = types
        .keys()
        .filter_map(|&offset| Some((offset, *index.get(&pointee(types, offset)?)?)))
        .collect();
    (layouts, by_pointer)
}

/// The parameters and locals of every function that point at a layout, where they live (a
/// register or a stack slot).
fn read_variables(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    by_pointer: &HashMap<usize, usize>,
) -> Result<HashMap<u64, Vec<PointerVariable>>, gimli::Error> {
    let mut variables: HashMap<u64, Vec<PointerVariable>> = HashMap::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let unit = dwarf.unit(header)?;
        let mut entries = unit.entries();
        let mut function: Option<(isize, Range<u64>)> = None;
        let mut depth = 0;
        while let Some((delta, entry)) = entries.next_dfs()? {
            depth += delta;
            if function
                .as_ref()
                .is_some_and(|(function_depth, _)| depth <= *function_depth)
            {
                function = None;
            }
            match entry.tag() {
                gimli::DW_TAG_subprogram => {
                    function = pcs(dwarf, &unit, entry)?.map(|pcs| (depth, pcs));
                }
                gimli::DW_TAG_formal_parameter | gimli::DW_TAG_variable => {
                    let Some((_, function_pcs)) = &function else {
                        continue;
                    };
                    let Some(&layout) = type_of(&unit, entry)?.and_then(|t| by_pointer.get(&t))
                    else {
                        continue;
                    };
                    let Some(location) = entry.attr_value(gimli::DW_AT_location)? else {
                        continue;
                    };
                    let found = variables.entry(function_pcs.start).or_default();
                    for (pcs, home) in homes(dwarf, &unit, location, function_pcs)? {
                        found.push(PointerVariable { pcs, home, layout });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(variables)
}

/// A subprogram's PCs (`DW_AT_low_pc` is an address or, in DWARF 5, an index into
/// `.debug_addr`; `DW_AT_high_pc` an address or a length).
fn pcs(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>,
) -> Result<Option<Range<u64>>, gimli::Error> {
    let Some(low) = entry.attr_value(gimli::DW_AT_low_pc)? else {
        return Ok(None);
    };
    let Some(low) = dwarf.attr_address(unit, low)? else {
        return Ok(None);
    };
    Ok(match entry.attr_value(gimli::DW_AT_high_pc)? {
        Some(high @ (AttributeValue::Addr(_) | AttributeValue::DebugAddrIndex(_))) => {
            dwarf.attr_address(unit, high)?.map(|high| low..high)
        }
        Some(length) => (length.udata_value())
            .and_then(|length| low.checked_add(length))
            .map(|high| low..high),
        None => None,
    })
}

/// The PC ranges over which a location is exactly one register or one stack slot.
fn homes(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    location: AttributeValue<Slice<'_>>,
    function: &Range<u64>,
) -> Result<Vec<(Range<u64>, Home)>, gimli::Error> {
    if let AttributeValue::Exprloc(expression) = location {
        return Ok(home(unit, expression)?
            .map(|home| (function.clone(), home))
            .into_iter()
            .collect());
    }
    let mut ranges = Vec::new();
    let Some(mut entries) = dwarf.attr_locations(unit, location)? else {
        return Ok(ranges);
    };
    while let Some(entry) = entries.next()? {
        if let Some(home) = home(unit, entry.data)? {
            ranges.push((entry.range.begin..entry.range.end, home));
        }
    }
    Ok(ranges)
}

/// The register or frame slot a location expression names, when it is nothing else (no
/// pieces, no computed addresses). Go's frame base is the canonical frame address.
fn home(
    unit: &gimli::Unit<Slice<'_>>,
    expression: gimli::Expression<Slice<'_>>,
) -> Result<Option<Home>, gimli::Error> {
    let mut operations = expression.operations(unit.encoding());
    let home = match operations.next()? {
        Some(Operation::Register { register }) => Reg::from_dwarf(register.0).map(Home::Register),
        Some(Operation::FrameOffset { offset }) => Some(Home::Frame(offset)),
        // A spilled register argument: its home is the slot the caller left at the CFA.
        Some(Operation::CallFrameCFA) => Some(Home::Frame(0)),
        _ => None,
    };
    if operations.next()?.is_some() {
        return Ok(None);
    }
    Ok(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sync_atomic_types_are_typed_atomics() {
        for name in [
            "sync/atomic.Pointer[map[string]int]",
            "sync/atomic.Int64",
            "sync/atomic.Bool",
            "sync/atomic.Uintptr",
        ] {
            assert!(is_typed_atomic(name.as_bytes()), "{name}");
        }
        for name in [
            "sync/atomic.Value",
            "main.Int64",
            "internal/runtime/atomic.Int64",
            "sync/atomic.Int64x",
        ] {
            assert!(!is_typed_atomic(name.as_bytes()), "{name}");
        }
    }

    /// `server{name string; cfg *config}`, `config{hits atomic.Int64; inner{ptr atomic.Pointer}}`,
    /// a typedef of `*server`: the layouts flatten the nested struct, follow the pointer field
    /// and name both pointer types.
    #[test]
    fn layouts_follow_nested_structs_and_pointer_fields() {
        let types = HashMap::from([
            (
                1,
                TypeEntry::Struct {
                    typed_atomic: true,
                    members: vec![],
                },
            ),
            (
                2,
                TypeEntry::Struct {
                    typed_atomic: true,
                    members: vec![],
                },
            ),
            (
                3,
                TypeEntry::Struct {
                    typed_atomic: false,
                    members: vec![(8, 2)],
                },
            ),
            (4, TypeEntry::Typedef(3)),
            (
                5,
                TypeEntry::Struct {
                    typed_atomic: false,
                    members: vec![(0, 1), (16, 4)],
                },
            ),
            (6, TypeEntry::Pointer(5)),
            (
                7,
                TypeEntry::Struct {
                    typed_atomic: false,
                    members: vec![(0, 9), (16, 6)],
                },
            ),
            (8, TypeEntry::Pointer(7)),
            (
                9,
                TypeEntry::Struct {
                    typed_atomic: false,
                    members: vec![],
                },
            ),
            (10, TypeEntry::Typedef(8)),
        ]);
        let (layouts, by_pointer) = layouts(&types);
        let config = &layouts[by_pointer[&6]];
        assert_eq!(config.words, vec![0, 24]);
        let server = &layouts[by_pointer[&8]];
        assert!(server.words.is_empty());
        assert_eq!(server.pointers, vec![(16, by_pointer[&6])]);
        assert_eq!(by_pointer[&10], by_pointer[&8]);
        assert!(!by_pointer
            .values()
            .any(|&layout| layouts[layout] == Layout::default()));
    }

    fn plain_struct(members: Vec<(i64, usize)>) -> TypeEntry {
        TypeEntry::Struct {
            typed_atomic: false,
            members,
        }
    }

    /// Malformed DWARF: a member at an offset whose sum with its nested word overflows is left
    /// out, and structs that each hold many copies of the next stop at the members' budget
    /// instead of flattening 64^8 words.
    #[test]
    fn malformed_structs_flatten_within_bounds() {
        let atomic = TypeEntry::Struct {
            typed_atomic: true,
            members: vec![],
        };
        let overflowing = HashMap::from([
            (1, atomic),
            (2, plain_struct(vec![(0, 1), (8, 1)])),
            (3, plain_struct(vec![(16, 2), (i64::MAX, 2)])),
        ]);
        let mut members_left = FLATTEN_MEMBERS;
        let layout = flatten(&overflowing, 3, 8, &mut members_left);
        assert_eq!(layout.words, vec![16, 24, i64::MAX]);

        let mut nested = HashMap::from([(0, plain_struct(vec![]))]);
        for level in 1..=9 {
            nested.insert(
                level,
                plain_struct((0..64).map(|at| (at, level - 1)).collect()),
            );
        }
        let mut members_left = FLATTEN_MEMBERS;
        flatten(&nested, 9, 8, &mut members_left);
        assert_eq!(members_left, 0);
    }
}
