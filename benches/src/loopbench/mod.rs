//! The heartbeat loop against its floor and a tokio peer (issue 5 item 3).
//!
//! # Ground rules
//!
//! - Three *modes*, each a server side and a client side on their own thread in one process,
//!   over `N` loopback connection pairs, every connection heartbeating as fast as it can:
//!   - [`floor`]: bare mio ping-pong, 8-byte fixed frames, no timer, no JSON, the next ping
//!     sent the moment the pong arrives. Nothing that heartbeats over these sockets can do
//!     the same round trips with less work, so it is the floor.
//!   - [`wheelbeat`]: wheelbeat's heartbeat `Server` and client `Pool`, 1 ms tick, pinging
//!     after the run's interval of silence (default 1 ms: with N in the thousands that is far
//!     more than two cores can serve, so the loops should run flat out).
//!   - [`tokio_peer`]: the same heartbeat written as a tokio user would: current-thread
//!     runtimes, a task per connection, `tokio::time::interval` (the same interval) on the
//!     client, serde_json lines through `BufReader::lines`, a read timeout per connection on
//!     the server.
//! - With a long interval (`--interval 200ms`) the offered load is below what any mode can
//!   serve, and the modes are compared at equal work: CPU per heartbeat and memory.
//! - Each mode runs in a child process of its own (`loopbench` re-executes itself), so memory
//!   figures are not polluted by an earlier mode and all modes still run in one invocation,
//!   interleaved over rounds.
//! - A child connects all `N` pairs, waits until each has completed a round trip (bounded
//!   wait), warms up, then measures over a window: round trips (pongs received, both sides),
//!   CPU time of the whole process (`/proc/self/stat` utime + stime, both threads and the
//!   kernel work they cause), resident set size (`/proc/self/statm`) and heap bytes (counting
//!   allocator) grown since before the first connection.

pub mod floor;
pub mod proc;
pub mod tokio_peer;
pub mod wheelbeat;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The modes, in table order (the floor first: ratios are to it and to tokio).
pub const MODES: [&str; 3] = ["floor", "wheelbeat", "tokio"];

/// What one child run measured; printed by the child as one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Which mode ran.
    pub mode: String,
    /// Connection pairs.
    pub conns: usize,
    /// Length of the measurement window, seconds.
    pub secs: f64,
    /// Heartbeat round trips completed in the window (pongs received, both sides).
    pub round_trips: u64,
    /// CPU time of the process in the window (user + system), nanoseconds.
    pub cpu_ns: u64,
    /// Of which user time, nanoseconds.
    pub user_ns: u64,
    /// Resident set growth since before the first connection, bytes.
    pub rss_bytes: u64,
    /// Heap bytes live now minus before the first connection.
    pub heap_bytes: u64,
    /// Connections that failed or died during the run (must be 0).
    pub failures: u64,
    /// Diagnostic counters of the mode, if it has any.
    pub detail: String,
}

impl Report {
    /// Round trips per second.
    pub fn rate(&self) -> f64 {
        self.round_trips as f64 / self.secs
    }

    /// CPU nanoseconds per heartbeat round trip.
    pub fn cpu_per_rt(&self) -> f64 {
        self.cpu_ns as f64 / self.round_trips.max(1) as f64
    }

    /// Resident bytes per connection pair.
    pub fn rss_per_conn(&self) -> f64 {
        self.rss_bytes as f64 / self.conns as f64
    }

    /// Heap bytes per connection pair.
    pub fn heap_per_conn(&self) -> f64 {
        self.heap_bytes as f64 / self.conns as f64
    }
}

/// How one child run is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connection pairs.
    pub conns: usize,
    /// Running time before the window opens.
    pub warmup: Duration,
    /// The measurement window.
    pub window: Duration,
    /// Heartbeat interval of the wheelbeat and tokio modes (the floor has none).
    pub interval: Duration,
}

/// A running mode: both sides up and connected. `round_trips` and `failures` are read at
/// the window's edges; dropping it stops both sides.
pub trait Running {
    /// Round trips completed so far.
    fn round_trips(&self) -> u64;
    /// Connections lost so far.
    fn failures(&self) -> u64;
    /// Diagnostic counters, for the report.
    fn detail(&self) -> String {
        String::new()
    }
}

/// Waits until `ready()` holds, checking every few milliseconds, for at most `limit`.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Runs `plan` for a mode already started (`running`), measures and returns the report.
/// `before` is the process state sampled before the mode started.
pub fn measure(mode: &str, plan: Plan, before: proc::Sample, running: &dyn Running) -> Report {
    std::thread::sleep(plan.warmup);
    let start = proc::Sample::now();
    let rt0 = running.round_trips();
    std::thread::sleep(plan.window);
    let rt1 = running.round_trips();
    let end = proc::Sample::now();
    Report {
        mode: mode.to_string(),
        conns: plan.conns,
        secs: end.wall.duration_since(start.wall).as_secs_f64(),
        round_trips: rt1 - rt0,
        cpu_ns: end.cpu_ns.saturating_sub(start.cpu_ns),
        user_ns: end.user_ns.saturating_sub(start.user_ns),
        rss_bytes: end.rss_bytes.saturating_sub(before.rss_bytes),
        heap_bytes: end.heap_bytes.saturating_sub(before.heap_bytes),
        failures: running.failures(),
        detail: running.detail(),
    }
}
