//! Events in the order their operations took effect.
//!
//! `mu.RLock(); v := m[k]; mu.RUnlock()` compiles to a call of the map function, a few moves
//! and the unlock's atomic instruction: nothing in between that the kernel emulates, so a probe
//! there would be single-stepped (a second trap, 10–20 µs). The release is probed on the `CALL`
//! instead (the kernel emulates it), one step early: its event comes before the map function's
//! own, which its entry probe records next for the same goroutine. [`EffectOrder`] holds such a
//! release until that event has passed and only then lets it through, so that everything
//! downstream — the detector, the `--events` recording — sees the read before the release.
//!
//! Nothing else of the goroutine can come in between (the callee's map event is the first thing
//! it records), and no other goroutine can have acquired the release yet (the real release is
//! the atomic instruction after the call). The kernel marks the event only when the map event
//! is sure to come: not when the map lies on the goroutine's stack (its events are dropped),
//! and a hole in the stream (dropped events) lets every held release through.
//!
//! The other way round, a channel send or receive whose return lands on an instruction the
//! kernel would single-step (a caller's epilogue, an indirect call, a join with other paths:
//! nothing to emulate before the next event) has no return probe (`plan::returns`): its
//! completion, which only acquires, is made up here and let through just before the
//! goroutine's next event outside the operation (a slot copy or a hand-off is the operation's
//! own). The operation has completed by then; acquiring later than it did only learns more,
//! which can hide a race, never invent one.

use std::collections::HashSet;

use super::{Event, Op};

/// Length of a direct `CALL rel32`, the only call a release is probed on: the map event's
/// caller (its return address) is the call's address plus this.
const CALL_LENGTH: u64 = 5;

/// Releases waiting for their map event and completions waiting for their goroutine's next
/// event (one per goroutine at most, few at any time).
#[derive(Debug, Default)]
pub struct EffectOrder {
    held: Vec<Event>,
    /// The kernel's drop count on the last event.
    lost: u32,
    /// Return addresses of the sends and receives whose returns are not probed.
    completed_at_next_event: HashSet<u64>,
    /// The made-up completions of such sends and receives, until their goroutine's next event.
    completions: Vec<Event>,
}

impl EffectOrder {
    /// The order for a target whose sends and receives returning to `completed_at_next_event`
    /// are not probed on return (link-time addresses, see `plan::ProbePlan`).
    pub fn new(completed_at_next_event: HashSet<u64>) -> Self {
        Self {
            completed_at_next_event,
            ..Self::default()
        }
    }

    /// Whether `event` would pass on at once with nothing before it (the common case, which
    /// then needs no [`Self::place`]).
    pub fn passes_at_once(&self, event: &Event) -> bool {
        self.held.is_empty()
            && self.completions.is_empty()
            && !event.after_map_call
            && event.lost == self.lost
            && self.completion_of(event).is_none()
    }

    /// Passes `event` on to `out` in effect order: held, or after what it completes, or after
    /// the held releases or made-up completions it shows to be due.
    pub fn place(&mut self, event: Event, out: &mut Vec<Event>) {
        if event.lost != self.lost {
            self.lost = event.lost;
            out.append(&mut self.held);
        }
        // An exec ends the program's stream: what it held back took effect before it.
        if event.op == Op::Exec {
            self.flush(out);
            out.push(event);
            return;
        }
        if !matches!(event.op, Op::ChanSlot { .. } | Op::HandOff { .. }) {
            if let Some(done) = take_goroutines(&mut self.completions, &event) {
                out.push(Event {
                    ts_ns: event.ts_ns,
                    lost: event.lost,
                    ..done
                });
            }
        }
        if let Some(done) = self.completion_of(&event) {
            self.completions.push(done);
        }
        if let Some(release) = take_goroutines(&mut self.held, &event) {
            if completes(&release, &event) {
                out.push(event);
                out.push(release);
                return;
            }
            out.push(release);
        }
        if event.after_map_call && event.goroutine != 0 {
            self.held.push(event);
        } else {
            out.push(event);
        }
    }

    /// Lets every held release and pending completion through (the stream ends or moves to
    /// another window).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.held);
        out.append(&mut self.completions);
    }

    /// The completion to make up for `event`, a send or receive whose return is not probed.
    fn completion_of(&self, event: &Event) -> Option<Event> {
        let op = match event.op {
            Op::Send { .. } => Op::SendDone,
            // Only `chanrecv1`'s return is left unprobed: it does not say whether a value came.
            Op::Receive { .. } => Op::ReceiveDone { received: false },
            _ => return None,
        };
        (event.goroutine != 0 && self.completed_at_next_event.contains(&event.caller)).then_some(
            Event {
                stack: None,
                after_map_call: false,
                op,
                ..*event
            },
        )
    }
}

/// Takes from `waiting` the event of `event`'s goroutine (at most one is waiting per goroutine).
fn take_goroutines(waiting: &mut Vec<Event>, event: &Event) -> Option<Event> {
    let index = waiting
        .iter()
        .position(|other| other.pid == event.pid && other.goroutine == event.goroutine)?;
    Some(waiting.swap_remove(index))
}

/// Whether `event` is the map event of the call `release` was recorded on.
fn completes(release: &Event, event: &Event) -> bool {
    matches!(event.op, Op::Map { .. }) && event.caller == release.caller.wrapping_add(CALL_LENGTH)
}

#[cfg(test)]
mod tests {
    use tracer_common::EventKind;

    use super::*;

    const CALL: u64 = 0x47_1000;

    fn release(goroutine: u64) -> Event {
        Event {
            caller: CALL,
            after_map_call: true,
            ..Event::example(EventKind::RwMutexRUnlock, goroutine, 0x5a_0000, 0)
        }
    }

    fn read(goroutine: u64, caller: u64) -> Event {
        Event {
            caller,
            ..Event::example(EventKind::MapRead, goroutine, 0xc0_0000, 0)
        }
    }

    fn lock(goroutine: u64) -> Event {
        Event::example(EventKind::MutexLock, goroutine, 0x5a_0000, 0)
    }

    /// The events that come out, in order, for `events` in.
    fn ordered(events: &[Event]) -> Vec<Event> {
        ordered_by(EffectOrder::default(), events)
    }

    /// The events that come out of `order`, in order, for `events` in.
    fn ordered_by(mut order: EffectOrder, events: &[Event]) -> Vec<Event> {
        let mut out = Vec::new();
        for &event in events {
            if order.passes_at_once(&event) {
                out.push(event);
            } else {
                order.place(event, &mut out);
            }
        }
        order.flush(&mut out);
        out
    }

    #[test]
    fn a_release_takes_effect_after_the_map_event_of_its_call() {
        let (runlock, own_read) = (release(7), read(7, CALL + CALL_LENGTH));
        let other = lock(8);
        assert_eq!(
            ordered(&[runlock, other, own_read, lock(7)]),
            [other, own_read, runlock, lock(7)]
        );
    }

    #[test]
    fn any_other_next_event_of_the_goroutine_comes_after_the_release() {
        let runlock = release(7);
        let elsewhere = read(7, 0x47_2000);
        assert_eq!(ordered(&[runlock, elsewhere]), [runlock, elsewhere]);
        assert_eq!(ordered(&[runlock, lock(7)]), [runlock, lock(7)]);
    }

    #[test]
    fn a_hole_in_the_stream_lets_held_releases_through_first() {
        let runlock = release(7);
        let after_hole = Event {
            lost: 3,
            ..read(7, CALL + CALL_LENGTH)
        };
        assert_eq!(ordered(&[runlock, after_hole]), [runlock, after_hole]);
    }

    #[test]
    fn an_exec_comes_after_everything_held_back() {
        let runlock = release(7);
        let sent = send(8, UNPROBED_RETURN);
        let exec = at(20, Event::example(EventKind::Exec, 9, 0, 0));
        let out = completed(&[runlock, sent, exec]);
        assert_eq!(
            out.len(),
            4,
            "the release, the send, its completion, the exec: {out:?}"
        );
        assert_eq!(out[..2], [sent, runlock]);
        assert_eq!(out[2].op, Op::SendDone);
        assert_eq!(out[3], exec);
    }

    /// The return address of a send whose return is not probed, and of one whose return is.
    const UNPROBED_RETURN: u64 = 0x47_3005;
    const PROBED_RETURN: u64 = 0x47_4005;

    fn send(goroutine: u64, caller: u64) -> Event {
        Event {
            caller,
            ts_ns: 10,
            ..Event::example(EventKind::ChanSend, goroutine, 0xc1_0000, 0)
        }
    }

    fn at(ts_ns: u64, event: Event) -> Event {
        Event { ts_ns, ..event }
    }

    /// The events that come out for `events` in, for a target whose sends returning to
    /// [`UNPROBED_RETURN`] are not probed on return.
    fn completed(events: &[Event]) -> Vec<Event> {
        ordered_by(EffectOrder::new(HashSet::from([UNPROBED_RETURN])), events)
    }

    #[test]
    fn an_unprobed_send_completes_just_before_its_goroutines_next_event_outside_it() {
        let sent = send(7, UNPROBED_RETURN);
        let slot = at(11, Event::example(EventKind::ChanSlot, 7, 0xc2_0000, 0));
        let other = at(12, lock(8));
        let next = at(13, lock(7));
        let done = Event {
            ts_ns: 13,
            op: Op::SendDone,
            ..sent
        };
        assert_eq!(
            completed(&[sent, slot, other, next]),
            [sent, slot, other, done, next],
            "the slot copy is the send's own; another goroutine's event is not due"
        );
        let receive = Event {
            op: Op::Receive {
                channel: 0xc1_0000,
                buffer: None,
            },
            ..sent
        };
        assert_eq!(
            completed(&[receive, next])[1].op,
            Op::ReceiveDone { received: false }
        );
    }

    #[test]
    fn only_sends_returning_where_no_probe_is_complete_here_and_a_flush_lets_them_through() {
        let probed = send(7, PROBED_RETURN);
        assert_eq!(completed(&[probed, lock(7)]), [probed, lock(7)]);
        let unknown = send(0, UNPROBED_RETURN);
        assert_eq!(completed(&[unknown]), [unknown]);
        let last = send(7, UNPROBED_RETURN);
        let done = Event {
            op: Op::SendDone,
            ..last
        };
        assert_eq!(completed(&[last]), [last, done], "the stream ended");
    }

    #[test]
    fn releases_of_unknown_goroutines_and_plain_events_pass_at_once() {
        let unknown = release(0);
        assert_eq!(ordered(&[unknown, lock(8)]), [unknown, lock(8)]);
        let mut order = EffectOrder::default();
        let mut out = Vec::new();
        order.place(release(7), &mut out);
        assert!(out.is_empty(), "held until its map event");
        order.flush(&mut out);
        assert_eq!(out, [release(7)]);
    }
}
