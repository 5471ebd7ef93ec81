//! [`Server`]: listen, accept and serve heartbeating connections on one or
//! more event-loop threads.
//!
//! With [`loops(n)`](ServerBuilder::loops) each loop has its own listener on
//! the same port (`SO_REUSEPORT`) and the kernel spreads new connections over
//! them; loops share nothing, so they scale with cores.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use mio::{Poll, Waker};
use wheelbeat_net::{Acceptor, ListenConfig, PeerAddr};

use super::handle::{Handle, LoopLink, SendError, Shared};
use super::{ConnId, Handler, Options, Snapshot, StartError};
use crate::driver::{AnyAcceptor, Driver, LISTENER, WAKER};
use crate::endpoint::Target;

/// Builds a [`Server`]. See [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    addr: PeerAddr,
    loops: usize,
    pub(super) opts: Options,
    listen: ListenConfig,
}

impl ServerBuilder {
    super::setters::shared_setters!();

    /// Number of event-loop threads (default 1). More than one shares the port
    /// with `SO_REUSEPORT`; a Unix-socket server has one loop.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n.max(1);
        self
    }

    /// Listener settings (backlog, accept budget, fd-exhaustion back-off...).
    pub fn listen_config(mut self, config: ListenConfig) -> Self {
        self.listen = config;
        self
    }

    /// Most live connections per loop (default 100,000); beyond it new
    /// connections wait in the kernel's backlog.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.listen = self.listen.max_connections(n);
        self
    }

    /// Checks every setting ([`Options::validate`]), binds, spawns the loops and starts
    /// serving. `make_handler(i)` builds the handler of loop `i` (on the calling thread).
    ///
    /// A bad setting is [`StartError::Settings`], naming it; nothing is bound or spawned.
    pub fn start<H, F>(self, mut make_handler: F) -> Result<Server, StartError>
    where
        H: Handler,
        F: FnMut(usize) -> H,
    {
        self.opts.validate()?;
        let mut listen = self.listen.clone();
        listen.socket = self.opts.socket;
        let addr = match &self.addr {
            PeerAddr::Tcp(addr) => *addr,
            PeerAddr::Unix(path) => {
                let Some(path) = path else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a Unix-socket server needs a path",
                    )
                    .into());
                };
                // One listener: a socket path cannot be shared like a port.
                let acceptor =
                    Acceptor::bind_unix(path, LISTENER, listen.clone()).map_err(io::Error::from)?;
                let acceptors = vec![(Some(AnyAcceptor::Unix(acceptor)), Vec::new())];
                let local = self.addr.clone();
                let handle = spawn_loops(acceptors, &self.opts, &mut make_handler, Some(local))?;
                log::info!("listening on {} with 1 loop", self.addr);
                return Ok(Server { handle });
            }
        };
        if self.loops > 1 {
            listen.reuse_port = true;
        }
        // The first bind resolves port 0; the others join that port.
        let first = wheelbeat_net::bind(addr, &listen).map_err(io::Error::from)?;
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..self.loops {
            listeners.push(wheelbeat_net::bind(local_addr, &listen).map_err(io::Error::from)?);
        }
        let acceptors = listeners
            .into_iter()
            .map(|l| {
                let a = AnyAcceptor::Tcp(Acceptor::new(l, LISTENER, listen.clone()));
                (Some(a), Vec::new())
            })
            .collect();
        let local = PeerAddr::Tcp(local_addr);
        let handle = spawn_loops(acceptors, &self.opts, &mut make_handler, Some(local))?;
        log::info!("listening on {local_addr} with {} loop(s)", self.loops);
        Ok(Server { handle })
    }
}

/// Builds one [`Driver`] per entry (on this thread, so set-up errors are
/// returned here) and runs each on its own thread.
pub(crate) fn spawn_loops<H, F>(
    loops: Vec<(Option<AnyAcceptor>, Vec<Target>)>,
    opts: &Options,
    make_handler: &mut F,
    local_addr: Option<PeerAddr>,
) -> io::Result<Handle>
where
    H: Handler,
    F: FnMut(usize) -> H,
{
    let shared = Arc::new(Shared::new(loops.len()));
    let mut links = Vec::new();
    let mut built = Vec::new();
    for (i, (acceptor, targets)) in loops.into_iter().enumerate() {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = crossbeam_channel::bounded(opts.command_capacity.max(1));
        let el = Driver::new(
            i,
            poll,
            make_handler(i),
            rx,
            shared.clone(),
            opts.clone(),
            acceptor,
            targets,
        )?;
        links.push(LoopLink { tx, waker });
        built.push(el);
    }
    let mut threads = Vec::new();
    for (i, el) in built.into_iter().enumerate() {
        let t = thread::Builder::new()
            .name(format!("wheelbeat-loop-{i}"))
            .spawn(move || el.run());
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                // Stop the loops already running before reporting.
                Handle::new(links, shared, threads, local_addr).shutdown();
                return Err(e);
            }
        }
    }
    Ok(Handle::new(links, shared, threads, local_addr))
}

/// A running heartbeat server.
///
/// ```no_run
/// use std::time::Duration;
/// use wheelbeat_heartbeat::{Config, Server};
///
/// # fn main() -> std::io::Result<()> {
/// let mut config = Config::default();
/// config.interval = Duration::from_secs(10);
/// let server = Server::builder("127.0.0.1:0".parse().unwrap())
///     .heartbeat(config)
///     .start(|_loop| ())?; // `()`: heartbeats only, no application handler
/// println!("listening on {}", server.local_addr());
/// server.shutdown();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    handle: Handle,
}

impl Server {
    /// A builder for a server listening on `addr` (port 0 picks a free port).
    pub fn builder(addr: SocketAddr) -> ServerBuilder {
        ServerBuilder {
            addr: PeerAddr::Tcp(addr),
            loops: 1,
            opts: Options::default(),
            listen: ListenConfig::default(),
        }
    }

    /// A builder for a server listening on a Unix domain stream socket at `path`, which
    /// must not exist yet (remove a stale socket file first). It runs one loop; `backlog`
    /// and `reuse_port` of the listener settings do not apply.
    ///
    /// ```no_run
    /// use wheelbeat_heartbeat::Server;
    ///
    /// # fn main() -> Result<(), wheelbeat_heartbeat::StartError> {
    /// let server = Server::builder_unix("/tmp/wheelbeat.sock").start(|_| ())?;
    /// println!("listening on {}", server.listen_addr());
    /// # server.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn builder_unix(path: impl Into<PathBuf>) -> ServerBuilder {
        ServerBuilder {
            addr: PeerAddr::Unix(Some(path.into())),
            loops: 1,
            opts: Options::default(),
            listen: ListenConfig::default(),
        }
    }

    /// The bound address (with the real port when 0 was asked for). A Unix-socket server
    /// has none: it returns the unspecified `0.0.0.0:0`; see [`listen_addr`](Self::listen_addr).
    pub fn local_addr(&self) -> SocketAddr {
        match self.handle.listen_addr() {
            Some(PeerAddr::Tcp(a)) => *a,
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Where the server listens: its TCP address or its Unix socket path.
    pub fn listen_addr(&self) -> PeerAddr {
        self.handle
            .listen_addr()
            .cloned()
            .unwrap_or(PeerAddr::Unix(None))
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Merged statistics of all loops (see [`Handle::stats`]).
    pub fn stats(&self) -> Snapshot {
        self.handle.stats()
    }

    /// Sends an application frame to `conn` (see [`Handle::send`]).
    pub fn send(&self, conn: ConnId, frame: impl Into<Vec<u8>>) -> Result<(), SendError<Vec<u8>>> {
        self.handle.send(conn, frame)
    }

    /// Drains gracefully by `deadline` and joins the loops (see [`Handle::drain`]): stop
    /// accepting, tell every peer it is going away, serve them until they leave, close the
    /// rest at the deadline.
    pub fn drain(&self, deadline: std::time::Instant) {
        self.handle.drain(deadline);
    }

    /// Shuts down gracefully and joins the loops (see [`Handle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}
