//! Real sockets: 2,000 connections held and served by one `mio::Poll` loop.
//!
//! Run with: `cargo test -p wheelbeat-net --test many_connections`.

mod common;

use std::io::Write;

use common::{EchoServer, client, read_n};
use wheelbeat_net::{LineCodec, ListenConfig, raise_fd_limit};

const CONNS: usize = 2_000;

#[test]
fn two_thousand_connections_on_one_poll_are_all_served() {
    // Both ends live in this process: 4,000 descriptors plus a few.
    let limit = raise_fd_limit().unwrap();
    assert!(
        limit.soft >= 4_100,
        "need 4,100 descriptors, have {limit:?}"
    );

    let server = EchoServer::start(ListenConfig::default().backlog(4096), LineCodec::new);
    let mut clients: Vec<_> = (0..CONNS).map(|_| client(server.addr)).collect();
    // Every connection speaks before any reads, so the loop holds all 2,000 at once.
    for (i, c) in clients.iter_mut().enumerate() {
        writeln!(c, "hello from {i}").unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let want = format!("hello from {i}\n");
        assert_eq!(read_n(c, want.len()), want.as_bytes(), "connection {i}");
    }
    // A second round on the same connections, in reverse order.
    for (i, c) in clients.iter_mut().enumerate().rev() {
        common::round_trip(c, format!("again {i}").as_bytes());
    }
    drop(clients);
    let stats = server.stop();
    assert_eq!(stats.accepted, CONNS as u64);
    assert_eq!(stats.max_live, CONNS);
    assert_eq!(stats.frames, 2 * CONNS as u64);
    assert_eq!(stats.errors, 0);
}
