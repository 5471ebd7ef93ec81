//! The framing a loop speaks: newline-delimited (the default), length-prefixed, or
//! WebSocket, chosen at run time with [`Options::framing`](super::Options::framing).
//!
//! A plain enum that delegates to wheelbeat-net's codecs, so a loop needs no
//! generic parameter and no boxing per connection.

use wheelbeat_net::ws::WsCodec;
use wheelbeat_net::{Codec, Decoded, FrameError, LengthCodec, LineCodec};

/// Which codec frames the JSON objects on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Framing {
    /// One frame per line, ended by `\n` (a `\r` before it is stripped).
    #[default]
    Line,
    /// A 4-byte big-endian length, then the frame.
    Length,
    /// WebSocket (RFC 6455): the HTTP upgrade, then WebSocket frames; the heartbeat is the
    /// RFC's own ping and pong. Set with [`ServerBuilder::websocket`](crate::ServerBuilder::websocket)
    /// / [`PoolBuilder::websocket`](crate::PoolBuilder::websocket), which also take the
    /// [`WsSettings`](crate::WsSettings).
    WebSocket,
}

/// The codec of one connection.
#[derive(Debug, Clone)]
pub(crate) enum AnyCodec {
    Line(LineCodec),
    Length(LengthCodec),
    Ws(WsCodec),
}

impl AnyCodec {
    /// The codec of a connection we accepted (`inbound`) or opened.
    pub(crate) fn new(framing: Framing, max_frame_len: usize, inbound: bool) -> AnyCodec {
        match framing {
            Framing::Line => AnyCodec::Line(LineCodec::with_max_frame_len(max_frame_len)),
            Framing::Length => AnyCodec::Length(LengthCodec::with_max_frame_len(max_frame_len)),
            Framing::WebSocket => {
                let codec = if inbound {
                    WsCodec::server()
                } else {
                    WsCodec::client()
                };
                // `Options::validate` keeps the cap within what the codec accepts.
                AnyCodec::Ws(codec.with_max_frame_len(max_frame_len))
            }
        }
    }
}

impl Codec for AnyCodec {
    fn decode_mut(&mut self, buf: &mut [u8]) -> Result<Option<Decoded>, FrameError> {
        match self {
            // WebSocket unmasks in place; the others have nothing to change.
            AnyCodec::Ws(c) => c.decode_mut(buf),
            other => other.decode(buf),
        }
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        match self {
            AnyCodec::Line(c) => c.decode(buf),
            AnyCodec::Length(c) => c.decode(buf),
            AnyCodec::Ws(c) => c.decode(buf),
        }
    }

    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        match self {
            AnyCodec::Line(c) => c.encode(payload, dst),
            AnyCodec::Length(c) => c.encode(payload, dst),
            AnyCodec::Ws(c) => c.encode(payload, dst),
        }
    }

    fn max_frame_len(&self) -> usize {
        match self {
            AnyCodec::Line(c) => c.max_frame_len(),
            AnyCodec::Length(c) => c.max_frame_len(),
            AnyCodec::Ws(c) => c.max_frame_len(),
        }
    }

    fn encoded_len(&self, len: usize) -> usize {
        match self {
            AnyCodec::Line(c) => c.encoded_len(len),
            AnyCodec::Length(c) => c.encoded_len(len),
            AnyCodec::Ws(c) => c.encoded_len(len),
        }
    }

    fn max_buffered_len(&self) -> usize {
        match self {
            AnyCodec::Line(c) => c.max_buffered_len(),
            AnyCodec::Length(c) => c.max_buffered_len(),
            AnyCodec::Ws(c) => c.max_buffered_len(),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyCodec::Line(c) => c.reset(),
            AnyCodec::Length(c) => c.reset(),
            AnyCodec::Ws(c) => c.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_framings_round_trip_a_heartbeat() {
        for framing in [Framing::Line, Framing::Length] {
            let mut codec = AnyCodec::new(framing, 1024, true);
            let mut wire = Vec::new();
            codec.encode(br#"{"ping":1}"#, &mut wire).unwrap();
            assert_eq!(wire.len(), codec.encoded_len(10));
            let d = codec.decode(&wire).unwrap().unwrap();
            assert_eq!(&wire[d.frame], br#"{"ping":1}"#);
        }
    }

    #[test]
    fn the_frame_cap_holds_for_both_framings() {
        for framing in [Framing::Line, Framing::Length] {
            let codec = AnyCodec::new(framing, 16, true);
            assert!(codec.encode(&[b'a'; 17], &mut Vec::new()).is_err());
        }
    }
}
