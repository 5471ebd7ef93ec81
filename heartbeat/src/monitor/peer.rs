//! Per-peer state and the liveness rules, in ticks and nanoseconds since the monitor's origin.
//!
//! # State table
//!
//! A peer is in one of two phases; its single wheel entry means something different in each.
//!
//! | phase    | the wheel entry is due at                           | when it fires                                                                 |
//! |----------|------------------------------------------------------|-------------------------------------------------------------------------------|
//! | `Idle`   | `ceil(last_seen + interval ± jitter)` as of filing  | heard since (deadline moved later)? re-file at the new due tick (lazy re-arm); else ping: → `Pinged` |
//! | `Pinged` | `ceil(ping_sent + timeout)` (earlier if `interval` is shorter than `timeout`) | heard since the ping? → `Idle` (re-file or ping at once); else count a miss: dead at `max_missed`, otherwise ping again |
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
            flags: 0,
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
    pub fn start_ping(&mut self, now_ns: u64) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.ping_sent = now_ns;
        self.flags = flag::PINGED;
        self.seq
    }

    /// The tick of the answer deadline of the outstanding ping: the first tick boundary at
    /// least `timeout` after the instant the ping was emitted, so the window is never shorter
    /// than `timeout`, even when the loop ran a little after the tick boundary.
    pub fn verdict_tick(&self, tick_ns: u64) -> u64 {
        let timeout_ns = self.settings.timeout_ticks.saturating_mul(tick_ns);
        self.ping_sent.saturating_add(timeout_ns).div_ceil(tick_ns)
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
    fn min_interval_is_at_least_one_tick() {
        assert_eq!(settings().min_interval_ticks(10), 90);
        assert_eq!(settings().min_interval_ticks(10_000), 1);
    }
}
