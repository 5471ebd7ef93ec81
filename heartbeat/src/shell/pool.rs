//! [`Pool`]: many outbound heartbeating connections on one event loop, each
//! reconnected after a loss with exponential backoff and full jitter.
//!
//! # Ground rules
//! - A connection lost by accident (dead peer, reset, refused connect,
//!   protocol error) is reconnected after `rand(0, min(max, initial × 2ⁿ))`,
//!   `n` being the failures in a row; the count resets once connected.
//! - A connection closed on purpose ([`Handle::close`], [`Context::close`]
//!   (crate::Context::close), shutdown) is not reconnected.
//! - At most 256 connects are in flight at once, so opening thousands of
//!   connections does not overflow the server's accept backlog; with
//!   [`PoolBuilder::connect_rate`], at most that many start per second.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::event_loop::Target;
use super::handle::{Handle, SendError};
use super::{
    ConnId, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, Framing, Handler, Options, Snapshot,
    spawn_loops,
};
use crate::monitor;

/// Builds a [`Pool`]. See [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    targets: Vec<(SocketAddr, usize)>,
    opts: Options,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl PoolBuilder {
    /// Adds `n` connections to `addr`.
    pub fn connect(mut self, addr: SocketAddr, n: usize) -> Self {
        self.targets.push((addr, n));
        self
    }

    /// Heartbeat settings of the client side.
    pub fn heartbeat(mut self, config: monitor::Config) -> Self {
        self.opts.heartbeat = config;
        self
    }

    /// All shell settings at once.
    pub fn options(mut self, opts: Options) -> Self {
        self.opts = opts;
        self
    }

    /// Reconnect delays: the first ceiling and the largest (defaults 100 ms and
    /// 10 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// How frames are delimited (default [`Framing::Line`]); must match the server.
    pub fn framing(mut self, framing: Framing) -> Self {
        self.opts.framing = framing;
        self
    }

    /// How long one connect may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.opts.connect_timeout = timeout;
        self
    }

    /// Starts at most `per_sec` connects a second, reconnects included (default:
    /// no limit beyond 256 in flight). See [`Options::connect_rate`].
    pub fn connect_rate(mut self, per_sec: u32) -> Self {
        self.opts.connect_rate = Some(per_sec);
        self
    }

    /// Spawns the pool's loop and starts connecting.
    pub fn start<H: Handler>(self, handler: H) -> io::Result<Pool> {
        self.opts
            .heartbeat
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut targets = Vec::new();
        for (addr, n) in &self.targets {
            for _ in 0..*n {
                targets.push(Target::new(*addr, self.backoff_initial, self.backoff_max));
            }
        }
        let mut handler = Some(handler);
        let mut make = |_| handler.take().expect("one loop, one handler");
        let handle = spawn_loops(vec![(None, targets)], &self.opts, &mut make, None)?;
        Ok(Pool { handle })
    }
}

/// A running client pool.
///
/// ```no_run
/// use wheelbeat_heartbeat::{Config, Pool};
///
/// # fn main() -> std::io::Result<()> {
/// let pool = Pool::builder()
///     .connect("127.0.0.1:7000".parse().unwrap(), 1000)
///     .heartbeat(Config::default())
///     .start(())?;
/// println!("{} connections", pool.stats().connections);
/// pool.shutdown();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Pool {
    handle: Handle,
}

impl Pool {
    /// A builder with no targets yet.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            targets: Vec::new(),
            opts: Options::default(),
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
        }
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The pool's statistics (see [`Handle::stats`]).
    pub fn stats(&self) -> Snapshot {
        self.handle.stats()
    }

    /// Sends an application frame to `conn` (see [`Handle::send`]).
    pub fn send(&self, conn: ConnId, frame: impl Into<Vec<u8>>) -> Result<(), SendError<Vec<u8>>> {
        self.handle.send(conn, frame)
    }

    /// Shuts down gracefully and joins the loop (see [`Handle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}
