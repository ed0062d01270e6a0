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
/// quiet spell does not save up for minutes of full tracing when the traffic comes.
pub const BUDGET_HORIZON: Duration = Duration::from_secs(10);

/// The longest pause before the budget is checked again (the target's pace may change).
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// A stretch of time with the probes in place (a window) or without them (a pause), as the
/// session measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
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
    /// Tracing's cost and the target's own CPU time, both fading over [`BUDGET_HORIZON`].
    cost: f64,
    own: f64,
    /// The target's own CPU time per second without probes, as last measured (first estimated
    /// from the first window).
    untraced_pace: Option<f64>,
    /// The cost of the window that just closed, until the pause after it shows what removing
    /// its probes cost.
    closed_window: Option<f64>,
    /// What the last window cost, its probes' removal included: what the next will cost.
    window_cost: Option<f64>,
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
            untraced_pace: None,
            closed_window: None,
            window_cost: None,
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
    /// Under a budget `b`, with cost `C` and own CPU time `O` over the horizon, and `W` what the
    /// next window will cost (as the last one did, with its probes' placing and removal when it
    /// must be opened), a window opens — or the current one goes on — only when the budget has
    /// room for it: `C + W ≤ b·O`. Otherwise the pause
    /// lasts until the target's own work at its untraced pace `r` has made that room:
    /// `((C + W) / b − O) / r`, checked again at least every second. Paying before rather than
    /// after keeps the cost within the budget at any moment, not just on average. The pace
    /// comes from pauses: a service whose clients wait for it works slower while traced, so
    /// its pace in a window would make the pauses needlessly long.
    pub fn next(&mut self, traced: bool, stretch: &Stretch) -> Decision {
        match self.sampling {
            Windowed::Fixed { on, period } if traced => Decision::Pause(period.saturating_sub(on)),
            Windowed::Fixed { on, .. } => Decision::Trace(on),
            Windowed::Budget(budget) => {
                let fading = (-stretch.length.as_secs_f64() / BUDGET_HORIZON.as_secs_f64()).exp();
                self.cost = self.cost * fading + stretch.cost().as_secs_f64();
                self.own = self.own * fading + stretch.own_cpu().as_secs_f64();
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
                let shortfall = (self.cost + next_window) / budget - self.own;
                if shortfall <= 0.0 {
                    return Decision::Trace(BUDGET_WINDOW);
                }
                let pace = self.untraced_pace.unwrap_or(pace).max(1e-9);
                Decision::Pause(Duration::from_secs_f64(
                    (shortfall / pace).min(LONGEST_PAUSE.as_secs_f64()),
                ))
            }
        }
    }
}

/// Parses `--sample ON/PERIOD` (e.g. `100ms/1s`): ON must be shorter than PERIOD.
pub fn parse_sample(text: &str) -> Result<Sampling, String> {
    let (on, period) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not ON/PERIOD (e.g. 100ms/1s)"))?;
    let on = crate::cli::parse_duration(on)?;
    let period = crate::cli::parse_duration(period)?;
    if on.is_zero() || on >= period {
        return Err(format!(
            "in `{text}`, ON must be above zero and shorter than PERIOD"
        ));
    }
    Ok(Sampling::Fixed { on, period })
}

/// Parses `--overhead-budget`: a percentage (`10%`, `2.5%`, or a bare `10`) of the target's
/// own CPU time from 0.1% to 1000%, or `off` to trace all the time.
pub fn parse_budget(text: &str) -> Result<Sampling, String> {
    if text == "off" {
        return Ok(Sampling::Full);
    }
    let percent: f64 = text
        .strip_suffix('%')
        .unwrap_or(text)
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (e.g. 10%) or `off`"))?;
    if !(0.1..=1000.0).contains(&percent) {
        return Err(format!("{text}: the budget must be from 0.1% to 1000%"));
    }
    Ok(Sampling::Budget(percent / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// A busy service: traced, the probes take most of its CPU time; untraced, it keeps a CPU
    /// busy.
    fn busy_window() -> Stretch {
        Stretch {
            length: ms(50),
            probes: ms(45),
            tracer_cpu: ms(5),
            target_cpu: ms(50),
        }
    }

    fn busy_pause(length: Duration) -> Stretch {
        Stretch {
            length,
            target_cpu: length,
            ..Stretch::default()
        }
    }

    fn budget_controller(budget: f64) -> Controller {
        let (controller, first_window) = Controller::start(Sampling::Budget(budget)).unwrap();
        assert_eq!(first_window, BUDGET_WINDOW);
        controller
    }

    #[test]
    fn a_costly_window_is_followed_by_the_pause_that_pays_for_it() {
        let mut controller = budget_controller(0.10);
        // 50 ms of cost for 5 ms of own work: at the window's own pace (0.1 CPU) the pause
        // would be (500 − 5) / 0.1 ms, beyond the longest pause.
        assert_eq!(
            controller.next(true, &busy_window()),
            Decision::Pause(LONGEST_PAUSE)
        );
        // A second of pause at one CPU: the target did 1 s of its own work, which pays for the
        // window and leaves room for another: trace again.
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
        let (mut cost, mut own) = (Duration::ZERO, Duration::ZERO);
        let mut traced = true;
        let mut next = busy_window();
        for _ in 0..2000 {
            cost += next.cost();
            own += next.own_cpu();
            next = match controller.next(traced, &next) {
                Decision::Trace(length) => {
                    traced = true;
                    Stretch {
                        length,
                        ..busy_window()
                    }
                }
                Decision::Pause(length) => {
                    traced = false;
                    busy_pause(length)
                }
            };
        }
        let overhead = cost.as_secs_f64() / own.as_secs_f64();
        assert!(
            (budget * 0.5..=budget).contains(&overhead),
            "overhead {overhead}"
        );
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
    fn an_idle_target_waits_for_work_to_pay_for_the_last_window() {
        let mut controller = budget_controller(0.10);
        controller.next(true, &busy_window());
        let idle = Stretch {
            length: LONGEST_PAUSE,
            ..Stretch::default()
        };
        for _ in 0..5 {
            assert_eq!(
                controller.next(false, &idle),
                Decision::Pause(LONGEST_PAUSE)
            );
        }
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

    #[test]
    fn sample_and_budget_options_parse_or_say_why_not() {
        assert_eq!(
            parse_sample("100ms/1s"),
            Ok(Sampling::Fixed {
                on: ms(100),
                period: ms(1000)
            })
        );
        for bad in ["100ms", "1s/100ms", "1s/1s", "0s/1s", "x/1s", "1s/"] {
            assert!(parse_sample(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_budget("10%"), Ok(Sampling::Budget(0.10)));
        assert_eq!(parse_budget("2.5%"), Ok(Sampling::Budget(0.025)));
        assert_eq!(parse_budget("50"), Ok(Sampling::Budget(0.5)));
        assert_eq!(parse_budget("off"), Ok(Sampling::Full));
        for bad in ["", "0%", "0.01%", "2000%", "ten", "-5%", "NaN"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }
}
