//! A simulated pair: two monitors watching each other over a link with latency and loss, both
//! sides pinging, in virtual time. No false positive while the link loses less than
//! `max_missed` tolerates; a frozen side is detected within the bound.

use std::time::Duration;

use wheelbeat_heartbeat::monitor::{Config, Event};
use wheelbeat_heartbeat::sim::{Link, Pair};

fn config(max_missed: u32) -> Config {
    Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        max_missed,
        jitter: 0.1,
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

fn count(pair: &Pair, f: impl Fn(&Event<()>) -> bool) -> usize {
    pair.events().iter().filter(|(_, _, e)| f(e)).count()
}

#[test]
fn lossy_link_below_tolerance_gives_no_false_positive() {
    let link = Link {
        latency: Duration::from_millis(20),
        spread: Duration::from_millis(30),
        loss: 0.05,
    };
    let mut pair = Pair::new(config(5), link, 99);
    pair.run_for(Duration::from_secs(1_800));
    assert_eq!(count(&pair, |e| matches!(e, Event::Dead { .. })), 0);
    let (sent, lost) = pair.frames();
    assert!(
        lost > sent / 40,
        "the link really lost frames: {lost}/{sent}"
    );
    // The loss was felt: some pings went unanswered, and were retried successfully.
    let missed = count(&pair, |e| matches!(e, Event::Missed { .. }));
    assert!(missed > 10, "{missed} misses");
    assert!(count(&pair, |e| matches!(e, Event::Rtt { .. })) > 1_000);
}

#[test]
fn blackout_shorter_than_the_retries_kills_nobody() {
    // Retries go out exactly `timeout` apart, so a blackout (both ways) shorter than
    // (max_missed - 1) × timeout = 1 s can swallow at most max_missed - 1 of a peer's
    // consecutive pings (or their pongs): the next one gets through.
    let mut pair = Pair::new(config(3), Link::default(), 1);
    for k in 0..40u64 {
        let from = pair.start() + Duration::from_millis(10_000 + 15_037 * k);
        pair.blackout(from, from + Duration::from_millis(900));
    }
    pair.run_for(Duration::from_secs(620));
    assert_eq!(count(&pair, |e| matches!(e, Event::Dead { .. })), 0);
    assert!(count(&pair, |e| matches!(e, Event::Missed { .. })) > 0);
}

#[test]
fn blackout_longer_than_the_bound_is_detected_by_both_sides() {
    let mut pair = Pair::new(config(3), Link::default(), 1);
    let from = pair.start() + Duration::from_secs(10);
    pair.blackout(from, from + Duration::from_secs(4));
    pair.run_for(Duration::from_secs(20));
    assert!(pair.side(0).declared_dead_at.is_some());
    assert!(pair.side(1).declared_dead_at.is_some());
}

#[test]
fn rtt_just_under_timeout_never_convicts() {
    let link = Link {
        latency: Duration::from_millis(240),
        spread: Duration::from_millis(9),
        loss: 0.0,
    };
    let mut pair = Pair::new(config(1), link, 3);
    pair.run_for(Duration::from_secs(600));
    assert_eq!(count(&pair, |e| matches!(e, Event::Dead { .. })), 0);
    assert_eq!(count(&pair, |e| matches!(e, Event::Missed { .. })), 0);
    for (_, _, e) in pair.events() {
        if let Event::Rtt { rtt, .. } = e {
            assert!(*rtt >= Duration::from_millis(480) && *rtt < Duration::from_millis(500));
        }
    }
}

#[test]
fn frozen_side_is_detected_within_the_bound_and_the_live_side_is_not() {
    for seed in 0..20 {
        let link = Link {
            latency: Duration::from_millis(5),
            spread: Duration::from_millis(10),
            loss: 0.01,
        };
        let mut pair = Pair::new(Config { seed, ..config(3) }, link, seed);
        let freeze_at = pair.start() + Duration::from_secs(30) + Duration::from_millis(seed * 37);
        pair.freeze(1, freeze_at);
        pair.run_for(Duration::from_secs(60));
        let dead_at = pair
            .side(0)
            .declared_dead_at
            .expect("the hung side is detected");
        // Silent since its last frame arrived: sent at last_sent(1), at most 15 ms in flight.
        let last_heard = pair.last_sent(1).unwrap() + Duration::from_millis(15);
        let bound = last_heard + Duration::from_millis(1_100 + 3 * 500 + 10);
        assert!(dead_at <= bound, "seed {seed}: detected late");
        assert!(dead_at >= pair.last_sent(1).unwrap() + Duration::from_millis(900 + 3 * 500));
        assert!(dead_at >= freeze_at);
        // The frozen side never ran its timers, so it convicted nobody.
        assert_eq!(pair.side(1).declared_dead_at, None);
    }
}

#[test]
fn busy_pair_exchanging_data_never_pings() {
    let mut pair = Pair::new(config(3), Link::default(), 5);
    pair.side_mut(0).data_every = Some(Duration::from_millis(200));
    pair.side_mut(1).data_every = Some(Duration::from_millis(300));
    pair.run_for(Duration::from_secs(300));
    assert_eq!(pair.side(0).monitor.stats().pings_sent, 0);
    assert_eq!(pair.side(1).monitor.stats().pings_sent, 0);
    assert_eq!(count(&pair, |e| matches!(e, Event::Dead { .. })), 0);
}
