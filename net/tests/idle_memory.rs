//! Measures, with a counting global allocator, the user-space heap that 1,000 connections hold
//! once idle after a round trip each: connection state plus their connection-table slots.
//! Guards the documented target of at most 256 bytes per idle connection.
//!
//! Run with: `cargo test -p wheelbeat-net --test idle_memory -- --nocapture`.

mod common;
mod counting;

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use common::{WAIT, read_n};
use mio::{Events, Poll, Token};
use wheelbeat_net::{ConnTable, Connection, ListenConfig, ReadBuf, ReadStatus, bind};

const CONNS: usize = 1_000;

#[test]
fn idle_connections_hold_at_most_256_bytes_each() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::with_capacity(CONNS);
    let mut accepted = Vec::with_capacity(CONNS);
    let mut scratch = ReadBuf::with_max_frame_len(wheelbeat_net::DEFAULT_MAX_FRAME_LEN);
    for _ in 0..CONNS {
        clients.push(common::client(addr));
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

    // Everything above is the loop's, not the connections'. From here on, count.
    let before = counting::live();
    let mut table = ConnTable::with_capacity(CONNS);
    for stream in accepted.drain(..) {
        let key = table.insert(Connection::new(stream));
        table
            .get_mut(key)
            .unwrap()
            .sync_interest(poll.registry(), key.token())
            .unwrap();
    }
    // One round trip per connection, so each has read, queued, written and gone idle.
    for c in &mut clients {
        c.write_all(b"ping\n").unwrap();
    }
    let mut answered = 0;
    let deadline = Instant::now() + WAIT;
    while answered < CONNS {
        assert!(Instant::now() < deadline, "only {answered} answered");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let token: Token = ev.token();
            let conn = table.get_mut(token).unwrap();
            let status = conn
                .drive(poll.registry(), token, &mut scratch, 1 << 16, |f, out| {
                    assert_eq!(f, b"ping");
                    out.send(b"pong").unwrap();
                    answered += 1;
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(status, ReadStatus::Drained);
        }
    }
    for c in &mut clients {
        assert_eq!(read_n(c, 5), b"pong\n");
    }
    assert!(
        table
            .iter()
            .all(|(_, c)| !c.wants_write() && c.heap_bytes() == 0)
    );
    let per_conn = (counting::live() - before) as f64 / CONNS as f64;
    eprintln!(
        "{per_conn:.1} heap bytes per idle connection (size_of Connection = {})",
        std::mem::size_of::<Connection>()
    );
    assert!(per_conn <= 256.0, "{per_conn} bytes per idle connection");
}
