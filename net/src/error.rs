//! The crate's one error type, and the send error that hands a message back.
//!
//! # Ground rules
//! - `WouldBlock` is flow control, never an error: every method that can meet it reports it
//!   as a status (`ReadStatus::Drained`, `FlushStatus::Pending`, ...) instead.
//! - An [`Error`] returned by a connection method means *that connection* is done: close it and
//!   go on serving the others. No error here is a reason to stop an event loop, except the ones
//!   returned by [`Acceptor::accept`](crate::Acceptor::accept) for the listener itself.
//! - Messages are lowercase without a trailing period, as std's are.

use std::fmt;
use std::io;

/// Everything that can go wrong in wheelbeat-net.
///
/// Frame errors (the first variants) come from a [`Codec`](crate::Codec) and mean the peer
/// sent bytes that cannot be a valid frame (or the local caller tried to send one); the
/// connection should be closed. The enum is `#[non_exhaustive]`: match with a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A frame is longer than the codec's maximum frame length.
    ///
    /// For a line codec this is raised as soon as `max + 2` bytes have arrived without a
    /// newline, so an endless line costs at most that much memory.
    FrameTooLong {
        /// The length seen so far (a lower bound for a line that has not ended).
        len: u64,
        /// The codec's maximum frame length.
        max: usize,
    },
    /// A payload given to `encode` cannot be framed by this codec (for the line codec: it
    /// contains `\n` or ends with `\r`, which would not survive a round trip).
    Unencodable {
        /// Why the payload cannot be framed.
        reason: &'static str,
    },
    /// The write queue would grow past its byte cap; the message was not queued.
    QueueFull {
        /// Bytes already queued (accounting included, see [`Connection`](crate::Connection)).
        queued: usize,
        /// The cap that would be exceeded.
        cap: usize,
    },
    /// The peer closed its side while a frame was only partly received.
    TruncatedFrame {
        /// Bytes of the unfinished frame that were dropped.
        len: usize,
    },
    /// A non-blocking connect did not complete before its deadline.
    ConnectTimedOut,
    /// A transport handshake (TLS) did not complete before its deadline.
    HandshakeTimedOut,
    /// A TLS configuration could not be built (bad PEM, a key that does not match, ...).
    /// A peer's TLS failure on a live connection is an [`Error::Io`] of kind `InvalidData`
    /// whose message starts with `tls:`.
    Tls {
        /// What failed.
        reason: String,
    },
    /// The socket wrote zero bytes for a non-empty buffer (the peer can no longer receive).
    WriteZero,
    /// An I/O error from the operating system (never `WouldBlock`).
    Io(io::Error),
    /// The WebSocket peer broke RFC 6455, or its upgrade request or response was refused;
    /// [`WsError::close_code`](crate::ws::WsError::close_code) says what to tell it.
    WebSocket(crate::ws::WsError),
}

/// The name used in the [`Codec`](crate::Codec) trait for decode and encode errors: it is the
/// crate's [`Error`], so a frame error converts into nothing else and `?` just works.
pub type FrameError = Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FrameTooLong { len, max } => {
                write!(f, "frame too long: {len} bytes, maximum is {max}")
            }
            Error::Unencodable { reason } => write!(f, "payload cannot be framed: {reason}"),
            Error::QueueFull { queued, cap } => {
                write!(f, "write queue full: {queued} bytes queued, cap is {cap}")
            }
            Error::TruncatedFrame { len } => {
                write!(f, "peer closed with a partial frame of {len} bytes")
            }
            Error::ConnectTimedOut => f.write_str("connect timed out"),
            Error::HandshakeTimedOut => f.write_str("handshake timed out"),
            Error::Tls { reason } => write!(f, "tls: {reason}"),
            Error::WriteZero => f.write_str("socket accepted zero bytes"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::WebSocket(e) => write!(f, "websocket: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::WebSocket(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    /// Callers handle `WouldBlock` before converting; this conversion is for real failures.
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// The closest [`io::ErrorKind`]: the inner kind for [`Error::Io`]; `InvalidData` for a
    /// frame the peer sent; `InvalidInput` for one the caller tried to send; `UnexpectedEof`
    /// for a truncated frame; `TimedOut`, `WriteZero` as named; `Other` for a full queue;
    /// `InvalidData` for a WebSocket protocol or handshake error.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::FrameTooLong { .. } => io::ErrorKind::InvalidData,
            Error::Unencodable { .. } | Error::Tls { .. } => io::ErrorKind::InvalidInput,
            Error::QueueFull { .. } => io::ErrorKind::Other,
            Error::TruncatedFrame { .. } => io::ErrorKind::UnexpectedEof,
            Error::ConnectTimedOut | Error::HandshakeTimedOut => io::ErrorKind::TimedOut,
            Error::WriteZero => io::ErrorKind::WriteZero,
            Error::Io(e) => e.kind(),
            Error::WebSocket(_) => io::ErrorKind::InvalidData,
        }
    }
}

/// For callers that speak `io::Result`: [`Error::Io`] unwraps to the original error, the
/// others become an `io::Error` of [`Error::kind`] carrying this error as its source.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

/// A failed [`send`](crate::Connection::send): the message is handed back with the reason,
/// so the caller decides whether to drop it, close the connection or retry after a flush
/// (the crossbeam `TrySendError::Full(T)` idea).
pub struct SendError<M> {
    msg: M,
    error: Error,
}

impl<M> SendError<M> {
    pub(crate) fn new(msg: M, error: Error) -> Self {
        SendError { msg, error }
    }

    /// True if the queue was full (retry after the peer drains it); false if the message
    /// itself cannot be framed (retrying is pointless).
    pub fn is_full(&self) -> bool {
        matches!(self.error, Error::QueueFull { .. })
    }

    /// Why the send failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Takes the message back.
    pub fn into_inner(self) -> M {
        self.msg
    }

    /// Splits into the message and the reason.
    pub fn into_parts(self) -> (M, Error) {
        (self.msg, self.error)
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send failed: {}", self.error)
    }
}

impl<M> std::error::Error for SendError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<SendError<M>> for Error {
    fn from(e: SendError<M>) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_a_trailing_period() {
        let errors = [
            Error::FrameTooLong {
                len: 70_000,
                max: 65_536,
            },
            Error::Unencodable {
                reason: "payload contains a newline",
            },
            Error::QueueFull { queued: 10, cap: 8 },
            Error::TruncatedFrame { len: 3 },
            Error::ConnectTimedOut,
            Error::HandshakeTimedOut,
            Error::Tls {
                reason: "bad pem".into(),
            },
            Error::WriteZero,
            Error::Io(io::Error::other("boom")),
            Error::WebSocket(crate::ws::WsError::InvalidUtf8),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.starts_with(|c: char| c.is_lowercase()), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn converts_to_io_error_keeping_the_kind_and_the_original() {
        let e: io::Error = Error::FrameTooLong { len: 9, max: 8 }.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.get_ref().unwrap().is::<Error>());
        let inner = io::Error::from(io::ErrorKind::ConnectionReset);
        let e: io::Error = Error::Io(inner).into();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
}
