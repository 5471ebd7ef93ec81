//! cargo run --release -p wheelbeat-heartbeat --example simulate -- --conns 1000000
//!
//! Runs one [`Monitor`] with a million simulated connections in virtual time: every peer
//! answers pings after a simulated RTT, except a few (1% by default) that go silent at random
//! times. Reports the memory per connection (RSS delta, read from `/proc/self/statm`), the CPU
//! cost per heartbeat event, and checks the promise: every silent peer caught within
//! `t + interval × (1 + jitter) + max_missed × timeout + one tick` of its last frame (plus
//! `late + ceil_tick(late)` with `--late`, a loop that wakes up late at random), no live peer
//! ever convicted. Exits with status 1 on any violation.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use wheelbeat_heartbeat::monitor::{Config, Monitor};
use wheelbeat_heartbeat::sim::{Crowd, CrowdSettings};

/// Simulate a monitor with many connections in virtual time.
#[derive(Debug, Parser)]
struct Args {
    /// Number of simulated connections.
    #[arg(long, default_value_t = 1_000_000)]
    conns: u32,
    /// Simulated time to run.
    #[arg(long, default_value = "5min", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Ping a peer silent for this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// How long a ping waits for its answer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Unanswered pings in a row before a peer is dead.
    #[arg(long, default_value_t = 3)]
    max_missed: u32,
    /// Jitter of the interval, as a fraction.
    #[arg(long, default_value_t = 0.1)]
    jitter: f64,
    /// Timer wheel resolution.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    tick: Duration,
    /// Mean round-trip time of a live peer (each answer takes 0.5× to 1.5× this).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    rtt: Duration,
    /// Fraction of peers that go silent at a random time.
    #[arg(long, default_value_t = 0.01)]
    silent: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Let the simulated loop wake up to this late for each timer (uniform at random), as a
    /// real event loop does. Must stay under the timeout.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    late: Duration,
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (in clock ticks of
/// 10 ms, the value of `CLK_TCK` on Linux). Wall time is misleading on a shared machine.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        interval: args.interval,
        timeout: args.timeout,
        max_missed: args.max_missed,
        jitter: args.jitter,
        tick: args.tick,
        seed: args.seed,
        ..Config::default()
    };
    if let Err(e) = config.validate() {
        eprintln!("invalid settings: {e}");
        return ExitCode::from(2);
    }
    let n = args.conns as usize;
    // The crowd's own tables first, so the RSS delta below is the monitor's.
    let mut crowd = Crowd::new(CrowdSettings {
        conns: args.conns,
        duration: args.duration,
        rtt: args.rtt,
        silent: args.silent,
        seed: args.seed ^ 0x5eed,
        late: args.late,
    });
    let rss_before = rss_bytes();
    let wall = Instant::now();
    crowd.populate(config);
    let add_time = wall.elapsed();
    let rss_added = rss_bytes();

    let wall = Instant::now();
    let cpu_before = cpu_time();
    let r = crowd.run();
    let run_time = wall.elapsed();
    let run_cpu = cpu_time().zip(cpu_before).map(|(a, b)| a.saturating_sub(b));
    let rss_after = rss_bytes();

    let events = r.pings + r.pongs;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "simulated {n} connections for {:?} of virtual time",
        args.duration
    );
    println!(
        "  settings: interval {:?} ±{:.0}%, timeout {:?}, max_missed {}, tick {:?}, rtt ~{:?}, \
         loop late by up to {:?}",
        args.interval,
        args.jitter * 100.0,
        args.timeout,
        args.max_missed,
        args.tick,
        args.rtt,
        args.late
    );
    if let (Some(b), Some(a), Some(e)) = (rss_before, rss_added, rss_after) {
        println!(
            "  memory: {:.1} MB RSS after adding = {:.0} bytes/conn (at the end {:.0} bytes/conn, \
             queues included)",
            mb(a.saturating_sub(b)),
            a.saturating_sub(b) as f64 / n as f64,
            e.saturating_sub(b) as f64 / n as f64,
        );
    }
    println!(
        "  monitor accounting: {} bytes/conn steady state (slot {} + timer), {:.0} bytes/conn \
         allocated at the end (tables + wheel + queues' capacity)",
        Monitor::<u32>::bytes_per_peer(),
        Monitor::<u32>::slot_size(),
        r.memory_bytes as f64 / n as f64
    );
    println!(
        "  events: {} pings sent, {} pongs received, {} timer expiries, {} lazy re-arms",
        r.pings, r.pongs, r.stats.timer_fires, r.stats.rearms
    );
    println!(
        "  wall: add {:.0} ns/conn; run {:.2?} = {:.0} ns per heartbeat event (ping or pong), \
         of which monitor calls {:.0} ns",
        add_time.as_nanos() as f64 / n as f64,
        run_time,
        run_time.as_nanos() as f64 / events.max(1) as f64,
        r.monitor_wall.as_nanos() as f64 / events.max(1) as f64,
    );
    if let Some(cpu) = run_cpu {
        println!(
            "  cpu: {:.2} s user+sys for the run = {:.0} ns CPU per heartbeat event (whole \
             simulation)",
            cpu.as_secs_f64(),
            cpu.as_nanos() as f64 / events.max(1) as f64
        );
    }
    println!(
        "  silent peers: {}, caught {}, late {}, early {}, missed {}; worst detection {:.4} s vs \
         bound {:.4} s, allowed {:.4} s ({} beyond the bound alone)",
        r.silent,
        r.caught,
        r.late,
        r.early,
        r.missed,
        r.worst_detection.as_secs_f64(),
        r.bound.as_secs_f64(),
        r.allowed.as_secs_f64(),
        r.beyond_bound,
    );
    println!("  live peers convicted: {}", r.false_positives);
    if !r.ok() {
        println!("VIOLATION");
        return ExitCode::FAILURE;
    }
    println!("OK");
    ExitCode::SUCCESS
}
