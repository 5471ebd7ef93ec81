//! [`Pool`]: many outbound heartbeating connections on one event loop (or
//! several, [`PoolBuilder::loops`]), each
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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wheelbeat_net::PeerAddr;

use super::handle::{Handle, SendError};
use super::settings::validate_backoff;
use super::{
    ConnId, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, Handler, Options, Snapshot, StartError,
    spawn_loops,
};
use crate::endpoint::Target;

/// Builds a [`Pool`]. See [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    targets: Vec<(PeerAddr, usize)>,
    pub(super) opts: Options,
    backoff_initial: Duration,
    backoff_max: Duration,
    loops: usize,
}

impl PoolBuilder {
    super::setters::shared_setters!();

    /// Adds `n` connections to `addr`.
    pub fn connect(mut self, addr: SocketAddr, n: usize) -> Self {
        self.targets.push((PeerAddr::Tcp(addr), n));
        self
    }

    /// Adds `n` connections to the Unix domain stream socket at `path`. Of the socket
    /// options only `SO_SNDBUF` applies to a Unix socket.
    pub fn connect_unix(mut self, path: impl Into<PathBuf>, n: usize) -> Self {
        self.targets.push((PeerAddr::Unix(Some(path.into())), n));
        self
    }

    /// Reconnect delays: the first ceiling and the largest (defaults 100 ms and
    /// 10 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// How long one connect may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.opts.connect_timeout = timeout;
        self
    }

    /// Starts at most `per_sec` connects a second, reconnects included (default:
    /// no limit beyond 256 in flight). See [`Options::connect_rate`]. The rate is
    /// the whole pool's: with [`loops`](Self::loops) each loop gets its share.
    pub fn connect_rate(mut self, per_sec: u32) -> Self {
        self.opts.connect_rate = Some(per_sec);
        self
    }

    /// Event-loop threads (default 1). The connections are dealt over them in
    /// turn (connection `i` to loop `i % n`), each loop with its own handler.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n.max(1);
        self
    }

    /// Checks every setting ([`Options::validate`], and the backoff), spawns the pool's
    /// loops and starts connecting. `make_handler(i)` builds the handler of loop `i` (called
    /// once per loop, from this thread).
    ///
    /// A bad setting is [`StartError::Settings`], naming it; nothing is spawned.
    pub fn start<H, F>(self, mut make_handler: F) -> Result<Pool, StartError>
    where
        H: Handler,
        F: FnMut(usize) -> H,
    {
        self.opts.validate()?;
        validate_backoff(self.backoff_initial, self.backoff_max)?;
        let mut loops: Vec<_> = (0..self.loops).map(|_| (None, Vec::new())).collect();
        let all = self
            .targets
            .iter()
            .flat_map(|(addr, n)| std::iter::repeat_n(addr, *n));
        for (i, addr) in all.enumerate() {
            let addr = addr.clone();
            let target = Target::new(addr, self.backoff_initial, self.backoff_max);
            loops[i % self.loops].1.push(target);
        }
        let mut opts = self.opts.clone();
        // Each loop paces its own connects: split the pool's rate.
        opts.connect_rate = opts
            .connect_rate
            .map(|r| r.div_ceil(self.loops as u32).max(1));
        let handle = spawn_loops(loops, &opts, &mut make_handler, None)?;
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
///     .start(|_loop_index| ())?;
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
            loops: 1,
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

    /// Drains gracefully by `deadline` and joins the loops (see [`Handle::drain`]): stop
    /// connecting, tell every server this side is going away, close what is left at the
    /// deadline.
    pub fn drain(&self, deadline: std::time::Instant) {
        self.handle.drain(deadline);
    }

    /// Shuts down gracefully and joins the loop (see [`Handle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}
