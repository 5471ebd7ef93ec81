//! `hierarchical_hash_wheel_timer`: four byte-sized wheels (256 slots each) plus an overflow
//! list, in its cancellable variant.
//!
//! That variant stores each entry in an `Rc`, keeps the strong reference in a hash map keyed
//! by the entry's id and a `Weak` in the wheel: cancel removes the map entry (the wheel slot
//! is cleaned lazily when it comes due). It has no reset, so a reset is what its docs
//! suggest: cancel the id, then insert a new entry with the same id and the new delay. Its
//! clock only moves by `tick()` (1 ms, returning a `Vec` of the timers due) or `skip(n)` after
//! `can_skip()`; [`advance`](super::Contender::advance) ticks once per millisecond, which is
//! exactly the workloads' 1 ms step.

use super::Contender;
use hierarchical_hash_wheel_timer::wheels::TimerEntryWithDelay;
use hierarchical_hash_wheel_timer::wheels::cancellable::{
    CancellableTimerEntry, QuadWheelWithOverflow,
};
use std::time::Duration;

/// A timer entry: the payload doubles as the unique id the crate requires for cancellation.
#[derive(Debug)]
pub struct Entry {
    id: u64,
    delay: Duration,
}

impl CancellableTimerEntry for Entry {
    type Id = u64;
    fn id(&self) -> &u64 {
        &self.id
    }
}

impl TimerEntryWithDelay for Entry {
    fn delay(&self) -> Duration {
        self.delay
    }
}

/// `hierarchical_hash_wheel_timer`'s cancellable `QuadWheelWithOverflow`, 1 ms per tick.
pub struct HashWheelContender {
    wheel: QuadWheelWithOverflow<Entry>,
    now: u64,
}

impl std::fmt::Debug for HashWheelContender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWheelContender")
            .field("now", &self.now)
            .finish()
    }
}

impl HashWheelContender {
    fn file(&mut self, deadline: u64, id: u64) {
        let delay = Duration::from_millis(deadline.saturating_sub(self.now).max(1));
        self.wheel
            .insert(Entry { id, delay })
            .expect("delay is at least one tick");
    }
}

impl Contender for HashWheelContender {
    const NAME: &'static str = "hash_wheel_timer";
    type Key = u64;

    fn new(_capacity: usize) -> Self {
        HashWheelContender {
            wheel: QuadWheelWithOverflow::new(),
            now: 0,
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> u64 {
        self.file(deadline, id);
        id
    }

    fn cancel(&mut self, key: u64) -> bool {
        self.wheel.cancel(&key).is_ok()
    }

    fn reset(&mut self, key: &mut u64, deadline: u64) {
        if self.wheel.cancel(key).is_ok() {
            self.file(deadline, *key);
        }
    }

    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while self.now < now {
            self.now += 1;
            fired += self.wheel.tick().len();
        }
        fired
    }

    fn pending(&self) -> Option<usize> {
        None
    }
}
