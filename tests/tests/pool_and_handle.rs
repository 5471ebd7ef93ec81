//! Real sockets: the pool reconnects with backoff when its server comes back;
//! application frames travel through a `Handle` from another thread; a peer
//! that never reads is cut off at the write cap, alone.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, next_length_frame, next_line, reporter, wait_for, wait_until};
use wheelbeat_heartbeat::{CloseReason, Framing, Options, Pool, Server};

#[test]
fn pool_reconnects_with_backoff_once_the_server_is_back() {
    // Find a free port, then free it again: nothing listens there now.
    let probe = Server::builder("127.0.0.1:0".parse().unwrap())
        .start(|_| ())
        .unwrap();
    let addr = probe.local_addr();
    probe.shutdown();

    let n = 20;
    let (ch, crx) = reporter(false);
    let pool = Pool::builder()
        .connect(addr, n)
        .heartbeat(heartbeat(200, 500, 3))
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .start(move |_| ch.clone())
        .unwrap();
    let ph = pool.handle();
    // Refused connects are retried (several rounds for every slot).
    assert!(wait_until(&crx, Duration::from_secs(5), || {
        ph.stats().connect_failures >= 3 * n as u64
    }));
    assert_eq!(ph.stats().connections, 0);

    let server = Server::builder(addr)
        .heartbeat(heartbeat(200, 500, 3))
        .start(|_| ())
        .unwrap();
    // Backoff ceiling 200 ms: everyone is back well within a second or two.
    assert!(
        wait_until(&crx, Duration::from_secs(5), || ph.stats().connections
            == n as u64),
        "{:?}",
        ph.stats()
    );
    assert_eq!(ph.stats().connected, n as u64);

    // The server goes away: every connection is lost (peer closed), then
    // comes back once a new server listens.
    server.shutdown();
    assert!(wait_until(&crx, Duration::from_secs(5), || ph
        .stats()
        .closed
        .peer_closed
        == n as u64));
    let server = Server::builder(addr).start(|_| ()).unwrap();
    assert!(wait_until(&crx, Duration::from_secs(5), || ph
        .stats()
        .connected
        == 2 * n as u64));
    pool.shutdown();
    server.shutdown();
}

#[test]
fn application_frames_travel_through_handles_both_ways() {
    let (sh, srx) = reporter(true); // the server echoes
    let mut sh = Some(sh);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .start(|_| sh.take().unwrap())
        .unwrap();
    let (ch, crx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), 1)
        .start(move |_| ch.clone())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let client_conn = wait_for(&crx, deadline, |e| match e {
        Seen::Connect(id, _) => Some(*id),
        _ => None,
    })
    .expect("connected");

    // From this (non-loop) thread, through the pool's handle.
    let handle = pool.handle();
    std::thread::spawn(move || handle.send(client_conn, r#"{"hello":"world"}"#).unwrap())
        .join()
        .unwrap();
    let echoed = wait_for(&crx, deadline, |e| match e {
        Seen::Message(id, m) if *id == client_conn => Some(m.clone()),
        _ => None,
    });
    assert_eq!(echoed.as_deref(), Some(&br#"{"hello":"world"}"#[..]));
    let at_server = wait_for(&srx, deadline, |e| match e {
        Seen::Message(_, m) => Some(m.clone()),
        _ => None,
    });
    assert_eq!(at_server.as_deref(), Some(&br#"{"hello":"world"}"#[..]));

    // A frame the codec cannot carry is dropped, not sent half-framed.
    pool.handle().send(client_conn, "{\"a\":\n1}").unwrap();
    // Closing through the handle: no reconnect for a deliberate close.
    pool.handle().close(client_conn).unwrap();
    let reason = wait_for(&crx, deadline, |e| match e {
        Seen::Close(id, r) if *id == client_conn => Some(r.clone()),
        _ => None,
    });
    assert_eq!(reason, Some(CloseReason::Local));
    let ph = pool.handle();
    assert!(wait_until(&srx, Duration::from_secs(5), || server
        .stats()
        .closed
        .peer_closed
        == 1));
    assert_eq!(
        ph.stats().connected,
        1,
        "a deliberate close is not reconnected"
    );
    pool.shutdown();
    server.shutdown();
}

#[test]
fn a_peer_that_never_reads_is_cut_off_at_the_write_cap_alone() {
    let (sh, srx) = reporter(false);
    let mut sh = Some(sh);
    let cap = 256 * 1024;
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .write_cap(cap)
        .start(|_| sh.take().unwrap())
        .unwrap();
    let addr = server.local_addr();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The sluggard connects and never reads.
    let _sluggard = TcpStream::connect(addr).unwrap();
    let slow = wait_for(&srx, deadline, |e| match e {
        Seen::Connect(id, _) => Some(*id),
        _ => None,
    })
    .unwrap();
    let healthy = TcpStream::connect(addr).unwrap();
    healthy
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let fast = wait_for(&srx, deadline, |e| match e {
        Seen::Connect(id, _) => Some(*id),
        _ => None,
    })
    .unwrap();

    // 60 KiB frames until the kernel buffers and the queue cap are full.
    let frame = format!("{{\"blob\":\"{}\"}}", "x".repeat(60 * 1024));
    let h = server.handle();
    let mut sent = 0;
    let reason = loop {
        let _ = h.send(slow, frame.as_bytes());
        sent += 1;
        // Each frame is acknowledged by the loop before the next one, so the
        // queue is really full when the close comes.
        if let Some(r) = wait_for(
            &srx,
            Instant::now() + Duration::from_millis(50),
            |e| match e {
                Seen::Close(id, r) if *id == slow => Some(r.clone()),
                _ => None,
            },
        ) {
            break r;
        }
        assert!(sent < 1000, "never cut off after {sent} frames");
    };
    assert_eq!(reason, CloseReason::WriteOverflow);
    // Memory stayed bounded: the cap plus kernel buffers, not everything sent.
    assert!(sent * frame.len() < 64 * 1024 * 1024);

    // The other connection is untouched.
    h.send(fast, r#"{"still":"here"}"#).unwrap();
    let line = next_line(&mut BufReader::new(&healthy));
    assert_eq!(line.as_deref(), Some("{\"still\":\"here\"}\n"));
    (&healthy).write_all(b"{\"ping\":1}\n").unwrap();
    assert_eq!(server.stats().closed.write_overflow, 1);
    assert_eq!(server.stats().connections, 1);
    server.shutdown();
}

#[test]
fn length_prefixed_framing_heartbeats_too() {
    let (sh, srx) = reporter(false);
    let mut sh = Some(sh);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .framing(Framing::Length)
        .heartbeat(heartbeat(50, 500, 3))
        .start(|_| sh.take().unwrap())
        .unwrap();
    let pool = Pool::builder()
        .connect(server.local_addr(), 5)
        .framing(Framing::Length)
        .heartbeat(heartbeat(50, 500, 3))
        .start(|_| ())
        .unwrap();
    let (s, p) = (server.handle(), pool.handle());
    assert!(wait_until(&srx, Duration::from_secs(5), || {
        s.stats().pongs_received + p.stats().pongs_received >= 20
    }));
    assert_eq!(s.stats().closed.total() + p.stats().closed.total(), 0);
    // A raw length-prefixed ping is answered in kind.
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ping = br#"{"ping":42}"#;
    raw.write_all(&(ping.len() as u32).to_be_bytes()).unwrap();
    raw.write_all(ping).unwrap();
    assert_eq!(next_length_frame(&mut raw), br#"{"pong":42}"#);
    pool.shutdown();
    server.shutdown();
}

/// Regression: the shutdown flag used to be checked only after the first poll
/// of a turn, so a wake-up consumed by one of the turn's extra zero-timeout
/// polls was lost and the loop slept forever in `poll`.
#[test]
fn shutdown_is_not_lost_while_the_loops_are_busy() {
    for round in 0..10 {
        // Small event batches: full batches are what trigger the extra polls.
        let mut opts = Options::default();
        opts.events_capacity = 16;
        opts.heartbeat = heartbeat(10, 500, 3);
        let server = Server::builder("127.0.0.1:0".parse().unwrap())
            .options(opts.clone())
            .start(|_| ())
            .unwrap();
        let pool = Pool::builder()
            .connect(server.local_addr(), 200)
            .options(opts)
            .start(|_| ())
            .unwrap();
        let ph = pool.handle();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ph.stats().connections < 200 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        // Shut down from another thread, so a hang fails the test instead of
        // blocking it forever.
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            pool.shutdown();
            server.shutdown();
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("shutdown hung in round {round}"));
    }
}

/// A paced pool starts its connects no faster than its rate: connecting 60 at
/// 200 a second takes at least (60 - 1 - burst of 2) / 200 s ≈ 285 ms, where
/// an unpaced pool connects all of them in a few milliseconds.
#[test]
fn a_paced_pool_ramps_its_connects_at_the_rate() {
    let (sh, srx) = reporter(false);
    let mut sh = Some(sh);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .start(|_| sh.take().unwrap())
        .unwrap();
    let n = 60;
    let started = Instant::now();
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .connect_rate(200)
        .start(|_| ())
        .unwrap();
    let mut seen = Vec::new();
    let deadline = started + Duration::from_secs(10);
    while seen.len() < n {
        let at = wait_for(&srx, deadline, |e| match e {
            Seen::Connect(..) => Some(Instant::now()),
            _ => None,
        });
        seen.push(at.expect("every paced connect arrives"));
    }
    // The burst tolerance at 200/s is 10 ms - 5 ms: two starts at once at most.
    // (Only a lower bound is robust: a busy machine may delay and bunch the
    // accepts, never make a start come earlier.)
    let span = seen[n - 1] - started;
    assert!(
        span >= Duration::from_millis(285),
        "{n} connects in {span:?}"
    );
    assert_eq!(pool.stats().connect_failures, 0);
    pool.shutdown();
    server.shutdown();
}

/// `loops(2)` deals a pool's connections over two loops; each loop has its own
/// handler, a handle reaches connections on either, and both heartbeat.
#[test]
fn a_pool_on_two_loops_deals_its_connections_over_both() {
    let (sh, _srx) = reporter(true); // the server echoes
    let mut sh = Some(sh);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(50, 500, 3))
        .start(|_| sh.take().unwrap())
        .unwrap();
    let (ch, crx) = reporter(false);
    let mut made = Vec::new();
    let pool = Pool::builder()
        .connect(server.local_addr(), 10)
        .loops(2)
        .heartbeat(heartbeat(50, 500, 3))
        .start(|i| {
            made.push(i);
            ch.clone()
        })
        .unwrap();
    assert_eq!(made, [0, 1], "one handler per loop");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut conns = Vec::new();
    while conns.len() < 10 {
        let id = wait_for(&crx, deadline, |e| match e {
            Seen::Connect(id, _) => Some(*id),
            _ => None,
        });
        conns.push(id.expect("all ten connect"));
    }
    let per_loop = |l| conns.iter().filter(|c| c.loop_index() == l).count();
    assert_eq!((per_loop(0), per_loop(1)), (5, 5));

    // A frame to a connection of the second loop comes back to it.
    let far = *conns.iter().find(|c| c.loop_index() == 1).unwrap();
    pool.handle().send(far, r#"{"to":"loop 1"}"#).unwrap();
    let echoed = wait_for(&crx, deadline, |e| match e {
        Seen::Message(id, m) if *id == far => Some(m.clone()),
        _ => None,
    });
    assert_eq!(echoed.as_deref(), Some(&br#"{"to":"loop 1"}"#[..]));

    // Both loops heartbeat: pongs for all ten, statistics summed over the loops.
    let ph = pool.handle();
    assert!(wait_until(&crx, Duration::from_secs(5), || ph
        .stats()
        .pongs_received
        >= 40));
    let s = ph.stats();
    assert_eq!((s.connections, s.closed.total()), (10, 0));
    pool.shutdown();
    server.shutdown();
}
