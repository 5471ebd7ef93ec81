//! Driving [`Monitor`]s in virtual time: a prompt event loop ([`run_until`]), a timeline
//! harness ([`Timeline`]), a simulated pair of peers over a lossy link ([`Pair`], in the style
//! of quinn-proto's test `Pair`), and a crowd of many simulated peers around one monitor
//! ([`Crowd`], used by `examples/simulate.rs` with a million connections).
//!
//! Ground rules: nothing here reads a clock or sleeps. Time only moves when a step says so,
//! and every random choice (loss, jitter) comes from a seed, so a failing run replays exactly.
//! These helpers are public so that integration tests and `examples/simulate.rs` share them;
//! they are not needed to use the crate.

mod crowd;
mod pair;

use std::time::{Duration, Instant};

pub use crowd::{Crowd, CrowdReport, CrowdSettings};
pub use pair::{Link, Pair, Side};

use crate::monitor::{Action, Config, Event, Monitor, PeerId};
use crate::protocol::Message;

/// Runs `monitor` as a prompt event loop would, from its current state up to `until`: calls
/// [`Monitor::handle_timeout`] at every [`Monitor::poll_timeout`] that is not after `until`
/// (never earlier than `from`), draining actions and events after each call into the
/// callbacks, with the virtual time of the call. Returns the time of the last call, or `from`.
pub fn run_until<C: Copy>(
    monitor: &mut Monitor<C>,
    from: Instant,
    until: Instant,
    mut on_action: impl FnMut(Instant, Action<C>),
    mut on_event: impl FnMut(Instant, Event<C>),
) -> Instant {
    let mut now = from;
    while let Some(due) = monitor.poll_timeout() {
        if due > until {
            break;
        }
        now = now.max(due);
        monitor.handle_timeout(now);
        while let Some(a) = monitor.poll_action() {
            on_action(now, a);
        }
        while let Some(e) = monitor.poll_event() {
            on_event(now, e);
        }
        if monitor.poll_timeout().is_some_and(|next| next <= now) {
            // Everything due at `now` was handled; a deadline still reported at or before
            // `now` would loop forever. The monitor guarantees progress, so this is a bug.
            debug_assert!(false, "poll_timeout() did not move past {now:?}");
            break;
        }
    }
    now
}

/// A monitor driven as a prompt event loop along a timeline in milliseconds, logging what it
/// emits with the time it was emitted: the harness of the `timeline_*` tests, smoltcp style.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::monitor::Config;
/// use wheelbeat_heartbeat::protocol::Message;
/// use wheelbeat_heartbeat::sim::Timeline;
///
/// let mut h = Timeline::new(Config { jitter: 0.0, ..Config::default() });
/// let peer = h.add(0, 1u32);
/// h.run_to(30_000);
/// assert_eq!(h.pings(1), vec![(30_000, 1)]);
/// h.recv(30_020, peer, Message::Pong(1));
/// assert_eq!(h.rtts(1), vec![(30_020, Duration::from_millis(20))]);
/// ```
#[derive(Debug)]
pub struct Timeline<C: Copy> {
    /// The monitor under test.
    pub m: Monitor<C>,
    /// Time 0 of the timeline (the monitor's origin).
    pub t0: Instant,
    /// How far the timeline has run.
    pub now: Instant,
    /// Every action emitted, with its time in ms.
    pub actions: Vec<(u64, Action<C>)>,
    /// Every event emitted, with its time in ms.
    pub events: Vec<(u64, Event<C>)>,
}

impl<C: Copy + PartialEq> Timeline<C> {
    /// A timeline starting now (virtual: the wall clock is read once, for an origin).
    pub fn new(config: Config) -> Self {
        let t0 = Instant::now();
        Timeline {
            m: Monitor::new(config, t0),
            t0,
            now: t0,
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The instant `ms` milliseconds after the start.
    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Adds a peer at `ms` (after running the timers due before it).
    pub fn add(&mut self, ms: u64, conn: C) -> PeerId {
        self.run_before(ms);
        self.m.add(self.at(ms), conn)
    }

    /// Adds a peer with overrides at `ms`.
    pub fn add_with(&mut self, ms: u64, conn: C, overrides: crate::monitor::PeerConfig) -> PeerId {
        self.run_before(ms);
        self.m.add_with(self.at(ms), conn, overrides)
    }

    /// Runs every timer due strictly before `ms`.
    pub fn run_before(&mut self, ms: u64) {
        let until = self.at(ms) - Duration::from_nanos(1);
        self.run(until);
    }

    /// Runs every timer due at or before `ms`.
    pub fn run_to(&mut self, ms: u64) {
        let until = self.at(ms);
        self.run(until);
    }

    /// Runs every timer due at or before `until`.
    pub fn run(&mut self, until: Instant) {
        let t0 = self.t0;
        let (actions, events) = (&mut self.actions, &mut self.events);
        let ms = |t: Instant| t.duration_since(t0).as_millis() as u64;
        run_until(
            &mut self.m,
            self.now,
            until,
            |t, a| actions.push((ms(t), a)),
            |t, e| events.push((ms(t), e)),
        );
        self.now = self.now.max(until);
    }

    /// Delivers a frame at `ms`: after the timers due before it, before those due at it (the
    /// shell's order).
    pub fn recv(&mut self, ms: u64, peer: PeerId, msg: Message<'_>) {
        self.run_before(ms);
        let now = self.at(ms);
        self.m.handle_message(peer, now, &msg);
        self.now = self.now.max(now);
        self.drain(ms);
    }

    /// Handles a frame at `ms` without running the timers due before it: the loop was stalled
    /// until `ms` and reads its sockets first on waking. Follow with
    /// [`stall_until`](Self::stall_until)`(ms)`.
    pub fn deliver(&mut self, ms: u64, peer: PeerId, msg: Message<'_>) {
        let now = self.at(ms);
        self.m.handle_message(peer, now, &msg);
        self.now = self.now.max(now);
        self.drain(ms);
    }

    /// Calls `handle_timeout` at `ms` directly, as a loop that slept through every earlier
    /// wake-up would (a stall), and logs the outputs.
    pub fn stall_until(&mut self, ms: u64) {
        let now = self.at(ms);
        self.m.handle_timeout(now);
        self.now = self.now.max(now);
        self.drain(ms);
    }

    fn drain(&mut self, ms: u64) {
        while let Some(a) = self.m.poll_action() {
            self.actions.push((ms, a));
        }
        while let Some(e) = self.m.poll_event() {
            self.events.push((ms, e));
        }
    }

    /// (time, seq) of every ping sent to the peer tagged `conn`.
    pub fn pings(&self, conn: C) -> Vec<(u64, u64)> {
        self.actions
            .iter()
            .filter_map(|&(t, a)| match a {
                Action::SendPing { conn: c, seq, .. } if c == conn => Some((t, seq)),
                _ => None,
            })
            .collect()
    }

    /// (time, missed) of every [`Event::Missed`] of `conn`.
    pub fn misses(&self, conn: C) -> Vec<(u64, u32)> {
        self.events
            .iter()
            .filter_map(|&(t, e)| match e {
                Event::Missed {
                    conn: c, missed, ..
                } if c == conn => Some((t, missed)),
                _ => None,
            })
            .collect()
    }

    /// When `conn` was declared dead, and how long it had been silent then.
    pub fn dead(&self, conn: C) -> Option<(u64, Duration)> {
        self.events.iter().find_map(|&(t, e)| match e {
            Event::Dead {
                conn: c,
                silent_for,
                ..
            } if c == conn => Some((t, silent_for)),
            _ => None,
        })
    }

    /// (time, rtt) of every [`Event::Rtt`] of `conn`.
    pub fn rtts(&self, conn: C) -> Vec<(u64, Duration)> {
        self.events
            .iter()
            .filter_map(|&(t, e)| match e {
                Event::Rtt { conn: c, rtt, .. } if c == conn => Some((t, rtt)),
                _ => None,
            })
            .collect()
    }
}
