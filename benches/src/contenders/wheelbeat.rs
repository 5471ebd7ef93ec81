//! `wheelbeat_timer::Wheel`, the contender the others are measured against.
//!
//! A tick is one millisecond. `reset` to a later deadline is the wheel's lazy O(1) path.
//! `cancel` is [`Wheel::discard`]: the trait's cancel returns only whether the timer was
//! pending (as the heaps' does), and for a `u64` payload `discard` checks the key and flags
//! the timer without reading its entry. `Wheel::cancel`, which hands the value back, reads
//! the entry too.

use super::Contender;
use wheelbeat_timer::{TimerKey, Wheel};

/// [`Wheel<u64>`] with 1 ms ticks.
#[derive(Debug, Default)]
pub struct WheelbeatContender {
    wheel: Wheel<u64>,
}

impl Contender for WheelbeatContender {
    const NAME: &'static str = "wheelbeat";
    type Key = TimerKey;

    fn new(capacity: usize) -> Self {
        WheelbeatContender {
            wheel: Wheel::with_capacity(capacity),
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> TimerKey {
        self.wheel.insert(deadline, id)
    }

    fn cancel(&mut self, key: TimerKey) -> bool {
        self.wheel.discard(key)
    }

    fn reset(&mut self, key: &mut TimerKey, deadline: u64) {
        let pending = self.wheel.reset(*key, deadline);
        debug_assert!(pending, "reset of a fired or cancelled timer");
    }

    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        for expired in self.wheel.advance(now) {
            // Never early: checked in every build, it costs one compare per expiry.
            assert!(expired.deadline <= now, "wheelbeat fired a timer early");
            fired += 1;
        }
        fired
    }

    fn pending(&self) -> Option<usize> {
        Some(self.wheel.len())
    }
}
