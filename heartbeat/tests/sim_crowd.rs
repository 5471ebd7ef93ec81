//! A crowd of simulated peers around one monitor, in virtual time: every silent peer is caught
//! inside the bound and no live one is convicted, for several settings. (The million-connection
//! version is `examples/simulate.rs`.)

use std::time::Duration;

use wheelbeat_heartbeat::monitor::Config;
use wheelbeat_heartbeat::sim::{Crowd, CrowdSettings};

fn run(config: Config, conns: u32, duration: Duration, rtt: Duration) {
    run_late(config, conns, duration, rtt, Duration::ZERO);
}

fn run_late(config: Config, conns: u32, duration: Duration, rtt: Duration, late: Duration) {
    let mut crowd = Crowd::new(CrowdSettings {
        conns,
        duration,
        rtt,
        silent: 0.05,
        seed: config.seed ^ 77,
        late,
    });
    crowd.populate(config.clone());
    let r = crowd.run();
    assert!(r.ok(), "{config:?}: {r:?}");
    assert!(
        r.silent > conns as u64 / 40,
        "silent peers exercised: {r:?}"
    );
    assert_eq!(r.caught, r.silent, "every silent peer caught: {r:?}");
    assert!(r.pongs > conns as u64, "live peers exercised: {r:?}");
}

#[test]
fn default_settings_with_5000_peers() {
    run(
        Config::default(),
        5_000,
        Duration::from_secs(300),
        Duration::from_millis(20),
    );
}

#[test]
fn demo_settings_with_rtt_close_to_timeout() {
    let config = Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        seed: 3,
        ..Config::default()
    };
    // RTTs up to 1.5 × 320 ms = 480 ms, just under the 500 ms timeout.
    run(
        config,
        2_000,
        Duration::from_secs(30),
        Duration::from_millis(320),
    );
}

#[test]
fn coarse_tick_and_no_jitter() {
    let config = Config {
        interval: Duration::from_secs(10),
        timeout: Duration::from_millis(2_550),
        max_missed: 1,
        jitter: 0.0,
        tick: Duration::from_millis(100),
        seed: 9,
        ..Config::default()
    };
    run(
        config,
        2_000,
        Duration::from_secs(120),
        Duration::from_millis(50),
    );
}

#[test]
fn demo_settings_with_a_loop_late_by_up_to_4ms_overshoot_once() {
    // The `demo` example's settings and a loop waking up to 4 ms late: with 3 pings per
    // verdict, a per-ping overshoot would reach 3 × (4 ms + one tick); the allowed overshoot
    // is 4 ms + one tick, once.
    let config = Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        seed: 5,
        ..Config::default()
    };
    run_late(
        config,
        2_000,
        Duration::from_secs(30),
        Duration::from_millis(20),
        Duration::from_millis(4),
    );
}

#[test]
fn a_loop_late_by_nearly_a_timeout_still_convicts_no_live_peer() {
    let config = Config {
        interval: Duration::from_secs(2),
        timeout: Duration::from_millis(300),
        max_missed: 4,
        seed: 6,
        ..Config::default()
    };
    run_late(
        config,
        2_000,
        Duration::from_secs(60),
        Duration::from_millis(20),
        Duration::from_millis(250),
    );
}
