//! The transport seam: the byte stream under a [`Connection`](crate::Connection).
//!
//! A [`Connection`](crate::Connection) frames bytes; a [`Transport`] moves them. Plain TCP
//! ([`mio::net::TcpStream`]) and Unix domain stream sockets ([`mio::net::UnixStream`]) are
//! transports as they are; TLS (`tls::TlsStream`, feature `tls`) is a
//! transport wrapping one of them.
//!
//! # Ground rules
//! - Non-blocking, edge-triggered: `read` and `write_vectored` return `WouldBlock` when the
//!   socket has nothing more to give or take, and readiness is reported by the `mio::Poll` the
//!   transport is registered with (it is a [`mio::event::Source`]).
//! - `read` returns bytes for the codec (plaintext, for TLS); `Ok(0)` is the end of the
//!   stream. A transport that did work but has nothing to deliver yet (TLS records that were
//!   all handshake) returns `ErrorKind::Interrupted`: "call again". The connection counts
//!   those calls against its read budget, so a peer cannot keep it busy without sending data.
//! - A transport may hold output of its own (TLS ciphertext, handshake messages, a
//!   close_notify alert). While [`pending_output`](Transport::pending_output) is non-zero the
//!   connection keeps `WRITABLE` interest and [`Connection::flush`](crate::Connection::flush)
//!   calls [`flush_output`](Transport::flush_output). That output is bounded by the transport
//!   (TLS: about two records), never by the peer.
//! - [`read_drained`](Transport::read_drained) says whether the read just made proves the
//!   kernel's receive queue empty. For a plain socket a read that did not fill the buffer
//!   does ([`SHORT_READ_DRAINS`](Transport::SHORT_READ_DRAINS)); TLS gives its own proof,
//!   since one socket read can yield less plaintext than it read ciphertext.
//! - Closing the write half ([`shutdown_write`](Transport::shutdown_write)) is clean: a FIN
//!   for a plain socket; close_notify, then a FIN once it is written, for TLS.
//! - No clock: a TLS handshake deadline is an `Instant` given at construction, checked with
//!   the caller's `now` ([`Transport::handshake`]).

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::{TcpStream, UnixStream};

/// Where a transport is connected: a TCP address or a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddr {
    /// An IP socket address.
    Tcp(std::net::SocketAddr),
    /// A Unix domain socket; `None` for an unnamed socket (the usual case for the client
    /// end of a connection to a listening path).
    Unix(Option<std::path::PathBuf>),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => a.fmt(f),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<std::net::SocketAddr> for PeerAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        PeerAddr::Tcp(a)
    }
}

impl From<std::os::unix::net::SocketAddr> for PeerAddr {
    fn from(a: std::os::unix::net::SocketAddr) -> Self {
        PeerAddr::Unix(a.as_pathname().map(|p| p.to_path_buf()))
    }
}

/// Where a transport's handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// No handshake (plain sockets), or it has completed.
    Done,
    /// Still in progress; the connection is closed if it has not completed by `deadline`
    /// (`None`: no deadline was set).
    InProgress {
        /// When the handshake times out.
        deadline: Option<Instant>,
    },
}

impl Handshake {
    /// True if the handshake is still in progress at `now` with its deadline passed.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self, Handshake::InProgress { deadline: Some(d) } if now >= *d)
    }
}

/// How far [`Transport::shutdown_write`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// The write half is closed (the FIN is with the kernel).
    Done,
    /// Output (a TLS close_notify) is still pending: keep `WRITABLE` interest, `flush`, and
    /// call again.
    Pending,
}

/// A non-blocking byte stream that mio can poll, under a [`Connection`](crate::Connection).
/// See the [module docs](self) for the ground rules.
pub trait Transport: mio::event::Source + fmt::Debug {
    /// Whether a `read` that returned fewer bytes than the buffer had room for proves the
    /// receive queue was empty (see [`Connection`](crate::Connection)'s "Short reads").
    const SHORT_READ_DRAINS: bool;

    /// After a [`read`](Self::read) that returned `n > 0` bytes into a buffer of `room`
    /// bytes: whether the receive queue was empty when it returned and nothing the transport
    /// buffered is left to deliver, so that (with edge-triggered readiness) anything later
    /// raises a new event. Defaults to [`SHORT_READ_DRAINS`](Self::SHORT_READ_DRAINS) and
    /// `n < room`; a transport that is one of several kinds at run time, or that buffers
    /// (TLS), answers for itself. Answering `false` is always safe: it costs one more read.
    fn read_drained(&self, n: usize, room: usize) -> bool {
        Self::SHORT_READ_DRAINS && n < room
    }

    /// Reads bytes for the codec. `Ok(0)` is the end of the stream; `WouldBlock` means wait
    /// for the next readable event; `Interrupted` means "progress made, nothing to deliver:
    /// call again".
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes bytes from `bufs` in order, returning how many were taken (all of them belong
    /// to the transport from then on). `WouldBlock` when nothing can be taken now.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Bytes of the transport's own output not yet handed to the kernel (TLS records,
    /// handshake messages). Zero for a plain socket.
    fn pending_output(&self) -> usize {
        0
    }

    /// Writes the transport's own output until it is empty (`Ok(true)`) or the socket would
    /// block (`Ok(false)`).
    fn flush_output(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Starts or continues a clean close of the write half: a FIN for a plain socket;
    /// close_notify then a FIN for TLS.
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus>;

    /// Heap bytes of the transport's own buffers now; zero for a plain socket. (A TLS
    /// library's internal state is not visible here; the `tls` module documents its size.)
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Where the handshake stands ([`Handshake::Done`] for a plain socket).
    fn handshake(&self) -> Handshake {
        Handshake::Done
    }

    /// The pending socket error (`SO_ERROR`), if any: how a non-blocking connect reports
    /// failure.
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// The peer's address.
    fn peer_addr(&self) -> io::Result<PeerAddr>;

    /// The local address.
    fn local_addr(&self) -> io::Result<PeerAddr>;
}

/// A plain socket: reads and writes go straight to it, a short read proves its queue empty,
/// closing the write half is one `shutdown`.
macro_rules! socket_transport {
    ($stream:ty) => {
        impl Transport for $stream {
            const SHORT_READ_DRAINS: bool = true;

            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                Read::read(self, buf)
            }

            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                Write::write_vectored(self, bufs)
            }

            fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
                self.shutdown(Shutdown::Write)?;
                Ok(ShutdownStatus::Done)
            }

            fn take_error(&self) -> io::Result<Option<io::Error>> {
                <$stream>::take_error(self)
            }

            fn peer_addr(&self) -> io::Result<PeerAddr> {
                <$stream>::peer_addr(self).map(PeerAddr::from)
            }

            fn local_addr(&self) -> io::Result<PeerAddr> {
                <$stream>::local_addr(self).map(PeerAddr::from)
            }
        }
    };
}

socket_transport!(TcpStream);
socket_transport!(UnixStream);

/// Adapts a transport to `io::Write` for the write queue (which writes with
/// `write_vectored`).
pub(crate) struct AsWrite<'a, T: Transport>(pub(crate) &'a mut T);

impl<T: Transport> Write for AsWrite<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_expires_only_in_progress_at_or_after_its_deadline() {
        let t0 = Instant::now();
        let d = t0 + std::time::Duration::from_secs(1);
        let hs = Handshake::InProgress { deadline: Some(d) };
        assert!(!hs.expired(t0));
        assert!(hs.expired(d));
        assert!(!Handshake::Done.expired(d));
        assert!(!Handshake::InProgress { deadline: None }.expired(d));
    }

    #[test]
    fn peer_addr_displays_tcp_and_unix() {
        let tcp = PeerAddr::Tcp("127.0.0.1:9".parse().unwrap());
        assert_eq!(tcp.to_string(), "127.0.0.1:9");
        let unix = PeerAddr::Unix(Some("/tmp/x.sock".into()));
        assert_eq!(unix.to_string(), "unix:/tmp/x.sock");
        assert_eq!(PeerAddr::Unix(None).to_string(), "unix:(unnamed)");
    }
}
