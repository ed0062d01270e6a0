//! The engine driven by synthetic event traces.

mod bounds;
mod differential;
mod edges;
mod properties;
mod scale;

use super::{Access, Address, Engine, GoroutineId, Limits, Operation, RaceReport, SiteId};

const MAIN: GoroutineId = 1;
const MAP: Address = 0xc000_1000;
const LOCK: Address = 0xc000_2000;
/// A second lock, for traces that hand knowledge on in two steps.
const OTHER_LOCK: Address = 0xc000_2008;
/// A map whose history tests discard (see [`Trace::hold_slot`]).
const SCRATCH: Address = 0xc000_3000;

/// Feeds operations to an engine in stream order and collects what it reports.
struct Trace {
    engine: Engine,
    seq: u64,
    reported: Vec<RaceReport>,
}

impl Trace {
    fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Self {
        Self {
            engine: Engine::new(limits),
            seq: 0,
            reported: Vec::new(),
        }
    }

    fn op(&mut self, operation: Operation) -> &mut Self {
        self.seq += 1;
        self.reported
            .extend(self.engine.process(self.seq, operation));
        self
    }

    fn spawn(&mut self, parent: GoroutineId, child: GoroutineId, site: SiteId) -> &mut Self {
        self.op(Operation::Spawn {
            parent,
            child,
            site,
        })
    }

    fn exit(&mut self, goroutine: GoroutineId) -> &mut Self {
        self.op(Operation::Exit { goroutine })
    }

    fn acquire(&mut self, goroutine: GoroutineId, object: Address) -> &mut Self {
        self.op(Operation::Acquire { goroutine, object })
    }

    fn acquire_all(&mut self, goroutine: GoroutineId) -> &mut Self {
        self.op(Operation::AcquireAll { goroutine })
    }

    fn release(&mut self, goroutine: GoroutineId, object: Address) -> &mut Self {
        self.op(Operation::Release { goroutine, object })
    }

    fn release_merge(&mut self, goroutine: GoroutineId, object: Address) -> &mut Self {
        self.op(Operation::ReleaseMerge { goroutine, object })
    }

    fn release_acquire(&mut self, goroutine: GoroutineId, object: Address) -> &mut Self {
        self.op(Operation::ReleaseAcquire { goroutine, object })
    }

    fn created(&mut self, map: Address) -> &mut Self {
        self.op(Operation::MapCreated { map })
    }

    fn object_created(&mut self, object: Address) -> &mut Self {
        self.op(Operation::ObjectCreated { object })
    }

    fn read(&mut self, goroutine: GoroutineId, map: Address, site: SiteId) -> &mut Self {
        self.access(goroutine, map, false, site)
    }

    fn write(&mut self, goroutine: GoroutineId, map: Address, site: SiteId) -> &mut Self {
        self.access(goroutine, map, true, site)
    }

    fn access(
        &mut self,
        goroutine: GoroutineId,
        map: Address,
        write: bool,
        site: SiteId,
    ) -> &mut Self {
        self.op(Operation::MapAccess {
            goroutine,
            map,
            write,
            site,
        })
    }

    /// `goroutine` takes a slot (goroutines take one at a map access) that no record names:
    /// it reads a scratch map, then a new map is made at that address.
    fn hold_slot(&mut self, goroutine: GoroutineId) -> &mut Self {
        self.read(goroutine, SCRATCH, 0).created(SCRATCH)
    }

    fn gap(&mut self, goroutines: Option<Vec<GoroutineId>>) -> &mut Self {
        self.op(Operation::Gap { goroutines })
    }

    fn assert_silent(&self) {
        assert_eq!(self.reported, [], "no race expected");
        assert_eq!(self.engine.reports(), []);
    }

    /// Exactly one race was reported, between these (goroutine, site, write) accesses.
    fn assert_one_race(
        &self,
        previous: (GoroutineId, SiteId, bool),
        current: (GoroutineId, SiteId, bool),
    ) {
        let side = |access: &Access| (access.goroutine, access.site, access.write);
        let [report] = &self.reported[..] else {
            panic!("expected exactly one race, got {:#?}", self.reported);
        };
        assert_eq!(
            (side(&report.previous), side(&report.current)),
            (previous, current)
        );
        assert_eq!(report.count, 1);
        assert_eq!(self.engine.reports(), &self.reported[..]);
    }
}
