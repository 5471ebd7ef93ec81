//! Mapping between [`Instant`]s and the wheel's integer ticks.
//!
//! Ground rule: a *deadline* is rounded **up** to the next tick boundary and the *current time*
//! is rounded **down**, so a timer can never fire before its deadline; it fires at most one tick
//! (plus the caller's own latency) after it.

use std::time::{Duration, Instant};

/// Converts between wall-clock [`Instant`]s and wheel ticks of a fixed length, counted from an
/// origin instant.
///
/// ```
/// use std::time::{Duration, Instant};
/// use wheelbeat_timer::TickClock;
///
/// let origin = Instant::now();
/// let clock = TickClock::new(origin, Duration::from_millis(1));
/// // 1.5 ms after the origin is not yet tick 2 ...
/// assert_eq!(clock.now_to_tick(origin + Duration::from_micros(1500)), 1);
/// // ... but a deadline there is only reached at tick 2: never early.
/// assert_eq!(clock.deadline_to_tick(origin + Duration::from_micros(1500)), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickClock {
    origin: Instant,
    tick_nanos: u64,
}

impl TickClock {
    /// A clock whose tick 0 starts at `origin` and whose ticks are `tick` long.
    ///
    /// # Panics
    /// If `tick` is zero or longer than `u64::MAX` nanoseconds.
    pub fn new(origin: Instant, tick: Duration) -> Self {
        let tick_nanos =
            u64::try_from(tick.as_nanos()).expect("tick length fits in u64 nanoseconds");
        assert!(tick_nanos > 0, "tick length must be non-zero");
        TickClock { origin, tick_nanos }
    }

    /// The instant of tick 0.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The length of one tick.
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_nanos)
    }

    /// The last tick that has fully started at `now` (rounds down). Instants before the origin
    /// map to tick 0; instants at or after [`FAR_FUTURE`](Self::FAR_FUTURE) map to the last
    /// tick, `u64::MAX`, mirroring [`tick_to_instant`](Self::tick_to_instant)'s saturation: a
    /// virtual-time loop that jumps to the saturated instant reaches every deadline there
    /// instead of spinning short of it.
    pub fn now_to_tick(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        if since >= Self::FAR_FUTURE {
            return u64::MAX;
        }
        match u64::try_from(since.as_nanos()) {
            // Within 584 years of the origin: a u64 division, several times cheaper than a
            // u128 one (the timer service maps every due instant).
            Ok(nanos) => nanos / self.tick_nanos,
            Err(_) => {
                u64::try_from(since.as_nanos() / u128::from(self.tick_nanos)).unwrap_or(u64::MAX)
            }
        }
    }

    /// The first tick at or after `deadline` (rounds up), so that a timer filed at this tick
    /// is never due before `deadline`.
    pub fn deadline_to_tick(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.origin).as_nanos();
        match u64::try_from(nanos) {
            // The common case, with a u64 division (see `now_to_tick`).
            Ok(nanos) => nanos.div_ceil(self.tick_nanos),
            Err(_) => {
                u64::try_from(nanos.div_ceil(u128::from(self.tick_nanos))).unwrap_or(u64::MAX)
            }
        }
    }

    /// The number of whole ticks that covers `duration` (rounds up).
    pub fn duration_to_ticks(&self, duration: Duration) -> u64 {
        u64::try_from(duration.as_nanos().div_ceil(u128::from(self.tick_nanos))).unwrap_or(u64::MAX)
    }

    /// The instant at which `tick` starts.
    ///
    /// Ticks too far ahead for [`Instant`] (a "never" deadline such as `u64::MAX`) saturate
    /// at [`FAR_FUTURE`](Self::FAR_FUTURE) after the origin instead of panicking, so an event
    /// loop may sleep until `tick_to_instant(next_deadline)` whatever the deadline.
    pub fn tick_to_instant(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * u128::from(self.tick_nanos);
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        let sub = (nanos % 1_000_000_000) as u32;
        let far = Duration::new(secs, sub).min(Self::FAR_FUTURE);
        self.origin
            .checked_add(far)
            .unwrap_or_else(|| self.origin + Duration::from_secs(1 << 30))
    }

    /// Where [`tick_to_instant`](Self::tick_to_instant) saturates: about 34,000 years.
    pub const FAR_FUTURE: Duration = Duration::from_secs(1 << 40);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> (Instant, TickClock) {
        let origin = Instant::now();
        (origin, TickClock::new(origin, Duration::from_millis(1)))
    }

    #[test]
    fn an_exact_tick_boundary_maps_to_that_tick_both_ways() {
        let (origin, clock) = clock();
        let at = origin + Duration::from_millis(7);
        assert_eq!(clock.now_to_tick(at), 7);
        assert_eq!(clock.deadline_to_tick(at), 7);
        assert_eq!(clock.tick_to_instant(7), at);
    }

    #[test]
    fn deadlines_round_up_and_now_rounds_down_so_nothing_fires_early() {
        let (origin, clock) = clock();
        for nanos in [1u64, 999_999, 1_000_001, 5_500_000, 59_999_999_999] {
            let at = origin + Duration::from_nanos(nanos);
            let deadline = clock.deadline_to_tick(at);
            let now = clock.now_to_tick(at);
            // The deadline's tick starts at or after the deadline: never early ...
            assert!(clock.tick_to_instant(deadline) >= at);
            // ... and at most one tick after it.
            assert!(clock.tick_to_instant(deadline) - at < clock.tick());
            // `now` never runs ahead of the real time.
            assert!(clock.tick_to_instant(now) <= at);
            assert_eq!(
                deadline - now,
                1,
                "off a boundary the two differ by one tick"
            );
        }
    }

    #[test]
    fn instants_before_the_origin_are_tick_zero() {
        let origin = Instant::now() + Duration::from_secs(10);
        let clock = TickClock::new(origin, Duration::from_millis(1));
        assert_eq!(clock.now_to_tick(Instant::now()), 0);
        assert_eq!(clock.deadline_to_tick(Instant::now()), 0);
    }

    #[test]
    fn durations_round_up_to_whole_ticks() {
        let (_, clock) = clock();
        assert_eq!(clock.duration_to_ticks(Duration::ZERO), 0);
        assert_eq!(clock.duration_to_ticks(Duration::from_nanos(1)), 1);
        assert_eq!(clock.duration_to_ticks(Duration::from_millis(30)), 30);
        assert_eq!(clock.duration_to_ticks(Duration::MAX), u64::MAX);
    }

    #[test]
    fn a_never_deadline_maps_to_a_far_instant_without_panicking() {
        let (origin, clock) = clock();
        assert_eq!(
            clock.tick_to_instant(u64::MAX),
            origin + TickClock::FAR_FUTURE
        );
        let coarse = TickClock::new(origin, Duration::from_secs(3600));
        assert_eq!(
            coarse.tick_to_instant(u64::MAX),
            origin + TickClock::FAR_FUTURE
        );
        // And back: jumping to that instant reaches the never deadline, rather than stopping
        // short of it for ever.
        assert_eq!(clock.now_to_tick(clock.tick_to_instant(u64::MAX)), u64::MAX);
        assert_eq!(coarse.now_to_tick(origin + TickClock::FAR_FUTURE), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "non-zero")]
    fn a_zero_tick_is_rejected() {
        TickClock::new(Instant::now(), Duration::ZERO);
    }
}
