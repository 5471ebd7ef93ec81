//! `nexus-timer`: a no-cascade hierarchical wheel (Linux-style levels, 1 ms tick) over a slab.
//!
//! Its API takes `std::time::Instant`s, so tick `t` is mapped to `epoch + t ms`. Its handles
//! must be consumed: a timer left to fire is released with `free` (which turns it into a
//! fire-and-forget timer), a reset is `reschedule`, which moves the entry between slot lists
//! (nexus-timer has no lazy later-reset path). [`advance`](super::Contender::advance) is
//! `poll_and_rebalance`, the crate's recommended poll: plain `poll` never moves entries down
//! from coarse levels and so rescans them on every 1 ms step (with nexus-timer 1.4 that made
//! the 200k mixed run take minutes). Fired values land in a reused buffer.

use super::Contender;
use nexus_timer::{TimerHandle, Wheel};
use std::time::{Duration, Instant};

/// `nexus_timer::Wheel<u64>` with its default configuration (1 ms tick, 64 slots, 7 levels).
pub struct NexusContender {
    wheel: Wheel<u64>,
    epoch: Instant,
    buf: Vec<u64>,
}

impl std::fmt::Debug for NexusContender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexusContender")
            .field("len", &self.wheel.len())
            .finish()
    }
}

impl NexusContender {
    fn at(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }
}

impl Contender for NexusContender {
    const NAME: &'static str = "nexus-timer";
    /// `None` only transiently inside `reset`.
    type Key = Option<TimerHandle<u64>>;

    fn new(capacity: usize) -> Self {
        let epoch = Instant::now();
        // Slab chunks of 4096 entries, or fewer for small runs.
        let chunk = capacity.clamp(64, 4096);
        NexusContender {
            wheel: Wheel::unbounded(chunk, epoch),
            epoch,
            buf: Vec::new(),
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> Self::Key {
        let at = self.at(deadline);
        Some(self.wheel.schedule(at, id))
    }

    fn cancel(&mut self, key: Self::Key) -> bool {
        key.is_some_and(|handle| self.wheel.cancel(handle).is_some())
    }

    fn reset(&mut self, key: &mut Self::Key, deadline: u64) {
        let at = self.at(deadline);
        if let Some(handle) = key.take() {
            *key = Some(self.wheel.reschedule(handle, at));
        }
    }

    fn release(&mut self, key: Self::Key) {
        if let Some(handle) = key {
            self.wheel.free(handle);
        }
    }

    fn advance(&mut self, now: u64) -> usize {
        let at = self.at(now);
        self.buf.clear();
        self.wheel.poll_and_rebalance(at, &mut self.buf)
    }

    fn pending(&self) -> Option<usize> {
        Some(self.wheel.len())
    }
}
