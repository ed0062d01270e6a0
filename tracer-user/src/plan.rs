//! The probe plan: which instructions of a Go binary to probe and what each probe records.
//! Pure data computed from a [`GoBinary`], so it can be inspected and tested without root.

use tracer_common::{EventKind, KeyClass, ProbeCookie};

use crate::gobin::{prologue, GoBinary};

/// The runtime entry points of every map write the compiler emits (GO_INTERNALS.md §1b), with the
/// kind of operation and how the key is passed. The names are the same in Go 1.21–1.27.
pub const MAP_WRITE_FUNCTIONS: [(&str, EventKind, KeyClass); 10] = [
    ("runtime.mapassign", EventKind::MapAssign, KeyClass::None),
    (
        "runtime.mapassign_fast32",
        EventKind::MapAssign,
        KeyClass::U32,
    ),
    (
        "runtime.mapassign_fast64",
        EventKind::MapAssign,
        KeyClass::U64,
    ),
    (
        "runtime.mapassign_fast64ptr",
        EventKind::MapAssign,
        KeyClass::U64,
    ),
    (
        "runtime.mapassign_faststr",
        EventKind::MapAssign,
        KeyClass::Str,
    ),
    ("runtime.mapdelete", EventKind::MapDelete, KeyClass::None),
    (
        "runtime.mapdelete_fast32",
        EventKind::MapDelete,
        KeyClass::U32,
    ),
    (
        "runtime.mapdelete_fast64",
        EventKind::MapDelete,
        KeyClass::U64,
    ),
    (
        "runtime.mapdelete_faststr",
        EventKind::MapDelete,
        KeyClass::Str,
    ),
    ("runtime.mapclear", EventKind::MapClear, KeyClass::None),
];

/// One uprobe to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSite {
    pub function: &'static str,
    /// Virtual address of the probed instruction.
    pub address: u64,
    /// Where that instruction is in the executable file (what the kernel wants).
    pub file_offset: u64,
    pub cookie: ProbeCookie,
    /// True when no `PUSHQ BP` was found and the probe sits on the function's first instruction
    /// (slower, and it fires again when the function grows its stack).
    pub at_entry: bool,
}

/// Every probe for one binary.
#[derive(Clone, Debug, Default)]
pub struct ProbePlan {
    pub sites: Vec<ProbeSite>,
    /// Map write functions the binary does not contain (the linker drops unused ones).
    pub absent: Vec<&'static str>,
}

/// Plans an entry probe after the stack check of every map write function present in `binary`.
pub fn plan_map_writes(binary: &GoBinary) -> ProbePlan {
    let goid_offset = binary
        .version
        .goid_offset()
        .expect("GoBinary only holds supported versions");
    let mut plan = ProbePlan::default();
    for (name, kind, key) in MAP_WRITE_FUNCTIONS {
        let Some(function) = binary.function(name) else {
            plan.absent.push(name);
            continue;
        };
        let after_stack_check = binary
            .code(function)
            .and_then(|code| prologue::frame_push_address(code, function.address));
        let address = after_stack_check.unwrap_or(function.address);
        let Some(file_offset) = binary.file_offset(address) else {
            plan.absent.push(name);
            continue;
        };
        plan.sites.push(ProbeSite {
            function: name,
            address,
            file_offset,
            cookie: ProbeCookie {
                kind,
                key,
                goid_offset,
            },
            at_entry: after_stack_check.is_none(),
        });
    }
    plan
}
