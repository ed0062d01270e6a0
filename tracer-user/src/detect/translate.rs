//! From decoded events to the detector's happens-before operations, following Go's `-race`
//! annotations (runtime/chan.go, sync/*.go). Per goroutine, calls of out-of-line sync functions
//! nest like a stack, so each `sync-exit` is paired with its `sync-enter` (object included).
//!
//! Channels follow `-race` slot by slot: the kernel records, under the channel's lock, each slot
//! a value enters or leaves and each hand-off to a parked goroutine, and an operation whose slot
//! is recognised learns exactly what went through it. An operation whose slot was not seen (a
//! receive woken by `close`, a `select` whose cases were not recorded) falls back to objects
//! every operation of the channel — or every channel — publishes to: more ordering than the
//! program has, which can hide a race but never invent one.

use smallvec::{smallvec, SmallVec};
use tracer_common::MAX_SELECT_CASES;

use crate::{
    detect::{Address, GoroutineId, HashMap, HashSet, Operation, SiteId},
    events::{ChannelBuffer, Event, Op},
    plan::catalogue::{FunctionId, Global, OnEntry, OnReturn, RWMUTEX_WRITER_SEM},
};

/// What one event stands for: one to three operations for most events, kept inline so that
/// translating them allocates nothing (a hand-off, a receive that learns from a timer's
/// arming, a new channel's first operation may need more, and spill to the heap). Three and
/// not four: the vector is moved between the translation's steps, and at 104 bytes a move is
/// a few register copies where at 136 it was a call of `memmove` (docs/performance.md).
pub type Operations = SmallVec<[Operation; 3]>;

/// The happens-before objects translation adds to the program's own: each is derived from a
/// real object (or from none, for the shared ones) and kept apart from every real object and
/// from each other by a tag in the top byte, above any user-space address (x86-64 user
/// addresses stay below 2^47). A nil channel's objects are therefore not the shared ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Derived {
    /// The reverse direction of a channel (receives release, sends acquire), and the writer
    /// side of an RWMutex.
    Companion = 1,
    /// A channel's close: a receive that got a value learns only what the sends released, so
    /// a sender's later work (up to its `close`) stays unordered with it, as with `-race`; only
    /// a receive that saw the close learns what preceded the close.
    Closing = 2,
    /// The release of an AfterFunc callback's arming, on the callback.
    Callback = 3,
    /// The release of a value put into a `sync.Pool`.
    Pooled = 4,
    /// The release of a value published through `atomic.Value`.
    Publication = 5,
    /// Every channel operation publishes to it and every `select` acquires it.
    AnyChannel = 6,
    /// A `select` with more cases than the kernel records ([`MAX_SELECT_CASES`]) publishes to it
    /// when it starts, and every channel operation learns from it when it completes: its
    /// channels are unknown, and a value it sends may be received by a plain receive.
    AnySelect = 7,
    /// One flow of data between file descriptors (a connection's direction, a pipe, a file),
    /// by the key the kernel program found for it (`object::WRITTEN_FLOW`): writes release
    /// into it, reads acquire it.
    Flow = 8,
    /// One object for the whole program, by its [`Global`] kind (pprof labels, cgo calls).
    Global = 9,
}

const TAG_SHIFT: u32 = 56;

impl Derived {
    const ALL: [Self; 9] = [
        Self::Companion,
        Self::Closing,
        Self::Callback,
        Self::Pooled,
        Self::Publication,
        Self::Flow,
        Self::Global,
        // The shared objects last (see the test of derived objects).
        Self::AnyChannel,
        Self::AnySelect,
    ];

    /// The object of this kind derived from `object`.
    pub fn of(self, object: Address) -> Address {
        (self as u64) << TAG_SHIFT | object & ((1 << TAG_SHIFT) - 1)
    }

    /// What `object` is: a derived object and what it was derived from, or `None` for one of
    /// the program's own.
    pub fn split(object: Address) -> Option<(Self, Address)> {
        let tag = object >> TAG_SHIFT;
        let kind = Self::ALL.into_iter().find(|kind| *kind as u64 == tag)?;
        Some((kind, object & ((1 << TAG_SHIFT) - 1)))
    }
}

fn companion(object: Address) -> Address {
    Derived::Companion.of(object)
}

fn closing(channel: Address) -> Address {
    Derived::Closing.of(channel)
}

fn callback(function: Address) -> Address {
    Derived::Callback.of(function)
}

fn pooled(value: Address) -> Address {
    Derived::Pooled.of(value)
}

fn publication(pointer: Address) -> Address {
    Derived::Publication.of(pointer)
}

fn flow(key: u64) -> Address {
    Derived::Flow.of(key)
}

/// The one object of a kind of synchronisation tracer cannot see.
pub fn global(kind: Global) -> Address {
    Derived::Global.of(kind as u64)
}

const ANY_CHANNEL: Address = (Derived::AnyChannel as u64) << TAG_SHIFT;
const ANY_SELECT: Address = (Derived::AnySelect as u64) << TAG_SHIFT;

/// `goroutine`'s operation through a slot of `buffer`, as -race's `racenotify`: the slot
/// takes the goroutine's clock and the goroutine learns what the slot carried; slots of
/// zero-size elements (all one address) accumulate instead.
fn through_slot(goroutine: GoroutineId, slot: Address, buffer: ChannelBuffer) -> Operations {
    match buffer.element_size {
        0 => smallvec![
            Operation::Acquire {
                goroutine,
                object: slot,
            },
            Operation::ReleaseMerge {
                goroutine,
                object: slot,
            },
        ],
        _ => smallvec![Operation::ReleaseAcquire {
            goroutine,
            object: slot,
        }],
    }
}

/// An unbuffered hand-off between `active` and the parked `partner`, as -race's `racesync`:
/// each learns what the other knew (through `object`, which accumulates). Also the fallback
/// for a hand-off on an unrecognised channel: more ordering than any channel gives.
fn racesync(active: GoroutineId, partner: GoroutineId, object: Address) -> Operations {
    smallvec![
        Operation::ReleaseMerge {
            goroutine: active,
            object,
        },
        Operation::Acquire {
            goroutine: partner,
            object,
        },
        Operation::ReleaseMerge {
            goroutine: partner,
            object,
        },
        Operation::Acquire {
            goroutine: active,
            object,
        },
    ]
}

fn acquire(goroutine: GoroutineId, object: Address) -> Operation {
    Operation::Acquire { goroutine, object }
}

fn release_merge(goroutine: GoroutineId, object: Address) -> Operation {
    Operation::ReleaseMerge { goroutine, object }
}

/// The catalogue's meaning of a sync function's probe.
fn sync_meaning(function: Option<FunctionId>) -> Option<(FunctionId, OnEntry, OnReturn)> {
    let id = function?;
    let (on_entry, on_return) = id.function().sync()?;
    Some((id, on_entry, on_return))
}

/// A channel operation in progress.
#[derive(Clone, Copy, Debug)]
struct ChannelOp {
    channel: Address,
    buffer: Option<ChannelBuffer>,
    /// Its value went through a slot or hand-off that was seen: it has learnt what it must.
    paired: bool,
}

impl ChannelOp {
    fn new(channel: Address, buffer: Option<ChannelBuffer>) -> Self {
        Self {
            channel,
            buffer,
            paired: false,
        }
    }

    /// Marks the operation paired if `slot` is one of its channel's slots.
    fn pair(&mut self, slot: Address) -> Option<ChannelBuffer> {
        let buffer = self.buffer.filter(|buffer| buffer.holds(slot))?;
        self.paired = true;
        Some(buffer)
    }
}

/// The cases of the `select` a goroutine is in, as the kernel recorded them at its start.
#[derive(Default)]
struct SelectCases {
    /// How many cases the select has.
    expected: u64,
    /// (operation, is a send), by case index.
    cases: Vec<(ChannelOp, bool)>,
}

/// What an open call is waiting to return from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenCall {
    /// An out-of-line sync function.
    Function(FunctionId),
    /// An inlined RLock that found a writer, waiting in `runtime_SemacquireRWMutexR`.
    ReaderWait,
}

/// Per-goroutine state between events.
#[derive(Default)]
struct GoroutineState {
    /// The code site of the `go` statement being executed (its goroutine is created next).
    go_statement: SiteId,
    /// Open out-of-line calls: (what is waited for, first argument).
    calls: Vec<(OpenCall, Address)>,
    /// Receives and non-blocking selects in progress, innermost last.
    receives: Vec<ChannelOp>,
    sends: Vec<ChannelOp>,
    /// The cases of the `select` in progress.
    select: Option<SelectCases>,
}

/// Translates events in stream order; keeps what it needs to pair returns with calls.
#[derive(Default)]
pub struct Translator {
    goroutines: HashMap<GoroutineId, GoroutineState>,
    /// Maps published through `atomic.Value`: whoever accesses one has loaded it atomically (or
    /// racily, a race this cannot see), so the access acquires its publication first, as the
    /// race detector's atomic Load would.
    published: HashSet<Address>,
    /// The AfterFunc callbacks whose goroutine is being started, by thread: timers fire on the
    /// scheduler's stack, where every thread has the same goroutine id (0), and `goFunc` starts
    /// the callback's goroutine on the thread that fired the timer.
    firing: HashMap<u32, Address>,
    /// What timers were reset with: the channel a `NewTimer`'s or `Ticker`'s timer delivers on
    /// (or an AfterFunc callback). A receive from such a channel also learns what the reset
    /// released (`callback`), as -race orders the arming before the runtime's send.
    armed: HashSet<Address>,
    /// Channels made since tracing began and not operated on yet, by their objects made on
    /// first use: the buffer's slots at the first operation (which shows them; it also ends
    /// the channel's stay here), the publication at the channel's first `atomic.Value` store
    /// and the timer callback at the first arming of a timer delivering on it, both of which
    /// come before, when they come (`context` and `time` make, publish or arm, then use). A
    /// channel's object made new too late keeps what its memory carried: more ordering, never
    /// less. Emptied when it grows past [`MADE_CHANNELS`].
    made: HashMap<Address, FirstUse>,
    /// Whether a `select` with more cases than the kernel records has released into the
    /// `select` catch-all yet.
    select_published: bool,
}

/// Channels remembered in [`Translator::made`].
const MADE_CHANNELS: usize = 1 << 16;

/// The objects derived from a new channel still to be made new at their first use (its slots
/// aside): one bit per [`Derived`] kind.
#[derive(Clone, Copy)]
struct FirstUse(u16);

impl FirstUse {
    /// Those made at their first use rather than with the channel.
    const ALL: Self = Self(Self::bit(Derived::Publication) | Self::bit(Derived::Callback));

    const fn bit(kind: Derived) -> u16 {
        1 << kind as u16
    }
}

/// Slots of a new channel's buffer made new objects; the memory of larger buffers keeps what
/// it carried beyond them (more ordering, never less).
const NEW_SLOTS: u64 = 16;

impl Translator {
    /// The operations `event` stands for. `function` is the catalogue function its probe
    /// observes (none for inlined sync sites); `site` identifies its code location for reports
    /// (map accesses only).
    pub fn translate(
        &mut self,
        event: &Event,
        function: Option<FunctionId>,
        site: SiteId,
    ) -> Operations {
        let mut operations = self.operations(event, function, site);
        // The `select` catch-all carries nothing until a `select` with too many cases releases
        // into it; an acquire before that could only learn what the filter of evicted objects
        // wrongly takes it to have carried (the filter fills up on a long trace).
        if !self.select_published {
            self.select_published = operations.iter().any(|operation| {
                matches!(operation, Operation::ReleaseMerge { object, .. } if *object == ANY_SELECT)
            });
            operations.retain(|operation| {
                !matches!(operation, Operation::Acquire { object, .. } if *object == ANY_SELECT)
            });
        }
        operations
    }

    fn operations(
        &mut self,
        event: &Event,
        function: Option<FunctionId>,
        site: SiteId,
    ) -> Operations {
        let goroutine = event.goroutine;
        match event.op {
            // A nil map: lookups and deletes do nothing and an assignment panics, so nothing is
            // shared; and every nil map has address 0, which must not make them one map.
            Op::Map { map: 0, .. } => Operations::new(),
            Op::Map { access, map, .. } => self.map_access(goroutine, map, access.is_write(), site),
            Op::MapMade { map } => {
                self.published.remove(&map);
                smallvec![Operation::MapCreated { map }]
            }
            Op::AtomicPublish { value } => {
                self.published.insert(value);
                let mut operations = self.first_use(value, Derived::Publication);
                operations.push(release_merge(goroutine, publication(value)));
                operations
            }
            Op::GoStatement => {
                self.state(goroutine).go_statement = site;
                Operations::new()
            }
            Op::GoroutineCreate { child, parent } => self.spawn(parent, child, event.tid),
            Op::TimerArm {
                callback: armed_with,
            } => {
                // `AfterFunc` is passed its callback; `resetTimer` reads the timer's argument
                // (`object_in`), the channel of a `NewTimer`'s or `Ticker`'s timer. Only those
                // are kept: a service arms an AfterFunc per request (`context.WithTimeout`).
                let mut operations = Operations::new();
                if function.is_some_and(|id| id.function().object_in.is_some()) {
                    self.armed.insert(armed_with);
                    operations = self.first_use(armed_with, Derived::Callback);
                }
                operations.push(release_merge(goroutine, callback(armed_with)));
                operations
            }
            Op::TimerFire { callback } => {
                self.firing.insert(event.tid, callback);
                Operations::new()
            }
            // As -race: Put releases on the value, a Get that returns it acquires.
            Op::PoolPut { value } => smallvec![release_merge(goroutine, pooled(value))],
            Op::PoolGet { value } if value != 0 => smallvec![acquire(goroutine, pooled(value))],
            Op::PoolGet { .. } => Operations::new(),
            // Typed atomics, as -race: writes release (merging: concurrent writers' events
            // may reach the stream in another order than their stores), reads acquire.
            Op::AtomicRelease { word } => smallvec![release_merge(goroutine, word)],
            Op::AtomicAcquire { word } => smallvec![acquire(goroutine, word)],
            Op::GoroutineExit => {
                self.goroutines.remove(&goroutine);
                smallvec![Operation::Exit { goroutine }]
            }
            Op::SyncEnter { object, arg } => match sync_meaning(function) {
                Some((id, on_entry, on_return)) => {
                    self.enter(goroutine, id, on_entry, on_return, object, arg)
                }
                None => Operations::new(),
            },
            Op::SyncExit { result } => match sync_meaning(function) {
                Some((id, _, on_return)) => self.exit(goroutine, id, on_return, result),
                None => Operations::new(),
            },
            // The channel and the objects derived from it are new, though the collector may
            // have put it where a dead channel was. Those every channel operation may use are
            // made now, the others at their first use (`made`).
            Op::ChanMade { channel } => {
                self.published.remove(&channel);
                self.armed.remove(&channel);
                if self.made.len() >= MADE_CHANNELS {
                    self.made.clear();
                }
                self.made.insert(channel, FirstUse::ALL);
                [channel, companion(channel), closing(channel)]
                    .into_iter()
                    .map(|object| Operation::ObjectCreated { object })
                    .collect()
            }
            Op::Fatal { .. } | Op::Exec => Operations::new(),
            op => {
                let mut operations = self
                    .inlined_sync(goroutine, op)
                    .or_else(|| self.channel(goroutine, function, op))
                    .or_else(|| self.slot(goroutine, op))
                    .or_else(|| self.select(goroutine, op))
                    .unwrap_or_default();
                if let Some(loaded) = self.loaded_channel(goroutine, op) {
                    operations.insert(0, loaded);
                }
                if let Some(new_slots) = self.new_slots(op) {
                    operations.insert_many(0, new_slots);
                }
                operations
            }
        }
    }

    /// A map access, after the publication of the map when it was published through
    /// `atomic.Value`: whoever accesses it has loaded it atomically (or racily, a race this
    /// cannot see), so the access acquires its publication first, as -race's atomic Load would.
    fn map_access(
        &self,
        goroutine: GoroutineId,
        map: Address,
        write: bool,
        site: SiteId,
    ) -> Operations {
        let mut operations = Operations::new();
        if self.published.contains(&map) {
            operations.push(acquire(goroutine, publication(map)));
        }
        operations.push(Operation::MapAccess {
            goroutine,
            map,
            write,
            site,
        });
        operations
    }

    /// `go f()`: the child starts with its parent's knowledge (and an AfterFunc callback with
    /// what its arming published, when this thread is starting one).
    fn spawn(&mut self, parent: GoroutineId, child: GoroutineId, tid: u32) -> Operations {
        let site = std::mem::take(&mut self.state(parent).go_statement);
        let mut operations = smallvec![Operation::Spawn {
            parent,
            child,
            site,
        }];
        if let Some(function) = self.firing.remove(&tid) {
            operations.push(acquire(child, callback(function)));
        }
        operations
    }

    /// A channel published through `atomic.Value` (`context`'s `Done` channel, for one: a
    /// cancelled context's is the runtime's pre-closed channel, stored by `cancel` and loaded
    /// lock-free by `Done`): whoever operates on it has loaded it, so it acquires the
    /// publication first, as for a map published that way.
    fn loaded_channel(&self, goroutine: GoroutineId, op: Op) -> Option<Operation> {
        let (Op::Send { channel, .. }
        | Op::Receive { channel, .. }
        | Op::Close { channel }
        | Op::SelectNonBlocking { channel, .. }
        | Op::SelectCase { channel, .. }) = op
        else {
            return None;
        };
        self.published
            .contains(&channel)
            .then(|| acquire(goroutine, publication(channel)))
    }

    /// `kind.of(channel)` as a new object if `channel` was made since tracing began, is not
    /// operated on yet, and that object is not used yet.
    fn first_use(&mut self, channel: Address, kind: Derived) -> Operations {
        let bit = FirstUse::bit(kind);
        match self.made.get_mut(&channel) {
            Some(unused) if unused.0 & bit != 0 => {
                unused.0 &= !bit;
                smallvec![Operation::ObjectCreated {
                    object: kind.of(channel)
                }]
            }
            _ => Operations::new(),
        }
    }

    /// The slots of a channel made since tracing began, at the first operation that shows its
    /// buffer: new objects, like the channel.
    fn new_slots(&mut self, op: Op) -> Option<impl Iterator<Item = Operation>> {
        let (Op::Send { channel, buffer }
        | Op::Receive { channel, buffer }
        | Op::SelectNonBlocking { channel, buffer }
        | Op::SelectCase {
            channel, buffer, ..
        }) = op
        else {
            return None;
        };
        let buffer = buffer.filter(|buffer| buffer.address != 0)?;
        self.made.remove(&channel)?;
        // Zero-size elements, and an unbuffered channel, have one slot at the buffer's address.
        let step = buffer.element_size;
        let slots = match (buffer.capacity, step) {
            (0, _) | (_, 0) => 1,
            (capacity, _) => capacity.min(NEW_SLOTS),
        };
        Some((0..slots).map(move |index| Operation::ObjectCreated {
            object: buffer.address.wrapping_add(index.wrapping_mul(step)),
        }))
    }

    /// Inlined fast paths (`None` for other operations).
    fn inlined_sync(&mut self, goroutine: GoroutineId, op: Op) -> Option<Operations> {
        Some(match op {
            // A failed Lock CAS continues in lockSlow, whose return acquires.
            Op::Lock { mutex, acquired } | Op::TryLock { mutex, acquired } => match acquired {
                true => smallvec![acquire(goroutine, mutex)],
                false => Operations::new(),
            },
            Op::Unlock { mutex } => smallvec![Operation::Release {
                goroutine,
                object: mutex,
            }],
            // A negative reader count means a writer holds the lock: the reader waits in
            // runtime_SemacquireRWMutexR, whose return acquires.
            Op::RLock { rw, readers } if readers >= 0 => smallvec![acquire(goroutine, rw)],
            Op::RLock { rw, .. } => {
                self.state(goroutine).calls.push((OpenCall::ReaderWait, rw));
                Operations::new()
            }
            Op::RUnlock { rw } => smallvec![release_merge(goroutine, companion(rw))],
            // Readers release into the companion before they leave (RUnlock above); a writer
            // past a check of the reader count learns what those that have left released.
            Op::ReadersChecked { rw } => smallvec![acquire(goroutine, companion(rw))],
            Op::OnceDo { once, done: true } => smallvec![acquire(goroutine, once)],
            Op::OnceDo { .. } | Op::WaitGroupDone { .. } => Operations::new(),
            Op::OnceDone { once } => smallvec![release_merge(goroutine, once)],
            _ => return None,
        })
    }

    /// Sends, receives and closes (`None` for other operations). Each operation publishes to its channel (sends)
    /// or the channel's companion (receives) for the operations whose slot goes unseen, which
    /// learn from there when they complete; a paired operation has learnt from its slot.
    fn channel(
        &mut self,
        goroutine: GoroutineId,
        function: Option<FunctionId>,
        op: Op,
    ) -> Option<Operations> {
        let acquire = |object| acquire(goroutine, object);
        let release_merge = |object| release_merge(goroutine, object);
        // A channel operation whose start (or select cases) was not seen learns from every
        // channel operation.
        let after_every_channel = || smallvec![acquire(ANY_CHANNEL), acquire(ANY_SELECT)];
        Some(match op {
            Op::Send { channel, buffer } => {
                self.state(goroutine)
                    .sends
                    .push(ChannelOp::new(channel, buffer));
                smallvec![release_merge(channel), release_merge(ANY_CHANNEL)]
            }
            Op::SendDone => match self.state(goroutine).sends.pop() {
                Some(op) if op.paired => smallvec![acquire(ANY_SELECT)],
                Some(op) => smallvec![acquire(companion(op.channel)), acquire(ANY_SELECT)],
                None => after_every_channel(),
            },
            Op::Receive { channel, buffer } => {
                self.state(goroutine)
                    .receives
                    .push(ChannelOp::new(channel, buffer));
                smallvec![
                    release_merge(companion(channel)),
                    release_merge(ANY_CHANNEL),
                ]
            }
            // chanrecv2 and reflect's chanrecv return whether a value arrived (false: the
            // channel is closed); chanrecv1 cannot tell, so it learns from both sends and close.
            Op::ReceiveDone { received } => {
                let receive = self.state(goroutine).receives.pop();
                let mut operations = match receive {
                    Some(op) if op.paired => smallvec![acquire(ANY_SELECT)],
                    Some(op) if function.is_some_and(|id| id.function().reports_received()) => {
                        match received {
                            true => smallvec![acquire(op.channel), acquire(ANY_SELECT)],
                            false => smallvec![acquire(closing(op.channel))],
                        }
                    }
                    Some(op) => smallvec![
                        acquire(op.channel),
                        acquire(closing(op.channel)),
                        acquire(ANY_SELECT),
                    ],
                    // Its start was not seen (a hole in the stream, or tracing began during it).
                    None => after_every_channel(),
                };
                if let Some(op) = receive {
                    operations.extend(self.timer_delivery(goroutine, op.channel));
                }
                operations
            }
            Op::Close { channel } => {
                smallvec![release_merge(closing(channel)), release_merge(ANY_CHANNEL)]
            }
            _ => return None,
        })
    }

    /// A value through a slot or handed to a parked goroutine (`None` for other operations).
    fn slot(&mut self, goroutine: GoroutineId, op: Op) -> Option<Operations> {
        Some(match op {
            // As -race's racenotify: a slot carries the clock of the last operation through it
            // (elements of size zero share one slot, which accumulates).
            Op::ChanSlot { slot } => match self.pair(goroutine, slot) {
                Some(buffer) => through_slot(goroutine, slot, buffer),
                // Not a slot of the operation in progress: the goroutine's own variable.
                None => Operations::new(),
            },
            // As -race: through the slot for a buffered channel (the parked partner second),
            // both ways for an unbuffered one (racesync), and both ways when the channel is
            // not recognised (more ordering than either).
            Op::HandOff { slot, partner } => {
                let mine = self.pair(goroutine, slot);
                let theirs = self.pair(partner, slot);
                match mine.or(theirs) {
                    Some(buffer) if buffer.capacity > 0 => {
                        let mut operations = through_slot(goroutine, slot, buffer);
                        operations.extend(through_slot(partner, slot, buffer));
                        operations
                    }
                    _ => racesync(goroutine, partner, slot),
                }
            }
            _ => return None,
        })
    }

    /// `select`, blocking or not (`None` for other operations).
    fn select(&mut self, goroutine: GoroutineId, op: Op) -> Option<Operations> {
        let acquire = |object| acquire(goroutine, object);
        let release_merge = |object| release_merge(goroutine, object);
        let after_every_channel = || smallvec![acquire(ANY_CHANNEL), acquire(ANY_SELECT)];
        Some(match op {
            Op::SelectNonBlocking { channel, buffer } => {
                self.state(goroutine)
                    .receives
                    .push(ChannelOp::new(channel, buffer));
                smallvec![release_merge(channel), release_merge(companion(channel))]
            }
            Op::SelectNonBlockingDone { selected } => {
                let attempt = self.state(goroutine).receives.pop();
                let mut operations = match (attempt, selected) {
                    (Some(op), true) if !op.paired => smallvec![
                        acquire(op.channel),
                        acquire(companion(op.channel)),
                        acquire(closing(op.channel)),
                    ],
                    (None, true) => after_every_channel(),
                    _ => Operations::new(),
                };
                if let (Some(op), true) = (attempt, selected) {
                    operations.extend(self.timer_delivery(goroutine, op.channel));
                }
                operations
            }
            // A select publishes on each of its cases' channels when it starts (whichever case
            // completes, it does so after this), and learns from the chosen one when it returns.
            Op::SelectEnter { cases } => {
                self.state(goroutine).select = Some(SelectCases {
                    expected: cases,
                    cases: Vec::new(),
                });
                match cases > MAX_SELECT_CASES {
                    true => smallvec![release_merge(ANY_SELECT)],
                    false => Operations::new(),
                }
            }
            Op::SelectCase {
                channel,
                send,
                buffer,
                ..
            } => {
                match self.state(goroutine).select.as_mut() {
                    Some(select) => select.cases.push((ChannelOp::new(channel, buffer), send)),
                    None => return Some(Operations::new()),
                }
                match send {
                    true => smallvec![release_merge(channel), release_merge(ANY_CHANNEL)],
                    false => smallvec![
                        release_merge(companion(channel)),
                        release_merge(ANY_CHANNEL),
                    ],
                }
            }
            Op::SelectChosen { case, received } => {
                let chosen = self.state(goroutine).select.take().and_then(|select| {
                    let complete = select.cases.len() as u64 == select.expected;
                    complete.then(|| select.cases.get(case as usize).copied())
                });
                match chosen {
                    // A default case (or no case at all) was taken.
                    Some(None) => smallvec![acquire(ANY_SELECT)],
                    Some(Some((op, send))) if op.paired => {
                        let mut operations = smallvec![acquire(ANY_SELECT)];
                        if !send {
                            operations.extend(self.timer_delivery(goroutine, op.channel));
                        }
                        operations
                    }
                    Some(Some((op, true))) => {
                        smallvec![acquire(companion(op.channel)), acquire(ANY_SELECT)]
                    }
                    Some(Some((op, false))) if received => {
                        let mut operations = smallvec![acquire(op.channel), acquire(ANY_SELECT)];
                        operations.extend(self.timer_delivery(goroutine, op.channel));
                        operations
                    }
                    Some(Some((op, false))) => {
                        smallvec![acquire(closing(op.channel)), acquire(ANY_SELECT)]
                    }
                    // Cases unknown: learn from every channel operation.
                    None => after_every_channel(),
                }
            }
            _ => return None,
        })
    }

    /// For a value received from a channel a timer delivers on: learn what arming the timer
    /// released (the runtime sends from the timer, on whatever goroutine runs timers).
    fn timer_delivery(&self, goroutine: GoroutineId, channel: Address) -> Option<Operation> {
        self.armed
            .contains(&channel)
            .then(|| acquire(goroutine, callback(channel)))
    }

    fn state(&mut self, goroutine: GoroutineId) -> &mut GoroutineState {
        self.goroutines.entry(goroutine).or_default()
    }

    /// Pairs the channel operation `goroutine` has in progress with `slot`, if it is one of
    /// its channel's slots, and returns that channel's buffer.
    fn pair(&mut self, goroutine: GoroutineId, slot: Address) -> Option<ChannelBuffer> {
        let state = self.goroutines.get_mut(&goroutine)?;
        if let Some(buffer) = state.receives.last_mut().and_then(|op| op.pair(slot)) {
            return Some(buffer);
        }
        if let Some(buffer) = state.sends.last_mut().and_then(|op| op.pair(slot)) {
            return Some(buffer);
        }
        let select = state.select.as_mut()?;
        select.cases.iter_mut().find_map(|(op, _)| op.pair(slot))
    }

    fn enter(
        &mut self,
        goroutine: GoroutineId,
        function: FunctionId,
        on_entry: OnEntry,
        on_return: OnReturn,
        object: Address,
        arg: u64,
    ) -> Operations {
        if on_return != OnReturn::Nothing {
            // The returns are probed: they are matched with this entry for its object.
            self.state(goroutine)
                .calls
                .push((OpenCall::Function(function), object));
        }
        match on_entry {
            OnEntry::Nothing => Operations::new(),
            OnEntry::Release => smallvec![Operation::Release { goroutine, object }],
            OnEntry::ReleaseMerge => smallvec![Operation::ReleaseMerge { goroutine, object }],
            OnEntry::ReleaseMergeWriterSide => smallvec![Operation::ReleaseMerge {
                goroutine,
                object: companion(object),
            }],
            OnEntry::AddDelta if (arg as i64) < 0 => {
                smallvec![Operation::ReleaseMerge { goroutine, object }]
            }
            OnEntry::AddDelta => Operations::new(),
            OnEntry::Acquire => smallvec![acquire(goroutine, object)],
            OnEntry::AcquireEverything => smallvec![Operation::AcquireAll { goroutine }],
            OnEntry::ReleaseMergeGlobal(kind) => smallvec![release_merge(goroutine, global(kind))],
            OnEntry::AcquireGlobal(kind) => smallvec![acquire(goroutine, global(kind))],
            // 0: a descriptor whose flow is unknown (a Unix socket, …) orders nothing.
            OnEntry::WriteFlow if object == 0 => Operations::new(),
            OnEntry::WriteFlow => smallvec![Operation::ReleaseMerge {
                goroutine,
                object: flow(object),
            }],
        }
    }

    fn exit(
        &mut self,
        goroutine: GoroutineId,
        function: FunctionId,
        on_return: OnReturn,
        result: u64,
    ) -> Operations {
        // A TryLock acquires only when it returns true.
        let on_return = match on_return {
            OnReturn::AcquireIfTrue | OnReturn::AcquireBothIfTrue if result & 1 == 0 => {
                OnReturn::Nothing
            }
            OnReturn::AcquireIfTrue => OnReturn::Acquire,
            OnReturn::AcquireBothIfTrue => OnReturn::AcquireBoth,
            other => other,
        };
        let calls = &mut self.state(goroutine).calls;
        let open = OpenCall::Function(function);
        let Some(index) = calls.iter().rposition(|(called, _)| *called == open) else {
            // The call was not seen (a hole in the stream, or tracing began during it): what it
            // acquires is unknown, so the goroutine is ordered after everything — except after
            // a read: a window often opens while reads wait for data, and ordering each reader
            // (a server's handlers) after everything would hide their races.
            return match on_return {
                OnReturn::Nothing | OnReturn::ReadFlow => Operations::new(),
                // One object for the whole program: known without the entry.
                OnReturn::AcquireGlobal(kind) => smallvec![acquire(goroutine, global(kind))],
                OnReturn::ReleaseMergeGlobal(kind) => {
                    smallvec![release_merge(goroutine, global(kind))]
                }
                _ => smallvec![Operation::AcquireAll { goroutine }],
            };
        };
        let object = calls[index].1;
        calls.truncate(index);
        // A reader that waited for a writer acquires when its semaphore wait returns.
        let waited_reader = (on_return == OnReturn::EndReaderWait)
            .then(|| {
                calls
                    .iter()
                    .rposition(|(called, _)| *called == OpenCall::ReaderWait)
            })
            .flatten()
            .map(|index| {
                let rw = calls[index].1;
                calls.truncate(index);
                rw
            });
        let mut operations = Operations::new();
        if let Some(rw) = waited_reader {
            operations.push(Operation::Acquire {
                goroutine,
                object: rw,
            });
        }
        let acquire = |object| Operation::Acquire { goroutine, object };
        match on_return {
            // Resolved to Acquire/AcquireBoth/Nothing above.
            OnReturn::Nothing
            | OnReturn::EndReaderWait
            | OnReturn::AcquireIfTrue
            | OnReturn::AcquireBothIfTrue => {}
            OnReturn::Acquire => operations.push(acquire(object)),
            OnReturn::AcquireBoth => {
                operations.push(acquire(object));
                operations.push(acquire(companion(object)));
            }
            OnReturn::AcquireAndPublish => {
                operations.push(acquire(object));
                operations.push(Operation::ReleaseMerge { goroutine, object });
            }
            OnReturn::EndWriterWait => {
                operations.push(acquire(object));
                let rw = object.wrapping_sub(RWMUTEX_WRITER_SEM);
                operations.push(acquire(companion(rw)));
            }
            OnReturn::AcquireEverything => operations.push(Operation::AcquireAll { goroutine }),
            OnReturn::AcquireGlobal(kind) => operations.push(acquire(global(kind))),
            OnReturn::ReleaseMergeGlobal(kind) => {
                operations.push(release_merge(goroutine, global(kind)));
            }
            OnReturn::ReadFlow if object == 0 => {}
            OnReturn::ReadFlow => operations.push(acquire(flow(object))),
        }
        operations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{EventKind, SELECT_CASE_SEND};

    impl Translator {
        /// [`Translator::translate`] for an event of a site observing the function `name`.
        fn named(&mut self, event: &Event, name: &str, site: SiteId) -> Vec<Operation> {
            self.translate(event, FunctionId::of(name), site).to_vec()
        }

        /// A translator that has seen a `select` with too many cases: channel operations learn
        /// from the `select` catch-all.
        fn after_many_case_select() -> Self {
            Self {
                select_published: true,
                ..Self::default()
            }
        }
    }

    fn event(kind: EventKind, goroutine: u64, object: u64, arg: u64) -> Event {
        Event::example(kind, goroutine, object, arg)
    }

    #[test]
    fn contended_lock_acquires_when_the_slow_path_returns() {
        let mut translator = Translator::default();
        let failed_cas = event(EventKind::MutexLock, 7, 0x100, 0);
        assert!(translator.named(&failed_cas, "main.f", 0).is_empty());
        let slow = "internal/sync.(*Mutex).lockSlow";
        assert!(translator
            .named(&event(EventKind::SyncEnter, 7, 0x100, 0), slow, 0)
            .is_empty());
        let nested = "internal/sync.runtime_SemacquireMutex";
        translator.named(&event(EventKind::SyncEnter, 7, 0x104, 0), nested, 0);
        translator.named(&event(EventKind::SyncExit, 7, 0, 0), nested, 0);
        assert_eq!(
            translator.named(&event(EventKind::SyncExit, 7, 0, 0), slow, 0),
            vec![Operation::Acquire {
                goroutine: 7,
                object: 0x100
            }]
        );
    }

    /// Unlock's returns are not probed: its entry releases and leaves no call open, however
    /// often a goroutine unlocks (a deferred Unlock is a call).
    #[test]
    fn calls_whose_returns_are_not_probed_are_not_kept_open() {
        let mut translator = Translator::default();
        let unlock = "sync.(*Mutex).Unlock";
        for _ in 0..1000 {
            assert_eq!(
                translator.named(&event(EventKind::SyncEnter, 4, 0x300, 0), unlock, 0),
                vec![Operation::Release {
                    goroutine: 4,
                    object: 0x300
                }]
            );
        }
        assert!(translator
            .goroutines
            .get(&4)
            .is_none_or(|state| state.calls.is_empty()));
    }

    /// A writer's successful RWMutex.TryLock is ordered after the readers' RUnlocks (the writer
    /// side) and the last Unlock, as Lock is; a failed one acquires nothing.
    #[test]
    fn rwmutex_trylock_acquires_both_sides_only_when_it_succeeds() {
        let mut translator = Translator::default();
        let try_lock = "sync.(*RWMutex).TryLock";
        for (goroutine, returned, expected) in [
            (5, 0, vec![]),
            (
                6,
                1,
                vec![
                    Operation::Acquire {
                        goroutine: 6,
                        object: 0x400,
                    },
                    Operation::Acquire {
                        goroutine: 6,
                        object: companion(0x400),
                    },
                ],
            ),
        ] {
            translator.named(
                &event(EventKind::SyncEnter, goroutine, 0x400, 0),
                try_lock,
                0,
            );
            let exit = event(EventKind::SyncExit, goroutine, 0, returned);
            assert_eq!(translator.named(&exit, try_lock, 0), expected);
            assert!(translator.goroutines[&goroutine].calls.is_empty());
        }
    }

    #[test]
    fn waitgroup_done_releases_and_wait_acquires() {
        let mut translator = Translator::default();
        let add = "sync.(*WaitGroup).Add";
        assert!(translator
            .named(&event(EventKind::SyncEnter, 1, 0x200, 2), add, 0)
            .is_empty());
        assert_eq!(
            translator.named(&event(EventKind::SyncEnter, 2, 0x200, u64::MAX), add, 0),
            vec![Operation::ReleaseMerge {
                goroutine: 2,
                object: 0x200
            }]
        );
        let wait = "sync.(*WaitGroup).Wait";
        translator.named(&event(EventKind::SyncEnter, 1, 0x200, 0), wait, 0);
        assert_eq!(
            translator.named(&event(EventKind::SyncExit, 1, 0, 0), wait, 0),
            vec![Operation::Acquire {
                goroutine: 1,
                object: 0x200
            }]
        );
    }

    #[test]
    fn channel_receive_acquires_what_sends_released() {
        let mut translator = Translator::after_many_case_select();
        assert_eq!(
            translator.named(
                &event(EventKind::ChanSend, 1, 0x300, 0),
                "runtime.chansend1",
                0
            ),
            vec![
                Operation::ReleaseMerge {
                    goroutine: 1,
                    object: 0x300
                },
                Operation::ReleaseMerge {
                    goroutine: 1,
                    object: ANY_CHANNEL
                }
            ]
        );
        translator.named(
            &event(EventKind::ChanReceive, 2, 0x300, 0),
            "runtime.chanrecv1",
            0,
        );
        assert_eq!(
            translator.named(
                &event(EventKind::ChanReceiveDone, 2, 0, 0),
                "runtime.chanrecv1",
                0
            ),
            vec![
                Operation::Acquire {
                    goroutine: 2,
                    object: 0x300
                },
                Operation::Acquire {
                    goroutine: 2,
                    object: closing(0x300)
                },
                Operation::Acquire {
                    goroutine: 2,
                    object: ANY_SELECT
                }
            ]
        );
        assert_eq!(
            translator.named(
                &event(EventKind::ChanSendDone, 1, 0, 0),
                "runtime.chansend1",
                0
            ),
            vec![
                Operation::Acquire {
                    goroutine: 1,
                    object: companion(0x300)
                },
                Operation::Acquire {
                    goroutine: 1,
                    object: ANY_SELECT
                }
            ]
        );
    }

    #[test]
    fn a_select_publishes_on_its_cases_and_learns_from_the_chosen_one() {
        let mut translator = Translator::default();
        let mut run = |kind, object, arg| translator.named(&event(kind, 1, object, arg), "", 0);
        assert!(run(EventKind::SelectEnter, 0, 2).is_empty());
        // Case 0 sends on 0x300, case 1 receives from 0x400.
        let send = run(EventKind::SelectCase, 0x300, SELECT_CASE_SEND);
        let receive = run(EventKind::SelectCase, 0x400, 1);
        let release = |object| Operation::ReleaseMerge {
            goroutine: 1,
            object,
        };
        let acquire = |object| Operation::Acquire {
            goroutine: 1,
            object,
        };
        // Each case also publishes to the object a select with unknown cases learns from.
        assert_eq!(send, [release(0x300), release(ANY_CHANNEL)]);
        assert_eq!(receive, [release(companion(0x400)), release(ANY_CHANNEL)]);
        // The receive (case 1) got a value; nothing has released into the catch-all yet.
        let chosen = run(EventKind::SelectChosen, 1, 1);
        assert_eq!(chosen, [acquire(0x400)]);
        // A select whose cases were not all recorded learns from every channel.
        assert_eq!(
            run(EventKind::SelectEnter, 0, MAX_SELECT_CASES + 1),
            [release(ANY_SELECT)]
        );
        assert_eq!(
            run(EventKind::SelectChosen, 0, 1),
            [acquire(ANY_CHANNEL), acquire(ANY_SELECT)]
        );
    }

    #[test]
    fn only_a_receive_that_saw_the_close_learns_what_preceded_it() {
        let mut translator = Translator::after_many_case_select();
        let close = translator.named(
            &event(EventKind::ChanClose, 1, 0x300, 0),
            "runtime.closechan",
            0,
        );
        assert_eq!(
            close[0],
            Operation::ReleaseMerge {
                goroutine: 1,
                object: closing(0x300)
            }
        );
        let acquire = |object| Operation::Acquire {
            goroutine: 2,
            object,
        };
        // chanrecv2 and reflect.Value.Recv's runtime function say whether a value arrived.
        for function in ["runtime.chanrecv2", "reflect.chanrecv"] {
            let mut receive = |received: u64| {
                translator.named(&event(EventKind::ChanReceive, 2, 0x300, 0), function, 0);
                translator.named(
                    &event(EventKind::ChanReceiveDone, 2, 0, received),
                    function,
                    0,
                )
            };
            assert_eq!(
                receive(1),
                [acquire(0x300), acquire(ANY_SELECT)],
                "{function}"
            );
            assert_eq!(receive(0), [acquire(closing(0x300))], "{function}");
        }
        // chanrecv1 cannot tell: it learns from both.
        let recv1 = "runtime.chanrecv1";
        translator.named(&event(EventKind::ChanReceive, 2, 0x300, 0), recv1, 0);
        assert_eq!(
            translator.named(&event(EventKind::ChanReceiveDone, 2, 0, 0), recv1, 0),
            [acquire(0x300), acquire(closing(0x300)), acquire(ANY_SELECT)]
        );
    }

    #[test]
    fn a_receive_from_a_timer_s_channel_learns_what_arming_the_timer_released() {
        use EventKind as K;
        let mut translator = Translator::default();
        let recv1 = "runtime.chanrecv1";
        let delivery = Operation::Acquire {
            goroutine: 2,
            object: callback(0xc10),
        };
        let receive = |translator: &mut Translator| {
            translator.named(&event(K::ChanReceive, 2, 0xc10, 0), recv1, 0);
            translator.named(&event(K::ChanReceiveDone, 2, 0, 0), recv1, 0)
        };
        assert!(!receive(&mut translator).contains(&delivery));
        // AfterFunc is given a callback, never a channel.
        translator.named(&event(K::TimerArm, 1, 0xc10, 0), "time.AfterFunc", 0);
        assert!(!receive(&mut translator).contains(&delivery));
        // Timer.Reset names the channel the timer delivers on (timer.arg).
        translator.named(&event(K::TimerArm, 1, 0xc10, 0), "time.resetTimer", 0);
        assert!(receive(&mut translator).contains(&delivery));
        // A channel made later at that address is not the timer's.
        translator.named(&event(K::ChanMake, 3, 0xc10, 0), "runtime.makechan", 0);
        assert!(!receive(&mut translator).contains(&delivery));
    }

    #[test]
    fn an_afterfunc_callback_learns_what_its_arming_published() {
        let mut translator = Translator::default();
        let arm = translator.named(&event(EventKind::TimerArm, 1, 0x700, 0), "", 0);
        assert_eq!(
            arm,
            [Operation::ReleaseMerge {
                goroutine: 1,
                object: callback(0x700)
            }]
        );
        // The timer fires on the scheduler's stack (goroutine 0) of thread 9, which starts
        // goroutine 5; a spawn on another thread gets nothing.
        let mut fire = event(EventKind::TimerFire, 0, 0x700, 0);
        fire.tid = 9;
        assert!(translator.named(&fire, "", 0).is_empty());
        let mut elsewhere = event(EventKind::GoroutineCreate, 0, 4, 0);
        elsewhere.tid = 8;
        assert_eq!(translator.named(&elsewhere, "", 0).len(), 1);
        let mut create = event(EventKind::GoroutineCreate, 0, 5, 0);
        create.tid = 9;
        assert_eq!(
            translator.named(&create, "", 0)[1],
            Operation::Acquire {
                goroutine: 5,
                object: callback(0x700)
            }
        );
    }

    #[test]
    fn a_pool_get_learns_what_the_put_of_its_value_published() {
        let mut translator = Translator::default();
        let put = translator.named(&event(EventKind::PoolPut, 1, 0x800, 0), "", 0);
        assert_eq!(
            put,
            [Operation::ReleaseMerge {
                goroutine: 1,
                object: pooled(0x800)
            }]
        );
        let get = translator.named(&event(EventKind::PoolGet, 2, 0x800, 0), "", 0);
        assert_eq!(
            get,
            [Operation::Acquire {
                goroutine: 2,
                object: pooled(0x800)
            }]
        );
        assert!(translator
            .named(&event(EventKind::PoolGet, 2, 0, 0), "", 0)
            .is_empty());
    }

    #[test]
    fn maps_published_through_atomic_value_are_acquired_by_their_readers() {
        let mut translator = Translator::default();
        let store = "sync/atomic.(*Value).Store";
        assert_eq!(
            translator.named(&event(EventKind::AtomicPublish, 1, 0x500, 0x600), store, 0),
            vec![Operation::ReleaseMerge {
                goroutine: 1,
                object: publication(0x500)
            }]
        );
        assert_eq!(
            translator.named(
                &event(EventKind::MapRead, 2, 0x500, 0),
                "runtime.mapaccess1",
                9
            ),
            vec![
                Operation::Acquire {
                    goroutine: 2,
                    object: publication(0x500)
                },
                Operation::MapAccess {
                    goroutine: 2,
                    map: 0x500,
                    write: false,
                    site: 9
                }
            ]
        );
        // A new map at that address was never published.
        translator.named(
            &event(EventKind::MapMake, 3, 0x500, 0),
            "runtime.makemap",
            0,
        );
        assert_eq!(
            translator.named(
                &event(EventKind::MapRead, 2, 0x500, 0),
                "runtime.mapaccess1",
                9
            ),
            vec![Operation::MapAccess {
                goroutine: 2,
                map: 0x500,
                write: false,
                site: 9
            }]
        );
    }

    #[test]
    fn waiting_reader_acquires_after_its_semaphore() {
        let mut translator = Translator::default();
        let negative = u64::from((-5i32) as u32);
        assert!(translator
            .named(
                &event(EventKind::RwMutexRLock, 3, 0x400, negative),
                "main.f",
                0
            )
            .is_empty());
        let wait = "sync.runtime_SemacquireRWMutexR";
        translator.named(&event(EventKind::SyncEnter, 3, 0x40c, 0), wait, 0);
        let operations = translator.named(&event(EventKind::SyncExit, 3, 0, 0), wait, 0);
        assert!(operations.contains(&Operation::Acquire {
            goroutine: 3,
            object: 0x400
        }));
        assert_eq!(
            translator.named(&event(EventKind::RwMutexRLock, 3, 0x400, 0), "main.f", 0),
            vec![Operation::Acquire {
                goroutine: 3,
                object: 0x400
            }]
        );
    }

    /// A channel at 0x900 whose buffer of `capacity` 8-byte slots starts at 0x1000.
    fn buffer(capacity: u64) -> ChannelBuffer {
        ChannelBuffer {
            address: 0x1000,
            capacity,
            element_size: 8,
        }
    }

    #[test]
    fn a_channel_made_while_traced_and_its_objects_are_new() {
        use EventKind as K;
        let created = |objects: &[Address]| -> Vec<Operation> {
            objects
                .iter()
                .map(|&object| Operation::ObjectCreated { object })
                .collect()
        };
        let is_created =
            |operation: &Operation| matches!(operation, Operation::ObjectCreated { .. });
        let mut translator = Translator::default();
        let make = |translator: &mut Translator, channel| {
            translator.named(&event(K::ChanMake, 1, channel, 0), "runtime.makechan", 0)
        };
        assert_eq!(
            make(&mut translator, 0x900),
            created(&[0x900, companion(0x900), closing(0x900)])
        );
        let send = |translator: &mut Translator, channel, buffer| {
            let event = event(K::ChanSend, 1, channel, 0).with(|fields| fields.buffer = buffer);
            translator.named(&event, "runtime.chansend1", 0)
        };
        // Its first atomic.Value store and its first timer arming make those objects new, once.
        let store = event(K::AtomicPublish, 1, 0x900, 0x600);
        let value_store = "sync/atomic.(*Value).Store";
        for first in [true, false] {
            let operations = translator.named(&store, value_store, 0);
            assert_eq!(operations.iter().any(is_created), first);
            assert_eq!(
                operations.last(),
                Some(&release_merge(1, publication(0x900)))
            );
        }
        let arm = event(K::TimerArm, 1, 0x900, 0);
        assert_eq!(
            translator.named(&arm, "time.resetTimer", 0),
            [
                Operation::ObjectCreated {
                    object: callback(0x900)
                },
                release_merge(1, callback(0x900))
            ]
        );
        assert_eq!(
            translator.named(&arm, "time.resetTimer", 0),
            [release_merge(1, callback(0x900))]
        );
        // The first operation shows the buffer and makes its slots new, before anything else
        // (here, learning the channel's publication and publishing on it).
        let first = send(&mut translator, 0x900, Some(buffer(2)));
        assert_eq!(first[..2], created(&[0x1000, 0x1008])[..]);
        assert_eq!(
            first[2..],
            [
                acquire(1, publication(0x900)),
                release_merge(1, 0x900),
                release_merge(1, ANY_CHANNEL)
            ]
        );
        assert!(!send(&mut translator, 0x900, Some(buffer(2)))
            .iter()
            .any(is_created));
        // Operated on, it is no longer new: a later store keeps what its memory carried.
        make(&mut translator, 0xb00);
        send(&mut translator, 0xb00, Some(buffer(2)));
        assert!(!translator
            .named(&event(K::AtomicPublish, 1, 0xb00, 0x600), value_store, 0)
            .iter()
            .any(is_created));
        // A channel made before tracing began keeps what its memory carried.
        assert!(!send(&mut translator, 0x700, Some(buffer(2)))
            .iter()
            .any(is_created));
        assert!(!translator
            .named(&event(K::AtomicPublish, 1, 0x700, 0x600), value_store, 0)
            .iter()
            .any(is_created));
        // One slot for an unbuffered channel; at most NEW_SLOTS of a large buffer.
        for (capacity, slots) in [(0, 1), (1000, NEW_SLOTS)] {
            make(&mut translator, 0xa00);
            let operations = send(&mut translator, 0xa00, Some(buffer(capacity)));
            let new_slots: Vec<Address> = operations
                .iter()
                .filter_map(|operation| match operation {
                    Operation::ObjectCreated { object } => Some(*object),
                    _ => None,
                })
                .collect();
            let expected: Vec<Address> = (0..slots).map(|slot| 0x1000 + 8 * slot).collect();
            assert_eq!(new_slots, expected, "capacity {capacity}");
        }
    }

    /// How many races the detection reports for `steps` (goroutine, kind, object, arg); channel
    /// operations are on the channel of [`buffer`], the map is 0x5000.
    fn races_in(capacity: u64, steps: &[(u64, EventKind, u64, u64)]) -> usize {
        let mut detection = crate::detect::pipeline::Detection::default();
        let site = detection.add_site(Vec::new());
        for &(goroutine, kind, object, arg) in steps {
            let mut event = event(kind, goroutine, object, arg);
            if matches!(kind, EventKind::ChanSend | EventKind::ChanReceive) {
                event = event.with(|fields| fields.buffer = Some(buffer(capacity)));
            }
            let function = match kind {
                EventKind::ChanSend | EventKind::ChanSendDone => "runtime.chansend1",
                _ => "runtime.chanrecv1",
            };
            detection.observe(&event, FunctionId::of(function), site);
        }
        detection.races().len()
    }

    /// Goroutine 2 sends first (slot 0), then goroutine 1 writes the map and sends (slot 1);
    /// goroutine 3 receives from `slot` and reads the map. Only the value sent after the write
    /// orders the read after it.
    fn buffered_hand_over(slot: u64) -> usize {
        use EventKind as K;
        races_in(
            2,
            &[
                (2, K::ChanSend, 0x900, 0),
                (2, K::ChanSlot, 0x1000, 0),
                (2, K::ChanSendDone, 0, 0),
                (1, K::MapAssign, 0x5000, 0),
                (1, K::ChanSend, 0x900, 0),
                (1, K::ChanSlot, 0x1008, 0),
                (1, K::ChanSendDone, 0, 0),
                (3, K::ChanReceive, 0x900, 0),
                // The copy into the receiver's own variable is no slot.
                (3, K::ChanSlot, 0x7000, 0),
                (3, K::ChanSlot, slot, 0),
                (3, K::ChanReceiveDone, 0, 0),
                (3, K::MapRead, 0x5000, 0),
            ],
        )
    }

    #[test]
    fn a_buffered_receive_learns_only_from_the_send_whose_slot_it_takes() {
        assert_eq!(buffered_hand_over(0x1008), 0);
        // -race reports this one; a per-channel model would not.
        assert_eq!(buffered_hand_over(0x1000), 1);
    }

    #[test]
    fn a_send_into_a_reused_slot_learns_from_the_receive_that_emptied_it() {
        use EventKind as K;
        // Goroutine 2 writes the map, then receives goroutine 1's first value (slot 0);
        // goroutine 1 sends again and reads the map. The memory model orders the receive before
        // the completion of the send that reuses its slot, and nothing else.
        let second_send_into = |slot| {
            races_in(
                2,
                &[
                    (1, K::ChanSend, 0x900, 0),
                    (1, K::ChanSlot, 0x1000, 0),
                    (1, K::ChanSendDone, 0, 0),
                    (2, K::MapAssign, 0x5000, 0),
                    (2, K::ChanReceive, 0x900, 0),
                    (2, K::ChanSlot, 0x1000, 0),
                    (2, K::ChanReceiveDone, 0, 0),
                    (1, K::ChanSend, 0x900, 0),
                    (1, K::ChanSlot, slot, 0),
                    (1, K::ChanSendDone, 0, 0),
                    (1, K::MapRead, 0x5000, 0),
                ],
            )
        };
        assert_eq!(second_send_into(0x1000), 0);
        assert_eq!(second_send_into(0x1008), 1);
    }

    #[test]
    fn an_unbuffered_hand_off_orders_both_ways() {
        use EventKind as K;
        // Goroutine 2 writes and parks in a receive; goroutine 1 hands it a value and then
        // writes: its send completes after the receive, so the writes are ordered.
        let steps = [
            (2, K::MapAssign, 0x5000, 0),
            (2, K::ChanReceive, 0x900, 0),
            (1, K::ChanSend, 0x900, 0),
            (1, K::ChanHandOff, 0x1000, 2),
            (1, K::ChanSendDone, 0, 0),
            (1, K::MapAssign, 0x5000, 0),
            (2, K::ChanReceiveDone, 0, 0),
        ];
        assert_eq!(races_in(0, &steps), 0);
        // The same through a one-slot buffer orders only sender → receiver.
        assert_eq!(races_in(1, &steps), 1);
        let mut translator = Translator::after_many_case_select();
        let mut run = |goroutine, kind, object, arg| {
            let event =
                event(kind, goroutine, object, arg).with(|fields| fields.buffer = Some(buffer(0)));
            translator.named(&event, "runtime.chanrecv1", 0)
        };
        run(2, K::ChanReceive, 0x900, 0);
        run(1, K::ChanSend, 0x900, 0);
        run(1, K::ChanHandOff, 0x1000, 2);
        // Paired: the receive learns nothing more when it returns (no per-channel acquire).
        assert_eq!(
            run(2, K::ChanReceiveDone, 0, 0),
            vec![Operation::Acquire {
                goroutine: 2,
                object: ANY_SELECT
            }]
        );
    }

    #[test]
    fn an_unrecognised_hand_off_orders_both_ways_and_pairs_nothing() {
        let mut translator = Translator::default();
        let operations = translator.named(&event(EventKind::ChanHandOff, 1, 0x1000, 2), "", 0);
        let objects: Vec<_> = operations
            .iter()
            .map(|operation| match *operation {
                Operation::ReleaseMerge { goroutine, object } => ("release", goroutine, object),
                Operation::Acquire { goroutine, object } => ("acquire", goroutine, object),
                ref other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            objects,
            [
                ("release", 1, 0x1000),
                ("acquire", 2, 0x1000),
                ("release", 2, 0x1000),
                ("acquire", 1, 0x1000)
            ]
        );
    }

    #[test]
    fn a_receive_woken_by_close_learns_from_the_close() {
        use EventKind as K;
        let woken = |close| {
            let mut steps = vec![(2, K::ChanReceive, 0x900, 0), (1, K::MapAssign, 0x5000, 0)];
            if close {
                steps.push((1, K::ChanClose, 0x900, 0));
            }
            steps.extend([(2, K::ChanReceiveDone, 0, 0), (2, K::MapRead, 0x5000, 0)]);
            races_in(2, &steps)
        };
        assert_eq!(woken(true), 0);
        assert_eq!(woken(false), 1);
    }

    #[test]
    fn finalizers_and_cleanup_batches_start_knowing_everything() {
        use EventKind as K;
        let mut translator = Translator::default();
        for finalizers in ["runtime.runfinq", "runtime.runFinalizers"] {
            assert_eq!(
                translator.named(&event(K::SyncEnter, 4, 0, 0), finalizers, 0),
                vec![Operation::AcquireAll { goroutine: 4 }],
                "{finalizers}"
            );
        }
        let dequeue = "runtime.(*cleanupQueue).dequeue";
        assert!(translator
            .named(&event(K::SyncEnter, 5, 0x700, 0), dequeue, 0)
            .is_empty());
        assert_eq!(
            translator.named(&event(K::SyncExit, 5, 0, 0x7000), dequeue, 0),
            vec![Operation::AcquireAll { goroutine: 5 }]
        );
    }

    #[test]
    fn profile_labels_set_release_into_what_reading_a_profile_acquires() {
        use EventKind as K;
        let mut translator = Translator::default();
        let labels = global(Global::ProfileLabels);
        assert_eq!(
            translator.named(
                &event(K::SyncEnter, 1, 0xc000_0100, 0),
                "runtime/pprof.runtime_setProfLabel",
                0
            ),
            vec![Operation::ReleaseMerge {
                goroutine: 1,
                object: labels
            }]
        );
        for reader in [
            "runtime/pprof.readProfile",
            "runtime.goroutineProfileWithLabelsConcurrent",
        ] {
            translator.named(&event(K::SyncEnter, 2, 0xc000_0200, 0), reader, 0);
            assert_eq!(
                translator.named(&event(K::SyncExit, 2, 0, 0), reader, 0),
                vec![Operation::Acquire {
                    goroutine: 2,
                    object: labels
                }],
                "{reader}"
            );
        }
    }

    #[test]
    fn cgo_calls_and_callbacks_order_through_one_object_as_c_may_synchronise() {
        use EventKind as K;
        let mut translator = Translator::default();
        let cgo = global(Global::Cgo);
        let release = |goroutine| Operation::ReleaseMerge {
            goroutine,
            object: cgo,
        };
        let acquire = |goroutine| Operation::Acquire {
            goroutine,
            object: cgo,
        };
        let (call, callback) = ("runtime.cgocall", "runtime.cgocallbackg1");
        // Each event with the object its probe read (none at a return): the operations name
        // the one cgo object whatever it is.
        for (kind, goroutine, object, function, expected) in [
            (K::SyncEnter, 1, 0x4a_0000, call, release(1)),
            (K::SyncExit, 1, 0, call, acquire(1)),
            (K::SyncEnter, 2, 0x4a_1000, callback, acquire(2)),
            (K::SyncExit, 2, 0, callback, release(2)),
            // A return whose call began before tracing: the object is the same whatever the
            // call.
            (K::SyncExit, 3, 0, callback, release(3)),
            (K::SyncExit, 3, 0, call, acquire(3)),
        ] {
            assert_eq!(
                translator.named(&event(kind, goroutine, object, 0), function, 0),
                vec![expected],
                "{kind:?} {function}"
            );
        }
    }

    #[test]
    fn a_write_releases_into_its_flow_and_a_read_acquires_its_flow_on_return() {
        use EventKind as K;
        let mut translator = Translator::default();
        let flow = Derived::Flow.of(0xf10);
        assert_eq!(
            translator.named(&event(K::SyncEnter, 1, 0xf10, 7), "syscall.write", 0),
            vec![Operation::ReleaseMerge {
                goroutine: 1,
                object: flow
            }]
        );
        assert!(translator
            .named(&event(K::SyncEnter, 2, 0xf10, 8), "syscall.read", 0)
            .is_empty());
        assert_eq!(
            translator.named(&event(K::SyncExit, 2, 0, 5), "syscall.read", 0),
            vec![Operation::Acquire {
                goroutine: 2,
                object: flow
            }]
        );
        // A descriptor without a known flow (0) orders nothing; neither does a read whose entry
        // was not seen (a window opened while it waited for data), unlike other completions.
        assert!(translator
            .named(&event(K::SyncEnter, 1, 0, 7), "syscall.write", 0)
            .is_empty());
        translator.named(&event(K::SyncEnter, 2, 0, 8), "syscall.read", 0);
        assert!(translator
            .named(&event(K::SyncExit, 2, 0, 5), "syscall.read", 0)
            .is_empty());
        assert!(translator
            .named(&event(K::SyncExit, 3, 0, 5), "syscall.read", 0)
            .is_empty());
    }

    #[test]
    fn a_completion_whose_start_was_lost_learns_everything() {
        use EventKind as K;
        // Goroutine 2 entered lockSlow in a hole of the stream; goroutine 1 wrote the map and
        // unlocked after the hole; goroutine 2's lockSlow returns and it writes the map.
        let mut detection = crate::detect::pipeline::Detection::default();
        let site = detection.add_site(Vec::new());
        let slow = "internal/sync.(*Mutex).lockSlow";
        let steps = [
            (1, K::MapAssign, 0x5000, "main.f", 1),
            (1, K::MutexUnlock, 0x100, "main.f", 1),
            (2, K::SyncExit, 0, slow, 1),
            (2, K::MapAssign, 0x5000, "main.g", 1),
        ];
        for (goroutine, kind, object, function, lost) in steps {
            let mut event = event(kind, goroutine, object, 0);
            event.lost = lost;
            detection.observe(&event, FunctionId::of(function), site);
        }
        assert!(detection.races().is_empty());
        let mut translator = Translator::after_many_case_select();
        assert_eq!(
            translator.named(&event(K::SyncExit, 2, 0, 0), slow, 0),
            vec![Operation::AcquireAll { goroutine: 2 }]
        );
        // A receive whose start was lost learns from every channel operation.
        assert_eq!(
            translator.named(&event(K::ChanReceiveDone, 2, 0, 0), "runtime.chanrecv1", 0),
            vec![
                Operation::Acquire {
                    goroutine: 2,
                    object: ANY_CHANNEL
                },
                Operation::Acquire {
                    goroutine: 2,
                    object: ANY_SELECT
                }
            ]
        );
    }

    #[test]
    fn derived_objects_never_meet_real_ones_or_each_other() {
        // A nil channel (0) used to make companion(0) the shared channel object and closing(0)
        // the shared select object.
        for object in [0, 8, 0xc000_0140_0000, 0x7fff_ffff_fff8] {
            let derived: Vec<Address> = Derived::ALL
                .into_iter()
                .filter(|kind| !matches!(kind, Derived::AnyChannel | Derived::AnySelect))
                .map(|kind| kind.of(object))
                .collect();
            let mut all = derived.clone();
            all.extend([object, ANY_CHANNEL, ANY_SELECT]);
            let mut distinct = all.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), all.len(), "{object:#x}: {all:x?}");
            for (kind, address) in Derived::ALL.into_iter().zip(&derived) {
                assert_eq!(Derived::split(*address), Some((kind, object)));
            }
            assert_eq!(Derived::split(object), None);
        }
    }

    #[test]
    fn nil_maps_are_not_one_shared_map() {
        let mut translator = Translator::default();
        for (goroutine, kind) in [(1, EventKind::MapDelete), (2, EventKind::MapRead)] {
            let access = event(kind, goroutine, 0, 0);
            assert!(translator
                .named(&access, "runtime.mapdelete_faststr", 1)
                .is_empty());
        }
        let real = event(EventKind::MapDelete, 1, 0xc000_1000, 0);
        assert_eq!(
            translator
                .named(&real, "runtime.mapdelete_faststr", 1)
                .len(),
            1
        );
    }

    #[test]
    fn a_channel_published_through_atomic_value_is_acquired_by_its_receivers() {
        // cancel() stores the pre-closed channel; Done()'s lock-free load is not seen.
        let mut translator = Translator::default();
        let store = event(EventKind::AtomicPublish, 1, 0x900, 0x600);
        assert_eq!(
            translator.named(&store, "sync/atomic.(*Value).Store", 0),
            [Operation::ReleaseMerge {
                goroutine: 1,
                object: publication(0x900)
            }]
        );
        let receive = translator.named(&event(EventKind::ChanReceive, 2, 0x900, 0), "", 0);
        assert_eq!(
            receive[0],
            Operation::Acquire {
                goroutine: 2,
                object: publication(0x900)
            }
        );
        // Another channel made at that address later was not published.
        translator.named(&event(EventKind::ChanMake, 3, 0x900, 0), "", 0);
        let receive = translator.named(&event(EventKind::ChanReceive, 2, 0x900, 0), "", 0);
        assert!(!receive.contains(&Operation::Acquire {
            goroutine: 2,
            object: publication(0x900)
        }));
    }
}
