//! [`Timer`], its [`Builder`], the cloneable [`Handle`] and [`Stats`].
//!
//! Ground rules:
//! - The `Timer` owns the threads: `close` (or drop) stops the timer thread and joins it and the
//!   workers. A [`Handle`] only adds entries and never keeps the threads alive.
//! - The start of a schedule is stamped on the calling thread (`add*` read the clock), not
//!   when the timer thread gets round to the command.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded, unbounded};
use parking_lot::Mutex;

use super::clock::{Clock, ManualClock};
use super::context::{JobContext, in_job};
use super::entry::{Entry, EntryOptions, Inner, Status};
use super::thread::{Cmd, TimerThread};
use super::workers;
use crate::TickClock;

/// Counters shared by the timer thread, the workers and [`Timer::stats`].
///
/// Aligned to two cache lines so that the counters the workers write never share a line with
/// the fields every run reads (`closed`, the clock, the pause state): that false sharing was
/// a fifth of the timer thread's samples at a million runs a second.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    pub(crate) entries: AtomicUsize,
    pub(crate) runs: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) missed: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) delayed: AtomicU64,
    pub(crate) wakeups: AtomicU64,
}

/// `Paused::since` while the timer runs.
const RUNNING: u64 = u64::MAX;

/// The time the timer has spent paused by [`Timer::stop`], in nanoseconds: timer time is
/// clock time minus `total`, and stands still from `since` (nanoseconds after the tick
/// origin) until [`Timer::start`]. Atomics, because every run reads the time; `lock` only
/// orders concurrent `stop` / `start` calls.
#[derive(Debug)]
struct Paused {
    total: AtomicU64,
    since: AtomicU64,
    lock: Mutex<()>,
}

/// What every entry, handle and worker of one timer shares.
///
/// Every schedule (entries' due instants, the wheel's ticks) is kept in *timer time*: the
/// clock's time minus the time spent paused, so pausing the timer freezes every entry with
/// the time it had left without touching one of them (gtimer's pause freezes its tick
/// counter the same way). [`Core::to_clock`] turns a timer-time instant back into the clock
/// instant it stands for, for what jobs and callers see.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) cmd: Sender<Cmd>,
    pub(crate) clock: Clock,
    pub(crate) ticks: TickClock,
    pub(crate) stats: Counters,
    pub(crate) next_id: AtomicU64,
    /// [`Builder::quick`]: first runs are due at once (at the next tick).
    pub(crate) quick: bool,
    paused: Paused,
    /// Paused ([`Timer::stop`]): time stands still and nothing is dispatched.
    stopped: AtomicBool,
    /// Held ([`Timer::hold`]): nothing is dispatched, but time runs on.
    held: AtomicBool,
    closed: AtomicBool,
}

impl Core {
    /// Nothing may be dispatched: the timer is paused or held.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire) || self.held.load(Ordering::Acquire)
    }

    /// The current timer time (see the type's docs).
    pub(crate) fn now(&self) -> Instant {
        // `start` stores `total` before it clears `since` (both Release): whoever sees the
        // timer running again also sees the pause it just ended counted.
        let since = self.paused.since.load(Ordering::Acquire);
        let total = Duration::from_nanos(self.paused.total.load(Ordering::Acquire));
        let clock = if since == RUNNING {
            self.clock.now()
        } else {
            self.ticks.origin() + Duration::from_nanos(since)
        };
        // The time spent paused is part of the time since the timer was built, so the
        // subtraction stays after the origin; the fallback only satisfies the type.
        clock.checked_sub(total).unwrap_or(clock)
    }

    /// The clock instant at which timer-time instant `at` comes, as things stand (a later
    /// pause moves it further).
    pub(crate) fn to_clock(&self, at: Instant) -> Instant {
        let total = Duration::from_nanos(self.paused.total.load(Ordering::Acquire));
        super::entry::later(at, total)
    }

    /// Nanoseconds from the tick origin to `at`, saturating.
    fn nanos_since_origin(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.ticks.origin()).as_nanos();
        u64::try_from(since).unwrap_or(RUNNING - 1)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A snapshot of a timer's counters, from [`Timer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Entries added and not closed yet (ready, running or stopped).
    pub entries: usize,
    /// Runs started (a panicking run counts).
    pub runs: u64,
    /// Runs that panicked and were caught.
    pub panics: u64,
    /// Fixed-rate runs skipped because the timer fell an interval or more behind.
    pub missed: u64,
    /// Due runs skipped because the previous run was still going or still queued.
    pub skipped: u64,
    /// Runs that started more than a tick after they were let go, because they waited for a
    /// worker busy with other jobs (or, inline, for the jobs before them): see
    /// [`Entry::delayed`].
    pub delayed: u64,
    /// Times the timer thread woke up (a deadline came or commands arrived). An idle timer
    /// does not wake up at all.
    pub wakeups: u64,
}

/// Configures and starts a [`Timer`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use wheelbeat_timer::service::Timer;
///
/// let timer = Timer::builder()
///     .tick(Duration::from_millis(10))
///     .workers(2)
///     .thread_name("jobs")
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    tick: Duration,
    workers: usize,
    clock: Clock,
    name: String,
    quick: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            tick: Duration::from_millis(1),
            workers: thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            clock: Clock::System,
            name: "wheelbeat-timer".to_owned(),
            quick: false,
        }
    }
}

impl Builder {
    /// The wheel's tick (default 1 ms): runs are never early and at most about one tick late
    /// (plus scheduling latency). A zero tick is taken as 1 ns.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_nanos(1));
        self
    }

    /// The number of worker threads running jobs (default: the available parallelism, at most
    /// 8). `0` runs every job inline on the timer thread: cheapest, deterministic, but a slow
    /// job then delays every other entry.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Runs the timer on a [`ManualClock`] instead of the system clock, for tests and
    /// simulations in virtual time.
    pub fn manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// gtimer's `TimerOptions.Quick`: every entry added to this timer makes its first run at
    /// the next tick (after its delay, if any) instead of one interval from now; the runs
    /// after it follow the interval as usual. Default `false`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wheelbeat_timer::service::{ManualClock, Timer};
    ///
    /// let clock = ManualClock::new();
    /// let timer = Timer::builder().manual_clock(clock.clone()).quick(true).build()?;
    /// let entry = timer.add(Duration::from_secs(60), |_| {});
    /// clock.advance(Duration::from_millis(1));
    /// timer.sync();
    /// assert_eq!(entry.runs(), 1); // did not wait a minute
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn quick(mut self, quick: bool) -> Self {
        self.quick = quick;
        self
    }

    /// The name of the timer thread; workers are named `{name}-worker-{i}`.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the timer thread and the workers.
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn build(self) -> io::Result<Timer> {
        let (cmd, rx) = unbounded();
        let ticks = TickClock::new(self.clock.now(), self.tick);
        if let Clock::Manual(manual) = &self.clock {
            manual.subscribe(cmd.clone());
        }
        let core = Arc::new(Core {
            cmd,
            clock: self.clock,
            ticks,
            stats: Counters::default(),
            next_id: AtomicU64::new(1),
            quick: self.quick,
            paused: Paused {
                total: AtomicU64::new(0),
                since: AtomicU64::new(RUNNING),
                lock: Mutex::new(()),
            },
            stopped: AtomicBool::new(false),
            held: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let (pool, mut threads) = if self.workers == 0 {
            (None, Vec::new())
        } else {
            let (tx, rx) = unbounded();
            (Some(tx), workers::spawn(self.workers, &self.name, &rx)?)
        };
        let timer_thread = TimerThread::new(core.clone(), rx, pool);
        threads.insert(
            0,
            thread::Builder::new()
                .name(self.name)
                .spawn(move || timer_thread.run())?,
        );
        Ok(Timer {
            handle: Handle { core },
            threads: Mutex::new(threads),
        })
    }
}

/// A cloneable handle that adds entries to a [`Timer`] from anywhere, including from inside a
/// job ([`JobContext::timer`]). It does not own the timer's threads: once the `Timer` is
/// closed, entries added through a handle are born closed.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(crate) core: Arc<Core>,
}

/// Defines the `add*` family once, for both [`Timer`] and [`Handle`].
macro_rules! add_methods {
    ($($via:tt)*) => {
        /// Adds a job that runs every `interval`, forever (gtimer's `Add`).
        pub fn add<F>(&self, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            self $($via)* .add_entry(EntryOptions::new(interval), job)
        }

        /// Adds a job that runs once, `interval` from now, and then closes (gtimer's `AddOnce`;
        /// a singleton, as there).
        pub fn add_once<F>(&self, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            self $($via)* .add_entry(EntryOptions::new(interval).times(1).singleton(true), job)
        }

        /// Adds a job that runs `times` times, every `interval`, then closes (gtimer's
        /// `AddTimes`; a singleton, as there). `times == 0` gives an entry closed at once.
        pub fn add_times<F>(&self, interval: Duration, times: u64, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            self $($via)* .add_entry(EntryOptions::new(interval).times(times).singleton(true), job)
        }

        /// Adds a forever job whose runs never overlap: a run due while the previous one is
        /// still going is skipped (gtimer's `AddSingleton`).
        pub fn add_singleton<F>(&self, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            self $($via)* .add_entry(EntryOptions::new(interval).singleton(true), job)
        }

        /// [`add`](Self::add), with the first run `delay + interval` from now. Unlike gtimer's
        /// `DelayAdd`, returns the entry at once, so it can be stopped or closed during the
        /// delay.
        pub fn delay_add<F>(&self, delay: Duration, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            self $($via)* .add_entry(EntryOptions::new(interval).delay(delay), job)
        }

        /// [`add_once`](Self::add_once), delayed by `delay`; returns the entry.
        pub fn delay_add_once<F>(&self, delay: Duration, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            let options = EntryOptions::new(interval).times(1).singleton(true).delay(delay);
            self $($via)* .add_entry(options, job)
        }

        /// [`add_times`](Self::add_times), delayed by `delay`; returns the entry.
        pub fn delay_add_times<F>(
            &self,
            delay: Duration,
            interval: Duration,
            times: u64,
            job: F,
        ) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            let options = EntryOptions::new(interval).times(times).singleton(true).delay(delay);
            self $($via)* .add_entry(options, job)
        }

        /// [`add_singleton`](Self::add_singleton), delayed by `delay`; returns the entry.
        pub fn delay_add_singleton<F>(&self, delay: Duration, interval: Duration, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            let options = EntryOptions::new(interval).singleton(true).delay(delay);
            self $($via)* .add_entry(options, job)
        }

        /// [`add_entry`](Self::add_entry), delayed by `delay` (added to `options`' own
        /// delay); returns the entry.
        pub fn delay_add_entry<F>(&self, delay: Duration, options: EntryOptions, job: F) -> Entry
        where
            F: Fn(&JobContext<'_>) + Send + Sync + 'static,
        {
            let options = options.delay(options.delay + delay);
            self $($via)* .add_entry(options, job)
        }
    };
}

impl Handle {
    /// Adds a job with every option spelled out (gtimer's `AddEntry`).
    pub fn add_entry<F>(&self, options: EntryOptions, job: F) -> Entry
    where
        F: Fn(&JobContext<'_>) + Send + Sync + 'static,
    {
        let now = self.core.now();
        let inner = Arc::new(Inner::new(self.core.clone(), &options, Box::new(job), now));
        // If the timer thread is gone the entry already reads as Closed.
        let _ = self.core.cmd.send(Cmd::Insert(inner.clone()));
        Entry { inner }
    }

    add_methods!();
}

/// The gtimer-style task service: jobs that run once, `n` times or forever on a timer wheel
/// driven by one thread. See the [module docs](super).
///
/// ```
/// use std::time::{Duration, Instant};
/// use wheelbeat_timer::service::Timer;
///
/// let timer = Timer::new();
/// let entry = timer.add_times(Duration::from_millis(5), 2, |ctx| {
///     println!("run {} was due at {:?}", ctx.entry().runs(), ctx.due());
/// });
/// entry.stop();
/// entry.start();
/// timer.close(); // joins the timer thread and the workers
/// ```
#[derive(Debug)]
pub struct Timer {
    handle: Handle,
    /// The timer thread first, then the workers; taken by `close`.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    /// A timer with the default [`Builder`] settings: system clock, 1 ms tick, a worker pool.
    ///
    /// # Panics
    /// If the threads cannot be spawned (as `std::thread::spawn` does); use
    /// [`Builder::build`] to get the error instead.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("failed to spawn the wheelbeat timer threads")
    }

    /// A builder to configure the tick, the worker pool, the clock and the thread names.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A cloneable handle for adding entries from elsewhere.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Adds a job with every option spelled out (gtimer's `AddEntry`).
    pub fn add_entry<F>(&self, options: EntryOptions, job: F) -> Entry
    where
        F: Fn(&JobContext<'_>) + Send + Sync + 'static,
    {
        self.handle.add_entry(options, job)
    }

    add_methods!(.handle);

    /// The timer's own status: `Running` (dispatching), `Stopped` or `Closed`; never `Ready`.
    pub fn status(&self) -> Status {
        let core = &self.handle.core;
        if core.is_closed() {
            Status::Closed
        } else if core.is_stopped() {
            Status::Stopped
        } else {
            Status::Running
        }
    }

    /// Resumes a timer paused by [`stop`](Self::stop): every entry carries on with the time
    /// it had left when the timer was paused, as in gtimer. Nothing came due meanwhile, so
    /// nothing runs in a burst and nothing counts as missed.
    pub fn start(&self) {
        let core = &self.handle.core;
        let guard = core.paused.lock.lock();
        if core.is_closed() {
            return;
        }
        let since = core.paused.since.load(Ordering::Acquire);
        if since != RUNNING {
            let now = core.nanos_since_origin(core.clock.now());
            let total = core.paused.total.load(Ordering::Acquire);
            let total = total.saturating_add(now.saturating_sub(since));
            core.paused.total.store(total, Ordering::Release);
            core.paused.since.store(RUNNING, Ordering::Release);
            core.stopped.store(false, Ordering::Release);
            drop(guard);
            let _ = core.cmd.send(Cmd::Wake);
        }
    }

    /// Pauses the timer, gtimer's `Stop`: time stands still for every entry until
    /// [`start`](Self::start), so an entry due 3 s from now when the timer is stopped is due
    /// 3 s after it is started. Nothing is dispatched meanwhile; runs already dispatched
    /// complete. Entries can still be added (their intervals count from the start), stopped,
    /// closed. The timer thread sleeps without a deadline meanwhile. [`hold`](Self::hold)
    /// stops dispatching without stopping time.
    pub fn stop(&self) {
        let core = &self.handle.core;
        let guard = core.paused.lock.lock();
        if core.paused.since.load(Ordering::Acquire) == RUNNING {
            let now = core.nanos_since_origin(core.clock.now());
            core.paused.since.store(now, Ordering::Release);
            core.stopped.store(true, Ordering::Release);
            drop(guard);
            let _ = core.cmd.send(Cmd::Wake);
        }
    }

    /// Stops dispatching while time runs on (what [`stop`](Self::stop) did before it became
    /// gtimer's pause): entries that come due meanwhile run once each on
    /// [`release`](Self::release), fixed-rate ones for the latest grid point passed, with the
    /// earlier ones counted as missed. Useful to shed the work of a stall rather than
    /// postpone it.
    pub fn hold(&self) {
        let core = &self.handle.core;
        if !core.held.swap(true, Ordering::AcqRel) {
            let _ = core.cmd.send(Cmd::Wake);
        }
    }

    /// Ends a [`hold`](Self::hold): what came due meanwhile is dispatched at once.
    pub fn release(&self) {
        let core = &self.handle.core;
        if !core.is_closed() && core.held.swap(false, Ordering::AcqRel) {
            let _ = core.cmd.send(Cmd::Wake);
        }
    }

    /// Closes the timer: every entry reads `Closed`, no new run starts, runs executing
    /// complete, and the timer thread and the workers are joined. Idempotent.
    ///
    /// Called on one of the timer's own threads (from inside a job, or by dropping the last
    /// `Timer` there) it joins nothing, since those threads may be waiting on the caller; they
    /// exit by themselves once the current job returns.
    pub fn close(&self) {
        let core = &self.handle.core;
        core.closed.store(true, Ordering::Release);
        let _ = core.cmd.send(Cmd::Shutdown);
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = thread::current().id();
        if threads.iter().any(|t| t.thread().id() == me) {
            return; // dropping the handles detaches the threads
        }
        for thread in threads {
            // A job's panic never reaches here (it is caught), so neither can a join error.
            let _ = thread.join();
        }
    }

    /// Waits until the timer thread has dispatched every run due by the clock's current time
    /// and no dispatched run is still executing. With a [`ManualClock`], `advance` then `sync`
    /// makes a test fully deterministic. Returns at once when called from inside a job (it
    /// would wait for itself), on a closed timer, or once the timer closes. With the system
    /// clock and jobs that keep running, it may wait for a moment when none is.
    pub fn sync(&self) {
        let core = &self.handle.core;
        if in_job() || core.is_closed() {
            return;
        }
        let (tx, rx) = bounded(1);
        if core.cmd.send(Cmd::Sync(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Waits until the timer thread has dispatched every run due by the clock's current time,
    /// without waiting for those runs to finish (unlike [`sync`](Self::sync)): with workers,
    /// the runs may still be queued or executing when it returns. Returns at once on a closed
    /// timer or inside a job (an inline job runs on the timer thread and would wait for itself).
    pub fn flush(&self) {
        let core = &self.handle.core;
        if in_job() || core.is_closed() {
            return;
        }
        let (tx, rx) = bounded(1);
        if core.cmd.send(Cmd::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// A snapshot of the timer's counters.
    pub fn stats(&self) -> Stats {
        let c = &self.handle.core.stats;
        Stats {
            entries: c.entries.load(Ordering::Relaxed),
            runs: c.runs.load(Ordering::Relaxed),
            panics: c.panics.load(Ordering::Relaxed),
            missed: c.missed.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            delayed: c.delayed.load(Ordering::Relaxed),
            wakeups: c.wakeups.load(Ordering::Relaxed),
        }
    }

    /// The wheel's tick.
    pub fn tick(&self) -> Duration {
        self.handle.core.ticks.tick()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.close();
    }
}
