//! Helpers shared by the real-socket tests: a handler that reports every
//! callback on a channel, and bounded waits (no sleeping as synchronisation).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use wheelbeat_heartbeat::{CloseReason, ConnId, ConnInfo, Context, DeadReason, Handler, PeerAddr};

/// One handler callback, as seen by a test.
#[derive(Debug, Clone)]
pub enum Seen {
    /// `on_connect`.
    Connect(ConnId, ConnInfo),
    /// `on_message`.
    Message(ConnId, Vec<u8>),
    /// `on_dead`.
    Dead(ConnId, DeadReason, Duration, Instant),
    /// `on_close`.
    Close(ConnId, CloseReason),
    /// `on_connect_error`.
    ConnectError(PeerAddr),
}

/// Forwards callbacks to a channel; optionally echoes application frames.
#[derive(Clone)]
pub struct Reporter {
    tx: Sender<Seen>,
    echo: bool,
}

/// A reporter and the receiving end of its channel.
pub fn reporter(echo: bool) -> (Reporter, Receiver<Seen>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Reporter { tx, echo }, rx)
}

impl Handler for Reporter {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {
        let _ = self.tx.send(Seen::Connect(conn, info.clone()));
    }
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
        if self.echo {
            cx.send(conn, frame);
        }
        let _ = self.tx.send(Seen::Message(conn, frame.to_vec()));
    }
    fn on_dead(
        &mut self,
        _cx: &mut Context<'_>,
        conn: ConnId,
        reason: DeadReason,
        silent_for: Duration,
    ) {
        let _ = self
            .tx
            .send(Seen::Dead(conn, reason, silent_for, Instant::now()));
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        let _ = self.tx.send(Seen::Close(conn, reason.clone()));
    }
    fn on_connect_error(&mut self, _cx: &mut Context<'_>, addr: &PeerAddr, _e: &std::io::Error) {
        let _ = self.tx.send(Seen::ConnectError(addr.clone()));
    }
}

/// Receives from `rx` until `pick` returns `Some` or `deadline` passes.
pub fn wait_for<T>(
    rx: &Receiver<Seen>,
    deadline: Instant,
    mut pick: impl FnMut(&Seen) -> Option<T>,
) -> Option<T> {
    loop {
        let ev = rx.recv_deadline(deadline).ok()?;
        if let Some(t) = pick(&ev) {
            return Some(t);
        }
    }
}

/// Polls `cond` until it holds or `within` passes; waits by blocking on `rx` (the
/// reporter channel: any callback wakes it) for at most 20 ms at a time, never by sleeping
/// blindly.
pub fn wait_until<T>(rx: &Receiver<T>, within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        let _ = rx.recv_timeout(Duration::from_millis(20));
    }
}

/// Raises the soft descriptor limit; panics with a clear message if `need`
/// descriptors cannot fit.
pub fn need_fds(need: u64) {
    let limit = wheelbeat_net::raise_fd_limit().expect("raise the fd limit");
    assert!(
        limit.soft >= need,
        "this test needs {need} descriptors, the limit is {} (hard {})",
        limit.soft,
        limit.hard
    );
}

/// Heartbeat settings for tests.
pub fn heartbeat(
    interval_ms: u64,
    timeout_ms: u64,
    max_missed: u32,
) -> wheelbeat_heartbeat::Config {
    wheelbeat_heartbeat::Config {
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        max_missed,
        ..Default::default()
    }
}

/// Whether a received frame is the server's own ping: a raw test client
/// skips those, because a new peer's first ping may come at any moment of
/// its first window (spread over `(0, interval × (1 + jitter)]`).
pub fn is_server_ping(frame: &[u8]) -> bool {
    frame.starts_with(b"{\"ping\":")
}

/// Reads the next line that is not a server ping; `None` once the stream
/// ends. Panics on a read error (a test's read timeout included).
pub fn next_line(r: &mut impl std::io::BufRead) -> Option<String> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).expect("read a line") == 0 {
            return None;
        }
        if !is_server_ping(line.as_bytes()) {
            return Some(line);
        }
    }
}

/// Reads the next 4-byte-length-prefixed frame that is not a server ping.
pub fn next_length_frame(r: &mut impl std::io::Read) -> Vec<u8> {
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).expect("read a length prefix");
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        r.read_exact(&mut body).expect("read a frame body");
        if !is_server_ping(&body) {
            return body;
        }
    }
}

/// The port of a TCP address (0 for a Unix socket).
pub fn port(addr: &PeerAddr) -> u16 {
    match addr {
        PeerAddr::Tcp(a) => a.port(),
        _ => 0,
    }
}

/// A size from the environment (`name`), or `default`: the memory tests run at CI size by
/// default and at the sizes when asked.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's resident set size, in bytes (Linux; 0 elsewhere).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
