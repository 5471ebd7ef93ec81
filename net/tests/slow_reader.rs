//! Real sockets: a peer that stops reading hits the write cap, the message is handed back,
//! memory stays flat however long the sender keeps trying, and a priority frame still jumps
//! the queue at a frame boundary.
//!
//! Run with: `cargo test -p wheelbeat-net --test slow_reader`.

mod common;

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::WAIT;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, SockRef, Socket, Type};
use wheelbeat_net::{Connection, FlushStatus, ListenConfig, bind};

const CAP: usize = 64 * 1024;
const FRAME: usize = 1000;

fn frame(seq: u64) -> Vec<u8> {
    let mut f = format!("{seq:08} ").into_bytes();
    f.resize(FRAME, b'x');
    f
}

/// A client with a tiny receive window, and the server side of it, accepted through `poll`.
fn pair(poll: &mut Poll) -> (std::net::TcpStream, mio::net::TcpStream) {
    let mut listener: TcpListener =
        bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)
        .unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    client.connect(&addr.into()).unwrap();
    let client: std::net::TcpStream = client.into();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((server, _)) => {
                SockRef::from(&server).set_send_buffer_size(4096).unwrap();
                return (client, server);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "accept timed out");
                poll.poll(&mut events, Some(Duration::from_millis(100)))
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn slow_reader_hits_the_cap_and_memory_stays_flat() {
    let mut poll = Poll::new().unwrap();
    let (mut client, stream) = pair(&mut poll);
    let mut conn = Connection::new(stream);
    conn.set_write_cap(CAP);
    conn.sync_interest(poll.registry(), Token(1)).unwrap();

    let mut seq = 0u64;
    let mut heap = Vec::new();
    let mut refused = 0u64;
    // 400 rounds of "send until refused, then flush": the reader never reads.
    for _ in 0..400 {
        loop {
            let msg = frame(seq);
            match conn.send(msg) {
                Ok(()) => seq += 1,
                Err(e) => {
                    assert!(e.is_full(), "{e}");
                    assert_eq!(e.into_inner(), frame(seq), "the message is handed back");
                    refused += 1;
                    break;
                }
            }
        }
        assert!(conn.queued() <= CAP);
        assert_eq!(conn.flush().unwrap(), FlushStatus::Pending);
        heap.push(conn.heap_bytes());
    }
    assert_eq!(refused, 400);
    let (first, second) = heap.split_at(200);
    let max_first = *first.iter().max().unwrap();
    let max_second = *second.iter().max().unwrap();
    eprintln!(
        "queued {} bytes, heap {max_first} then {max_second} bytes, {seq} frames accepted",
        conn.queued()
    );
    // Data buffer <= cap; frame-length ring (4 bytes a frame) at most twice its share.
    assert!(
        max_first <= CAP + 2 * 4 * (CAP / FRAME),
        "allocation {max_first} past the cap"
    );
    assert!(
        max_second <= max_first,
        "memory grew: {max_first} -> {max_second}"
    );
    // The kernel took a little (tiny buffers), the queue holds the rest; nothing more fits.
    assert!(seq < 200, "the peer was not slow: {seq} frames went out");

    // A heartbeat still goes out, ahead of the queued data, without splitting a frame.
    conn.send_priority(b"PRIO").unwrap();
    conn.sync_interest(poll.registry(), Token(1)).unwrap();
    assert!(conn.wants_write());

    // Now the reader reads everything; the writer flushes on writable events.
    client.set_nonblocking(true).unwrap();
    let expected = seq as usize * (FRAME + 1) + 5;
    let mut got = Vec::new();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < expected {
        assert!(
            Instant::now() < deadline,
            "drain timed out at {} of {expected}",
            got.len()
        );
        loop {
            match client.read(&mut buf) {
                Ok(0) => panic!("server closed"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        conn.flush().unwrap();
        conn.sync_interest(poll.registry(), Token(1)).unwrap();
        if conn.wants_write() {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
        }
    }
    assert_eq!(got.len(), expected);
    assert!(!conn.wants_write());
    assert_eq!(conn.heap_bytes(), 0, "a drained queue frees its memory");

    // Every line is whole; data frames are in order; PRIO came before the last data frame.
    let lines: Vec<&[u8]> = got
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let prio_at = lines
        .iter()
        .position(|l| *l == b"PRIO")
        .expect("priority frame sent");
    let data: Vec<&[u8]> = lines.iter().copied().filter(|l| *l != b"PRIO").collect();
    assert_eq!(data.len(), seq as usize);
    for (i, l) in data.iter().enumerate() {
        assert_eq!(*l, &frame(i as u64)[..], "frame {i} intact and in order");
    }
    assert!(
        prio_at < data.len() - 10,
        "priority frame should jump the queue, came at {prio_at} of {}",
        data.len()
    );
}
