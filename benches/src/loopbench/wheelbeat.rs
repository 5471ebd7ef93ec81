//! wheelbeat's heartbeat `Server` and client `Pool`, heartbeating as fast as they can.
//!
//! One server loop and one pool loop (a thread each, like the other modes), the pure
//! heartbeat handler `()`, a 1 ms tick, no jitter, and the run's interval (default 1 ms:
//! every connection pings after 1 ms of silence, which with thousands of connections is more
//! than the loops can serve, so they would run flat out) on the pool; the server's interval
//! is 10 s, so it only watches (as the tokio peer's server does). A round trip is a pong
//! received by either side.

use super::Running;
use std::io;
use std::time::Duration;
use wheelbeat_heartbeat::{Config, Pool, Server};

/// Both sides running.
pub struct Wheelbeat {
    server: Server,
    pool: Pool,
}

impl Wheelbeat {
    /// Connections the pool has established and the server holds.
    pub fn connected(&self) -> usize {
        let pool = self.pool.stats().connections;
        let server = self.server.stats().connections;
        pool.min(server) as usize
    }

    fn describe(&self) -> String {
        let (s, p) = (self.server.stats(), self.pool.stats());
        format!(
            "server: conns {} pings sent {} pongs {} pings received {} misses {}; \
             pool: conns {} pings sent {} pongs {} pings received {} misses {}",
            s.connections,
            s.pings_sent,
            s.pongs_received,
            s.pings_received,
            s.misses,
            p.connections,
            p.pings_sent,
            p.pongs_received,
            p.pings_received,
            p.misses,
        )
    }
}

impl Running for Wheelbeat {
    fn round_trips(&self) -> u64 {
        self.server.stats().pongs_received + self.pool.stats().pongs_received
    }
    fn failures(&self) -> u64 {
        self.server.stats().closed.total() + self.pool.stats().closed.total()
    }
    fn detail(&self) -> String {
        self.describe()
    }
}

impl Drop for Wheelbeat {
    fn drop(&mut self) {
        self.pool.shutdown();
        self.server.shutdown();
    }
}

/// The heartbeat settings of this mode: ping after `interval` of silence, 1 ms tick.
pub fn config(interval: Duration) -> Config {
    Config {
        interval,
        tick: Duration::from_millis(1),
        timeout: Duration::from_secs(5),
        jitter: 0.0,
        ..Config::default()
    }
}

/// The server's interval: long, so only the clients ping and the server just watches for
/// silence, as the tokio peer's server does with its read timeout (equal work per round trip).
const SERVER_INTERVAL: Duration = Duration::from_secs(10);

/// Starts the server, then a pool with `conns` connections to it.
pub fn start(conns: usize, interval: Duration) -> io::Result<Wheelbeat> {
    let server = Server::builder("127.0.0.1:0".parse().expect("an address"))
        .loops(1)
        .heartbeat(config(SERVER_INTERVAL.max(interval)))
        .start(|_| ())?;
    let pool = Pool::builder()
        .connect(server.local_addr(), conns)
        .heartbeat(config(interval))
        .start(|_| ())?;
    Ok(Wheelbeat { server, pool })
}
