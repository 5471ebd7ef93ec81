//! Shared helpers for the real-socket tests: an echo server on its own thread, driven the way
//! the README's example drives a loop, with counters the tests assert on.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use wheelbeat_net::{
    Acceptor, Codec, ConnTable, Connection, DEFAULT_READ_BUDGET, ListenConfig, ReadBuf, ReadStatus,
    Ready, bind,
};

pub const LISTENER: Token = Token(usize::MAX);
pub const WAKER: Token = Token(usize::MAX - 1);

/// Generous bound for any single wait in these tests; a healthy run never gets near it.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the server saw, returned by [`EchoServer::stop`].
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub accepted: u64,
    pub max_live: usize,
    pub frames: u64,
    /// Connections closed because of an error (bad frame, I/O error).
    pub errors: u64,
    /// Connections closed because the peer closed.
    pub closed: u64,
    pub wakeups: u64,
}

pub struct EchoServer {
    pub addr: SocketAddr,
    waker: Arc<Waker>,
    handle: JoinHandle<Stats>,
}

impl EchoServer {
    /// Starts an echo server on 127.0.0.1:0 with `config`, one `make_codec()` per connection.
    pub fn start<C, F>(config: ListenConfig, make_codec: F) -> EchoServer
    where
        C: Codec + Send + 'static,
        F: Fn() -> C + Send + 'static,
    {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
        let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut acceptor = Acceptor::new(listener, LISTENER, config);
            acceptor.register(poll.registry()).unwrap();
            serve(&mut poll, &mut acceptor, make_codec)
        });
        EchoServer {
            addr,
            waker,
            handle,
        }
    }

    /// Stops the loop and returns its counters.
    pub fn stop(self) -> Stats {
        self.waker.wake().unwrap();
        self.handle.join().unwrap()
    }
}

/// The echo example's loop, with counters: `Ready` carries over what edge-triggered
/// readiness will not report again, and the acceptor says when it is due without an event.
fn serve<C: Codec, F: Fn() -> C>(poll: &mut Poll, acceptor: &mut Acceptor, make: F) -> Stats {
    let mut stats = Stats::default();
    let mut events = Events::with_capacity(1024);
    let mut conns: ConnTable<Connection<C>> = ConnTable::new();
    let mut scratch = ReadBuf::new();
    let mut ready = Ready::new();
    loop {
        let timeout = ready.timeout(acceptor.timeout(Instant::now()));
        poll.poll(&mut events, timeout).unwrap();
        stats.wakeups += 1;
        let now = Instant::now();
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        let registry = poll.registry();
        while let Some(token) = ready.next_token() {
            match token {
                WAKER => return stats,
                LISTENER => {
                    acceptor
                        .accept(registry, now, conns.len(), |stream, _| {
                            stats.accepted += 1;
                            let conn = Connection::with_codec(stream, make());
                            conns.insert_registered(registry, conn).unwrap();
                        })
                        .unwrap();
                    stats.max_live = stats.max_live.max(conns.len());
                }
                token => {
                    let Some(conn) = conns.get_mut(token) else {
                        continue;
                    };
                    let frames = &mut stats.frames;
                    let read = conn.read_frames(&mut scratch, DEFAULT_READ_BUDGET, |f, out| {
                        *frames += 1;
                        match out.send(f) {
                            Ok(()) => ControlFlow::Continue(()),
                            Err(_) => ControlFlow::Break(()),
                        }
                    });
                    let flushed = conn
                        .flush()
                        .and_then(|_| conn.sync_interest(registry, token));
                    match (read, flushed) {
                        (Ok(ReadStatus::BudgetExhausted), Ok(())) => ready.again(token),
                        (Ok(ReadStatus::Drained), Ok(())) => {}
                        (Ok(ReadStatus::Closed), _) => {
                            stats.closed += 1;
                            conns.remove(token);
                        }
                        _ => {
                            stats.errors += 1;
                            conns.remove(token);
                        }
                    }
                }
            }
        }
    }
}

/// A blocking client with bounded waits.
pub fn client(addr: SocketAddr) -> StdStream {
    let s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads exactly `n` bytes (bounded by the socket's read timeout).
pub fn read_n(s: &mut StdStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Writes a line and reads back its echo.
pub fn round_trip(s: &mut StdStream, line: &[u8]) {
    let mut wire = line.to_vec();
    wire.push(b'\n');
    s.write_all(&wire).unwrap();
    assert_eq!(read_n(s, wire.len()), wire);
}

/// True once the server has closed `s` (read returns 0 or a reset), within the read timeout.
pub fn is_closed_by_server(s: &mut StdStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A connected pair: a blocking std client and the server side as a `Connection`, not yet
/// registered. The listener is registered on `poll` under `Token(0)` so the accept can wait
/// for its event (bounded by `WAIT`).
pub fn pair(poll: &mut mio::Poll) -> (StdStream, wheelbeat_net::Connection) {
    let mut listener = wheelbeat_net::bind(
        "127.0.0.1:0".parse().unwrap(),
        &wheelbeat_net::ListenConfig::default(),
    )
    .unwrap();
    poll.registry()
        .register(&mut listener, mio::Token(0), mio::Interest::READABLE)
        .unwrap();
    let client = client(listener.local_addr().unwrap());
    let mut events = mio::Events::with_capacity(8);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((s, _)) => return (client, wheelbeat_net::Connection::new(s)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "accept timed out");
                poll.poll(&mut events, Some(std::time::Duration::from_millis(100)))
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
}
