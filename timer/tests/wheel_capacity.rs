//! Capacity and memory: the wheel holds millions of timers at a documented cost per timer,
//! and big jumps in time cost nothing for the empty ticks they skip.
//!
//! Run with `cargo test -p wheelbeat-timer --test wheel_capacity`; the 10 million timer test
//! is ignored by default (it allocates ~300 MB and takes a few seconds in debug builds):
//! `cargo test -p wheelbeat-timer --release --test wheel_capacity -- --ignored`.

use wheelbeat_timer::Wheel;

/// The documented budget: at most 32 bytes per pending timer, value of `()` included, once the
/// fixed list table (22 KiB) is amortised over many timers.
const BUDGET_PER_TIMER: usize = 32;

/// Fills a wheel with `n` `()` timers spread over a minute of 1 ms ticks, checks the memory
/// per timer, then drains it in 1 ms steps at first and then in one big jump.
fn fill_measure_drain(n: usize) {
    let mut wheel = Wheel::with_capacity(n);
    let mut rng = fastrand_like(0x5eed);
    for _ in 0..n {
        wheel.insert(1 + rng() % 60_000, ());
    }
    assert_eq!(wheel.len(), n);
    let per_timer = wheel.memory_bytes() / n;
    eprintln!(
        "{n} timers: {} bytes, {per_timer} bytes per timer",
        wheel.memory_bytes()
    );
    assert!(
        per_timer <= BUDGET_PER_TIMER,
        "{per_timer} bytes per timer > {BUDGET_PER_TIMER} ({} bytes for {n} timers)",
        wheel.memory_bytes()
    );
    let mut fired = 0;
    for now in 1..=1_000 {
        fired += wheel.advance(now).count();
    }
    fired += wheel.advance(u64::MAX).count();
    assert_eq!(fired, n);
    assert!(wheel.is_empty());
}

/// A tiny xorshift so the test needs no extra dependency and is reproducible.
fn fastrand_like(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn one_million_timers_fit_in_32_bytes_each() {
    fill_measure_drain(1_000_000);
}

#[test]
#[ignore = "allocates ~300 MB; run in release with --ignored"]
fn ten_million_timers_fit_in_32_bytes_each() {
    fill_measure_drain(10_000_000);
}

#[test]
fn advance_over_a_huge_empty_range_visits_only_occupied_slots() {
    // If advancing walked tick by tick this would never finish.
    let mut wheel = Wheel::new();
    let deadlines = [1u64 << 20, 1 << 40, (1 << 40) + 1, u64::MAX / 2, u64::MAX];
    for d in deadlines {
        wheel.insert(d, d);
    }
    let fired: Vec<u64> = wheel.advance(u64::MAX).map(|e| e.value).collect();
    assert_eq!(fired, deadlines);
    assert_eq!(wheel.now(), u64::MAX);
}

#[test]
fn deadline_just_across_a_block_boundary_fires_on_time() {
    // 2^40 - 1 -> 2^40 differs in bit 40, so the timer one tick away sits on level 6; its
    // slot starts exactly at its deadline, so it is neither early nor late.
    let mut wheel = Wheel::new();
    wheel.advance((1 << 40) - 1).for_each(drop);
    wheel.insert(1 << 40, ());
    assert_eq!(wheel.next_deadline(), Some(1 << 40));
    assert!(wheel.poll((1 << 40) - 1).is_none());
    assert_eq!(wheel.poll(1 << 40).map(|e| e.deadline), Some(1 << 40));
}

#[test]
fn heartbeat_resets_later_never_fire_a_live_peer() {
    // The heartbeat hot path: 2k connections, each pushing its deadline 30 s (30,000 ticks)
    // ahead on every packet, one packet per connection every 100 ticks. None may fire.
    let mut wheel = Wheel::new();
    let keys: Vec<_> = (0..2_000u64).map(|c| wheel.insert(30_000, c)).collect();
    for now in (100..=120_000u64).step_by(100) {
        for &key in &keys {
            assert!(wheel.reset(key, now + 30_000));
        }
        assert_eq!(
            wheel.advance(now).count(),
            0,
            "a live peer expired at {now}"
        );
    }
    // Silence: every timer fires exactly 30,000 ticks after the last packet.
    let fired: Vec<_> = wheel.advance(150_000).map(|e| e.deadline).collect();
    assert_eq!(fired.len(), 2_000);
    assert!(fired.iter().all(|&d| d == 150_000));
}

#[test]
fn bounded_advance_spreads_a_burst_over_calls() {
    let mut wheel = Wheel::new();
    for _ in 0..1_000 {
        wheel.insert(10, ());
    }
    let mut calls = 0;
    let mut fired = 0;
    loop {
        let n = wheel.advance_bounded(10, 64).count();
        if n == 0 {
            break;
        }
        assert!(n <= 64);
        fired += n;
        calls += 1;
    }
    assert_eq!((fired, calls), (1_000, 16));
}
