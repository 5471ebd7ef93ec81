//! The application trait: how code plugs into an event loop.
//!
//! # Ground rules
//! - Every callback runs **on the loop thread**, between two polls. A slow
//!   callback delays every connection of that loop (and their heartbeats),
//!   so hand heavy work to another thread.
//! - Callbacks never see a socket. They act through the [`Context`]: what
//!   they ask for (send, close) is queued and carried out by the loop right
//!   after the callback returns, which keeps the loop's borrow story simple
//!   and makes re-entrancy impossible.
//! - A panic in a callback is caught by the loop: the connection the callback
//!   was called for is closed with
//!   [`CloseReason::HandlerPanicked`]
//!   (counted in [`Snapshot::handler_panics`](crate::Snapshot::handler_panics),
//!   logged), what the callback had queued before panicking is still carried
//!   out, and every other connection carries on. The handler's own state is
//!   whatever the panic left: keep it consistent, or catch what you expect to
//!   fail.
//! - All methods have empty defaults, so `()` is a valid handler (pure
//!   heartbeat server) and an application overrides only what it needs.
//! - For one connection the order is: `on_connect`, then any number of
//!   `on_message` / `on_rtt` / `on_missed`, then at most one `on_dead`, then
//!   exactly one `on_close` (also on shutdown).

use std::io;
use std::time::{Duration, Instant};
use wheelbeat_net::PeerAddr;

use crate::endpoint::{QueueView, data_cost};
use crate::monitor::{Config, ConfigError, DeadReason, PeerConfig};

use super::{CloseReason, ConnId};

/// Addresses of a connection, given to [`Handler::on_connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// Our side of the connection (an IP address, or a Unix socket path).
    pub local: PeerAddr,
    /// The remote side (an unnamed Unix socket, usually, for a client of a socket path).
    pub peer: PeerAddr,
    /// `true` for connections the loop accepted, `false` for a pool's
    /// outbound connections.
    pub inbound: bool,
    /// TLS: the application protocol agreed by ALPN, if any.
    pub alpn: Option<Vec<u8>>,
    /// TLS, server side: the name the client asked for (SNI), if any.
    pub server_name: Option<String>,
}

/// Something a callback asked the loop to do.
#[derive(Debug)]
pub(crate) enum Op {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    SetHeartbeat(ConnId, PeerConfig),
}

/// What a callback may do to its loop. Requests are carried out right after
/// the callback returns, in order.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) ops: &'a mut Vec<Op>,
    pub(crate) now: Instant,
    pub(crate) loop_index: usize,
    /// The loop's heartbeat settings, against which per-connection overrides are checked.
    pub(crate) heartbeat: &'a Config,
    /// The loop's connections' queued bytes, for [`Context::try_send`].
    pub(crate) view: QueueView<'a>,
}

impl std::fmt::Debug for QueueView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueView")
    }
}

/// Why [`Context::try_send`] handed a frame back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrySendError {
    /// Queueing it would pass the connection's write cap (its peer is not reading fast
    /// enough): drop it, retry after [`Handler::on_writable_changed`] says `true`, or close.
    Full(Vec<u8>),
    /// The connection is not open on this loop (closed, frozen, or another loop's).
    Closed(Vec<u8>),
}

impl TrySendError {
    /// The frame handed back.
    pub fn into_inner(self) -> Vec<u8> {
        match self {
            TrySendError::Full(f) | TrySendError::Closed(f) => f,
        }
    }
}

impl Context<'_> {
    /// Queues one application frame for `conn` (a JSON object, without the
    /// framing: the codec adds it). Frames for a connection that has gone
    /// away are dropped.
    pub fn send(&mut self, conn: ConnId, frame: impl Into<Vec<u8>>) {
        self.ops.push(Op::Send(conn, frame.into()));
    }

    /// Queues one application frame for `conn` if it fits under the connection's write cap,
    /// else hands it back ([`TrySendError::Full`]) and the connection lives on: unlike
    /// [`send`](Self::send), whose overflow closes the connection
    /// ([`CloseReason::WriteOverflow`]). Counts what this callback already queued.
    pub fn try_send(
        &mut self,
        conn: ConnId,
        frame: impl Into<Vec<u8>>,
    ) -> Result<(), TrySendError> {
        let frame = frame.into();
        let Some(queued) = self.view.queued(conn) else {
            return Err(TrySendError::Closed(frame));
        };
        let pending: usize = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Send(id, f) if *id == conn => Some(data_cost(f.len())),
                _ => None,
            })
            .sum();
        if queued + pending + data_cost(frame.len()) > self.view.cap() {
            return Err(TrySendError::Full(frame));
        }
        self.ops.push(Op::Send(conn, frame));
        Ok(())
    }

    /// Bytes queued on `conn`'s data lane (frame bookkeeping included, what the write cap
    /// limits), as of this callback; `None` if it is not open on this loop.
    pub fn queued(&self, conn: ConnId) -> Option<usize> {
        self.view.queued(conn)
    }

    /// Closes `conn` (reason [`CloseReason::Local`]); unsent data is flushed
    /// best effort.
    pub fn close(&mut self, conn: ConnId) {
        self.ops.push(Op::Close(conn));
    }

    /// Sets `conn`'s heartbeat settings, say once the application has read the keep-alive its
    /// protocol announced (MQTT's CONNECT): `overrides` replace the loop's settings for this
    /// connection, and a new silence window starts from its last frame. Call it again to
    /// change them later. With a passive [`Format`](crate::format::Format) the connection
    /// stays passive unless `overrides.passive` says otherwise. An invalid combination is
    /// returned here, and changes nothing.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use wheelbeat_heartbeat::{ConnId, Context, Handler, monitor::PeerConfig};
    /// struct Mqtt;
    /// impl Handler for Mqtt {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
    ///         let keep_alive = Duration::from_secs(u64::from(frame[0])); // from CONNECT
    ///         let window = PeerConfig {
    ///             interval: Some(keep_alive.mul_f64(1.5)),
    ///             passive: Some(true),
    ///             ..PeerConfig::default()
    ///         };
    ///         if cx.set_heartbeat(conn, window).is_err() {
    ///             cx.close(conn); // keep-alive 0 or out of range: the application decides
    ///         }
    ///     }
    /// }
    /// ```
    pub fn set_heartbeat(
        &mut self,
        conn: ConnId,
        overrides: PeerConfig,
    ) -> Result<(), ConfigError> {
        self.heartbeat.validate_peer(&overrides)?;
        self.ops.push(Op::SetHeartbeat(conn, overrides));
        Ok(())
    }

    /// The loop's clock reading for this turn (the loop reads the clock once
    /// per turn).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Index of the loop running this callback (0 for a single loop).
    pub fn loop_index(&self) -> usize {
        self.loop_index
    }
}

/// The application's callbacks. See the [module docs](self) for the rules.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::{ConnId, Context, Handler};
///
/// /// Echoes every application frame back to its sender.
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
///         cx.send(conn, frame);
///     }
///     fn on_rtt(&mut self, _cx: &mut Context<'_>, conn: ConnId, rtt: Duration) {
///         log::debug!("{conn}: rtt {rtt:?}");
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler: Send + 'static {
    /// A connection is established (accepted, or a pool's connect completed).
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {}

    /// An application frame arrived: a JSON object that is not a heartbeat.
    /// It has been validated as a JSON object; the bytes are borrowed from the
    /// loop's read buffer and valid only during the call.
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {}

    /// A pong answered one of our pings after `rtt`.
    fn on_rtt(&mut self, cx: &mut Context<'_>, conn: ConnId, rtt: Duration) {}

    /// A ping went unanswered until the next retry on the monitor's grid (`timeout` after
    /// the previous one when the loop is on time); `missed` counts them in a row.
    fn on_missed(&mut self, cx: &mut Context<'_>, conn: ConnId, missed: u32) {}

    /// The heartbeat monitor declared the peer dead after `silent_for` without
    /// any frame from it. `on_close` follows.
    fn on_dead(
        &mut self,
        cx: &mut Context<'_>,
        conn: ConnId,
        reason: DeadReason,
        silent_for: Duration,
    ) {
    }

    /// The connection is closed (for whatever reason); `conn` is stale from now.
    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {}

    /// `conn`'s queued output crossed a watermark: `false` once it passed
    /// [`Options::write_high_watermark`](crate::Options::write_high_watermark) (its peer reads
    /// slower than we write: hold back, or use [`Context::try_send`]), `true` once it fell back
    /// to [`Options::write_low_watermark`](crate::Options::write_low_watermark).
    fn on_writable_changed(&mut self, cx: &mut Context<'_>, conn: ConnId, writable: bool) {}

    /// A pool failed to connect to `addr` (or to finish the TLS handshake there); it retries
    /// after a backoff.
    fn on_connect_error(&mut self, cx: &mut Context<'_>, addr: &PeerAddr, error: &io::Error) {}
}

/// The do-nothing handler: heartbeats only.
impl Handler for () {}
