//! tracer's own process metrics under the standard names (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`…), read from `/proc/self` at each
//! scrape. The prometheus crate's collector counts CPU time in whole seconds, which left the
//! dashboard's "Tracer CPU" at 0 for a tracer using a few percent of a core; this one counts
//! clock ticks.

use prometheus::{Counter, Gauge, IntGauge, Registry};

use super::families::register;

pub(super) struct ProcessMetrics {
    cpu: Counter,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: Gauge,
}

/// What `/proc/self/stat` says of the process.
struct Stat {
    cpu_seconds: f64,
    start_seconds_after_boot: f64,
    virtual_bytes: i64,
    resident_bytes: i64,
}

impl ProcessMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            register(registry, IntGauge::new(name, help).expect("valid metric"))
        };
        Self {
            cpu: register(
                registry,
                Counter::new(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                )
                .expect("valid metric"),
            ),
            resident: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_memory: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: register(
                registry,
                Gauge::new(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Brings the values up to date (before each scrape).
    pub(super) fn refresh(&self) {
        if let Some(stat) = own_stat() {
            self.cpu
                .inc_by((stat.cpu_seconds - self.cpu.get()).max(0.0));
            self.resident.set(stat.resident_bytes);
            self.virtual_memory.set(stat.virtual_bytes);
            if let Some(boot) = boot_time() {
                self.start_time.set(boot + stat.start_seconds_after_boot);
            }
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(entries.count() as i64);
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid resource and a valid out-pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            self.max_fds
                .set(i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX));
        }
    }
}

/// The clock ticks per second and page size the kernel counts in.
fn ticks_and_page() -> (f64, i64) {
    // SAFETY: sysconf has no preconditions.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (ticks.max(1) as f64, page.max(1))
}

fn own_stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 3 on: state is [0], utime (14) is [11], stime [12], starttime (22) [19],
    // vsize (23) [20], rss (24, pages) [21].
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    let (ticks, page) = ticks_and_page();
    Some(Stat {
        cpu_seconds: (number(11)? + number(12)?) as f64 / ticks,
        start_seconds_after_boot: number(19)? as f64 / ticks,
        virtual_bytes: i64::try_from(number(20)?).ok()?,
        resident_bytes: i64::try_from(number(21)?).ok()? * page,
    })
}

/// When the machine booted, in seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_by_the_tick_not_by_the_second() {
        let registry = Registry::new();
        let metrics = ProcessMetrics::register(&registry);
        metrics.refresh();
        let before = metrics.cpu.get();
        // About 200 ms of CPU.
        let mut spins = 0_u64;
        while own_stat().is_some_and(|stat| stat.cpu_seconds < before + 0.2) {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
        metrics.refresh();
        let moved = metrics.cpu.get() - before;
        assert!((0.05..1.0).contains(&moved), "moved by {moved} s");
        assert!(metrics.resident.get() > 0);
        assert!(metrics.open_fds.get() > 0);
        assert!(metrics.max_fds.get() >= metrics.open_fds.get());
        assert!(metrics.start_time.get() > 1.6e9);
    }
}
