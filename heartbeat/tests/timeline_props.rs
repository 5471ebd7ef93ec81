//! The two halves of the bound as properties over random settings, in virtual time:
//!
//! - a peer that answers every ping within `timeout` of its real send is never declared dead,
//!   even by a loop that wakes up late (by less than `timeout`) at random;
//! - a peer silent since `t` is declared dead in
//!   `[t + interval × (1 − jitter) + max_missed × timeout, t + interval × (1 + jitter) +
//!   max_missed × timeout + one tick]` (the floor is only `t + max_missed × timeout` for a
//!   peer never heard from: its first window is spread over `(0, interval × (1 + jitter)]`)
//!   by a prompt loop (`timeout` rounded up to whole ticks as
//!   documented), and by a loop that wakes up to `L` late no later than that bound
//!   `+ L + ceil_tick(L)`: the lateness of the verdict's wake-up plus that of the last ping's
//!   send (which the last ping's full answer window must wait for), once each, not once per
//!   ping.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use wheelbeat_heartbeat::monitor::{Action, Config, Event, Monitor};
use wheelbeat_heartbeat::protocol::Message;

#[derive(Debug, Clone)]
struct Settings {
    interval_ms: u64,
    timeout_ms: u64,
    max_missed: u32,
    jitter: f64,
    tick_ms: u64,
    seed: u64,
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        50..20_000u64,
        1..8_000u64,
        1..5u32,
        0.0..0.5f64,
        prop::sample::select(vec![1u64, 3, 10, 25]),
        any::<u64>(),
    )
        .prop_map(
            |(interval_ms, timeout_ms, max_missed, jitter, tick_ms, seed)| Settings {
                interval_ms,
                timeout_ms,
                max_missed,
                jitter,
                tick_ms,
                seed,
            },
        )
}

fn config(s: &Settings) -> Config {
    Config {
        interval: Duration::from_millis(s.interval_ms),
        timeout: Duration::from_millis(s.timeout_ms),
        max_missed: s.max_missed,
        jitter: s.jitter,
        tick: Duration::from_millis(s.tick_ms),
        seed: s.seed,
        ..Config::default()
    }
}

/// Drives one peer through a loop that wakes `lateness()` after each timer or arrival and then
/// works in the shell's order (read every frame that arrived by then, then the timers). The
/// peer answers each ping `delay()` after the ping left (or never, once `silent_from` has
/// passed). Stops at the first death or at `until`. Returns (death time, last time heard,
/// whether the peer was ever heard from).
fn drive(
    s: &Settings,
    until: Duration,
    silent_from: Option<Duration>,
    mut delay: impl FnMut() -> Duration,
    mut lateness: impl FnMut() -> Duration,
) -> (Option<Instant>, Instant, bool) {
    let t0 = Instant::now();
    let mut m: Monitor<()> = Monitor::new(config(s), t0);
    let peer = m.add(t0, ());
    let mut last_heard = t0;
    let mut answer: Option<(Instant, u64)> = None;
    let end = t0 + until;
    let mut now = t0;
    loop {
        let timer = m.poll_timeout().expect("the peer is monitored");
        let wake = answer.map_or(timer, |(at, _)| at.min(timer));
        if wake > end {
            return (None, last_heard, last_heard > t0);
        }
        now = now.max(wake + lateness());
        if let Some((at, seq)) = answer
            && at <= now
        {
            m.handle_message(peer, now, &Message::Pong(seq));
            last_heard = now;
            answer = None;
        }
        if m.poll_timeout().is_some_and(|t| t <= now) {
            m.handle_timeout(now);
        }
        while let Some(a) = m.poll_action() {
            if let Action::SendPing { seq, .. } = a {
                let silent = silent_from.is_some_and(|f| now >= t0 + f);
                if !silent {
                    answer = Some((now + delay(), seq));
                }
            }
        }
        while let Some(e) = m.poll_event() {
            if let Event::Dead { .. } = e {
                return (Some(now), last_heard, last_heard > t0);
            }
        }
    }
}

/// The earliest verdict after the last sign of life: `interval × (1 − jitter) + window`, or
/// only `window` for a peer never heard from, whose first silence window is drawn over
/// `(0, interval × (1 + jitter)]` (with jitter, so that connect bursts do not ping in step).
fn floor(interval: u64, jitter: u64, window: u64, heard: bool) -> u64 {
    if heard || jitter == 0 {
        interval - jitter + window
    } else {
        window
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn answering_within_timeout_is_never_convicted(
        s in settings(),
        seed in any::<u64>(),
        late_permille in 0..1_000u64,
    ) {
        let rng = std::cell::RefCell::new(fastrand::Rng::with_seed(seed));
        let timeout_ns = s.timeout_ms * 1_000_000;
        let max_late = (timeout_ns - 1) * late_permille / 1_000;
        // Answers anywhere in [0, timeout] after the ping left, both ends included, to a loop
        // that wakes up to `max_late` late, below `timeout` (the pause guard's threshold).
        let (dead, ..) = drive(
            &s,
            Duration::from_millis(s.interval_ms * 40),
            None,
            || {
                let mut rng = rng.borrow_mut();
                match rng.u8(0..4) {
                    0 => Duration::ZERO,
                    1 => Duration::from_nanos(timeout_ns),
                    _ => Duration::from_nanos(rng.u64(0..=timeout_ns)),
                }
            },
            || Duration::from_nanos(rng.borrow_mut().u64(0..=max_late)),
        );
        prop_assert_eq!(dead, None);
    }

    #[test]
    fn late_loop_overshoots_the_bound_by_its_lateness_once_not_per_ping(
        s in settings(),
        silent_after_cycles in 0..5u64,
        rtt_ms in 0..50u64,
        seed in any::<u64>(),
        late_permille in 0..1_000u64,
        small in any::<bool>(),
    ) {
        let rng = std::cell::RefCell::new(fastrand::Rng::with_seed(seed));
        let tick = s.tick_ms * 1_000_000;
        let timeout_ns = s.timeout_ms * 1_000_000;
        // Half the cases wake up less than a tick late (a real epoll loop), the others up to
        // just under `timeout` late (an overloaded loop, still below the pause guard).
        let max_late = if small {
            (tick - 1) * late_permille / 1_000
        } else {
            (timeout_ns - 1) * late_permille / 1_000
        };
        let rtt = Duration::from_millis(rtt_ms.min(s.timeout_ms / 2));
        let silent_from = Duration::from_millis(s.interval_ms * silent_after_cycles);
        let horizon = Duration::from_millis(
            s.interval_ms * (silent_after_cycles + 3)
                + s.timeout_ms * u64::from(s.max_missed + 3),
        );
        let (dead, last_heard, heard) = drive(
            &s,
            horizon,
            Some(silent_from),
            || rtt,
            || Duration::from_nanos(rng.borrow_mut().u64(0..=max_late)),
        );
        let dead = dead.expect("a silent peer is convicted");
        let timeout_rounded = timeout_ns.div_ceil(tick) * tick;
        let interval = s.interval_ms * 1_000_000;
        let jitter = (interval as f64 * s.jitter) as u64;
        let window = u64::from(s.max_missed) * timeout_rounded;
        let bound = interval + jitter + window + tick;
        let allowed = bound + max_late + max_late.div_ceil(tick) * tick;
        let silent_for = dead.duration_since(last_heard).as_nanos() as u64;
        prop_assert!(
            silent_for <= allowed,
            "late: silent {silent_for} ns, bound {bound} + lateness {max_late} once = {allowed}"
        );
        prop_assert!(
            silent_for >= floor(interval, jitter, window, heard),
            "early: silent {silent_for} ns, floor {}", floor(interval, jitter, window, heard)
        );
    }

    #[test]
    fn silent_peer_is_convicted_inside_the_bound(
        s in settings(),
        silent_after_cycles in 0..5u64,
        rtt_ms in 0..50u64,
    ) {
        let rtt = Duration::from_millis(rtt_ms.min(s.timeout_ms));
        let silent_from = Duration::from_millis(s.interval_ms * silent_after_cycles);
        let horizon = Duration::from_millis(
            s.interval_ms * (silent_after_cycles + 3) + s.timeout_ms * u64::from(s.max_missed + 2),
        );
        // A prompt loop: the bound is stated for handle_timeout called at poll_timeout().
        let (dead, last_heard, heard) = drive(&s, horizon, Some(silent_from), || rtt, || Duration::ZERO);
        let dead = dead.expect("a silent peer is convicted");
        let tick = s.tick_ms * 1_000_000;
        let timeout_rounded = (s.timeout_ms * 1_000_000).div_ceil(tick) * tick;
        let interval = s.interval_ms * 1_000_000;
        let jitter = (interval as f64 * s.jitter) as u64;
        let window = u64::from(s.max_missed) * timeout_rounded;
        let silent_for = dead.duration_since(last_heard).as_nanos() as u64;
        prop_assert!(
            silent_for <= interval + jitter + window + tick,
            "late: silent {silent_for} ns, bound {}", interval + jitter + window + tick
        );
        prop_assert!(
            silent_for >= floor(interval, jitter, window, heard),
            "early: silent {silent_for} ns, floor {}", floor(interval, jitter, window, heard)
        );
    }
}
