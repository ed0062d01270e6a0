//! Go toolchain versions and the per-version facts tracer relies on (docs/go-internals.md §4).

use std::fmt;

/// A released Go version such as `go1.21.13` (pre-releases keep their base version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// The oldest and newest minor versions tracer knows the runtime layout of.
pub const OLDEST_SUPPORTED_MINOR: u32 = 21;
pub const NEWEST_SUPPORTED_MINOR: u32 = 27;

impl GoVersion {
    /// Parses the version string the linker records (`runtime.buildVersion`, `.go.buildinfo`):
    /// `go1.22.10`, `go1.21rc2`, `go1.24.11 X:noswissmap`. `None` for development builds and
    /// anything else that does not name a release.
    pub fn parse(text: &str) -> Option<Self> {
        let release = text.split_whitespace().next()?.strip_prefix("go")?;
        let mut numbers = release.splitn(3, '.');
        let major = leading_number(numbers.next()?)?;
        let minor = leading_number(numbers.next()?)?;
        let patch = numbers.next().and_then(leading_number).unwrap_or(0);
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    pub fn is_supported(self) -> bool {
        self.major == 1 && (OLDEST_SUPPORTED_MINOR..=NEWEST_SUPPORTED_MINOR).contains(&self.minor)
    }
}

/// `"21rc2"` → 21: release candidates and betas share their release's layout.
fn leading_number(text: &str) -> Option<u32> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    text[..digits].parse().ok()
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> GoVersion {
        GoVersion {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn parses_release_candidate_and_experiment_suffixes() {
        assert_eq!(GoVersion::parse("go1.21.13"), Some(v(1, 21, 13)));
        assert_eq!(GoVersion::parse("go1.22rc1"), Some(v(1, 22, 0)));
        assert_eq!(
            GoVersion::parse("go1.24.11 X:noswissmap"),
            Some(v(1, 24, 11))
        );
        assert_eq!(GoVersion::parse("go1.19.8"), Some(v(1, 19, 8)));
        assert_eq!(GoVersion::parse("devel go1.25-1234abcd"), None);
        assert_eq!(GoVersion::parse(""), None);
        assert_eq!(GoVersion::parse("go"), None);
    }

    #[test]
    fn supports_exactly_go_1_21_to_1_27() {
        assert!(!v(1, 20, 14).is_supported());
        assert!(v(1, 21, 0).is_supported());
        assert!(v(1, 27, 3).is_supported());
        assert!(!v(1, 28, 0).is_supported());
        assert!(!v(2, 21, 0).is_supported());
    }
}
