//! Issue 10 over real sockets: the heartbeat shell through TLS (certificates made here with
//! `rcgen`, none committed). A handshake and a ping/pong with a plain blocking rustls client;
//! a client that never completes its handshake is closed at the handshake timeout, one that
//! sends garbage at once, the others carrying on; a peer that stops reading is cut off at
//! the write cap; frozen TLS peers are detected within the bound; a TLS pool reconnects to a
//! TLS server.
//!
//! Every wait is bounded, on a real condition (a callback, a read with a timeout).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, next_line, reporter, wait_until};
use wheelbeat_heartbeat::tls::rustls::{ClientConfig, ClientConnection, ServerConfig, StreamOwned};
use wheelbeat_heartbeat::tls::{ClientAuth, Roots, client_config, server_config};
use wheelbeat_heartbeat::{CloseReason, Pool, Server};

/// How late a verdict may be, on top of the bound, in a debug build on a busy 2-core
/// machine (as in `frozen_peer.rs`; TLS adds no timer).
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(150);

/// A throwaway certificate for `localhost`: (certificate PEM, key PEM).
fn cert() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

fn server_tls(c: &(String, String)) -> Arc<ServerConfig> {
    server_config(
        c.0.as_bytes(),
        c.1.as_bytes(),
        &[b"wheelbeat"],
        ClientAuth::None,
    )
    .unwrap()
}

fn client_tls(c: &(String, String)) -> Arc<ClientConfig> {
    client_config(Roots::Pem(c.0.clone().into_bytes()), &[b"wheelbeat"], None).unwrap()
}

/// A blocking TLS client (rustls's own buffered API, nothing of wheelbeat's) to `server`.
fn tls_client(
    server: &Server,
    config: Arc<ClientConfig>,
) -> BufReader<StreamOwned<ClientConnection, TcpStream>> {
    let sock = TcpStream::connect(server.local_addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let conn = ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    BufReader::new(StreamOwned::new(conn, sock))
}

/// Reads until the server closes `sock` (end of stream or reset), bounded by its read
/// timeout; panics if the timeout comes first.
fn read_until_closed(sock: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn a_handshake_then_ping_pong_through_tls_with_alpn_and_sni_in_conn_info() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let (h, rx) = reporter(false);
    let mut h = Some(h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .tls(server_tls(&c))
        .start(|_| h.take().unwrap())
        .unwrap();
    let mut client = tls_client(&server, client_tls(&c));
    client.get_mut().write_all(b"{\"ping\":7}\n").unwrap();
    assert_eq!(next_line(&mut client).as_deref(), Some("{\"pong\":7}\n"));
    let info = common::wait_for(&rx, Instant::now() + Duration::from_secs(5), |s| match s {
        Seen::Connect(_, info) => Some(info.clone()),
        _ => None,
    })
    .expect("on_connect");
    assert_eq!(info.alpn.as_deref(), Some(&b"wheelbeat"[..]));
    assert_eq!(info.server_name.as_deref(), Some("localhost"));
    assert!(info.inbound);
    // A clean close from the client: close_notify, then the server closes as peer closed.
    client.get_mut().conn.send_close_notify();
    client.get_mut().flush().unwrap();
    let reason = common::wait_for(&rx, Instant::now() + Duration::from_secs(5), |s| match s {
        Seen::Close(_, r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(reason, Some(CloseReason::PeerClosed));
    server.shutdown();
}

#[test]
fn the_server_sends_close_notify_when_it_closes_a_tls_connection() {
    let c = cert();
    let (h, rx) = reporter(false);
    let mut h = Some(h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .tls(server_tls(&c))
        .start(|_| h.take().unwrap())
        .unwrap();
    let mut client = tls_client(&server, client_tls(&c));
    client.get_mut().write_all(b"{\"ping\":1}\n").unwrap();
    assert_eq!(next_line(&mut client).as_deref(), Some("{\"pong\":1}\n"));
    let id = common::wait_for(&rx, Instant::now() + Duration::from_secs(5), |s| match s {
        Seen::Connect(id, _) => Some(*id),
        _ => None,
    })
    .unwrap();
    server.handle().close(id).unwrap();
    // rustls reports a close without close_notify as an `UnexpectedEof` error; a clean
    // end of stream (`Ok(0)`) proves the alert came first.
    let mut rest = Vec::new();
    let r = client.read_to_end(&mut rest);
    assert!(r.is_ok(), "no close_notify before the FIN: {r:?}");
    server.shutdown();
}

#[test]
fn a_client_that_never_completes_the_handshake_is_closed_at_the_timeout() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let timeout = Duration::from_millis(300);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .tls(server_tls(&c))
        .handshake_timeout(timeout)
        // The monitor's bound is far shorter than the timeout: a handshake in progress must
        // not be judged as silence.
        .heartbeat(heartbeat(50, 50, 1))
        .start(|_| ())
        .unwrap();
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.local_addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Half a ClientHello: a record header promising more than is sent.
    silent
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    read_until_closed(&mut silent);
    let took = started.elapsed();
    assert!(took >= timeout, "closed after {took:?}, before the timeout");
    assert!(
        took <= timeout + Duration::from_secs(1),
        "closed after {took:?}"
    );
    let s = server.stats();
    assert_eq!(s.closed.handshake, 1);
    assert_eq!(s.accepted, 0, "the peer never reached the endpoint");
    assert_eq!(s.closed.missed_pings, 0);
    server.shutdown();
}

/// Peers that connect and stall in the middle of a large handshake record would each hold up
/// to the TLS stream's ciphertext cap outside the endpoint's memory budget: together, the
/// handshakes of a loop may hold at most half of it. Past that, the peer whose bytes took them
/// over is closed; an honest client still gets through.
#[test]
fn stalled_handshakes_hold_at_most_half_the_memory_budget() {
    let _ = env_logger::builder().is_test(true).try_init();
    common::need_fds(300);
    let c = cert();
    let mut opts = wheelbeat_heartbeat::Options::default();
    opts.memory_budget = 2 << 20; // the handshakes' share: 1 MiB
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .options(opts)
        .tls(server_tls(&c))
        .start(|_| ())
        .unwrap();
    // 100 peers, each sending a handshake record header that promises 16 KiB, then 16,000
    // bytes of it: about 1.6 MB buffered if nothing stopped them.
    let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
    record.resize(5 + 16_000, 0x01);
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.write_all(&record).unwrap();
        stalled.push(s);
    }
    let handle = server.handle();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused = 0;
    while Instant::now() < deadline {
        refused = handle.stats().closed.handshake;
        // 1 MiB holds at most 65 of the 16,005-byte partial records: at least 35 must go.
        if refused >= 35 {
            break;
        }
        // Waits on a real condition: the server's counters, re-read on each short read
        // timeout of a client that will be served.
        let mut probe = TcpStream::connect(server.local_addr()).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let _ = probe.read(&mut [0u8; 1]);
    }
    // More go when the streams' buffers hold more than the bytes in them (capacity is what
    // counts); never all of them: the share is not a blanket refusal.
    assert!(
        (35..100).contains(&refused),
        "{refused} of 100 stalled handshakes refused"
    );
    // An honest client completes its handshake and heartbeats.
    let mut good = tls_client(&server, client_tls(&c));
    good.get_mut().write_all(b"{\"ping\":1}\n").unwrap();
    assert_eq!(next_line(&mut good).as_deref(), Some("{\"pong\":1}\n"));
    drop(stalled);
    server.shutdown();
}

#[test]
fn garbage_instead_of_a_client_hello_closes_that_connection_only() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .tls(server_tls(&c))
        .start(|_| ())
        .unwrap();
    let mut good = tls_client(&server, client_tls(&c));
    good.get_mut().write_all(b"{\"ping\":1}\n").unwrap();
    assert_eq!(next_line(&mut good).as_deref(), Some("{\"pong\":1}\n"));

    let started = Instant::now();
    let mut bad = TcpStream::connect(server.local_addr()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_until_closed(&mut bad);
    // Refused at once, not at the 10 s handshake timeout.
    assert!(started.elapsed() < Duration::from_secs(3));
    let s = server.stats();
    assert_eq!(s.closed.handshake, 1);

    good.get_mut().write_all(b"{\"ping\":2}\n").unwrap();
    assert_eq!(next_line(&mut good).as_deref(), Some("{\"pong\":2}\n"));
    assert_eq!(server.stats().connections, 1);
    server.shutdown();
}

#[test]
fn a_tls_peer_that_stops_reading_is_cut_off_at_the_write_cap_alone() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let (h, rx) = reporter(true); // echoes every application frame
    let mut h = Some(h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .write_cap(256 * 1024)
        .tls(server_tls(&c))
        .send_buffer(Some(16 * 1024))
        .start(|_| h.take().unwrap())
        .unwrap();
    let mut client = tls_client(&server, client_tls(&c));
    let frame = format!("{{\"data\":\"{}\"}}\n", "x".repeat(32 * 1024));
    // Write, never read, until the server gives up on us (our writes then fail) or a
    // bounded amount was sent: far more than the kernel buffers and the cap hold.
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < 64 * 1024 * 1024 && started.elapsed() < Duration::from_secs(20) {
        if client.get_mut().write_all(frame.as_bytes()).is_err() {
            break;
        }
        sent += frame.len();
    }
    let reason = common::wait_for(&rx, Instant::now() + Duration::from_secs(5), |s| match s {
        Seen::Close(_, r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(CloseReason::WriteOverflow),
        "after {sent} bytes"
    );
    let s = server.stats();
    assert_eq!(s.closed.write_overflow, 1);
    assert_eq!(s.closed.missed_pings, 0);
    assert_eq!(s.closed.memory_budget, 0);
    server.shutdown();
}

#[test]
fn frozen_tls_peers_are_detected_within_the_bound_and_nobody_else() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let config = heartbeat(100, 100, 2);
    let bound = config.interval.mul_f64(1.0 + config.jitter)
        + config.timeout * config.max_missed
        + config.tick;
    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(config.clone())
        .tls(server_tls(&c))
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let n = 12;
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(config.clone())
        .tls(client_tls(&c), "localhost")
        .start(move |_| client_h.clone())
        .unwrap();

    let collect = |rx: &crossbeam_channel::Receiver<Seen>, local: bool| {
        let mut by_port = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while by_port.len() < n {
            match rx.recv_deadline(deadline) {
                Ok(Seen::Connect(id, info)) => {
                    let addr = if local { &info.local } else { &info.peer };
                    by_port.insert(common::port(addr), id);
                }
                Ok(_) => {}
                Err(_) => panic!("only {} of {n} TLS connections up", by_port.len()),
            }
        }
        by_port
    };
    let client_by_port = collect(&client_rx, true);
    let server_by_port = collect(&server_rx, false);
    let stats = server.handle();
    assert!(wait_until(&server_rx, Duration::from_secs(5), || {
        stats.stats().pongs_received >= 2 * n as u64
    }));
    let frozen_ports: Vec<u16> = client_by_port.keys().copied().take(n / 3).collect();
    let frozen: HashSet<_> = frozen_ports.iter().map(|p| server_by_port[p]).collect();
    let frozen_at = Instant::now();
    for p in &frozen_ports {
        pool.handle().freeze(client_by_port[p]).unwrap();
    }
    let mut detected = 0;
    let deadline = frozen_at + bound + Duration::from_secs(3);
    while detected < frozen.len() {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Dead(id, _, silent_for, at)) => {
                assert!(frozen.contains(&id), "healthy TLS peer {id} declared dead");
                let latency = at - frozen_at;
                assert!(
                    latency <= bound + SCHEDULING_ALLOWANCE,
                    "{id} detected after {latency:?}, bound {bound:?}"
                );
                assert!(silent_for <= bound + SCHEDULING_ALLOWANCE);
                detected += 1;
            }
            Ok(Seen::Close(id, reason)) => {
                assert!(
                    frozen.contains(&id),
                    "healthy TLS peer {id} closed: {reason}"
                );
            }
            Ok(_) => {}
            Err(_) => panic!("{detected} of {} frozen TLS peers detected", frozen.len()),
        }
    }
    // Another two bounds of heartbeats through TLS: nobody else lost.
    let calm_until = Instant::now() + bound * 2;
    while let Ok(ev) = server_rx.recv_deadline(calm_until) {
        if let Seen::Dead(id, ..) | Seen::Close(id, _) = ev {
            assert!(frozen.contains(&id), "healthy TLS peer {id} lost");
        }
    }
    let s = server.stats();
    assert_eq!(s.closed.missed_pings, frozen.len() as u64);
    assert_eq!(s.connections, (n - frozen.len()) as u64);
    pool.shutdown();
    server.shutdown();
}

#[test]
fn a_tls_pool_reconnects_to_a_tls_server_after_its_connections_are_closed() {
    let _ = env_logger::builder().is_test(true).try_init();
    let c = cert();
    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(100, 200, 2))
        .tls(server_tls(&c))
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let n = 4;
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 200, 2))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .tls(client_tls(&c), "localhost")
        .start(move |_| client_h.clone())
        .unwrap();
    let mut first = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.len() < n {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Connect(id, _)) => first.push(id),
            Ok(_) => {}
            Err(_) => panic!("only {} of {n} connected", first.len()),
        }
    }
    for id in &first {
        server.handle().close(*id).unwrap();
    }
    // Every client connection comes back, through a fresh handshake, and heartbeats.
    let mut client_connects = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client_connects < 2 * n {
        match client_rx.recv_deadline(deadline) {
            Ok(Seen::Connect(_, info)) => {
                assert_eq!(info.alpn.as_deref(), Some(&b"wheelbeat"[..]));
                assert!(!info.inbound);
                client_connects += 1;
            }
            Ok(_) => {}
            Err(_) => panic!("{client_connects} of {} client connects", 2 * n),
        }
    }
    let handle = pool.handle();
    let before = handle.stats().pongs_received;
    assert!(wait_until(&client_rx, Duration::from_secs(5), || {
        handle.stats().pongs_received >= before + n as u64
    }));
    let s = server.stats();
    assert_eq!(s.accepted, 2 * n as u64);
    assert_eq!(s.closed.handshake, 0);
    pool.shutdown();
    server.shutdown();
}
