//! Real sockets: a hung peer (socket open, nothing read or written) is
//! declared dead within the bound, and nobody else is.
//!
//! The bound is the monitor's:
//! `interval × (1 + jitter) + max_missed × timeout + one tick` after the peer's last frame; the freeze instant is later than
//! that last frame, so measuring from it is conservative. The test adds a
//! scheduling allowance for the real loop (threads on a loaded CI machine wake
//! a little late), stated below.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, reporter, wait_until};
use wheelbeat_heartbeat::{CloseReason, Pool, Server};

/// How late a verdict may be, on top of the bound, in a debug build on a busy
/// 2-core machine: a loop late by `L` adds `L + L rounded up to a tick`, once
/// (the monitor's retries run on a fixed grid, so lateness does not compound).
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(150);

#[test]
fn frozen_peers_are_detected_within_the_bound_and_nobody_else() {
    let _ = env_logger::builder().is_test(true).try_init();
    let config = heartbeat(100, 100, 2);
    let bound = config.interval.mul_f64(1.0 + config.jitter)
        + config.timeout * config.max_missed
        + config.tick;

    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(config.clone())
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let n = 40;
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(config.clone())
        .start(move |_| client_h.clone())
        .unwrap();

    // Map each client connection to its server-side twin by port.
    let mut client_by_port = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client_by_port.len() < n {
        match client_rx.recv_deadline(deadline) {
            Ok(Seen::Connect(id, info)) => {
                client_by_port.insert(common::port(&info.local), id);
            }
            Ok(_) => {}
            Err(_) => panic!("only {} of {n} clients connected", client_by_port.len()),
        }
    }
    let mut server_by_port = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_by_port.len() < n {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Connect(id, info)) => {
                server_by_port.insert(common::port(&info.peer), id);
            }
            Ok(_) => {}
            Err(_) => panic!("only {} of {n} accepted", server_by_port.len()),
        }
    }

    // Let a few heartbeat cycles run, then freeze a quarter of the clients.
    let stats = server.handle();
    assert!(wait_until(&server_rx, Duration::from_secs(5), || stats
        .stats()
        .pongs_received
        >= 2 * n as u64));
    let frozen_ports: Vec<u16> = client_by_port.keys().copied().take(n / 4).collect();
    let frozen_server_side: HashSet<_> = frozen_ports.iter().map(|p| server_by_port[p]).collect();
    let frozen_at = Instant::now();
    for p in &frozen_ports {
        pool.handle().freeze(client_by_port[p]).unwrap();
    }

    // Every frozen peer dies on the server, within the bound.
    let mut detected = HashMap::new();
    let deadline = frozen_at + bound + Duration::from_secs(3);
    while detected.len() < frozen_server_side.len() {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Dead(id, _, silent_for, at)) => {
                assert!(
                    frozen_server_side.contains(&id),
                    "healthy peer {id} declared dead"
                );
                detected.insert(id, (at - frozen_at, silent_for));
            }
            Ok(Seen::Close(id, reason)) => {
                assert!(
                    frozen_server_side.contains(&id),
                    "healthy peer {id} closed: {reason}"
                );
            }
            Ok(_) => {}
            Err(_) => panic!(
                "{} of {} frozen peers detected",
                detected.len(),
                frozen_server_side.len()
            ),
        }
    }
    for (id, (latency, silent_for)) in &detected {
        assert!(
            *latency <= bound + SCHEDULING_ALLOWANCE,
            "{id} detected after {latency:?}, bound {bound:?}"
        );
        assert!(
            *silent_for <= bound + SCHEDULING_ALLOWANCE,
            "{id} silent for {silent_for:?}"
        );
    }

    // Two more bound-lengths of heartbeats: still no false positive anywhere.
    let calm_until = Instant::now() + bound * 2;
    while let Ok(ev) = server_rx.recv_deadline(calm_until) {
        if let Seen::Dead(id, ..) | Seen::Close(id, _) = ev {
            assert!(frozen_server_side.contains(&id), "healthy peer {id} lost");
        }
    }
    while let Ok(ev) = client_rx.try_recv() {
        if let Seen::Dead(id, ..) = ev {
            panic!("client convicted the server on {id}");
        }
        if let Seen::Close(id, reason) = ev {
            // The server closes the frozen ones; the client sees nothing (it is frozen).
            panic!("client {id} closed: {reason}");
        }
    }
    let s = server.stats();
    assert_eq!(s.closed.missed_pings, frozen_server_side.len() as u64);
    assert_eq!(s.connections, (n - frozen_server_side.len()) as u64);

    pool.shutdown();
    server.shutdown();
    let closes = client_rx
        .try_iter()
        .filter(|e| matches!(e, Seen::Close(_, CloseReason::Shutdown)))
        .count();
    assert_eq!(closes, n, "every client connection closed at shutdown");
}
