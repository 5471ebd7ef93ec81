//! The mio shell: event loops that carry the [`Monitor`](crate::monitor::Monitor)'s
//! decisions to real sockets.
//!
//! - [`Server`]: listens and serves connections on one loop thread, or on
//!   [`loops(n)`](ServerBuilder::loops) threads sharing the port with `SO_REUSEPORT`.
//! - [`Pool`]: many outbound connections on one loop (or [`loops(n)`](PoolBuilder::loops)),
//!   reconnecting with exponential backoff and full jitter, connects paced if asked
//!   ([`connect_rate`](PoolBuilder::connect_rate)).
//! - [`Handle`]: from any thread, send to or close a connection, read [`Snapshot`], shut
//!   down (loops joined, sockets closed).
//! - [`Handler`]: the application's callbacks, run on the loop thread.
//!
//! Transports: TCP; a Unix domain socket ([`Server::builder_unix`],
//! [`PoolBuilder::connect_unix`]); TLS over either (feature `tls`: `ServerBuilder::tls`,
//! `PoolBuilder::tls`). A TLS peer reaches the monitor and the handler once its handshake
//! completes, with ALPN and SNI in its [`ConnInfo`]; until then only
//! [`Options::handshake_timeout`] applies. The heartbeat, its format and its bound are the
//! same on every transport.
//!
//! # Ground rules
//! - Only the loop reads the clock, once per turn; everything else (the monitor,
//!   backoff, deadlines) is handed that one `now`.
//! - A peer can cost the loop only bounded work per turn (a read budget per
//!   connection; connections with bytes left over are served again next turn
//!   without waiting for an event) and bounded memory (the codec's frame cap, the
//!   write queue's cap).
//! - Heartbeats go on the connection's priority lane, so a ping or pong never
//!   waits behind megabytes of application data.
//! - Anything a peer does wrong closes that connection only, with a
//!   [`CloseReason`]; nothing a peer sends can stop a loop.
//!
//! # Memory per connection
//! An idle connection costs the driver one slot (transport, codec, write-queue
//! bookkeeping: 184 bytes in a debug build) and the endpoint one table entry
//! (state, monitor handle, queued and held byte counts: 52 bytes), both asserted
//! by a test, plus the monitor's peer entry and timer and the kernel's socket.
//! Buffers are allocated only while a frame is half-read or bytes wait to be
//! written, within the caps in [`Options`] and the loop's memory budget. The
//! demo measures the whole (RSS per connection, both ends in one process).
//! A TLS connection adds one boxed stream: rustls's state and keys, and buffers only
//! while records are in flight (see `wheelbeat_net::tls`).

mod framing;
pub mod handle;
pub mod handler;
mod pool;
mod server;
mod setters;
pub mod settings;
pub mod stats;
pub(crate) mod tls;
pub mod websocket;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wheelbeat_net::{ConnKey, DEFAULT_MAX_FRAME_LEN, SocketOptions};

use crate::format::{Format, JsonLines};
use crate::monitor::{self, DeadReason};
use crate::protocol::ProtocolError;

pub use framing::{CustomFraming, Framing, SharedFraming};
pub use handle::{Handle, SendError};
pub use handler::{ConnInfo, Context, Handler, TrySendError};
pub use pool::{Pool, PoolBuilder};
pub use server::{Server, ServerBuilder};
pub use settings::{SettingsError, StartError};
pub use stats::{DeadCounts, RttSummary, Snapshot};
pub use websocket::{HttpHook, SendAs, UpgradeHook, WsSettings};

pub(crate) use framing::AnyCodec;
pub(crate) use server::spawn_loops;

/// Names one connection of one loop, from any thread.
///
/// It carries a generation: once the connection is closed its id is stale for
/// good, even if the slot is reused, so commands sent late are ignored rather
/// than reaching a stranger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    loop_index: u32,
    key: ConnKey,
}

impl ConnId {
    pub(crate) fn new(loop_index: usize, key: ConnKey) -> ConnId {
        ConnId {
            loop_index: loop_index as u32,
            key,
        }
    }

    /// Index of the loop serving this connection.
    pub fn loop_index(self) -> usize {
        self.loop_index as usize
    }

    pub(crate) fn key(self) -> ConnKey {
        self.key
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conn {}:{}.{}",
            self.loop_index,
            self.key.index(),
            self.key.generation()
        )
    }
}

/// Why a connection was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The heartbeat monitor declared the peer dead.
    Dead(DeadReason),
    /// The peer closed the connection (end of stream, reset, or closed in the
    /// middle of a frame).
    PeerClosed,
    /// The peer broke the protocol (a frame that is not a JSON object, or over the
    /// frame cap); `{"error":"<reason>"}` was sent (best effort) before closing.
    Protocol(ProtocolError),
    /// The peer did not read: the write queue (or its priority lane) hit its cap.
    WriteOverflow,
    /// Another socket error (its message).
    Io(String),
    /// A pool's connect attempt failed or timed out before the connection was up.
    ConnectFailed(String),
    /// The loop's memory budget ([`Options::memory_budget`]) was exceeded and this
    /// connection held the most queued bytes: output its peer did not read, or an unfinished
    /// input frame.
    MemoryBudget,
    /// The loop was over 3/4 of its memory budget and this connection, among those holding
    /// the most, had its reads paused; it was still paused (it neither read its output nor
    /// was the pressure over) after the heartbeat bound, `interval × (1 + jitter) +
    /// max_missed × timeout + tick`. A paused peer is never convicted on silence (its answer
    /// may wait unread), so this bound stands in for the heartbeat's.
    PausedTooLong,
    /// The peer flooded pings past the ping-flood policy
    /// ([`Config::max_pings_per_interval`](crate::Config::max_pings_per_interval),
    /// [`max_ping_strikes`](crate::Config::max_ping_strikes)); its format's "too many pings"
    /// error was sent (best effort) before closing.
    TooManyPings,
    /// A [`Handler`] callback panicked while handling this connection. The panic was
    /// caught and logged; only this connection was closed and the loop goes on.
    HandlerPanicked,
    /// The peer sent its format's going-away notice ([`Inbound::GoAway`](crate::format::Inbound::GoAway),
    /// `{"goaway":N}` in JSON): it is draining. Not a failure: a pool reconnects after its
    /// backoff, and no dead verdict is counted.
    GoAway,
    /// This side was draining ([`Handle::drain`]) and the peer had not left by the deadline.
    DrainTimeout,
    /// Closed on request of the application (a [`Handle`] or a [`Context`]).
    Local,
    /// A TLS peer did not complete its handshake within [`Options::handshake_timeout`], or a
    /// WebSocket peer its upgrade within
    /// [`WsSettings::handshake_timeout`](crate::WsSettings::handshake_timeout). Counted in
    /// [`DeadCounts::handshake`]. A TLS peer never reached the monitor or the handler (the
    /// close is logged); a WebSocket peer did, and its handler hears `on_close` with this.
    HandshakeTimeout,
    /// A TLS handshake failed (garbage instead of a ClientHello, a certificate refused...):
    /// the message, which starts with `tls:`. Counted in [`DeadCounts::handshake`] and
    /// logged, like [`HandshakeTimeout`](Self::HandshakeTimeout).
    Handshake(String),
    /// The loop shut down.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Dead(r) => write!(f, "dead: {r}"),
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Protocol(r) => write!(f, "protocol error: {r}"),
            CloseReason::WriteOverflow => f.write_str("write queue full"),
            CloseReason::Io(e) => write!(f, "i/o error: {e}"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::HandlerPanicked => f.write_str("handler panicked"),
            CloseReason::TooManyPings => f.write_str("too many pings"),
            CloseReason::MemoryBudget => f.write_str("loop memory budget exceeded"),
            CloseReason::PausedTooLong => {
                f.write_str("reads paused by the memory budget for longer than the heartbeat bound")
            }
            CloseReason::GoAway => f.write_str("peer going away"),
            CloseReason::DrainTimeout => f.write_str("drain deadline passed"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::Handshake(e) => write!(f, "handshake failed: {e}"),
            CloseReason::Shutdown => f.write_str("shut down"),
        }
    }
}

/// Settings shared by servers and pools (the builders have setters for the
/// common ones).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Heartbeat settings, see [`monitor::Config`].
    pub heartbeat: monitor::Config,
    /// How frames are delimited on the wire (default: one per line; or the application's own,
    /// [`Framing::custom`]).
    pub framing: Framing,
    /// What the frames mean: which are heartbeats, how ours are written, active or passive
    /// (default [`JsonLines`]). See [`crate::format`].
    pub format: Arc<dyn Format>,
    /// Largest frame accepted or sent, in bytes (default 64 KiB). A longer one
    /// is a protocol error (`"frame too long"`).
    pub max_frame_len: usize,
    /// Bytes read from one connection per loop turn before the loop moves on
    /// to the others (default 64 KiB).
    pub read_budget: usize,
    /// Cap on bytes queued for one connection (default 1 MiB). An application
    /// send past it closes the connection ([`CloseReason::WriteOverflow`]);
    /// [`Context::try_send`] hands the frame back instead.
    pub write_cap: usize,
    /// Queued bytes above which a connection is reported not writable
    /// ([`Handler::on_writable_changed`] with `false`). Default (`None`): half the
    /// write cap (512 KiB with the default cap).
    pub write_high_watermark: Option<usize>,
    /// Queued bytes at or below which a connection reported not writable is reported
    /// writable again. Default (`None`): a sixteenth of the write cap (64 KiB).
    pub write_low_watermark: Option<usize>,
    /// Cap on the heap bytes all connections of one loop hold together (default 256 MiB):
    /// unread output, unfinished input frames, write-queue bookkeeping. Per-connection caps
    /// (`write_cap`, `max_frame_len`) multiply with the number of peers; this does not. When
    /// a turn ends above it, the connections holding the most are closed
    /// ([`CloseReason::MemoryBudget`]) until the loop is back under 7/8 of it, and once the
    /// pressure is over the freed memory is handed back to the operating system where the
    /// allocator allows (glibc's `malloc_trim`). Before that, above 3/4 of it, the loop stops
    /// reading the connections holding the most (those that do not read their output first)
    /// until the rest hold at most half; a paused connection is read again when the loop is
    /// back at half the budget or it holds nothing, and closed
    /// ([`CloseReason::PausedTooLong`]) if it is still paused after the heartbeat bound.
    pub memory_budget: usize,
    /// Longest a loop turn spends reading and parsing before it runs the timers (default
    /// 5 ms). Checked between frames: what is left is read first in the next turn, so peers
    /// that flood the loop with expensive frames delay the heartbeat timers by at most this
    /// (plus one frame's parse), and the loop's own turns never look like a pause.
    pub turn_budget: Duration,
    /// Capacity of each loop's command channel (default 65,536).
    pub command_capacity: usize,
    /// mio events taken per poll (default 1,024).
    pub events_capacity: usize,
    /// Options applied to every socket (default: `TCP_NODELAY` on).
    pub socket: SocketOptions,
    /// How long a pool's connect may take (default 5 s).
    pub connect_timeout: Duration,
    /// Most connects a pool starts per second, reconnects included (default: no
    /// limit beyond 256 in flight). A large pool opened at once makes both ends
    /// accept, register and first-ping thousands of peers in one burst; on a
    /// busy machine that can delay answers past the heartbeat timeout. Pacing
    /// turns the burst into a ramp (a burst of 10 ms worth is allowed).
    pub connect_rate: Option<u32>,
    /// WebSocket settings, used when [`framing`](Self::framing) is
    /// [`Framing::WebSocket`]. See [`websocket`].
    pub websocket: WsSettings,
    /// How long a TLS handshake may take (default 10 s,
    /// `wheelbeat_net::tls::DEFAULT_HANDSHAKE_TIMEOUT`). A peer is handed to the heartbeat
    /// monitor when its handshake completes, so a handshake in progress is never judged as
    /// silence; a server closes a peer whose handshake has not completed by then
    /// ([`CloseReason::HandshakeTimeout`]). A pool's handshake counts towards its
    /// `connect_timeout` as well. Unused without TLS.
    pub handshake_timeout: Duration,
    /// TLS on this loop's connections (feature `tls`; set with the builders' `tls` methods).
    pub(crate) tls: tls::TlsSettings,
}

impl Options {
    /// The watermarks in effect: `(low, high)`.
    pub(crate) fn watermarks(&self) -> (usize, usize) {
        (
            self.write_low_watermark.unwrap_or(self.write_cap / 16),
            self.write_high_watermark.unwrap_or(self.write_cap / 2),
        )
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            heartbeat: monitor::Config::default(),
            framing: Framing::Line,
            format: Arc::new(JsonLines),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            read_budget: wheelbeat_net::DEFAULT_READ_BUDGET,
            write_cap: wheelbeat_net::DEFAULT_WRITE_CAP,
            write_high_watermark: None,
            write_low_watermark: None,
            turn_budget: Duration::from_millis(5),
            memory_budget: 256 * 1024 * 1024,
            command_capacity: 65_536,
            events_capacity: 1024,
            socket: SocketOptions::default().nodelay(true),
            connect_timeout: Duration::from_secs(5),
            connect_rate: None,
            websocket: WsSettings::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            tls: tls::TlsSettings::default(),
        }
    }
}

/// How long a best-effort goodbye (an `{"error":...}` frame) may linger: the
/// loop drains at most this many unread bytes before closing so the kernel sends
/// FIN rather than RST (which could destroy the goodbye in flight).
pub(crate) const GOODBYE_DRAIN: usize = 256 * 1024;

/// Default TLS handshake timeout (the same as `wheelbeat_net::tls::DEFAULT_HANDSHAKE_TIMEOUT`).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default initial reconnect delay of a pool.
const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Default maximum reconnect delay of a pool.
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
