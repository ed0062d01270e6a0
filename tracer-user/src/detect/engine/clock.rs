//! Vector clocks indexed by goroutine slot, FastTrack epochs, and the shared clocks goroutines
//! and synchronisation objects carry.
//!
//! Most clock operations of a traced program hand knowledge on unchanged: an `Unlock` gives the
//! mutex exactly what its goroutine knows, `go f()` gives the child exactly what its parent
//! knows, and the goroutine only ticks its own entry afterwards. So the vector part of a
//! [`SharedClock`] is shared copy-on-write between all who know the same, and the few epochs
//! that differ sit on top of it: releasing and spawning copy nothing, and 100 000 goroutines
//! started from one parent hold one vector between them.
//!
//! Times are 32 bits and clocks at most 256 slots wide (`Limits::max_slots`), in chunks of 16
//! slots shared between vectors (see [`VectorClock`]). Go's own race runtime (LLVM's
//! ThreadSanitizer, `tsan_defs.h`) makes the same choice at a smaller scale: 256 slots of
//! 14-bit epochs, and a reset of its state when they run out.

use super::prefetch;
use std::{
    rc::Rc,
    sync::atomic::{AtomicU64, Ordering},
};

/// An index into vector clocks. Slots, not goroutine ids, index clocks so that their width stays
/// bounded while goroutines come and go by the million (see `slots`).
pub(crate) type Slot = u32;

/// A point of one slot's timeline. 32 bits halve the clocks' memory and the bandwidth of every
/// join; a slot about to run out restarts the engine's knowledge (see `Slots::exhausted`).
pub(crate) type Time = u32;

/// One point of one slot's timeline: `time` of `slot`. A single epoch stands for "the last
/// access", FastTrack's O(1) replacement for a full vector clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch {
    pub slot: Slot,
    pub time: Time,
}

impl Epoch {
    /// Whether whoever knows `clock` is ordered after this epoch.
    pub fn happens_before(self, clock: &SharedClock) -> bool {
        self.time <= clock.get(self.slot)
    }
}

/// A vector's content, named: every write gives the vector a new version, so a clock that once
/// included the vector of some version includes it for good (clocks only grow), and a join
/// with a vector already included costs a comparison of two numbers instead of two vectors.
/// Copies share the version of the content they copy. 0 is the empty vector's.
type Version = u64;

/// The next version to hand out; one counter for every engine, so versions never collide.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn new_version() -> Version {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// Slots per chunk: 16 times of 32 bits, one cache line.
const CHUNK_SLOTS: usize = 16;

/// The times of `CHUNK_SLOTS` consecutive slots.
type Chunk = [Time; CHUNK_SLOTS];

/// For each slot, the latest time known; missing trailing entries are 0 (nothing known).
///
/// Stored as chunks of 16 slots, each shared copy-on-write: knowledge spreads by joins, and a
/// join that finds the other's chunk better everywhere takes that chunk instead of copying its
/// times, so clocks that learnt from one another come to hold the same chunks. Comparing two
/// such clocks skips the chunks they share, and a write copies one cache line, not the vector.
///
/// The chunk pointers are one allocation shared copy-on-write too, and the version is kept
/// beside the pointer to them rather than behind it: a clock reaches its chunk pointers in one
/// step, and copying a vector allocates once.
#[derive(Clone, Debug, Default)]
pub(crate) struct VectorClock {
    chunks: Rc<[Rc<Chunk>]>,
    version: Version,
}

impl PartialEq for VectorClock {
    fn eq(&self, other: &Self) -> bool {
        let width = self.chunks.len().max(other.chunks.len()) * CHUNK_SLOTS;
        (0..width).all(|slot| self.get(slot as Slot) == other.get(slot as Slot))
    }
}

impl Eq for VectorClock {}

impl From<Vec<Time>> for VectorClock {
    fn from(times: Vec<Time>) -> Self {
        let chunks = times
            .chunks(CHUNK_SLOTS)
            .map(|times| {
                let mut chunk = Chunk::default();
                chunk[..times.len()].copy_from_slice(times);
                Rc::new(chunk)
            })
            .collect::<Vec<_>>()
            .into();
        Self {
            chunks,
            version: new_version(),
        }
    }
}

/// Which of two chunks holds a later time somewhere: (`mine` does, `theirs` does). Branch-free
/// and in signed arithmetic (unsigned order is the signed order of the values with their top
/// bit flipped), so that it compiles to x86-64's baseline vector compares.
#[inline]
fn chunk_compare(mine: &Chunk, theirs: &Chunk) -> (bool, bool) {
    let signed = |time: Time| (time ^ 1 << 31) as i32;
    let (mut mine_more, mut theirs_more) = (0, 0);
    for (&mine, &theirs) in mine.iter().zip(theirs) {
        let (mine, theirs) = (signed(mine), signed(theirs));
        mine_more |= -i32::from(mine > theirs);
        theirs_more |= -i32::from(theirs > mine);
    }
    (mine_more != 0, theirs_more != 0)
}

impl VectorClock {
    pub fn get(&self, slot: Slot) -> Time {
        let slot = slot as usize;
        self.chunks
            .get(slot / CHUNK_SLOTS)
            .map_or(0, |chunk| chunk[slot % CHUNK_SLOTS])
    }

    pub fn set(&mut self, slot: Slot, time: Time) {
        let slot = slot as usize;
        self.widen(slot / CHUNK_SLOTS + 1);
        let chunks = Rc::make_mut(&mut self.chunks);
        Rc::make_mut(&mut chunks[slot / CHUNK_SLOTS])[slot % CHUNK_SLOTS] = time;
        self.version = new_version();
    }

    /// Pointwise maximum: afterwards `self` knows everything `other` knew.
    pub fn join(&mut self, other: &Self) {
        self.widen(other.chunks.len());
        for (mine, theirs) in Rc::make_mut(&mut self.chunks)
            .iter_mut()
            .zip(other.chunks.iter())
        {
            if Rc::ptr_eq(mine, theirs) {
                continue;
            }
            match chunk_compare(mine, theirs) {
                (_, false) => {}
                (false, true) => *mine = Rc::clone(theirs),
                (true, true) => {
                    for (mine, theirs) in Rc::make_mut(mine).iter_mut().zip(theirs.iter()) {
                        *mine = (*mine).max(*theirs);
                    }
                }
            }
        }
        self.version = new_version();
    }

    /// Which of the two knows something the other does not: (`self` does, `other` does).
    /// Chunks both hold are equal and skipped.
    fn compare(&self, other: &Self) -> (bool, bool) {
        let (mine, theirs) = (&self.chunks, &other.chunks);
        let common = mine.len().min(theirs.len());
        let tail = |chunks: &[Rc<Chunk>]| {
            chunks
                .iter()
                .any(|chunk| chunk.iter().any(|&time| time != 0))
        };
        let (mut mine_more, mut theirs_more) = (tail(&mine[common..]), tail(&theirs[common..]));
        for (mine, theirs) in mine[..common].iter().zip(&theirs[..common]) {
            if mine_more && theirs_more {
                break;
            }
            if !Rc::ptr_eq(mine, theirs) {
                let (more, less) = chunk_compare(mine, theirs);
                mine_more |= more;
                theirs_more |= less;
            }
        }
        (mine_more, theirs_more)
    }

    /// At least `chunks` chunks wide, the new ones all zero.
    fn widen(&mut self, chunks: usize) {
        if chunks > self.chunks.len() {
            let mut wider = self.chunks.to_vec();
            wider.resize_with(chunks, Default::default);
            self.chunks = wider.into();
        }
    }
}

/// What a goroutine or a synchronisation object knows: a vector shared copy-on-write, and at
/// most two epochs on top of it — the owner's own current epoch, and one more it learnt (a
/// child's parent epoch, a releaser's) — so that ticking, releasing and spawning write no vector.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedClock {
    vector: VectorClock,
    /// A goroutine's own epoch while it holds a slot; an object's releaser's.
    own: Option<Epoch>,
    /// One more epoch learnt, not yet folded into `vector`.
    extra: Option<Epoch>,
    /// The version of a vector `vector` is known to include: the last one joined.
    includes: Version,
    /// Some time known here may be of an epoch still running (learnt from every slot's latest
    /// time, see `Operation::AcquireAll`) rather than from the release or spawn that ended it:
    /// knowing such an epoch does not mean knowing what its owner knew at its end.
    knows_running_epochs: bool,
}

impl From<VectorClock> for SharedClock {
    fn from(vector: VectorClock) -> Self {
        Self {
            vector,
            own: None,
            extra: None,
            includes: 0,
            knows_running_epochs: false,
        }
    }
}

impl SharedClock {
    pub fn get(&self, slot: Slot) -> Time {
        let on_top = |epoch: Option<Epoch>| epoch.filter(|e| e.slot == slot).map_or(0, |e| e.time);
        self.vector
            .get(slot)
            .max(on_top(self.own))
            .max(on_top(self.extra))
    }

    pub fn own(&self) -> Option<Epoch> {
        self.own
    }

    /// Whether knowing one of this clock's epochs may not mean knowing what its owner knew when
    /// the epoch ended (see `knows_running_epochs`).
    pub fn knows_running_epochs(&self) -> bool {
        self.knows_running_epochs
    }

    /// Marks this clock as holding times of epochs that may still be running.
    pub fn mark_running_epochs(&mut self) {
        self.knows_running_epochs = true;
    }

    /// Makes `epoch` the owner's current one; the previous one stays known.
    pub fn set_own(&mut self, epoch: Epoch) {
        if let Some(previous) = self.own.filter(|previous| previous.slot != epoch.slot) {
            self.fold(previous);
        }
        self.own = Some(epoch);
    }

    /// The owner's slot was taken away: its epochs there order nothing any more (reclaiming the
    /// slot forgot every record that names it, and later owners' times are all later), so the
    /// epoch is dropped rather than written into a vector that may be shared.
    pub fn forget_own(&mut self) {
        self.own = None;
    }

    /// What a child starts from: all of this, the owner's epoch as the child's extra. Folds this
    /// clock's own extra first, once, so that every further child shares the same vector.
    pub fn handed_down(&mut self) -> Self {
        if let Some(extra) = self.extra.take() {
            self.fold(extra);
        }
        Self {
            vector: self.vector.clone(),
            own: None,
            extra: self.own,
            includes: self.includes,
            knows_running_epochs: self.knows_running_epochs,
        }
    }

    /// Pointwise maximum: afterwards `self` knows everything `other` knows. The vectors are
    /// compared only when neither is known to include the other's version; the vector is copied
    /// only when both know something the other does not; when `other` knows more in every
    /// entry, its vector is shared instead.
    pub fn join(&mut self, other: &Self) {
        self.knows_running_epochs |= other.knows_running_epochs;
        let theirs = other.vector.version;
        if theirs == self.vector.version || theirs == self.includes {
            // Nothing to learn from the vector.
        } else if other.includes == self.vector.version {
            self.vector = other.vector.clone();
        } else {
            match self.vector.compare(&other.vector) {
                (_, false) => self.includes = theirs,
                (false, true) => self.vector = other.vector.clone(),
                (true, true) => {
                    self.vector.join(&other.vector);
                    self.includes = theirs;
                }
            }
        }
        for epoch in [other.own, other.extra].into_iter().flatten() {
            self.learn(epoch);
        }
    }

    /// Knows `epoch` from now on.
    fn learn(&mut self, epoch: Epoch) {
        if self.get(epoch.slot) >= epoch.time {
            return;
        }
        match self.own {
            Some(own) if own.slot == epoch.slot => self.own = Some(epoch),
            _ => match self.extra {
                Some(extra) if extra.slot != epoch.slot => {
                    self.fold(extra);
                    self.extra = Some(epoch);
                }
                _ => self.extra = Some(epoch),
            },
        }
    }

    /// Writes `epoch` into the vector (copying it if shared) unless the vector knows it.
    fn fold(&mut self, epoch: Epoch) {
        if self.vector.get(epoch.slot) < epoch.time {
            self.vector.set(epoch.slot, epoch.time);
        }
    }

    /// Starts loading the vector's chunk pointers (a hint, see `prefetch`).
    pub fn prefetch_vector(&self) {
        prefetch(self.vector.chunks.as_ptr());
    }

    /// Starts loading the vector's chunks; best once its chunk pointers are in cache.
    pub fn prefetch_chunks(&self) {
        for chunk in self.vector.chunks.iter() {
            prefetch(Rc::as_ptr(chunk));
        }
    }

    /// Whether both share one vector (for tests of sharing).
    #[cfg(test)]
    pub fn shares_vector_with(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.vector.chunks, &other.vector.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(times: &[Time]) -> VectorClock {
        VectorClock::from(times.to_vec())
    }

    fn clock(times: &[Time]) -> SharedClock {
        SharedClock::from(vector(times))
    }

    fn times(clock: &SharedClock, width: Slot) -> Vec<Time> {
        (0..width).map(|slot| clock.get(slot)).collect()
    }

    #[test]
    fn join_takes_the_pointwise_maximum_and_widens() {
        let mut a = vector(&[3, 1]);
        a.join(&vector(&[1, 4, 2]));
        assert_eq!(a, vector(&[3, 4, 2]));
    }

    fn naive(times: &[Time], width: usize) -> Vec<Time> {
        (0..width)
            .map(|slot| times.get(slot).copied().unwrap_or(0))
            .collect()
    }

    /// Up to 40 times (across chunk boundaries), small, near the top of the range or any.
    fn any_times() -> impl proptest::strategy::Strategy<Value = Vec<Time>> {
        let time =
            proptest::prop_oneof![0..4u32, Time::MAX - 4..=Time::MAX, proptest::num::u32::ANY];
        proptest::collection::vec(time, 0..40)
    }

    proptest::proptest! {
        /// Over the whole range of times (above 2^31 too, where a signed compare would err)
        /// and across chunk boundaries and lengths: compare and join are the plain
        /// slot-by-slot definitions.
        #[test]
        fn compare_and_join_are_slotwise(mine in any_times(), theirs in any_times()) {
            let width = mine.len().max(theirs.len());
            let (a, b) = (naive(&mine, width), naive(&theirs, width));
            let expected = (
                a.iter().zip(&b).any(|(a, b)| a > b),
                a.iter().zip(&b).any(|(a, b)| b > a),
            );
            proptest::prop_assert_eq!(vector(&mine).compare(&vector(&theirs)), expected);
            let mut joined = vector(&mine);
            joined.join(&vector(&theirs));
            let most: Vec<Time> = a.iter().zip(&b).map(|(a, b)| *a.max(b)).collect();
            proptest::prop_assert_eq!(joined, vector(&most));
        }
    }

    #[test]
    fn a_join_takes_the_chunks_the_other_knows_more_of_and_copies_only_mixed_ones() {
        let mut mine = vector(&[[1; CHUNK_SLOTS], [5; CHUNK_SLOTS], [1; CHUNK_SLOTS]].concat());
        let mut theirs_times = [[2; CHUNK_SLOTS], [1; CHUNK_SLOTS], [1; CHUNK_SLOTS]].concat();
        theirs_times[2 * CHUNK_SLOTS] = 9;
        let theirs = vector(&theirs_times);
        let kept = Rc::clone(&mine.chunks[1]);
        mine.join(&theirs);
        assert!(
            Rc::ptr_eq(&mine.chunks[0], &theirs.chunks[0]),
            "theirs is later: shared"
        );
        assert!(Rc::ptr_eq(&mine.chunks[1], &kept), "mine is later: kept");
        assert!(
            Rc::ptr_eq(&mine.chunks[2], &theirs.chunks[2]),
            "theirs is later: shared"
        );
        // Once both hold the chunk, comparing skips it; a chunk each knows more of is merged.
        let mut other = vector(&[[2; CHUNK_SLOTS], [6; CHUNK_SLOTS]].concat());
        Rc::make_mut(&mut other.chunks)[0] = Rc::clone(&mine.chunks[0]);
        assert_eq!(mine.compare(&other), (true, true));
        Rc::make_mut(&mut Rc::make_mut(&mut other.chunks)[1])[0] = 0;
        mine.join(&other);
        assert_eq!(mine.get(CHUNK_SLOTS as Slot), 5);
        assert_eq!(mine.get(CHUNK_SLOTS as Slot + 1), 6);
    }

    #[test]
    fn an_epoch_happens_before_a_clock_that_knows_its_time() {
        let epoch = Epoch { slot: 1, time: 4 };
        assert!(epoch.happens_before(&clock(&[0, 4])));
        assert!(!epoch.happens_before(&clock(&[9, 3])));
        assert!(!epoch.happens_before(&clock(&[9])));
    }

    #[test]
    fn shared_join_is_the_pointwise_maximum_of_vectors_and_epochs() {
        let mut a = clock(&[3, 1]);
        a.set_own(Epoch { slot: 3, time: 7 });
        let mut b = clock(&[1, 4, 2]);
        b.set_own(Epoch { slot: 4, time: 5 });
        b.learn(Epoch { slot: 0, time: 9 });
        a.join(&b);
        assert_eq!(times(&a, 6), [9, 4, 2, 7, 5, 0]);
        assert_eq!(a.own(), Some(Epoch { slot: 3, time: 7 }), "own epoch kept");
    }

    #[test]
    fn a_clock_that_knows_less_everywhere_takes_the_other_vector_without_copying() {
        let mut small = clock(&[1, 1]);
        let big = clock(&[2, 3, 1]);
        small.join(&big);
        assert!(small.shares_vector_with(&big));
        let mut bigger = big.clone();
        bigger.join(&clock(&[1]));
        assert!(
            bigger.shares_vector_with(&big),
            "nothing new: nothing written"
        );
    }

    #[test]
    fn a_vector_changed_after_it_was_included_is_learnt_again() {
        let mut knower = clock(&[5, 5]);
        let mut other = clock(&[1, 2]);
        knower.join(&other);
        assert_eq!(knower.includes, other.vector.version);
        // Written in place (its only holder): a new version, so the next join compares again.
        other.vector.set(2, 9);
        knower.join(&other);
        assert_eq!(times(&knower, 3), [5, 5, 9]);
        // A clock whose vector includes this one's takes it without comparing.
        let mut behind = clock(&[1, 1]);
        let mut ahead = clock(&[1, 3, 1]);
        ahead.join(&behind);
        assert_eq!(ahead.includes, behind.vector.version);
        behind.join(&ahead);
        assert!(behind.shares_vector_with(&ahead));
        assert_eq!(times(&behind, 3), [1, 3, 1]);
    }

    #[test]
    fn children_share_their_parent_vector_and_know_its_epoch() {
        let mut parent = clock(&[0, 0, 4]);
        parent.set_own(Epoch { slot: 0, time: 6 });
        parent.learn(Epoch { slot: 1, time: 2 });
        let mut first = parent.handed_down();
        let second = parent.handed_down();
        assert!(first.shares_vector_with(&second));
        assert!(first.shares_vector_with(&parent));
        first.set_own(Epoch { slot: 5, time: 1 });
        assert!(
            first.shares_vector_with(&second),
            "taking a slot writes no vector"
        );
        assert_eq!(times(&first, 6), [6, 2, 4, 0, 0, 1]);
        parent.set_own(Epoch { slot: 0, time: 7 });
        assert_eq!(second.get(0), 6, "the parent's later epochs are its own");
    }
}
