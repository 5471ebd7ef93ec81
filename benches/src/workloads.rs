//! The workloads, written once against [`Contender`] and run by both the criterion benches
//! and the `compare` binary.
//!
//! # Ground rules
//!
//! - Inputs (deadlines, which timers to cancel, re-arm jitter) are generated up front from a
//!   fixed seed, outside any timed region, so every contender sees the same timers.
//! - Every run checks its result: the number of timers that fired must equal the number
//!   inserted minus the number cancelled, and a contender that can report what it still
//!   holds must hold nothing at the end. A wrong count panics: a contender never wins by
//!   doing less.
//! - The workloads are those of issue 5: (a) [`Mixed`]: N deadlines uniform in
//!   [1, [`SPAN_MS`]] ms, a random half cancelled, then 1 ms steps until all fired;
//!   (b) [`ReArm`]: the heartbeat pattern, every timer pushed later many times before it
//!   fires; (c) [`PerOp`]: insert, cancel and expire timed apart.
//! - Cancels come in **random order** (issue 13), as connections close in a server: cancelling
//!   in insertion order walks every structure's memory sequentially and hides its cache
//!   misses (the wheel's cancel measured 17 ns that way and 75 ns shuffled, at 1M timers).

use crate::contenders::Contender;
use std::time::{Duration, Instant};

/// Deadlines are uniform in `[1, SPAN_MS]` milliseconds.
pub const SPAN_MS: u64 = 60_000;

/// How many extra 1 ms steps past the last deadline a contender gets to deliver its last
/// timers (tokio rounds deadlines up to its own 1 ms tick; the wheels need none).
const GRACE_STEPS: u64 = 4;

/// `n` deadlines uniform in `[1, SPAN_MS]`, from `seed`.
pub fn uniform_deadlines(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| rng.u64(1..=SPAN_MS)).collect()
}

/// Inserts one timer per deadline (payload = its index) and returns the keys in order.
pub fn insert_all<C: Contender>(c: &mut C, deadlines: &[u64]) -> Vec<C::Key> {
    let mut keys = Vec::with_capacity(deadlines.len());
    for (i, &deadline) in deadlines.iter().enumerate() {
        keys.push(c.insert(deadline, i as u64));
    }
    keys
}

/// Cancels every key, in a random order drawn from `seed`; panics if one was not pending.
pub fn cancel_all<C: Contender>(c: &mut C, keys: Vec<C::Key>, seed: u64) {
    let mut keys = keys;
    fastrand::Rng::with_seed(seed).shuffle(&mut keys);
    for key in keys {
        assert!(
            c.cancel(key),
            "{}: a pending timer was not cancelled",
            C::NAME
        );
    }
}

/// Cancels every key in the order given; panics if one was not pending.
pub fn cancel_all_in_order<C: Contender>(c: &mut C, keys: Vec<C::Key>) {
    for key in keys {
        assert!(
            c.cancel(key),
            "{}: a pending timer was not cancelled",
            C::NAME
        );
    }
}

/// Releases every key (their timers are left to fire).
pub fn release_all<C: Contender>(c: &mut C, keys: Vec<C::Key>) {
    for key in keys {
        c.release(key);
    }
}

/// Steps time 1 ms at a time from `from + 1` to `to` (plus a few grace steps if timers are
/// still owed), and checks that exactly `expected` timers fired.
pub fn step_until<C: Contender>(c: &mut C, from: u64, to: u64, expected: usize) -> usize {
    let mut fired = 0;
    let mut now = from;
    while now < to || (fired < expected && now < to + GRACE_STEPS) {
        now += 1;
        fired += c.advance(now);
    }
    check(c, fired, expected);
    fired
}

fn check<C: Contender>(c: &C, fired: usize, expected: usize) {
    assert_eq!(fired, expected, "{}: wrong number of expiries", C::NAME);
    if let Some(pending) = c.pending() {
        assert_eq!(pending, 0, "{}: timers left pending", C::NAME);
    }
}

/// Workload (a): N uniform deadlines, a random half cancelled, 1 ms steps until empty.
#[derive(Debug, Clone)]
pub struct Mixed {
    deadlines: Vec<u64>,
    cancel: Vec<bool>,
    /// The indices of the timers to cancel, in the (shuffled) order they are cancelled.
    cancel_order: Vec<usize>,
    expected: usize,
}

impl Mixed {
    /// The inputs for `n` timers, from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        let deadlines = uniform_deadlines(n, seed);
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        let cancel: Vec<bool> = (0..n).map(|_| rng.bool()).collect();
        let expected = cancel.iter().filter(|&&c| !c).count();
        let mut cancel_order: Vec<usize> = (0..n).filter(|&i| cancel[i]).collect();
        rng.shuffle(&mut cancel_order);
        Mixed {
            deadlines,
            cancel,
            cancel_order,
            expected,
        }
    }

    /// The number of timers.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether the workload has no timers.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// Runs the workload on a fresh contender `c`; returns the number of expiries (checked).
    /// The timers kept are released in insertion order, then the others are cancelled in
    /// random order.
    pub fn run<C: Contender>(&self, c: &mut C) -> usize {
        let mut keys: Vec<Option<C::Key>> = insert_all(c, &self.deadlines)
            .into_iter()
            .map(Some)
            .collect();
        for (key, &cancel) in keys.iter_mut().zip(&self.cancel) {
            if !cancel {
                c.release(key.take().expect("each key is used once"));
            }
        }
        for &i in &self.cancel_order {
            let key = keys[i].take().expect("each key is used once");
            assert!(
                c.cancel(key),
                "{}: cancel of a pending timer failed",
                C::NAME
            );
        }
        step_until(c, 0, SPAN_MS, self.expected)
    }
}

/// Workload (b), the heartbeat pattern: `n` timers with a `timeout`, each pushed later
/// (`reset` to `now + timeout + jitter`) once per round, `rounds` rounds `round_ms` apart,
/// none firing before the last round; then time jumps past every deadline and all must fire.
#[derive(Debug, Clone)]
pub struct ReArm {
    jitter: Vec<u64>,
    rounds: u64,
}

impl ReArm {
    /// Milliseconds between rounds (one heartbeat received per timer per round).
    pub const ROUND_MS: u64 = 10;
    /// The liveness timeout each reset pushes the deadline to.
    pub const TIMEOUT_MS: u64 = 30_000;

    /// The inputs for `n` timers re-armed `rounds` times each, from `seed`.
    pub fn new(n: usize, rounds: u64, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        ReArm {
            jitter: (0..n).map(|_| rng.u64(0..1_000)).collect(),
            rounds,
        }
    }

    /// The number of resets the workload performs.
    pub fn resets(&self) -> u64 {
        self.jitter.len() as u64 * self.rounds
    }

    /// Runs the workload on a fresh contender; returns the time spent in the reset rounds
    /// (including the advances between them) and in total.
    pub fn run<C: Contender>(&self, c: &mut C) -> (Duration, Duration) {
        let start = Instant::now();
        let mut keys = Vec::with_capacity(self.jitter.len());
        for (i, &j) in self.jitter.iter().enumerate() {
            keys.push(c.insert(Self::TIMEOUT_MS + j, i as u64));
        }
        let rounds_start = Instant::now();
        let mut now = 0;
        for _ in 0..self.rounds {
            now += Self::ROUND_MS;
            let early = c.advance(now);
            assert_eq!(early, 0, "{}: a re-armed timer fired early", C::NAME);
            for (key, &j) in keys.iter_mut().zip(&self.jitter) {
                c.reset(key, now + Self::TIMEOUT_MS + j);
            }
        }
        let rounds = rounds_start.elapsed();
        release_all(c, keys);
        // Everything is due by now + TIMEOUT + 1000; one jump there, then the grace steps.
        let last = now + Self::TIMEOUT_MS + 1_000;
        let fired = c.advance(last);
        assert!(fired <= self.jitter.len(), "{}: too many expiries", C::NAME);
        step_until(c, last, last, self.jitter.len() - fired);
        (rounds, start.elapsed())
    }
}

/// Workload (c): insert, cancel and expire timed apart, `n` timers each.
#[derive(Debug, Clone)]
pub struct PerOp {
    deadlines: Vec<u64>,
    seed: u64,
}

/// The three timings of a [`PerOp`] run, each for all `n` timers.
#[derive(Debug, Clone, Copy)]
pub struct PerOpTimes {
    /// Inserting `n` timers into an empty contender.
    pub insert: Duration,
    /// Cancelling those `n` timers.
    pub cancel: Duration,
    /// Stepping 1 ms at a time through `SPAN_MS` while `n` timers (inserted again) fire.
    pub expire: Duration,
}

impl PerOp {
    /// The inputs for `n` timers, from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        PerOp {
            deadlines: uniform_deadlines(n, seed),
            seed,
        }
    }

    /// The deadlines, for benches that time one phase with their own harness.
    pub fn deadlines(&self) -> &[u64] {
        &self.deadlines
    }

    /// Runs all three phases on one fresh contender.
    pub fn run<C: Contender>(&self, c: &mut C) -> PerOpTimes {
        let t = Instant::now();
        let keys = insert_all(c, &self.deadlines);
        let insert = t.elapsed();
        // The shuffle is part of the input, not of the timed cancels.
        let mut keys = keys;
        fastrand::Rng::with_seed(self.seed ^ 0xca9c).shuffle(&mut keys);
        let t = Instant::now();
        cancel_all_in_order(c, keys);
        let cancel = t.elapsed();
        // Expire: a second contender, so the first one's freed slots do not help it.
        let mut fresh = C::new(self.deadlines.len());
        let keys = insert_all(&mut fresh, &self.deadlines);
        release_all(&mut fresh, keys);
        let t = Instant::now();
        step_until(&mut fresh, 0, SPAN_MS, self.deadlines.len());
        let expire = t.elapsed();
        PerOpTimes {
            insert,
            cancel,
            expire,
        }
    }
}

/// Heap bytes a contender holds per pending timer: build it with `n` timers and divide the
/// growth of [`crate::alloc::live_bytes`] by `n`. Meaningful only where
/// [`crate::alloc::Counting`] is the global allocator.
pub fn bytes_per_timer<C: Contender>(n: usize, seed: u64) -> f64 {
    let deadlines = uniform_deadlines(n, seed);
    let mut keys = Vec::with_capacity(n);
    let before = crate::alloc::live_bytes();
    let mut c = C::new(n);
    for (i, &d) in deadlines.iter().enumerate() {
        keys.push(c.insert(d, i as u64));
    }
    let after = crate::alloc::live_bytes();
    release_all(&mut c, keys);
    (after.saturating_sub(before)) as f64 / n as f64
}

/// The cost of one empty 1 ms step of a paused tokio runtime (`block_on` of
/// `tokio::time::advance`), the floor under both tokio contenders' stepping; `steps` steps.
pub fn tokio_idle_steps(steps: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let t = Instant::now();
    for _ in 0..steps {
        rt.block_on(tokio::time::advance(Duration::from_millis(1)));
    }
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contenders::*;

    // Tiny runs: they prove each adapter counts right, and keep `cargo test` fast.
    fn all_agree_on<C: Contender>() {
        let mixed = Mixed::new(500, 7);
        assert!(mixed.run(&mut C::new(500)) > 0);
        ReArm::new(200, 3, 7).run(&mut C::new(200));
        PerOp::new(300, 7).run(&mut C::new(300));
    }

    #[test]
    fn every_contender_fires_exactly_the_uncancelled_timers() {
        all_agree_on::<WheelbeatContender>();
        all_agree_on::<HeapContender>();
        all_agree_on::<PackedHeapContender>();
        all_agree_on::<DelayQueueContender>();
        all_agree_on::<SleepContender>();
        all_agree_on::<NexusContender>();
        all_agree_on::<HashWheelContender>();
    }
}
