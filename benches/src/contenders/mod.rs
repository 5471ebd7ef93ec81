//! The timer implementations under comparison, each behind [`Contender`].
//!
//! # Ground rules
//!
//! - Deadlines are absolute milliseconds since the contender was created (tick 0).
//! - [`Contender::advance`] moves time forward to `now` and returns how many timers fired,
//!   never counting a cancelled timer; a timer fires at or after its deadline.
//! - A key passed to [`Contender::release`] belongs to a timer the caller will neither cancel
//!   nor reset again; contenders whose handles must be consumed (nexus-timer) free it there,
//!   the others just drop it. The workloads release keys *inside* the timed region, so that
//!   cost is counted.
//! - What each adapter does to express a workload the crate has no direct call for is
//!   written in the adapter's module docs.

mod delay_queue;
mod heap;
mod hhwt;
mod nexus;
mod packed_heap;
mod tokio_sleep;
mod wheelbeat;

pub use delay_queue::DelayQueueContender;
pub use heap::HeapContender;
pub use hhwt::HashWheelContender;
pub use nexus::NexusContender;
pub use packed_heap::PackedHeapContender;
pub use tokio_sleep::SleepContender;
pub use wheelbeat::WheelbeatContender;

/// One timer implementation, driven by the workloads in [`crate::workloads`].
pub trait Contender {
    /// A short name for tables and criterion ids.
    const NAME: &'static str;
    /// The handle returned by [`insert`](Contender::insert).
    type Key;

    /// An empty contender at tick 0 that expects about `capacity` timers.
    fn new(capacity: usize) -> Self;

    /// Schedules a timer with payload `id` at absolute tick `deadline` (> the current tick).
    fn insert(&mut self, deadline: u64, id: u64) -> Self::Key;

    /// Cancels a pending timer; `true` if it was pending.
    fn cancel(&mut self, key: Self::Key) -> bool;

    /// Moves a pending timer's deadline to `deadline` (later than the current one).
    fn reset(&mut self, key: &mut Self::Key, deadline: u64);

    /// Gives up a key whose timer will just be left to fire.
    fn release(&mut self, key: Self::Key) {
        drop(key);
    }

    /// Advances time to `now` and returns the number of timers that fired.
    fn advance(&mut self, now: u64) -> usize;

    /// The number of timers the contender still holds as pending, if it can tell.
    fn pending(&self) -> Option<usize>;
}

/// Names of every contender, in table order (wheelbeat first: the ratios are to it).
pub const NAMES: [&str; 7] = [
    WheelbeatContender::NAME,
    HeapContender::NAME,
    PackedHeapContender::NAME,
    DelayQueueContender::NAME,
    SleepContender::NAME,
    NexusContender::NAME,
    HashWheelContender::NAME,
];
