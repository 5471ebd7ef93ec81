//! Shared helpers for the `service_*` tests: a timer on a manual clock, driven in virtual time,
//! and a log of the runs it makes.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wheelbeat_timer::service::{JobContext, ManualClock, Timer};

/// A timer on a manual clock. `t0` is virtual time zero.
pub struct Virtual {
    pub clock: ManualClock,
    pub timer: Timer,
    pub t0: Instant,
}

impl Virtual {
    /// A virtual-time timer with a 1 ms tick and `workers` workers (0 = inline).
    pub fn new(workers: usize) -> Self {
        Self::with_tick(workers, Duration::from_millis(1))
    }

    /// A virtual-time timer with the given tick.
    pub fn with_tick(workers: usize, tick: Duration) -> Self {
        let clock = ManualClock::new();
        let t0 = clock.now();
        let timer = Timer::builder()
            .manual_clock(clock.clone())
            .workers(workers)
            .tick(tick)
            .build()
            .expect("timer threads");
        Virtual { clock, timer, t0 }
    }

    /// Moves virtual time to `ms` after `t0` (unless a job already moved it further) without
    /// waiting for anything.
    pub fn move_to(&self, ms: u64) {
        let target = self.t0 + Duration::from_millis(ms);
        let now = self.clock.now();
        if target > now {
            self.clock.advance(target - now);
        }
    }

    /// Moves virtual time to `ms` after `t0` and waits until every run due by then has been
    /// made and has finished.
    pub fn at(&self, ms: u64) {
        self.move_to(ms);
        self.timer.sync();
    }

    /// Moves virtual time to `ms` after `t0` in 1 ms steps, syncing after each.
    pub fn step_to(&self, ms: u64) {
        let now = self.now_ms();
        for t in now + 1..=ms {
            self.at(t);
        }
    }

    /// Virtual milliseconds since `t0`.
    pub fn now_ms(&self) -> u64 {
        ms(self.t0, self.clock.now())
    }
}

/// Milliseconds from `t0` to `t`, asserting they are whole (virtual time moves in whole ms).
pub fn ms(t0: Instant, t: Instant) -> u64 {
    let d = t - t0;
    assert_eq!(
        d.subsec_nanos() % 1_000_000,
        0,
        "{d:?} is not whole milliseconds"
    );
    d.as_millis() as u64
}

/// A record of runs: (due, started) in virtual ms since `t0`.
#[derive(Clone)]
pub struct Runs {
    t0: Instant,
    log: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

impl Runs {
    pub fn new(v: &Virtual) -> Self {
        Runs {
            t0: v.t0,
            log: Arc::default(),
        }
    }

    /// A job that records its run.
    pub fn job(&self) -> impl Fn(&JobContext<'_>) + Send + Sync + 'static {
        let runs = self.clone();
        move |ctx| runs.record(ctx)
    }

    /// Records a run. An assertion inside a job would be caught by the timer like any panic,
    /// so an early run is recorded as such and reported by the accessors below instead.
    pub fn record(&self, ctx: &JobContext<'_>) {
        self.log.lock().push((ctx.due(), ctx.started()));
    }

    /// The (due, started) pairs so far, in virtual ms; panics (in the test thread) if a run
    /// was early.
    pub fn all(&self) -> Vec<(u64, u64)> {
        let log = self.log.lock();
        log.iter()
            .map(|&(due, started)| {
                assert!(started >= due, "run started before its due time");
                (ms(self.t0, due), ms(self.t0, started))
            })
            .collect()
    }

    /// The start times so far, in virtual ms.
    pub fn started(&self) -> Vec<u64> {
        self.all().into_iter().map(|(_, s)| s).collect()
    }

    /// The due times so far, in virtual ms.
    pub fn due(&self) -> Vec<u64> {
        self.all().into_iter().map(|(d, _)| d).collect()
    }

    pub fn count(&self) -> usize {
        self.all().len()
    }
}
