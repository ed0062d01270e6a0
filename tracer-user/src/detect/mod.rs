//! The happens-before engine: turns a stream of synchronisation and map events into race
//! reports. Pure logic, no I/O.
//!
//! The caller translates Go's operations into generic [`Operation`]s the way Go's `-race`
//! annotates them (Mutex Unlock = release, Lock = acquire; WaitGroup Done = release-merge, Wait
//! return = acquire; channel slots = release-acquire; `go f()` = spawn; ...). [`Engine`] keeps
//! FastTrack-style vector clocks: one epoch per recorded map access, vector clocks only for
//! goroutines and synchronisation objects, indexed by reusable slots so they stay small. Every
//! bound it enforces (maps, objects, goroutines, slots) and every [`Operation::Gap`] can make it
//! miss a race, never report one that is not there; [`Stats`] counts what was given up.

mod clock;
mod clock_table;
mod engine;
mod lru;
mod maps;
mod model;
mod reports;
mod shadow;
mod slots;
mod sync_objects;
#[cfg(test)]
mod tests;

pub use engine::Engine;
pub use model::{
    Access, Address, Event, GoroutineId, Limits, Operation, RaceReport, SiteId, Stats,
};
