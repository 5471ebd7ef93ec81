//! tokio's `Sleep`, one per timer, under a paused clock.
//!
//! A tokio user gives each connection a `Sleep` and, on every packet, calls `reset` on it;
//! tokio's own fast path makes a *later* reset a field update (`extend_expiration`). To
//! measure the timer and not a task scheduler, the sleeps are not wrapped in tasks: each is
//! boxed in a slab, polled once at insert (which registers it with the time driver, as its
//! first `.await` would) with a waker of its own that records its slab index in a shared
//! ready list when the driver fires it. [`advance`](super::Contender::advance) is one `block_on`
//! of `tokio::time::advance` (the driver fires what is due), then re-polls only the sleeps
//! on the ready list. Cancel drops the `Sleep`, which deregisters it. The per-timer `Arc`
//! waker stands in for the task a real user would have; it is counted in bytes per timer.

use super::Contender;
use super::delay_queue::paused_runtime;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::time::{Instant, Sleep};

/// The waker of one sleep: pushes the sleep's slab index onto the ready list.
struct IndexWaker {
    index: u32,
    ready: Arc<Mutex<Vec<u32>>>,
}

impl Wake for IndexWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.index);
    }
}

struct Timer {
    sleep: Pin<Box<Sleep>>,
    waker: Waker,
}

/// The key of a [`SleepContender`] timer: slab index and generation.
#[derive(Debug, Clone, Copy)]
pub struct SleepKey {
    index: u32,
    generation: u32,
}

/// One `tokio::time::Sleep` per timer on a paused current-thread runtime.
pub struct SleepContender {
    rt: Runtime,
    epoch: Instant,
    now: u64,
    timers: Vec<(u32, Option<Timer>)>,
    free: Vec<u32>,
    ready: Arc<Mutex<Vec<u32>>>,
    scratch: Vec<u32>,
    len: usize,
}

impl std::fmt::Debug for SleepContender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SleepContender")
            .field("len", &self.len)
            .finish()
    }
}

impl SleepContender {
    fn at(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }

    fn live(&mut self, key: SleepKey) -> Option<&mut Timer> {
        let (generation, timer) = self.timers.get_mut(key.index as usize)?;
        if *generation != key.generation {
            return None;
        }
        timer.as_mut()
    }

    fn remove(&mut self, index: u32) {
        let (generation, timer) = &mut self.timers[index as usize];
        *generation = generation.wrapping_add(1);
        *timer = None;
        self.free.push(index);
        self.len -= 1;
    }
}

impl Contender for SleepContender {
    const NAME: &'static str = "tokio Sleep";
    type Key = SleepKey;

    fn new(capacity: usize) -> Self {
        let rt = paused_runtime();
        let epoch = {
            let _context = rt.enter();
            Instant::now()
        };
        SleepContender {
            rt,
            epoch,
            now: 0,
            timers: Vec::with_capacity(capacity),
            free: Vec::new(),
            ready: Arc::new(Mutex::new(Vec::new())),
            scratch: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, deadline: u64, _id: u64) -> SleepKey {
        let at = self.at(deadline);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.timers.push((0, None));
                (self.timers.len() - 1) as u32
            }
        };
        let waker = Waker::from(Arc::new(IndexWaker {
            index,
            ready: Arc::clone(&self.ready),
        }));
        let _context = self.rt.enter();
        let mut sleep = Box::pin(tokio::time::sleep_until(at));
        // The first poll registers the sleep with the time driver.
        let first = sleep.as_mut().poll(&mut Context::from_waker(&waker));
        debug_assert!(first.is_pending(), "deadline must be in the future");
        let (generation, slot) = &mut self.timers[index as usize];
        *slot = Some(Timer { sleep, waker });
        self.len += 1;
        SleepKey {
            index,
            generation: *generation,
        }
    }

    fn cancel(&mut self, key: SleepKey) -> bool {
        if self.live(key).is_none() {
            return false;
        }
        let _context = self.rt.enter();
        self.remove(key.index);
        true
    }

    fn reset(&mut self, key: &mut SleepKey, deadline: u64) {
        let at = self.at(deadline);
        let _context = self.rt.enter();
        if let Some(timer) = self.live(*key) {
            timer.sleep.as_mut().reset(at);
        }
    }

    fn advance(&mut self, now: u64) -> usize {
        if now <= self.now {
            return 0;
        }
        let step = Duration::from_millis(now - self.now);
        self.now = now;
        self.rt.block_on(tokio::time::advance(step));
        std::mem::swap(
            &mut self.scratch,
            &mut self.ready.lock().unwrap_or_else(|e| e.into_inner()),
        );
        let _context = self.rt.enter();
        let mut fired = 0;
        let mut ready = std::mem::take(&mut self.scratch);
        for &index in &ready {
            let Some(timer) = self.timers[index as usize].1.as_mut() else {
                continue; // cancelled after it was woken
            };
            let waker = timer.waker.clone();
            if timer
                .sleep
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                self.remove(index);
                fired += 1;
            }
        }
        ready.clear();
        self.scratch = ready;
        fired
    }

    fn pending(&self) -> Option<usize> {
        Some(self.len)
    }
}
