//! Checking up front that tracer may load BPF programs and open uprobes, so a missing capability
//! is one clear line instead of a failure deep inside the kernel calls.

use crate::error::TracerError;

/// What to tell a user who lacks privileges.
pub const REQUIRED: &str = "run tracer as root, or grant it CAP_BPF and CAP_PERFMON \
     (e.g. `sudo setcap cap_bpf,cap_perfmon+ep $(which tracer)`), and CAP_SYS_PTRACE as well \
     to trace another user's processes";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails unless the effective capability set allows loading BPF programs (CAP_BPF) and attaching
/// uprobes through perf events (CAP_PERFMON); CAP_SYS_ADMIN covers both.
pub fn check() -> Result<(), TracerError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| anyhow::anyhow!("reading /proc/self/status: {error}"))?;
    let effective = effective_capabilities(&status)
        .ok_or_else(|| anyhow::anyhow!("/proc/self/status has no CapEff line"))?;
    let missing = missing_capabilities(effective);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TracerError::NoPrivileges(format!(
            "{} not in the effective capability set; {REQUIRED}",
            missing.join(" and ")
        )))
    }
}

fn effective_capabilities(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn missing_capabilities(effective: u64) -> Vec<&'static str> {
    let has = |capability: u32| effective & (1 << capability) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(capability, _)| !has(capability))
        .map(|(_, name)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\ttracer\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_capabilities(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
    }

    #[test]
    fn names_each_missing_capability() {
        assert_eq!(missing_capabilities(0), vec!["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_capabilities(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert!(missing_capabilities((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert!(missing_capabilities(1 << CAP_SYS_ADMIN).is_empty());
    }
}
