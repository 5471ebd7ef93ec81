//! Real sockets: outbound non-blocking connects end as connected, failed or timed out, with
//! the deadline enforced by the caller's loop.
//!
//! Run with: `cargo test -p wheelbeat-net --test connect`.

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use mio::{Events, Interest, Poll, Token};
use wheelbeat_net::{ConnectStatus, Connecting, Error, ListenConfig, SocketOptions, bind};

/// Drives `c` to a final status with `poll`, bounded by `WAIT`.
fn drive(poll: &mut Poll, c: &mut Connecting) -> ConnectStatus {
    poll.registry()
        .register(c.stream_mut(), Token(1), Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let give_up = Instant::now() + WAIT;
    loop {
        let now = Instant::now();
        assert!(now < give_up, "connect never finished");
        match c.poll(now) {
            ConnectStatus::Pending => {}
            done => return done,
        }
        let wait = c.deadline().saturating_duration_since(now);
        poll.poll(&mut events, Some(wait)).unwrap();
    }
}

#[test]
fn connect_to_a_listener_succeeds() {
    let mut poll = Poll::new().unwrap();
    let listener = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut c = Connecting::start(addr, &SocketOptions::default(), Instant::now(), WAIT).unwrap();
    match drive(&mut poll, &mut c) {
        ConnectStatus::Connected(s) => {
            assert_eq!(s.peer_addr().unwrap(), addr);
            assert!(s.nodelay().unwrap(), "socket options applied");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_to_a_closed_port_fails() {
    let mut poll = Poll::new().unwrap();
    // Bind then drop to get a port nobody listens on.
    let addr = {
        let l = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
        l.local_addr().unwrap()
    };
    let mut c = Connecting::start(addr, &SocketOptions::default(), Instant::now(), WAIT).unwrap();
    match drive(&mut poll, &mut c) {
        ConnectStatus::Failed(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_past_its_deadline_times_out() {
    // A listener that never accepts, with its backlog filled: further SYNs are dropped by the
    // kernel, so the handshake stays in progress until our deadline.
    let mut poll = Poll::new().unwrap();
    let listener = bind(
        "127.0.0.1:0".parse().unwrap(),
        &ListenConfig::default().backlog(0),
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    let mut timed_out = false;
    for _ in 0..8 {
        let started = Instant::now();
        let mut c = Connecting::start(
            addr,
            &SocketOptions::default(),
            Instant::now(),
            Duration::from_millis(200),
        )
        .unwrap();
        match drive(&mut poll, &mut c) {
            ConnectStatus::Connected(s) => fill.push(s),
            ConnectStatus::TimedOut => {
                assert!(
                    started.elapsed() >= Duration::from_millis(200),
                    "never early"
                );
                assert!(
                    matches!(c.poll(Instant::now()), ConnectStatus::Failed(_)),
                    "spent"
                );
                timed_out = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        timed_out,
        "the backlog never filled ({} connected)",
        fill.len()
    );
}
