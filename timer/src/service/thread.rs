//! The timer thread: owns the [`Wheel`], applies commands, dispatches due runs.
//!
//! Ground rules:
//! - This thread is the only one that touches the wheel and the entries' `Sched`. Everyone else
//!   posts a [`Cmd`]; commands are idempotent and re-read the entry's atomics, so their order
//!   across threads does not matter.
//! - It sleeps in `recv_deadline` until the wheel's next deadline, or in `recv` when nothing is
//!   due, the timer is stopped, or the clock is manual (a manual clock wakes it on `advance`).
//!   An idle timer never wakes up (gtimer's ticker did: its issue #1048).
//! - Never early: an entry due at instant `d` is filed at tick `deadline_to_tick(d)` (rounded
//!   up) and the wheel is advanced to `now_to_tick(now)` (rounded down), so it runs at `now >= d`.
//! - Never spins: after a pass over the due entries every filed deadline is after `now`.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::context::run_job;
use super::entry::{Entry, Inner, Sched, Schedule, later};
use super::timer::Core;
use super::workers::Dispatch;
use crate::Wheel;

/// A request to the timer thread.
pub(crate) enum Cmd {
    /// A new entry.
    Insert(Arc<Inner>),
    /// The entry's status or `times` changed: file or unfile it accordingly.
    Refresh(Arc<Inner>),
    /// Restart the entry's interval from the given instant.
    Reset(Arc<Inner>, Instant),
    /// A worker finished a batch of `count` runs; those whose entry waits for the finish to
    /// decide what comes next (fixed-delay, last runs) are listed with the instant their run
    /// finished.
    Finished(Vec<(Arc<Inner>, Instant)>, usize),
    /// The clock moved or the timer was started / stopped: re-check what is due.
    Wake,
    /// Reply once everything due is dispatched and no run is in flight.
    Sync(Sender<()>),
    /// Reply once everything due is dispatched.
    Flush(Sender<()>),
    /// Close the timer.
    Shutdown,
}

/// Entries expired per call into the wheel, so commands are not starved by a huge backlog.
const BATCH: usize = 1024;

/// Runs handed to the pool per message. Each message costs a channel send and a wake-up on
/// both sides, and at a million runs a second one message per run cost more than the runs
/// (issue 13: the default pool fell seconds behind where inline kept up). A batch is small
/// enough that the workers still share a burst (1,000 runs due in one tick make 63
/// messages), and it is sent as soon as it is full or the pass over the due entries ends, so
/// batching adds no latency. The price: a long job holds up the rest of its batch (up to 15
/// runs) even if another worker is idle; they are counted as delayed like any run that
/// waits.
const DISPATCH_BATCH: usize = 16;

pub(crate) struct TimerThread {
    core: Arc<Core>,
    rx: Receiver<Cmd>,
    wheel: Wheel<Arc<Inner>>,
    /// `None`: jobs run inline on this thread.
    pool: Option<Sender<Vec<Dispatch>>>,
    /// Runs waiting to be handed to the pool in one message.
    outbox: Vec<Dispatch>,
    /// Runs dispatched to the pool whose `Finished` has not arrived.
    in_flight: usize,
    syncs: Vec<Sender<()>>,
    flushes: Vec<Sender<()>>,
    due: Vec<Arc<Inner>>,
}

impl TimerThread {
    pub(crate) fn new(
        core: Arc<Core>,
        rx: Receiver<Cmd>,
        pool: Option<Sender<Vec<Dispatch>>>,
    ) -> Self {
        TimerThread {
            core,
            rx,
            wheel: Wheel::new(),
            pool,
            outbox: Vec::with_capacity(DISPATCH_BATCH),
            in_flight: 0,
            syncs: Vec::new(),
            flushes: Vec::new(),
            due: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            if !self.core.is_stopped() && !self.process_due() {
                return;
            }
            self.answer_syncs();

            let first = match self.wait_until() {
                Some(deadline) => match self.rx.recv_deadline(deadline) {
                    Ok(cmd) => Some(cmd),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(cmd) => Some(cmd),
                    Err(_) => return,
                },
            };
            self.core.stats.wakeups.fetch_add(1, Ordering::Relaxed);
            // Apply the whole burst of pending commands for this one wake-up.
            let mut next = first;
            while let Some(cmd) = next {
                if !self.handle(cmd) {
                    return;
                }
                next = self.rx.try_recv().ok();
            }
        }
    }

    /// The instant to sleep until, or `None` to sleep until a command arrives.
    fn wait_until(&self) -> Option<Instant> {
        if self.core.is_stopped() || self.core.clock.is_manual() {
            return None;
        }
        let tick = self.wheel.next_deadline()?;
        // Everything due by `wheel.now()` was just polled out, so the next wake-up is at least
        // one tick ahead; clamping makes a wheel that answered `now` unable to spin us.
        let tick = tick.max(self.wheel.now().saturating_add(1));
        Some(self.core.to_clock(self.core.ticks.tick_to_instant(tick)))
    }

    /// Applies one command; `false` to shut down.
    fn handle(&mut self, cmd: Cmd) -> bool {
        let now = self.core.now();
        match cmd {
            Cmd::Insert(inner) => {
                self.core.stats.entries.fetch_add(1, Ordering::Relaxed);
                let mut sched = inner.sched.lock();
                self.reconcile(&inner, &mut sched, now);
            }
            Cmd::Refresh(inner) => {
                let mut sched = inner.sched.lock();
                self.reconcile(&inner, &mut sched, now);
            }
            Cmd::Reset(inner, at) => {
                let mut sched = inner.sched.lock();
                sched.due = later(at, inner.interval);
                match sched.key {
                    Some(key) => {
                        let tick = self.core.ticks.deadline_to_tick(sched.due);
                        self.wheel.reset(key, tick);
                    }
                    None => self.reconcile(&inner, &mut sched, now),
                }
            }
            Cmd::Finished(runs, count) => {
                self.in_flight -= count;
                for (inner, at) in runs {
                    self.finished(&inner, at, now);
                }
            }
            Cmd::Wake => {}
            Cmd::Sync(reply) => self.syncs.push(reply),
            Cmd::Flush(reply) => self.flushes.push(reply),
            Cmd::Shutdown => return false,
        }
        true
    }

    /// Brings the wheel in line with the entry's status: files a ready entry that should be
    /// filed, unfiles a stopped or closed one.
    fn reconcile(&mut self, inner: &Arc<Inner>, sched: &mut Sched, now: Instant) {
        if inner.is_closed() {
            if let Some(key) = sched.key.take() {
                self.wheel.discard(key);
            }
            self.retire(inner, sched);
        } else if inner.is_stopped() {
            if let Some(key) = sched.key.take() {
                self.wheel.discard(key);
            }
            sched.paused = true;
        } else if sched.key.is_none() && !sched.awaiting {
            if inner.times_exhausted() {
                // Out of runs with none left in flight: the entry is done.
                if inner.active.load(Ordering::Acquire) == 0 {
                    inner.mark_closed();
                    self.retire(inner, sched);
                }
                return;
            }
            // Due times passed while stopped are not made up for (nor counted as missed):
            // move to the first due time not yet passed (now counts), on the entry's grid.
            if mem::take(&mut sched.paused) && sched.due < now {
                let (last, _) = grid_point(sched.due, inner.interval, now);
                sched.due = if last == now {
                    last
                } else {
                    later(last, inner.interval)
                };
            }
            self.file(inner, sched);
        }
    }

    fn file(&mut self, inner: &Arc<Inner>, sched: &mut Sched) {
        let tick = self.core.ticks.deadline_to_tick(sched.due);
        sched.key = Some(self.wheel.insert(tick, inner.clone()));
    }

    fn retire(&mut self, inner: &Inner, sched: &mut Sched) {
        inner.mark_closed();
        if !sched.retired {
            sched.retired = true;
            self.core.stats.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Dispatches every entry due by now; `false` if a shutdown arrived meanwhile.
    fn process_due(&mut self) -> bool {
        let now = self.core.now();
        let tick = self.core.ticks.now_to_tick(now);
        loop {
            // `poll` returns `None` only once nothing due by `tick` is left, so a short batch
            // means the pass is complete.
            let mut due = mem::take(&mut self.due);
            while due.len() < BATCH {
                match self.wheel.poll(tick) {
                    Some(expired) => due.push(expired.value),
                    None => break,
                }
            }
            let complete = due.len() < BATCH;
            // The start of the tick reached: what the wheel can tell apart from `now`.
            let reached = self.core.ticks.tick_to_instant(tick);
            // Touch every entry of the batch first, in a loop of independent loads, so the
            // cache misses overlap: with a million entries each run's first touch of its
            // entry was a miss to memory, and firing them one by one waited for each in turn
            // (8 in 10 of the timer thread's samples were that one load, by `perf`).
            let warm = due.iter().fold(0u64, |acc, inner| acc ^ inner.warm());
            std::hint::black_box(warm);
            for inner in due.drain(..) {
                self.fire(inner, now, reached);
            }
            self.send_outbox();
            self.due = due;
            if complete {
                return true;
            }
            // Commands that arrived meanwhile (a close, say) apply before the next batch.
            while let Ok(cmd) = self.rx.try_recv() {
                if !self.handle(cmd) {
                    return false;
                }
            }
        }
    }

    /// An entry's filed deadline has come: the wheel reached tick `reached`, at `now`.
    fn fire(&mut self, inner: Arc<Inner>, now: Instant, reached: Instant) {
        let mut sched = inner.sched.lock();
        sched.key = None;
        if inner.is_closed() || inner.is_stopped() {
            return self.reconcile(&inner, &mut sched, now);
        }
        if sched.due > now {
            // Unreachable while the wheel keeps its promise (a deadline rounds up, now rounds
            // down); checked so that a run can never be early.
            return self.file(&inner, &mut sched);
        }
        // Fixed-rate coalesces: if the ticks of several grid points have been reached, it
        // runs once, for the latest, and counts the others as missed. Only *ticks reached*
        // count: a grid point inside the current tick is not due yet for the wheel (its tick
        // starts later), so a thread waking just after a tick boundary never mistakes the run
        // it owes for a missed one (issue 13: a 1-tick interval ran at half rate). The last
        // run of a limited entry (a once-entry) is for its own due instant, never coalesced:
        // skipping grid points saves nothing when one run is left. A fixed-delay entry has a
        // single due time.
        let coalesce =
            inner.schedule == Schedule::FixedRate && inner.times.load(Ordering::Acquire) != 1;
        let (run_due, missed) = if coalesce {
            grid_point(sched.due, inner.interval, reached)
        } else {
            (sched.due, 0)
        };
        if missed > 0 {
            inner.missed.fetch_add(missed, Ordering::Relaxed);
            self.core.stats.missed.fetch_add(missed, Ordering::Relaxed);
        }
        let next = match inner.schedule {
            Schedule::FixedRate => later(run_due, inner.interval),
            Schedule::FixedDelay => later(now, inner.interval),
        };

        // A run still going (singleton) or still queued for a worker: skip this one.
        let queued = inner.queued.load(Ordering::Acquire);
        if queued || !inner.try_activate() {
            inner.skipped.fetch_add(1, Ordering::Relaxed);
            self.core.stats.skipped.fetch_add(1, Ordering::Relaxed);
            sched.due = next;
            return self.file(&inner, &mut sched);
        }
        let last = match inner.take_time() {
            Ok(last) => last,
            Err(()) => {
                inner.active.fetch_sub(1, Ordering::AcqRel);
                inner.mark_closed();
                return self.retire(&inner, &mut sched);
            }
        };
        sched.due = next;
        let awaiting = last || inner.schedule == Schedule::FixedDelay;
        if awaiting {
            // What comes next is decided when this run finishes.
            sched.awaiting = true;
        } else {
            self.file(&inner, &mut sched);
        }
        drop(sched);

        // The wheel's copy of the `Arc` moves on to the run: at a million runs a second,
        // every count update on the entry is a cache line bounced between cores.
        let entry = Entry { inner };
        if self.pool.is_none() {
            // Inline: the pass started at `now`, so the time since is what this run waited
            // for the jobs before it.
            let finished = run_job(&entry, run_due, now);
            self.core.stats.runs.fetch_add(1, Ordering::Relaxed);
            self.finished(&entry.inner, finished, finished.max(now));
            return;
        }
        entry.inner.queued.store(true, Ordering::Release);
        self.in_flight += 1;
        self.outbox.push(Dispatch {
            entry,
            due: run_due,
            dispatched: now,
            report: awaiting,
        });
        if self.outbox.len() >= DISPATCH_BATCH {
            self.send_outbox();
        }
    }

    /// Hands the runs collected in the outbox to the pool, in one message.
    fn send_outbox(&mut self) {
        let Some(pool) = &self.pool else { return };
        if self.outbox.is_empty() {
            return;
        }
        let batch = mem::replace(&mut self.outbox, Vec::with_capacity(DISPATCH_BATCH));
        if let Err(unsent) = pool.send(batch) {
            // Unreachable while this thread lives (it holds the workers' receiver alive
            // through `pool`); undo the bookkeeping rather than hang a sync.
            for dispatch in unsent.0 {
                self.in_flight -= 1;
                dispatch.entry.inner.queued.store(false, Ordering::Release);
                dispatch.entry.inner.active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// A run of `inner` finished at `at`.
    fn finished(&mut self, inner: &Arc<Inner>, at: Instant, now: Instant) {
        let mut sched = inner.sched.lock();
        if sched.awaiting {
            sched.awaiting = false;
            if inner.schedule == Schedule::FixedDelay {
                sched.due = later(at, inner.interval);
            }
        }
        self.reconcile(inner, &mut sched, now);
    }

    fn answer_syncs(&mut self) {
        for reply in self.flushes.drain(..) {
            let _ = reply.send(());
        }
        if self.in_flight == 0 {
            for reply in self.syncs.drain(..) {
                let _ = reply.send(());
            }
        }
    }
}

/// The latest point of the grid `due + k × interval` (k ≥ 0) that is not after `now`, and how
/// many grid points it skipped (k). `due` itself when `now < due`.
fn grid_point(due: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    let Some(late) = now.checked_duration_since(due) else {
        return (due, 0);
    };
    // u64 arithmetic when it fits (lateness and interval under 584 years): every fixed-rate
    // run computes this, and a u128 division costs several times more.
    if let (Ok(late), Ok(step)) = (
        u64::try_from(late.as_nanos()),
        u64::try_from(interval.as_nanos()),
    ) {
        let step = step.max(1);
        let k = late / step;
        return (due + Duration::from_nanos(k * step), k);
    }
    let step = interval.as_nanos().max(1);
    let k = late.as_nanos() / step;
    // k × step ≤ late, which is a Duration, so both conversions below are lossless.
    let k64 = u64::try_from(k).unwrap_or(u64::MAX);
    let offset = u64::try_from(k * step).unwrap_or(u64::MAX);
    (due + Duration::from_nanos(offset), k64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_point_before_due_is_due_itself() {
        let t0 = Instant::now();
        let due = t0 + Duration::from_millis(10);
        assert_eq!(grid_point(due, Duration::from_millis(10), t0), (due, 0));
    }

    #[test]
    fn grid_point_skips_whole_intervals_only() {
        let due = Instant::now();
        let i = Duration::from_millis(10);
        assert_eq!(grid_point(due, i, due + Duration::from_millis(9)), (due, 0));
        assert_eq!(
            grid_point(due, i, due + Duration::from_millis(10)),
            (due + i, 1)
        );
        assert_eq!(
            grid_point(due, i, due + Duration::from_millis(35)),
            (due + 3 * i, 3)
        );
    }
}
