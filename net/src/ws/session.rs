//! [`Session`]: one WebSocket connection's protocol state, fed whole frames by
//! [`WsCodec`](super::WsCodec) through [`Connection::read_frames`](crate::Connection::read_frames).
//!
//! # Ground rules
//! - No I/O and no clock: [`Session::handle`] takes one delivered frame and a [`Sink`] for
//!   replies, and hands what it means to the caller's `on_event`. Timeouts (handshake, close)
//!   are the caller's deadlines ([`Deadlines`](super::Deadlines)).
//! - Replies the RFC requires are queued here: the 101 (or the 400) to an upgrade request, a
//!   pong to every ping (priority lane), a close answering a close. The application only ever
//!   sends its own messages and pings.
//! - A close frame goes on the data lane, behind the messages already queued: nothing may
//!   follow a close, and the priority lane would put it ahead of them (Autobahn 7.1.6).
//! - A message that fits one frame is handed over as a slice of the read buffer: no copy, no
//!   heap. A fragmented one is assembled in a `Vec` capped at `max_message_len`, checked
//!   before each fragment is appended; the `Vec` is freed as soon as the message is handed
//!   over, so an idle session holds no heap.
//! - Text is validated incrementally, fragment by fragment (fail fast, Autobahn 6.x).
//! - Frames must come from [`Codec::decode_mut`](crate::Codec::decode_mut), which unmasks
//!   in place (a frame with a non-zero masking key is refused).
//!
//! # States
//!
//! | state | on a frame | next |
//! |-------|------------|------|
//! | `AwaitingRequest` (server) | the upgrade head: 101 queued, [`Event::Open`] / 400 queued, error | `Open` / `Closed` |
//! | `AwaitingResponse` (client) | the 101 head, checked against the key: [`Event::Open`] / error | `Open` / `Closed` |
//! | `Open` | data, ping (pong queued), pong; close: close answered, [`Event::Close`] | `Open`; `Closed` on close |
//! | `CloseSent` (we closed first) | data and pings dropped; the peer's close: [`Event::Close`] | `Closed` |
//! | `Closed` | nothing more is read: close the socket once flushed | |

use crate::error::Error;

use super::close::{self, CloseBody, parse_close};
use super::frame::{FrameHeader, OpCode};
use super::handshake::{self, Decision, Request};
use super::send::{Control, Sink};
use super::utf8::Utf8Validator;
use super::{Role, WsError};

/// Default cap on one message's payload: 64 KiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024;

/// What a frame meant, handed to the `on_event` of [`Session::handle`].
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The upgrade completed. On a client, the subprotocol the server chose (check it is one
    /// you offered); on a server, `None` (the hook chose it).
    Open {
        /// The subprotocol, client side.
        protocol: Option<&'a str>,
    },
    /// A whole text message, validated UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping; its pong is already queued.
    Ping(&'a [u8]),
    /// A pong (see [`pong_seq`](super::pong_seq) for the heartbeat's sequence number).
    Pong(&'a [u8]),
    /// The peer's close; ours is queued if we had not sent one. Close the socket once the
    /// queue is flushed.
    Close(CloseBody<'a>),
    /// A fragment of an unfinished message was buffered (a sign of life, nothing to deliver).
    Fragment,
}

/// The upgrade hook that accepts every request, with no subprotocol (for clients, and for
/// servers that take anyone).
pub fn accept_any(_: &Request<'_>) -> Decision {
    Decision::ACCEPT
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingRequest,
    AwaitingResponse { key: [u8; 16] },
    Open,
    CloseSent,
    Closed,
}

/// One connection's WebSocket state. See the [module docs](self) for the state table.
///
/// Size: 56 bytes on 64-bit targets (a test asserts it); no heap while idle.
#[derive(Debug)]
pub struct Session {
    state: State,
    role: Role,
    /// The kind of the fragmented message in progress: `Some(true)` text, `Some(false)` binary.
    partial: Option<bool>,
    utf8: Utf8Validator,
    max_message: u32,
    /// The fragmented message in progress; empty (no allocation) otherwise.
    message: Vec<u8>,
}

impl Session {
    /// A server session waiting for the upgrade request (with [`WsCodec::server`](super::WsCodec::server)).
    pub fn server() -> Self {
        Session::new(Role::Server, State::AwaitingRequest)
    }

    /// A client session that sent its request with `key` (see
    /// [`client_request`](super::client_request)) and waits for the 101 (with
    /// [`WsCodec::client`](super::WsCodec::client)).
    pub fn client(key: [u8; 16]) -> Self {
        Session::new(Role::Client, State::AwaitingResponse { key })
    }

    /// A session whose handshake was done elsewhere (with `WsCodec::server_open` /
    /// `client_open`).
    pub fn open(role: Role) -> Self {
        Session::new(role, State::Open)
    }

    fn new(role: Role, state: State) -> Self {
        Session {
            state,
            role,
            partial: None,
            utf8: Utf8Validator::new(),
            max_message: DEFAULT_MAX_MESSAGE_LEN as u32,
            message: Vec::new(),
        }
    }

    /// Sets the cap on one message's payload (saturates at 4 GiB - 1).
    pub fn with_max_message_len(mut self, max: usize) -> Self {
        self.max_message = u32::try_from(max).unwrap_or(u32::MAX);
        self
    }

    /// Which side this session speaks for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True once the upgrade completed, until a close is sent or received.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True before the upgrade completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(
            self.state,
            State::AwaitingRequest | State::AwaitingResponse { .. }
        )
    }

    /// True once nothing more will be read: the closing handshake is over, or the connection
    /// failed. Close the socket once its queue is flushed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Heap bytes held (the fragmented message in progress); zero when idle.
    pub fn heap_bytes(&self) -> usize {
        self.message.capacity()
    }

    /// Handles one frame delivered by the codec (the upgrade head first, then WebSocket
    /// frames): queues the replies the protocol requires on `out`, and calls `on_event` at
    /// most once with what the frame meant (nothing for frames dropped while closing).
    ///
    /// `hook` decides a server's upgrade (see [`accept_any`]); clients never call it.
    ///
    /// An error means the connection failed: call [`fail`](Self::fail) to queue the close
    /// frame or HTTP response that says why, flush, then close the socket.
    pub fn handle<S, F>(
        &mut self,
        frame: &[u8],
        out: &mut S,
        hook: &mut dyn FnMut(&Request<'_>) -> Decision,
        on_event: F,
    ) -> Result<(), Error>
    where
        S: Sink + ?Sized,
        F: FnOnce(Event<'_>, &mut S),
    {
        let result = self.handle_inner(frame, out, hook, on_event);
        if result.is_err() {
            // Nothing of a failed message is kept.
            self.reset_message();
        }
        result
    }

    fn handle_inner<S, F>(
        &mut self,
        frame: &[u8],
        out: &mut S,
        hook: &mut dyn FnMut(&Request<'_>) -> Decision,
        on_event: F,
    ) -> Result<(), Error>
    where
        S: Sink + ?Sized,
        F: FnOnce(Event<'_>, &mut S),
    {
        match self.state {
            State::AwaitingRequest => {
                let reply = handshake::server_handshake(frame, hook);
                out.send_frames(&reply.response)?;
                match reply.outcome {
                    Ok(()) => {
                        self.state = State::Open;
                        on_event(Event::Open { protocol: None }, out);
                        Ok(())
                    }
                    Err(e) => {
                        self.state = State::Closed;
                        Err(Error::WebSocket(e))
                    }
                }
            }
            State::AwaitingResponse { key } => match handshake::check_response(frame, &key) {
                Ok(protocol) => {
                    self.state = State::Open;
                    on_event(Event::Open { protocol }, out);
                    Ok(())
                }
                Err(e) => {
                    self.state = State::Closed;
                    Err(Error::WebSocket(e))
                }
            },
            State::Closed => Ok(()),
            State::Open | State::CloseSent => self.handle_frame(frame, out, on_event),
        }
    }

    fn handle_frame<S, F>(&mut self, frame: &[u8], out: &mut S, on_event: F) -> Result<(), Error>
    where
        S: Sink + ?Sized,
        F: FnOnce(Event<'_>, &mut S),
    {
        let proto = |why| Error::WebSocket(WsError::Protocol(why));
        let h = FrameHeader::parse(frame)
            .map_err(Error::WebSocket)?
            .ok_or(proto("incomplete frame"))?;
        if h.mask.is_some_and(|k| k != [0; 4]) {
            return Err(proto("frame was not unmasked by decode_mut"));
        }
        let payload = usize::try_from(h.payload_len)
            .ok()
            .and_then(|len| frame.get(h.header_len..h.header_len.checked_add(len)?))
            .filter(|p| h.header_len + p.len() == frame.len())
            .ok_or(proto("frame length does not match its header"))?;
        let closing = self.state == State::CloseSent;
        match h.opcode {
            OpCode::Ping => {
                if !closing {
                    out.send_priority_frames(
                        Control::new(self.role, OpCode::Pong, payload)?.as_ref(),
                    )?;
                    on_event(Event::Ping(payload), out);
                }
                Ok(())
            }
            OpCode::Pong => {
                on_event(Event::Pong(payload), out);
                Ok(())
            }
            OpCode::Close => {
                let body = parse_close(payload).map_err(Error::WebSocket)?;
                if !closing {
                    // Echo the code (RFC 6455 5.5.1); an empty close is answered by an empty one.
                    out.send_frames(Control::close(self.role, body.code, "")?.as_ref())?;
                }
                self.state = State::Closed;
                on_event(Event::Close(body), out);
                Ok(())
            }
            OpCode::Text | OpCode::Binary => {
                if self.partial.is_some() {
                    return Err(proto("new message before the previous one ended"));
                }
                let text = h.opcode == OpCode::Text;
                self.check_len(payload.len())?;
                if h.fin {
                    if closing {
                        return Ok(());
                    }
                    if text {
                        let t = std::str::from_utf8(payload)
                            .map_err(|_| Error::WebSocket(WsError::InvalidUtf8))?;
                        on_event(Event::Text(t), out);
                    } else {
                        on_event(Event::Binary(payload), out);
                    }
                    return Ok(());
                }
                if text {
                    self.feed_utf8(payload)?;
                }
                self.partial = Some(text);
                self.append(payload);
                on_event(Event::Fragment, out);
                Ok(())
            }
            OpCode::Continuation => {
                let Some(text) = self.partial else {
                    return Err(proto("continuation frame without a message"));
                };
                self.check_len(self.message.len() + payload.len())?;
                if text {
                    self.feed_utf8(payload)?;
                }
                self.append(payload);
                if !h.fin {
                    on_event(Event::Fragment, out);
                    return Ok(());
                }
                if text && !self.utf8.is_complete() {
                    return Err(Error::WebSocket(WsError::InvalidUtf8));
                }
                let message = std::mem::take(&mut self.message);
                self.reset_message();
                if !closing {
                    if text {
                        // Validated piece by piece above, so this cannot fail.
                        let t = std::str::from_utf8(&message)
                            .map_err(|_| Error::WebSocket(WsError::InvalidUtf8))?;
                        on_event(Event::Text(t), out);
                    } else {
                        on_event(Event::Binary(&message), out);
                    }
                }
                Ok(())
            }
        }
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        if len > self.max_message as usize {
            return Err(Error::WebSocket(WsError::MessageTooLong {
                len: len as u64,
                max: self.max_message as usize,
            }));
        }
        Ok(())
    }

    /// Appends to the message, growing by doubling but never past the message cap (which
    /// `check_len` has checked), so the buffer's allocation is bounded by the cap.
    fn append(&mut self, payload: &[u8]) {
        let need = self.message.len() + payload.len();
        if need > self.message.capacity() {
            let target =
                (self.message.capacity() * 2).clamp(need, (self.max_message as usize).max(need));
            self.message.reserve_exact(target - self.message.len());
        }
        self.message.extend_from_slice(payload);
    }

    fn feed_utf8(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.utf8
            .feed(bytes)
            .map_err(|_| Error::WebSocket(WsError::InvalidUtf8))
    }

    fn reset_message(&mut self) {
        self.partial = None;
        self.utf8 = Utf8Validator::new();
        self.message = Vec::new();
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason` (data
    /// lane, behind what is queued). Frames keep being read until the peer's close ([`Event::Close`]). Does nothing
    /// unless open.
    pub fn close<S: Sink + ?Sized>(
        &mut self,
        out: &mut S,
        code: u16,
        reason: &str,
    ) -> Result<(), Error> {
        if self.state != State::Open {
            return Ok(());
        }
        self.state = State::CloseSent;
        out.send_frames(Control::close(self.role, Some(code), reason)?.as_ref())
    }

    /// After an error from [`handle`](Self::handle) or from reading: queues what tells the
    /// peer why (a close frame with [`WsError::close_code`], 1002 or 1011 for other errors;
    /// a 400 to an upgrade request that was cut off by the size cap) and marks the session
    /// closed. Close the socket once the queue is flushed (or at once: this is best effort).
    pub fn fail<S: Sink + ?Sized>(&mut self, out: &mut S, error: &Error) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.reset_message();
        let code = match error {
            Error::WebSocket(e) => e.close_code(),
            Error::FrameTooLong { .. } => close::TOO_BIG,
            Error::Io(_) | Error::TruncatedFrame { .. } => return,
            _ => close::INTERNAL_ERROR,
        };
        // Best effort: if the queue is full the socket is closed without a word.
        let _ = match (state, error) {
            (State::AwaitingRequest, Error::WebSocket(e)) => {
                out.send_frames(&handshake::error_response(e))
            }
            (State::Open, _) => {
                Control::close(self.role, Some(code), "").and_then(|c| out.send_frames(c.as_ref()))
            }
            _ => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests;
