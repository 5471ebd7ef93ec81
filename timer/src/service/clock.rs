//! Where the service reads the time: the system clock, or a [`ManualClock`] that only moves
//! when a test (or a simulation) moves it.
//!
//! Ground rules:
//! - Only the timer thread, the workers and the calls that stamp a start time (`add*`,
//!   [`Entry::reset`](super::Entry::reset), [`Entry::run`](super::Entry::run)) read the clock;
//!   everything else receives instants as inputs.
//! - A manual clock never goes backwards. Advancing it wakes every timer built on it, so the
//!   timer thread never needs to poll a virtual clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::thread::Cmd;

/// A virtual clock for driving a [`Timer`](super::Timer) deterministically, without sleeping.
///
/// It starts at the real `Instant::now()` of its creation and then moves only through
/// [`advance`](Self::advance). Clones share the same time. Advancing wakes every timer built on
/// it; follow it with [`Timer::sync`](super::Timer::sync) to wait until everything due has run.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use wheelbeat_timer::service::{ManualClock, Timer};
///
/// let clock = ManualClock::new();
/// let timer = Timer::builder().manual_clock(clock.clone()).workers(0).build().unwrap();
/// let runs = Arc::new(AtomicU32::new(0));
/// let r = runs.clone();
/// timer.add(Duration::from_secs(1), move |_| {
///     r.fetch_add(1, Ordering::Relaxed);
/// });
/// clock.advance(Duration::from_millis(999));
/// timer.sync();
/// assert_eq!(runs.load(Ordering::Relaxed), 0); // never early
/// clock.advance(Duration::from_millis(1));
/// timer.sync();
/// assert_eq!(runs.load(Ordering::Relaxed), 1); // due at 1 s, run at 1 s
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<ManualShared>,
}

struct ManualShared {
    now: Mutex<Instant>,
    /// The command queues of the timers built on this clock; pruned when a timer is gone.
    subscribers: Mutex<Vec<Sender<Cmd>>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.shared.now.lock())
            .finish()
    }
}

impl ManualClock {
    /// A manual clock reading the current real instant, frozen there until advanced.
    pub fn new() -> Self {
        ManualClock {
            shared: Arc::new(ManualShared {
                now: Mutex::new(Instant::now()),
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        *self.shared.now.lock()
    }

    /// Moves the clock forward by `by` and wakes the timers built on it. It does not wait for
    /// them; use [`Timer::sync`](super::Timer::sync) for that.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.shared.now.lock();
            *now += by;
        }
        // Wake outside the time lock: a timer thread woken here reads `now()` at once.
        self.shared
            .subscribers
            .lock()
            .retain(|tx| tx.send(Cmd::Wake).is_ok());
    }

    pub(crate) fn subscribe(&self, tx: Sender<Cmd>) {
        self.shared.subscribers.lock().push(tx);
    }
}

/// The clock a timer runs on.
#[derive(Clone, Debug)]
pub(crate) enum Clock {
    System,
    Manual(ManualClock),
}

impl Clock {
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }
}
