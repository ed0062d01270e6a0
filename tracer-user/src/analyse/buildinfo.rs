//! The `.go.buildinfo` section: the Go version and build settings the linker records in every Go
//! binary since 1.13, stripped or not (the same data `go version -m` prints).

/// What `.go.buildinfo` says about a binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// As recorded, e.g. `go1.24.11` or `go1.24.11 X:noswissmap`.
    pub version: String,
    /// `build` lines of the module info (`-ldflags`, `CGO_ENABLED`, `GOEXPERIMENT`, …) in order.
    pub settings: Vec<(String, String)>,
}

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_INLINE_STRINGS: u8 = 0x2;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildInfoError {
    #[error("the .go.buildinfo section has no Go build information header")]
    NoMagic,
    #[error("the .go.buildinfo section is truncated")]
    Truncated,
    #[error("unsupported .go.buildinfo layout (pointer size {0})")]
    UnsupportedLayout(u8),
}

/// Parses the section's bytes. `read_memory(vaddr, len)` resolves the pointers of the pre-1.18
/// layout, which stores string headers instead of the strings themselves.
pub fn parse(
    section: &[u8],
    read_memory: impl Fn(u64, usize) -> Option<Vec<u8>>,
) -> Result<BuildInfo, BuildInfoError> {
    if section.len() < HEADER_LEN || !section.starts_with(MAGIC) {
        return Err(if section.starts_with(MAGIC) {
            BuildInfoError::Truncated
        } else {
            BuildInfoError::NoMagic
        });
    }
    let pointer_size = section[14];
    let flags = section[15];
    let (version, modinfo) = if flags & FLAG_INLINE_STRINGS != 0 {
        let rest = &section[HEADER_LEN..];
        let (version, rest) = read_varint_string(rest).ok_or(BuildInfoError::Truncated)?;
        let (modinfo, _) = read_varint_string(rest).ok_or(BuildInfoError::Truncated)?;
        (version, modinfo)
    } else {
        if pointer_size != 8 || flags & FLAG_BIG_ENDIAN != 0 {
            return Err(BuildInfoError::UnsupportedLayout(pointer_size));
        }
        let version_header = le_u64(&section[16..24]);
        let modinfo_header = le_u64(&section[24..32]);
        let read_string = |header: u64| -> Option<Vec<u8>> {
            let fields = read_memory(header, 16)?;
            let (data, len) = (le_u64(&fields[..8]), le_u64(&fields[8..16]));
            read_memory(data, usize::try_from(len).ok().filter(|&l| l < 1 << 20)?)
        };
        (
            read_string(version_header).ok_or(BuildInfoError::Truncated)?,
            read_string(modinfo_header).unwrap_or_default(),
        )
    };
    Ok(BuildInfo {
        version: String::from_utf8_lossy(&version).into_owned(),
        settings: build_settings(&modinfo),
    })
}

impl BuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `build\tKEY=VALUE` lines of the module info. The runtime wraps modinfo in 16-byte sentinels.
fn build_settings(modinfo: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(modinfo);
    text.lines()
        .filter_map(|line| line.strip_prefix("build\t"))
        .filter_map(|setting| setting.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
        .collect()
}

fn read_varint_string(data: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut len: u64 = 0;
    for (i, byte) in data.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let rest = &data[i + 1..];
            let len = usize::try_from(len).ok().filter(|&l| l <= rest.len())?;
            return Some((rest[..len].to_vec(), &rest[len..]));
        }
    }
    None
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut section = MAGIC.to_vec();
        section.extend([8, FLAG_INLINE_STRINGS]);
        section.resize(HEADER_LEN, 0);
        for text in [version, modinfo] {
            let mut len = text.len();
            while len >= 0x80 {
                section.push((len as u8) | 0x80);
                len >>= 7;
            }
            section.push(len as u8);
            section.extend(text.as_bytes());
        }
        section
    }

    fn no_memory(_: u64, _: usize) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn reads_inline_version_and_build_settings() {
        let modinfo = "0w\u{af}\u{c}\u{92}t\u{8}\u{2}A\u{e1}\u{c1}\u{7}\u{e6}\u{d6}\u{18}\u{e6}path\tsample\nmod\tsample\t(devel)\t\nbuild\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\nbuild\tGOEXPERIMENT=noswissmap\n";
        let info = parse(
            &inline_section("go1.24.11 X:noswissmap", modinfo),
            no_memory,
        )
        .unwrap();
        assert_eq!(info.version, "go1.24.11 X:noswissmap");
        assert_eq!(info.setting("-ldflags"), Some("-s -w"));
        assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(info.setting("GOEXPERIMENT"), Some("noswissmap"));
        assert_eq!(info.setting("GOARCH"), None);
    }

    #[test]
    fn reads_pointer_layout_through_memory() {
        let mut section = MAGIC.to_vec();
        section.extend([8, 0]);
        section.extend(0x1000u64.to_le_bytes());
        section.extend(0x2000u64.to_le_bytes());
        let memory = |address: u64, len: usize| -> Option<Vec<u8>> {
            let bytes: Vec<u8> = match address {
                0x1000 => [0x3000u64.to_le_bytes(), 8u64.to_le_bytes()].concat(),
                0x3000 => b"go1.16.4".to_vec(),
                _ => return None,
            };
            Some(bytes[..len].to_vec())
        };
        let info = parse(&section, memory).unwrap();
        assert_eq!(info.version, "go1.16.4");
        assert!(info.settings.is_empty());
    }

    #[test]
    fn rejects_bad_headers_without_panicking() {
        assert_eq!(parse(b"", no_memory), Err(BuildInfoError::NoMagic));
        assert_eq!(parse(&[0u8; 64], no_memory), Err(BuildInfoError::NoMagic));
        assert_eq!(parse(MAGIC, no_memory), Err(BuildInfoError::Truncated));
        let mut section = inline_section("go1.21.13", "");
        section[HEADER_LEN] = 200; // length beyond the end
        assert_eq!(parse(&section, no_memory), Err(BuildInfoError::Truncated));
        let mut section = inline_section("go1.21.13", "");
        section[15] = 0; // pointer layout whose pointers lead nowhere
        assert_eq!(parse(&section, no_memory), Err(BuildInfoError::Truncated));
    }

    #[test]
    fn every_prefix_of_a_valid_section_is_handled() {
        let section = inline_section("go1.27.3", "build\tGOARCH=amd64\n");
        for end in 0..section.len() {
            let _ = parse(&section[..end], no_memory);
        }
    }
}
