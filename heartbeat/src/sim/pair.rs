//! [`Pair`]: two monitors watching each other over a simulated [`Link`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::monitor::{Action, Config, Event, Monitor, PeerId};
use crate::protocol::Message;

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
                    // A refused flooder is closed too: for the pair, the link is over.
                    Action::Close { .. } | Action::PingFlood { .. } => {
                        side.declared_dead_at = Some(now)
                    }
                    // Not asked for: the pair delivers every frame before the timers.
                    Action::ReadFirst { .. } => {}
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
