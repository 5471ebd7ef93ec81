//! Exact to the tick, in virtual time: a run is never early and is made at the first wake-up
//! of the timer thread at or after the tick its due instant rounds up to (so at most one tick
//! late plus the wake-up latency), for every interval (below, at and off the tick), for once,
//! times and forever entries; `missed()` counts only grid points whose tick passed without a
//! run; `ctx.due()` is the real due instant.
//!
//! The property test replays random wake-up times against a model of those rules written
//! from the rules alone (ticks, grid, coalescing), and compares every run and the missed count
//! exactly; the regression tests below it pin the defects of issue 13 one by one.

mod service_util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proptest::prelude::*;
use service_util::{Runs, Virtual};
use wheelbeat_timer::service::{EntryOptions, JobContext, ManualClock, Status, Timer};

const MS: Duration = Duration::from_millis(1);

/// The kinds of entry the property test draws.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Once,
    Times(u64),
    Forever,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Once),
        (2u64..6).prop_map(Kind::Times),
        Just(Kind::Forever),
    ]
}

/// An interval drawn relative to the tick: below it, equal to it, a multiple of it, or off
/// its grid.
fn interval(tick_us: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        1..tick_us,
        Just(tick_us),
        (2u64..5).prop_map(move |k| k * tick_us),
        (tick_us + 1)..(4 * tick_us),
    ]
}

/// What the model expects: the (due, started) of every run, in µs since t0, and the missed
/// count. Written from the documented rules, not from the implementation.
fn model(
    tick: u64,
    added: u64,
    interval: u64,
    kind: Kind,
    wakes: &[u64],
) -> (Vec<(u64, u64)>, u64) {
    let ceil_tick = |t: u64| t.div_ceil(tick);
    // The period of a repeating entry is at least one tick; the first due instant is exact.
    let period = interval.max(tick);
    let mut due = added + interval;
    let mut left = match kind {
        Kind::Once => 1,
        Kind::Times(n) => n,
        Kind::Forever => u64::MAX,
    };
    let (mut runs, mut missed) = (Vec::new(), 0);
    for &wake in wakes {
        if left == 0 {
            break;
        }
        let now_tick = wake / tick;
        if ceil_tick(due) > now_tick {
            continue;
        }
        // Grid points whose tick has been reached: run the latest, the others are missed;
        // a last run is never coalesced (it is for its own due instant).
        let k = if left == 1 {
            0
        } else {
            (now_tick * tick - due) / period
        };
        let run_due = due + k * period;
        runs.push((run_due, wake));
        missed += k;
        due = run_due + period;
        if left != u64::MAX {
            left -= 1;
        }
    }
    (runs, missed)
}

fn us(t0: Instant, t: Instant) -> u64 {
    (t - t0).as_micros() as u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random tick, interval (below / at / off the tick), entry kind, moment of the add and
    /// wake-up times: the runs and the missed count are exactly those of the model, and
    /// independently of it, no run is early and each is made at the first wake-up at or
    /// after its tick.
    #[test]
    fn runs_land_on_the_first_wake_up_at_or_after_their_tick(
        (tick_us, interval_us) in prop_oneof![Just(1_000u64), Just(10_000), 100u64..20_000]
            .prop_flat_map(|tick| (Just(tick), interval(tick))),
        kind in kind(),
        offset_frac in 0u64..1000,
        steps in proptest::collection::vec(1u64..3000, 1..80),
    ) {
        let clock = ManualClock::new();
        let t0 = clock.now();
        let timer = Timer::builder()
            .manual_clock(clock.clone())
            .workers(0)
            .tick(Duration::from_micros(tick_us))
            .build()
            .unwrap();
        let log: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
        let l = log.clone();
        let job = move |ctx: &JobContext<'_>| l.lock().push((ctx.due(), ctx.started()));
        let added = offset_frac * tick_us / 1000;
        clock.advance(Duration::from_micros(added));
        let options = EntryOptions::new(Duration::from_micros(interval_us));
        let options = match kind {
            Kind::Once => options.times(1),
            Kind::Times(n) => options.times(n),
            Kind::Forever => options,
        };
        let entry = timer.add_entry(options, job);
        // Steps are in thousandths of a tick, so every tick sees a few of them or none.
        let mut wakes = Vec::new();
        let mut t = added;
        for step in &steps {
            let step_us = (step * tick_us / 1000).max(1);
            t += step_us;
            clock.advance(Duration::from_micros(step_us));
            timer.sync();
            wakes.push(t);
        }
        let got: Vec<(u64, u64)> =
            log.lock().iter().map(|&(d, s)| (us(t0, d), us(t0, s))).collect();
        for &(due, started) in &got {
            prop_assert!(started >= due, "early: due {} started {}", due, started);
            let tick_of_due = due.div_ceil(tick_us);
            let first = wakes.iter().find(|&&w| w / tick_us >= tick_of_due).copied();
            prop_assert_eq!(Some(started), first, "not the first wake-up after its tick");
        }
        let (want, want_missed) = model(tick_us, added, interval_us, kind, &wakes);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(entry.missed(), want_missed);
        if let Kind::Once = kind {
            prop_assert_eq!(entry.missed(), 0, "a once-entry never misses its run");
        }
    }
}

#[test]
fn regression_interval_equal_to_the_tick_runs_at_full_rate() {
    // Issue 13: tick 10 ms, add(10 ms) at +1 ms, then 50 x (advance 2 ms, sync) gave 5 runs
    // and 5 missed: the run for 11 ms made at 21 ms was taken for a run of 21 ms, and 11 ms
    // counted missed.
    let v = Virtual::with_tick(0, 10 * MS);
    let runs = Runs::new(&v);
    v.move_to(1);
    let entry = v.timer.add(10 * MS, runs.job());
    for _ in 0..50 {
        v.clock.advance(2 * MS);
        v.timer.sync();
    }
    assert_eq!(runs.due(), [11, 21, 31, 41, 51, 61, 71, 81, 91]);
    assert_eq!(runs.started(), [21, 31, 41, 51, 61, 71, 81, 91, 101]);
    assert_eq!(entry.missed(), 0);
    assert_eq!(v.timer.stats().missed, 0);
}

#[test]
fn regression_a_longer_interval_is_not_missed_when_woken_just_after_its_tick() {
    // 15 ms on a 10 ms tick, looked at every 7 ms: a run lands up to 17 ms after its due
    // instant, more than the interval, and that used to count the grid point as missed.
    let v = Virtual::with_tick(0, 10 * MS);
    let runs = Runs::new(&v);
    v.move_to(1);
    let entry = v.timer.add(15 * MS, runs.job());
    for _ in 0..50 {
        v.clock.advance(7 * MS);
        v.timer.sync();
    }
    let due: Vec<u64> = (0..23).map(|k| 16 + 15 * k).collect();
    assert_eq!(runs.due(), due);
    assert_eq!(entry.missed(), 0);
}

#[test]
fn regression_a_late_once_entry_reports_its_real_due_and_no_missed_run() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let once = v.timer.add_once(10 * MS, runs.job());
    let times = v.timer.add_times(10 * MS, 2, runs.job());
    v.at(35); // a stall of three intervals
    // The once-entry ran for 10 ms, not "for 30 ms, with 10 and 20 ms missed".
    assert_eq!(once.missed(), 0);
    assert_eq!(once.status(), Status::Closed);
    // The times entry is fixed-rate: its first run is for the latest grid point passed
    // (30 ms) and 10 and 20 ms really passed without a run; its last run is never coalesced.
    v.step_to(60);
    let mut all = runs.all();
    all.sort_unstable();
    assert_eq!(all, [(10, 35), (30, 35), (40, 40)]);
    assert_eq!(times.missed(), 2);
    assert_eq!(v.timer.stats().missed, 2);
}

#[test]
fn regression_a_once_entry_shorter_than_the_tick_runs_at_the_next_tick() {
    // Tick 10 ms, add_once(1 ms) at +5 ms: due at 6 ms, so it runs at the 10 ms tick, not at
    // 20 ms (the interval used to be raised to one tick before the due instant was placed).
    let v = Virtual::with_tick(0, 10 * MS);
    let runs = Runs::new(&v);
    v.move_to(5);
    v.timer.add_once(MS, runs.job());
    v.step_to(30);
    assert_eq!(runs.all(), [(6, 10)]);
}

#[test]
fn regression_a_sub_tick_forever_entry_runs_once_per_tick_without_misses() {
    let v = Virtual::with_tick(0, 10 * MS);
    let runs = Runs::new(&v);
    let entry = v.timer.add(3 * MS, runs.job());
    assert_eq!(
        entry.interval(),
        10 * MS,
        "a repeating period is at least one tick"
    );
    v.step_to(50);
    assert_eq!(runs.due(), [3, 13, 23, 33, 43]);
    assert_eq!(runs.started(), [10, 20, 30, 40, 50]);
    assert_eq!(entry.missed(), 0);
}
