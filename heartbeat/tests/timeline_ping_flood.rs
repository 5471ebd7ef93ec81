//! Timeline tests of the ping-flood policy: a peer may send `max_pings_per_interval` pings per
//! silence cycle; each time it passes that it earns a strike, and at `max_ping_strikes` it is
//! refused ([`Action::PingFlood`]). A cycle without a strike clears them. Healthy peers, even
//! ones pinging far more often than we do, are never affected.

use std::time::Duration;

use wheelbeat_heartbeat::monitor::{Action, Config};
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_heartbeat::sim::Timeline as Harness;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        jitter: 0.0,
        max_pings_per_interval: 10,
        max_ping_strikes: 2,
        ..Config::default()
    }
}

fn floods(h: &Harness<u32>) -> Vec<(u64, u32)> {
    h.actions
        .iter()
        .filter_map(|&(t, a)| match a {
            Action::PingFlood { conn, .. } => Some((t, conn)),
            _ => None,
        })
        .collect()
}

fn pongs(h: &Harness<u32>, conn: u32) -> usize {
    h.actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::SendPong { conn: c, .. } if *c == conn))
        .count()
}

#[test]
fn a_ping_flood_is_refused_at_the_second_strike_and_nobody_else_is_touched() {
    let mut h = Harness::new(config());
    let flooder = h.add(0, 1);
    let healthy = h.add(0, 2);
    // 21 pings within one millisecond: strike 1 at the 11th, strike 2 (refused) at the 22nd.
    for i in 0..21 {
        h.recv(100, flooder, Message::Ping(i));
    }
    assert!(floods(&h).is_empty(), "one strike so far");
    h.recv(100, flooder, Message::Ping(21));
    assert_eq!(floods(&h), vec![(100, 1)]);
    assert_eq!(pongs(&h, 1), 21, "the refused ping is not answered");
    assert!(!h.m.contains(flooder), "the flooder left the monitor");
    assert_eq!(h.m.stats().ping_floods, 1);
    assert_eq!(h.dead(1), None, "refused, not dead");
    // The healthy peer pinging once a second is never touched.
    for s in 0..20 {
        h.recv(1_000 * (s + 1), healthy, Message::Ping(s));
    }
    h.run_to(20_500);
    assert_eq!(floods(&h).len(), 1);
    assert!(h.m.contains(healthy));
}

#[test]
fn a_strike_outlives_the_cycle_it_was_given_in() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    for i in 0..11 {
        h.recv(100, p, Message::Ping(i)); // the 11th: strike 1
    }
    h.run_to(1_500); // the cycle ends (its timer fires) with that strike in it: kept
    for i in 0..11 {
        h.recv(1_600, p, Message::Ping(100 + i)); // strike 2: refused
    }
    assert_eq!(floods(&h), vec![(1_600, 1)]);
}

#[test]
fn a_cycle_within_the_cap_clears_the_strikes() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    for i in 0..11 {
        h.recv(100, p, Message::Ping(i)); // strike 1
    }
    // Cycles end each time the peer's timer fires; one with no strike in it clears them.
    for s in 0..3 {
        h.recv(1_200 + 1_000 * s, p, Message::Ping(100 + s));
    }
    h.run_to(5_000);
    for i in 0..11 {
        h.recv(5_100, p, Message::Ping(200 + i)); // one strike again, not two
    }
    assert!(floods(&h).is_empty());
    assert!(h.m.contains(p));
}

#[test]
fn a_peer_pinging_every_tick_under_the_default_cap_is_never_refused() {
    // Defaults: 256 pings per cycle. A peer pinging every 10 ms against our 1 s interval sends
    // about 100 per cycle.
    let mut h = Harness::new(Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        ..Config::default()
    });
    let p = h.add(0, 1);
    for i in 0..3_000 {
        h.recv(10 * (i + 1), p, Message::Ping(i));
    }
    assert!(floods(&h).is_empty());
    assert_eq!(pongs(&h, 1), 3_000);
}

#[test]
fn the_policy_can_be_turned_off() {
    let mut h = Harness::new(Config {
        max_pings_per_interval: 0,
        ..config()
    });
    let p = h.add(0, 1);
    for i in 0..10_000 {
        h.recv(100, p, Message::Ping(i));
    }
    assert!(floods(&h).is_empty());
}
