//! Stage 6, detect: from events to races. In: decoded events in stream order and the code
//! sites' stacks. Out: each distinct race with both accesses' stacks ([`pipeline::ResolvedRace`]),
//! found the moment it happens.
//!
//! [`translate`] turns Go's operations into the happens-before [`Operation`]s the way Go's
//! `-race` annotates them, the [`engine`] keeps the clocks and finds the races, and
//! [`pipeline`] runs the two over live or recorded events and keeps, for each race, what its
//! report and graph need ([`history`]).

pub mod engine;
pub mod history;
pub mod pipeline;
pub mod translate;

pub use engine::{
    Access, Address, Engine, GoroutineId, Limits, Operation, RaceReport, SiteId, Stats,
};

/// The detector's hash tables, looked up for nearly every event and keyed by addresses and
/// goroutine ids: foldhash's few multiplications instead of SipHash's rounds, still seeded per
/// process.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
