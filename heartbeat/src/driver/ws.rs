//! The WebSocket side of the driver: each connection's [`Session`] in a table beside the
//! sockets, the frames it reads turned into endpoint inputs, the endpoint's outputs turned
//! into WebSocket frames, handshake timeouts. See [`crate::shell::websocket`] for the
//! behaviour; this file is only its plumbing.
//!
//! # Ground rules
//! - Only a WebSocket loop ([`Framing::WebSocket`](crate::Framing::WebSocket)) has sessions:
//!   a plain loop's table stays empty and costs nothing per connection.
//! - The session decides everything about the protocol (the upgrade, pongs, message
//!   assembly, close codes); the endpoint is told only what each frame was: data, a pong with
//!   its sequence number, or a sign of life.
//! - Nothing is written after a close frame, and nothing but the 101 before the upgrade.
//!   Messages the handler sends before the upgrade completes (a greeting from `on_connect`)
//!   are framed and kept, up to half the write cap, and queued right behind the 101 (more
//!   than that is a write overflow); pings before it, and anything after our close, are
//!   dropped.
//! - A peer's close is answered when the endpoint closes the connection, after the replies
//!   to the messages that came before it (the session's own answer is held back, since the
//!   handler's replies are queued only after the read).

use std::ops::ControlFlow;
use std::time::Instant;

use wheelbeat_net::ws::{
    Control, Deadlines, Encoder, Event, MessageKind, OpCode, Role, Session, Sink, pong_seq,
    random_key,
};
use wheelbeat_net::{
    ConnKey, Error as NetError, Outbox, Served, ws::ClientRequest, ws::client_request,
};

use super::side::SideTable;
use super::socket::{Full, close_reason_for};
use super::{Conn, Driver, Io};
use crate::endpoint::{Inbound, Lane};
use crate::protocol::ProtocolError;
use crate::shell::handler::Handler;
use crate::shell::websocket::plain_http;
use crate::shell::{AnyCodec, CloseReason, SendAs, WsSettings};

/// The close code of every close we start (local, dead, shutdown): normal closure.
const NORMAL: u16 = 1000;

/// One WebSocket connection's state beside its socket.
pub(super) struct WsConn {
    session: Session,
    /// The last message received was binary (for [`SendAs::LikeReceived`]).
    binary: bool,
    /// Frames held back; heap only while there are some. Before the upgrade: the messages
    /// the handler sent, framed, to follow the 101 (dropped if the upgrade never completes).
    /// After it: the session's last frames (the answer to the peer's close, or the close that
    /// says why the connection failed), held until the endpoint closes the connection so the
    /// replies to the messages before them go out first.
    held: Option<Vec<u8>>,
}

impl WsConn {
    /// Whether application messages may still be written: after the upgrade, and until our
    /// close frame (a peer's close still lets the replies to its earlier messages out).
    fn writable(&self) -> bool {
        self.session.is_open() || (!self.session.is_handshaking() && self.held.is_some())
    }
}

/// The sessions of a WebSocket loop, indexed like the sockets.
pub(super) struct WsConns {
    slots: SideTable<WsConn>,
    handshakes: Deadlines<ConnKey>,
    encoder: Encoder,
    settings: WsSettings,
}

impl WsConns {
    pub(super) fn new(settings: &WsSettings, max_frame_len: usize) -> WsConns {
        WsConns {
            slots: SideTable::default(),
            handshakes: Deadlines::new(settings.handshake_timeout),
            encoder: Encoder::with_max_frame_len(max_frame_len),
            settings: settings.clone(),
        }
    }

    /// The next handshake deadline, for the poll timeout.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.handshakes.next_deadline()
    }

    /// Heap bytes `key`'s session holds (a fragmented message in progress).
    pub(super) fn heap_bytes(&self, key: ConnKey) -> usize {
        self.slots.get(key).map_or(0, |ws| {
            ws.session.heap_bytes() + ws.held.as_ref().map_or(0, Vec::capacity)
        })
    }

    /// Starts the session of a connection now served; a client queues its upgrade request.
    pub(super) fn open(
        &mut self,
        key: ConnKey,
        conn: &mut Conn,
        inbound: bool,
        now: Instant,
    ) -> Result<(), NetError> {
        let max = self.settings.max_message_len;
        let session = if inbound {
            Session::server()
        } else {
            let key = random_key()?;
            // The `Host` header names the server as connected to; a Unix socket has no host.
            let host = match conn.peer_addr()? {
                wheelbeat_net::PeerAddr::Tcp(addr) => addr.to_string(),
                _ => "localhost".to_string(),
            };
            let path = self.settings.path.as_deref().unwrap_or("/");
            let request = client_request(
                &ClientRequest {
                    host: &host,
                    target: path,
                    origin: None,
                    protocols: &[],
                },
                &key,
            );
            conn.send(request.as_slice())?;
            Session::client(key)
        };
        self.slots.insert(
            key,
            WsConn {
                session: session.with_max_message_len(max),
                binary: false,
                held: None,
            },
        );
        self.handshakes.push(now, key);
        Ok(())
    }

    /// Queues one endpoint transmit for a WebSocket connection: data as a message of the
    /// kind [`SendAs`] says, a heartbeat (already a ping frame) as it is. Data before the
    /// upgrade is kept to follow the 101 (see the module docs). `Ok` also when the frame is
    /// dropped (a ping before the upgrade, anything after a close).
    pub(super) fn transmit(
        &mut self,
        key: ConnKey,
        conn: &mut Conn,
        lane: Lane,
        frame: &[u8],
    ) -> Result<(), Full> {
        let send_as = self.settings.send_as;
        let encoder = &mut self.encoder;
        let Some(ws) = self.slots.get_mut(key) else {
            return Ok(());
        };
        let text = std::str::from_utf8(frame).is_ok();
        let kind = match send_as {
            SendAs::LikeReceived if ws.binary => MessageKind::Binary,
            _ if text => MessageKind::Text,
            _ => MessageKind::Binary,
        };
        let role = ws.session.role();
        match lane {
            Lane::Priority if ws.session.is_open() => super::socket::send_heartbeat(conn, frame),
            Lane::Data if ws.writable() => encoder
                .send(&mut ConnSink(conn), role, kind, frame)
                .map_err(|e| Full::from(&e)),
            Lane::Data if ws.session.is_handshaking() => {
                let kept = ws.held.as_ref().map_or(0, Vec::len);
                if kept + frame.len() > conn.write_cap() / 2 {
                    return Err(Full::Lane);
                }
                encoder
                    .send(&mut Held(&mut ws.held), role, kind, frame)
                    .map_err(|e| Full::from(&e))
            }
            _ => {
                log::debug!("websocket {key:?}: {lane:?} frame dropped (not open)");
                Ok(())
            }
        }
    }

    /// Before the socket of `key` is closed: says goodbye with a close frame (ours, or the
    /// answer to the peer's). True if `key` was a WebSocket connection (its socket is then
    /// closed with a half-close and drain, so the close frame is read before the FIN).
    pub(super) fn closing(&mut self, key: ConnKey, io: &mut Io) -> bool {
        let Some(ws) = self.slots.remove(key) else {
            return false;
        };
        let (Io::Open { conn, .. } | Io::Frozen(conn)) = io else {
            return true;
        };
        // Best effort: a full queue means the peer reads nothing anyway.
        if ws.session.is_open() {
            if let Ok(close) = Control::close(ws.session.role(), Some(NORMAL), "") {
                let _ = conn.send(close.as_ref());
            }
        } else if !ws.session.is_handshaking()
            && let Some(words) = &ws.held
        {
            let _ = conn.send(words.as_slice());
        }
        true
    }
}

impl<H: Handler> Driver<H> {
    /// Reads WebSocket `key` for one byte budget, or until the turn's `deadline`.
    pub(super) fn read_ws(&mut self, key: ConnKey, now: Instant) {
        let (Some(Io::Open { conn, .. }), Some(wsc)) = (self.sockets.get_mut(key), &mut self.ws)
        else {
            return;
        };
        let settings = &wsc.settings;
        let Some(ws) = wsc.slots.get_mut(key) else {
            return;
        };
        let ep = &mut self.ep;
        let WsConn {
            session,
            binary,
            held,
        } = ws;
        let mut peer_closed = false;
        let mut failed = None;
        let mut served_http = false;
        let mut hook = |r: &wheelbeat_net::ws::Request<'_>| settings.decide(r);
        let result = self.ready.read(
            key.token(),
            conn,
            &mut self.scratch,
            self.opts.read_budget,
            Instant::now,
            |frame, out| {
                // A plain GET the application answers (a page next to the WebSocket endpoint).
                if session.is_handshaking()
                    && session.role() == Role::Server
                    && let Some(response) = plain_http(settings, frame)
                {
                    // Best effort, like any goodbye; the connection ends here.
                    let _ = out.send(response.as_slice());
                    served_http = true;
                    return ControlFlow::Break(());
                }
                // The session answers a close at once; ours is written at the endpoint's close,
                // behind the replies to the messages before it (see the module docs).
                let hold = session.is_open() && is_close(frame);
                let mut sink = OutboxSink {
                    out,
                    hold,
                    held: &mut *held,
                };
                let mut flow = ControlFlow::Continue(());
                let handled = session.handle(frame, &mut sink, &mut hook, |event, sink| {
                    flow = match event {
                        Event::Text(t) => {
                            *binary = false;
                            ep.handle_inbound(now, key, Some(Inbound::Data(t.as_bytes())))
                        }
                        Event::Binary(b) => {
                            *binary = true;
                            ep.handle_inbound(now, key, Some(Inbound::Data(b)))
                        }
                        // A pong without our 8-byte payload is an unsolicited one: life only.
                        Event::Pong(p) => {
                            ep.handle_inbound(now, key, pong_seq(p).map(|s| Inbound::Pong(Some(s))))
                        }
                        Event::Open { .. } => {
                            // The 101 is queued (or read): what the handler sent before goes
                            // next. It fits: it was capped at half the write cap.
                            if let Some(bytes) = sink.held.take()
                                && let Err(e) = sink.out.send(&bytes)
                            {
                                log::debug!("websocket {key:?}: early messages dropped: {e}");
                            }
                            ep.handle_inbound(now, key, None)
                        }
                        Event::Ping(_) | Event::Fragment => ep.handle_inbound(now, key, None),
                        Event::Close(_) => {
                            peer_closed = true;
                            ControlFlow::Break(())
                        }
                    };
                });
                if let Err(e) = handled {
                    if session.is_handshaking() {
                        *sink.held = None; // early messages: never to be sent
                    }
                    sink.hold = true;
                    session.fail(&mut sink, &e);
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
                flow
            },
        );
        let read_closed = matches!(result, Ok(Served::Closed));
        match result {
            Ok(Served::Drained) => self.ep.set_unread(key, false),
            // Carried over (the byte budget or the turn's time): served first next turn.
            Ok(Served::Carried) => self.ep.set_unread(key, true),
            Ok(Served::Stopped) | Ok(Served::Closed) => {}
            Err(NetError::Io(e)) => {
                self.ep
                    .handle_failure(now, key, close_reason_for(&NetError::Io(e)))
            }
            Err(e @ NetError::TruncatedFrame { .. }) => {
                self.ep.handle_failure(now, key, close_reason_for(&e))
            }
            Err(e) => {
                // The codec refused a frame (unmasked, over the cap, invalid UTF-8...): the
                // session says why, with the RFC's code.
                if session.is_handshaking() {
                    *held = None; // early messages: never to be sent
                }
                session.fail(&mut Held(held), &e);
                failed = Some(e);
            }
        }
        if served_http {
            self.ep.handle_failure(now, key, CloseReason::Local);
        } else if let Some(e) = failed {
            log::debug!("websocket {key:?}: {e}");
            let reason = if matches!(&e, NetError::WebSocket(w) if w.is_handshake()) {
                "websocket upgrade refused"
            } else {
                "websocket protocol error"
            };
            self.ep.handle_failure(
                now,
                key,
                CloseReason::Protocol(ProtocolError::Malformed(reason)),
            );
        } else if peer_closed || read_closed {
            self.ep.handle_read_closed(now, key);
        }
        self.recharge(key);
        self.mark_dirty(key);
        self.apply_outputs(now);
        self.check_memory(now);
    }

    /// Closes the connections whose upgrade is not done by the handshake timeout.
    pub(super) fn expire_ws_upgrades(&mut self, now: Instant) {
        loop {
            let Some(wsc) = self.ws.as_mut() else {
                return;
            };
            let Some(key) = wsc.handshakes.pop_expired(now) else {
                return;
            };
            // A key closed meanwhile (or reused: its generation differs) has no session.
            if wsc
                .slots
                .get(key)
                .is_some_and(|ws| ws.session.is_handshaking())
            {
                self.ep
                    .handle_failure(now, key, CloseReason::HandshakeTimeout);
                self.apply_outputs(now);
            }
        }
    }
}

/// True if `frame` (a whole frame from the codec) is a close frame.
fn is_close(frame: &[u8]) -> bool {
    frame
        .first()
        .is_some_and(|b| b & 0x0f == OpCode::Close.bits())
}

/// [`Sink`] over the loop's read [`Outbox`]; with `hold`, data-lane frames (the session's
/// close) are kept in `held` instead, to be written at the endpoint's close.
struct OutboxSink<'a, 'b> {
    out: &'a mut Outbox<'b, AnyCodec>,
    hold: bool,
    held: &'a mut Option<Vec<u8>>,
}

impl Sink for OutboxSink<'_, '_> {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        if self.hold {
            return Held(self.held).send_frames(bytes);
        }
        Ok(self.out.send(bytes)?)
    }

    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        Ok(self.out.send_priority(bytes)?)
    }
}

/// [`Sink`] over a connection, outside a read.
struct ConnSink<'a>(&'a mut Conn);

impl Sink for ConnSink<'_> {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        Ok(self.0.send(bytes)?)
    }

    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        Ok(self.0.send_priority(bytes)?)
    }
}

/// [`Sink`] keeping every frame for later (see [`WsConn::held`]).
struct Held<'a>(&'a mut Option<Vec<u8>>);

impl Sink for Held<'_> {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        self.0.get_or_insert_with(Vec::new).extend_from_slice(bytes);
        Ok(())
    }

    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        self.send_frames(bytes)
    }
}

/// Bytes of one entry of the sessions' table (for the size test).
#[cfg(test)]
pub(super) fn slot_size() -> usize {
    std::mem::size_of::<Option<(ConnKey, WsConn)>>()
}

/// Which side a connection speaks for.
pub(super) fn role(inbound: bool) -> Role {
    if inbound { Role::Server } else { Role::Client }
}
