//! Timeline tests of a loop that wakes up a little late, as a real epoll loop does: its
//! lateness must reach the verdict once, not once per ping, and must never shorten the answer
//! window a ping gets from its real send time.
//!
//! The settings are the `demo` example's: interval 1 s, timeout 500 ms, max-missed 3, tick
//! 10 ms, no jitter. The on-time verdict of a peer silent since 0 is at 2.5 s.

use std::time::{Duration, Instant};

use wheelbeat_heartbeat::monitor::{Action, Config, Event, Monitor};
use wheelbeat_heartbeat::protocol::Message;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        max_missed: 3,
        jitter: 0.0,
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

/// What one driven peer went through, in ms since its creation (fractions kept as µs).
#[derive(Debug, Default)]
struct Log {
    pings: Vec<u64>,
    misses: Vec<u64>,
    dead: Option<u64>,
}

/// Drives one peer added at 0: the loop wakes `late(t)` µs after a timer due at `t` µs (and on
/// time for an arrival), reads what arrived, then runs the timers, as the shell does.
/// `answer(k, sent_us)` says when (µs) the peer answers its k-th ping, if ever.
fn drive(
    mut late: impl FnMut(u64) -> u64,
    mut answer: impl FnMut(usize, u64) -> Option<u64>,
) -> Log {
    let t0 = Instant::now();
    let us = |t: Instant| t.duration_since(t0).as_micros() as u64;
    let mut m: Monitor<()> = Monitor::new(config(), t0);
    let peer = m.add(t0, ());
    let mut log = Log::default();
    let mut pending: Option<(u64, u64)> = None;
    while us(m.poll_timeout().unwrap()) < 10_000_000 {
        let timer = us(m.poll_timeout().unwrap());
        let now_us = match pending {
            Some((at, _)) if at <= timer => at,
            _ => timer + late(timer),
        };
        let now = t0 + Duration::from_micros(now_us);
        if let Some((at, seq)) = pending
            && at <= now_us
        {
            m.handle_message(peer, now, &Message::Pong(seq));
            pending = None;
        }
        if m.poll_timeout().is_some_and(|t| t <= now) {
            m.handle_timeout(now);
        }
        while let Some(a) = m.poll_action() {
            if let Action::SendPing { seq, .. } = a {
                if let Some(at) = answer(log.pings.len(), now_us) {
                    pending = Some((at, seq));
                }
                log.pings.push(now_us);
            }
        }
        while let Some(e) = m.poll_event() {
            match e {
                Event::Missed { .. } => log.misses.push(now_us),
                Event::Dead { .. } => {
                    log.dead = Some(now_us);
                    return log;
                }
                _ => {}
            }
        }
    }
    log
}

#[test]
fn on_time_loop_convicts_exactly_at_the_bound() {
    let log = drive(|_| 0, |_, _| None);
    assert_eq!(log.pings, [1_000_000, 1_500_000, 2_000_000]);
    assert_eq!(log.misses, [1_500_000, 2_000_000, 2_500_000]);
    assert_eq!(log.dead, Some(2_500_000));
}

#[test]
fn loop_late_by_3ms_at_every_wake_overshoots_once_not_per_ping() {
    let log = drive(|_| 3_000, |_, _| None);
    // Each step stays on the grid (1.5 s, 2 s), 3 ms late; it is not chained from the late
    // ping (which would give 1.513 s, 2.023 s, ...).
    assert_eq!(log.pings, [1_003_000, 1_503_000, 2_003_000]);
    assert_eq!(log.misses, [1_503_000, 2_003_000, 2_513_000]);
    // The last ping left at 2.003 s and gets its full 500 ms: the verdict is due at the next
    // tick after 2.503 s (2.51 s) and runs 3 ms late. Bound 2.51 s + 3 ms lateness + one tick
    // at most; the old per-ping chain reached 2.533 s (three roundings, three latenesses).
    assert_eq!(log.dead, Some(2_513_000));
}

#[test]
fn answer_exactly_timeout_after_a_late_last_ping_keeps_the_peer_alive() {
    // The last ping is sent 7 ms late (at 2.007 s); the verdict's wake-up is on time. Its
    // answer comes exactly 500 ms after its real send, after the 2.5 s grid slot: the verdict
    // waits for it.
    let log = drive(
        |t| if t == 2_000_000 { 7_000 } else { 0 },
        |k, sent| (k == 2).then_some(sent + 500_000),
    );
    assert_eq!(log.pings[..3], [1_000_000, 1_500_000, 2_007_000]);
    assert_eq!(log.misses[..2], [1_500_000, 2_007_000]);
    assert!(
        log.misses.iter().all(|&t| t != 2_500_000),
        "no verdict at the grid slot"
    );
    // It answered at 2.507 s, so a new cycle starts from there: next ping at the first tick
    // at least 1 s later.
    assert_eq!(log.pings[3], 3_510_000);
}

#[test]
fn answer_just_after_the_rounded_window_of_a_late_last_ping_is_too_late() {
    let log = drive(
        |t| if t == 2_000_000 { 7_000 } else { 0 },
        |k, sent| (k == 2).then_some(sent + 503_001),
    );
    // Due at the first tick after 2.507 s, 2.51 s; the answer at 2.510001 s comes after it.
    assert_eq!(log.dead, Some(2_510_000));
}
