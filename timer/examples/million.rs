//! `cargo run --release -p wheelbeat-timer --example million -- [entries] [seconds] [workers]`
//!
//! Issue 13's service measurement: `entries` (default 1,000,000) forever entries at a 1 s
//! interval, each with a random phase, on the default builder (1 ms tick, the default worker
//! pool; pass `workers` to override it, `0` for inline). After a warm-up (adding them and one
//! full interval) it watches `seconds` (default 10) and prints the runs made, the runs missed,
//! the lateness of each run (start minus due: p50 / p99 / max), and the CPU time of the timer
//! thread and of the workers, read from `/proc` (Linux only; elsewhere shown as n/a).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wheelbeat_timer::service::Timer;

/// Lateness histogram: one bucket per 10 µs up to 10 s, the last bucket for anything later.
struct Lateness {
    buckets: Vec<AtomicU64>,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 1_000_000;

impl Lateness {
    fn new() -> Self {
        Lateness {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, late: Duration) {
        let i = (late.as_micros() as u64 / BUCKET_US).min(BUCKETS as u64 - 1) as usize;
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// (count, p50, p99, max) in milliseconds (upper bucket edges).
    fn summary(&self) -> (u64, f64, f64, f64) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| {
            let want = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return ((i as u64 + 1) * BUCKET_US) as f64 / 1e3;
                }
            }
            f64::NAN
        };
        let max = counts
            .iter()
            .rposition(|&c| c > 0)
            .map_or(f64::NAN, |i| ((i as u64 + 1) * BUCKET_US) as f64 / 1e3);
        (total, at(0.5), at(0.99), max)
    }
}

/// User + system CPU seconds of this process's threads whose name is `name`, or whose name
/// starts with `prefix` when `prefix` is true.
fn thread_cpu(name: &str, prefix: bool) -> Option<f64> {
    let ticks_per_s = 100.0; // USER_HZ, 100 on every Linux target in practice
    let mut total = 0u64;
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        let comm = comm.trim_end();
        if comm == name || (prefix && comm.starts_with(name)) {
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // Fields after the parenthesised name: state is field 3; utime, stime are 14, 15.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            found = true;
        }
    }
    found.then_some(total as f64 / ticks_per_s)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("entries"));
    let secs: u64 = args.next().map_or(10, |a| a.parse().expect("seconds"));
    let workers: Option<usize> = args.next().map(|a| a.parse().expect("workers"));

    let mut builder = Timer::builder().thread_name("million");
    if let Some(w) = workers {
        builder = builder.workers(w);
    }
    let timer = builder.build().expect("timer threads");
    let interval = Duration::from_secs(1);
    let lateness = Arc::new(Lateness::new());
    let watching = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU64::new(0));
    let mut rng = fastrand::Rng::with_seed(13);

    let t0 = Instant::now();
    for _ in 0..entries {
        let (lateness, watching, runs) = (lateness.clone(), watching.clone(), runs.clone());
        let phase = Duration::from_nanos(rng.u64(0..1_000_000_000));
        timer.delay_add(phase, interval, move |ctx| {
            if watching.load(Ordering::Relaxed) {
                lateness.record(ctx.started().saturating_duration_since(ctx.due()));
                runs.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let added = t0.elapsed();
    // Every entry first runs 1-2 s after it was added: let them all start.
    std::thread::sleep(Duration::from_secs(2) + interval);

    let before = timer.stats();
    let cpu_timer = thread_cpu("million", false);
    let cpu_workers = thread_cpu("million-worker-", true);
    watching.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    watching.store(false, Ordering::Relaxed);
    let wall = start.elapsed().as_secs_f64();
    let after = timer.stats();
    let cpu = |now: Option<f64>, then: Option<f64>| match (now, then) {
        (Some(a), Some(b)) => format!("{:.2} core", (a - b) / wall),
        _ => "n/a".to_owned(),
    };
    let cpu_timer = cpu(thread_cpu("million", false), cpu_timer);
    let cpu_workers = cpu(thread_cpu("million-worker-", true), cpu_workers);

    let (count, p50, p99, max) = lateness.summary();
    println!(
        "{entries} forever entries at {interval:?}, random phase, tick {:?}, workers {}; added in {added:.2?}",
        timer.tick(),
        workers.map_or("default".to_owned(), |w| w.to_string()),
    );
    println!(
        "watched {wall:.1} s: {count} runs ({:.0}/s), missed {}, skipped {}",
        count as f64 / wall,
        after.missed - before.missed,
        after.skipped - before.skipped,
    );
    println!("lateness: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
    println!("CPU: timer thread {cpu_timer}, workers {cpu_workers}");
    println!("runs counted by the jobs: {}", runs.load(Ordering::Relaxed));
    timer.close();
}
