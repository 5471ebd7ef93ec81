//! Connect pacing: at most `rate` connects started per second.
//!
//! A pool of 10,000 connections that opens them all at once makes both ends
//! do 10,000 connects, accepts and first pings in a burst. On a busy machine
//! that burst delays every loop's answers by more than a heartbeat timeout,
//! and the far side convicts peers that are only slow. Pacing the starts turns
//! the burst into a ramp.
//!
//! This is the generic cell rate algorithm (GCRA, "virtual scheduling"): a
//! theoretical start time `tat` advances by `1 / rate` per start, and a start
//! is allowed while `tat` is no more than a small burst ahead of now. The
//! burst (10 ms worth of starts, at least one) lets a loop start several
//! connects per turn, since one turn is usually longer than `1 / rate`.
//!
//! # Ground rules
//! - Pure: the caller passes `now`; no clock is read here.
//! - No limit (`rate = None`) allows every start and never asks for a wake-up.

use std::time::{Duration, Instant};

/// How far ahead of now the theoretical start time may run: the burst.
const BURST_WINDOW: Duration = Duration::from_millis(10);

/// The pacing state of one loop's connects.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// `1 / rate` and the burst tolerance; `None` means no limit.
    limit: Option<(Duration, Duration)>,
    /// The theoretical time of the next start (`None` before the first).
    tat: Option<Instant>,
}

impl Pacer {
    /// A pacer allowing `per_sec` starts per second (`None`: no limit).
    pub(crate) fn new(per_sec: Option<u32>) -> Pacer {
        let limit = per_sec.filter(|&r| r > 0).map(|r| {
            let period = Duration::from_secs(1) / r;
            (period, BURST_WINDOW.max(period) - period)
        });
        Pacer { limit, tat: None }
    }

    /// Whether a start is allowed at `now`, without taking it.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        self.ready_at().is_none_or(|t| t <= now)
    }

    /// The earliest instant the next start is allowed; `None` if it is allowed
    /// whenever (no limit, or nothing started yet).
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        let (_, tolerance) = self.limit?;
        let tat = self.tat?;
        Some(tat.checked_sub(tolerance).unwrap_or(tat))
    }

    /// Takes a start at `now` if one is allowed.
    pub(crate) fn try_start(&mut self, now: Instant) -> bool {
        let Some((period, _)) = self.limit else {
            return true;
        };
        if !self.allows(now) {
            return false;
        }
        self.tat = Some(self.tat.map_or(now, |t| t.max(now)) + period);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts taken at each millisecond over `ms` milliseconds, trying `tries` a time.
    fn starts_over(pacer: &mut Pacer, t0: Instant, ms: u64, tries: u32) -> u32 {
        (0..ms)
            .map(|i| {
                let now = t0 + Duration::from_millis(i);
                (0..tries).filter(|_| pacer.try_start(now)).count() as u32
            })
            .sum()
    }

    #[test]
    fn no_limit_allows_everything_and_never_asks_for_a_wake_up() {
        let mut p = Pacer::new(None);
        let t0 = Instant::now();
        assert_eq!(starts_over(&mut p, t0, 10, 1000), 10_000);
        assert_eq!(p.ready_at(), None);
        assert_eq!(Pacer::new(Some(0)).ready_at(), None, "zero means no limit");
    }

    #[test]
    fn the_rate_holds_over_a_second_after_a_burst_of_ten_ms() {
        let mut p = Pacer::new(Some(1000));
        let t0 = Instant::now();
        // At once: the first start plus 10 ms worth.
        assert_eq!(starts_over(&mut p, t0, 1, 100), 10);
        assert!(!p.allows(t0));
        assert_eq!(p.ready_at(), Some(t0 + Duration::from_millis(1)));
        // Over a whole second, greedy: the burst plus one per millisecond.
        let mut p = Pacer::new(Some(1000));
        let n = starts_over(&mut p, t0, 1000, 100);
        assert!((1000..=1010).contains(&n), "{n}");
    }

    #[test]
    fn a_slow_rate_spaces_every_start_and_an_idle_pacer_does_not_bank_starts() {
        let mut p = Pacer::new(Some(2)); // one per 500 ms, no burst beyond that
        let t0 = Instant::now();
        assert!(p.try_start(t0));
        assert!(!p.try_start(t0 + Duration::from_millis(499)));
        assert!(p.try_start(t0 + Duration::from_millis(500)));
        // Ten idle seconds do not allow a burst of twenty afterwards.
        let later = t0 + Duration::from_secs(10);
        assert!(p.try_start(later));
        assert!(!p.try_start(later));
    }
}
