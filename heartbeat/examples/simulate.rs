//! cargo run --release -p wheelbeat-heartbeat --example simulate -- --conns 1000000
//!
//! Runs one [`Monitor`] with a million simulated connections in virtual time: every peer
//! answers pings after a simulated RTT, except a few (1% by default) that go silent at random
//! times. Reports the memory per connection (RSS delta, read from `/proc/self/statm`), the CPU
//! cost per heartbeat event, and checks the promise: every silent peer caught within
//! `t + interval × (1 + jitter) + max_missed × timeout + one tick` of its last frame, no live
//! peer ever convicted. Exits with status 1 on any violation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use wheelbeat_heartbeat::monitor::{Action, Config, Event, Monitor, PeerId};
use wheelbeat_heartbeat::protocol::Message;

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
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What the simulator knows about one simulated peer.
#[derive(Clone, Copy)]
struct SimPeer {
    id: PeerId,
    /// When it goes silent (ns since start), `u64::MAX` if never.
    silent_at: u64,
    /// When its last frame reached the monitor (ns since start).
    last_delivered: u64,
    /// When the monitor declared it dead.
    dead_at: Option<u64>,
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
    let ns = |d: Duration| d.as_nanos() as u64;
    let tick = ns(args.tick);
    let timeout_ticks = ns(args.timeout).div_ceil(tick);
    // The bound, from the last frame: interval × (1 + jitter) + max_missed × timeout (rounded
    // up to whole ticks, as the monitor does) + one tick.
    let bound = (ns(args.interval) as f64 * (1.0 + args.jitter)) as u64
        + u64::from(args.max_missed) * timeout_ticks * tick
        + tick;
    let end = ns(args.duration);
    let mut rng = fastrand::Rng::with_seed(args.seed ^ 0x5eed);

    // The simulator's own tables first, so the RSS delta below is the monitor's.
    let n = args.conns as usize;
    let mut peers: Vec<SimPeer> = Vec::with_capacity(n);
    let mut in_flight: BinaryHeap<Reverse<(u64, u32, u64)>> = BinaryHeap::with_capacity(n / 4);
    let rss_before = rss_bytes();
    let t0 = Instant::now();
    let mut monitor: Monitor<u32> = Monitor::with_capacity(config, t0, n);
    let at = |t: u64| t0 + Duration::from_nanos(t);

    let wall = Instant::now();
    for conn in 0..args.conns {
        let id = monitor.add(t0, conn);
        // Silent peers stop early enough that their verdict falls inside the run.
        let silent_at = if rng.f64() < args.silent && end > bound {
            rng.u64(0..end - bound)
        } else {
            u64::MAX
        };
        peers.push(SimPeer {
            id,
            silent_at,
            last_delivered: 0,
            dead_at: None,
        });
    }
    let add_time = wall.elapsed();
    let rss_added = rss_bytes();

    let wall = Instant::now();
    let mut monitor_time = Duration::ZERO;
    let (mut pings, mut pongs, mut false_positives) = (0u64, 0u64, 0u64);
    let rtt = ns(args.rtt);
    let mut now = 0u64;
    loop {
        let timer = monitor
            .poll_timeout()
            .map(|t| ns(t.saturating_duration_since(t0)));
        let pong = in_flight.peek().map(|Reverse((t, ..))| *t);
        let next = match (timer, pong) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => break,
            },
        };
        if next > end {
            break;
        }
        now = now.max(next);
        let started = Instant::now();
        // The shell's order: frames first, then timers.
        while let Some(&Reverse((t, conn, seq))) = in_flight.peek() {
            if t > now {
                break;
            }
            in_flight.pop();
            let p = &mut peers[conn as usize];
            monitor.handle_message(p.id, at(now), &Message::Pong(seq));
            p.last_delivered = now;
            pongs += 1;
        }
        if timer.is_some_and(|t| t <= now) {
            monitor.handle_timeout(at(now));
        }
        while let Some(action) = monitor.poll_action() {
            match action {
                Action::SendPing { conn, seq, .. } => {
                    pings += 1;
                    let p = &peers[conn as usize];
                    let answer_at = now + rtt / 2 + rng.u64(0..=rtt);
                    // A peer that goes silent before its answer would leave never answers.
                    if answer_at - rtt / 2 < p.silent_at {
                        in_flight.push(Reverse((answer_at, conn, seq)));
                    }
                }
                Action::Close { .. } | Action::SendPong { .. } => {}
            }
        }
        while let Some(event) = monitor.poll_event() {
            match event {
                Event::Dead { conn, .. } => {
                    let p = &mut peers[conn as usize];
                    p.dead_at = Some(now);
                    if p.silent_at == u64::MAX || now < p.silent_at {
                        false_positives += 1;
                    }
                }
                Event::LocalPause { stalled_for } => {
                    eprintln!("unexpected local pause of {stalled_for:?} in virtual time");
                }
                _ => {}
            }
        }
        monitor_time += started.elapsed();
    }
    let run_time = wall.elapsed();
    let rss_after = rss_bytes();

    // Check every silent peer.
    let (mut silent, mut caught, mut late, mut missed) = (0u64, 0u64, 0u64, 0u64);
    let mut worst_latency = 0u64;
    let mut worst_ratio = 0f64;
    for p in &peers {
        if p.silent_at == u64::MAX {
            continue;
        }
        silent += 1;
        let deadline = p.last_delivered + bound;
        match p.dead_at {
            Some(d) => {
                caught += 1;
                let latency = d - p.last_delivered;
                worst_latency = worst_latency.max(latency);
                worst_ratio = worst_ratio.max(latency as f64 / bound as f64);
                if d > deadline {
                    late += 1;
                }
            }
            None if deadline <= now.max(end) => missed += 1,
            None => {}
        }
    }
    let stats = monitor.stats();
    let events = pings + pongs;
    let mb = |b: u64| b as f64 / 1e6;
    println!("simulated {} connections for {:?} of virtual time", n, args.duration);
    println!(
        "  settings: interval {:?} ±{:.0}%, timeout {:?}, max_missed {}, tick {:?}, rtt ~{:?}",
        args.interval,
        args.jitter * 100.0,
        args.timeout,
        args.max_missed,
        args.tick,
        args.rtt
    );
    if let (Some(b), Some(a), Some(e)) = (rss_before, rss_added, rss_after) {
        println!(
            "  memory: {:.1} MB RSS after adding = {:.0} bytes/conn (peak during run {:.0} bytes/conn, incl. queues)",
            mb(a.saturating_sub(b)),
            a.saturating_sub(b) as f64 / n as f64,
            e.saturating_sub(b) as f64 / n as f64,
        );
    }
    println!(
        "  monitor tables: {} bytes/conn peer slot, {:.0} bytes/conn allocated by its own tables",
        Monitor::<u32>::slot_size(),
        monitor.table_bytes() as f64 / n as f64
    );
    println!(
        "  events: {pings} pings sent, {pongs} pongs received, {} timer expiries, {} lazy re-arms",
        stats.timer_fires, stats.rearms
    );
    println!(
        "  time: add {:.0} ns/conn; run {:.2?} wall = {:.0} ns per heartbeat event (ping or pong), \
         of which monitor calls {:.0} ns",
        add_time.as_nanos() as f64 / n as f64,
        run_time,
        run_time.as_nanos() as f64 / events.max(1) as f64,
        monitor_time.as_nanos() as f64 / events.max(1) as f64,
    );
    println!(
        "  silent peers: {silent}, caught {caught}, late {late}, missed {missed}; worst detection \
         {:.3} s vs bound {:.3} s ({:.1}% of it)",
        worst_latency as f64 / 1e9,
        bound as f64 / 1e9,
        worst_ratio * 100.0
    );
    println!("  live peers convicted: {false_positives}");
    if false_positives > 0 || late > 0 || missed > 0 || stats.local_pauses > 0 {
        println!("VIOLATION");
        return ExitCode::FAILURE;
    }
    println!("OK");
    ExitCode::SUCCESS
}
