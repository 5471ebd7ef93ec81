//! Where runs land in time, in virtual time: fixed-rate (no cumulative drift, missed runs
//! skipped and counted), fixed-delay (next run an interval after the previous finished), and
//! never early, whatever the tick (gtimer rounded intervals down: its issue #1210).

mod service_util;

use std::time::Duration;

use service_util::{Runs, Virtual};
use wheelbeat_timer::service::{EntryOptions, Schedule};

const MS: Duration = Duration::from_millis(1);

#[test]
fn fixed_rate_has_no_cumulative_drift_however_late_each_run_is() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let clock = v.clock.clone();
    // Each run takes 3 ms of virtual time.
    v.timer.add(10 * MS, move |ctx| {
        r.record(ctx);
        clock.advance(3 * MS);
    });
    // The timer is only looked at every 7 ms, so most runs start late.
    let mut t = 0;
    while t < 1_000 {
        t += 7;
        v.at(t);
    }
    let due = runs.due();
    assert_eq!(due.len(), 100);
    for (k, (&due, &started)) in due.iter().zip(&runs.started()).enumerate() {
        assert_eq!(due, 10 * (k as u64 + 1), "run {k} stays on the grid");
        assert!(
            started >= due && started - due < 7,
            "run {k}: due {due}, started {started}"
        );
    }
}

#[test]
fn fixed_rate_skips_and_counts_runs_missed_by_a_stall() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.at(10);
    v.at(35); // 20 and 30 came due during one stall
    assert_eq!(runs.started(), [10, 35]);
    assert_eq!(runs.due(), [10, 30], "one run, for the latest grid point");
    assert_eq!(entry.missed(), 1);
    assert_eq!(v.timer.stats().missed, 1);
    assert_eq!(entry.next_run(), Some(v.t0 + 40 * MS), "still on the grid");
    v.step_to(50);
    assert_eq!(runs.started(), [10, 35, 40, 50]);
}

#[test]
fn fixed_delay_schedules_the_next_run_after_the_previous_finished() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let clock = v.clock.clone();
    let options = EntryOptions::new(10 * MS).schedule(Schedule::FixedDelay);
    let entry = v.timer.add_entry(options, move |ctx| {
        r.record(ctx);
        clock.advance(4 * MS); // the job takes 4 ms
    });
    assert_eq!(entry.schedule(), Schedule::FixedDelay);
    v.step_to(60);
    assert_eq!(runs.started(), [10, 24, 38, 52]);
    assert_eq!(entry.missed(), 0);
}

#[test]
fn fixed_delay_on_a_worker_also_waits_for_the_finish() {
    let v = Virtual::new(1);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let clock = v.clock.clone();
    let options = EntryOptions::new(10 * MS).schedule(Schedule::FixedDelay);
    v.timer.add_entry(options, move |ctx| {
        r.record(ctx);
        clock.advance(4 * MS);
    });
    v.step_to(60);
    assert_eq!(runs.started(), [10, 24, 38, 52]);
}

#[test]
fn fixed_rate_with_the_same_slow_job_keeps_its_period() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let clock = v.clock.clone();
    v.timer.add(10 * MS, move |ctx| {
        r.record(ctx);
        clock.advance(4 * MS);
    });
    v.step_to(60);
    assert_eq!(runs.started(), [10, 20, 30, 40, 50, 60]);
}

#[test]
fn never_early_with_a_coarse_tick_and_an_interval_off_the_tick() {
    // gtimer rounded a 15 ms interval on a 10 ms tick down to 10 ms; we round the tick up.
    let v = Virtual::with_tick(0, 10 * MS);
    let runs = Runs::new(&v);
    v.timer.add(15 * MS, runs.job());
    v.step_to(100);
    assert_eq!(runs.due(), [15, 30, 45, 60, 75, 90]);
    assert_eq!(runs.started(), [20, 30, 50, 60, 80, 90]);
}

#[test]
fn regression_gtimer_1210_one_second_interval_is_not_shortened() {
    let v = Virtual::with_tick(0, 100 * MS);
    let runs = Runs::new(&v);
    v.timer.add(Duration::from_millis(1_000), runs.job());
    let mut t = 0;
    while t < 5_000 {
        t += 40;
        v.at(t);
    }
    let started = runs.started();
    assert_eq!(started.len(), 5);
    for pair in started.windows(2) {
        assert!(pair[1] - pair[0] >= 960, "{started:?}");
    }
    assert_eq!(runs.due(), [1_000, 2_000, 3_000, 4_000, 5_000]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever the interval and however irregularly the timer is looked at: every run is on
    /// the grid `k × interval`, never early, late by less than the gap between looks, and
    /// runs + missed account for every grid point passed.
    #[test]
    fn fixed_rate_runs_stay_on_the_grid_under_random_steps(
        interval in 1u64..40,
        steps in proptest::collection::vec(1u64..60, 1..60),
    ) {
        let v = Virtual::new(0);
        let runs = Runs::new(&v);
        let entry = v.timer.add(Duration::from_millis(interval), runs.job());
        let mut t = 0;
        let mut looks = vec![0];
        for step in &steps {
            t += step;
            v.at(t);
            looks.push(t);
        }
        let (due, started) = (runs.due(), runs.started());
        for (&d, &s) in due.iter().zip(&started) {
            proptest::prop_assert_eq!(d % interval, 0, "due {} off the grid", d);
            proptest::prop_assert!(s >= d, "early: due {} started {}", d, s);
            // The run was made at the first look at or after its due time.
            let first_look = *looks.iter().find(|&&l| l >= d).unwrap();
            proptest::prop_assert_eq!(s, first_look);
        }
        proptest::prop_assert_eq!(due.len() as u64 + entry.missed(), t / interval);
        proptest::prop_assert!(due.windows(2).all(|w| w[0] < w[1]));
    }
}
