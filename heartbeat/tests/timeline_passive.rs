//! Timeline tests of passive mode (issue 9): the monitor never pings a passive peer and
//! convicts it after a whole window of silence — within the window plus one tick, never
//! earlier — as MQTT's server side does with 1.5 × the client's keep-alive.

use std::time::Duration;

use wheelbeat_heartbeat::monitor::{Config, DeadReason, Event, PeerConfig};
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_heartbeat::sim::Timeline;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        max_missed: 3,
        jitter: 0.1, // ignored by passive peers: their window is exact
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

/// MQTT keep-alive 1 s: the server closes a client silent for 1.5 s.
fn passive(window_ms: u64) -> PeerConfig {
    PeerConfig {
        interval: Some(Duration::from_millis(window_ms)),
        passive: Some(true),
        ..PeerConfig::default()
    }
}

fn dead_reason(h: &Timeline<u32>, conn: u32) -> Option<DeadReason> {
    h.events.iter().find_map(|&(_, e)| match e {
        Event::Dead {
            conn: c, reason, ..
        } if c == conn => Some(reason),
        _ => None,
    })
}

#[test]
fn a_silent_passive_peer_is_dead_at_the_window_plus_at_most_a_tick_and_never_pinged() {
    let mut h = Timeline::new(config());
    h.add_with(0, 1, passive(1_500));
    h.run_to(1_499);
    assert_eq!(h.dead(1), None, "never before the window");
    h.run_to(1_510);
    let (at, silent) = h.dead(1).expect("dead within the window plus one tick");
    assert!((1_500..=1_510).contains(&at), "{at}");
    assert!(silent >= Duration::from_millis(1_500));
    assert_eq!(dead_reason(&h, 1), Some(DeadReason::Silent));
    assert!(h.pings(1).is_empty(), "a passive peer is never pinged");
}

#[test]
fn every_packet_restarts_the_passive_window_and_pings_are_answered() {
    let mut h = Timeline::new(config());
    let p = h.add_with(0, 1, passive(1_500));
    // A PINGREQ every second: alive for as long as it lasts.
    for k in 1..=10 {
        h.recv(k * 1_000, p, Message::Ping(k));
        h.run_to(k * 1_000);
    }
    h.run_to(11_499);
    assert_eq!(h.dead(1), None);
    assert_eq!(h.m.stats().pings_received, 10);
    // Application data counts too (any MQTT packet is a sign of life).
    h.recv(11_400, p, Message::Data(b"{}"));
    h.run_to(12_899);
    assert_eq!(h.dead(1), None);
    h.run_to(12_910);
    let (at, _) = h.dead(1).expect("dead 1.5 s after the last packet");
    assert!((12_900..=12_910).contains(&at), "{at}");
}

#[test]
fn the_window_learned_later_applies_from_the_last_packet() {
    // Added with the defaults (active, 30 s); the application learns keep-alive 2 s from
    // the first packet and makes the peer passive with 3 s.
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    h.recv(100, p, Message::Data(b"{\"connect\":2}"));
    h.m.reconfigure(p, h.at(100), &passive(3_000)).unwrap();
    h.run_to(3_099);
    assert_eq!(h.dead(1), None);
    h.run_to(3_110);
    assert!(
        h.dead(1)
            .is_some_and(|(at, _)| (3_100..=3_110).contains(&at))
    );
    assert!(h.pings(1).is_empty());
}

#[test]
fn an_invalid_per_connection_setting_is_an_error_and_changes_nothing() {
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    let bad = PeerConfig {
        interval: Some(Duration::ZERO),
        ..PeerConfig::default()
    };
    assert!(h.m.reconfigure(p, h.at(0), &bad).is_err());
    // Still the defaults: first ping within the first window (0, 33 s].
    h.run_to(33_000);
    assert_eq!(h.pings(1).len(), 1);
}

/// Guards the MQTT example's timeline (found by its raw-socket test): a connection opened
/// passive with the connect window, CONNECT read and the keep-alive window set in the same
/// turn, then PINGREQ a moment later (within the same 10 ms tick), then silence. It must be
/// dead 1.5 s after the PINGREQ, never pinged: the timer filed for the CONNECT's window found
/// the PINGREQ's window ending in the same tick, and the peer was pinged (and convicted three
/// timeouts later) instead.
#[test]
fn a_packet_in_the_same_tick_as_the_window_set_still_gets_a_passive_verdict() {
    let mut h = Timeline::new(config());
    let p = h.add_with(0, 1, passive(10_000));
    h.recv(5, p, Message::Data(b"CONNECT"));
    h.m.reconfigure(p, h.at(5), &passive(1_500)).unwrap();
    h.recv(6, p, Message::Ping(0));
    h.run_to(1_505);
    assert_eq!(h.dead(1), None, "never before the window");
    h.run_to(1_520);
    let (at, silent) = h.dead(1).expect("dead within the window plus one tick");
    assert!((1_506..=1_516).contains(&at), "{at}");
    assert!(silent >= Duration::from_millis(1_500));
    assert!(h.pings(1).is_empty(), "a passive peer is never pinged");
}
