//! Jobs and threads, in virtual time: inline vs worker pool, singleton skip, a slow job not
//! delaying other entries, panics contained (gtimer's issue #2018), and `Timer` stop / start /
//! close joining its threads. Jobs that must block wait on channels the test releases; every
//! wait is bounded.

mod service_util;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use parking_lot::Mutex;
use service_util::{Runs, Virtual};
use wheelbeat_timer::service::{Status, Timer};

const MS: Duration = Duration::from_millis(1);
const WAIT: Duration = Duration::from_secs(10);

/// A job that reports it started, then blocks until released.
fn gated() -> (
    impl Fn(&wheelbeat_timer::JobContext<'_>) + Send + Sync + 'static,
    Receiver<()>,
    Sender<()>,
) {
    let (started_tx, started_rx) = unbounded();
    let (release_tx, release_rx) = unbounded::<()>();
    let job = move |_: &wheelbeat_timer::JobContext<'_>| {
        started_tx.send(()).unwrap();
        release_rx.recv_timeout(WAIT).expect("released");
    };
    (job, started_rx, release_tx)
}

#[test]
fn inline_jobs_run_on_the_timer_thread_and_pool_jobs_on_workers() {
    for (workers, expected) in [(0, "wheelbeat-timer"), (2, "wheelbeat-timer-worker-")] {
        let v = Virtual::new(workers);
        let names = Arc::new(Mutex::new(Vec::new()));
        let n = names.clone();
        v.timer.add(10 * MS, move |_| {
            n.lock()
                .push(thread::current().name().unwrap_or("").to_owned());
        });
        v.step_to(30);
        let names = names.lock();
        assert_eq!(names.len(), 3);
        for name in names.iter() {
            if workers == 0 {
                assert_eq!(name, expected);
            } else {
                assert!(name.starts_with(expected), "{name}");
            }
        }
    }
}

#[test]
fn singleton_skips_a_run_that_would_overlap_the_running_one() {
    let v = Virtual::new(2);
    let (job, started, release) = gated();
    let entry = v.timer.add_singleton(10 * MS, job);
    v.move_to(10);
    v.timer.flush();
    started.recv_timeout(WAIT).unwrap();
    assert_eq!(entry.status(), Status::Running);
    v.move_to(20);
    v.timer.flush();
    assert_eq!(entry.skipped(), 1, "the run due at 20 would overlap");
    assert_eq!(entry.runs(), 1);
    release.send(()).unwrap();
    v.at(20);
    v.move_to(30);
    v.timer.flush();
    started.recv_timeout(WAIT).unwrap();
    release.send(()).unwrap();
    v.at(30);
    assert_eq!(entry.runs(), 2);
    assert_eq!(v.timer.stats().skipped, 1);
}

#[test]
fn non_singleton_runs_overlap_on_different_workers() {
    let v = Virtual::new(2);
    let (job, started, release) = gated();
    let entry = v.timer.add(10 * MS, job);
    v.move_to(10);
    v.timer.flush();
    started.recv_timeout(WAIT).unwrap();
    v.move_to(20);
    v.timer.flush();
    started
        .recv_timeout(WAIT)
        .expect("second run overlaps the first");
    assert_eq!(entry.runs(), 2);
    assert_eq!(entry.skipped(), 0);
    release.send(()).unwrap();
    release.send(()).unwrap();
    v.at(20);
}

#[test]
fn a_slow_job_on_a_worker_does_not_delay_other_entries() {
    let v = Virtual::new(2);
    let (slow, started, release) = gated();
    v.timer.add_once(5 * MS, slow);
    let (tx, rx) = bounded(16);
    v.timer.add(10 * MS, move |ctx| {
        tx.send(ctx.due()).unwrap();
    });
    v.move_to(5);
    v.timer.flush();
    started.recv_timeout(WAIT).unwrap();
    v.move_to(10);
    v.timer.flush();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), v.t0 + 10 * MS);
    release.send(()).unwrap();
    v.at(10);
}

/// Collects `error` records so the test can check panics are logged through `log`.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn panicking_job_is_caught_logged_counted_and_others_are_unaffected() {
    let _ = log::set_logger(&LOGS);
    log::set_max_level(log::LevelFilter::Error);
    for workers in [0, 2] {
        let v = Virtual::new(workers);
        let runs = Runs::new(&v);
        let bad = v.timer.add(10 * MS, |_| panic!("boom in a job"));
        let limited = v.timer.add_times(10 * MS, 2, |_| panic!("boom, limited"));
        let good = v.timer.add(10 * MS, runs.job());
        v.step_to(50);
        assert_eq!(bad.runs(), 5);
        assert_eq!(bad.panics(), 5);
        assert_eq!(bad.status(), Status::Ready, "keeps its schedule");
        assert_eq!(bad.next_run(), Some(v.t0 + 60 * MS));
        assert_eq!(limited.runs(), 2, "a panicking run counts as a run");
        assert_eq!(limited.status(), Status::Closed);
        assert_eq!(runs.started(), [10, 20, 30, 40, 50]);
        assert_eq!(good.panics(), 0);
        assert_eq!(v.timer.stats().panics, 7);
        v.timer.add_once(MS, runs.job());
        v.at(51);
        assert_eq!(
            runs.count(),
            6,
            "the timer still works (workers: {workers})"
        );
    }
    let logs = LOGS.0.lock();
    assert!(logs.iter().any(|l| l.contains("boom in a job")), "{logs:?}");
}

#[test]
fn held_timer_dispatches_nothing_and_release_runs_what_came_due_once() {
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let entry = v.timer.add(10 * MS, runs.job());
    v.timer.hold();
    assert_eq!(v.timer.status(), Status::Stopped);
    v.at(35);
    assert_eq!(runs.count(), 0);
    assert_eq!(
        entry.status(),
        Status::Ready,
        "entries keep their own status"
    );
    v.timer.release();
    v.at(35);
    assert_eq!(runs.started(), [35], "one run for what came due meanwhile");
    assert_eq!(entry.missed(), 2);
    v.step_to(40);
    assert_eq!(runs.started(), [35, 40]);
}

#[test]
fn regression_stopped_timer_resumes_with_the_time_each_entry_had_left() {
    // gtimer's Stop freezes its tick counter; wheelbeat's used to fire everything that came
    // due meanwhile at once on start.
    let v = Virtual::new(0);
    let runs = Runs::new(&v);
    let ten = v.timer.add(10 * MS, runs.job());
    let once = v.timer.add_once(25 * MS, runs.job());
    v.at(4);
    v.timer.stop();
    assert_eq!(v.timer.status(), Status::Stopped);
    v.at(100);
    // Added while paused: its interval counts from the start.
    let late = v.timer.add_once(3 * MS, runs.job());
    v.at(500);
    assert_eq!(runs.count(), 0, "nothing runs while paused");
    v.timer.start();
    v.at(500);
    assert_eq!(runs.count(), 0, "no burst on start");
    assert_eq!(ten.next_run(), Some(v.t0 + 506 * MS), "6 ms were left");
    v.step_to(530);
    // Due instants are the clock instants the runs came due at: 6 ms, 16 ms ... after the
    // start for the 10 ms entry, 21 ms after it for the once-entry, 3 ms for the late one.
    assert_eq!(
        runs.all(),
        [(503, 503), (506, 506), (516, 516), (521, 521), (526, 526)]
    );
    assert_eq!(ten.missed() + once.missed() + late.missed(), 0);
    assert_eq!(v.timer.stats().missed, 0);
}

thread_local! {
    static EXIT_FLAG: RefCell<Option<SetOnDrop>> = const { RefCell::new(None) };
}

/// Sets its flag when the thread that owns it exits (thread-local destructor).
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn close_waits_for_the_running_job_and_joins_every_thread() {
    for workers in [0, 1] {
        let v = Virtual::new(workers);
        let exited = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (job, started, release) = gated();
        let (e, f) = (exited.clone(), finished.clone());
        let entry = v.timer.add_once(10 * MS, move |ctx| {
            EXIT_FLAG.with(|slot| *slot.borrow_mut() = Some(SetOnDrop(e.clone())));
            job(ctx);
            f.store(true, Ordering::SeqCst);
        });
        v.move_to(10);
        if workers > 0 {
            v.timer.flush();
        }
        started.recv_timeout(WAIT).unwrap();
        thread::scope(|s| {
            let closer = s.spawn(|| {
                v.timer.close();
                finished.load(Ordering::SeqCst) && exited.load(Ordering::SeqCst)
            });
            release.send(()).unwrap();
            assert!(
                closer.join().unwrap(),
                "close returned before the job and thread ended"
            );
        });
        assert_eq!(v.timer.status(), Status::Closed);
        assert_eq!(entry.status(), Status::Closed);
        let late = v.timer.add(MS, |_| unreachable!());
        assert_eq!(
            late.status(),
            Status::Closed,
            "born closed on a closed timer"
        );
        v.timer.sync(); // returns at once
        v.timer.close(); // idempotent
    }
}

#[test]
fn dropping_the_timer_closes_its_entries() {
    let timer = Timer::builder().workers(1).build().unwrap();
    let entry = timer.add(Duration::from_secs(3_600), |_| {});
    assert_eq!(entry.status(), Status::Ready);
    drop(timer);
    assert_eq!(entry.status(), Status::Closed);
}

#[test]
fn close_from_inside_a_job_does_not_deadlock() {
    let timer = Arc::new(Timer::builder().workers(1).build().unwrap());
    let (tx, rx) = bounded(1);
    let t = timer.clone();
    timer.add_once(MS, move |_| {
        t.close();
        tx.send(t.status()).unwrap();
    });
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Status::Closed);
}

#[test]
fn entry_calls_racing_from_many_threads_end_in_a_consistent_state() {
    let v = Virtual::new(2);
    let runs = Runs::new(&v);
    let entry = v.timer.add(MS, runs.job());
    thread::scope(|s| {
        for id in 0..4 {
            let entry = entry.clone();
            s.spawn(move || {
                for i in 0..2_000 {
                    match (id + i) % 4 {
                        0 => entry.stop(),
                        1 => entry.start(),
                        2 => entry.reset(),
                        _ => entry.set_singleton(i % 2 == 0),
                    }
                }
            });
        }
        // Meanwhile, virtual time moves and runs are dispatched to the workers.
        for t in 1..=200 {
            v.move_to(t);
            v.timer.flush();
        }
    });
    entry.stop();
    v.at(201);
    let settled = runs.count();
    v.at(300);
    assert_eq!(runs.count(), settled, "no run after stop has settled");
    assert_eq!(entry.status(), Status::Stopped);
    entry.start();
    v.at(300);
    v.step_to(303);
    assert_eq!(runs.started()[settled..], [300, 301, 302, 303]);
    assert_eq!(v.timer.stats().entries, 1);
}

/// What a job owns: the last `Arc<Timer>`, then a sender that hangs up once the `Timer` is
/// dropped (fields drop in declaration order).
struct LastOwner {
    timer: Arc<Timer>,
    ran: Sender<()>,
}

#[test]
fn regression_dropping_the_last_timer_on_its_own_thread_does_not_deadlock() {
    let timer = Arc::new(Timer::builder().workers(1).build().unwrap());
    let (ran, ran_rx) = bounded(1);
    let owner = LastOwner {
        timer: timer.clone(),
        ran,
    };
    timer.add_once(MS, move |_| {
        let owner = &owner;
        assert!(owner.timer.status() != Status::Closed);
        owner.ran.send(()).unwrap();
    });
    drop(timer);
    ran_rx.recv_timeout(WAIT).expect("the job ran");
    // The entry, its job and so the last Timer are dropped on the timer's own threads; the
    // drop must not wait for them.
    assert_eq!(
        ran_rx.recv_timeout(WAIT),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_long_job_on_a_one_worker_pool_delays_other_entries_and_counts_their_runs() {
    let v = Virtual::new(1);
    let (release, wait) = crossbeam_channel::bounded::<()>(0);
    let began = Arc::new(AtomicBool::new(false));
    let b = began.clone();
    // A job that holds the only worker until the test lets it go (2 s of virtual time).
    let long = v.timer.add_once(5 * MS, move |_| {
        b.store(true, Ordering::Release);
        let _ = wait.recv();
    });
    let runs = Runs::new(&v);
    let other = v.timer.add(10 * MS, runs.job());
    v.move_to(5);
    v.timer.flush();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !began.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "the long job never started");
        std::thread::yield_now();
    }
    // Due at 10 ms: queued behind the long job. Due every 10 ms after: skipped, since a run
    // of the entry is still queued, so the queue stays bounded.
    for t in (10..=2_000).step_by(10) {
        v.move_to(t);
        v.timer.flush();
    }
    assert_eq!(
        runs.count(),
        0,
        "nothing ran while the only worker was busy"
    );
    assert_eq!(other.skipped(), 199);
    release.send(()).unwrap();
    v.timer.sync();
    // The queued run ran when the worker came free, 1,990 ms late, and says so.
    assert_eq!(runs.all(), [(10, 2_000)]);
    assert_eq!((other.delayed(), long.delayed()), (1, 0));
    assert_eq!(v.timer.stats().delayed, 1);
    assert_eq!(
        other.missed(),
        0,
        "every grid point was looked at: skipped, not missed"
    );
    v.step_to(2_010);
    assert_eq!(runs.all(), [(10, 2_000), (2_010, 2_010)]);
    assert_eq!(other.delayed(), 1);
}
