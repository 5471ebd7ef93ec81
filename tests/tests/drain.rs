//! Real sockets: a graceful drain (issue 12 item 1). A raw JSON client receives
//! `{"goaway":N}`, is served and heartbeated until the deadline and closed then; a client that
//! leaves ends the drain early; a pool told going-away reconnects after its backoff, never
//! judged dead.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Seen, heartbeat, reporter, wait_for};
use wheelbeat_heartbeat::{CloseReason, Pool, Server};

/// A raw client that answers pings; returns every other line it reads until the server
/// closes, each with when it came.
fn answer_pings_until_closed(stream: TcpStream) -> Vec<(Instant, String)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return seen,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        if let Some(n) = line
            .strip_prefix(r#"{"ping":"#)
            .and_then(|s| s.strip_suffix('}'))
        {
            let _ = writeln!(w, r#"{{"pong":{n}}}"#);
        } else {
            seen.push((Instant::now(), line));
        }
    }
}

fn goaway_ms(line: &str) -> Option<u64> {
    line.strip_prefix(r#"{"goaway":"#)?
        .strip_suffix('}')?
        .parse()
        .ok()
}

#[test]
fn a_drained_client_is_told_goaway_served_until_the_deadline_and_closed_within_it() {
    let (h, events) = reporter(false);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(200, 500, 2))
        .start(move |_| h.clone())
        .unwrap();
    let addr = server.local_addr();
    // `stays` answers pings but never leaves; `leaves` closes as soon as it is told.
    let stays = TcpStream::connect(addr).unwrap();
    let leaves = TcpStream::connect(addr).unwrap();
    for _ in 0..2 {
        wait_for(&events, Instant::now() + Duration::from_secs(5), |e| {
            matches!(e, Seen::Connect(..)).then_some(())
        })
        .expect("both clients connected");
    }
    let stays_reader = std::thread::spawn(move || answer_pings_until_closed(stays));
    let leaves_reader = std::thread::spawn(move || {
        leaves
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut r = BufReader::new(leaves);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            if goaway_ms(line.trim_end()).is_some() {
                return Some(Instant::now()); // Dropping the socket leaves.
            }
        }
    });

    let window = Duration::from_millis(1500);
    let started = Instant::now();
    server.drain(started + window);
    let returned = Instant::now();

    let left_at = leaves_reader.join().unwrap().expect("told going away");
    assert!(left_at < started + window);
    let seen = stays_reader.join().unwrap();
    let closed_at = Instant::now();
    // The notice came first, carrying the time left.
    let (_, first) = &seen[0];
    let ms = goaway_ms(first).unwrap_or_else(|| panic!("expected a goaway first: {seen:?}"));
    assert!((1000..=1500).contains(&ms), "{ms} ms left");
    // Served and heartbeated until the deadline (answering pings, it was never dead), then
    // closed within it (plus a loop turn and the scheduler's slack).
    assert!(
        returned >= started + window - Duration::from_millis(20),
        "drain returned {:?} after it started, before its deadline",
        returned - started
    );
    assert!(
        closed_at <= started + window + Duration::from_millis(1000),
        "closed {:?} after the drain started",
        closed_at - started
    );
    // New connections are refused once the drain has begun.
    assert!(TcpStream::connect(addr).is_err());

    let closes: Vec<CloseReason> = events
        .try_iter()
        .filter_map(|e| match e {
            Seen::Close(_, r) => Some(r),
            Seen::Dead(..) => panic!("nobody is dead in a drain: {e:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert!(closes.contains(&CloseReason::PeerClosed), "{closes:?}");
    assert!(closes.contains(&CloseReason::DrainTimeout), "{closes:?}");
    let s = server.handle().published_stats();
    assert_eq!(
        (
            s.closed.drain_timeout,
            s.closed.peer_closed,
            s.closed.missed_pings
        ),
        (1, 1, 0)
    );
    assert!(server.handle().is_shut_down());
}

#[test]
fn a_drain_ends_as_soon_as_the_pool_peers_leave_and_none_is_judged_dead() {
    let n = 50;
    // Two loops: each closes its own listener (SO_REUSEPORT) and tells its own peers.
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .loops(2)
        .heartbeat(heartbeat(200, 500, 2))
        .start(|_| ())
        .unwrap();
    let (ph, pool_events) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(200, 500, 2))
        .start(move |_| ph.clone())
        .unwrap();
    for _ in 0..n {
        wait_for(
            &pool_events,
            Instant::now() + Duration::from_secs(10),
            |e| matches!(e, Seen::Connect(..)).then_some(()),
        )
        .expect("every pool connection up");
    }
    let started = Instant::now();
    server.drain(started + Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the pool left on the notice; the drain did not wait for its deadline"
    );
    let mut go_away = 0;
    while go_away < n {
        match wait_for(&pool_events, Instant::now() + Duration::from_secs(5), |e| {
            Some(e.clone())
        }) {
            Some(Seen::Close(_, CloseReason::GoAway)) => go_away += 1,
            Some(Seen::Dead(..)) => panic!("a pool peer was judged dead"),
            Some(_) => {}
            None => panic!("{go_away} of {n} pool connections closed on going-away"),
        }
    }
    let s = server.handle().published_stats();
    assert_eq!(s.closed.peer_closed, n as u64);
    assert_eq!(s.closed.drain_timeout, 0);
    pool.shutdown();
}

#[test]
fn a_pool_told_going_away_reconnects_after_its_backoff_without_a_dead_verdict() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ph, events) = reporter(false);
    let pool = Pool::builder()
        .connect(listener.local_addr().unwrap(), 1)
        .heartbeat(heartbeat(5000, 1000, 2))
        .start(move |_| ph.clone())
        .unwrap();
    let (mut first, _) = listener.accept().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first.write_all(b"{\"goaway\":1000}\n").unwrap();
    let told = Instant::now();
    // The pool closes its side at once: EOF here.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut first, &mut rest);
    // And reconnects after its backoff (the first step is at most 100 ms, full jitter).
    let (_second, _) = listener.accept().unwrap();
    assert!(
        told.elapsed() < Duration::from_secs(2),
        "reconnected {:?} after going-away",
        told.elapsed()
    );
    let reason = wait_for(
        &events,
        Instant::now() + Duration::from_secs(5),
        |e| match e {
            Seen::Dead(..) => panic!("judged dead: {e:?}"),
            Seen::Close(_, r) => Some(r.clone()),
            _ => None,
        },
    );
    assert_eq!(reason, Some(CloseReason::GoAway));
    let s = pool.stats();
    assert_eq!((s.closed.go_away, s.closed.missed_pings), (1, 0));
    pool.shutdown();
}
