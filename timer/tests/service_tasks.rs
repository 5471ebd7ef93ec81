//! gtimer's task behaviours, one test each, driven in virtual time on a manual clock with jobs
//! run inline: once, times(n), forever, stop / start / close / reset, status transitions,
//! `set_times`, closing from inside a job, delayed adds returning their entry.

mod service_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use service_util::{Runs, Virtual};
use wheelbeat_timer::service::{EntryOptions, Status};

const MS: Duration = Duration::from_millis(1);

#[test]
fn once_runs_once_at_its_due_time_then_closes() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add_once(100 * MS, runs.job());
    assert_eq!(entry.times(), Some(1));
    assert!(entry.is_singleton(), "gtimer's AddOnce is a singleton");
    v.at(99);
    assert_eq!(runs.count(), 0, "never early");
    v.at(100);
    assert_eq!(runs.started(), [100]);
    assert_eq!(entry.status(), Status::Closed);
    v.at(1_000);
    assert_eq!(runs.count(), 1);
    assert_eq!(v.timer.stats().entries, 0);
}

#[test]
fn times_counts_down_when_a_run_is_dispatched_then_closes() {
    let v = Virtual::new(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let entry = v.timer.add_times(10 * MS, 3, move |ctx| {
        // The run has been counted before the job begins, as gtimer does.
        s.lock().push(ctx.entry().times());
    });
    assert_eq!(entry.times(), Some(3));
    v.at(10);
    assert_eq!(entry.times(), Some(2));
    assert_eq!(entry.status(), Status::Ready);
    v.step_to(100);
    assert_eq!(*seen.lock(), [Some(2), Some(1), Some(0)]);
    assert_eq!(entry.runs(), 3);
    assert_eq!(entry.status(), Status::Closed);
}

#[test]
fn forever_runs_every_interval_on_time() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    assert_eq!(entry.times(), None);
    v.step_to(100);
    assert_eq!(runs.started(), (1..=10).map(|k| k * 10).collect::<Vec<_>>());
    assert_eq!(entry.status(), Status::Ready);
    assert_eq!(entry.missed(), 0);
}

#[test]
fn zero_times_is_closed_at_once_and_never_runs() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add_times(10 * MS, 0, runs.job());
    assert_eq!(entry.status(), Status::Closed);
    v.step_to(50);
    assert_eq!(runs.count(), 0);
    assert_eq!(v.timer.stats().entries, 0);
}

#[test]
fn stop_keeps_the_schedule_and_start_resumes_on_its_grid() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.at(10);
    entry.stop();
    assert_eq!(entry.status(), Status::Stopped);
    assert_eq!(entry.next_run(), None);
    v.at(35);
    assert_eq!(runs.started(), [10], "a stopped entry does not run");
    entry.start();
    v.at(35);
    assert_eq!(entry.status(), Status::Ready);
    assert_eq!(
        entry.next_run(),
        Some(v.t0 + 40 * MS),
        "back on the 10 ms grid"
    );
    v.step_to(50);
    assert_eq!(runs.started(), [10, 40, 50]);
    assert_eq!(entry.missed(), 0, "runs due while stopped are not 'missed'");
}

#[test]
fn close_removes_the_entry_for_good() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.at(10);
    assert_eq!(v.timer.stats().entries, 1);
    entry.close();
    assert_eq!(entry.status(), Status::Closed);
    entry.start();
    entry.set_times(5);
    assert_eq!(entry.status(), Status::Closed, "closed is final");
    v.step_to(60);
    assert_eq!(runs.started(), [10]);
    assert_eq!(v.timer.stats().entries, 0);
    assert!(!entry.run(), "a closed entry does not run, even by hand");
}

#[test]
fn reset_restarts_the_interval_from_now() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.at(7);
    entry.reset();
    v.at(7);
    assert_eq!(entry.next_run(), Some(v.t0 + 17 * MS));
    v.step_to(16);
    assert_eq!(runs.count(), 0);
    v.step_to(37);
    assert_eq!(runs.started(), [17, 27, 37]);
}

#[test]
fn status_moves_ready_running_ready_stopped_closed() {
    let v = Virtual::new(0);
    let inside = Arc::new(Mutex::new(None));
    let i = inside.clone();
    let entry = v.timer.add(10 * MS, move |ctx| {
        *i.lock() = Some(ctx.entry().status());
    });
    assert_eq!(entry.status(), Status::Ready);
    v.at(10);
    assert_eq!(
        *inside.lock(),
        Some(Status::Running),
        "running while its job runs"
    );
    assert_eq!(
        entry.status(),
        Status::Ready,
        "ready again once it finished"
    );
    entry.stop();
    assert_eq!(entry.status(), Status::Stopped);
    entry.stop();
    assert_eq!(entry.status(), Status::Stopped);
    entry.start();
    assert_eq!(entry.status(), Status::Ready);
    entry.close();
    assert_eq!(entry.status(), Status::Closed);
    entry.stop();
    assert_eq!(entry.status(), Status::Closed);
}

#[test]
fn set_times_limits_a_forever_entry_and_zero_closes_it() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.at(10);
    entry.set_times(2);
    assert_eq!(entry.times(), Some(2));
    v.step_to(100);
    assert_eq!(runs.started(), [10, 20, 30]);
    assert_eq!(entry.status(), Status::Closed);

    let other = v.timer.add(10 * MS, runs.job());
    other.set_times(0);
    assert_eq!(other.status(), Status::Closed);
}

#[test]
fn set_times_inside_the_last_run_extends_the_entry() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let entry = v.timer.add_times(10 * MS, 1, move |ctx| {
        r.record(ctx);
        if ctx.entry().runs() == 1 {
            ctx.entry().set_times(1);
        }
    });
    v.step_to(60);
    assert_eq!(runs.started(), [10, 20]);
    assert_eq!(entry.status(), Status::Closed);
}

#[test]
fn exit_from_inside_the_job_closes_its_entry_without_a_panic() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let entry = v.timer.add(10 * MS, move |ctx| {
        r.record(ctx);
        if ctx.entry().runs() == 3 {
            ctx.exit();
        }
    });
    v.step_to(100);
    assert_eq!(runs.started(), [10, 20, 30]);
    assert_eq!(entry.status(), Status::Closed);
    assert_eq!(v.timer.stats().panics, 0);
    assert_eq!(v.timer.stats().entries, 0);
}

#[test]
fn delayed_add_returns_an_entry_usable_during_the_delay() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let forever = v.timer.delay_add(50 * MS, 10 * MS, runs.job());
    assert_eq!(forever.status(), Status::Ready);
    let cancelled = v.timer.delay_add_once(50 * MS, 10 * MS, runs.job());
    cancelled.close();
    let times = v.timer.delay_add_times(20 * MS, 5 * MS, 2, runs.job());
    let single = v.timer.delay_add_singleton(100 * MS, 10 * MS, runs.job());
    assert!(single.is_singleton());
    let custom = v.timer.delay_add_entry(
        10 * MS,
        EntryOptions::new(10 * MS).delay(5 * MS).times(1),
        runs.job(),
    );
    v.step_to(59);
    assert_eq!(
        runs.started(),
        [25, 25, 30],
        "custom at 25, times at 25 and 30"
    );
    assert_eq!(times.status(), Status::Closed);
    assert_eq!(custom.status(), Status::Closed);
    v.step_to(60);
    assert_eq!(
        runs.started(),
        [25, 25, 30, 60],
        "first run at delay + interval"
    );
    forever.stop();
    v.step_to(200);
    assert_eq!(
        runs.count(),
        4 + 10,
        "the singleton ran at 110, 120, ..., 200"
    );
    assert_eq!(cancelled.runs(), 0);
}

#[test]
fn initially_stopped_entry_runs_only_after_start() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add_entry(
        EntryOptions::new(10 * MS).status(Status::Stopped),
        runs.job(),
    );
    assert_eq!(entry.status(), Status::Stopped);
    v.step_to(30);
    assert_eq!(runs.count(), 0);
    entry.start();
    v.step_to(50);
    assert_eq!(runs.started(), [40, 50]);
    let born_closed = v.timer.add_entry(
        EntryOptions::new(10 * MS).status(Status::Closed),
        runs.job(),
    );
    assert_eq!(born_closed.status(), Status::Closed);
}

#[test]
fn run_by_hand_counts_against_times_and_keeps_the_schedule() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add_times(10 * MS, 3, runs.job());
    v.at(4);
    assert!(entry.run());
    assert_eq!(entry.times(), Some(2));
    assert_eq!(entry.next_run(), Some(v.t0 + 10 * MS), "schedule unchanged");
    v.step_to(100);
    assert_eq!(runs.started(), [4, 10, 20]);
    assert_eq!(entry.status(), Status::Closed);
    assert!(!entry.run());
}

#[test]
fn a_job_can_add_entries_through_its_context() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let r = runs.clone();
    let added = Arc::new(AtomicU64::new(0));
    let a = added.clone();
    v.timer.add_once(10 * MS, move |ctx| {
        let entry = ctx.timer().add_once(5 * MS, r.job());
        a.store(entry.id(), Ordering::Relaxed);
    });
    v.step_to(20);
    assert_eq!(runs.started(), [15]);
    assert_ne!(added.load(Ordering::Relaxed), 0);
}

#[test]
fn interval_shorter_than_a_tick_is_one_tick_not_a_spin() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(Duration::ZERO, runs.job());
    assert_eq!(entry.interval(), MS);
    v.step_to(5);
    assert_eq!(runs.started(), [1, 2, 3, 4, 5]);
}

#[test]
fn huge_interval_and_delay_mean_practically_never_and_do_not_panic() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(Duration::MAX, runs.job());
    let delayed = v.timer.delay_add(Duration::MAX, Duration::MAX, runs.job());
    v.at(3_600_000);
    assert_eq!(runs.count(), 0);
    assert_eq!(entry.status(), Status::Ready);
    assert_eq!(delayed.status(), Status::Ready);
    entry.reset();
    v.at(3_600_001);
    assert_eq!(runs.count(), 0);
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Step(u64),
    Stop,
    Start,
    Reset,
    Close,
    SetTimes(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (1u64..30).prop_map(Op::Step),
        1 => Just(Op::Stop),
        1 => Just(Op::Start),
        1 => Just(Op::Reset),
        1 => (0u64..5).prop_map(Op::SetTimes),
        1 => Just(Op::Close),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random stop / start / reset / set_times / close between random steps of virtual time:
    /// no run is early, none starts while the entry is stopped or after it is closed, and a
    /// limited entry never runs more than it was allowed to.
    #[test]
    fn entry_operations_in_any_order_keep_their_promises(
        interval in 1u64..20,
        times in proptest::option::of(1u64..6),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let v = Virtual::new(0);
        let runs = Runs::new(&v);
        let mut options = EntryOptions::new(Duration::from_millis(interval));
        if let Some(n) = times {
            options = options.times(n);
        }
        let entry = v.timer.add_entry(options, runs.job());
        let mut t = 0;
        let mut allowed = times;
        let mut stopped = false;
        let mut closed = false;
        for op in ops {
            let before = runs.count();
            match op {
                Op::Step(d) => {
                    t += d;
                    v.at(t);
                    if stopped || closed {
                        proptest::prop_assert_eq!(runs.count(), before, "ran while stopped/closed");
                    }
                }
                Op::Stop => { entry.stop(); stopped = !closed; }
                Op::Start => { entry.start(); stopped = false; }
                Op::Reset => entry.reset(),
                Op::Close => { entry.close(); closed = true; }
                Op::SetTimes(n) => {
                    if !closed {
                        entry.set_times(n);
                        allowed = Some(n + runs.count() as u64);
                        closed |= n == 0;
                    }
                }
            }
            v.at(t);
            if let Some(max) = allowed {
                proptest::prop_assert!(runs.count() as u64 <= max);
                // The entry closes itself once its last allowed run is done.
                closed |= runs.count() as u64 == max;
            }
            let status = entry.status();
            if closed {
                proptest::prop_assert_eq!(status, Status::Closed);
            } else if stopped {
                proptest::prop_assert_eq!(status, Status::Stopped);
            }
        }
    }
}

#[test]
fn thousands_due_at_once_all_run_exactly_once() {
    // More than one batch of the timer thread's pass over the wheel.
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entries: Vec<_> = (0..5_000u64)
        .map(|i| {
            v.timer
                .add_times(Duration::from_millis(10 + i % 3), 2, runs.job())
        })
        .collect();
    v.at(100);
    assert_eq!(runs.count(), 5_000, "one run each, the rest missed");
    v.at(200);
    assert_eq!(runs.count(), 10_000);
    assert!(entries.iter().all(|e| e.status() == Status::Closed));
    assert_eq!(v.timer.stats().entries, 0);
}
