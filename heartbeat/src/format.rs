//! The heartbeat wire format, behind a trait: how the endpoint tells a ping from a pong, data
//! or garbage, and how it writes its own pings, pongs and goodbyes.
//!
//! # Ground rules
//! - A format sees one frame at a time, already delimited by the codec (line or length
//!   prefix) and within the frame cap; it never sees the framing bytes.
//! - Classifying a frame must not panic whatever the bytes, and should not allocate on the
//!   heartbeat path: it runs for every frame a peer sends.
//! - Encoding appends to the caller's buffer (the endpoint reuses one for every frame).
//!
//! [`JsonLines`] is the default and writes exactly what the crate docs' wire table says. A
//! server or pool speaks another format with
//! [`ServerBuilder::format`](crate::ServerBuilder::format) /
//! [`PoolBuilder::format`](crate::PoolBuilder::format); the framing (lines or a length
//! prefix) is chosen apart, with [`Framing`](crate::Framing).
//!
//! - Without sequence numbers, a pong answers the ping outstanding (the RTT is still
//!   measured), and a ping's `seq` is ignored by [`Format::encode_pong`].
//! - A **passive** format ([`Format::passive`]) never pings: each peer is judged by its
//!   silence alone, dead after a whole `interval` without a frame (exactly, no jitter), within
//!   one tick. A handler sets that window per connection when it learns it
//!   ([`Context::set_heartbeat`](crate::Context::set_heartbeat)).
//!
//! A binary format with a ping opcode, in a few lines:
//!
//! ```
//! use wheelbeat_heartbeat::format::{Format, Inbound};
//! use wheelbeat_heartbeat::ProtocolError;
//!
//! /// `0x01 seq(8)` ping, `0x02 seq(8)` pong, `0x03 ...` data.
//! #[derive(Debug)]
//! struct Opcodes;
//!
//! impl Format for Opcodes {
//!     fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
//!         let seq = || frame.get(1..9).map(|b| u64::from_be_bytes(b.try_into().unwrap()));
//!         match frame.first() {
//!             Some(1) => Ok(Inbound::Ping(Some(seq().ok_or(ProtocolError::Malformed("short ping"))?))),
//!             Some(2) => Ok(Inbound::Pong(Some(seq().ok_or(ProtocolError::Malformed("short pong"))?))),
//!             Some(3) => Ok(Inbound::Data(&frame[1..])),
//!             _ => Err(ProtocolError::Malformed("unknown opcode")),
//!         }
//!     }
//!     fn encode_ping(&self, seq: u64, out: &mut Vec<u8>) {
//!         out.push(1);
//!         out.extend_from_slice(&seq.to_be_bytes());
//!     }
//!     fn encode_pong(&self, seq: u64, out: &mut Vec<u8>) {
//!         out.push(2);
//!         out.extend_from_slice(&seq.to_be_bytes());
//!     }
//! }
//! ```

use std::fmt;

use crate::protocol::{self, ProtocolError, Shape};

/// What one inbound frame is, to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A heartbeat request, with its sequence number if the format has one: answered with a
    /// pong at once.
    Ping(Option<u64>),
    /// A heartbeat answer, with the sequence number of the ping it answers if the format has
    /// one; without, it answers the ping outstanding.
    Pong(Option<u64>),
    /// Application data, handed to [`Handler::on_message`](crate::Handler::on_message) as
    /// these bytes.
    Data(&'a [u8]),
    /// The peer is draining and will close this connection (within `N` milliseconds, if the
    /// format says): the connection is closed at once with
    /// [`CloseReason::GoAway`](crate::CloseReason::GoAway), which a pool follows with a
    /// reconnect after its backoff, never a dead verdict.
    GoAway(Option<u64>),
}

/// A heartbeat wire format. See the [module docs](self).
pub trait Format: Send + Sync + fmt::Debug + 'static {
    /// Classifies one frame (without its framing); `Err` is a protocol error that closes this
    /// connection only, after [`encode_error`](Self::encode_error)'s goodbye. Must not panic
    /// whatever the bytes.
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError>;
    /// Appends a ping carrying `seq` (never called for a passive format).
    fn encode_ping(&self, seq: u64, out: &mut Vec<u8>);
    /// Appends the pong answering a ping that carried `seq` (0 if it carried none).
    fn encode_pong(&self, seq: u64, out: &mut Vec<u8>);
    /// Appends the goodbye sent before closing a connection for `error`. The default sends
    /// none.
    fn encode_error(&self, error: ProtocolError, out: &mut Vec<u8>) {
        let _ = (error, out);
    }
    /// Appends the going-away notice sent to every peer when a
    /// [`drain`](crate::Handle::drain) starts; `ms` is how long the peer has before this side
    /// closes the connection, in milliseconds. The default sends none: a format without one
    /// drains silently (the peers only see the close at the deadline, or leave before).
    fn encode_goaway(&self, ms: u64, out: &mut Vec<u8>) {
        let _ = (ms, out);
    }
    /// Whether this side never pings and only watches silence (MQTT's server side). Default
    /// `false`.
    fn passive(&self) -> bool {
        false
    }
}

/// The seed's format: one JSON object per frame, `{"ping":N}`, `{"pong":N}`,
/// `{"error":"<reason>"}`, any other object is data. See [`crate::protocol`]. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl Format for JsonLines {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        Ok(match protocol::parse_shape(frame)? {
            Shape::Ping(n) => Inbound::Ping(Some(n)),
            Shape::Pong(n) => Inbound::Pong(Some(n)),
            Shape::GoAway(n) => Inbound::GoAway(Some(n)),
            Shape::Data => Inbound::Data(frame),
            Shape::NotObject => return Err(ProtocolError::NotAnObject),
        })
    }

    fn encode_ping(&self, seq: u64, out: &mut Vec<u8>) {
        protocol::encode_ping(seq, out);
    }

    fn encode_pong(&self, seq: u64, out: &mut Vec<u8>) {
        protocol::encode_pong(seq, out);
    }

    fn encode_error(&self, error: ProtocolError, out: &mut Vec<u8>) {
        protocol::encode_error(error.reason(), out);
    }

    fn encode_goaway(&self, ms: u64, out: &mut Vec<u8>) {
        protocol::encode_goaway(ms, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the wire table of the crate docs: the default format's bytes must not change.
    #[test]
    fn json_lines_writes_the_documented_bytes() {
        let f = JsonLines;
        let mut out = Vec::new();
        f.encode_ping(7, &mut out);
        f.encode_pong(u64::MAX, &mut out);
        f.encode_error(ProtocolError::InvalidJson, &mut out);
        f.encode_goaway(10_000, &mut out);
        assert_eq!(
            out,
            br#"{"ping":7}{"pong":18446744073709551615}{"error":"invalid json"}{"goaway":10000}"#
        );
        assert_eq!(f.classify(br#"{"goaway":5}"#), Ok(Inbound::GoAway(Some(5))));
        // Only the exact one-key shape is a notice, as for pings.
        assert_eq!(
            f.classify(br#"{"goaway":5,"x":1}"#),
            Ok(Inbound::Data(br#"{"goaway":5,"x":1}"#))
        );
        assert_eq!(
            f.classify(br#"{"goaway":"soon"}"#),
            Ok(Inbound::Data(br#"{"goaway":"soon"}"#))
        );
        assert_eq!(f.classify(br#"{"ping":3}"#), Ok(Inbound::Ping(Some(3))));
        assert_eq!(f.classify(br#"{"pong":4}"#), Ok(Inbound::Pong(Some(4))));
        assert_eq!(f.classify(br#"{"a":1}"#), Ok(Inbound::Data(br#"{"a":1}"#)));
        assert_eq!(f.classify(b"[1]"), Err(ProtocolError::NotAnObject));
        assert_eq!(f.classify(b"{"), Err(ProtocolError::InvalidJson));
    }
}
