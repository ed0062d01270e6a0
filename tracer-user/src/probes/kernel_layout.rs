//! Where the running kernel keeps what the programs read to find a file descriptor's flow of
//! data (`object::WRITTEN_FLOW` and `READ_FLOW`, docs/how-it-works.md): the member offsets of a few of its structs, from its BTF
//! (`/sys/kernel/btf/vmlinux`, the format of the kernel's `Documentation/bpf/btf.rst`).
//!
//! Only what that needs is parsed: type records are walked to find structs by name and their
//! members by name, looking through anonymous structs and unions (where `sock_common` keeps
//! its addresses). Any malformed or missing part leaves the layout unknown, and reads and
//! writes of descriptors then order nothing, as before tracer modelled them.

use tracer_common::KernelLayout;

/// `BTF_MAGIC`, little-endian.
const MAGIC: u16 = 0xeb9f;

// `BTF_KIND_*`.
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Struct and union nesting followed through anonymous members.
const MAX_NESTING: usize = 8;

/// One type record: its kind, name, the size-or-type word, and its members (structs and unions).
struct Type {
    kind: u32,
    name: u32,
    /// A struct's members: (name, type id, bit offset).
    members: Vec<(u32, u32, u32)>,
    /// The type a typedef or qualifier refers to.
    refers_to: u32,
}

/// The types and strings of a BTF blob.
struct Btf<'a> {
    /// By type id − 1 (id 0 is `void`).
    types: Vec<Type>,
    strings: &'a [u8],
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        if data.get(..2)? != MAGIC.to_le_bytes() {
            return None;
        }
        let header_length = u32_at(data, 4)? as usize;
        let section = |offset_at, length_at| {
            let start = header_length.checked_add(u32_at(data, offset_at)? as usize)?;
            data.get(start..start.checked_add(u32_at(data, length_at)? as usize)?)
        };
        let (type_section, strings) = (section(8, 12)?, section(16, 20)?);
        let mut types = Vec::new();
        let mut at = 0;
        while at < type_section.len() {
            let word = |index: usize| u32_at(type_section, at + 4 * index);
            let (name, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let (kind, count, bitfield_offsets) = (
                (info >> 24) & 0x1f,
                (info & 0xffff) as usize,
                info >> 31 == 1,
            );
            at += 12;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * count,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * count,
                _ => 0,
            };
            let mut members = Vec::new();
            if matches!(kind, KIND_STRUCT | KIND_UNION) {
                for member in 0..count {
                    let word = |index: usize| u32_at(type_section, at + 12 * member + 4 * index);
                    let offset = word(2)?;
                    // With the kind flag, the top 8 bits are a bitfield's size.
                    let offset = if bitfield_offsets {
                        offset & 0x00ff_ffff
                    } else {
                        offset
                    };
                    members.push((word(0)?, word(1)?, offset));
                }
            }
            at += extra;
            types.push(Type {
                kind,
                name,
                members,
                refers_to: size_or_type,
            });
        }
        Some(Self { types, strings })
    }

    fn name(&self, offset: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(offset as usize..)?;
        rest.split(|&byte| byte == 0).next()
    }

    fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// The struct or union `id` refers to through typedefs and qualifiers.
    fn aggregate(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..MAX_NESTING {
            let found = self.get(id)?;
            match found.kind {
                KIND_STRUCT | KIND_UNION => return Some(found),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = found.refers_to;
                }
                _ => return None,
            }
        }
        None
    }

    /// The struct named `name` that has members (not a forward declaration).
    fn structure(&self, name: &str) -> Option<&Type> {
        self.types.iter().find(|found| {
            found.kind == KIND_STRUCT
                && !found.members.is_empty()
                && self.name(found.name) == Some(name.as_bytes())
        })
    }

    /// The byte offset of `member` in `structure`, looking into anonymous members.
    fn member_in(&self, structure: &Type, member: &str, depth: usize) -> Option<u32> {
        if depth > MAX_NESTING {
            return None;
        }
        structure
            .members
            .iter()
            .find_map(|&(name, type_id, bits)| match self.name(name)? {
                found if found == member.as_bytes() => Some(bits / 8),
                [] => {
                    let inner = self.aggregate(type_id)?;
                    Some(bits / 8 + self.member_in(inner, member, depth + 1)?)
                }
                _ => None,
            })
    }

    fn offset(&self, structure: &str, member: &str) -> Option<u16> {
        let offset = self.member_in(self.structure(structure)?, member, 0)?;
        u16::try_from(offset).ok()
    }
}

/// The layout the programs need, from the kernel's BTF (`None` when any part is missing).
pub fn kernel_layout(btf: &[u8]) -> Option<KernelLayout> {
    let btf = Btf::parse(btf)?;
    let sk_common = btf.offset("sock", "__sk_common")?;
    let common = |member| sk_common.checked_add(btf.offset("sock_common", member)?);
    Some(KernelLayout {
        task_files: btf.offset("task_struct", "files")?,
        files_fdt: btf.offset("files_struct", "fdt")?,
        fdt_max_fds: btf.offset("fdtable", "max_fds")?,
        fdt_fd: btf.offset("fdtable", "fd")?,
        file_inode: btf.offset("file", "f_inode")?,
        file_private_data: btf.offset("file", "private_data")?,
        inode_mode: btf.offset("inode", "i_mode")?,
        socket_sk: btf.offset("socket", "sk")?,
        sk_family: common("skc_family")?,
        sk_daddr: common("skc_daddr")?,
        sk_rcv_saddr: common("skc_rcv_saddr")?,
        sk_dport: common("skc_dport")?,
        sk_num: common("skc_num")?,
        sk_v6_daddr: common("skc_v6_daddr")?,
        sk_v6_rcv_saddr: common("skc_v6_rcv_saddr")?,
        // A kernel whose Unix sockets are a module has no `unix_sock` in its own BTF.
        unix_peer: btf.offset("unix_sock", "peer").unwrap_or(0),
        known: 1,
    })
}

/// The running kernel's layout; unknown (all zeros) without a readable, complete BTF.
pub fn running_kernel_layout() -> KernelLayout {
    match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(btf) => kernel_layout(&btf).unwrap_or_else(|| {
            log::debug!(
                "the kernel's BTF lacks a struct member tracer reads: reads and writes of file \
                 descriptors order nothing"
            );
            KernelLayout::default()
        }),
        Err(error) => {
            log::debug!(
                "no kernel BTF ({error}): reads and writes of file descriptors order nothing"
            );
            KernelLayout::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member: name, type id, bit offset.
    type Member = (u32, u32, u32);
    /// A type: kind, name, size or referred type, members.
    type Record<'a> = (u32, u32, u32, &'a [Member]);

    /// A BTF blob with the given types and strings.
    fn blob(types: &[Record<'_>], strings: &[u8]) -> Vec<u8> {
        let mut section = Vec::new();
        for &(kind, name, size, members) in types {
            let info = kind << 24 | members.len() as u32;
            for word in [name, info, size] {
                section.extend(word.to_le_bytes());
            }
            for &(name, type_id, bits) in members {
                for word in [name, type_id, bits] {
                    section.extend(word.to_le_bytes());
                }
            }
        }
        let mut data = Vec::new();
        data.extend(MAGIC.to_le_bytes());
        data.extend([1, 0]);
        for word in [
            24,
            0,
            section.len() as u32,
            section.len() as u32,
            strings.len() as u32,
        ] {
            data.extend(word.to_le_bytes());
        }
        data.extend(section);
        data.extend(strings);
        data
    }

    #[test]
    fn members_are_found_through_anonymous_unions_and_typedefs() {
        // Strings: 1 "outer", 7 "a", 9 "b", 11 "inner_t".
        let strings = b"\0outer\0a\0b\0inner_t\0";
        let types: &[Record<'_>] = &[
            // 1: union { u32 b at bit 0 } (anonymous)
            (KIND_UNION, 0, 4, &[(9, 0, 0)]),
            // 2: typedef inner_t = 1
            (KIND_TYPEDEF, 11, 1, &[]),
            // 3: struct outer { a at byte 8; anonymous inner_t at byte 16 }
            (KIND_STRUCT, 1, 24, &[(7, 0, 64), (0, 2, 128)]),
        ];
        let data = blob(types, strings);
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.offset("outer", "a"), Some(8));
        assert_eq!(btf.offset("outer", "b"), Some(16));
        assert_eq!(btf.offset("outer", "c"), None);
        assert_eq!(btf.offset("missing", "a"), None);
    }

    #[test]
    fn truncated_or_foreign_data_is_refused_without_panicking() {
        let strings = b"\0outer\0a\0";
        let data = blob(&[(KIND_STRUCT, 1, 8, &[(7, 0, 0)])], strings);
        for length in 0..data.len() {
            let _ = Btf::parse(&data[..length]).map(|btf| btf.offset("outer", "a"));
        }
        assert!(Btf::parse(b"\x7fELF").is_none());
    }

    /// This machine's kernel: every member is found, and `sock_common`'s IPv4 addresses and
    /// ports sit where the kernel has kept them for years (`include/net/sock.h`).
    #[test]
    fn the_running_kernel_has_every_member() {
        let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("the kernel's BTF");
        let layout = kernel_layout(&btf).expect("every member");
        assert_eq!(
            (
                layout.sk_daddr,
                layout.sk_rcv_saddr,
                layout.sk_dport,
                layout.sk_num
            ),
            (0, 4, 12, 14)
        );
        assert_ne!(layout.unix_peer, 0);
        assert_eq!(layout.known, 1);
    }
}
