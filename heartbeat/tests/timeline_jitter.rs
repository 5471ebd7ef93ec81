//! Timeline tests of the jitter: first pings of peers that connected together spread over
//! `(0, interval × (1 + jitter)]`, later ones over interval ± jitter, instead of firing in
//! lockstep; every draw stays inside the bound, and the seed makes a run replayable.

use std::time::Duration;

use wheelbeat_heartbeat::monitor::{Action, Config, Event};
use wheelbeat_heartbeat::sim::Timeline;

fn config(jitter: f64, seed: u64) -> Config {
    Config {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        max_missed: 3,
        jitter,
        seed,
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

/// Times (ms) of the first ping of each of `n` peers added at the same instant.
fn first_pings(jitter: f64, seed: u64, n: u32) -> Vec<u64> {
    let mut h = Timeline::new(config(jitter, seed));
    for conn in 0..n {
        h.add(0, conn);
    }
    h.run_to(34_000);
    let mut first = vec![None; n as usize];
    for &(t, a) in &h.actions {
        if let Action::SendPing { conn, .. } = a {
            first[conn as usize].get_or_insert(t);
        }
    }
    first
        .into_iter()
        .map(|t| t.expect("every peer pinged"))
        .collect()
}

/// Regression guard for the 19,000-connection scale run (benches/scale/RESULTS.md): peers that
/// connect together must not all ping one interval later. Their FIRST windows are drawn over
/// the whole `(0, interval × (1 + jitter)]`, so a connect burst is spread, not replayed.
#[test]
fn ten_thousand_peers_added_together_ping_spread_over_the_first_window() {
    let times = first_pings(0.1, 7, 10_000);
    let (min, max) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    assert!(min > 0 && max <= 33_000, "inside (0, 33 s]: {min}..{max}");
    assert!(
        min <= 100 && max >= 32_900,
        "spread over the whole window: {min}..{max}"
    );
    // Roughly uniform: each tenth of the 33 s window holds about a tenth, none over 15%.
    let mut tenths = [0u32; 10];
    for &t in &times {
        tenths[(((t - 1) / 3_300) as usize).min(9)] += 1;
    }
    for b in tenths {
        assert!((800..=1_200).contains(&b), "tenths {tenths:?}");
    }
    // No storm: no single 10 ms tick carries more than 0.2% of the pings.
    let mut per_tick = std::collections::HashMap::new();
    for &t in &times {
        *per_tick.entry(t).or_insert(0u32) += 1;
    }
    assert!(per_tick.values().all(|&c| c <= 20), "lockstep ping storm");
    assert!(per_tick.len() >= 2_500, "{} distinct ticks", per_tick.len());
}

#[test]
fn after_the_first_sign_of_life_windows_are_interval_plus_minus_jitter() {
    // Peers heard once right after they were added: their next ping is due interval ± 10%
    // after that frame, whatever their (spread) first window was.
    let mut h = Timeline::new(config(0.1, 9));
    let ids: Vec<_> = (0..1_000u32).map(|conn| h.add(0, conn)).collect();
    for &id in &ids {
        h.recv(5, id, wheelbeat_heartbeat::Message::Ping(1));
    }
    h.run_to(34_000);
    for conn in 0..1_000u32 {
        let first = h.pings(conn).first().expect("pinged").0;
        assert!((27_005..=33_010).contains(&first), "peer {conn}: {first}");
    }
}

#[test]
fn without_jitter_peers_added_together_ping_in_lockstep() {
    let times = first_pings(0.0, 7, 1_000);
    assert!(times.iter().all(|&t| t == 30_000));
}

#[test]
fn same_seed_replays_the_same_schedule_and_another_seed_does_not() {
    assert_eq!(first_pings(0.1, 42, 500), first_pings(0.1, 42, 500));
    assert_ne!(first_pings(0.1, 42, 500), first_pings(0.1, 43, 500));
}

#[test]
fn jitter_is_drawn_again_each_cycle() {
    // One peer answering every ping at once: its silence windows differ cycle to cycle.
    let mut h = Timeline::new(config(0.1, 3));
    let p = h.add(0, 0u32);
    let mut windows = Vec::new();
    let mut last = 0;
    for _ in 0..50 {
        let before = h.pings(0).len();
        while h.pings(0).len() == before {
            let next = h.now + Duration::from_millis(10);
            h.run(next);
        }
        let (t, seq) = *h.pings(0).last().unwrap();
        windows.push(t - last);
        h.recv(t, p, wheelbeat_heartbeat::Message::Pong(seq));
        last = t;
    }
    // The first window is spread over (0, 33 s]; the later ones are interval ± 10%.
    assert!((1..=33_000).contains(&windows[0]), "{windows:?}");
    assert!(
        windows[1..].iter().all(|w| (27_000..=33_010).contains(w)),
        "{windows:?}"
    );
    let distinct: std::collections::HashSet<_> = windows.iter().collect();
    assert!(distinct.len() >= 40, "{windows:?}");
}

/// The bound for every draw: 1,000 silent peers added at scattered times are each declared
/// dead no later than t + interval × 1.1 + 3 × timeout + one tick, and (never heard from, so
/// their first window may be short) no earlier than t + 3 × timeout.
#[test]
fn every_jittered_verdict_is_inside_the_bound() {
    let mut h = Timeline::new(config(0.1, 11));
    let mut rng = fastrand::Rng::with_seed(5);
    let mut added = Vec::new();
    let mut t = 0;
    for conn in 0..1_000u32 {
        t += rng.u64(0..50);
        h.add(t, conn);
        added.push(t);
    }
    h.run_to(t + 70_000);
    for (conn, &t) in added.iter().enumerate() {
        let (dead, silent_for) = h.dead(conn as u32).expect("every silent peer is caught");
        assert!(
            dead <= t + 33_000 + 30_000 + 10,
            "peer {conn}: {dead} vs bound"
        );
        assert!(dead > t + 30_000, "peer {conn}: too early {dead}");
        assert_eq!(silent_for, Duration::from_millis(dead - t));
    }
    assert_eq!(
        h.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::LocalPause { .. }))
            .count(),
        0
    );
}
