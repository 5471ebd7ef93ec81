//! Measures, with a counting global allocator, the user-space heap each idle TLS connection
//! holds on the server side after a handshake and a round trip: what dropping those
//! connections frees (rustls's protocol state and traffic keys, the connection, its table
//! slot). Also checks that no ciphertext or plaintext buffer is left over.
//!
//! Run with: `cargo test -p wheelbeat-net --release --test tls_idle_memory -- --nocapture`.
#![cfg(feature = "tls")]

mod tls_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use tls_common::{TlsConn, WAIT, cert, client_cfg, server_cfg, tcp_pair};
use wheelbeat_net::tls::TlsStream;
use wheelbeat_net::{ConnTable, Connection, ReadBuf};

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

const PAIRS: usize = 200;

/// The documented ceiling (net/README.md, tls module docs), with room for allocator and
/// rustls version drift; the measured figure is printed.
const MAX_PER_CONN: f64 = 4096.0;

/// Guards the design choice (module docs of `tls`): the unbuffered design holds no buffer
/// when idle, stays under the documented ceiling, and holds less than rustls's buffered
/// connection does. One test, so the two measurements of the process-wide counter never
/// overlap.
#[test]
fn idle_tls_connections_hold_no_buffers_and_less_than_buffered_rustls() {
    let ours = unbuffered_per_conn();
    let buffered = buffered_per_conn();
    assert!(ours <= MAX_PER_CONN, "{ours} bytes per idle TLS connection");
    assert!(ours < buffered, "unbuffered {ours} >= buffered {buffered}");
}

fn unbuffered_per_conn() -> f64 {
    let cert = cert();
    let (scfg, ccfg) = (server_cfg(&cert), client_cfg(&cert));
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut scratch = ReadBuf::new();
    let mut servers: ConnTable<TlsConn> = ConnTable::with_capacity(PAIRS);
    let mut clients: ConnTable<TlsConn> = ConnTable::with_capacity(PAIRS);
    let mut client_of = Vec::new();
    for _ in 0..PAIRS {
        let (s, c) = tcp_pair();
        let s = Connection::new(TlsStream::server(s, scfg.clone(), None).unwrap());
        let c = Connection::new(TlsStream::client(c, ccfg.clone(), "localhost", None).unwrap());
        let sk = servers.insert_registered(poll.registry(), s).unwrap();
        // Client tokens are kept apart from server tokens by a high bit.
        let ck = clients.insert(c);
        let ctoken = Token(ck.token().0 | 1 << 40);
        clients
            .get_mut(ck)
            .unwrap()
            .sync_interest(poll.registry(), ctoken)
            .unwrap();
        client_of.push((sk, ck));
    }
    // Each client sends one line once its handshake is done; each server echoes it.
    let started = Instant::now();
    let mut sent = [false; PAIRS];
    let mut echoed = 0;
    let until = Instant::now() + WAIT * 3;
    while echoed < PAIRS {
        assert!(Instant::now() < until, "only {echoed} echoed");
        for (i, (_, ck)) in client_of.iter().enumerate() {
            let c = clients.get_mut(*ck).unwrap();
            if !sent[i] && !c.stream().is_handshaking() {
                c.send(b"{\"ping\":1}").unwrap();
                c.flush().unwrap();
                c.sync_interest(poll.registry(), Token(ck.token().0 | 1 << 40))
                    .unwrap();
                sent[i] = true;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        for ev in events.iter() {
            let t = ev.token();
            if t.0 & 1 << 40 != 0 {
                let t = Token(t.0 & !(1 << 40));
                let c = clients.get_mut(t).unwrap();
                c.drive_event(
                    poll.registry(),
                    Token(t.0 | 1 << 40),
                    ev,
                    &mut scratch,
                    1 << 16,
                    |_, _| {
                        echoed += 1;
                        ControlFlow::Continue(())
                    },
                )
                .unwrap();
            } else {
                let s = servers.get_mut(t).unwrap();
                s.drive_event(poll.registry(), t, ev, &mut scratch, 1 << 16, |f, out| {
                    out.send(f).unwrap();
                    ControlFlow::Continue(())
                })
                .unwrap();
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{PAIRS} handshakes + round trips, both ends in this one thread, in {elapsed:?}: \
         {:.0} per second",
        PAIRS as f64 / elapsed.as_secs_f64()
    );
    for (_, s) in servers.iter() {
        assert!(!s.wants_write());
        assert_eq!(
            s.heap_bytes(),
            0,
            "a buffer is left on an idle TLS connection"
        );
    }
    let with = LIVE.load(Ordering::Relaxed);
    drop(servers);
    let without = LIVE.load(Ordering::Relaxed);
    let per_conn = (with - without) as f64 / PAIRS as f64;
    eprintln!(
        "{per_conn:.0} heap bytes per idle TLS server connection (freed on drop; \
         size_of Connection<LineCodec, TlsStream> = {})",
        std::mem::size_of::<TlsConn>()
    );
    drop(clients);
    per_conn
}

/// rustls's *buffered* `ServerConnection` (what `tlsserver-mio` and tokio-rustls drive),
/// through the same handshake and one round trip in memory; the heap its drop frees.
fn buffered_per_conn() -> f64 {
    use std::io::{Read, Write};
    use wheelbeat_net::tls::rustls::{ClientConnection, ServerConnection};
    let cert = cert();
    let (scfg, ccfg) = (server_cfg(&cert), client_cfg(&cert));
    let mut servers = Vec::with_capacity(PAIRS);
    let mut clients = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let mut s = ServerConnection::new(scfg.clone()).unwrap();
        let mut c = ClientConnection::new(ccfg.clone(), "localhost".try_into().unwrap()).unwrap();
        let mut wire = Vec::new();
        for _ in 0..10 {
            wire.clear();
            c.write_tls(&mut wire).unwrap();
            let mut r = &wire[..];
            while !r.is_empty() {
                s.read_tls(&mut r).unwrap();
            }
            s.process_new_packets().unwrap();
            wire.clear();
            s.write_tls(&mut wire).unwrap();
            let mut r = &wire[..];
            while !r.is_empty() {
                c.read_tls(&mut r).unwrap();
            }
            c.process_new_packets().unwrap();
            if !s.is_handshaking() && !c.is_handshaking() {
                break;
            }
        }
        assert!(!s.is_handshaking());
        c.writer().write_all(b"{\"ping\":1}\n").unwrap();
        wire.clear();
        c.write_tls(&mut wire).unwrap();
        let mut r = &wire[..];
        while !r.is_empty() {
            s.read_tls(&mut r).unwrap();
        }
        s.process_new_packets().unwrap();
        let mut got = [0u8; 64];
        let n = s.reader().read(&mut got).unwrap();
        assert_eq!(&got[..n], b"{\"ping\":1}\n");
        servers.push(s);
        clients.push(c);
    }
    let with = LIVE.load(Ordering::Relaxed);
    drop(servers);
    let without = LIVE.load(Ordering::Relaxed);
    let per_conn = (with - without) as f64 / PAIRS as f64;
    eprintln!(
        "{per_conn:.0} heap bytes per idle buffered rustls ServerConnection (size_of = {}), \
         for comparison",
        std::mem::size_of::<ServerConnection>()
    );
    drop(clients);
    per_conn
}
