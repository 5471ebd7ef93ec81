//! Per-peer state and the liveness rules, in ticks and nanoseconds since the monitor's origin.
//!
//! # The grid
//!
//! A silence cycle starts at `last_seen` (`S`) with one jittered draw `I` of the interval. Its
//! pings and its verdict are scheduled on a fixed grid of ticks, `T` = `timeout` in ticks,
//! `M` = `max_missed`:
//!
//! ```text
//! G = ceil((S + I) / tick)      ping k (k = 0 .. M-1) due at G + k·T      verdict at G + M·T
//! ```
//!
//! The grid depends on `S` and `I` only, never on when the loop actually ran, so a loop that
//! wakes a little late does not push the later steps back: its lateness is not accumulated
//! once per ping. Two rules keep the real send times honest:
//!
//! - **the verdict waits for the last ping's full window**: it is due at
//!   `max(G + M·T, ceil(sent + T))`, `sent` being the last ping's real emission time, so a
//!   peer answering within `timeout` of each real send is never convicted;
//! - **a broken grid chains**: when a step runs so late that the next grid slot has already
//!   passed (a loop stall of `timeout` or more), the cycle falls back to chained windows,
//!   every later step due `timeout` after the real send of its ping (flag `CHAINED`): no
//!   burst of pings after a stall, and each ping keeps a full window.
//!
//! `I` is not stored: it is a seeded hash of the peer's id and `S`
//! ([`draw_interval`]), recomputed when needed, so the grid costs no memory. A new peer's
//! first cycle (flag `FIRST`, until it is first heard from) draws `I` uniformly over
//! `(0, interval + jitter]` instead ([`draw_first_interval`]), so peers that connect together
//! do not all ping one interval later.
//!
//! # State table
//!
//! A peer is in one of two phases; its single wheel entry means something different in each.
//!
//! | phase    | the wheel entry is due at | when it fires |
//! |----------|---------------------------|---------------|
//! | `Idle`   | `G` of the cycle as of filing | heard since (deadline moved later)? re-file at the new `G` (lazy re-arm); else ping 0: → `Pinged` |
//! | `Pinged` | the next step: `G + (missed+1)·T` (the verdict step also `≥ ceil(sent + T)`; chained: `ceil(sent + T)`), or earlier for a re-check when `interval` is shorter than `timeout` | heard since the ping? → `Idle` (re-file or ping at once); else count a miss: dead at `max_missed`, otherwise ping again |
//!
//! Receiving a frame that counts ([`Peer::on_alive`]) only writes `last_seen`, `missed = 0`
//! and the `heard` flag: no wheel operation per packet. The timer notices when it fires.

use wheelbeat_timer::TimerKey;

/// Settings of one peer, resolved from [`Config`](super::Config) and its
/// [`PeerConfig`](super::PeerConfig), in the units the monitor computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Settings {
    /// The silence window before a ping, in nanoseconds.
    pub interval_ns: u64,
    /// The largest jitter deviation, `floor(interval * jitter)`, in nanoseconds.
    pub jitter_ns: u64,
    /// How long a ping waits for its answer, in whole ticks (rounded up, at least 1).
    pub timeout_ticks: u64,
    /// Unanswered pings in a row before the peer is dead.
    pub max_missed: u32,
    /// Whether application data counts as a sign of life.
    pub data_live: bool,
    /// Passive mode: never ping; silence for a whole window (exactly `interval`, no jitter)
    /// is the verdict.
    pub passive: bool,
}

impl Settings {
    /// The shortest possible silence window, in whole ticks (at least 1). A pinged peer's timer
    /// is filed no later than this after the ping, so that a peer heard during the ping's
    /// window is pinged again on time even when `timeout` is longer than `interval`.
    pub fn min_interval_ticks(&self, tick_ns: u64) -> u64 {
        ((self.interval_ns - self.jitter_ns) / tick_ns).max(1)
    }
}

/// Bit flags of [`Peer::flags`].
pub(super) mod flag {
    /// A ping is outstanding: the timer is its answer deadline.
    pub const PINGED: u8 = 1;
    /// The outstanding ping got its matching pong (its RTT was reported).
    pub const ANSWERED: u8 = 2;
    /// A frame that counts as a sign of life arrived since the last ping was sent.
    pub const HEARD: u8 = 4;
    /// The grid of this silence cycle was broken by a late step: every following step is due
    /// `timeout` after the real send of its ping. Cleared when a new cycle starts.
    pub const CHAINED: u8 = 8;
    /// The peer's first silence cycle (never heard from since it was added): its window is
    /// drawn by [`draw_first_interval`](super::draw_first_interval). Cleared when a new cycle
    /// starts.
    pub const FIRST: u8 = 16;
    /// The driver has bytes from this peer it has not read yet (see
    /// [`Monitor::set_unread`](super::super::Monitor::set_unread)): no step of its cycle is
    /// judged until they are read. A property of the socket, kept across cycles and pings.
    pub const UNREAD: u8 = 32;
    /// A ping-flood strike was given in the current cycle. Kept across the cycle's pings;
    /// looked at and cleared when the cycle ends (the timer fires and finds the peer heard).
    pub const STRUCK: u8 = 64;
    /// The verdict due for this peer is held and the driver asked to read its socket
    /// ([`Action::ReadFirst`](super::super::Action::ReadFirst)): the next `handle_timeout`
    /// call takes it, final, unless the peer was heard from or bytes wait unread. Cleared
    /// when a new cycle starts.
    pub const READ_ASKED: u8 = 128;
}

/// One jittered silence window, in nanoseconds, for the cycle of peer `peer_key` that started
/// at `last_seen`: uniform in `interval - jitter_ns ..= interval + jitter_ns`.
///
/// It is a seeded hash rather than a draw from a stored RNG stream, so the monitor can recompute
/// the cycle's grid at any time without keeping the draw per peer (memory per connection), and
/// a run still replays exactly for a given seed. A new sign of life moves `last_seen` and so
/// gives a fresh, independent draw for the next cycle.
pub(super) fn draw_interval(seed: u64, peer_key: u64, s: &Settings, last_seen: u64) -> u64 {
    if s.jitter_ns == 0 {
        return s.interval_ns;
    }
    let h = mix(mix(seed ^ peer_key) ^ last_seen);
    // Lemire's multiply-shift maps the hash onto the span without a modulo's bias.
    let span = u128::from(2 * s.jitter_ns + 1);
    let offset = ((u128::from(h) * span) >> 64) as u64;
    s.interval_ns - s.jitter_ns + offset
}

/// The FIRST silence window of a peer just added at `added_at`, in nanoseconds: uniform in
/// `1 ..= interval + jitter_ns` (with no jitter, exactly `interval`).
///
/// Why not `interval ± jitter` as for later cycles: a burst of connects (a server restart, a
/// reconnect wave) would become a burst of pings one interval later, on both sides at once,
/// while the peers are still busy connecting; at 19,000 connections on two cores that burst
/// missed its timeouts and convicted healthy peers. Spreading the first window over the whole
/// `(0, interval × (1 + jitter)]` spreads the first pings as evenly as the connects are
/// spread over time, or better. Pinging a just-connected peer early only costs a ping, and
/// the longest window is unchanged, so the liveness bound holds as before. `jitter = 0.0`
/// turns every random draw off, this one included (exact, lockstep schedules).
pub(super) fn draw_first_interval(seed: u64, peer_key: u64, s: &Settings, added_at: u64) -> u64 {
    if s.jitter_ns == 0 {
        return s.interval_ns;
    }
    // A different stream from `draw_interval`'s (the constant), same Lemire mapping.
    let h = mix(mix(seed ^ peer_key ^ 0x5851_f42d_4c95_7f2d) ^ added_at);
    let span = u128::from(s.interval_ns + s.jitter_ns);
    1 + ((u128::from(h) * span) >> 64) as u64
}

/// The splitmix64 finaliser: a cheap bijective mix whose output bits all depend on all input bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One monitored peer. Kept small: it is multiplied by the number of connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer<C> {
    /// The caller's tag.
    pub conn: C,
    /// Its one wheel entry.
    pub timer: TimerKey,
    /// When the last frame that counts as a sign of life arrived (ns since the origin).
    pub last_seen: u64,
    /// When the outstanding (or last) ping was emitted (ns since the origin).
    pub ping_sent: u64,
    /// Sequence number of the outstanding (or last) ping.
    pub seq: u64,
    /// Resolved settings.
    pub settings: Settings,
    /// Unanswered pings in a row.
    pub missed: u32,
    /// [`flag`] bits.
    pub flags: u8,
    /// Pings received in the current silence cycle (the ping-flood policy's count). Lives in
    /// what was padding, so it costs no memory per peer.
    pub pings: u16,
    /// Ping-flood strikes not yet cleared by a cycle without one.
    pub strikes: u8,
}

impl<C> Peer<C> {
    /// A peer first seen at `now_ns`, whose timer is `timer`.
    pub fn new(conn: C, now_ns: u64, settings: Settings, timer: TimerKey) -> Self {
        Peer {
            conn,
            timer,
            last_seen: now_ns,
            ping_sent: 0,
            seq: 0,
            settings,
            missed: 0,
            flags: flag::FIRST,
            pings: 0,
            strikes: 0,
        }
    }

    /// The silence window of the current cycle (recomputed, never stored): the first cycle's
    /// spread draw, or the usual `interval ± jitter` draw after that.
    pub fn window_ns(&self, seed: u64, peer_key: u64) -> u64 {
        if self.has(flag::FIRST) {
            draw_first_interval(seed, peer_key, &self.settings, self.last_seen)
        } else {
            draw_interval(seed, peer_key, &self.settings, self.last_seen)
        }
    }

    /// Whether `bit` is set.
    pub fn has(&self, bit: u8) -> bool {
        self.flags & bit != 0
    }

    /// Records a sign of life at `now_ns`: the misses and the silence window start over.
    pub fn on_alive(&mut self, now_ns: u64) {
        self.last_seen = self.last_seen.max(now_ns);
        self.missed = 0;
        self.flags |= flag::HEARD;
    }

    /// If `seq` answers the outstanding ping (first answer only), marks it answered and
    /// returns the ping's send time.
    pub fn match_pong(&mut self, seq: u64) -> Option<u64> {
        if self.has(flag::PINGED) && !self.has(flag::ANSWERED) && seq == self.seq {
            self.flags |= flag::ANSWERED;
            Some(self.ping_sent)
        } else {
            None
        }
    }

    /// Records a ping emitted at `now_ns` and returns its sequence number.
    /// Keeps `CHAINED` and `FIRST` (properties of the cycle, not of one ping) and `UNREAD` (of
    /// the socket).
    pub fn start_ping(&mut self, now_ns: u64) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.ping_sent = now_ns;
        self.flags = flag::PINGED
            | (self.flags & (flag::CHAINED | flag::FIRST | flag::UNREAD | flag::STRUCK));
        self.seq
    }

    /// The tick of the answer deadline of the outstanding ping (`ceil(sent + T)`): the first tick boundary at
    /// least `timeout` after the instant the ping was emitted, so the window is never shorter
    /// than `timeout`, even when the loop ran a little after the tick boundary.
    pub fn verdict_tick(&self, tick_ns: u64) -> u64 {
        let timeout_ns = self.settings.timeout_ticks.saturating_mul(tick_ns);
        self.ping_sent.saturating_add(timeout_ns).div_ceil(tick_ns)
    }

    /// The tick of the next step of a pinged peer (see the module docs): the next grid slot
    /// `grid_start + (missed + 1)·T` for an intermediate step; for the verdict step (or any
    /// step of a chained cycle) also no earlier than the outstanding ping's answer deadline.
    pub fn step_tick(&self, grid_start: u64, tick_ns: u64) -> u64 {
        let t = self.settings.timeout_ticks;
        let slot = grid_start.saturating_add((u64::from(self.missed) + 1).saturating_mul(t));
        if self.missed + 1 >= self.settings.max_missed || self.has(flag::CHAINED) {
            slot.max(self.verdict_tick(tick_ns))
        } else {
            slot
        }
    }

    /// The tick at which the peer has been silent for `interval_ns` (one jittered draw):
    /// `ceil((last_seen + interval_ns) / tick)`, never before the exact instant.
    pub fn ping_due_tick(&self, interval_ns: u64, tick_ns: u64) -> u64 {
        self.last_seen.saturating_add(interval_ns).div_ceil(tick_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            interval_ns: 1_000,
            jitter_ns: 100,
            timeout_ticks: 5,
            max_missed: 3,
            data_live: true,
            passive: false,
        }
    }

    fn key() -> TimerKey {
        let mut w = wheelbeat_timer::Wheel::new();
        w.insert(0, ())
    }

    #[test]
    fn ping_due_rounds_up_never_early() {
        let p = Peer::new((), 15, settings(), key());
        assert_eq!(p.ping_due_tick(1_000, 10), 102); // 1015 ns -> tick 102 (1020 ns)
        let p = Peer::new((), 10, settings(), key());
        assert_eq!(p.ping_due_tick(1_000, 10), 101); // exactly on a boundary
    }

    #[test]
    fn only_the_outstanding_ping_matches_once() {
        let mut p = Peer::new((), 0, settings(), key());
        assert_eq!(p.match_pong(0), None, "no ping yet");
        let seq = p.start_ping(50);
        assert_eq!(p.match_pong(seq + 1), None);
        assert_eq!(p.match_pong(seq), Some(50));
        assert_eq!(p.match_pong(seq), None, "duplicate pong");
        let next = p.start_ping(60);
        assert_eq!(p.match_pong(seq), None, "late pong of the previous ping");
        assert_eq!(p.match_pong(next), Some(60));
    }

    #[test]
    fn alive_never_moves_last_seen_back() {
        let mut p = Peer::new((), 100, settings(), key());
        p.missed = 2;
        p.on_alive(50);
        assert_eq!((p.last_seen, p.missed, p.has(flag::HEARD)), (100, 0, true));
    }

    #[test]
    fn intermediate_steps_stay_on_the_grid_and_the_verdict_waits_for_a_full_window() {
        // timeout 5 ticks of 10 ns, max_missed 3, grid starting at tick 100.
        let mut p = Peer::new((), 0, settings(), key());
        p.start_ping(1_003); // ping 0, sent 3 ns after its slot (tick 100)
        assert_eq!(
            p.step_tick(100, 10),
            105,
            "next slot, not ceil(1003 + 50) = 106"
        );
        p.missed = 1;
        p.start_ping(1_059); // ping 1, 9 ns late
        assert_eq!(p.step_tick(100, 10), 110);
        p.missed = 2;
        p.start_ping(1_100); // the last ping, on time: the verdict is the grid slot
        assert_eq!(p.step_tick(100, 10), 115);
        p.start_ping(1_104); // the last ping, late: its full window decides
        assert_eq!(p.step_tick(100, 10), 116);
    }

    #[test]
    fn a_chained_cycle_gives_every_ping_its_full_window() {
        let mut p = Peer::new((), 0, settings(), key());
        p.flags = flag::CHAINED;
        p.start_ping(2_001);
        assert!(p.has(flag::CHAINED), "kept across pings of the cycle");
        assert_eq!(p.step_tick(100, 10), 206, "ceil(2001 + 50)");
    }

    #[test]
    fn jitter_draw_is_a_pure_function_of_seed_peer_and_last_seen() {
        let s = settings();
        let a = draw_interval(1, 7, &s, 5_000);
        assert_eq!(a, draw_interval(1, 7, &s, 5_000), "replays exactly");
        let others = [
            draw_interval(2, 7, &s, 5_000),
            draw_interval(1, 8, &s, 5_000),
            draw_interval(1, 7, &s, 5_001),
        ];
        assert!(others.iter().any(|&o| o != a), "each input moves the draw");
        let no_jitter = Settings { jitter_ns: 0, ..s };
        assert_eq!(draw_interval(1, 7, &no_jitter, 5_000), 1_000);
    }

    #[test]
    fn min_interval_is_at_least_one_tick() {
        assert_eq!(settings().min_interval_ticks(10), 90);
        assert_eq!(settings().min_interval_ticks(10_000), 1);
    }
}
