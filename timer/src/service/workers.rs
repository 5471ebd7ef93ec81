//! The worker pool that runs jobs off the timer thread.
//!
//! Ground rules:
//! - The timer thread hands a run over a channel and never waits for it; each worker reports
//!   back with `Cmd::Finished` so fixed-delay entries, last runs and `Timer::sync` can proceed.
//! - A run that was queued when its entry (or the timer) closed is dropped unstarted: after
//!   `close` returns, no new run starts.
//! - The pool ends when the timer thread drops the sending side; `Timer::close` joins it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::context::run_job;
use super::entry::Inner;
use super::thread::Cmd;

/// One run handed to the pool.
pub(crate) struct Dispatch {
    pub(crate) inner: Arc<Inner>,
    pub(crate) due: Instant,
}

/// Spawns `count` workers named `{name}-worker-{i}` reading from `rx`.
pub(crate) fn spawn(
    count: usize,
    name: &str,
    rx: &Receiver<Dispatch>,
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

fn work(rx: &Receiver<Dispatch>) {
    for Dispatch { inner, due } in rx.iter() {
        inner.queued.store(false, Ordering::Release);
        let finished = if inner.is_closed() {
            inner.active.fetch_sub(1, Ordering::AcqRel);
            inner.core.now()
        } else {
            run_job(&inner, due)
        };
        // The timer thread may be gone already (closing); nothing is left to report to then.
        let _ = inner.core.cmd.send(Cmd::Finished(inner.clone(), finished));
    }
}
