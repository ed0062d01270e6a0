//! Project tasks. Every task first runs `setup`, so each works on a fresh machine:
//!
//! * `cargo xtask setup`  install what the build and the tests need (idempotent)
//! * `cargo xtask test`   setup, format check, clippy, unit tests, root integration tests, corpus
//! * `cargo xtask demo`   build tracer and the demo Go service, and trace the service
//! * `cargo xtask bench`  measurements (see xtask/src/bench.rs)
//! * `cargo xtask corpus` accuracy on the labelled corpus (see xtask/src/corpus.rs)
//! * `cargo xtask fuzz`   the fuzz targets of the binary parsers (see xtask/src/fuzz.rs)
//! * `cargo xtask soak`   a long traced session's memory, drops and races (see xtask/src/soak.rs)
//! * `cargo xtask dist`   a static `tracer` for machines without the toolchain (xtask/src/dist.rs)

mod bench;
mod corpus;
mod demo;
mod dist;
mod fuzz;
mod hunt;
mod setup;
mod shell;
mod soak;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "tracer's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the toolchain pieces, Go versions and Debian packages the build and tests need.
    Setup,
    /// Setup, then format check, clippy, unit tests, the root integration tests and the corpus.
    Test,
    /// Setup, then build tracer and the demo Go service and run the service under `tracer run`.
    Demo,
    /// Setup, then confirm the corpus labels with `go build -race` and run every corpus program
    /// under tracer with every Go version; prints precision and recall, fails on any mistake.
    Corpus {
        /// Only these Go versions (default: all supported), e.g. --go 1.27.3.
        #[arg(long = "go", value_name = "VERSION")]
        versions: Vec<String>,
        /// Only programs whose name contains this.
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
    },
    /// Setup, then run the benchmarks and print one table.
    Bench {
        /// Only these parts (default: all but hunt).
        #[arg(long = "part", value_enum)]
        parts: Vec<bench::Part>,
        /// Runs per case of the hunt part.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only the hunt cases whose name contains this (e.g. "busy, default budget (10%),
        /// race every 1s"); their throughput rows are left out.
        #[arg(long, value_name = "TEXT")]
        case: Option<String>,
    },
    /// Setup, then trace the demo service for a while: steady memory, no drops, stable races.
    Soak {
        /// How long to trace.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Setup, then build a statically linked tracer into target/dist and check it in an empty
    /// root (no loader, no libc, no toolchain) and on the demo service.
    Dist,
    /// Setup, then run each fuzz target (cargo-fuzz) for a bounded time from fresh seeds.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// libFuzzer's random seed (default: one drawn from the clock, printed). A failed run
        /// names its seed: with the same seconds and a fresh `fuzz/corpus` it replays the run.
        #[arg(long)]
        seed: Option<u32>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let environment = setup::run()?;
    match cli.task {
        Task::Setup => Ok(()),
        Task::Test => test::run(&environment),
        Task::Demo => demo::run(&environment),
        Task::Bench { parts, runs, case } => {
            bench::run(&environment, &parts, runs, case.as_deref())
        }
        Task::Corpus { versions, only } => corpus::run(&environment, &versions, only.as_deref()),
        Task::Fuzz { seconds, seed } => fuzz::run(&environment, seconds, seed),
        Task::Soak { minutes } => soak::run(&environment, minutes),
        Task::Dist => dist::run(&environment),
    }
}
