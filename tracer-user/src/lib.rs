//! tracer: find concurrent map access in running, unmodified Go programs with eBPF.
//!
//! Data flows one way: [`gobin`] analyses the executable, [`plan`] decides where to probe
//! ([`inspect`] shows it), [`probes`] attaches, [`session`] drains and decodes ([`events`]) and
//! [`summary`], [`report`] and [`metrics`] report.

pub mod calibrate;
pub mod cli;
pub mod commands;
pub mod detect;
pub mod detection;
pub mod error;
pub mod events;
pub mod gobin;
pub mod graph;
pub mod inspect;
pub mod metrics;
pub mod plan;
pub mod privileges;
pub mod probes;
pub mod race_log;
pub mod replay;
pub mod report;
pub mod sampling;
pub mod session;
pub mod sites;
pub mod stacks;
pub mod summary;
pub mod sync_functions;
pub mod target;
pub mod translate;
