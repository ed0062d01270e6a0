//! The last stage, commands: the command line ([`cli`]) wired to the stages. Thin: each command
//! reads its arguments, calls the stages in pipeline order and turns the outcome into an exit
//! status.

pub mod cli;
pub mod inspect;
pub mod replay;
mod trace;

pub use inspect::inspect;
pub use replay::replay;
pub use trace::{attach, run};

use crate::error::TracerError;

/// Exit status when at least one race was reported, as with `go build -race`.
pub const RACE_EXIT_STATUS: i32 = 66;

fn runtime() -> Result<tokio::runtime::Runtime, TracerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("starting the async runtime: {error}").into())
}
