//! The transports of the shell, in one place: [`Stream`] (TCP, a Unix socket, or TLS over
//! either) and [`AnyAcceptor`] (a TCP or Unix listener).
//!
//! # Ground rules
//! - One enum per role, dispatching to `wheelbeat-net`'s transports: the driver, the codec
//!   and the endpoint never learn which one carries a connection. A codec or session layer
//!   added above [`Connection`](wheelbeat_net::Connection) sees only a [`Transport`].
//! - [`Stream::Tls`] is boxed: rustls's state is a few KiB, and the plain variants are not
//!   made to carry its size (a [`Stream`] is 16 bytes).
//! - A TLS stream's plaintext that arrived with the last handshake flight, read while the
//!   driver was finishing the handshake, is kept in [`Stream`]'s `early` buffer and given to
//!   the codec first; the buffer is freed once drained.

use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use wheelbeat_net::{
    AcceptStatus, Acceptor, ConnectStatus, Connecting, Error as NetError, Handshake, PeerAddr,
    ShutdownStatus, SocketOptions, Transport,
};

/// A plain socket: TCP or a Unix domain stream socket.
#[derive(Debug)]
pub(crate) enum Plain {
    Tcp(TcpStream),
    Unix(UnixStream),
}

macro_rules! plain {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Plain::Tcp($s) => $e,
            Plain::Unix($s) => $e,
        }
    };
}

impl mio::event::Source for Plain {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        plain!(self, s => s.register(r, t, i))
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        plain!(self, s => s.reregister(r, t, i))
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        plain!(self, s => s.deregister(r))
    }
}

impl Transport for Plain {
    const SHORT_READ_DRAINS: bool = true;

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        plain!(self, s => Transport::read(s, buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        plain!(self, s => Transport::write_vectored(s, bufs))
    }
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        plain!(self, s => s.shutdown_write())
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        plain!(self, s => Transport::take_error(s))
    }
    fn peer_addr(&self) -> io::Result<PeerAddr> {
        plain!(self, s => Transport::peer_addr(s))
    }
    fn local_addr(&self) -> io::Result<PeerAddr> {
        plain!(self, s => Transport::local_addr(s))
    }
}

/// TLS over a plain socket.
#[cfg(feature = "tls")]
pub(crate) type TlsStream = wheelbeat_net::tls::TlsStream<Plain>;

/// A TLS stream and the plaintext that came with the end of its handshake.
#[cfg(feature = "tls")]
#[derive(Debug)]
pub(crate) struct TlsConn {
    tls: TlsStream,
    /// Plaintext read while finishing the handshake, delivered before anything else.
    early: Vec<u8>,
    /// The last read was served from `early`.
    from_early: bool,
}

/// The byte stream under every connection of the shell.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(Plain),
    #[cfg(feature = "tls")]
    Tls(Box<TlsConn>),
}

impl Stream {
    /// Wraps an accepted (or connected) socket in the server (client) side of TLS when the
    /// loop speaks TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(tls: TlsStream) -> Stream {
        Stream::Tls(Box::new(TlsConn {
            tls,
            early: Vec::new(),
            from_early: false,
        }))
    }

    /// True while a TLS handshake is still in progress.
    pub(crate) fn is_handshaking(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.tls.is_handshaking(),
        }
    }

    /// The ALPN protocol and the SNI name agreed in a TLS handshake.
    pub(crate) fn tls_names(&self) -> (Option<Vec<u8>>, Option<String>) {
        match self {
            Stream::Plain(_) => (None, None),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => (
                t.tls.alpn_protocol().map(<[u8]>::to_vec),
                t.tls.server_name().map(str::to_owned),
            ),
        }
    }

    /// Keeps `bytes` (plaintext read during the handshake) for the codec's first read.
    pub(crate) fn push_early(&mut self, bytes: &[u8]) {
        match self {
            // A plain stream has no handshake: nothing is read before the codec reads.
            Stream::Plain(_) => {
                let _ = bytes;
            }
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.early.extend_from_slice(bytes),
        }
    }

    /// True if plaintext read during the handshake waits for the codec.
    pub(crate) fn has_early_input(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => !t.early.is_empty(),
        }
    }

    /// True for a TLS stream.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// The socket under the stream (to drain raw bytes before a close).
    pub(crate) fn plain_mut(&mut self) -> &mut Plain {
        match self {
            Stream::Plain(p) => p,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.tls.get_mut(),
        }
    }
}

macro_rules! any {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Plain($s) => $e,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => {
                let $s = &mut t.tls;
                $e
            }
        }
    };
}

macro_rules! any_ref {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Plain($s) => $e,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => {
                let $s = &t.tls;
                $e
            }
        }
    };
}

impl mio::event::Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        any!(self, s => s.register(r, t, i))
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        any!(self, s => s.reregister(r, t, i))
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        any!(self, s => s.deregister(r))
    }
}

impl Transport for Stream {
    // Only a plain socket proves its queue empty by a short read; a TLS record split across
    // reads does not. The constant is the safe answer; each stream gives its own below.
    const SHORT_READ_DRAINS: bool = false;

    fn read_drained(&self, n: usize, room: usize) -> bool {
        match self {
            Stream::Plain(s) => s.read_drained(n, room),
            // Plaintext kept from the handshake proves nothing about the socket.
            #[cfg(feature = "tls")]
            Stream::Tls(t) => !t.from_early && t.tls.read_drained(n, room),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => {
                let TlsConn {
                    tls,
                    early,
                    from_early,
                } = &mut **t;
                *from_early = !early.is_empty();
                if early.is_empty() {
                    return Transport::read(tls, buf);
                }
                let n = early.len().min(buf.len());
                buf[..n].copy_from_slice(&early[..n]);
                early.drain(..n);
                if early.is_empty() {
                    *early = Vec::new();
                }
                Ok(n)
            }
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        any!(self, s => s.write_vectored(bufs))
    }
    fn pending_output(&self) -> usize {
        any_ref!(self, s => s.pending_output())
    }
    fn flush_output(&mut self) -> io::Result<bool> {
        any!(self, s => s.flush_output())
    }
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        any!(self, s => s.shutdown_write())
    }
    fn heap_bytes(&self) -> usize {
        match self {
            Stream::Plain(_) => 0,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => {
                std::mem::size_of::<TlsConn>() + t.tls.heap_bytes() + t.early.capacity()
            }
        }
    }
    fn handshake(&self) -> Handshake {
        any_ref!(self, s => s.handshake())
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        any_ref!(self, s => s.take_error())
    }
    fn peer_addr(&self) -> io::Result<PeerAddr> {
        any_ref!(self, s => s.peer_addr())
    }
    fn local_addr(&self) -> io::Result<PeerAddr> {
        any_ref!(self, s => s.local_addr())
    }
}

/// A connect in flight, to an IP address or a Unix socket path.
#[derive(Debug)]
pub(crate) enum Dialing {
    Tcp(Connecting<TcpStream>),
    Unix(Connecting<UnixStream>),
}

impl Dialing {
    /// Starts connecting to `addr`, to finish by `now + timeout`.
    pub(crate) fn start(
        addr: &PeerAddr,
        options: &SocketOptions,
        now: Instant,
        timeout: Duration,
    ) -> Result<Dialing, NetError> {
        match addr {
            PeerAddr::Tcp(a) => Connecting::start(*a, options, now, timeout).map(Dialing::Tcp),
            PeerAddr::Unix(Some(p)) => {
                Connecting::start_unix(p, options, now, timeout).map(Dialing::Unix)
            }
            PeerAddr::Unix(None) => Err(NetError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unnamed Unix socket cannot be connected to",
            ))),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Dialing::Tcp(c) => c.stream_mut(),
            Dialing::Unix(c) => c.stream_mut(),
        }
    }

    pub(crate) fn poll(&mut self, now: Instant) -> ConnectStatus<Plain> {
        match self {
            Dialing::Tcp(c) => match c.poll(now) {
                ConnectStatus::Connected(s) => ConnectStatus::Connected(Plain::Tcp(s)),
                ConnectStatus::Pending => ConnectStatus::Pending,
                ConnectStatus::Failed(e) => ConnectStatus::Failed(e),
                ConnectStatus::TimedOut => ConnectStatus::TimedOut,
            },
            Dialing::Unix(c) => match c.poll(now) {
                ConnectStatus::Connected(s) => ConnectStatus::Connected(Plain::Unix(s)),
                ConnectStatus::Pending => ConnectStatus::Pending,
                ConnectStatus::Failed(e) => ConnectStatus::Failed(e),
                ConnectStatus::TimedOut => ConnectStatus::TimedOut,
            },
        }
    }
}

/// A listener of either kind.
#[derive(Debug)]
pub(crate) enum AnyAcceptor {
    Tcp(Acceptor<TcpListener>),
    Unix(Acceptor<UnixListener>),
}

macro_rules! acceptor {
    ($self:expr, $a:ident => $e:expr) => {
        match $self {
            AnyAcceptor::Tcp($a) => $e,
            AnyAcceptor::Unix($a) => $e,
        }
    };
}

impl AnyAcceptor {
    pub(crate) fn register(&mut self, registry: &Registry) -> Result<(), NetError> {
        acceptor!(self, a => a.register(registry))
    }
    pub(crate) fn deregister(&mut self, registry: &Registry) -> Result<(), NetError> {
        acceptor!(self, a => a.deregister(registry))
    }
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        acceptor!(self, a => a.resume_at())
    }
    pub(crate) fn resume_due(&self, now: Instant) -> bool {
        acceptor!(self, a => a.resume_due(now))
    }
    pub(crate) fn accept_due(&self, now: Instant) -> bool {
        acceptor!(self, a => a.accept_due(now))
    }

    /// Accepts pending connections as [`Acceptor::accept`] does, each as a plain stream with
    /// its peer's address.
    pub(crate) fn accept(
        &mut self,
        registry: &Registry,
        now: Instant,
        live: usize,
        mut on_accept: impl FnMut(Plain, PeerAddr),
    ) -> Result<AcceptStatus, NetError> {
        match self {
            AnyAcceptor::Tcp(a) => a.accept(registry, now, live, |s, peer| {
                on_accept(Plain::Tcp(s), PeerAddr::Tcp(peer))
            }),
            AnyAcceptor::Unix(a) => a.accept(registry, now, live, |s, peer| {
                on_accept(Plain::Unix(s), PeerAddr::from(peer))
            }),
        }
    }
}
