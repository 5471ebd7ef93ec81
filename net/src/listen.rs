//! Listening: a bind helper with socket options, an accept loop that survives descriptor
//! exhaustion (on a TCP or a Unix listener, see [`Listener`]), and a helper to raise the
//! descriptor limit.
//!
//! # Ground rules
//! - [`Acceptor::accept`] accepts until `WouldBlock`, at most `accept_budget` per call (a SYN
//!   flood must not starve the loop), and never past `max_connections`.
//! - On `EMFILE`/`ENFILE` (or `ENOBUFS`/`ENOMEM`) the pending connection stays in the kernel's
//!   backlog and accepting again would fail at once; with level- or edge-triggered polling
//!   alike that is a spin. So the listener is *deregistered* for `emfile_backoff` and the
//!   caller is told when to call again ([`AcceptStatus::BackedOff`]). Existing connections are
//!   untouched and keep being served. The caller's loop passes `now`; nothing here reads a
//!   clock.
//!
//! # States
//!
//! | state       | listener registered | `accept(now)` does                                     |
//! |-------------|---------------------|--------------------------------------------------------|
//! | listening   | yes                 | accepts until `WouldBlock` / budget / cap              |
//! | full        | yes                 | accepts again once the caller's live count is below cap |
//! | backed off  | no                  | nothing before `until`; then re-registers and accepts  |

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::error::Error;
use crate::options::SocketOptions;
use crate::transport::Transport;

/// A listening socket an [`Acceptor`] can drive: [`TcpListener`] or [`UnixListener`].
pub trait Listener: mio::event::Source + std::fmt::Debug {
    /// The accepted stream.
    type Stream: Transport;
    /// The peer address `accept` reports.
    type Addr: std::fmt::Debug;
    /// Accepts one connection (non-blocking).
    fn accept(&self) -> io::Result<(Self::Stream, Self::Addr)>;
    /// Applies the socket options that fit this kind of socket to an accepted stream.
    fn configure(stream: &Self::Stream, options: &SocketOptions) -> Result<(), Error>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self)
    }
    fn configure(stream: &TcpStream, options: &SocketOptions) -> Result<(), Error> {
        options.apply(SockRef::from(stream))
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = std::os::unix::net::SocketAddr;
    fn accept(&self) -> io::Result<(UnixStream, Self::Addr)> {
        UnixListener::accept(self)
    }
    fn configure(stream: &UnixStream, options: &SocketOptions) -> Result<(), Error> {
        options.apply_unix(SockRef::from(stream))
    }
}

/// Listening options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ListenConfig {
    /// Options applied to every accepted socket.
    pub socket: SocketOptions,
    /// `SO_REUSEPORT`: several listeners (one per event loop) share the port and the kernel
    /// spreads connections over them. Default off.
    pub reuse_port: bool,
    /// `listen(2)` backlog. Default 1024 (the kernel caps it at `somaxconn`).
    pub backlog: i32,
    /// Most live connections; at the cap the acceptor stops accepting. Default 100,000.
    pub max_connections: usize,
    /// Most accepts per call to [`Acceptor::accept`]. Default 256.
    pub accept_budget: usize,
    /// How long the listener is deregistered after `EMFILE`/`ENFILE`. Default 100 ms.
    pub emfile_backoff: Duration,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            socket: SocketOptions::default(),
            reuse_port: false,
            backlog: 1024,
            max_connections: 100_000,
            accept_budget: 256,
            emfile_backoff: Duration::from_millis(100),
        }
    }
}

impl ListenConfig {
    /// Sets [`socket`](Self::socket).
    pub fn socket(mut self, o: SocketOptions) -> Self {
        self.socket = o;
        self
    }
    /// Sets [`reuse_port`](Self::reuse_port).
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    /// Sets [`backlog`](Self::backlog).
    pub fn backlog(mut self, n: i32) -> Self {
        self.backlog = n;
        self
    }
    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Sets [`accept_budget`](Self::accept_budget) (at least 1).
    pub fn accept_budget(mut self, n: usize) -> Self {
        self.accept_budget = n.max(1);
        self
    }
    /// Sets [`emfile_backoff`](Self::emfile_backoff).
    pub fn emfile_backoff(mut self, d: Duration) -> Self {
        self.emfile_backoff = d;
        self
    }
}

/// Binds a non-blocking listener on `addr` with `SO_REUSEADDR`, and `SO_REUSEPORT` if
/// configured.
pub fn bind(addr: SocketAddr, config: &ListenConfig) -> Result<TcpListener, Error> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(config.backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// How a call to [`Acceptor::accept`] ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptStatus {
    /// The backlog is empty: wait for the next event.
    Drained,
    /// `accept_budget` connections were accepted; call again soon (without an event).
    BudgetExhausted,
    /// `max_connections` are live. Call again once a connection has closed.
    Full,
    /// Out of descriptors: the listener is deregistered until `until`. Call again at or after
    /// `until` (put it in your poll timeout); it re-registers then.
    BackedOff {
        /// When to call again.
        until: Instant,
    },
}

/// The accept side of a server: a listener plus its back-off state.
///
/// ```no_run
/// # use std::time::Instant;
/// # use mio::{Poll, Token};
/// use wheelbeat_net::{bind, Acceptor, AcceptStatus, ListenConfig};
/// # fn f(poll: &Poll) -> Result<(), wheelbeat_net::Error> {
/// let config = ListenConfig::default().max_connections(10_000);
/// let listener = bind("127.0.0.1:0".parse().unwrap(), &config)?;
/// let mut acceptor = Acceptor::new(listener, Token(usize::MAX), config);
/// acceptor.register(poll.registry())?;
/// // on a listener event, or when `acceptor.resume_at()` has passed:
/// let live = 0;
/// match acceptor.accept(poll.registry(), Instant::now(), live, |stream, peer| {
///     // insert into the connection table, register...
/// })? {
///     AcceptStatus::BackedOff { until } => { /* poll with a timeout until `until` */ }
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Acceptor<L: Listener = TcpListener> {
    listener: L,
    token: Token,
    config: ListenConfig,
    registered: bool,
    backed_off_until: Option<Instant>,
    backoffs: u64,
    /// True from a back-off until the next successful accept: only the first back-off of a
    /// streak is logged as a warning, so a long exhaustion does not flood the log.
    exhausted: bool,
    /// How the last [`accept`](Acceptor::accept) call ended, when that means "call again
    /// without an event": `BudgetExhausted` or `Full` (`Drained` otherwise).
    last: AcceptStatus,
}

impl Acceptor<TcpListener> {
    /// Binds `addr` with `config` (see [`bind`]) and wraps the listener.
    pub fn bind(addr: SocketAddr, token: Token, config: ListenConfig) -> Result<Self, Error> {
        Ok(Acceptor::new(bind(addr, &config)?, token, config))
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }
}

impl Acceptor<UnixListener> {
    /// Binds a Unix stream socket at `path` (which must not exist: remove a stale socket
    /// file first) and wraps the listener. `config.backlog` and `reuse_port` do not apply
    /// (mio's default backlog is used).
    pub fn bind_unix(
        path: impl AsRef<Path>,
        token: Token,
        config: ListenConfig,
    ) -> Result<Self, Error> {
        Ok(Acceptor::new(UnixListener::bind(path)?, token, config))
    }
}

impl<L: Listener> Acceptor<L> {
    /// Wraps a listener (from [`bind`] or elsewhere; it must be non-blocking). `token` is the
    /// listener's token: pick one a [`ConnTable`](crate::ConnTable) never issues, e.g.
    /// `Token(usize::MAX)`.
    pub fn new(listener: L, token: Token, config: ListenConfig) -> Self {
        Acceptor {
            listener,
            token,
            config,
            registered: false,
            backed_off_until: None,
            backoffs: 0,
            exhausted: false,
            last: AcceptStatus::Drained,
        }
    }

    /// Registers the listener for `READABLE` events.
    pub fn register(&mut self, registry: &Registry) -> Result<(), Error> {
        if !self.registered {
            registry.register(&mut self.listener, self.token, Interest::READABLE)?;
            self.registered = true;
        }
        Ok(())
    }

    /// Deregisters the listener (e.g. at shutdown).
    pub fn deregister(&mut self, registry: &Registry) -> Result<(), Error> {
        if self.registered {
            registry.deregister(&mut self.listener)?;
            self.registered = false;
        }
        Ok(())
    }

    /// The listener.
    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// The listener's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The configuration.
    pub fn config(&self) -> &ListenConfig {
        &self.config
    }

    /// When a backed-off acceptor wants [`accept`](Self::accept) called again; `None` if it is
    /// not backed off. Fold it into the poll timeout.
    pub fn resume_at(&self) -> Option<Instant> {
        self.backed_off_until
    }

    /// The poll timeout the acceptor needs: zero if the last call stopped at its accept
    /// budget (more connections are waiting and no event will say so), the time left until
    /// [`resume_at`](Self::resume_at) when backed off, `None` (no constraint) otherwise. Being
    /// [`Full`](AcceptStatus::Full) asks for no wake-up: a slot frees only when the loop
    /// closes a connection, and then it is awake anyway.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.last == AcceptStatus::BudgetExhausted {
            return Some(Duration::ZERO);
        }
        self.backed_off_until
            .map(|t| t.saturating_duration_since(now))
    }

    /// True if the back-off has expired and [`accept`](Self::accept) should be called now,
    /// even without a listener event (the listener is not registered while backed off).
    pub fn resume_due(&self, now: Instant) -> bool {
        self.backed_off_until.is_some_and(|t| t <= now)
    }

    /// True if [`accept`](Self::accept) should be called this turn even without a listener
    /// event: the back-off has expired, the last call stopped at its accept budget, or it
    /// stopped at `max_connections` (a slot may have freed since; checking costs a comparison,
    /// and the acceptor's [`timeout`](Self::timeout) does not keep the loop awake for it).
    pub fn accept_due(&self, now: Instant) -> bool {
        self.resume_due(now)
            || matches!(
                self.last,
                AcceptStatus::BudgetExhausted | AcceptStatus::Full
            )
    }

    /// How many times the acceptor has backed off on descriptor exhaustion.
    pub fn backoffs(&self) -> u64 {
        self.backoffs
    }

    /// Accepts pending connections, handing each (options applied) to `on_accept`.
    ///
    /// `live` is the caller's count of open connections, for `max_connections`. `now` is the
    /// loop's clock, for the back-off. Transient per-connection failures (`ECONNABORTED`,
    /// `EINTR`, `EPROTO`, a socket option failing on an already-reset socket) are skipped.
    /// Errors are for the listener itself.
    pub fn accept<F>(
        &mut self,
        registry: &Registry,
        now: Instant,
        live: usize,
        on_accept: F,
    ) -> Result<AcceptStatus, Error>
    where
        F: FnMut(L::Stream, L::Addr),
    {
        let status = self.accept_some(registry, now, live, on_accept);
        self.last = match status {
            Ok(s @ (AcceptStatus::BudgetExhausted | AcceptStatus::Full)) => s,
            _ => AcceptStatus::Drained,
        };
        status
    }

    fn accept_some<F>(
        &mut self,
        registry: &Registry,
        now: Instant,
        live: usize,
        mut on_accept: F,
    ) -> Result<AcceptStatus, Error>
    where
        F: FnMut(L::Stream, L::Addr),
    {
        if let Some(until) = self.backed_off_until {
            if now < until {
                return Ok(AcceptStatus::BackedOff { until });
            }
            self.backed_off_until = None;
            self.register(registry)?;
        }
        let mut live = live;
        for _ in 0..self.config.accept_budget {
            if live >= self.config.max_connections {
                return Ok(AcceptStatus::Full);
            }
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = L::configure(&stream, &self.config.socket) {
                        // The peer may already have reset; drop this one and go on.
                        log::debug!("socket options on {peer:?}: {e}");
                        continue;
                    }
                    live += 1;
                    self.exhausted = false;
                    on_accept(stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(AcceptStatus::Drained);
                }
                Err(e) if is_fd_exhaustion(&e) => {
                    let until = now + self.config.emfile_backoff;
                    if std::mem::replace(&mut self.exhausted, true) {
                        log::debug!("accept: {e}; still backing off");
                    } else {
                        log::warn!(
                            "accept: {e}; pausing the listener for {:?} at a time until \
                             descriptors free up",
                            self.config.emfile_backoff
                        );
                    }
                    self.deregister(registry)?;
                    self.backed_off_until = Some(until);
                    self.backoffs += 1;
                    return Ok(AcceptStatus::BackedOff { until });
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(AcceptStatus::BudgetExhausted)
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

/// The descriptor limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit before the call.
    pub previous_soft: u64,
    /// Soft limit now.
    pub soft: u64,
    /// Hard limit (the ceiling an unprivileged process can raise the soft limit to).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and reports both. Servers holding many
/// connections call this at start-up.
pub fn raise_fd_limit() -> Result<FdLimit, Error> {
    use rlimit::Resource;
    let (previous_soft, hard) = Resource::NOFILE.get()?;
    // `increase_nofile_limit` also knows platform ceilings below the hard limit (macOS's
    // kern.maxfilesperproc, where the hard limit may read as infinite).
    rlimit::increase_nofile_limit(hard)?;
    let (soft, hard) = Resource::NOFILE.get()?;
    Ok(FdLimit {
        previous_soft,
        soft,
        hard,
    })
}
