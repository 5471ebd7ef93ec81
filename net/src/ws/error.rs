//! [`WsError`]: how a WebSocket peer broke the protocol, and the close code that says so.

use std::fmt;

use super::close;

/// A WebSocket protocol or handshake error. Carried in
/// [`Error::WebSocket`](crate::Error::WebSocket); the connection is finished:
/// [`Session::fail`](super::Session::fail) queues the close frame (or HTTP response) that
/// tells the peer why, then close the socket once it is flushed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// A framing rule of RFC 6455 was broken (reserved bits or opcode, fragmented or oversize
    /// control frame, continuation without a message, ...).
    Protocol(&'static str),
    /// A server got an unmasked frame.
    Unmasked,
    /// A client got a masked frame.
    Masked,
    /// A frame's payload is over the frame cap (refused from its header, before buffering).
    FrameTooLong {
        /// The announced payload length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// A message's payload is over the message cap (refused before the frame is appended).
    MessageTooLong {
        /// The message length it would have reached.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// A text message or close reason is not UTF-8.
    InvalidUtf8,
    /// A close frame carried a code that may not be sent.
    InvalidCloseCode(u16),
    /// The upgrade head passed the handshake cap without its blank line.
    HandshakeTooLong {
        /// The cap.
        max: usize,
    },
    /// The upgrade request or response is malformed or misses a required header.
    BadHandshake(&'static str),
    /// The client asked for a `Sec-WebSocket-Version` other than 13.
    UnsupportedVersion,
    /// The upgrade was refused with this HTTP status (by the server's hook, or as seen by a
    /// client).
    Rejected {
        /// The HTTP status.
        status: u16,
    },
}

impl WsError {
    /// The close code to send for this error (RFC 6455 section 7.4.1). Handshake errors have
    /// none on the wire (an HTTP status is sent instead); they map to 1002.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 => close::INVALID_PAYLOAD,
            WsError::FrameTooLong { .. } | WsError::MessageTooLong { .. } => close::TOO_BIG,
            _ => close::PROTOCOL_ERROR,
        }
    }

    /// True for errors of the upgrade (answered with an HTTP status, not a close frame).
    pub fn is_handshake(&self) -> bool {
        matches!(
            self,
            WsError::HandshakeTooLong { .. }
                | WsError::BadHandshake(_)
                | WsError::UnsupportedVersion
                | WsError::Rejected { .. }
        )
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(why) => write!(f, "protocol error: {why}"),
            WsError::Unmasked => f.write_str("unmasked frame from a client"),
            WsError::Masked => f.write_str("masked frame from a server"),
            WsError::FrameTooLong { len, max } => {
                write!(f, "frame of {len} bytes, maximum is {max}")
            }
            WsError::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes or more, maximum is {max}")
            }
            WsError::InvalidUtf8 => f.write_str("text is not utf-8"),
            WsError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            WsError::HandshakeTooLong { max } => {
                write!(f, "upgrade head longer than {max} bytes")
            }
            WsError::BadHandshake(why) => write!(f, "bad upgrade: {why}"),
            WsError::UnsupportedVersion => f.write_str("unsupported websocket version"),
            WsError::Rejected { status } => write!(f, "upgrade refused with status {status}"),
        }
    }
}

impl std::error::Error for WsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_codes_follow_rfc_6455() {
        let all = [
            (WsError::Protocol("reserved bits set"), 1002),
            (WsError::Unmasked, 1002),
            (WsError::Masked, 1002),
            (WsError::FrameTooLong { len: 9, max: 8 }, 1009),
            (WsError::MessageTooLong { len: 9, max: 8 }, 1009),
            (WsError::InvalidUtf8, 1007),
            (WsError::InvalidCloseCode(1005), 1002),
            (WsError::HandshakeTooLong { max: 8 }, 1002),
            (WsError::BadHandshake("no Host"), 1002),
            (WsError::UnsupportedVersion, 1002),
            (WsError::Rejected { status: 403 }, 1002),
        ];
        for (e, code) in all {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
            assert_eq!(e.close_code(), code, "{msg}");
        }
    }
}
