//! What a probe hit costs on this machine, measured when tracing starts under an overhead
//! budget: tracer probes two tiny functions of its own, one on an instruction the kernel
//! emulates (`PUSH`) and one on an instruction it must single-step (`SETE`), and
//! times calls with and without the probe. The trap is the dear part of a hit and depends on
//! the CPU, the kernel and whether it runs in a VM (where a single-step can cost 5 µs); the
//! programs' own time is measured by the programs themselves (`counter::PROGRAM_NS`).

use std::{hint::black_box, time::Duration, time::Instant};

use crate::{error::TracerError, probes};

/// The trap's cost per hit, program excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitCosts {
    pub emulated: Duration,
    pub single_stepped: Duration,
}

impl Default for HitCosts {
    fn default() -> Self {
        Self::FALLBACK
    }
}

impl HitCosts {
    /// Used when the measurement fails: what a VM of the development machine's kind measures,
    /// on the dear side.
    pub const FALLBACK: Self = Self {
        emulated: Duration::from_nanos(1_500),
        single_stepped: Duration::from_nanos(8_000),
    };

    /// The time `hits` cost the target's threads, `stepped` of them single-stepped, with
    /// `programs` spent in the programs.
    pub fn of(&self, hits: u64, stepped: u64, programs: Duration) -> Duration {
        let emulated = hits.saturating_sub(stepped);
        self.emulated * emulated.min(u32::MAX.into()) as u32
            + self.single_stepped * stepped.min(u32::MAX.into()) as u32
            + programs
    }
}

/// `PUSH RBP`, emulated by the kernel, then the epilogue.
#[unsafe(naked)]
extern "C" fn emulated_site() {
    core::arch::naked_asm!("push rbp", "pop rbp", "ret")
}

/// `SETE SIL` (a CAS's outcome, as Go's inlined Lock has it), copied out of line and
/// single-stepped.
#[unsafe(naked)]
extern "C" fn single_stepped_site() {
    core::arch::naked_asm!("sete sil", "ret")
}

/// Calls per measurement round, and rounds (the fastest round counts: the others were
/// interrupted).
const CALLS: u32 = 400;
const ROUNDS: usize = 3;

/// Measures both costs (about 30 ms).
pub fn measure() -> Result<HitCosts, TracerError> {
    Ok(HitCosts {
        emulated: cost_of_probing(emulated_site)?,
        single_stepped: cost_of_probing(single_stepped_site)?,
    })
}

/// Time per call of `function` with a probe on its first instruction, minus without.
fn cost_of_probing(function: extern "C" fn()) -> Result<Duration, TracerError> {
    let unprobed = fastest_call(function);
    let file_offset = file_offset_of(function as *const () as usize)?;
    let link = probes::probe_own_code(file_offset)?;
    let probed = fastest_call(function);
    drop(link);
    Ok(probed.saturating_sub(unprobed))
}

fn fastest_call(function: extern "C" fn()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..CALLS {
                black_box(function)();
            }
            started.elapsed() / CALLS
        })
        .min()
        .unwrap_or_default()
}

/// Where code at `address` of this process lies in its executable file.
fn file_offset_of(address: usize) -> Result<u64, TracerError> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(anyhow::Error::from)?;
    maps.lines()
        .find_map(|line| mapping_offset(line, address))
        .ok_or_else(|| anyhow::anyhow!("no mapping of tracer's own code at {address:#x}").into())
}

/// The file offset of `address` if `line` of /proc/PID/maps maps it
/// (`start-end perms offset dev inode path`).
fn mapping_offset(line: &str, address: usize) -> Option<u64> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    let _permissions = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    (start..end)
        .contains(&address)
        .then(|| offset + (address - start) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_line_gives_the_file_offset_of_an_address_inside_it() {
        let line = "5617a2e00000-5617a3000000 r-xp 00200000 fd:01 1234   /usr/bin/tracer";
        assert_eq!(mapping_offset(line, 0x5617a2e00010), Some(0x200010));
        assert_eq!(mapping_offset(line, 0x5617a3000000), None);
        assert_eq!(mapping_offset("garbage", 0), None);
    }

    #[test]
    fn own_code_is_found_in_the_maps() {
        let offset =
            file_offset_of(emulated_site as *const () as usize).expect("own code is mapped");
        let executable = std::fs::read("/proc/self/exe").expect("own executable");
        // PUSH RBP; POP RBP; RET
        assert_eq!(
            executable.get(offset as usize..offset as usize + 3),
            Some(&[0x55, 0x5d, 0xc3][..])
        );
    }

    #[test]
    fn hit_costs_add_up_per_kind() {
        let costs = HitCosts {
            emulated: Duration::from_nanos(1_000),
            single_stepped: Duration::from_nanos(5_000),
        };
        assert_eq!(
            costs.of(10, 4, Duration::from_nanos(700)),
            Duration::from_nanos(6 * 1_000 + 4 * 5_000 + 700)
        );
    }
}
