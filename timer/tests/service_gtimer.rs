//! gtimer parity: `Builder::quick`, `Entry::set_status`, and the package-level functions on
//! the lazily started default timer.

mod service_util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use service_util::{Runs, Virtual};
use wheelbeat_timer::service::{EntryOptions, ManualClock, Status, Timer};

const MS: Duration = Duration::from_millis(1);

fn quick_virtual(tick: Duration) -> Virtual {
    let clock = ManualClock::new();
    let t0 = clock.now();
    let timer = Timer::builder()
        .manual_clock(clock.clone())
        .workers(0)
        .tick(tick)
        .quick(true)
        .build()
        .unwrap();
    Virtual { clock, timer, t0 }
}

#[test]
fn quick_timer_runs_each_entry_first_at_the_next_tick() {
    let v = quick_virtual(10 * MS);
    let runs = Runs::new(&v);
    v.move_to(3);
    let entry = v.timer.add(100 * MS, runs.job());
    v.step_to(250);
    // First at the next tick (10 ms), then every interval from the add (3 ms).
    assert_eq!(runs.all(), [(3, 10), (103, 110), (203, 210)]);
    assert_eq!(entry.missed(), 0);
}

#[test]
fn quick_timer_still_honours_a_delay() {
    let v = quick_virtual(MS);
    let runs = Runs::new(&v);
    v.timer.delay_add_once(20 * MS, 100 * MS, runs.job());
    v.step_to(50);
    assert_eq!(runs.all(), [(20, 20)]);
}

#[test]
fn set_status_maps_to_start_stop_close_and_returns_the_old_status() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    assert_eq!(entry.set_status(Status::Stopped), Status::Ready);
    v.step_to(25);
    assert_eq!(runs.count(), 0, "stopped through set_status");
    assert_eq!(entry.set_status(Status::Running), Status::Stopped);
    assert_eq!(entry.status(), Status::Ready, "Running is taken as Ready");
    v.step_to(30);
    assert_eq!(runs.started(), [30]);
    assert_eq!(entry.set_status(Status::Closed), Status::Ready);
    assert_eq!(entry.set_status(Status::Ready), Status::Closed);
    assert_eq!(entry.status(), Status::Closed, "closed is final");
    v.step_to(60);
    assert_eq!(runs.count(), 1);
}

/// Waits for `n` messages, each within a generous deadline (the default timer runs on the
/// real clock and the machine may be busy).
fn recv_n<T>(rx: &mpsc::Receiver<T>, n: usize) -> Vec<T> {
    (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a run within 10 s")
        })
        .collect()
}

#[test]
fn package_level_functions_run_on_the_one_default_timer() {
    let (tx, rx) = mpsc::channel::<(&'static str, Instant, Instant)>();
    let send = move |name: &'static str| {
        let tx = std::sync::Mutex::new(tx.clone());
        move |ctx: &wheelbeat_timer::JobContext<'_>| {
            let _ = tx.lock().unwrap().send((name, ctx.due(), Instant::now()));
        }
    };
    let timer = wheelbeat_timer::default_timer();
    assert!(
        std::ptr::eq(timer, wheelbeat_timer::default_timer()),
        "one default timer"
    );
    let entries = [
        wheelbeat_timer::set_timeout(MS, send("set_timeout")),
        wheelbeat_timer::add_once(MS, send("add_once")),
        wheelbeat_timer::add_times(MS, 1, send("add_times")),
        wheelbeat_timer::delay_add_once(MS, MS, send("delay_add_once")),
        wheelbeat_timer::delay_add_times(MS, MS, 1, send("delay_add_times")),
        wheelbeat_timer::add_entry(EntryOptions::new(MS).times(1), send("add_entry")),
        wheelbeat_timer::delay_add_entry(
            MS,
            EntryOptions::new(MS).times(1),
            send("delay_add_entry"),
        ),
    ];
    let forever = [
        wheelbeat_timer::set_interval(MS, send("set_interval")),
        wheelbeat_timer::add(MS, send("add")),
        wheelbeat_timer::add_singleton(MS, send("add_singleton")),
        wheelbeat_timer::delay_add(MS, MS, send("delay_add")),
        wheelbeat_timer::delay_add_singleton(MS, MS, send("delay_add_singleton")),
    ];
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 12 && Instant::now() < deadline {
        for (name, due, ran) in recv_n(&rx, 1) {
            assert!(ran >= due, "{name} ran early");
            seen.insert(name);
        }
    }
    for entry in forever.iter().chain(&entries) {
        entry.close();
    }
    assert_eq!(seen.len(), 12, "every function ran its job: {seen:?}");
    for entry in &entries {
        assert_eq!(entry.times(), Some(0), "a once-entry made its run");
    }
}
