//! Issue 9, item 3, over real Unix domain stream sockets: a `Server` listening on a socket
//! path answers pings; a `Pool` connecting to the path heartbeats, and its frozen peers are
//! detected by the server within the bound, nobody else.

mod common;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, next_line, reporter, wait_until};
use wheelbeat_heartbeat::{PeerAddr, Pool, Server};

/// As in `frozen_peer.rs`: a debug build's loop on a busy 2-core machine.
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(150);

/// A fresh socket path for this test (removed first if a previous run left it).
fn socket_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wheelbeat-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_server_on_a_socket_path_answers_pings() {
    let _ = env_logger::builder().is_test(true).try_init();
    let path = socket_path("ping");
    let (h, rx) = reporter(false);
    let mut h = Some(h);
    let server = Server::builder_unix(&path)
        .start(|_| h.take().unwrap())
        .unwrap();
    assert_eq!(server.listen_addr(), PeerAddr::Unix(Some(path.clone())));
    let sock = UnixStream::connect(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(sock.try_clone().unwrap());
    (&sock).write_all(b"{\"ping\":3}\n").unwrap();
    assert_eq!(next_line(&mut r).as_deref(), Some("{\"pong\":3}\n"));
    let info = common::wait_for(&rx, Instant::now() + Duration::from_secs(5), |s| match s {
        Seen::Connect(_, info) => Some(info.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(info.local, PeerAddr::Unix(Some(path.clone())));
    assert!(matches!(info.peer, PeerAddr::Unix(_)));
    server.shutdown();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_pool_on_a_socket_path_heartbeats_and_its_frozen_peers_are_detected_within_the_bound() {
    let _ = env_logger::builder().is_test(true).try_init();
    let path = socket_path("pool");
    let config = heartbeat(100, 100, 2);
    let bound = config.interval.mul_f64(1.0 + config.jitter)
        + config.timeout * config.max_missed
        + config.tick;
    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder_unix(&path)
        .heartbeat(config.clone())
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let n = 12;
    let pool = Pool::builder()
        .connect_unix(&path, n)
        .heartbeat(config.clone())
        .start(move |_| client_h.clone())
        .unwrap();
    let mut clients = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients.len() < n {
        match client_rx.recv_deadline(deadline) {
            Ok(Seen::Connect(id, info)) => {
                assert_eq!(info.peer, PeerAddr::Unix(Some(path.clone())));
                clients.push(id);
            }
            Ok(_) => {}
            Err(_) => panic!("only {} of {n} clients connected", clients.len()),
        }
    }
    let handle = server.handle();
    assert!(wait_until(&server_rx, Duration::from_secs(5), || {
        let s = handle.stats();
        s.connections == n as u64 && s.pongs_received >= 2 * n as u64
    }));
    // Unnamed client sockets cannot be paired by address: count the verdicts instead.
    let frozen = n / 3;
    let frozen_at = Instant::now();
    for id in &clients[..frozen] {
        pool.handle().freeze(*id).unwrap();
    }
    let mut detected = 0;
    let deadline = frozen_at + bound + Duration::from_secs(3);
    while detected < frozen {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Dead(id, _, silent_for, at)) => {
                let latency = at - frozen_at;
                assert!(
                    latency <= bound + SCHEDULING_ALLOWANCE,
                    "{id} detected after {latency:?}, bound {bound:?}"
                );
                assert!(silent_for <= bound + SCHEDULING_ALLOWANCE);
                detected += 1;
            }
            Ok(_) => {}
            Err(_) => panic!("{detected} of {frozen} frozen peers detected"),
        }
    }
    let calm_until = Instant::now() + bound * 2;
    while let Ok(ev) = server_rx.recv_deadline(calm_until) {
        if let Seen::Dead(id, ..) = ev {
            panic!("a healthy peer ({id}) declared dead");
        }
    }
    let s = server.stats();
    assert_eq!(s.closed.missed_pings, frozen as u64);
    assert_eq!(s.connections, (n - frozen) as u64);
    while let Ok(ev) = client_rx.try_recv() {
        if let Seen::Dead(id, ..) = ev {
            panic!("a client convicted the server on {id}");
        }
    }
    pool.shutdown();
    server.shutdown();
    let _ = std::fs::remove_file(&path);
}
