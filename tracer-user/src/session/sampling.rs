//! When the probes are in place: always, fixed windows (`--sample ON/PERIOD`), or windows sized
//! so that tracing costs the target at most a budget (`--overhead-budget`, the default).
//!
//! A uprobe hit costs about a microsecond, several when the kernel must single-step the probed
//! instruction, against nanoseconds for the map operation it observes: a busy service traced
//! all the time runs many times slower. Between windows the probes are removed altogether, and
//! each window is analysed on its own (see `Detection::move_window`), so sampling can miss
//! races but never invent one. Pure logic: the session measures, this decides.

use std::time::Duration;

/// The overhead budget when none is given: at most 10% of the target's own CPU time.
pub const DEFAULT_BUDGET: f64 = 0.10;

/// How long a budgeted window lasts: placing the probes takes 20–40 ms and removing them
/// 150–200 ms on a busy target (each breakpoint is written into its page in turn), during which
/// hits cost as much but are not analysed, so shorter windows would mostly pay for that.
pub const BUDGET_WINDOW: Duration = Duration::from_millis(200);

/// When the probes are in place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// Always (`--overhead-budget off`).
    Full,
    /// `on` out of every `period` (`--sample ON/PERIOD`).
    Fixed { on: Duration, period: Duration },
    /// Windows of [`BUDGET_WINDOW`] whenever tracing has cost less than this fraction of the
    /// target's own CPU time over the last [`BUDGET_HORIZON`] or so (`--overhead-budget`).
    Budget(f64),
}

impl Default for Sampling {
    fn default() -> Self {
        Self::Budget(DEFAULT_BUDGET)
    }
}

/// The budget is kept over about this long: cost and CPU time further back fade out, so a long
/// quiet spell does not save up for minutes of full tracing when the traffic comes. Longer when
/// a window costs more than that allows (see `Controller::horizon`).
pub const BUDGET_HORIZON: Duration = Duration::from_secs(10);

/// The budget is a share of the target's own CPU time, but never of less than this many CPUs:
/// most services are quiet most of the time, and a share of a few milliseconds of CPU per
/// second would not pay for opening a single window (placing and removing the probes costs
/// tens of milliseconds), so a quiet service would never be traced — yet its races are just as
/// real. With the default 10%, a quiet service may cost up to a tenth of one CPU.
pub const FLOOR_CPUS: f64 = 1.0;

/// The last stretch of a pause, the one after which the budget has room for a window, is
/// drawn at random from (1 ± this) times its length, the shortfall of a short one forgiven
/// once: on average the budget is spent as before, but windows at a fixed rhythm could stay out
/// of phase with code that runs at a fixed rhythm (a ticker, a janitor, a reloader) for ever.
const PAUSE_JITTER: f64 = 0.5;

/// The longest pause before the budget is checked again (the target's pace may change).
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// A stretch of time with the probes in place (a window) or without them (a pause), as the
/// session measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stretch {
    pub length: Duration,
    /// Time the target's threads spent in probes (traps and programs), estimated.
    pub probes: Duration,
    /// tracer's CPU time on the target: placing and removing its probes, decoding and analysing
    /// its events (it competes with the target for CPUs).
    pub tracer_cpu: Duration,
    /// The target's CPU time, probes included.
    pub target_cpu: Duration,
}

impl Stretch {
    /// The target's own work: its CPU time less the probes'.
    fn own_cpu(&self) -> Duration {
        self.target_cpu.saturating_sub(self.probes)
    }

    fn cost(&self) -> Duration {
        self.probes + self.tracer_cpu
    }
}

/// What to do next, and for how long before deciding again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Trace(Duration),
    Pause(Duration),
}

/// The samplings that come in windows.
#[derive(Clone, Copy, Debug)]
enum Windowed {
    Fixed { on: Duration, period: Duration },
    Budget(f64),
}

/// Decides window after window from what the stretches cost.
#[derive(Clone, Debug)]
pub struct Controller {
    sampling: Windowed,
    /// Tracing's cost, the target's own CPU time and the time elapsed, all fading over
    /// [`BUDGET_HORIZON`].
    cost: f64,
    own: f64,
    elapsed: f64,
    /// The target's own CPU time per second without probes, as last measured (first estimated
    /// from the first window).
    untraced_pace: Option<f64>,
    /// The cost of the window that just closed, until the pause after it shows what removing
    /// its probes cost.
    closed_window: Option<f64>,
    /// What the last window cost, its probes' removal included: what the next will cost.
    window_cost: Option<f64>,
    /// Own CPU time still missing when a pause drawn short of what the budget needed ends
    /// (see [`PAUSE_JITTER`]): forgiven once, at the next decision.
    forgiven: f64,
    /// xorshift64* state for the jitter.
    random: u64,
}

impl Controller {
    /// The controller of a sampling in windows, and how long the first window lasts; `None`
    /// when the probes stay for good.
    pub fn start(sampling: Sampling) -> Option<(Self, Duration)> {
        let (sampling, first_window) = match sampling {
            Sampling::Full => return None,
            Sampling::Fixed { on, period } => (Windowed::Fixed { on, period }, on),
            Sampling::Budget(budget) => (Windowed::Budget(budget), BUDGET_WINDOW),
        };
        let controller = Self {
            sampling,
            cost: 0.0,
            own: 0.0,
            elapsed: 0.0,
            untraced_pace: None,
            closed_window: None,
            window_cost: None,
            forgiven: 0.0,
            random: seed(),
        };
        Some((controller, first_window))
    }

    /// Whether windows follow the overhead budget (rather than a fixed `--sample`).
    pub fn budgeted(&self) -> bool {
        matches!(self.sampling, Windowed::Budget(_))
    }

    /// After a window (`traced`) or a pause that went as `stretch` measured: trace or pause next,
    /// and for how long.
    ///
    /// Under a budget `b`, with cost `C` and own CPU time `O` over the horizon (counted as at
    /// least [`FLOOR_CPUS`] times the time elapsed), and `W` what the next window will cost (as
    /// the last one did, with its probes' placing and removal when it must be opened), a window
    /// opens — or the current one goes on — only when the budget has room for it:
    /// `C + W ≤ b·O`. Otherwise the pause lasts until the target's own work at its untraced
    /// pace `r` (at least the floor) has made that room, cost and work fading meanwhile (see
    /// the formula below), checked again at least every second; the last such pause is drawn
    /// at random around its length (see `PAUSE_JITTER`). Paying before rather than after keeps the cost within the
    /// budget at any moment (give or take the jitter), not just on average. The pace
    /// comes from pauses: a service whose clients wait for it works slower while traced, so
    /// its pace in a window would make the pauses needlessly long.
    pub fn next(&mut self, traced: bool, stretch: &Stretch) -> Decision {
        match self.sampling {
            Windowed::Fixed { on, period } if traced => Decision::Pause(period.saturating_sub(on)),
            Windowed::Fixed { on, .. } => Decision::Trace(on),
            Windowed::Budget(budget) => {
                let fading = (-stretch.length.as_secs_f64() / self.horizon(budget)).exp();
                self.cost = self.cost * fading + stretch.cost().as_secs_f64();
                self.own = self.own * fading + stretch.own_cpu().as_secs_f64();
                self.elapsed = self.elapsed * fading + stretch.length.as_secs_f64();
                let pace = stretch.own_cpu().as_secs_f64() / stretch.length.as_secs_f64().max(1e-9);
                if !traced || self.untraced_pace.is_none() {
                    self.untraced_pace = Some(pace);
                }
                let cost = stretch.cost().as_secs_f64();
                match (traced, self.closed_window.take()) {
                    (true, _) => self.closed_window = Some(cost),
                    (false, Some(window)) => self.window_cost = Some(window + cost),
                    (false, None) => {}
                }
                // Going on costs another such window; opening one also costs placing and
                // removing the probes (before the first removal is measured, as much again).
                let next_window = match traced {
                    true => cost,
                    false => self
                        .window_cost
                        .or(self.closed_window.map(|window| 2.0 * window))
                        .unwrap_or(0.0),
                };
                // The budget's base: the target's own CPU time, but at least one CPU's worth.
                let base = self.own.max(self.elapsed * FLOOR_CPUS);
                let shortfall = (self.cost + next_window) / budget - base;
                if shortfall <= std::mem::take(&mut self.forgiven) {
                    return Decision::Trace(BUDGET_WINDOW);
                }
                // While paused, the cost fades and own work accrues at `pace`, fading too: over
                // a pause of length L, with f = e^(−L/H), there is room once
                // (C·f + W)/b ≤ base·f + pace·H·(1 − f), i.e. L = H·ln(1 + shortfall/room)
                // where room = pace·H − W/b (positive: see `horizon`).
                let pace = self.untraced_pace.unwrap_or(pace).max(FLOOR_CPUS);
                let horizon = self.horizon(budget);
                let room = pace * horizon - next_window / budget;
                let needed = match room > 0.0 {
                    true => horizon * (shortfall / room).ln_1p(),
                    false => f64::INFINITY,
                };
                if needed >= LONGEST_PAUSE.as_secs_f64() {
                    return Decision::Pause(LONGEST_PAUSE);
                }
                let drawn = needed * (1.0 + PAUSE_JITTER * (2.0 * self.uniform() - 1.0));
                self.forgiven = shortfall * (1.0 - drawn / needed).max(0.0);
                Decision::Pause(Duration::from_secs_f64(drawn))
            }
        }
    }

    /// How long the budget is kept over, in seconds: [`BUDGET_HORIZON`], or long enough for the
    /// target's own work, at its untraced pace, to pay for two windows. Work further back fades
    /// out, so what can be saved up is at most the budget's share of the horizon's work: a busy
    /// target under a small budget, whose window costs more than that, would otherwise never
    /// be traced again after its first window (measured: 2% of a net/http service's CPU over
    /// ten seconds is 0.16 s, and its window costs 0.4 s).
    fn horizon(&self, budget: f64) -> f64 {
        let shortest = BUDGET_HORIZON.as_secs_f64();
        let window = self
            .window_cost
            .or(self.closed_window.map(|window| 2.0 * window));
        match (window, self.untraced_pace) {
            (Some(window), Some(pace)) => {
                shortest.max(2.0 * window / (budget * pace.max(FLOOR_CPUS)))
            }
            _ => shortest,
        }
    }

    /// A number drawn uniformly from [0, 1).
    fn uniform(&mut self) -> f64 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        (self.random.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed for the jitter: the clock's nanoseconds (never zero, which xorshift cannot leave).
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    nanos | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// A busy service: traced, the probes take most of its CPU time; untraced, it keeps two
    /// CPUs busy (above the floor of one CPU, so its own CPU time is the budget's base).
    fn busy_window() -> Stretch {
        Stretch {
            length: ms(50),
            probes: ms(90),
            tracer_cpu: ms(10),
            target_cpu: ms(100),
        }
    }

    fn busy_pause(length: Duration) -> Stretch {
        Stretch {
            length,
            target_cpu: length * 2,
            ..Stretch::default()
        }
    }

    fn budget_controller(budget: f64) -> Controller {
        let (controller, first_window) = Controller::start(Sampling::Budget(budget)).unwrap();
        assert_eq!(first_window, BUDGET_WINDOW);
        controller
    }

    /// Feeds `controller` `steps` stretches, starting with the window `first`, each next one
    /// as long as it decided, shaped by `window` or `pause`; returns them, each with whether it
    /// was a window.
    fn simulate(
        controller: &mut Controller,
        steps: usize,
        first: Stretch,
        window: impl Fn(Duration) -> Stretch,
        pause: impl Fn(Duration) -> Stretch,
    ) -> Vec<(bool, Stretch)> {
        let mut stretches = vec![(true, first)];
        while stretches.len() < steps {
            let &(traced, last) = stretches.last().expect("never empty");
            stretches.push(match controller.next(traced, &last) {
                Decision::Trace(length) => (true, window(length)),
                Decision::Pause(length) => (false, pause(length)),
            });
        }
        stretches
    }

    /// A busy window of `length`.
    fn busy_window_of(length: Duration) -> Stretch {
        Stretch {
            length,
            ..busy_window()
        }
    }

    #[test]
    fn a_costly_window_is_followed_by_the_pause_that_pays_for_it() {
        let mut controller = budget_controller(0.10);
        // 100 ms of cost for 10 ms of own work: even at the floor's pace (one CPU) the pause
        // would be (1000 − 10) / 1 ms, the longest pause.
        assert_eq!(
            controller.next(true, &busy_window()),
            Decision::Pause(LONGEST_PAUSE)
        );
        // A second of pause at two CPUs: the target did 2 s of its own work, which pays for
        // the window and leaves room for another: trace again.
        assert_eq!(
            controller.next(false, &busy_pause(LONGEST_PAUSE)),
            Decision::Trace(BUDGET_WINDOW)
        );
        // That window's cost, with the last one's, does not fit: pause until it does.
        assert!(matches!(
            controller.next(true, &busy_window()),
            Decision::Pause(_)
        ));
    }

    #[test]
    fn the_budget_holds_over_many_windows() {
        let budget = 0.10;
        let mut controller = budget_controller(budget);
        let stretches = simulate(
            &mut controller,
            2000,
            busy_window(),
            busy_window_of,
            busy_pause,
        );
        let cost: Duration = stretches.iter().map(|(_, stretch)| stretch.cost()).sum();
        let own: Duration = stretches.iter().map(|(_, stretch)| stretch.own_cpu()).sum();
        let overhead = cost.as_secs_f64() / own.as_secs_f64();
        assert!(
            (budget * 0.5..=budget).contains(&overhead),
            "overhead {overhead}"
        );
    }

    #[test]
    fn a_small_budget_still_opens_windows_that_cost_more_than_ten_seconds_pay_for() {
        let budget = 0.02;
        let mut controller = budget_controller(budget);
        // 0.6 s of cost per window, one CPU of own work untraced: 2% of ten seconds' work is
        // 0.2 s, never enough for one window if the budget were kept over ten seconds only.
        let window = |length: Duration| Stretch {
            length,
            probes: length * 2,
            tracer_cpu: length,
            target_cpu: length * 2,
        };
        let pause = |length: Duration| Stretch {
            length,
            target_cpu: length,
            ..Stretch::default()
        };
        let stretches = simulate(&mut controller, 2000, window(BUDGET_WINDOW), window, pause);
        let elapsed: Duration = stretches.iter().map(|(_, stretch)| stretch.length).sum();
        let windows = stretches.iter().filter(|(traced, _)| *traced).count();
        assert!(
            windows >= 10,
            "{windows} windows in {elapsed:?}: one about every 30 s expected"
        );
        let cost: Duration = stretches.iter().map(|(_, stretch)| stretch.cost()).sum();
        let own: Duration = stretches.iter().map(|(_, stretch)| stretch.own_cpu()).sum();
        let overhead = cost.as_secs_f64() / own.as_secs_f64();
        assert!(overhead <= budget * 1.05, "overhead {overhead}");
    }

    #[test]
    fn cheap_tracing_keeps_the_probes() {
        let mut controller = budget_controller(0.10);
        let cheap = Stretch {
            length: ms(50),
            probes: Duration::from_micros(500),
            tracer_cpu: Duration::from_micros(500),
            target_cpu: ms(50),
        };
        for _ in 0..100 {
            assert_eq!(
                controller.next(true, &cheap),
                Decision::Trace(BUDGET_WINDOW)
            );
        }
    }

    #[test]
    fn a_quiet_target_is_traced_for_a_share_of_one_cpu() {
        let budget = 0.10;
        let mut controller = budget_controller(budget);
        // Traced, a quiet service costs a third of a CPU; untraced it uses 2% of one.
        let window = |length: Duration| Stretch {
            length,
            probes: length / 3,
            tracer_cpu: length / 30,
            target_cpu: length / 3 + length / 50,
        };
        let pause = |length: Duration| Stretch {
            length,
            target_cpu: length / 50,
            ..Stretch::default()
        };
        let stretches = simulate(&mut controller, 2000, window(BUDGET_WINDOW), window, pause);
        let cost: Duration = stretches.iter().map(|(_, stretch)| stretch.cost()).sum();
        let elapsed: Duration = stretches.iter().map(|(_, stretch)| stretch.length).sum();
        let traced: Duration = stretches
            .iter()
            .filter(|(in_window, _)| *in_window)
            .map(|(_, stretch)| stretch.length)
            .sum();
        // Its own 2% of a CPU would allow 0.2% of a CPU, not even one window a minute; the
        // floor allows a tenth of one CPU, and no more.
        let share_of_a_cpu = cost.as_secs_f64() / elapsed.as_secs_f64();
        assert!(
            (budget * 0.5..=budget * 1.01).contains(&share_of_a_cpu),
            "cost {share_of_a_cpu} of a CPU"
        );
        let duty = traced.as_secs_f64() / elapsed.as_secs_f64();
        assert!(duty > 0.10, "traced {duty} of the time");
    }

    #[test]
    fn pauses_are_drawn_at_random_around_what_the_budget_needs() {
        let mut controller = budget_controller(0.10);
        let mut pauses: Vec<Duration> = simulate(
            &mut controller,
            400,
            busy_window(),
            busy_window_of,
            busy_pause,
        )
        .into_iter()
        .filter(|&(traced, stretch)| !traced && stretch.length < LONGEST_PAUSE)
        .map(|(_, stretch)| stretch.length)
        .collect();
        pauses.sort();
        let (shortest, longest) = (pauses[0], pauses[pauses.len() - 1]);
        assert!(
            longest.as_secs_f64() > 1.5 * shortest.as_secs_f64(),
            "pauses from {shortest:?} to {longest:?}: no rhythm can lock onto them"
        );
    }

    #[test]
    fn fixed_windows_ignore_the_cost() {
        let on = ms(100);
        let (mut controller, first_window) = Controller::start(Sampling::Fixed {
            on,
            period: ms(1000),
        })
        .unwrap();
        assert_eq!(first_window, on);
        assert_eq!(
            controller.next(true, &busy_window()),
            Decision::Pause(ms(900))
        );
        assert_eq!(
            controller.next(false, &busy_pause(ms(900))),
            Decision::Trace(on)
        );
        assert!(Controller::start(Sampling::Full).is_none());
        assert_eq!(Sampling::default(), Sampling::Budget(DEFAULT_BUDGET));
    }
}
