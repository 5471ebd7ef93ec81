//! tokio-util's `DelayQueue`, driven the way its users drive it, under a paused clock.
//!
//! The contender owns a current-thread runtime with time enabled and the clock paused
//! (`start_paused`). Inserts, removes and resets run inside the runtime's context
//! (`Runtime::enter`), as they would inside a task. [`advance`](super::Contender::advance) is one
//! `block_on` that calls `tokio::time::advance` (which moves the paused clock and yields so
//! the time driver fires the queue's internal `Sleep`) and then drains `poll_expired` until
//! it returns `Pending`. That `block_on` plus driver turn is the price every tokio timer
//! pays per step; `compare` prints it separately ("tokio idle step") so it can be
//! subtracted by eye.

use super::Contender;
use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

/// A current-thread runtime with a paused clock, shared by the tokio contenders.
pub(crate) fn paused_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

/// `DelayQueue<u64>` on a paused current-thread runtime.
pub struct DelayQueueContender {
    rt: Runtime,
    queue: DelayQueue<u64>,
    epoch: Instant,
    now: u64,
}

impl std::fmt::Debug for DelayQueueContender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayQueueContender")
            .field("len", &self.queue.len())
            .finish()
    }
}

impl DelayQueueContender {
    fn at(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }
}

impl Contender for DelayQueueContender {
    const NAME: &'static str = "DelayQueue";
    type Key = Key;

    fn new(capacity: usize) -> Self {
        let rt = paused_runtime();
        let (queue, epoch) = {
            let _context = rt.enter();
            (DelayQueue::with_capacity(capacity), Instant::now())
        };
        DelayQueueContender {
            rt,
            queue,
            epoch,
            now: 0,
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> Key {
        let at = self.at(deadline);
        let _context = self.rt.enter();
        self.queue.insert_at(id, at)
    }

    fn cancel(&mut self, key: Key) -> bool {
        let _context = self.rt.enter();
        self.queue.try_remove(&key).is_some()
    }

    fn reset(&mut self, key: &mut Key, deadline: u64) {
        let at = self.at(deadline);
        let _context = self.rt.enter();
        self.queue.reset_at(key, at);
    }

    fn advance(&mut self, now: u64) -> usize {
        if now <= self.now {
            return 0;
        }
        let step = Duration::from_millis(now - self.now);
        self.now = now;
        let deadline = self.at(now);
        let queue = &mut self.queue;
        self.rt.block_on(async move {
            tokio::time::advance(step).await;
            let mut fired = 0;
            loop {
                fired += poll_fn(|cx| {
                    let mut fired = 0;
                    while let Poll::Ready(Some(_expired)) = queue.poll_expired(cx) {
                        fired += 1;
                    }
                    Poll::Ready(fired)
                })
                .await;
                // After a long jump the queue hands out one internal slot per wake-up of
                // its `Sleep`; yield to the time driver until nothing due is left.
                match queue.peek() {
                    Some(key) if queue.deadline(&key) <= deadline => tokio::task::yield_now().await,
                    _ => break fired,
                }
            }
        })
    }

    fn pending(&self) -> Option<usize> {
        Some(self.queue.len())
    }
}
