//! Outbound connections: a non-blocking connect (TCP, or a Unix socket path) whose timeout is
//! a deadline the caller's loop enforces.
//!
//! # Calling pattern
//! 1. [`Connecting::start`] creates the socket and starts the connect (never blocks).
//! 2. Register [`Connecting::stream_mut`] for `WRITABLE` (writability is how the kernel says
//!    the handshake finished, successfully or not), and put [`Connecting::deadline`] in the
//!    poll timeout.
//! 3. On a writable event, or when the deadline passes, call [`Connecting::poll`] with `now`.
//!
//! | socket state           | `now < deadline`       | `now >= deadline`      |
//! |------------------------|------------------------|------------------------|
//! | handshake in progress  | `Pending`              | `TimedOut`             |
//! | connected              | `Connected(stream)`    | `Connected(stream)`    |
//! | failed (`SO_ERROR`)    | `Failed(error)`        | `Failed(error)`        |
//!
//! A connection that completed is reported as connected even if the deadline has passed:
//! the work is done, and throwing it away would only cost a reconnect.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UnixStream};
use socket2::SockRef;

use crate::error::Error;
use crate::options::SocketOptions;
use crate::transport::{PeerAddr, Transport};

/// What [`Connecting::poll`] found.
#[derive(Debug)]
pub enum ConnectStatus<S = TcpStream> {
    /// Still in progress; wait for a writable event or the deadline.
    Pending,
    /// Connected; the stream is handed over (still registered as it was: re-register it with
    /// the interest you need, or build a [`Connection`](crate::Connection) and call
    /// `sync_interest` after deregistering).
    Connected(S),
    /// The connect failed (refused, unreachable...).
    Failed(Error),
    /// The deadline passed first. The socket is closed when the `Connecting` is dropped.
    TimedOut,
}

/// A non-blocking connect in progress. See the [module docs](self).
#[derive(Debug)]
pub struct Connecting<S: Transport = TcpStream> {
    stream: Option<S>,
    peer: PeerAddr,
    deadline: Instant,
}

impl Connecting<UnixStream> {
    /// Starts connecting to the Unix socket at `path`, to finish by `now + timeout`. Only
    /// `SO_SNDBUF` of `options` applies to a Unix socket.
    pub fn start_unix(
        path: impl AsRef<Path>,
        options: &SocketOptions,
        now: Instant,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)?;
        options.apply_unix(SockRef::from(&stream))?;
        Ok(Connecting {
            stream: Some(stream),
            peer: PeerAddr::Unix(Some(path.to_path_buf())),
            deadline: now + timeout,
        })
    }
}

impl Connecting<TcpStream> {
    /// Starts connecting to `addr`, applying `options`, to finish by `now + timeout`.
    pub fn start(
        addr: SocketAddr,
        options: &SocketOptions,
        now: Instant,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)?;
        options.apply(SockRef::from(&stream))?;
        Ok(Connecting {
            stream: Some(stream),
            peer: PeerAddr::Tcp(addr),
            deadline: now + timeout,
        })
    }

    /// The address being connected to.
    pub fn peer(&self) -> SocketAddr {
        match self.peer {
            PeerAddr::Tcp(a) => a,
            // Only `start` builds a `Connecting<TcpStream>`, and it stores a TCP address.
            PeerAddr::Unix(_) => unreachable!("a TCP connect has a TCP peer"),
        }
    }
}

impl<S: Transport> Connecting<S> {
    /// When the connect times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The address (or path) being connected to.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    /// The socket, to register for `WRITABLE`.
    ///
    /// # Panics
    /// After `poll` has returned anything but `Pending`.
    pub fn stream_mut(&mut self) -> &mut S {
        self.stream.as_mut().expect("connect already finished")
    }

    /// Checks the connect's progress at `now`. After a non-`Pending` result, the `Connecting`
    /// is spent: further calls return `Failed`.
    pub fn poll(&mut self, now: Instant) -> ConnectStatus<S> {
        let Some(stream) = self.stream.as_ref() else {
            return ConnectStatus::Failed(Error::Io(io::Error::other("connect already finished")));
        };
        // The mio recipe: a pending SO_ERROR means failure; a peer address means success;
        // NotConnected means still in progress.
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.stream = None;
                return ConnectStatus::Failed(Error::Io(e));
            }
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => ConnectStatus::Connected(self.stream.take().expect("checked above")),
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.raw_os_error() == Some(libc::EINPROGRESS) =>
            {
                if now >= self.deadline {
                    self.stream = None;
                    ConnectStatus::TimedOut
                } else {
                    ConnectStatus::Pending
                }
            }
            Err(e) => {
                self.stream = None;
                ConnectStatus::Failed(Error::Io(e))
            }
        }
    }
}
