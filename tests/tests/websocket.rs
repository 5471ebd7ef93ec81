//! Real sockets: WebSocket as a protocol of the shell (`ServerBuilder::websocket`,
//! `PoolBuilder::websocket`). The heartbeat is RFC 6455 ping/pong with the sequence number in
//! the payload; a frozen peer dies within the bound; a bad upgrade gets a 400 and closes only
//! its own connection; an upgrade that never ends is closed at the handshake timeout.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, reporter, wait_for, wait_until};
use wheelbeat_heartbeat::{CloseReason, Pool, SendAs, Server, WsSettings};

/// How late a verdict may be on top of the bound on a busy 2-core machine (as in
/// `frozen_peer.rs`).
const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(150);

fn ws_server(
    config: wheelbeat_heartbeat::Config,
    ws: WsSettings,
    echo: bool,
) -> (Server, crossbeam_channel::Receiver<Seen>) {
    let (h, rx) = reporter(echo);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(config)
        .websocket(ws)
        .start(move |_| h.clone())
        .unwrap();
    (server, rx)
}

/// Reads from `s` until end of stream (or the read timeout), returning what came.
fn read_to_end_within(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("no end of stream within {within:?}: {e} (got {got:?})"),
        }
    }
}

#[test]
fn ws_pool_and_server_heartbeat_with_rtts_and_echo_messages() {
    let _ = env_logger::builder().is_test(true).try_init();
    let n = 20;
    let (server, server_rx) = ws_server(
        heartbeat(100, 200, 3),
        WsSettings::default()
            .path("/ws")
            .send_as(SendAs::LikeReceived),
        true,
    );
    let (client_h, client_rx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 200, 3))
        .websocket(WsSettings::default().path("/ws"))
        .start(move |_| client_h.clone())
        .unwrap();
    let mut clients = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients.len() < n {
        let id = wait_for(&client_rx, deadline, |e| match e {
            Seen::Connect(id, _) => Some(*id),
            _ => None,
        })
        .expect("every client connects");
        clients.push(id);
    }
    // Both ends ping with RFC pings and measure RTTs from the pongs the other end's session
    // sends: three rounds each.
    let (sh, ph) = (server.handle(), pool.handle());
    assert!(
        wait_until(&server_rx, Duration::from_secs(10), || {
            sh.stats().pongs_received >= 3 * n as u64 && ph.stats().pongs_received >= 3 * n as u64
        }),
        "server {:?} / pool {:?} pongs",
        sh.stats().pongs_received,
        ph.stats().pongs_received
    );
    assert!(sh.stats().rtt().count >= 3 * n as u64);
    assert!(ph.stats().rtt().count >= 3 * n as u64);

    // Messages after the upgrade are echoed, in the kind they came in (text here).
    for (i, id) in clients.iter().enumerate() {
        pool.send(*id, format!("hello {i}")).unwrap();
    }
    let mut echoed = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while echoed.len() < n {
        let (id, body) = wait_for(&client_rx, deadline, |e| match e {
            Seen::Message(id, body) => Some((*id, body.clone())),
            _ => None,
        })
        .expect("every message is echoed");
        let i = clients.iter().position(|c| *c == id).unwrap();
        assert_eq!(body, format!("hello {i}").into_bytes());
        echoed.insert(id);
    }

    // Idle WebSocket connections hold no heap buffers: at some moment between heartbeats the
    // loop's held bytes (partial frames, write queues, sessions' message buffers) are zero.
    assert!(
        wait_until(&server_rx, Duration::from_secs(5), || sh
            .stats()
            .memory_bytes
            == 0),
        "server holds {} bytes for {n} idle connections",
        sh.stats().memory_bytes
    );
    let s = sh.stats();
    assert_eq!(s.connections, n as u64);
    assert_eq!(s.closed.missed_pings + s.closed.protocol_error, 0);

    // A pool's close is a WebSocket close: the server sees the peer close, not an error.
    pool.shutdown();
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while closed < n {
        match wait_for(&server_rx, deadline, |e| match e {
            Seen::Close(_, r) => Some(r.clone()),
            _ => None,
        }) {
            Some(CloseReason::PeerClosed) => closed += 1,
            Some(other) => panic!("server closed a connection: {other}"),
            None => panic!("{closed} of {n} closes seen"),
        }
    }
    server.shutdown();
}

#[test]
fn frozen_ws_peers_are_detected_within_the_bound_and_nobody_else() {
    let _ = env_logger::builder().is_test(true).try_init();
    let config = heartbeat(100, 100, 2);
    let bound = config.interval.mul_f64(1.0 + config.jitter)
        + config.timeout * config.max_missed
        + config.tick;
    let (server, server_rx) = ws_server(config.clone(), WsSettings::default(), false);
    let (client_h, client_rx) = reporter(false);
    let n = 12;
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(config)
        .websocket(WsSettings::default())
        .start(move |_| client_h.clone())
        .unwrap();
    let mut client_by_port = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client_by_port.len() < n {
        let (id, port) = wait_for(&client_rx, deadline, |e| match e {
            Seen::Connect(id, info) => Some((*id, common::port(&info.local))),
            _ => None,
        })
        .expect("every client connects");
        client_by_port.insert(port, id);
    }
    let mut server_by_port = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_by_port.len() < n {
        let (id, port) = wait_for(&server_rx, deadline, |e| match e {
            Seen::Connect(id, info) => Some((*id, common::port(&info.peer))),
            _ => None,
        })
        .expect("every connection accepted");
        server_by_port.insert(port, id);
    }
    let sh = server.handle();
    assert!(wait_until(&server_rx, Duration::from_secs(5), || sh
        .stats()
        .pongs_received
        >= 2 * n as u64));

    let frozen_ports: Vec<u16> = client_by_port.keys().copied().take(n / 3).collect();
    let frozen: HashSet<_> = frozen_ports.iter().map(|p| server_by_port[p]).collect();
    let frozen_at = Instant::now();
    for p in &frozen_ports {
        pool.handle().freeze(client_by_port[p]).unwrap();
    }
    let mut detected = HashMap::new();
    let deadline = frozen_at + bound + Duration::from_secs(3);
    while detected.len() < frozen.len() {
        match server_rx.recv_deadline(deadline) {
            Ok(Seen::Dead(id, _, _, at)) => {
                assert!(frozen.contains(&id), "healthy peer {id} declared dead");
                detected.insert(id, at - frozen_at);
            }
            Ok(Seen::Close(id, reason)) => {
                assert!(frozen.contains(&id), "healthy peer {id} closed: {reason}")
            }
            Ok(_) => {}
            Err(_) => panic!(
                "{} of {} frozen peers detected",
                detected.len(),
                frozen.len()
            ),
        }
    }
    for (id, latency) in &detected {
        assert!(
            *latency <= bound + SCHEDULING_ALLOWANCE,
            "{id} detected after {latency:?}, bound {bound:?}"
        );
    }
    // Another bound of heartbeats: nobody else lost.
    let calm_until = Instant::now() + bound;
    while let Ok(ev) = server_rx.recv_deadline(calm_until) {
        if let Seen::Dead(id, ..) | Seen::Close(id, _) = ev {
            assert!(frozen.contains(&id), "healthy peer {id} lost");
        }
    }
    assert_eq!(sh.stats().connections, (n - frozen.len()) as u64);
    pool.shutdown();
    server.shutdown();
}

#[test]
fn a_bad_upgrade_gets_400_and_only_that_connection_closes() {
    let _ = env_logger::builder().is_test(true).try_init();
    let (server, server_rx) = ws_server(heartbeat(100, 200, 3), WsSettings::default(), false);
    let n = 5;
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 200, 3))
        .websocket(WsSettings::default())
        .start(|_| ())
        .unwrap();
    let sh = server.handle();
    assert!(wait_until(&server_rx, Duration::from_secs(10), || sh
        .stats()
        .pongs_received
        >= n as u64));

    // A plain GET (no Upgrade header): a 400, then the end of the stream.
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let reply = read_to_end_within(&mut raw, Duration::from_secs(5));
    assert!(
        reply.starts_with(b"HTTP/1.1 400"),
        "got {:?}",
        String::from_utf8_lossy(&reply)
    );
    let reason = wait_for(
        &server_rx,
        Instant::now() + Duration::from_secs(5),
        |e| match e {
            Seen::Close(_, r) => Some(r.clone()),
            _ => None,
        },
    )
    .expect("the bad connection is closed");
    assert!(matches!(reason, CloseReason::Protocol(_)), "{reason}");

    // The healthy ones go on heartbeating, none closed.
    let before = sh.stats().pongs_received;
    assert!(wait_until(&server_rx, Duration::from_secs(5), || sh
        .stats()
        .pongs_received
        >= before + 2 * n as u64));
    let s = sh.stats();
    assert_eq!(s.connections, n as u64);
    assert_eq!(s.closed.protocol_error, 1);
    assert_eq!(
        s.protocol_errors, 1,
        "a refused upgrade is a protocol error"
    );
    pool.shutdown();
    server.shutdown();
}

#[test]
fn an_upgrade_never_finished_is_closed_at_the_handshake_timeout() {
    let _ = env_logger::builder().is_test(true).try_init();
    let timeout = Duration::from_millis(300);
    // Pings are far off: only the handshake timeout can close the connection.
    let (server, server_rx) = ws_server(
        heartbeat(10_000, 5_000, 2),
        WsSettings::default().handshake_timeout(timeout),
        false,
    );
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    let sent = Instant::now();
    raw.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    let reply = read_to_end_within(&mut raw, Duration::from_secs(5));
    let took = sent.elapsed();
    assert!(
        reply.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&reply)
    );
    assert!(took >= timeout, "closed after {took:?}, before the timeout");
    assert!(
        took < timeout + Duration::from_secs(2),
        "closed after {took:?}"
    );
    let reason = wait_for(
        &server_rx,
        Instant::now() + Duration::from_secs(5),
        |e| match e {
            Seen::Close(_, r) => Some(r.clone()),
            _ => None,
        },
    )
    .expect("the server reports the close");
    assert_eq!(reason, CloseReason::HandshakeTimeout);
    assert_eq!(server.stats().closed.handshake, 1);
    server.shutdown();
}

/// `wss://`: WebSocket over the shell's TLS. The upgrade, the RFC ping/pong heartbeat and the
/// messages all run inside the TLS stream, on both ends.
#[test]
fn wss_pool_and_server_heartbeat_over_tls() {
    use wheelbeat_heartbeat::tls::{ClientAuth, Roots, client_config, server_config};
    let _ = env_logger::builder().is_test(true).try_init();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let n = 6;
    let (h, server_rx) = reporter(true);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(100, 200, 3))
        .tls(
            server_config(
                cert.as_bytes(),
                key.as_bytes(),
                &[b"wheelbeat"],
                ClientAuth::None,
            )
            .unwrap(),
        )
        .websocket(WsSettings::default().path("/ws"))
        .start(move |_| h.clone())
        .unwrap();
    let (client_h, client_rx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 200, 3))
        .tls(
            client_config(Roots::Pem(cert.into_bytes()), &[b"wheelbeat"], None).unwrap(),
            "localhost",
        )
        .websocket(WsSettings::default().path("/ws"))
        .start(move |_| client_h.clone())
        .unwrap();
    let (sh, ph) = (server.handle(), pool.handle());
    assert!(
        wait_until(&server_rx, Duration::from_secs(10), || {
            sh.stats().pongs_received >= 3 * n as u64 && ph.stats().pongs_received >= 3 * n as u64
        }),
        "server {} / pool {} pongs",
        sh.stats().pongs_received,
        ph.stats().pongs_received
    );
    let ids: Vec<_> = client_rx
        .try_iter()
        .filter_map(|e| match e {
            Seen::Connect(id, _) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), n);
    pool.send(ids[0], "over tls").unwrap();
    let body = wait_for(
        &client_rx,
        Instant::now() + Duration::from_secs(5),
        |e| match e {
            Seen::Message(_, body) => Some(body.clone()),
            _ => None,
        },
    )
    .expect("the message is echoed");
    assert_eq!(body, b"over tls");
    assert_eq!(sh.stats().connections, n as u64);
    pool.shutdown();
    server.shutdown();
}

/// A passive WebSocket server never pings: the clients' pings (answered by the server's
/// session) keep their connections alive, and a frozen client is dead after one silent
/// window (`interval`), within a tick, never before.
#[test]
fn a_passive_ws_server_never_pings_and_judges_by_silence() {
    let _ = env_logger::builder().is_test(true).try_init();
    let window = Duration::from_millis(300);
    let (server, server_rx) = ws_server(
        heartbeat(window.as_millis() as u64, 200, 3),
        WsSettings::default().passive(true),
        false,
    );
    let n = 4;
    let (client_h, client_rx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 200, 3))
        .websocket(WsSettings::default())
        .start(move |_| client_h.clone())
        .unwrap();
    let (sh, ph) = (server.handle(), pool.handle());
    // Three windows' worth of client pings, all answered by the server's sessions.
    assert!(wait_until(&server_rx, Duration::from_secs(10), || ph
        .stats()
        .pongs_received
        >= 9 * n as u64));
    let s = sh.stats();
    assert_eq!(s.pings_sent, 0, "a passive server pinged");
    assert_eq!(s.connections, n as u64);
    assert_eq!(s.closed.missed_pings, 0);

    let victim = wait_for(&client_rx, Instant::now(), |e| match e {
        Seen::Connect(id, _) => Some(*id),
        _ => None,
    })
    .expect("a client connected");
    let frozen_at = Instant::now();
    ph.freeze(victim).unwrap();
    let (silent_for, at) = wait_for(
        &server_rx,
        frozen_at + Duration::from_secs(5),
        |e| match e {
            Seen::Dead(_, _, silent_for, at) => Some((*silent_for, *at)),
            _ => None,
        },
    )
    .expect("the frozen client is declared dead");
    let tick = wheelbeat_heartbeat::Config::default().tick;
    assert!(silent_for >= window, "dead after {silent_for:?} of silence");
    assert!(
        at - frozen_at <= window + tick + SCHEDULING_ALLOWANCE,
        "dead {:?} after the freeze",
        at - frozen_at
    );
    assert_eq!(sh.stats().connections, n as u64 - 1);
    pool.shutdown();
    server.shutdown();
}

/// Greets every connection from `on_connect`, before its upgrade has completed.
#[derive(Clone)]
struct Greeter;

impl wheelbeat_heartbeat::Handler for Greeter {
    fn on_connect(
        &mut self,
        cx: &mut wheelbeat_heartbeat::Context<'_>,
        conn: wheelbeat_heartbeat::ConnId,
        _: &wheelbeat_heartbeat::ConnInfo,
    ) {
        cx.send(conn, &b"welcome"[..]);
        cx.send(conn, &b"second"[..]);
    }
}

/// Guards messages sent before the upgrade: a greeting from `on_connect` reaches the peer
/// right after the 101, in order, whichever side greets (a server to a browser-like raw
/// client, a pool to its server).
#[test]
fn messages_sent_before_the_upgrade_follow_the_101() {
    let _ = env_logger::builder().is_test(true).try_init();
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(10_000, 5_000, 2))
        .websocket(WsSettings::default())
        .start(|_| Greeter)
        .unwrap();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // The head, then two unmasked text frames: 0x81, length, payload.
    let want_frames: &[u8] = b"\x81\x07welcome\x81\x06second";
    while !got.ends_with(want_frames) {
        let n = raw.read(&mut buf).expect("the greeting within 5 s");
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        &got[head_end..],
        want_frames,
        "nothing between the 101 and the greeting"
    );
    drop(raw);

    // The pool side: its greeting reaches the server after the server's 101.
    let (srv_h, srv_rx) = reporter(false);
    let echo_server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(10_000, 5_000, 2))
        .websocket(WsSettings::default())
        .start(move |_| srv_h.clone())
        .unwrap();
    let pool = Pool::builder()
        .connect(echo_server.local_addr(), 1)
        .heartbeat(heartbeat(10_000, 5_000, 2))
        .websocket(WsSettings::default())
        .start(|_| Greeter)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut messages = Vec::new();
    while messages.len() < 2 {
        let m = wait_for(&srv_rx, deadline, |e| match e {
            Seen::Message(_, m) => Some(m.clone()),
            _ => None,
        })
        .expect("the pool's greeting reaches the server");
        messages.push(m);
    }
    assert_eq!(messages, [b"welcome".to_vec(), b"second".to_vec()]);
    pool.shutdown();
    echo_server.shutdown();
    server.shutdown();
}
