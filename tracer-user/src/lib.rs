//! tracer: find concurrent map access in running, unmodified Go programs with eBPF.
//!
//! The modules are the pipeline's stages, in the order data flows through them (each one only
//! uses those above it):
//!
//! | stage | in | out |
//! |---|---|---|
//! | [`analyse`] | a Go executable's bytes | its version, functions, code and sync call sites |
//! | [`plan`] | the analysed executable | where to probe and what each probe means |
//! | [`probes`] | the plan and a pid | kernel programs loaded and attached, their ring buffer |
//! | [`target`] | a pid or a command line | the traced process, paused or running, and its exit |
//! | [`events`] | the ring buffer's records | typed events, their stacks, the `--events` recording |
//! | [`detect`] | events in stream order | races (happens-before), with their stacks |
//! | [`report`] | races and counts | race reports, graphs, the closing summary |
//! | [`metrics`] | a session's totals | Prometheus metrics and their endpoint |
//! | [`session`] | all of the above, live | one tracing session: windows, draining, stopping |
//! | [`commands`] | the command line | `inspect`, `attach`, `run` and `replay` wired together |
//!
//! [`error`] holds the one error type every stage returns, with its exit status.

pub mod analyse;
pub mod commands;
pub mod detect;
pub mod error;
pub mod events;
pub mod metrics;
pub mod plan;
pub mod probes;
pub mod report;
pub mod session;
pub mod target;
