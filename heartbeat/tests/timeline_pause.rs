//! Timeline tests of the local-pause guard: a loop that did not run for longer than `timeout`
//! convicts nobody for the gap, a shorter hiccup changes nothing, and a prompt loop never trips
//! the guard.

use std::time::Duration;

use wheelbeat_heartbeat::monitor::{Config, Event};
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_heartbeat::sim::Timeline;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        max_missed: 3,
        jitter: 0.0,
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

fn pauses(h: &Timeline<u32>) -> Vec<(u64, Duration)> {
    h.events
        .iter()
        .filter_map(|&(t, e)| match e {
            Event::LocalPause { stalled_for } => Some((t, stalled_for)),
            _ => None,
        })
        .collect()
}

#[test]
fn stall_longer_than_timeout_forgives_the_verdicts_in_the_gap() {
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    h.run_to(30_000);
    assert_eq!(h.pings(1), vec![(30_000, 1)]);
    // The loop stalls from 30 s to 55 s; ping 1's answer deadline (40 s) falls in the gap.
    h.stall_until(55_000);
    assert!(h.misses(1).is_empty(), "no miss for our own stall");
    assert_eq!(pauses(&h), vec![(55_000, Duration::from_secs(15))]);
    assert_eq!(h.pings(1), vec![(30_000, 1), (55_000, 2)], "a fresh ping");
    assert_eq!(h.m.stats().forgiven, 1);
    // ... and a fresh full window: an answer at 64.99 s keeps it alive.
    h.recv(64_990, p, Message::Pong(2));
    h.run_to(65_000);
    assert!(h.misses(1).is_empty());
    assert_eq!(h.dead(1), None);
}

#[test]
fn after_a_stall_a_really_dead_peer_is_convicted_two_timeouts_later() {
    let mut h = Timeline::new(config());
    h.add(0, 1);
    h.run_to(40_000);
    assert_eq!(h.misses(1), vec![(40_000, 1)]);
    h.stall_until(100_000);
    assert_eq!(h.misses(1).len(), 1, "the verdict in the gap was forgiven");
    // Fresh ping at 100 s; then misses resume: 2 at 110 s, 3 = dead at 120 s.
    h.run_to(119_990);
    assert_eq!(h.dead(1), None);
    h.run_to(120_000);
    assert_eq!(h.dead(1).map(|d| d.0), Some(120_000));
}

#[test]
fn pong_waiting_in_the_socket_during_a_stall_is_counted_before_the_verdict() {
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    h.run_to(30_000);
    // The pong reached the socket at 30.05 s but the loop only wakes at 45 s: it reads the
    // socket first (recv), then runs the timers.
    h.deliver(45_000, p, Message::Pong(1));
    h.stall_until(45_000);
    assert!(h.misses(1).is_empty());
    assert_eq!(h.rtts(1), vec![(45_000, Duration::from_secs(15))]);
    assert_eq!(h.m.stats().forgiven, 0, "nothing to forgive: it answered");
}

#[test]
fn hiccup_shorter_than_timeout_does_not_push_later_steps_back() {
    let mut h = Timeline::new(config());
    h.add(0, 1);
    h.run_to(30_000);
    // Late by 8 s for the 40 s step: not a pause; the peer had 18 s and was silent.
    h.stall_until(48_000);
    assert_eq!(h.misses(1), vec![(48_000, 1)]);
    assert!(pauses(&h).is_empty());
    // The next step stays on the grid (50 s), not a full timeout after the late ping (58 s):
    // the hiccup is not carried into the verdict.
    h.run_to(49_990);
    assert_eq!(h.misses(1).len(), 1);
    h.run_to(50_000);
    assert_eq!(h.misses(1), vec![(48_000, 1), (50_000, 2)]);
    h.run_to(59_990);
    assert_eq!(h.dead(1), None);
    h.run_to(60_000);
    assert_eq!(h.dead(1).map(|d| d.0), Some(60_000), "the on-time verdict");
}

#[test]
fn stall_of_exactly_timeout_is_not_a_pause() {
    let mut h = Timeline::new(config());
    h.add(0, 1);
    h.run_to(30_000);
    h.stall_until(50_000);
    assert_eq!(h.misses(1), vec![(50_000, 1)]);
    assert!(pauses(&h).is_empty());
}

#[test]
fn thousand_pinged_peers_survive_a_long_stall_and_answering_ones_stay_alive() {
    let mut h = Timeline::new(config());
    let peers: Vec<_> = (0..1_000u32).map(|c| h.add(u64::from(c), c)).collect();
    h.run_to(31_000);
    assert_eq!(h.actions.len(), 1_000, "all pinged");
    // A 60 s stall while every answer deadline passes.
    h.stall_until(91_000);
    assert!(
        h.events
            .iter()
            .all(|(_, e)| !matches!(e, Event::Missed { .. } | Event::Dead { .. }))
    );
    assert_eq!(pauses(&h).len(), 1);
    assert_eq!(h.m.stats().forgiven, 1_000);
    // Even peers answer their fresh ping; odd ones stay silent.
    for (c, &p) in peers.iter().enumerate() {
        if c % 2 == 0 {
            let seq = h.pings(c as u32).last().unwrap().1;
            h.recv(91_100, p, Message::Pong(seq));
        }
    }
    // (Answering peers fall silent again after 91.1 s; look before that could convict them.)
    h.run_to(140_000);
    for c in 0..1_000u32 {
        let dead = h.dead(c);
        if c % 2 == 0 {
            assert!(dead.is_none(), "answering peer {c} convicted");
        } else {
            // Fresh ping at 91 s, then three full windows: dead at 121 s.
            assert_eq!(dead.map(|d| d.0), Some(121_000), "silent peer {c}");
        }
    }
}

#[test]
fn prompt_loop_never_trips_the_guard() {
    // Many peers with scattered deadlines, run promptly for ten simulated minutes; the wheel's
    // poll_timeout may be earlier than any deadline, which must not read as lateness.
    let mut h = Timeline::new(Config {
        jitter: 0.1,
        ..config()
    });
    for c in 0..2_000u32 {
        h.add(u64::from(c) * 7, c);
    }
    h.run_to(600_000);
    assert!(pauses(&h).is_empty());
    assert_eq!(h.m.stats().forgiven, 0);
}

#[test]
fn loop_waking_only_at_exact_deadlines_never_trips_the_guard() {
    // A loop that skips the early wake-ups and calls handle_timeout only when a verdict is
    // really due: pings at 30 s, verdicts at 40, 50, 60 s.
    let mut h = Timeline::new(config());
    h.add(0, 1);
    for ms in [30_000, 40_000, 50_000, 60_000] {
        h.stall_until(ms);
    }
    assert!(pauses(&h).is_empty());
    assert_eq!(h.dead(1).map(|d| d.0), Some(60_000));
}

#[test]
fn bounded_calls_work_off_a_stall_backlog_with_the_same_forgiveness() {
    let mut h = Timeline::new(config());
    for c in 0..1_000u32 {
        h.add(0, c);
    }
    h.run_to(30_000);
    // A 30 s stall, then the backlog of 1,000 overdue verdicts worked off 100 at a time.
    let now = h.at(70_000);
    let mut calls = 0;
    while !h.m.handle_timeout_bounded(now, 100) {
        calls += 1;
        assert!(h.m.poll_timeout().is_some_and(|t| t <= now));
    }
    // 100 units of timer work per call: the 1,000 expiries, plus the wheel moving each timer
    // down from the level it was filed on (at most two moves each at these distances).
    assert!((10..=30).contains(&calls), "{calls} calls");
    assert_eq!(
        h.m.stats().forgiven,
        1_000,
        "every verdict in the gap forgiven"
    );
    assert_eq!(h.m.stats().missed, 0);
    assert!(h.m.poll_timeout().is_some_and(|t| t > now));
}

/// Guards issue 8: the loop's own busy turns were taken for a pause of the process and every
/// verdict was forgiven for as long as peers kept the loop busy. Once the driver reports how
/// long it really was not running, a busy (late) loop convicts on its grid.
#[test]
fn a_busy_loop_is_not_a_pause_once_the_driver_reports_real_stalls() {
    let mut h = Timeline::new(config());
    h.add(0, 1);
    h.run_to(30_000);
    // The loop computed from 30 s to 55 s without stopping: it reports no stall.
    h.m.report_stall(Duration::ZERO);
    h.stall_until(55_000);
    assert!(pauses(&h).is_empty(), "busy is not paused");
    assert_eq!(h.m.stats().forgiven, 0);
    assert_eq!(
        h.misses(1).len(),
        1,
        "the answer deadline at 40 s is a miss, judged late"
    );
}

#[test]
fn a_reported_stall_still_forgives_the_verdicts_it_covers() {
    let mut h = Timeline::new(config());
    h.add(0, 1);
    h.run_to(30_000);
    // Stopped (SIGSTOP) from 30 s to 55 s: the driver saw 25 s without running.
    h.m.report_stall(Duration::from_secs(25));
    h.stall_until(55_000);
    assert_eq!(pauses(&h), vec![(55_000, Duration::from_secs(15))]);
    assert!(h.misses(1).is_empty());
    // The evidence is used up by that call: a later busy delay is not forgiven.
    h.run_to(65_000);
    h.m.report_stall(Duration::ZERO);
    h.stall_until(90_000);
    assert_eq!(h.m.stats().forgiven, 1);
    assert!(!h.misses(1).is_empty());
}
