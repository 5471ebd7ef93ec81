//! Pieces shared by the examples: CLI heartbeat flags, the live line, and
//! process figures read from `/proc` (no `unsafe`, no libc).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use wheelbeat_heartbeat::{Config, Snapshot};

/// Heartbeat flags common to every example.
#[derive(Debug, Clone, clap::Args)]
pub struct HeartbeatArgs {
    /// Ping a peer silent for this long (humantime: `1s`, `250ms`).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How long a ping waits for its pong.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Unanswered pings in a row before a peer is dead.
    #[arg(long, default_value_t = 3)]
    pub max_missed: u32,
    /// Jitter of the ping interval, as a fraction (0.1 = ±10 %).
    #[arg(long, default_value_t = 0.1)]
    pub jitter: f64,
}

impl HeartbeatArgs {
    /// The monitor configuration for these flags.
    pub fn config(&self, seed: u64) -> Config {
        Config {
            interval: self.interval,
            timeout: self.timeout,
            max_missed: self.max_missed,
            jitter: self.jitter,
            seed,
            ..Config::default()
        }
    }

    /// The detection bound: `interval × (1 + jitter) + max_missed × timeout + tick`.
    pub fn bound(&self) -> Duration {
        let c = self.config(0);
        c.interval.mul_f64(1.0 + c.jitter) + c.timeout * c.max_missed + c.tick
    }
}

/// Raises the soft descriptor limit to the hard one and checks that `need`
/// descriptors fit; otherwise explains and exits with status 2.
pub fn ensure_fds(need: u64, what: &str) {
    match wheelbeat_net::raise_fd_limit() {
        Ok(limit) if limit.soft >= need => {}
        Ok(limit) => {
            eprintln!(
                "error: {what} needs about {need} file descriptors, but the limit is {} (hard \
                 limit {}). Lower --conns, or raise the hard limit (ulimit -Hn) first.",
                limit.soft, limit.hard
            );
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("error: cannot read the descriptor limit: {e}");
            std::process::exit(2);
        }
    }
}

/// Raises the soft descriptor limit to the hard one and returns it (0 if it
/// cannot be read).
pub fn raise_fds() -> u64 {
    wheelbeat_net::raise_fd_limit().map_or(0, |l| l.soft)
}

/// Resident set size of this process, in bytes (`VmRSS` in `/proc/self/status`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system, all threads) of this process, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s: Linux
/// always reports `USER_HZ` = 100 there).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field 14 is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Prints one live line from two consecutive snapshots.
pub struct LiveLine {
    last: Snapshot,
    last_at: Instant,
    started: Instant,
}

impl LiveLine {
    /// Starts counting from `now`.
    pub fn new(first: Snapshot, now: Instant) -> LiveLine {
        LiveLine {
            last: first,
            last_at: now,
            started: now,
        }
    }

    /// Prints `t=… conns … pings/s … rtt p50/p99 … dead …` and remembers `s`.
    pub fn print(&mut self, s: Snapshot, now: Instant, extra: &str) {
        let rate = s.pings_per_sec_since(&self.last, now - self.last_at);
        let rtt = s.rtt();
        println!(
            "t={:>5.1}s  conns {:>6}  pings/s {:>7.0}  rtt p50 {:>8} p99 {:>8}  dead {:>5}{extra}",
            (now - self.started).as_secs_f64(),
            s.connections,
            rate,
            fmt_dur(rtt.p50),
            fmt_dur(rtt.p99),
            s.closed.missed_pings,
        );
        self.last = s;
        self.last_at = now;
    }
}

/// A duration with a unit that suits its size.
pub fn fmt_dur(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{}us", d.as_micros())
    }
}
