//! Real sockets: 2,000 connections heartbeating every 100 ms for about 3 s,
//! with zero false positives on either side.

mod common;

use std::time::{Duration, Instant};

use common::{Seen, heartbeat, need_fds, reporter, wait_until};
use wheelbeat_heartbeat::{Pool, Server};

#[test]
fn two_thousand_connections_heartbeat_without_false_positives() {
    let _ = env_logger::builder().is_test(true).try_init();
    let n = 2_000;
    // Each loopback pair costs two descriptors in this process.
    need_fds(2 * n as u64 + 64);
    let config = heartbeat(100, 1000, 3);
    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(config.clone())
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(config)
        .start(move |_| client_h.clone())
        .unwrap();

    let (sh, ph) = (server.handle(), pool.handle());
    assert!(
        wait_until(&client_rx, Duration::from_secs(10), || sh
            .stats()
            .connections
            == n as u64
            && ph.stats().connections == n as u64),
        "not all {n} connections came up: server {:?}",
        sh.stats()
    );
    let start_server = sh.stats();
    let start_pool = ph.stats();
    let started = Instant::now();

    // Watch both sides for ~3 s: any death or close is a false positive.
    let until = started + Duration::from_secs(3);
    loop {
        crossbeam_channel::select! {
            recv(server_rx) -> ev => check(ev.ok(), "server"),
            recv(client_rx) -> ev => check(ev.ok(), "client"),
            default(until.saturating_duration_since(Instant::now())) => break,
        }
        if Instant::now() >= until {
            break;
        }
    }
    let elapsed = started.elapsed();
    let s = sh.stats();
    let p = ph.stats();
    assert_eq!(s.connections, n as u64);
    assert_eq!(p.connections, n as u64);
    assert_eq!(s.closed.total(), 0, "server closed some: {:?}", s.closed);
    assert_eq!(p.closed.total(), 0, "client closed some: {:?}", p.closed);
    assert_eq!(s.protocol_errors + p.protocol_errors, 0);
    // Heartbeats really flowed. The nominal rate is one ping per connection
    // per ~100 ms (30 in 3 s); a debug build on a loaded 2-core machine
    // manages a third to a half of that (RTTs of ~100 ms), so ask for 5.
    let pings = (s.pings_sent - start_server.pings_sent) + (p.pings_sent - start_pool.pings_sent);
    assert!(
        pings >= 5 * n as u64,
        "only {pings} pings in {elapsed:?}\nserver {s:?}\nclient {p:?}"
    );
    pool.shutdown();
    server.shutdown();
}

fn check(ev: Option<Seen>, side: &str) {
    match ev {
        Some(Seen::Dead(id, reason, silent, _)) => {
            panic!("false positive on the {side}: {id} dead ({reason}, silent {silent:?})")
        }
        Some(Seen::Close(id, reason)) => panic!("{side} lost {id}: {reason}"),
        _ => {}
    }
}
