//! Reconnect delays: exponential backoff with full jitter.
//!
//! After the `n`-th failure in a row the delay is drawn uniformly from
//! `[0, min(max, initial × 2ⁿ)]` ("full jitter", AWS Architecture Blog,
//! *Exponential Backoff And Jitter*, 2015). Drawing from the whole range, not
//! just adding a little noise, is what stops a thousand clients that lost
//! their server at the same instant from reconnecting in lockstep.
//!
//! # Ground rules
//! - Pure: the caller passes the random source; no clock is read here.
//! - The exponent is capped, so neither the shift nor the multiplication can
//!   overflow however many failures pile up.

use std::time::Duration;

/// Backoff state of one reconnecting slot.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

/// Beyond 2³⁰ × initial every sane `max` is reached; capping the exponent
/// keeps `initial * 2^n` from overflowing.
const MAX_EXPONENT: u32 = 30;

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// Forgets past failures (called once a connection is established).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The ceiling of the next delay, without jitter.
    pub(crate) fn ceiling(&self) -> Duration {
        let exp = self.failures.min(MAX_EXPONENT);
        self.initial
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Records one more failure and returns the delay before the next
    /// attempt, drawn from `[0, ceiling]` with `rng`.
    pub(crate) fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_max() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut rng = fastrand::Rng::with_seed(1);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay(&mut rng);
            assert!(d <= Duration::from_secs(1));
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn reset_starts_again_from_initial() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(10));
        let mut rng = fastrand::Rng::with_seed(2);
        for _ in 0..5 {
            b.next_delay(&mut rng);
        }
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(50));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(3600), Duration::MAX);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..200 {
            b.next_delay(&mut rng);
        }
        assert!(b.ceiling() >= Duration::from_secs(3600));
    }

    #[test]
    fn full_jitter_spreads_delays_over_the_whole_range() {
        let mut rng = fastrand::Rng::with_seed(4);
        let mut below_half = 0;
        for _ in 0..1000 {
            let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(1000));
            if b.next_delay(&mut rng) < Duration::from_millis(500) {
                below_half += 1;
            }
        }
        // Uniform over [0, 1 s]: about half below 500 ms.
        assert!((400..600).contains(&below_half), "{below_half}");
    }
}
