//! What the driver does to one socket on the endpoint's behalf: queue a heartbeat (flushing a
//! full priority lane once), close (with a goodbye when asked), and name a socket error as a
//! [`CloseReason`].

use std::io;

use wheelbeat_net::{Error as NetError, Transport};

use super::{Conn, Io};
use crate::protocol::ProtocolError;
use crate::shell::{CloseReason, GOODBYE_DRAIN};

/// Why a frame could not be queued.
pub(super) enum Full {
    /// The lane is at its cap (after a flush, for heartbeats): the peer does not read.
    Lane,
    /// The socket failed while flushing.
    Failed(CloseReason),
    /// The frame itself was refused (over the frame cap): dropped, the connection lives.
    Refused(String),
}

impl From<&NetError> for Full {
    fn from(e: &NetError) -> Full {
        match e {
            NetError::QueueFull { .. } => Full::Lane,
            other => Full::Refused(other.to_string()),
        }
    }
}

/// Queues a heartbeat on the priority lane. A full lane is flushed once before giving up: a
/// peer that pipelines hundreds of pings in one write and reads the answers gets them all
/// (issue 8), while one that reads nothing still fills the lane and is closed.
pub(super) fn send_heartbeat(conn: &mut Conn, frame: &[u8]) -> Result<(), Full> {
    match conn.send_priority(frame) {
        Ok(()) => return Ok(()),
        Err(e) if !e.is_full() => return Err(Full::from(e.error())),
        Err(_) => {}
    }
    if let Err(e) = conn.flush() {
        return Err(Full::Failed(close_reason_for(&e)));
    }
    conn.send_priority(frame).map_err(|e| Full::from(e.error()))
}

/// Closes a socket as the endpoint asked: flush what is queued (best effort), and for a
/// goodbye half-close and drain so the kernel sends FIN, not a reset.
pub(super) fn close_socket(io: Io, goodbye: bool, registry: &mio::Registry) {
    let mut conn = match io {
        // Dropping the socket closes it, which also removes it from epoll; after a failed
        // `poll` the `Connecting` holds no socket at all. A handshake cut short has no
        // session to close cleanly.
        Io::Connecting(_) | Io::Handshaking(_) => return,
        Io::Open { conn, .. } | Io::Frozen(conn) => conn,
    };
    let _ = conn.flush();
    let _ = conn.deregister(registry);
    // TLS: every close of an established session sends close_notify (best effort: what the
    // socket takes now), so the peer can tell a close from a truncation. A goodbye
    // half-closes (a FIN after the alert, if any).
    if goodbye || conn.stream().is_tls() {
        let _ = conn.shutdown();
    }
    if goodbye {
        // Read what the peer already sent, so that closing sends FIN, not an RST that could
        // destroy the goodbye before the peer reads it. Raw bytes: under TLS, records.
        let stream = conn.stream_mut().plain_mut();
        let mut drained = 0;
        let mut sink = [0u8; 4096];
        while drained < GOODBYE_DRAIN {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
}

pub(super) fn close_reason_for(e: &NetError) -> CloseReason {
    match e {
        NetError::TruncatedFrame { .. } | NetError::WriteZero => CloseReason::PeerClosed,
        NetError::QueueFull { .. } => CloseReason::WriteOverflow,
        NetError::FrameTooLong { .. } => CloseReason::Protocol(ProtocolError::FrameTooLong),
        NetError::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => CloseReason::PeerClosed,
            _ => CloseReason::Io(io.to_string()),
        },
        other => CloseReason::Io(other.to_string()),
    }
}
