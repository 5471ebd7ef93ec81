//! Measures, with a counting global allocator, the user-space heap that 1,000 WebSocket
//! connections hold once idle after an upgrade and one message round trip each: the framed
//! connection, its session, and their connection-table slot. Guards the rule that an idle
//! WebSocket connection holds no heap buffers (only its fixed-size state).
//!
//! Run with: `cargo test -p wheelbeat-net --test ws_idle_memory -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::net::TcpStream as StdStream;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use wheelbeat_net::ws::{
    ClientRequest, Encoder, Event, MessageKind, OpCode, Role, Session, Sink, WsCodec, accept_any,
    client_request,
};
use wheelbeat_net::{ConnTable, Connection, ListenConfig, ReadBuf, ReadStatus, bind};

/// Counts live heap bytes; everything else is the system allocator's.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above (which is `System.alloc`) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; `ptr` and `layout` come from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CONNS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(10);

struct Ws {
    conn: Connection<WsCodec>,
    session: Session,
}

#[test]
fn idle_websocket_connections_hold_no_heap_buffers() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    // What every client sends at once: the upgrade request, then a masked "ping" text frame.
    let mut hello = client_request(
        &ClientRequest {
            host: "localhost",
            target: "/",
            origin: None,
            protocols: &[],
        },
        &[5; 16],
    );
    wheelbeat_net::ws::frame::encode_frame(
        &mut hello,
        true,
        OpCode::Text,
        b"ping",
        Some([1, 2, 3, 4]),
    );
    let mut clients = Vec::with_capacity(CONNS);
    let mut accepted = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let s = StdStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        clients.push(s);
    }
    let deadline = Instant::now() + WAIT;
    while accepted.len() < CONNS {
        assert!(Instant::now() < deadline, "accept timed out");
        match listener.accept() {
            Ok((s, _)) => accepted.push(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll.poll(&mut events, Some(Duration::from_millis(10)))
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    // The loop's own buffers, sized before counting (one per loop, not per connection).
    let mut scratch = ReadBuf::with_max_frame_len(wheelbeat_net::ws::DEFAULT_MAX_FRAME_LEN + 14);
    let mut encoder = Encoder::new();
    encoder
        .send(
            &mut VecSink(Vec::new()),
            Role::Server,
            MessageKind::Text,
            b"warm",
        )
        .unwrap();

    // From here on, count.
    let before = LIVE.load(Ordering::Relaxed);
    let mut table = ConnTable::with_capacity(CONNS);
    for stream in accepted.drain(..) {
        let key = table.insert(Ws {
            conn: Connection::with_codec(stream, WsCodec::server()),
            session: Session::server(),
        });
        let ws = table.get_mut(key).unwrap();
        ws.conn.sync_interest(poll.registry(), key.token()).unwrap();
    }
    for c in &mut clients {
        c.write_all(&hello).unwrap();
    }
    let mut answered = 0;
    let deadline = Instant::now() + WAIT;
    while answered < CONNS {
        assert!(Instant::now() < deadline, "only {answered} answered");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let token: Token = ev.token();
            let Ws { conn, session } = table.get_mut(token).unwrap();
            let status = conn
                .drive(
                    poll.registry(),
                    token,
                    &mut scratch,
                    1 << 16,
                    |frame, out| {
                        let role = session.role();
                        session
                            .handle(frame, out, &mut accept_any, |e, out| {
                                if let Event::Text(t) = e {
                                    encoder
                                        .send(out, role, MessageKind::Text, t.as_bytes())
                                        .unwrap();
                                    answered += 1;
                                }
                            })
                            .unwrap();
                        ControlFlow::Continue(())
                    },
                )
                .unwrap();
            assert_eq!(status, ReadStatus::Drained);
        }
    }
    for c in &mut clients {
        let got = read_until_echo(c);
        assert!(got.starts_with(b"HTTP/1.1 101 "));
        assert!(got.ends_with(b"\x81\x04ping"));
    }
    assert!(table.iter().all(|(_, ws)| !ws.conn.wants_write()
        && ws.conn.heap_bytes() == 0
        && ws.session.heap_bytes() == 0
        && ws.session.is_open()));
    let per_conn = (LIVE.load(Ordering::Relaxed) - before) as f64 / CONNS as f64;
    let state = std::mem::size_of::<Ws>();
    eprintln!(
        "{per_conn:.1} heap bytes per idle WebSocket connection: size_of (Connection<WsCodec>, Session) = {state} \
         ({} + {}) plus the table slot's generation; no buffers",
        std::mem::size_of::<Connection<WsCodec>>(),
        std::mem::size_of::<Session>(),
    );
    // The connection and session structs plus the table slot overhead (8), nothing else; and
    // within the 256-byte target of plain connections.
    assert!(
        per_conn <= (state + 8) as f64,
        "{per_conn} bytes per idle connection"
    );
    assert!(per_conn <= 256.0, "{per_conn} bytes per idle connection");
}

/// Reads the 101 response and the 6-byte echo frame behind it.
fn read_until_echo(c: &mut StdStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n")
            && got.len() >= i + 4 + 6
        {
            return got;
        }
    }
}

/// A throwaway sink to warm up the encoder's buffer.
struct VecSink(Vec<u8>);

impl Sink for VecSink {
    fn send_frames(&mut self, b: &[u8]) -> Result<(), wheelbeat_net::Error> {
        self.0.extend_from_slice(b);
        Ok(())
    }
    fn send_priority_frames(&mut self, b: &[u8]) -> Result<(), wheelbeat_net::Error> {
        self.0.extend_from_slice(b);
        Ok(())
    }
}
