//! The worker pool that runs jobs off the timer thread.
//!
//! Ground rules:
//! - The timer thread hands runs over a channel, in small batches, and never waits for them;
//!   each worker reports a batch back with one `Cmd::Finished` so fixed-delay entries, last
//!   runs and `Timer::sync` can proceed.
//! - A run that was queued when its entry (or the timer) closed is dropped unstarted: after
//!   `close` returns, no new run starts.
//! - The pool ends when the timer thread drops the sending side; `Timer::close` joins it.

use std::io;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::context::run_job;
use super::entry::Entry;
use super::thread::Cmd;

/// One run handed to the pool (in batches: see `thread.rs`).
pub(crate) struct Dispatch {
    pub(crate) entry: Entry,
    /// When the run was due, in timer time.
    pub(crate) due: Instant,
    /// When the timer thread handed it over, in timer time: a run that starts more than a
    /// tick later waited for a worker and counts as delayed.
    pub(crate) dispatched: Instant,
    /// The timer thread waits for this run's finish to decide what comes next (fixed-delay,
    /// a last run). Other runs are only counted back: a forever entry's next run is already
    /// filed, and touching its entry again on the timer thread was a cache miss per run.
    pub(crate) report: bool,
}

/// Spawns `count` workers named `{name}-worker-{i}` reading from `rx`.
pub(crate) fn spawn(
    count: usize,
    name: &str,
    rx: &Receiver<Vec<Dispatch>>,
) -> io::Result<Vec<JoinHandle<()>>> {
    (0..count)
        .map(|i| {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("{name}-worker-{i}"))
                .spawn(move || work(&rx))
        })
        .collect()
}

fn work(rx: &Receiver<Vec<Dispatch>>) {
    for batch in rx.iter() {
        let Some(core) = batch.first().map(|d| d.entry.inner.core.clone()) else {
            continue;
        };
        // Bring the batch's entries into the cache together (see `process_due`).
        let warm = batch.iter().fold(0u64, |acc, d| acc ^ d.entry.inner.warm());
        std::hint::black_box(warm);
        let count = batch.len();
        let mut ran = 0;
        let mut done = Vec::new();
        for Dispatch {
            entry,
            due,
            dispatched,
            report,
        } in batch
        {
            let inner = &entry.inner;
            inner.queued.store(false, Ordering::Release);
            let finished = if inner.is_closed() {
                inner.active.fetch_sub(1, Ordering::AcqRel);
                inner.core.now()
            } else {
                ran += 1;
                run_job(&entry, due, dispatched)
            };
            if report {
                done.push((entry.inner, finished));
            }
        }
        core.stats.runs.fetch_add(ran, Ordering::Relaxed);
        // The timer thread may be gone already (closing); nothing is left to report to then.
        let _ = core.cmd.send(Cmd::Finished(done, count));
    }
}
