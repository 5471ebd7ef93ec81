//! Running one job: the [`JobContext`] it receives, and the panic barrier around it.
//!
//! Ground rules:
//! - A panicking job is caught here (`catch_unwind`), logged through `log` at `error` level and
//!   counted on the entry and the timer. The run still counts as a run (and against `times`);
//!   the entry keeps its schedule; the timer thread, the worker and every other entry carry on.
//!   (The process's panic hook still runs first, so the default hook prints the panic too.)
//! - Whatever happens, the entry's active-run count is decremented exactly once per dispatch.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::entry::{Entry, Schedule};
use super::timer::Handle;

thread_local! {
    /// Set while this thread executes a job, so that [`Timer::sync`](super::Timer::sync) can
    /// refuse to wait for the very run it is called from.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn in_job() -> bool {
    IN_JOB.with(Cell::get)
}

/// What a job receives when it runs: its entry, and when the run was due.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_timer::service::Timer;
///
/// let timer = Timer::new();
/// // Runs every 10 ms until the job decides it is done: gtimer's `Exit()`, without a panic.
/// timer.add(Duration::from_millis(10), |ctx| {
///     if ctx.entry().runs() == 3 {
///         ctx.exit();
///     }
/// });
/// ```
#[derive(Debug)]
pub struct JobContext<'a> {
    entry: &'a Entry,
    due: Instant,
    started: Instant,
}

impl JobContext<'_> {
    /// The entry this run belongs to.
    pub fn entry(&self) -> &Entry {
        self.entry
    }

    /// Closes this run's entry: no further run starts (gtimer's `Exit`, as a plain call).
    pub fn exit(&self) {
        self.entry.close();
    }

    /// The instant this run was due: the real due instant of the grid point it runs for (a
    /// fixed-rate entry that fell whole intervals behind runs once, for the latest one
    /// passed). It is never later than [`started`](Self::started): runs are never early.
    /// Time the [`Timer`](super::Timer) spent paused is added, so it is the clock instant the
    /// run came due at.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// The instant this run started, as read from the timer's clock.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// A handle to the timer, to add entries from inside a job.
    pub fn timer(&self) -> Handle {
        Handle {
            core: self.entry.inner.core.clone(),
        }
    }
}

/// Runs `entry`'s job once on this thread. The caller has already claimed the run
/// (`try_activate`) and counted it against `times`. `due` and the instant returned (when the
/// run finished) are in timer time; the job sees clock instants.
///
/// The instant returned is when the run finished for a fixed-delay entry, and when it started
/// otherwise (nothing else needs the finish). `dispatched` is when the timer thread let the
/// run go: a run that starts more than one tick
/// later waited (for a worker, or inline for the jobs before it) and is counted as delayed.
pub(crate) fn run_job(entry: &Entry, due: Instant, dispatched: Instant) -> Instant {
    let inner = &entry.inner;
    let core = &inner.core;
    // One clock read per run (reading the time was a tenth of the timer thread's work at a
    // million runs a second): the start in timer time serves the delay count, and is the
    // finish instant too unless the entry is fixed-delay, the one schedule that needs it.
    let started_at = core.now();
    if started_at.saturating_duration_since(dispatched) > core.ticks.tick() {
        inner.delayed.fetch_add(1, Ordering::Relaxed);
        core.stats.delayed.fetch_add(1, Ordering::Relaxed);
    }
    let started = core.to_clock(started_at);
    let ctx = JobContext {
        entry,
        due: core.to_clock(due),
        started,
    };
    // The timer-wide run count is the caller's: a worker adds a batch's runs at once, since
    // one shared counter written by every worker on every run was a cache line bounced
    // between cores a million times a second.
    inner.runs.fetch_add(1, Ordering::Relaxed);

    let outer = IN_JOB.with(|f| f.replace(true));
    let result = catch_unwind(AssertUnwindSafe(|| (inner.job)(&ctx)));
    IN_JOB.with(|f| f.set(outer));

    if let Err(payload) = result {
        inner.panics.fetch_add(1, Ordering::Relaxed);
        core.stats.panics.fetch_add(1, Ordering::Relaxed);
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(non-string panic payload)");
        log::error!(
            "job of entry {} panicked (caught; the entry keeps its schedule): {message}",
            inner.id
        );
    }
    let finished = if inner.schedule == Schedule::FixedDelay {
        core.now()
    } else {
        started_at
    };
    inner.active.fetch_sub(1, Ordering::AcqRel);
    finished
}
