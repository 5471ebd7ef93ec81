//! WebSocket (RFC 6455) as a protocol of the shell: settings, and the heartbeat format a
//! WebSocket loop uses.
//!
//! A server or pool speaks WebSocket with [`ServerBuilder::websocket`](crate::ServerBuilder::websocket)
//! / [`PoolBuilder::websocket`](crate::PoolBuilder::websocket). The protocol itself is
//! `wheelbeat_net::ws` (codec, [`Session`](wheelbeat_net::ws::Session)); the shell adds:
//!
//! - **Per-connection state.** The per-frame [`Format`] is stateless, WebSocket is not (upgrade,
//!   message assembly, the close handshake). The driver keeps a protocol enum per connection,
//!   plain or WebSocket, the latter holding a `Session` (56 bytes, no heap while idle) next to
//!   the connection; the session classifies each frame and the endpoint is handed what it was
//!   (data, pong, or just a sign of life). Nothing else of the endpoint changes.
//! - **The heartbeat is the RFC's ping/pong.** Pings carry the sequence number as their
//!   8-byte payload (`Control::ping_seq`); every peer, browsers included, echoes it in its
//!   pong, so RTT and the dead bound work with no JavaScript. Pings from the peer are
//!   answered by the session. Every frame is a sign of life. [`WsSettings::passive`] makes
//!   this side never ping and judge by silence alone.
//! - **Messages.** Text and binary messages go to
//!   [`Handler::on_message`](crate::Handler::on_message) as bytes; what the handler sends is
//!   framed as one message of the kind [`SendAs`] says.
//! - **The upgrade.** A server answers the upgrade request (any path, or
//!   [`WsSettings::path`]; [`WsSettings::hook`] sees `Origin` and the subprotocols and may
//!   refuse with an HTTP status; [`WsSettings::http`] may answer plain `GET`s, e.g. with the
//!   page that opens the WebSockets); a bad request gets a 400 (or the hook's status) and only
//!   that connection is closed. A pool sends an upgrade request with a random key. Until the
//!   upgrade completes nothing else is sent: pings are not due yet (the first one comes an
//!   interval after the connect, later than the handshake timeout by default) and are
//!   dropped if they are. Messages the handler sends before the upgrade completes (a
//!   greeting from `on_connect`) are framed and kept, up to half the write cap, and follow
//!   the 101 in order; beyond that the connection is closed as a write overflow, and if the
//!   upgrade never completes they are dropped. A peer that has not finished its upgrade within
//!   [`WsSettings::handshake_timeout`] is closed.
//! - **The close.** A peer's close is answered with its code and the connection ends as
//!   [`CloseReason::PeerClosed`](crate::CloseReason::PeerClosed); any close of ours (local,
//!   dead, shutdown) sends a close frame with code 1000 first, behind the messages already
//!   queued, then shuts the write side, so the peer reads the close before the FIN. A
//!   protocol error sends the RFC's code for it (1002, 1007, 1009...).
//! - **`wss://`.** With the builders' `tls` methods as well, the upgrade runs inside the TLS
//!   stream once its handshake is done (the handshake timeout of [`WsSettings`] counts from
//!   then): WebSocket over TLS over TCP or a Unix socket, nothing else changes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wheelbeat_net::ws::{Control, Decision, Request, Role};

use crate::format::{Format, Inbound};
use crate::protocol::ProtocolError;

/// The application's upgrade hook: sees the request (path, `Origin`, subprotocols offered)
/// and accepts, choosing a subprotocol, or refuses with an HTTP status.
pub type UpgradeHook = Arc<dyn Fn(&Request<'_>) -> Decision + Send + Sync>;

/// The application's answer to a plain HTTP `GET` (a request without `Upgrade: websocket`),
/// given its path (query included): the whole HTTP response, sent before the connection is
/// closed; `None` answers as to any bad upgrade request (a 400). For a page or a health check
/// next to the WebSocket endpoint, not a web server: one request per connection.
pub type HttpHook = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// The kind of WebSocket message the handler's sends become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SendAs {
    /// A text message if the bytes are UTF-8, a binary one otherwise (the default).
    #[default]
    Text,
    /// The kind of the last message received on the connection (text before any): what an
    /// echo or request/response server wants.
    LikeReceived,
}

/// WebSocket settings of a server or pool ([`Options::websocket`](crate::Options::websocket)).
/// Frame cap: [`Options::max_frame_len`](crate::Options::max_frame_len) (payload bytes).
#[derive(Clone)]
#[non_exhaustive]
pub struct WsSettings {
    /// Server: the only path upgraded (query ignored); other paths get a 404. Pool: the
    /// request target. Default: any path (pool: `/`).
    pub path: Option<String>,
    /// Server: decides each upgrade after the path check (default: accept, no subprotocol).
    pub hook: Option<UpgradeHook>,
    /// Server: answers plain HTTP `GET`s (default: none, they get a 400).
    pub http: Option<HttpHook>,
    /// Cap on one message's payload, fragments assembled (default 64 KiB).
    pub max_message_len: usize,
    /// Longest the upgrade may take from the accept or connect (default 5 s).
    pub handshake_timeout: Duration,
    /// What the handler's sends become (default [`SendAs::Text`]).
    pub send_as: SendAs,
    /// Never ping; judge each peer by its silence alone (see [`Format::passive`]).
    pub passive: bool,
}

impl Default for WsSettings {
    fn default() -> WsSettings {
        WsSettings {
            path: None,
            hook: None,
            http: None,
            max_message_len: wheelbeat_net::ws::DEFAULT_MAX_MESSAGE_LEN,
            handshake_timeout: Duration::from_secs(5),
            send_as: SendAs::Text,
            passive: false,
        }
    }
}

impl fmt::Debug for WsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsSettings")
            .field("path", &self.path)
            .field("hook", &self.hook.as_ref().map(|_| "Fn"))
            .field("http", &self.http.as_ref().map(|_| "Fn"))
            .field("max_message_len", &self.max_message_len)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("send_as", &self.send_as)
            .field("passive", &self.passive)
            .finish()
    }
}

impl WsSettings {
    /// Sets [`path`](Self::path).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets [`hook`](Self::hook).
    pub fn hook(mut self, hook: impl Fn(&Request<'_>) -> Decision + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Sets [`http`](Self::http).
    pub fn http(mut self, http: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> Self {
        self.http = Some(Arc::new(http));
        self
    }

    /// Sets [`max_message_len`](Self::max_message_len).
    pub fn max_message_len(mut self, n: usize) -> Self {
        self.max_message_len = n;
        self
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`send_as`](Self::send_as).
    pub fn send_as(mut self, send_as: SendAs) -> Self {
        self.send_as = send_as;
        self
    }

    /// Sets [`passive`](Self::passive).
    pub fn passive(mut self, passive: bool) -> Self {
        self.passive = passive;
        self
    }

    /// A server's decision on one upgrade request: the path, then the hook.
    pub(crate) fn decide(&self, request: &Request<'_>) -> Decision {
        if let Some(path) = &self.path
            && request.path() != path
        {
            return Decision::Reject { status: 404 };
        }
        match &self.hook {
            Some(hook) => hook(request),
            None => Decision::ACCEPT,
        }
    }
}

/// If `head` is a plain HTTP `GET` (no `Upgrade: websocket`) and the [`HttpHook`] answers
/// it, the response to send before closing.
pub(crate) fn plain_http(settings: &WsSettings, head: &[u8]) -> Option<Vec<u8>> {
    let http = settings.http.as_ref()?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_)))
        || request.method != Some("GET")
    {
        return None;
    }
    let upgrade = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(h.value)
                .is_ok_and(|v| v.to_ascii_lowercase().contains("websocket"))
    });
    if upgrade {
        return None;
    }
    http(request.path?)
}

/// The heartbeat format of a WebSocket loop: pings are whole RFC 6455 ping frames carrying
/// the sequence number. Only `encode_ping` is used: the driver's `Session` classifies inbound
/// frames and answers pings itself, so the endpoint never asks this format for a pong, and a
/// WebSocket goodbye is a close frame written by the driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsPings {
    pub(crate) role: Role,
    pub(crate) passive: bool,
}

impl Format for WsPings {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        // Not reached (see the type's docs); data is the harmless answer.
        Ok(Inbound::Data(frame))
    }

    fn encode_ping(&self, seq: u64, out: &mut Vec<u8>) {
        // Building a control frame with an 8-byte payload cannot fail but for the client's
        // random mask; without one no ping is sent and the peer is judged by its silence.
        if let Ok(ping) = Control::ping_seq(self.role, seq) {
            out.extend_from_slice(ping.as_ref());
        }
    }

    fn encode_pong(&self, _seq: u64, _out: &mut Vec<u8>) {}

    fn passive(&self) -> bool {
        self.passive
    }
}
