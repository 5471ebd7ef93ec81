//! Driving [`Monitor`]s in virtual time: a prompt event loop ([`run_until`]) and a simulated
//! pair of peers over a lossy link ([`Pair`]), in the style of quinn-proto's test `Pair`.
//!
//! Ground rules: nothing here reads a clock or sleeps. Time only moves when a step says so,
//! and every random choice (loss, jitter) comes from a seed, so a failing run replays exactly.
//! These helpers are public so that integration tests and `examples/simulate.rs` share them;
//! they are not needed to use the crate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

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

/// A frame in flight on the simulated link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Frame {
    Ping(u64),
    Pong(u64),
    Data,
}

/// The simulated link between the two sides of a [`Pair`]: fixed one-way latency plus a
/// uniform extra delay, and independent loss per frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Minimum one-way delay.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `0..=spread` per frame (frames may be reordered).
    pub spread: Duration,
    /// Probability in `0.0..=1.0` that a frame is lost.
    pub loss: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(20),
            spread: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// One side of a [`Pair`]: a monitor watching the other side.
#[derive(Debug)]
pub struct Side {
    /// This side's monitor, with one peer: the other side.
    pub monitor: Monitor<()>,
    /// The other side's id in `monitor`.
    pub peer: PeerId,
    /// When set, this side is hung from then on: it neither reads nor writes nor runs timers
    /// (its socket stays open).
    pub frozen_at: Option<Instant>,
    /// When this side declared the other dead, if it did.
    pub declared_dead_at: Option<Instant>,
    /// Application data sent by this side every so often, if set.
    pub data_every: Option<Duration>,
    next_data: Option<Instant>,
    last_sent: Option<Instant>,
}

impl Side {
    fn frozen(&self, now: Instant) -> bool {
        self.frozen_at.is_some_and(|f| f <= now)
    }
}

/// Two peers watching each other over a [`Link`], in virtual time. Both sides ping.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::monitor::Config;
/// use wheelbeat_heartbeat::sim::{Link, Pair};
///
/// let config = Config { interval: Duration::from_secs(1), timeout: Duration::from_millis(500),
///                       ..Config::default() };
/// let mut pair = Pair::new(config, Link::default(), 1);
/// pair.freeze(1, pair.start() + Duration::from_secs(10));
/// pair.run_for(Duration::from_secs(20));
/// assert!(pair.side(0).declared_dead_at.is_some());
/// ```
#[derive(Debug)]
pub struct Pair {
    start: Instant,
    now: Instant,
    sides: [Side; 2],
    link: Link,
    rng: fastrand::Rng,
    in_flight: BinaryHeap<Reverse<(Instant, u64, usize, Frame)>>,
    blackouts: Vec<(Instant, Instant)>,
    sent: u64,
    lost: u64,
    events: Vec<(Instant, usize, Event<()>)>,
}

impl Pair {
    /// Two sides with the same `config` (side 1's jitter seed is offset so they do not ping
    /// in lockstep), joined by `link`, whose losses are drawn from `seed`.
    pub fn new(config: Config, link: Link, seed: u64) -> Self {
        let start = Instant::now();
        let mut config_b = config.clone();
        config_b.seed = config.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let side = |config: Config| {
            let mut monitor = Monitor::new(config, start);
            let peer = monitor.add(start, ());
            Side {
                monitor,
                peer,
                frozen_at: None,
                declared_dead_at: None,
                data_every: None,
                next_data: None,
                last_sent: None,
            }
        };
        Pair {
            start,
            now: start,
            sides: [side(config), side(config_b)],
            link,
            rng: fastrand::Rng::with_seed(seed),
            in_flight: BinaryHeap::new(),
            blackouts: Vec::new(),
            sent: 0,
            lost: 0,
            events: Vec::new(),
        }
    }

    /// The instant the simulation started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Side `i` (0 or 1).
    pub fn side(&self, i: usize) -> &Side {
        &self.sides[i]
    }

    /// Side `i`, mutably (e.g. to set `data_every`).
    pub fn side_mut(&mut self, i: usize) -> &mut Side {
        &mut self.sides[i]
    }

    /// Hangs side `i` at `at`: from then on it does nothing at all.
    pub fn freeze(&mut self, i: usize, at: Instant) {
        self.sides[i].frozen_at = Some(at);
    }

    /// Loses every frame sent in `from..until`, both ways (a network blackout).
    pub fn blackout(&mut self, from: Instant, until: Instant) {
        self.blackouts.push((from, until));
    }

    /// Every event either side emitted: (time, side, event).
    pub fn events(&self) -> &[(Instant, usize, Event<()>)] {
        &self.events
    }

    /// Frames sent and frames lost so far.
    pub fn frames(&self) -> (u64, u64) {
        (self.sent, self.lost)
    }

    /// When side `i` last put a frame on the link.
    pub fn last_sent(&self, i: usize) -> Option<Instant> {
        self.sides[i].last_sent
    }

    /// Runs the simulation for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(next) = self.next_step() {
            if next > until {
                break;
            }
            self.step(next);
        }
        self.now = until;
    }

    /// The time of the next thing to happen: a frame arriving or a timer of a live side.
    fn next_step(&mut self) -> Option<Instant> {
        let mut next = self.in_flight.peek().map(|Reverse((t, ..))| *t);
        for side in &mut self.sides {
            if side.declared_dead_at.is_some() || side.frozen(self.now) {
                continue;
            }
            let mut consider = |t: Instant| {
                // A side that freezes before `t` does nothing at `t`.
                if side.frozen_at.is_none_or(|f| t < f) {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            };
            if let Some(every) = side.data_every {
                consider(*side.next_data.get_or_insert(self.start + every));
            }
            if let Some(t) = side.monitor.poll_timeout() {
                consider(t);
            }
        }
        next.map(|n| n.max(self.now))
    }

    /// One turn of both event loops at `now`, in the documented order: deliver frames, run
    /// timers, drain actions and events.
    fn step(&mut self, now: Instant) {
        self.now = now;
        while let Some(Reverse((at, _, to, frame))) = self.in_flight.peek().copied() {
            if at > now {
                break;
            }
            self.in_flight.pop();
            let side = &mut self.sides[to];
            if side.frozen(now) || side.declared_dead_at.is_some() {
                continue; // A hung process reads nothing.
            }
            let msg = match frame {
                Frame::Ping(n) => Message::Ping(n),
                Frame::Pong(n) => Message::Pong(n),
                Frame::Data => Message::Data(b"{}"),
            };
            side.monitor.handle_message(side.peer, now, &msg);
        }
        for i in 0..2 {
            let side = &mut self.sides[i];
            if side.frozen(now) || side.declared_dead_at.is_some() {
                continue;
            }
            let mut out = Vec::new();
            if let (Some(every), Some(at)) = (side.data_every, side.next_data)
                && at <= now
            {
                side.next_data = Some(at + every);
                out.push(Frame::Data);
            }
            if side.monitor.poll_timeout().is_some_and(|t| t <= now) {
                side.monitor.handle_timeout(now);
            }
            while let Some(action) = side.monitor.poll_action() {
                match action {
                    Action::SendPing { seq, .. } => out.push(Frame::Ping(seq)),
                    Action::SendPong { seq, .. } => out.push(Frame::Pong(seq)),
                    Action::Close { .. } => side.declared_dead_at = Some(now),
                }
            }
            while let Some(e) = side.monitor.poll_event() {
                self.events.push((now, i, e));
            }
            for frame in out {
                self.transmit(now, 1 - i, frame);
            }
        }
    }

    fn transmit(&mut self, now: Instant, to: usize, frame: Frame) {
        self.sent += 1;
        self.sides[1 - to].last_sent = Some(now);
        let blackout = self.blackouts.iter().any(|&(f, u)| f <= now && now < u);
        if blackout || (self.link.loss > 0.0 && self.rng.f64() < self.link.loss) {
            self.lost += 1;
            return;
        }
        let spread = self.link.spread.as_nanos() as u64;
        let extra = if spread == 0 {
            0
        } else {
            self.rng.u64(0..=spread)
        };
        let at = now + self.link.latency + Duration::from_nanos(extra);
        self.in_flight.push(Reverse((at, self.sent, to, frame)));
    }
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
                Event::Missed { conn: c, missed, .. } if c == conn => Some((t, missed)),
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
