//! How long the loop thread was not running, for the local-pause guard
//! ([`Monitor::report_stall`](crate::monitor::Monitor::report_stall)).
//!
//! # Ground rules
//! - Between polls, wall-clock time in which the thread used no CPU is time it was not
//!   running (stopped, frozen, not scheduled while it had work); in `poll`, the time it slept
//!   past its timeout. The loop's own busy turns use CPU, so they never count.
//! - Without a per-thread CPU clock nothing is reported, and the monitor keeps its older rule
//!   (any lateness over `timeout` is a pause).

use std::time::{Duration, Instant};

/// Measures how long the loop thread was not running, for the local-pause guard: between
/// polls, the wall-clock time in which the thread used no CPU (stopped or not scheduled while
/// it had work); in `poll`, the time it slept past its timeout. The loop's own busy turns use
/// CPU and so never count.
pub(super) struct StallMeter {
    /// Wall clock and thread CPU time when the previous `poll` returned.
    turn_start: Option<(Instant, Duration)>,
    /// Wall-clock time of the busy part of the turn that used no CPU.
    busy_idle: Duration,
    poll_start: Instant,
}

impl StallMeter {
    pub(super) fn new() -> StallMeter {
        StallMeter {
            turn_start: None,
            busy_idle: Duration::ZERO,
            poll_start: Instant::now(),
        }
    }

    pub(super) fn before_poll(&mut self, now: Instant) {
        self.poll_start = now;
        self.busy_idle = match (self.turn_start, wheelbeat_net::thread_cpu_time()) {
            (Some((wall, cpu)), Some(cpu_now)) => {
                (now - wall).saturating_sub(cpu_now.saturating_sub(cpu))
            }
            _ => Duration::ZERO,
        };
    }

    /// The time not running since the last report; `None` where the thread's CPU time is
    /// unknown (the monitor then keeps treating any lateness over `timeout` as a pause).
    pub(super) fn after_poll(
        &mut self,
        now: Instant,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        let cpu = wheelbeat_net::thread_cpu_time()?;
        let known = self.turn_start.is_some();
        self.turn_start = Some((now, cpu));
        let overslept = timeout.map_or(Duration::ZERO, |t| {
            now.saturating_duration_since(self.poll_start)
                .saturating_sub(t)
        });
        known.then_some(self.busy_idle + overslept)
    }
}
