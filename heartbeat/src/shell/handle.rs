//! The cross-thread [`Handle`]: send to, close or freeze a connection, read
//! statistics and shut the loops down, from any thread.
//!
//! # Ground rules
//! - Commands travel over a bounded crossbeam channel per loop, followed by a
//!   [`mio::Waker`] wake-up; the loop drains its channel once per turn. A full
//!   channel is back-pressure: the command is handed back
//!   ([`SendError::Full`]), never dropped silently and never blocking.
//! - Shutdown does not go through the channel (it must get through even when
//!   the channel is full): it is a flag plus a wake-up. Every loop then closes
//!   its sockets and returns; [`Handle::shutdown`] joins the threads.
//! - A [`ConnId`] names the loop it lives on, so a command goes to that loop
//!   only; a stale id (the connection closed, its slot reused) is ignored by
//!   the loop thanks to the generation inside it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use wheelbeat_net::PeerAddr;

use super::ConnId;
use super::stats::Snapshot;

/// A request to one loop.
#[derive(Debug)]
pub(crate) enum Command {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    Freeze(ConnId),
    Snapshot(Sender<Snapshot>),
}

/// What a loop shares with the handles.
#[derive(Debug)]
pub(crate) struct LoopLink {
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: Arc<mio::Waker>,
}

/// Shared between the loops and every handle: the shutdown flag, and how many loops ended
/// without being asked to.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) shutdown: AtomicBool,
    pub(crate) failed: AtomicUsize,
}

/// A command could not be delivered; the payload is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The loop's command channel is full: try again later.
    Full(T),
    /// The loop has shut down.
    Closed(T),
}

impl<T> SendError<T> {
    /// Takes back the value that could not be sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full(t) | SendError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("event loop command channel is full"),
            SendError::Closed(_) => f.write_str("event loop has shut down"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for SendError<T> {}

struct Inner {
    /// Emptied at shutdown, which closes the loops' wakers (eventfds) even if
    /// handles outlive the loops.
    loops: RwLock<Vec<LoopLink>>,
    n_loops: usize,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    thread_ids: Vec<ThreadId>,
    local_addr: Option<PeerAddr>,
}

/// A cheap, cloneable, `Send + Sync` handle to running event loops (a
/// [`Server`](crate::Server) or a [`Pool`](crate::Pool)).
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("loops", &self.inner.n_loops)
            .field("local_addr", &self.inner.local_addr)
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// How long [`Handle::stats`] waits for a loop's answer.
const STATS_WAIT: Duration = Duration::from_secs(5);

impl Handle {
    pub(crate) fn new(
        loops: Vec<LoopLink>,
        shared: Arc<Shared>,
        threads: Vec<JoinHandle<()>>,
        local_addr: Option<PeerAddr>,
    ) -> Handle {
        let thread_ids = threads.iter().map(|t| t.thread().id()).collect();
        Handle {
            inner: Arc::new(Inner {
                n_loops: loops.len(),
                loops: RwLock::new(loops),
                shared,
                threads: Mutex::new(threads),
                thread_ids,
                local_addr,
            }),
        }
    }

    /// The listening TCP address (servers on TCP only).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.inner.local_addr {
            Some(PeerAddr::Tcp(a)) => Some(*a),
            _ => None,
        }
    }

    /// Where the server listens: a TCP address or a Unix socket path (servers only).
    pub fn listen_addr(&self) -> Option<&PeerAddr> {
        self.inner.local_addr.as_ref()
    }

    /// Number of event-loop threads.
    pub fn loops(&self) -> usize {
        self.inner.n_loops
    }

    fn command(&self, conn: ConnId, cmd: Command) -> Result<(), SendError<Command>> {
        let loops = self.inner.loops.read();
        let Some(link) = loops.get(conn.loop_index()) else {
            return Err(SendError::Closed(cmd));
        };
        if self.is_shut_down() {
            return Err(SendError::Closed(cmd));
        }
        match link.tx.try_send(cmd) {
            Ok(()) => {
                // A failed wake-up means the loop's poll is gone, i.e. the
                // loop is exiting; the command then dies with it.
                let _ = link.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(c)) => Err(SendError::Full(c)),
            Err(TrySendError::Disconnected(c)) => Err(SendError::Closed(c)),
        }
    }

    /// Sends one application frame (a JSON object, unframed) to `conn`. It is
    /// queued behind earlier frames; a frame for a connection that has closed
    /// meanwhile is dropped by the loop.
    pub fn send(&self, conn: ConnId, frame: impl Into<Vec<u8>>) -> Result<(), SendError<Vec<u8>>> {
        self.command(conn, Command::Send(conn, frame.into()))
            .map_err(|e| {
                e.map(|c| match c {
                    Command::Send(_, f) => f,
                    _ => Vec::new(),
                })
            })
    }

    /// Closes `conn` (reason [`CloseReason::Local`](crate::CloseReason::Local)).
    /// A pool does not reconnect a connection closed this way.
    pub fn close(&self, conn: ConnId) -> Result<(), SendError<ConnId>> {
        self.command(conn, Command::Close(conn))
            .map_err(|e| e.map(|_| conn))
    }

    /// **Fault injection** for tests and the demo: the loop stops reading,
    /// writing and heartbeating `conn` but keeps its socket open, so the peer
    /// sees a hung process rather than a closed connection. The connection
    /// is closed (reason `Local`) at shutdown.
    pub fn freeze(&self, conn: ConnId) -> Result<(), SendError<ConnId>> {
        self.command(conn, Command::Freeze(conn))
            .map_err(|e| e.map(|_| conn))
    }

    /// A snapshot of the statistics of all loops, merged.
    ///
    /// Blocks until every loop answered (each answers at its next turn, at
    /// most 5 s). Loops that have shut down are skipped.
    /// Called from a handler, the loop running it is skipped (it cannot
    /// answer while it runs the handler).
    pub fn stats(&self) -> Snapshot {
        let me = thread::current().id();
        let loops = self.inner.loops.read();
        let mut waiting = Vec::with_capacity(loops.len());
        for (i, link) in loops.iter().enumerate() {
            if self.inner.thread_ids.get(i) == Some(&me) {
                continue;
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            // A full channel is retried until the deadline: stats requests
            // must not be lost to a burst of sends.
            let deadline = Instant::now() + STATS_WAIT;
            let mut cmd = Command::Snapshot(tx);
            loop {
                match link.tx.try_send(cmd) {
                    Ok(()) => {
                        let _ = link.waker.wake();
                        waiting.push(rx);
                        break;
                    }
                    Err(TrySendError::Full(c)) if Instant::now() < deadline => {
                        cmd = c;
                        thread::yield_now();
                    }
                    Err(_) => break,
                }
            }
        }
        drop(loops);
        let mut total = Snapshot::new();
        total.loops_failed = self.failed_loops() as u64;
        let deadline = Instant::now() + STATS_WAIT;
        for rx in waiting {
            if let Ok(s) = rx.recv_deadline(deadline) {
                total.merge(&s);
            }
        }
        total
    }

    /// `true` once [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shared.shutdown.load(Ordering::Acquire)
    }

    /// How many loops have ended without [`shutdown`](Self::shutdown) being called (their
    /// `poll` failed, or the loop itself panicked; a panicking handler callback does not end
    /// its loop). Their connections are closed and their counters are missing from
    /// [`stats`](Self::stats), which reports this number as
    /// [`Snapshot::loops_failed`]. Zero for a healthy server or pool.
    pub fn failed_loops(&self) -> usize {
        self.inner.shared.failed.load(Ordering::Acquire)
    }

    /// Shuts every loop down gracefully: each closes all its connections
    /// (handlers see `on_close` with
    /// [`CloseReason::Shutdown`](crate::CloseReason::Shutdown)) and its listener, then its thread
    /// exits. Waits for the threads, except when called from a loop thread
    /// (a handler), which cannot wait for itself; the other handles' later
    /// calls join it. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shared.shutdown.store(true, Ordering::Release);
        for link in self.inner.loops.read().iter() {
            let _ = link.waker.wake();
        }
        let me = thread::current().id();
        let mut threads = self.inner.threads.lock();
        let mut keep = Vec::new();
        for t in threads.drain(..) {
            if t.thread().id() == me {
                keep.push(t);
            } else if t.join().is_err() {
                log::error!("an event loop thread panicked");
            }
        }
        if keep.is_empty() {
            // Every loop has exited: release the channels and wakers.
            self.inner.loops.write().clear();
        }
        *threads = keep;
    }
}

impl<T> SendError<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::Full(t) => SendError::Full(f(t)),
            SendError::Closed(t) => SendError::Closed(f(t)),
        }
    }
}

/// Receiving end of a loop's commands.
pub(crate) type CommandRx = Receiver<Command>;
