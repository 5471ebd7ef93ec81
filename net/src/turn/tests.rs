//! Timelines of [`Turn`] in virtual time: an expensive flood against due timers.
//!
//! A simulated loop runs the real policy (`Turn`, `Ready`, `Connection::read_frames` over
//! an in-memory transport) with a virtual clock that only the frames move: each frame costs
//! its connection's parse time when it is handed over. The kernel is a queue of edges handed
//! out in batches of `batch` events per `poll`; the acceptor is a token with a backlog,
//! accepting a few per service. Timers fall due on a grid and run between turns, as the
//! driver runs them.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};

use super::*;
use crate::codec::LineCodec;
use crate::test_stream::MemStream;

const LISTENER: Token = Token(usize::MAX - 1);
const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

struct Peer {
    conn: Connection<LineCodec, MemStream>,
    /// What each of its frames costs to parse.
    cost: Duration,
    /// Frames delivered so far (they must come in order).
    delivered: usize,
}

/// One service of a token, as the simulated driver saw it.
#[derive(Debug)]
struct Service {
    token: Token,
    turn: usize,
    bytes: usize,
    frames: usize,
    carried: bool,
}

struct Sim {
    clock: Cell<Instant>,
    peers: Vec<Peer>,
    /// Peers not accepted yet: (frames, cost).
    backlog: VecDeque<(usize, Duration)>,
    accept_per_service: usize,
    /// Edges reported by the kernel, not polled yet.
    kernel: VecDeque<Token>,
    batch: usize,
    byte_budget: usize,
    chunk: usize,
    scratch: ReadBuf,
    /// Timer due times, in order.
    timers: VecDeque<Instant>,
    timer_every: Duration,
    timers_until: Instant,
    lateness: Vec<Duration>,
    services: Vec<Service>,
    /// (start, end) of each turn's reading.
    turns: Vec<(Instant, Instant)>,
    cut_by_time: usize,
    rounds_over_one: usize,
    /// Tokens handed to the turn by a poll: (number of services before, turn, token).
    handed: Vec<(usize, usize, Token)>,
    /// The turn under way.
    index: usize,
}

const FRAME: &[u8] = b"0123456789012345678901234567890123456789012345678901234567890123\n";

impl Sim {
    fn new(start: Instant) -> Sim {
        Sim {
            clock: Cell::new(start),
            peers: Vec::new(),
            backlog: VecDeque::new(),
            accept_per_service: 4,
            kernel: VecDeque::new(),
            batch: 8,
            byte_budget: 1024,
            chunk: 256,
            scratch: ReadBuf::new(),
            timers: VecDeque::new(),
            timer_every: 3 * MS,
            timers_until: start + Duration::from_secs(10),
            lateness: Vec::new(),
            services: Vec::new(),
            turns: Vec::new(),
            cut_by_time: 0,
            rounds_over_one: 0,
            handed: Vec::new(),
            index: 0,
        }
    }

    fn now(&self) -> Instant {
        self.clock.get()
    }

    /// A peer whose `frames` frames are all in its socket; the edge is in the kernel's queue.
    fn open(&mut self, frames: usize, cost: Duration) {
        let conn = Connection::new(MemStream::new(FRAME.repeat(frames), self.chunk));
        self.kernel.push_back(Token(self.peers.len()));
        self.peers.push(Peer {
            conn,
            cost,
            delivered: 0,
        });
    }

    fn poll_batch(&mut self) -> (Vec<Token>, bool) {
        let n = self.kernel.len().min(self.batch);
        let tokens: Vec<Token> = self.kernel.drain(..n).collect();
        let seq = self.services.len();
        let turn = self.index;
        self.handed.extend(tokens.iter().map(|&t| (seq, turn, t)));
        (tokens, n == self.batch)
    }

    fn serve(&mut self, turn: &mut Turn, token: Token, index: usize) {
        if token == LISTENER {
            for _ in 0..self.accept_per_service {
                let Some((frames, cost)) = self.backlog.pop_front() else {
                    break;
                };
                self.open(frames, cost);
            }
            let carried = !self.backlog.is_empty();
            if carried {
                // The acceptor stopped at its budget: as the driver does.
                turn.again(LISTENER);
            }
            self.services.push(Service {
                token,
                turn: index,
                bytes: 0,
                frames: 0,
                carried,
            });
            return;
        }
        let peer = &mut self.peers[token.0];
        let before = peer.conn.stream().taken;
        let frames_before = peer.delivered;
        let clock = &self.clock;
        let (cost, delivered) = (peer.cost, &mut peer.delivered);
        let served = turn
            .read(
                token,
                &mut peer.conn,
                &mut self.scratch,
                self.byte_budget,
                || clock.get(),
                |frame, _| {
                    assert_eq!(frame, &FRAME[..FRAME.len() - 1], "frames whole, in order");
                    *delivered += 1;
                    clock.set(clock.get() + cost);
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        let bytes = peer.conn.stream().taken - before;
        let frames = peer.delivered - frames_before;
        self.services.push(Service {
            token,
            turn: index,
            bytes,
            frames,
            carried: served == Served::Carried,
        });
        assert_ne!(served, Served::Stopped);
    }

    /// One turn of the loop, as the driver runs it: poll, read in rounds, then the timers.
    /// Returns false when there is nothing left to do.
    fn turn(&mut self, turn: &mut Turn, index: usize) -> bool {
        self.index = index;
        // poll: sleep until the next timer unless an edge is queued or work is carried.
        let next_timer = self.timers.front().copied();
        let timeout = turn.timeout(next_timer.map(|t| t.saturating_duration_since(self.now())));
        if self.kernel.is_empty() {
            match timeout {
                Some(wait) => self.clock.set(self.now() + wait),
                None => return false,
            }
        }
        let start = self.now();
        let (tokens, mut full) = self.poll_batch();
        turn.begin(start, tokens);
        let mut rounds = 1;
        loop {
            while let Some(token) = turn.next(self.now()) {
                self.serve(turn, token, index);
            }
            if !turn.another_round(self.now(), full) {
                break;
            }
            let (tokens, f) = self.poll_batch();
            full = f;
            turn.add_round(tokens);
            rounds += 1;
        }
        if rounds > 1 {
            self.rounds_over_one += 1;
        }
        if turn.out_of_time(self.now()) {
            self.cut_by_time += 1;
        }
        self.turns.push((start, self.now()));
        // The timers, between turns.
        let now = self.now();
        while let Some(&due) = self.timers.front() {
            if due > now {
                break;
            }
            self.timers.pop_front();
            self.lateness.push(now - due);
            let next = due + self.timer_every;
            if next <= self.timers_until {
                self.timers.push_back(next);
            }
        }
        true
    }

    fn run(&mut self, turn: &mut Turn) {
        let mut index = 0;
        while self.turn(turn, index) {
            index += 1;
            let busy = self.peers.iter().any(|p| !p.conn.stream().input.is_empty())
                || !self.backlog.is_empty()
                || turn.has_carried();
            if !busy {
                break;
            }
            assert!(index < 100_000, "the flood never ends");
        }
    }

    /// For every turn after the first, the tokens the previous turn left (handed to it and
    /// not served, or carried after their service) are served before any other, until the
    /// turn's time runs out.
    fn check_carried_go_first(&self) {
        let turns = self.services.last().map_or(0, |s| s.turn);
        let mut owed: HashSet<Token> = HashSet::new();
        for t in 0..=turns {
            let served: Vec<&Service> = self.services.iter().filter(|s| s.turn == t).collect();
            let mut left = owed.clone();
            left.remove(&LISTENER);
            for s in served.iter().filter(|s| s.token != LISTENER) {
                if !left.remove(&s.token) {
                    assert!(
                        left.is_empty(),
                        "turn {t}: {:?} served before the carried {left:?}",
                        s.token
                    );
                }
            }
            // Next turn owes: what this turn was handed or owed and did not serve, and what
            // it carried after a service.
            owed.extend(self.handed.iter().filter(|h| h.1 == t).map(|h| h.2));
            for s in &served {
                owed.remove(&s.token);
            }
            owed.extend(served.iter().filter(|s| s.carried).map(|s| s.token));
        }
    }

    /// No token is served twice while another waits: between two services of a token, every
    /// token that was waiting at the first of them was served.
    fn check_no_token_served_twice_while_another_waits(&self) {
        // Service number from which each token waits: handed over by a poll, or carried.
        let mut waiting: HashMap<Token, usize> = HashMap::new();
        let mut last: HashMap<Token, usize> = HashMap::new();
        let mut handed = self.handed.iter().peekable();
        for (seq, s) in self.services.iter().enumerate() {
            while let Some(&&(at, _, token)) = handed.peek() {
                if at > seq {
                    break;
                }
                waiting.entry(token).or_insert(at);
                handed.next();
            }
            waiting.remove(&s.token);
            // The acceptor's token goes first by design (`Turn::with_first`).
            waiting.remove(&LISTENER);
            if s.token == LISTENER {
                continue;
            }
            if let Some(&prev) = last.get(&s.token) {
                for (other, &from) in &waiting {
                    assert!(
                        from > prev,
                        "{:?} served again at {seq} while {other:?} waited since {from}",
                        s.token
                    );
                }
            }
            last.insert(s.token, seq);
            if s.carried {
                waiting.insert(s.token, seq + 1);
            }
        }
        assert!(waiting.is_empty(), "never served: {waiting:?}");
    }
}

/// The attack in small: expensive frames (0.5 ms each) from many peers, cheap ones
/// from others, peers still in the accept backlog, full event batches, and timers due every
/// 3 ms. Each turn stops at the 5 ms budget, overrunning by at most one frame; the timers are
/// never later than budget plus one frame; carried tokens go first, rotated fairly; each
/// service reads at most the byte budget plus one read; every frame is delivered.
#[test]
fn an_expensive_flood_delays_due_timers_by_at_most_the_budget_plus_one_frame() {
    let start = Instant::now();
    let budget = 5 * MS;
    let expensive = 500 * US;
    let mut sim = Sim::new(start);
    sim.timers.push_back(start + sim.timer_every);
    sim.kernel.push_back(LISTENER);
    for i in 0..40 {
        // The first ten cheap, so that the first turn takes several poll rounds.
        let cost = if i >= 10 && i % 2 == 0 { expensive } else { US };
        if i < 10 {
            sim.open(64, cost);
        } else {
            sim.backlog.push_back((64, cost));
        }
    }
    let mut turn = Turn::new(budget, 4).with_first(LISTENER);
    sim.run(&mut turn);

    // Everything delivered, in order (checked per frame).
    for (i, p) in sim.peers.iter().enumerate() {
        assert_eq!(p.delivered, 64, "peer {i}");
    }
    assert_eq!(sim.peers.len(), 40);
    // Each turn: at most the budget plus one expensive frame, and never empty.
    for (i, &(from, to)) in sim.turns.iter().enumerate() {
        assert!(
            to - from <= budget + expensive,
            "turn {i} took {:?}",
            to - from
        );
    }
    let worst = sim.lateness.iter().max().copied().unwrap();
    assert!(worst <= budget + expensive, "timer late by {worst:?}");
    assert!(sim.lateness.len() > 100, "timers ran during the flood");
    // Each service read at most the byte budget plus one read.
    for s in &sim.services {
        assert!(s.bytes <= sim.byte_budget + sim.chunk, "{s:?}");
    }
    sim.check_carried_go_first();
    sim.check_no_token_served_twice_while_another_waits();
    // The timeline went through every case it is meant to check.
    assert!(sim.cut_by_time > 10, "turns cut by the deadline");
    assert!(sim.rounds_over_one > 0, "turns of several poll rounds");
    let by_budget = sim
        .services
        .iter()
        .filter(|s| s.carried && s.bytes >= sim.byte_budget)
        .count();
    assert!(by_budget > 0, "reads carried by the byte budget");
    let listener_carried = sim
        .services
        .iter()
        .filter(|s| s.token == LISTENER && s.carried)
        .count();
    assert!(listener_carried >= 2, "the acceptor's token carried over");
    // ... and served first in the next turn, ahead of the carried peers: the backlog is
    // accepted within one turn per accept budget, not one rotation of the flood.
    for (i, s) in sim.services.iter().enumerate() {
        if s.token == LISTENER && s.carried {
            let next = sim.services[i + 1..]
                .iter()
                .find(|n| n.turn > s.turn)
                .unwrap();
            assert_eq!((next.turn, next.token), (s.turn + 1, LISTENER));
        }
    }
    eprintln!(
        "{} turns ({} cut by time), {} services, worst timer lateness {worst:?}",
        sim.turns.len(),
        sim.cut_by_time,
        sim.services.len()
    );
}

/// A frame costing more than the whole budget still moves: one frame per turn, and the
/// timers run after each.
#[test]
fn a_frame_dearer_than_the_budget_costs_one_frame_per_turn() {
    let start = Instant::now();
    let budget = 2 * MS;
    let cost = 10 * MS;
    let mut sim = Sim::new(start);
    sim.timer_every = MS;
    sim.timers.push_back(start + MS);
    sim.open(5, cost);
    sim.open(5, cost);
    let mut turn = Turn::new(budget, 4);
    sim.run(&mut turn);
    assert!(sim.peers.iter().all(|p| p.delivered == 5));
    // One frame per service (then one that finds the socket empty), one per turn.
    assert!(sim.services.iter().all(|s| s.frames <= 1));
    let worst = sim.lateness.iter().max().copied().unwrap();
    assert!(worst <= budget + cost, "timer late by {worst:?}");
    for (i, &(from, to)) in sim.turns.iter().enumerate() {
        assert!(to - from <= budget + cost, "turn {i} took {:?}", to - from);
    }
    // Alternating: the carried peers rotate.
    let order: Vec<_> = sim
        .services
        .iter()
        .filter(|s| s.frames == 1)
        .map(|s| (s.turn, s.token.0))
        .collect();
    assert_eq!(
        order,
        [
            (0, 0),
            (1, 1),
            (2, 0),
            (3, 1),
            (4, 0),
            (5, 1),
            (6, 0),
            (7, 1),
            (8, 0),
            (9, 1)
        ]
    );
}

/// Without a deadline passed, a turn reads every ready token once, then carries what is
/// left by the byte budget to the next turn without sleeping.
#[test]
fn cheap_frames_are_bounded_by_the_byte_budget_alone() {
    let start = Instant::now();
    let mut sim = Sim::new(start);
    sim.open(64, Duration::ZERO);
    sim.open(2, Duration::ZERO);
    let mut turn = Turn::new(5 * MS, 4);
    sim.run(&mut turn);
    assert!(sim.cut_by_time == 0);
    let first: Vec<_> = sim
        .services
        .iter()
        .filter(|s| s.turn == 0)
        .map(|s| (s.token.0, s.carried))
        .collect();
    assert_eq!(first, [(0, true), (1, false)]);
    assert!(sim.services.iter().all(|s| s.bytes <= 1024 + 256));
    assert_eq!(sim.peers[0].delivered, 64);
}
