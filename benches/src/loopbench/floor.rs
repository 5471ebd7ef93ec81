//! The floor: bare mio ping-pong, no timer, no JSON, fixed 8-byte frames.
//!
//! Server thread: accept, and echo every byte read. Client thread: `N` connections, each
//! with one 8-byte ping in flight; the moment a whole 8-byte answer has arrived the next
//! ping goes out. Both sides read until `WouldBlock` (mio is edge-triggered) and keep any
//! bytes a short write left over until the socket is writable again, so the loop is correct
//! under partial reads and writes, not only in the common case.

use super::Running;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const FRAME: usize = 8;
const LISTENER: Token = Token(usize::MAX);

/// One connection: the socket, bytes owed to it, and (client side) bytes of the answer so far.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    received: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            out: Vec::with_capacity(FRAME),
            received: 0,
        }
    }

    /// Writes what is owed; `Err` means the connection is gone.
    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until `WouldBlock`, calling `on_bytes(n)` for each chunk; `Err` when gone.
    fn read_all(
        &mut self,
        buf: &mut [u8],
        mut on_bytes: impl FnMut(&mut Self, &[u8]),
    ) -> io::Result<()> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => on_bytes(self, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Both sides of the floor, running.
pub struct Floor {
    stop: Arc<AtomicBool>,
    round_trips: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Running for Floor {
    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Starts the server and client threads with `conns` connections; returns once every
/// connection is established (the first pings are then in flight).
pub fn start(conns: usize) -> io::Result<Floor> {
    let stop = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0".parse().expect("an address"))?;
    let addr = listener.local_addr()?;
    let server = {
        let (stop, failures) = (Arc::clone(&stop), Arc::clone(&failures));
        std::thread::Builder::new()
            .name("floor-server".into())
            .spawn(move || {
                if let Err(e) = serve(listener, &stop, &failures) {
                    eprintln!("floor server: {e}");
                }
            })?
    };
    let streams = connect(addr, conns)?;
    let client = {
        let (stop, failures, rts) = (
            Arc::clone(&stop),
            Arc::clone(&failures),
            Arc::clone(&round_trips),
        );
        std::thread::Builder::new()
            .name("floor-client".into())
            .spawn(move || {
                if let Err(e) = ping(streams, &stop, &failures, &rts) {
                    eprintln!("floor client: {e}");
                }
            })?
    };
    Ok(Floor {
        stop,
        round_trips,
        failures,
        threads: vec![server, client],
    })
}

/// Blocking connects, one after the other (the server thread accepts meanwhile), then
/// switched to non-blocking for mio.
fn connect(addr: SocketAddr, conns: usize) -> io::Result<Vec<TcpStream>> {
    (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            Ok(TcpStream::from_std(s))
        })
        .collect()
}

fn serve(mut listener: TcpListener, stop: &AtomicBool, failures: &AtomicU64) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let token = Token(conns.len());
                            poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.push(Some(Conn::new(stream)));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let Some(Some(conn)) = conns.get_mut(event.token().0) else {
                continue; // sporadic event for a closed connection
            };
            let echoed = conn
                .read_all(&mut buf, |c, bytes| c.out.extend_from_slice(bytes))
                .and_then(|()| conn.flush());
            if echoed.is_err() {
                if !stop.load(Ordering::Relaxed) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                conns[event.token().0] = None;
            }
        }
    }
    Ok(())
}

fn ping(
    streams: Vec<TcpStream>,
    stop: &AtomicBool,
    failures: &AtomicU64,
    round_trips: &AtomicU64,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(streams.len());
    for (i, mut stream) in streams.into_iter().enumerate() {
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut conn = Conn::new(stream);
        conn.out.extend_from_slice(&[1u8; FRAME]);
        conn.flush()?;
        conns.push(Some(conn));
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        let mut done = 0u64;
        for event in &events {
            let Some(Some(conn)) = conns.get_mut(event.token().0) else {
                continue;
            };
            let result = conn
                .read_all(&mut buf, |c, bytes| {
                    c.received += bytes.len();
                    // One ping in flight, so at most one whole answer per connection.
                    while c.received >= FRAME {
                        c.received -= FRAME;
                        c.out.extend_from_slice(&[1u8; FRAME]);
                        done += 1;
                    }
                })
                .and_then(|()| conn.flush());
            if result.is_err() {
                if !stop.load(Ordering::Relaxed) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                conns[event.token().0] = None;
            }
        }
        round_trips.fetch_add(done, Ordering::Relaxed);
    }
    Ok(())
}
