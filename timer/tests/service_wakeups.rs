//! The timer thread sleeps until the next deadline and never wakes while idle (gtimer's
//! ticker woke every 100 ms forever: its issue #1048), and runs are never early on the real
//! clock. These use the system clock; every wait is on an event with a bounded timeout.

mod service_util;

use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use service_util::Virtual;
use wheelbeat_timer::service::Timer;

const MS: Duration = Duration::from_millis(1);
const WAIT: Duration = Duration::from_secs(10);

/// Blocks for about `d` of real time by waiting on another timer's once-entry: an event, not a
/// sleep.
fn wait_real(d: Duration) {
    let other = Timer::builder().workers(0).build().unwrap();
    let (tx, rx) = bounded(1);
    other.add_once(d, move |_| tx.send(()).unwrap());
    rx.recv_timeout(WAIT).unwrap();
}

#[test]
fn idle_timer_never_wakes_up() {
    let timer = Timer::builder().workers(0).build().unwrap();
    let far = timer.add(Duration::from_secs(3_600), |_| {});
    wait_real(60 * MS);
    // One wake-up at most, for the insert command; a 1 ms ticker would have made ~60.
    assert!(timer.stats().wakeups <= 1, "{:?}", timer.stats());
    far.close();
}

#[test]
fn timer_sleeps_until_each_deadline_and_runs_are_never_early() {
    let timer = Timer::builder().workers(0).build().unwrap();
    let (tx, rx) = bounded(8);
    let added = Instant::now();
    let interval = 20 * MS;
    timer.add_times(interval, 4, move |ctx| {
        tx.send((ctx.due(), Instant::now())).unwrap();
    });
    for k in 1..=4u32 {
        let (due, ran) = rx.recv_timeout(WAIT).unwrap();
        assert!(due >= added + interval * k, "run {k} due too early");
        assert!(ran >= due, "run {k} early by {:?}", due - ran);
    }
    // Per run: one deadline wake-up, maybe one more if the OS woke us a hair early; plus the
    // insert. A 1 ms ticker would have woken ~80 times.
    let wakeups = timer.stats().wakeups;
    assert!(wakeups <= 1 + 4 * 2, "{wakeups} wake-ups for 4 runs");
}

#[test]
fn stopped_timer_sleeps_even_with_entries_overdue() {
    let timer = Timer::builder().workers(0).build().unwrap();
    timer.stop();
    let entry = timer.add(MS, |_| {});
    wait_real(50 * MS);
    assert_eq!(entry.runs(), 0);
    assert!(timer.stats().wakeups <= 2, "{:?}", timer.stats());
}

#[test]
fn virtual_time_wakes_only_on_commands() {
    let v = Virtual::new(0);
    let entry = v.timer.add(Duration::from_secs(600), |_| {});
    let stopped = v.timer.add(MS, |_| {});
    stopped.stop();
    v.at(0);
    let before = v.timer.stats().wakeups;
    // An hour of virtual time in one-minute steps: each step is one advance and one sync.
    for minute in 1..=60 {
        v.at(minute * 60_000);
    }
    let wakeups = v.timer.stats().wakeups - before;
    assert!(wakeups <= 120, "{wakeups} wake-ups for 120 commands");
    assert_eq!(entry.runs(), 6);
    assert_eq!(stopped.runs(), 0);
}
