//! [`Entry`]: the handle to one scheduled job, and the state it shares with the timer thread.
//!
//! Ground rules:
//! - Every `Entry` method is cheap and may be called from any thread, including from inside the
//!   entry's own job. Methods that change the schedule only flip atomics and post a command;
//!   the timer thread applies it in order. They never block on a running job.
//! - The lifecycle (`Ready` / `Stopped` / `Closed`) lives in one atomic; `Running` is derived from
//!   the count of dispatched, unfinished runs. `Closed` is final.
//! - `Sched` (the next due instant and the wheel key) belongs to the timer thread; the mutex
//!   around it is uncontended and only lets [`Entry::next_run`] peek.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::context::{JobContext, run_job};
use super::thread::Cmd;
use super::timer::Core;
use crate::TimerKey;

/// The status of an [`Entry`] (and the values gtimer calls `StatusReady` ... `StatusClosed`).
///
/// See the [state table](super#entry-states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Scheduled; waits for its next due time.
    Ready,
    /// A run has been dispatched and has not finished yet (it may still wait for a worker).
    Running,
    /// Not run when due until [`Entry::start`]; keeps its schedule.
    Stopped,
    /// Removed from the timer for good: no new run starts.
    Closed,
}

/// How the next run of a repeating entry is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Schedule {
    /// Run k is due at `start + k × interval`, however late earlier runs were: no cumulative
    /// drift. When the timer falls a whole interval or more behind (a stall, a busy pool, a
    /// held [`Timer`](super::Timer::hold)), the runs missed are **skipped and counted**
    /// ([`Entry::missed`]): one run is made, and the next is the first grid point after now.
    #[default]
    FixedRate,
    /// The next run is due `interval` after the previous run **finished**, so runs never
    /// overlap and a slow job stretches the period.
    FixedDelay,
}

/// All the options of [`Timer::add_entry`](super::Timer::add_entry), gtimer's `AddEntry`.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_timer::service::{EntryOptions, Schedule, Status};
///
/// let options = EntryOptions::new(Duration::from_millis(500))
///     .times(3)
///     .singleton(true)
///     .schedule(Schedule::FixedDelay)
///     .status(Status::Stopped)
///     .delay(Duration::from_secs(1));
/// assert_eq!(options.interval(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryOptions {
    pub(crate) interval: Duration,
    pub(crate) times: Option<u64>,
    pub(crate) singleton: bool,
    pub(crate) status: Status,
    pub(crate) schedule: Schedule,
    pub(crate) delay: Duration,
}

impl EntryOptions {
    /// A forever, non-singleton, fixed-rate entry that is ready at once and first runs one
    /// `interval` from now (at the next tick with [`Builder::quick`](super::Builder::quick)).
    /// The first due instant is exact; between runs, an interval shorter than the timer's
    /// tick is raised to one tick.
    pub fn new(interval: Duration) -> Self {
        EntryOptions {
            interval,
            times: None,
            singleton: false,
            status: Status::Ready,
            schedule: Schedule::FixedRate,
            delay: Duration::ZERO,
        }
    }

    /// Limits the entry to `times` runs, after which it closes. `0` makes an entry that is
    /// closed at once and never runs (gtimer took `times <= 0` as "forever").
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    /// Whether a run that would overlap the previous, still running one is skipped.
    pub fn singleton(mut self, singleton: bool) -> Self {
        self.singleton = singleton;
        self
    }

    /// The initial status: `Ready` (the default), `Stopped` (scheduled, but runs only after
    /// [`Entry::start`]) or `Closed`. `Running` is taken as `Ready`.
    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Fixed-rate (the default) or fixed-delay.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Delays the whole schedule: the first run is due `delay + interval` from now, as with
    /// gtimer's `DelayAdd*`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The interval between runs.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

pub(crate) type Job = Box<dyn Fn(&JobContext<'_>) + Send + Sync + 'static>;

/// `from + by`, saturating at about a century ahead instead of panicking on overflow: an
/// interval of `Duration::MAX` means "practically never".
pub(crate) fn later(from: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    // A century ahead is representable wherever `Instant` is (it spans ±292 years of
    // nanoseconds on Unix); the fallback only satisfies the type.
    from.checked_add(by.min(CENTURY)).unwrap_or(from)
}

/// `times` value meaning "no limit".
pub(crate) const UNLIMITED: u64 = u64::MAX;

const READY: u8 = 0;
const STOPPED: u8 = 1;
const CLOSED: u8 = 2;

/// The timer thread's view of an entry's schedule.
#[derive(Debug)]
pub(crate) struct Sched {
    /// The instant the next run is due (fixed-delay: only meaningful when not `awaiting`).
    pub(crate) due: Instant,
    /// Where the entry is filed in the wheel, if it is.
    pub(crate) key: Option<TimerKey>,
    /// A dispatched run decides the next step when it finishes (fixed-delay, or a last run).
    pub(crate) awaiting: bool,
    /// Already counted out of the timer's live entries.
    pub(crate) retired: bool,
    /// Unfiled because stopped: on start, due times that passed meanwhile are dropped.
    pub(crate) paused: bool,
}

/// State shared by the [`Entry`] handles, the timer thread and the workers.
pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) core: Arc<Core>,
    pub(crate) job: Job,
    pub(crate) interval: Duration,
    pub(crate) schedule: Schedule,
    life: AtomicU8,
    /// Dispatched runs not yet finished (queued for a worker or executing).
    pub(crate) active: AtomicU32,
    /// A run is waiting in the worker queue; a further due run is skipped rather than queued,
    /// so a slow job cannot grow the queue without bound.
    pub(crate) queued: AtomicBool,
    /// Runs left, or [`UNLIMITED`].
    pub(crate) times: AtomicU64,
    singleton: AtomicBool,
    pub(crate) runs: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) missed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) delayed: AtomicU64,
    pub(crate) sched: Mutex<Sched>,
}

impl Inner {
    pub(crate) fn new(core: Arc<Core>, options: &EntryOptions, job: Job, now: Instant) -> Self {
        // The period of a repeating entry is at least a tick (a run per tick at most), but
        // the first due instant uses the exact interval: a once-entry shorter than the tick
        // runs at the tick after its due instant, not a tick later.
        let interval = options.interval.max(core.ticks.tick());
        let first = if core.quick {
            Duration::ZERO
        } else {
            options.interval
        };
        let life = match options.status {
            Status::Ready | Status::Running => READY,
            Status::Stopped => STOPPED,
            Status::Closed => CLOSED,
        };
        let times = options.times.unwrap_or(UNLIMITED);
        let life = if times == 0 { CLOSED } else { life };
        Inner {
            id: core.next_id.fetch_add(1, Ordering::Relaxed),
            job,
            interval,
            schedule: options.schedule,
            life: AtomicU8::new(life),
            active: AtomicU32::new(0),
            queued: AtomicBool::new(false),
            times: AtomicU64::new(times),
            singleton: AtomicBool::new(options.singleton),
            runs: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            sched: Mutex::new(Sched {
                due: later(now, options.delay.saturating_add(first)),
                key: None,
                awaiting: false,
                retired: false,
                paused: false,
            }),
            core,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.life.load(Ordering::Acquire) == CLOSED || self.core.is_closed()
    }

    /// Reads a field from each part of the entry the timer thread touches when it fires,
    /// to bring them into the cache ahead of use (see `process_due`).
    #[inline]
    pub(crate) fn warm(&self) -> u64 {
        u64::from(self.life.load(Ordering::Relaxed))
            ^ self.times.load(Ordering::Relaxed)
            ^ self.runs.load(Ordering::Relaxed)
            ^ self.delayed.load(Ordering::Relaxed)
            ^ u64::from(self.active.load(Ordering::Relaxed))
            ^ u64::from(self.sched.is_locked())
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.life.load(Ordering::Acquire) == STOPPED
    }

    pub(crate) fn is_singleton(&self) -> bool {
        self.singleton.load(Ordering::Relaxed)
    }

    /// Marks the entry closed (idempotent).
    pub(crate) fn mark_closed(&self) {
        self.life.store(CLOSED, Ordering::Release);
    }

    /// Claims a run slot: fails if the entry is a singleton with a run still active.
    pub(crate) fn try_activate(&self) -> bool {
        if self.is_singleton() {
            self.active
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        } else {
            self.active.fetch_add(1, Ordering::AcqRel);
            true
        }
    }

    /// Counts one run against `times`, as gtimer does when a run is started. `Err` when no run
    /// is left; `Ok(true)` when this was the last one.
    pub(crate) fn take_time(&self) -> Result<bool, ()> {
        match self
            .times
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| match t {
                UNLIMITED => Some(UNLIMITED),
                0 => None,
                t => Some(t - 1),
            }) {
            Ok(prev) => Ok(prev == 1),
            Err(_) => Err(()),
        }
    }

    pub(crate) fn times_exhausted(&self) -> bool {
        self.times.load(Ordering::Acquire) == 0
    }

    fn post(self: &Arc<Self>, cmd: impl FnOnce(Arc<Self>) -> Cmd) {
        // A timer that is gone cannot run the entry any more; its status already reads Closed.
        let _ = self.core.cmd.send(cmd(self.clone()));
    }
}

/// The handle to a job scheduled on a [`Timer`](super::Timer), gtimer's `*Entry`.
///
/// Cheap to clone (an `Arc`); clones name the same entry. Dropping every handle does **not**
/// cancel the entry: [`close`](Self::close) does.
#[derive(Clone)]
pub struct Entry {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.inner.id)
            .field("status", &self.status())
            .field("interval", &self.inner.interval)
            .field("schedule", &self.inner.schedule)
            .field("times", &self.times())
            .field("singleton", &self.is_singleton())
            .finish()
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Entry {}

impl Entry {
    /// A number unique among the entries of its timer (used in log lines).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The current status; see the [state table](super#entry-states).
    pub fn status(&self) -> Status {
        if self.inner.is_closed() {
            Status::Closed
        } else if self.inner.is_stopped() {
            Status::Stopped
        } else if self.inner.active.load(Ordering::Acquire) > 0 {
            Status::Running
        } else {
            Status::Ready
        }
    }

    /// Lets a stopped entry run again when due. Its schedule was kept: the next run is the
    /// first due time not yet passed (runs that fell due while stopped are not made and not
    /// counted as missed). No effect on a closed entry.
    pub fn start(&self) {
        if self
            .inner
            .life
            .compare_exchange(STOPPED, READY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.inner.post(Cmd::Refresh);
        }
    }

    /// Stops the entry: no new run is dispatched until [`start`](Self::start). A run already
    /// dispatched completes. No effect on a closed entry.
    pub fn stop(&self) {
        if self
            .inner
            .life
            .compare_exchange(READY, STOPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.inner.post(Cmd::Refresh);
        }
    }

    /// Sets the status and returns the one before, gtimer's `SetStatus`: `Ready` is
    /// [`start`](Self::start), `Stopped` is [`stop`](Self::stop), `Closed` is
    /// [`close`](Self::close). `Running` cannot be set (a run is made by the timer or by
    /// [`run`](Self::run)) and is taken as `Ready`. A closed entry stays closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelbeat_timer::service::{Status, Timer};
    ///
    /// let timer = Timer::new();
    /// let entry = timer.add(Duration::from_secs(1), |_| {});
    /// assert_eq!(entry.set_status(Status::Stopped), Status::Ready);
    /// assert_eq!(entry.set_status(Status::Closed), Status::Stopped);
    /// assert_eq!(entry.set_status(Status::Ready), Status::Closed); // final
    /// assert_eq!(entry.status(), Status::Closed);
    /// ```
    pub fn set_status(&self, status: Status) -> Status {
        let before = self.status();
        match status {
            Status::Ready | Status::Running => self.start(),
            Status::Stopped => self.stop(),
            Status::Closed => self.close(),
        }
        before
    }

    /// Closes the entry for good and removes it from the timer. No run starts after this
    /// returns (a run already executing completes). Also what a job does to end itself:
    /// [`JobContext::exit`].
    pub fn close(&self) {
        if self.inner.life.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            self.inner.post(Cmd::Refresh);
        }
    }

    /// Restarts the interval from now: the next run is due one interval from this call (for a
    /// fixed-rate entry this is also the new origin of its grid). gtimer's `Reset`.
    pub fn reset(&self) {
        let now = self.inner.core.now();
        self.inner.post(|inner| Cmd::Reset(inner, now));
    }

    /// Runs the job once, now, on the calling thread, outside the schedule (which it does not
    /// change), even if the entry is stopped. Like a scheduled run it counts against `times`,
    /// respects `singleton` and catches a panic. Returns whether the job ran: `false` when the entry is closed, out of
    /// runs, or a singleton whose previous run is still going.
    pub fn run(&self) -> bool {
        let inner = &self.inner;
        if inner.is_closed() || !inner.try_activate() {
            return false;
        }
        if inner.take_time().is_err() {
            inner.active.fetch_sub(1, Ordering::AcqRel);
            self.close();
            return false;
        }
        let now = inner.core.now();
        run_job(self, now, now);
        inner.core.stats.runs.fetch_add(1, Ordering::Relaxed);
        if inner.times_exhausted() && inner.active.load(Ordering::Acquire) == 0 {
            self.close();
        }
        true
    }

    /// Sets how many runs are left (`u64::MAX` is "no limit"). `0` closes the entry at once.
    pub fn set_times(&self, times: u64) {
        if self.inner.is_closed() {
            return;
        }
        self.inner.times.store(times, Ordering::Release);
        if times == 0 {
            self.close();
        } else {
            // A last run may be in flight with nothing scheduled after it.
            self.inner.post(Cmd::Refresh);
        }
    }

    /// Runs left, `None` for no limit.
    pub fn times(&self) -> Option<u64> {
        match self.inner.times.load(Ordering::Acquire) {
            UNLIMITED => None,
            t => Some(t),
        }
    }

    /// Whether a run that would overlap the still running previous one is skipped.
    pub fn is_singleton(&self) -> bool {
        self.inner.is_singleton()
    }

    /// Turns singleton mode on or off.
    pub fn set_singleton(&self, singleton: bool) {
        self.inner.singleton.store(singleton, Ordering::Relaxed);
    }

    /// The interval between runs (at least one tick; the first run of an entry added with a
    /// shorter interval is due after the exact interval).
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// Fixed-rate or fixed-delay.
    pub fn schedule(&self) -> Schedule {
        self.inner.schedule
    }

    /// The instant the next run is due, if one is filed (`None` while stopped, closed, or
    /// while a fixed-delay run is in progress).
    pub fn next_run(&self) -> Option<Instant> {
        if self.inner.is_closed() || self.inner.is_stopped() {
            return None;
        }
        let sched = self.inner.sched.lock();
        sched.key.map(|_| self.inner.core.to_clock(sched.due))
    }

    /// Runs started so far (a panicking run counts).
    pub fn runs(&self) -> u64 {
        self.inner.runs.load(Ordering::Relaxed)
    }

    /// Runs that panicked.
    pub fn panics(&self) -> u64 {
        self.inner.panics.load(Ordering::Relaxed)
    }

    /// Fixed-rate runs skipped because the timer fell a whole interval or more behind.
    pub fn missed(&self) -> u64 {
        self.inner.missed.load(Ordering::Relaxed)
    }

    /// Due runs skipped because the previous run was still going (singleton) or still waiting
    /// for a worker.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }

    /// Runs that started more than one tick after the timer thread let them go, because they
    /// waited for a busy worker (or, inline, for the jobs before them): what a long job on a
    /// small pool does to other entries. See [the module docs](super#a-long-job-on-a-small-pool).
    pub fn delayed(&self) -> u64 {
        self.inner.delayed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_entry_state_stays_small() {
        // What one scheduled job costs besides its closure and its wheel slot; a regression
        // guard for the "memory per entry" figure in the docs.
        let size = std::mem::size_of::<Inner>();
        println!("size_of::<Inner>() = {size}");
        assert!(size <= 160, "Inner grew to {size} bytes");
    }
}
