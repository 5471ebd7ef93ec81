//! WebSocket (RFC 6455) on wheelbeat-net's connections: sans-I/O, no async, no clock reads.
//!
//! # How it sits on a [`Connection`](crate::Connection)
//! - [`WsCodec`] is the connection's [`Codec`](crate::Codec): it delivers the upgrade head,
//!   then whole WebSocket frames, unmasked in place (so a frame that is a whole message
//!   reaches the application as a slice of the loop's read buffer, without a copy). Frame cap
//!   and handshake cap are enforced from the header, before any payload is buffered.
//! - [`Session`] is the per-connection protocol state kept beside the connection: upgrade,
//!   message assembly with a message cap, incremental UTF-8, pings answered, the close
//!   handshake. It turns each frame into an [`Event`] and queues the replies the RFC requires.
//! - [`Encoder`] (one per loop) frames outgoing messages; [`Control`] builds control frames on
//!   the stack, e.g. the heartbeat's [`Control::ping_seq`], whose pong [`pong_seq`] reads.
//! - [`Deadlines`] times out handshakes and closes with the loop's `now`.
//!
//! # Ground rules
//! - An idle WebSocket connection holds no heap: the connection's partial-frame buffer and
//!   write queue are empty between frames (as for any codec), the session's message buffer
//!   is freed when a fragmented message is delivered. What it costs is
//!   `size_of::<Connection<WsCodec>>() + size_of::<Session>()` (asserted in the tests).
//! - Nothing a peer sends panics, loops or allocates past a cap: the decoders are fuzzed
//!   (`fuzz/fuzz_targets/ws_frames.rs`, `ws_handshake.rs`).
//! - Errors are [`Error::WebSocket`](crate::Error::WebSocket) with a [`WsError`] that knows
//!   its close code; [`Session::fail`] says it to the peer.
//! - No extension is negotiated (permessage-deflate is declined), so every reserved bit is an
//!   error.
//!
//! # A server's frame callback
//! ```no_run
//! # use std::ops::ControlFlow;
//! # use wheelbeat_net::{Connection, ReadBuf, DEFAULT_READ_BUDGET};
//! use wheelbeat_net::ws::{Encoder, Event, MessageKind, Session, WsCodec, accept_any};
//! # fn f(mut conn: Connection<WsCodec>) -> Result<(), wheelbeat_net::Error> {
//! # let mut scratch = ReadBuf::new();
//! let (mut session, mut encoder) = (Session::server(), Encoder::new());
//! conn.read_frames(&mut scratch, DEFAULT_READ_BUDGET, |frame, out| {
//!     let role = session.role();
//!     let handled = session.handle(frame, out, &mut accept_any, |event, out| {
//!         if let Event::Text(text) = event {
//!             let _ = encoder.send(out, role, MessageKind::Text, text.as_bytes()); // echo
//!         }
//!     });
//!     if let Err(e) = handled {
//!         session.fail(out, &e); // queues the close frame (or the 400) saying why
//!     }
//!     if session.is_closed() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
//! })?;
//! # Ok(()) }
//! ```
//! `examples/ws_echo.rs` is the whole server, with timeouts and the close path.

pub mod close;
pub mod codec;
pub mod deadlines;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod send;
pub mod session;
pub mod utf8;

pub use close::CloseBody;
pub use codec::{DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HANDSHAKE_LEN, WsCodec};
pub use deadlines::Deadlines;
pub use error::WsError;
pub use frame::{FrameHeader, OpCode};
pub use handshake::{
    ClientRequest, Decision, Request, accept_key, check_response, client_request, only_path,
    random_key, server_handshake,
};
pub use send::{Control, Encoder, MessageKind, Sink, pong_seq};
pub use session::{DEFAULT_MAX_MESSAGE_LEN, Event, Session, accept_any};

/// Which end of the connection: it decides who masks (RFC 6455 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts connections; requires masked frames, sends unmasked ones.
    Server,
    /// Opens connections; masks every frame, requires unmasked ones.
    Client,
}
