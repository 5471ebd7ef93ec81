//! [`Timer`]: the gtimer-style task service on top of [`Wheel`](crate::Wheel).
//!
//! Jobs run once ([`Timer::add_once`]), `n` times ([`Timer::add_times`]) or forever
//! ([`Timer::add`]), optionally as singletons ([`Timer::add_singleton`]), delayed
//! ([`Timer::delay_add`] and friends, which return the [`Entry`]), or with every option
//! ([`Timer::add_entry`] with [`EntryOptions`]).
//!
//! ```
//! use std::time::Duration;
//! use wheelbeat_timer::service::Timer;
//!
//! let timer = Timer::new();
//! timer.add_once(Duration::from_millis(10), |_| println!("once"));
//! timer.add_times(Duration::from_millis(10), 3, |ctx| println!("run {}", ctx.entry().runs()));
//! let ping = timer.add(Duration::from_secs(30), |_| println!("ping"));
//! ping.reset(); // a frame arrived: the next ping is 30 s from now
//! ping.stop();
//! ping.start();
//! ping.close();
//! ```
//!
//! # Ground rules
//!
//! - **One timer thread** owns the wheel. Every other thread (including jobs) talks to it over
//!   a `crossbeam-channel` command queue; [`Entry`] methods flip atomics and post a command, so
//!   they are cheap and callable from anywhere, including the entry's own job.
//! - **Time is an input.** The thread reads the [clock](ManualClock) once per wake-up and maps
//!   instants to ticks with [`TickClock`](crate::TickClock): due times round **up**, now rounds
//!   **down**, so a run is **never early**, and at most about one tick (default 1 ms) late plus
//!   scheduling latency. Intervals are exact [`Duration`](std::time::Duration)s, never rounded
//!   to the tick (gtimer's issue #1210: a 1 s job ran every 0.96 s).
//! - **No idle wake-ups.** The thread sleeps until the wheel's next deadline, or without a
//!   deadline when nothing is due (gtimer's 100 ms ticker woke the process forever: #1048).
//!   [`Stats::wakeups`] counts every wake-up.
//! - **A panicking job is contained** (gtimer: #2018 killed the process). It is caught, logged
//!   through [`log`] at `error` level and counted ([`Entry::panics`], [`Stats::panics`]). The
//!   run counts as a run (and against `times`); the entry keeps its schedule; the timer and
//!   all other entries carry on.
//! - **Bounded queues.** An entry has at most one run waiting for a worker; a run due while
//!   another waits (or, for a singleton, still runs) is skipped and counted
//!   ([`Entry::skipped`]), never queued without bound.
//!
//! # Entry states
//!
//! | status    | meaning                                   | leaves by                                   |
//! |-----------|-------------------------------------------|---------------------------------------------|
//! | `Ready`   | filed in the wheel, waiting to be due      | due → `Running`; `stop` → `Stopped`; `close` |
//! | `Running` | a dispatched run has not finished          | finish → `Ready` (or `Closed` if it was the last of `times`); `stop`; `close` |
//! | `Stopped` | not dispatched; keeps its schedule        | `start` → `Ready`; `close` → `Closed`        |
//! | `Closed`  | final: out of the wheel, no run starts    | —                                           |
//!
//! `Running` is derived (a count of dispatched, unfinished runs); `stop` and `close` take effect
//! at once even while a run is going, and that run completes. Closing the [`Timer`] closes every
//! entry. [`EntryOptions::status`] picks the initial status.
//!
//! # Counting `times`
//!
//! As in gtimer, one run is taken off `times` **when the run is dispatched** (handed to a worker
//! or started inline), before the job begins; a run skipped (singleton overlap, missed) does not
//! count; a panicking run does. When the last run is dispatched the entry leaves the wheel, and
//! it is `Closed` as soon as that run finishes. [`Entry::set_times`] changes what is left;
//! `set_times(0)` closes the entry. [`Entry::run`] (a manual run) counts too.
//!
//! # Fixed rate and fixed delay
//!
//! [`Schedule::FixedRate`] (the default): run k is due at `start + k × interval`, whatever the
//! lateness of earlier runs, so there is **no cumulative drift**. If the timer falls behind by
//! a whole interval or more, the runs missed are skipped and counted ([`Entry::missed`]), and
//! the entry stays on its grid. [`Schedule::FixedDelay`]: the next run is due `interval` after
//! the previous one *finished*.
//!
//! # Exact to the tick
//!
//! Let `T(d)` be the tick a due instant `d` rounds up to. A run due at `d` is made at the
//! first wake-up of the timer thread whose tick (now, rounded down) is `T(d)` or later: never
//! early, and at most one tick late plus however late the thread woke. Exactly that is what
//! the property test in `tests/service_exact.rs` checks against a model, over random ticks,
//! intervals below, at and off the tick, and random wake-up times.
//!
//! - **Missed** means a grid point whose *tick* was reached without a run: when a fixed-rate
//!   entry fires, it runs once, for the latest grid point `g` with `T(g)` reached, and counts
//!   the earlier ones. A grid point inside the current tick is not due yet (its tick has not
//!   started), so a thread that wakes just after a tick boundary never takes the run it owes
//!   for a missed one: with an interval equal to the tick, every tick makes a run.
//! - [`JobContext::due`] is the real due instant of the grid point the run is for.
//! - A once-entry (and the last run of a `times` entry) is never coalesced: it runs for its
//!   own due instant and never counts as missed.
//! - The first due instant is `add + delay + interval`, exact even for an interval shorter
//!   than the tick; between runs, such an interval is raised to one tick (one run per tick at
//!   most, as in gtimer). [`Builder::quick`] makes the first run due at once (the next tick).
//!
//! # Pausing the timer
//!
//! [`Timer::stop`] pauses the whole timer as gtimer's `Stop` does: schedules are kept in
//! *timer time* (the clock minus the time spent paused), so every entry resumes on
//! [`Timer::start`] with the time it had left, and [`JobContext::due`] /
//! [`Entry::next_run`] report the clock instants that follows. [`Timer::hold`] stops
//! dispatching while time runs on; on [`Timer::release`] each entry due meanwhile runs once.
//!
//! # Jobs and threads
//!
//! Jobs run on a pool of [`Builder::workers`] threads, or inline on the timer thread when it is
//! `0`. A job gets a [`JobContext`]: its [`Entry`], the instant it was due, and
//! [`JobContext::exit`] to close its own entry (gtimer's `Exit`, without a panic). Jobs are
//! `Fn + Send + Sync` because a non-singleton entry's runs may overlap on different workers.
//!
//! The timer thread hands runs to the pool in batches of up to 16, sent as soon as a batch is
//! full or the pass over the due entries ends, and a worker reports a batch back in one
//! message (listing only the runs whose finish decides something: fixed-delay and last
//! runs). At a million runs a second one message per run cost more than the runs did.
//!
//! ## A long job on a small pool
//!
//! A worker busy with a long job runs nothing else meanwhile, so on a pool of `n` workers,
//! `n` long jobs at once hold up every other entry: its run waits in the queue (with the rest
//! of its batch), and starts late when a worker comes free. Nothing is silent about it:
//!
//! - A run that starts more than one tick after the timer thread let it go is counted as
//!   **delayed** ([`Entry::delayed`], [`Stats::delayed`]), and its
//!   [`JobContext::started`] minus [`JobContext::due`] says by how much. Inline, a run
//!   delayed by the jobs before it in the same pass counts too.
//! - While a run of an entry waits, further due runs of that entry are **skipped** and
//!   counted ([`Entry::skipped`]) rather than queued, so the queue holds at most one run per
//!   entry and a stall does not turn into a burst.
//!
//! `tests/service_workers.rs` (`a_long_job_on_a_one_worker_pool_...`) pins this down: one 2 s
//! job on a 1-worker pool delays one run of a 10 ms entry by 1,990 ms and skips its 199 others.
//! Give long jobs a pool (or a timer) of their own, or hand their work to another thread.
//!
//! # Costs
//!
//! | operation | cost |
//! |---|---|
//! | `add*` | one allocation (the entry, ~150 bytes, plus the boxed job) and one command |
//! | `Entry::{stop, start, close, reset, set_times}` | an atomic or two and one command; O(1) on the timer thread |
//! | `Entry::{status, times, runs, ...}` | atomic loads |
//! | a due run | O(1) in the wheel; with workers, a share of two channel messages (batches of up to 16) |
//! | an idle timer | nothing: no thread wakes up |
//!
//! Memory per pending entry, measured with 1M once-entries on the hierarchical wheel: about
//! 240 bytes all told (the entry, a small job closure, its wheel slot and the caller's
//! `Entry` handle). Timing: see [exact to the tick](#exact-to-the-tick); pick a finer
//! [`Builder::tick`] for tighter timing.
//!
//! # Testing in virtual time
//!
//! Build the timer on a [`ManualClock`], [`advance`](ManualClock::advance) it, then
//! [`Timer::sync`]: when `sync` returns, every run due by the new time has been made and has
//! finished. No sleeping, exact counts and instants.

mod clock;
mod context;
mod entry;
pub mod global;
mod thread;
mod timer;
mod workers;

pub use clock::ManualClock;
pub use context::JobContext;
pub use entry::{Entry, EntryOptions, Schedule, Status};
pub use global::{
    add, add_entry, add_once, add_singleton, add_times, default_timer, delay_add, delay_add_entry,
    delay_add_once, delay_add_singleton, delay_add_times, set_interval, set_timeout,
};
pub use timer::{Builder, Handle, Stats, Timer};
