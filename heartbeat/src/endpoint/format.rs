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
//! [`JsonLines`] is the default and writes exactly what the crate docs' wire table says. The
//! trait is crate-private for now: the next step (issue 9) makes it public and adds formats
//! whose pongs carry no sequence number and whose servers never ping (passive mode).

use crate::protocol::{self, Message, ProtocolError};

/// What one inbound frame is, to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// A heartbeat request: answer it with a pong carrying `seq`.
    Ping(u64),
    /// A heartbeat answer carrying the `seq` of the ping it answers.
    Pong(u64),
    /// Application data, handed to the handler as these bytes.
    Data(&'a [u8]),
}

/// A heartbeat wire format. See the [module docs](self).
pub(crate) trait Format: Send + 'static {
    /// Classifies one frame; `Err` is a protocol error that closes the connection.
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError>;
    /// Appends a ping carrying `seq` to `out`.
    fn encode_ping(&self, seq: u64, out: &mut Vec<u8>);
    /// Appends a pong answering the ping that carried `seq` to `out`.
    fn encode_pong(&self, seq: u64, out: &mut Vec<u8>);
    /// Appends the goodbye sent before closing a connection for `error` to `out`; a format
    /// without one appends nothing.
    fn encode_error(&self, error: ProtocolError, out: &mut Vec<u8>);
}

/// The seed's format: one JSON object per frame, `{"ping":N}`, `{"pong":N}`,
/// `{"error":"<reason>"}`, any other object is data. See [`crate::protocol`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

impl Format for JsonLines {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        Ok(match protocol::parse(frame)? {
            Message::Ping(n) => Inbound::Ping(n),
            Message::Pong(n) => Inbound::Pong(n),
            Message::Data(d) => Inbound::Data(d),
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
        assert_eq!(
            out,
            br#"{"ping":7}{"pong":18446744073709551615}{"error":"invalid json"}"#
        );
        assert_eq!(f.classify(br#"{"ping":3}"#), Ok(Inbound::Ping(3)));
        assert_eq!(f.classify(br#"{"pong":4}"#), Ok(Inbound::Pong(4)));
        assert_eq!(f.classify(br#"{"a":1}"#), Ok(Inbound::Data(br#"{"a":1}"#)));
        assert_eq!(f.classify(b"[1]"), Err(ProtocolError::NotAnObject));
        assert_eq!(f.classify(b"{"), Err(ProtocolError::InvalidJson));
    }
}
