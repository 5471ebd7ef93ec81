//! Real sockets: listener and per-socket options are really applied (read back from the
//! kernel), and `SO_REUSEPORT` lets two loops share a port.
//!
//! Run with: `cargo test -p wheelbeat-net --test listen_options`.

mod common;

use std::time::{Duration, Instant};

use common::WAIT;
use mio::{Events, Poll, Token};
use socket2::SockRef;
use wheelbeat_net::{AcceptStatus, Acceptor, Keepalive, ListenConfig, SocketOptions, bind};

#[test]
fn reuse_port_lets_two_listeners_share_a_port() {
    let config = ListenConfig::default().reuse_port(true);
    let a = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = a.local_addr().unwrap();
    let b = bind(addr, &config).unwrap();
    assert_eq!(b.local_addr().unwrap(), addr);
    // Without it, the second bind is refused.
    let plain = ListenConfig::default();
    let c = bind("127.0.0.1:0".parse().unwrap(), &plain).unwrap();
    assert!(bind(c.local_addr().unwrap(), &plain).is_err());
}

#[test]
fn accepted_sockets_carry_the_configured_options() {
    let keepalive = Keepalive {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(5),
        count: 4,
    };
    let socket = SocketOptions::default()
        .nodelay(true)
        .keepalive(Some(keepalive))
        .user_timeout(Some(Duration::from_secs(20)));
    let config = ListenConfig::default().socket(socket);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    let mut acceptor = Acceptor::new(listener, Token(usize::MAX), config);
    acceptor.register(poll.registry()).unwrap();
    let _client = common::client(addr);

    let mut accepted = Vec::new();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    while accepted.is_empty() {
        assert!(Instant::now() < deadline, "accept timed out");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let status = acceptor
            .accept(poll.registry(), Instant::now(), 0, |s, _| accepted.push(s))
            .unwrap();
        assert!(matches!(status, AcceptStatus::Drained), "{status:?}");
    }
    let s = SockRef::from(&accepted[0]);
    assert!(s.tcp_nodelay().unwrap());
    assert!(s.keepalive().unwrap());
    assert_eq!(s.tcp_keepalive_time().unwrap(), keepalive.idle);
    assert_eq!(s.tcp_keepalive_interval().unwrap(), keepalive.interval);
    assert_eq!(s.tcp_keepalive_retries().unwrap(), keepalive.count);
    assert_eq!(s.tcp_user_timeout().unwrap(), Some(Duration::from_secs(20)));
}

#[test]
fn max_connections_stops_accepting_until_the_caller_has_room() {
    let config = ListenConfig::default().max_connections(2);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    let mut acceptor = Acceptor::new(listener, Token(usize::MAX), config);
    acceptor.register(poll.registry()).unwrap();
    let _clients: Vec<_> = (0..3).map(|_| common::client(addr)).collect();

    let mut accepted = Vec::new();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "accept timed out");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let live = accepted.len();
        let status = acceptor
            .accept(poll.registry(), Instant::now(), live, |s, _| {
                accepted.push(s)
            })
            .unwrap();
        if status == AcceptStatus::Full {
            break;
        }
    }
    assert_eq!(accepted.len(), 2, "the cap holds");
    // Full asks to be called each turn, but does not keep the loop awake for it.
    assert!(acceptor.accept_due(Instant::now()));
    assert_eq!(acceptor.timeout(Instant::now()), None);
    // One closes: the caller calls accept again and the third gets in.
    accepted.pop();
    let deadline = Instant::now() + WAIT;
    while accepted.len() < 2 {
        assert!(Instant::now() < deadline, "third connection never accepted");
        let live = accepted.len();
        acceptor
            .accept(poll.registry(), Instant::now(), live, |s, _| {
                accepted.push(s)
            })
            .unwrap();
        if accepted.len() < 2 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
    }
}

#[test]
fn an_acceptor_stopped_at_its_budget_is_due_again_without_an_event() {
    let config = ListenConfig::default().accept_budget(2);
    let mut acceptor =
        Acceptor::bind("127.0.0.1:0".parse().unwrap(), Token(usize::MAX), config).unwrap();
    let addr = acceptor.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    acceptor.register(poll.registry()).unwrap();
    let clients: Vec<_> = (0..5).map(|_| common::client(addr)).collect();

    // One event for the whole backlog (edge-triggered), then the acceptor's own word.
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    while events.is_empty() {
        assert!(Instant::now() < deadline, "no listener event");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
    }
    let mut accepted = Vec::new();
    let (mut turns, mut exhausted) = (0, 0);
    loop {
        assert!(Instant::now() < deadline, "backlog never drained");
        let status = acceptor
            .accept(poll.registry(), Instant::now(), accepted.len(), |s, _| {
                accepted.push(s)
            })
            .unwrap();
        turns += 1;
        if status != AcceptStatus::BudgetExhausted {
            // Drained, or nothing yet queued by the kernel: wait for the next edge.
            assert!(!acceptor.accept_due(Instant::now()));
            assert_eq!(acceptor.timeout(Instant::now()), None);
            if accepted.len() == clients.len() {
                break;
            }
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            continue;
        }
        exhausted += 1;
        assert!(accepted.len() <= 2 * turns, "the budget holds");
        assert!(acceptor.accept_due(Instant::now()), "more are waiting");
        assert_eq!(acceptor.timeout(Instant::now()), Some(Duration::ZERO));
    }
    assert_eq!(accepted.len(), 5);
    // The five were queued before the first call: budgets of two stop it twice.
    assert_eq!(exhausted, 2);
}

/// Guards the back-pressure knobs: `SO_SNDBUF` and `TCP_NOTSENT_LOWAT` reach accepted and
/// outbound sockets (read back from the kernel).
#[test]
fn send_buffer_and_notsent_lowat_are_applied() {
    let socket = SocketOptions::default()
        .send_buffer(Some(48 * 1024))
        .notsent_lowat(Some(16 * 1024));
    let config = ListenConfig::default().socket(socket);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    let mut acceptor = Acceptor::new(listener, Token(usize::MAX), config);
    acceptor.register(poll.registry()).unwrap();
    let plain_client = common::client(addr);
    let outbound = wheelbeat_net::Connecting::start(addr, &socket, Instant::now(), WAIT).unwrap();

    let mut accepted = Vec::new();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    while accepted.is_empty() {
        assert!(Instant::now() < deadline, "accept timed out");
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        acceptor
            .accept(poll.registry(), Instant::now(), 0, |s, _| accepted.push(s))
            .unwrap();
    }
    let s = SockRef::from(&accepted[0]);
    // Linux doubles SO_SNDBUF for its bookkeeping and reports the doubled value.
    let sndbuf = s.send_buffer_size().unwrap();
    assert!((48 * 1024..=96 * 1024).contains(&sndbuf), "{sndbuf}");
    assert_ne!(
        sndbuf,
        SockRef::from(&plain_client).send_buffer_size().unwrap()
    );
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        assert_eq!(s.tcp_notsent_lowat().unwrap(), 16 * 1024);
        assert_eq!(SockRef::from(&plain_client).tcp_notsent_lowat().unwrap(), 0);
    }
    let mut outbound = outbound;
    let o = SockRef::from(&*outbound.stream_mut());
    assert!((48 * 1024..=96 * 1024).contains(&o.send_buffer_size().unwrap()));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    assert_eq!(o.tcp_notsent_lowat().unwrap(), 16 * 1024);
}
