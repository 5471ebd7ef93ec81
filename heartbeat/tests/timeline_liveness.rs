//! Timeline tests of the liveness rules, in virtual time.
//!
//! Each test reads as a timeline: `h.run_to(ms)` runs the monitor as a prompt event loop up to
//! that instant (milliseconds after the start), `h.recv(ms, peer, msg)` delivers a frame at that
//! instant (before the timers due then, as the shell does), and the assertions look at the
//! actions and events stamped with the time they were emitted.

use std::time::{Duration, Instant};

use wheelbeat_heartbeat::monitor::{Action, Config, DeadReason, Monitor, PeerConfig};
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_heartbeat::sim::Timeline as Harness;

const TICK_MS: u64 = 10;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        max_missed: 3,
        jitter: 0.0,
        tick: Duration::from_millis(TICK_MS),
        ..Config::default()
    }
}

#[test]
fn silent_peer_is_pinged_exactly_at_interval() {
    let mut h = Harness::new(config());
    h.add(0, 1);
    h.run_to(29_990);
    assert!(
        h.pings(1).is_empty(),
        "no ping one tick before the interval"
    );
    h.run_to(30_000);
    assert_eq!(h.pings(1), vec![(30_000, 1)]);
}

#[test]
fn answered_ping_gives_rtt_and_restarts_the_silence_window() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(30_000);
    h.recv(30_042, p, Message::Pong(1));
    assert_eq!(h.rtts(1), vec![(30_042, Duration::from_millis(42))]);
    // Next ping after a whole interval of silence since the pong, rounded up to the tick.
    h.run_to(60_040);
    assert_eq!(h.pings(1).len(), 1);
    h.run_to(60_050);
    assert_eq!(h.pings(1), vec![(30_000, 1), (60_050, 2)]);
    assert!(h.misses(1).is_empty());
}

#[test]
fn misses_are_counted_and_each_miss_sends_the_next_ping() {
    let mut h = Harness::new(config());
    h.add(0, 1);
    h.run_to(59_990);
    assert_eq!(h.pings(1), vec![(30_000, 1), (40_000, 2), (50_000, 3)]);
    assert_eq!(h.misses(1), vec![(40_000, 1), (50_000, 2)]);
    assert_eq!(h.dead(1), None);
    h.run_to(60_000);
    assert_eq!(h.misses(1).last(), Some(&(60_000, 3)));
    assert_eq!(h.dead(1), Some((60_000, Duration::from_secs(60))));
    assert!(h.actions.iter().any(|&(t, a)| t == 60_000
        && matches!(
            a,
            Action::Close {
                conn: 1,
                reason: DeadReason::MissedPings { missed: 3 },
                ..
            }
        )));
    let s = h.m.stats();
    assert_eq!((s.pings_sent, s.missed, s.dead, s.peers), (3, 3, 1, 0));
}

#[test]
fn dead_peer_is_removed_and_its_id_goes_stale() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(60_000);
    assert!(h.dead(1).is_some());
    assert!(h.m.is_empty());
    assert_eq!(h.m.conn(p), None);
    assert_eq!(h.m.remove(p), None);
    assert_eq!(h.m.poll_timeout(), None, "no timer left behind");
}

/// The bound at its exact edges, for a peer last heard off a tick boundary: dead no later than
/// `t + interval + max_missed * timeout + one tick`, alive one tick before the verdict.
#[test]
fn dead_exactly_at_the_bound() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    // Last sign of life at t = 1234.567 ms.
    let t = h.at(0) + Duration::from_micros(1_234_567);
    h.run(t - Duration::from_nanos(1));
    h.m.handle_message(p, t, &Message::Data(b"{}"));
    h.now = t;
    let bound = t + Duration::from_secs(30 + 3 * 10) + Duration::from_millis(TICK_MS);
    let earliest = t + Duration::from_secs(30 + 3 * 10);
    // The first ping is due at ceil(t + 30 s) = 31.240 s; verdicts every 10 s after it.
    h.run_to(61_230);
    assert_eq!(h.dead(1), None, "alive one tick before the verdict");
    assert_eq!(h.misses(1).len(), 2);
    h.run_to(61_240);
    let (dead_ms, silent_for) = h.dead(1).expect("dead at the verdict tick");
    assert_eq!(dead_ms, 61_240);
    let dead_at = h.at(dead_ms);
    assert!(dead_at <= bound && dead_at >= earliest);
    assert_eq!(silent_for, dead_at - t);
}

/// Same edge with the last sign of life exactly on a tick boundary: the verdict lands exactly
/// on `t + interval + max_missed * timeout`.
#[test]
fn dead_exactly_at_the_bound_on_a_tick_boundary() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.recv(2_000, p, Message::Ping(9));
    h.run_to(61_990);
    assert_eq!(h.dead(1), None);
    h.run_to(62_000);
    assert_eq!(h.dead(1).map(|d| d.0), Some(62_000));
}

#[test]
fn answer_one_tick_before_timeout_keeps_the_peer_alive() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    for cycle in 0..20u64 {
        // Ping at interval after the last answer; answer at timeout - 1 tick.
        let ping_at = if cycle == 0 {
            30_000
        } else {
            h.pings(1).last().unwrap().0
        };
        h.run_to(ping_at);
        let (t, seq) = *h.pings(1).last().unwrap();
        assert_eq!(t, ping_at);
        h.recv(t + 10_000 - TICK_MS, p, Message::Pong(seq));
        // The next ping goes out exactly one interval after the answer.
        h.run_to(t + 10_000 - TICK_MS + 30_000);
    }
    assert!(h.misses(1).is_empty());
    assert_eq!(h.dead(1), None);
    assert_eq!(h.rtts(1).len(), 20);
    assert!(
        h.rtts(1)
            .iter()
            .all(|&(_, rtt)| rtt == Duration::from_millis(9_990))
    );
}

#[test]
fn answer_read_in_the_same_turn_as_the_verdict_still_counts() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(30_000);
    // The pong arrives exactly at the answer deadline; the shell reads it before the timers.
    h.recv(40_000, p, Message::Pong(1));
    h.run_to(40_000);
    assert!(h.misses(1).is_empty());
}

#[test]
fn answer_after_timeout_is_a_miss_but_still_a_sign_of_life() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(40_000);
    assert_eq!(h.misses(1), vec![(40_000, 1)]);
    // The pong of ping 1 arrives late, after ping 2 went out: no RTT (it does not match the
    // outstanding ping) but the misses start over.
    h.recv(40_500, p, Message::Pong(1));
    assert!(h.rtts(1).is_empty());
    assert_eq!(h.m.missed(p), Some(0));
    assert_eq!(h.m.stats().pongs_unmatched, 1);
    // Ping 2's window closes with the peer heard from: no miss, and the next ping is one
    // interval after the late pong.
    h.run_to(70_499);
    assert_eq!(h.misses(1).len(), 1);
    assert_eq!(h.pings(1).len(), 2);
    h.run_to(70_500);
    assert_eq!(h.pings(1).last().map(|p| p.0), Some(70_500));
}

#[test]
fn an_answer_after_misses_resets_the_count() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(50_000);
    assert_eq!(h.m.missed(p), Some(2));
    h.recv(50_100, p, Message::Pong(3));
    assert_eq!(h.m.missed(p), Some(0));
    // Silent again from 50.1 s: a full fresh budget, dead at 50.1 + 30 + 30 s.
    h.run_to(110_090);
    assert_eq!(h.dead(1), None);
    h.run_to(110_100);
    assert_eq!(h.dead(1).map(|d| d.0), Some(110_100));
}

#[test]
fn data_suppresses_pings_on_a_busy_connection() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    for s in (5..600).step_by(5) {
        h.recv(s * 1000, p, Message::Data(br#"{"x":1}"#));
    }
    h.run_to(600_000);
    assert!(h.pings(1).is_empty(), "a busy connection is never pinged");
    let s = h.m.stats();
    // Lazy re-arm: about one timer operation per interval, not one per frame.
    assert!(s.timer_fires <= 600 / 27 + 1, "{s:?}");
    assert_eq!(s.data_received, 119);
    // Silence from the last frame at 595 s: pinged at 625 s.
    h.run_to(625_000);
    assert_eq!(h.pings(1), vec![(625_000, 1)]);
}

#[test]
fn data_does_not_count_when_configured_so() {
    let mut h = Harness::new(Config {
        data_counts_as_liveness: false,
        ..config()
    });
    let p = h.add(0, 1);
    for s in (1..70).step_by(1) {
        h.recv(s * 1000, p, Message::Data(b"{}"));
    }
    h.run_to(60_000);
    assert_eq!(h.pings(1).len(), 3);
    assert_eq!(
        h.dead(1).map(|d| d.0),
        Some(60_000),
        "data alone is not an answer"
    );
}

#[test]
fn a_ping_from_the_peer_is_answered_and_counts_as_life() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    for s in (20..200).step_by(20) {
        h.recv(s * 1000, p, Message::Ping(u64::MAX - s));
    }
    h.run_to(200_000);
    assert!(h.pings(1).is_empty(), "a peer that pings us is alive");
    let pongs: Vec<_> = h
        .actions
        .iter()
        .filter_map(|&(t, a)| match a {
            Action::SendPong { conn: 1, seq, .. } => Some((t, seq)),
            _ => None,
        })
        .collect();
    assert_eq!(pongs.len(), 9);
    assert_eq!(pongs[0], (20_000, u64::MAX - 20));
}

#[test]
fn pong_with_wrong_seq_gives_no_rtt_but_is_a_sign_of_life() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.run_to(30_000);
    h.recv(31_000, p, Message::Pong(12345));
    assert!(h.rtts(1).is_empty());
    h.run_to(40_000);
    assert!(h.misses(1).is_empty());
    // The matching pong still gives its RTT, once.
    h.recv(41_000, p, Message::Pong(1));
    h.recv(41_001, p, Message::Pong(1));
    assert_eq!(
        h.rtts(1).len(),
        0,
        "ping 1's window was closed by the earlier frame"
    );
    let s = h.m.stats();
    assert_eq!((s.pongs_received, s.pongs_unmatched), (3, 3));
}

#[test]
fn unsolicited_pong_before_any_ping_is_harmless() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.recv(10_000, p, Message::Pong(0));
    h.recv(10_000, p, Message::Pong(1));
    assert!(h.rtts(1).is_empty());
    h.run_to(39_990);
    assert!(h.pings(1).is_empty());
    h.run_to(40_000);
    assert_eq!(h.pings(1).len(), 1);
}

#[test]
fn stale_peer_id_is_ignored_even_when_its_slot_is_reused() {
    let mut h = Harness::new(config());
    let old = h.add(0, 1);
    assert_eq!(h.m.remove(old), Some(1));
    assert_eq!(h.m.remove(old), None);
    let new = h.add(0, 2);
    assert_eq!(new.index(), old.index(), "slot reused");
    assert_ne!(new, old);
    h.recv(1_000, old, Message::Ping(5));
    h.recv(29_000, old, Message::Data(b"{}"));
    assert!(h.actions.is_empty(), "no pong for a stale id");
    assert_eq!(h.m.conn(old), None);
    assert_eq!(h.m.conn(new), Some(2));
    h.run_to(30_000);
    assert_eq!(
        h.pings(2),
        vec![(30_000, 1)],
        "the new peer was not touched by the stale frames"
    );
    assert_eq!(h.m.stats().stale_ignored, 2);
}

#[test]
fn removed_peer_gets_no_queued_ping() {
    let mut h = Harness::new(config());
    let p = h.add(0, 1);
    h.m.handle_timeout(h.at(30_000));
    assert_eq!(h.m.remove(p), Some(1));
    assert_eq!(h.m.poll_action(), None, "its queued ping is dropped");
}

#[test]
fn per_peer_overrides_apply_to_that_peer_only() {
    let mut h = Harness::new(config());
    h.add(0, 1);
    h.run_before(0);
    let fast = PeerConfig {
        interval: Some(Duration::from_secs(5)),
        timeout: Some(Duration::from_secs(1)),
        max_missed: Some(1),
        ..PeerConfig::default()
    };
    let now = h.at(0);
    h.m.add_with(now, 2, fast);
    h.run_to(6_000);
    assert_eq!(h.pings(2), vec![(5_000, 1)]);
    assert_eq!(h.dead(2).map(|d| d.0), Some(6_000));
    assert!(h.pings(1).is_empty());
    h.run_to(30_000);
    assert_eq!(h.pings(1), vec![(30_000, 1)]);
    assert_eq!(h.dead(1), None);
}

#[test]
fn interval_shorter_than_timeout_still_pings_on_time() {
    let mut h = Harness::new(Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        max_missed: 2,
        ..config()
    });
    let p = h.add(0, 1);
    h.run_to(1_000);
    assert_eq!(h.pings(1), vec![(1_000, 1)]);
    // Data at 1.5 s answers the ping; silence from then: next ping at 2.5 s, not at 6 s.
    h.recv(1_500, p, Message::Data(b"{}"));
    h.run_to(2_500);
    assert_eq!(h.pings(1), vec![(1_000, 1), (2_500, 2)]);
    // Unanswered: the window is the full 5 s timeout.
    h.run_to(7_490);
    assert!(h.misses(1).is_empty());
    h.run_to(7_500);
    assert_eq!(h.misses(1), vec![(7_500, 1)]);
    // Dead at 1.5 + 1 + 2 * 5 s.
    h.run_to(12_500);
    assert_eq!(h.dead(1).map(|d| d.0), Some(12_500));
}

#[test]
fn timeout_off_the_tick_grid_is_rounded_up_never_shortened() {
    let mut h = Harness::new(Config {
        timeout: Duration::from_millis(10_005),
        max_missed: 1,
        ..config()
    });
    h.add(0, 1);
    h.run_to(40_000);
    assert_eq!(
        h.dead(1),
        None,
        "the window is at least the configured timeout"
    );
    h.run_to(40_010);
    assert_eq!(h.dead(1).map(|d| d.0), Some(40_010));
}

#[test]
fn poll_timeout_is_none_without_peers_and_never_late() {
    let t0 = Instant::now();
    let mut m: Monitor = Monitor::new(config(), t0);
    assert_eq!(m.poll_timeout(), None);
    m.add(t0, ());
    let t = m.poll_timeout().unwrap();
    assert!(t <= t0 + Duration::from_secs(30));
    // Calling early is harmless.
    m.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(m.poll_action(), None);
}

/// Regression (found by `timeline_props`): with `interval < timeout`, a frame arriving after
/// the early re-check of an outstanding ping used to wait for the answer deadline before
/// starting its new cycle, stretching the bound by `timeout - interval`.
#[test]
fn frame_after_the_early_recheck_starts_the_next_cycle_on_time() {
    let mut h = Harness::new(Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        max_missed: 1,
        ..config()
    });
    let p = h.add(0, 1);
    h.run_to(2_000); // ping at 1 s, early re-check at 2 s
    h.recv(2_300, p, Message::Pong(1));
    h.run_to(3_300);
    assert_eq!(h.pings(1), vec![(1_000, 1), (3_300, 2)]);
    // Silent since 2.3 s: dead at 2.3 + 1 + 5 s.
    h.run_to(8_290);
    assert_eq!(h.dead(1), None);
    h.run_to(8_300);
    assert_eq!(h.dead(1).map(|d| d.0), Some(8_300));
}
