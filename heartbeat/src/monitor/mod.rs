//! [`Monitor`]: the I/O-free liveness core.
//!
//! The monitor knows nothing about sockets or clocks. It is fed the current time and the frames
//! each peer sent, and answers with [`Action`]s (send a ping, answer a ping, close) and
//! [`Event`]s (dead, RTT, missed ping, local pause). Everything with time in it is therefore
//! deterministic and testable in virtual time, and a million connections can be simulated in
//! memory (see `examples/simulate.rs`).
//!
//! # Order of calls per loop turn
//!
//! 1. Read the sockets, and feed **every** frame received with [`Monitor::handle_message`]
//!    (`now` = the time of this turn).
//! 2. If `now >= poll_timeout()`, call [`Monitor::handle_timeout`]`(now)` (or
//!    [`Monitor::handle_timeout_bounded`] to cap the work of one turn).
//! 3. Drain [`Monitor::poll_action`] (write pings and pongs, close dead connections) and
//!    [`Monitor::poll_event`].
//! 4. Sleep until [`Monitor::poll_timeout`] or I/O readiness, whichever comes first.
//!
//! Reading before step 2 matters: a pong sitting in a socket buffer when the loop wakes up late
//! is then counted before any verdict is taken. A driver that cannot be sure it has seen
//! every readable socket (full event batches leave events in the kernel) turns on
//! [`Monitor::set_read_before_verdict`]: a verdict is then held behind an
//! [`Action::ReadFirst`] for the driver to read that peer's socket, and taken when it calls
//! `handle_timeout` again (step 2 once more, in the same turn).
//!
//! # Ground rules
//!
//! - **One wheel entry per peer, no wheel operation per packet.** A received frame only writes
//!   `last_seen` (lazy re-arm, as in tokio's "registered vs true timeouts"); when the peer's
//!   timer fires, it looks at `last_seen` and files itself again if the peer was heard from.
//! - **Never early.** Deadlines are rounded up to the next tick, `now` is rounded down.
//! - **Every received frame is a sign of life**: a ping, a pong (even with a wrong or late
//!   sequence number: some peer process wrote it, so it is alive; it just gives no RTT), and
//!   application data when `data_counts_as_liveness` is on. A sign of life resets the count of
//!   missed pings and restarts the silence window.
//! - **A verdict is taken only in `handle_timeout`**, so what a peer sent is always looked at
//!   before it is judged.
//! - **A dead peer removes itself**: with its [`Event::Dead`] and [`Action::Close`] it leaves the
//!   monitor, and [`Monitor::remove`] returns `None` for it afterwards.
//! - Stale [`PeerId`]s (removed or dead peers) are ignored everywhere.
//!
//! # The liveness rules
//!
//! A peer silent for `interval` (± `jitter`, drawn uniformly per peer per cycle by a seeded
//! hash) is sent a ping with a fresh sequence number. A new peer's **first** window (until it
//! is first heard from) is drawn uniformly over `(0, interval × (1 + jitter)]` instead, so a
//! burst of connects does not become a burst of pings one interval later; an early ping of a
//! just-connected peer only costs a ping, and the longest window is unchanged. With
//! `jitter = 0.0` nothing is drawn: every window, the first included, is exactly `interval`. Any sign of life answers it (the matching
//! pong also gives an RTT). The pings and the verdict of one silence cycle sit on a fixed grid
//! of ticks (see `peer.rs`): with `S` the last sign of life, `I` the drawn interval, `T` the
//! timeout in ticks and `M` = `max_missed`,
//!
//! ```text
//! G = ceil((S + I) / tick);   ping k due at G + k·T (k < M);   verdict due at
//! max(G + M·T, ceil(last ping's real send + timeout))
//! ```
//!
//! Each grid step reached in silence counts a miss ([`Event::Missed`]) and sends the next ping;
//! the `M`-th miss is the verdict: dead. So a peer is convicted only when (a) it has been
//! silent for its whole drawn interval plus `M × timeout`, measured on the grid, (b) its last
//! ping has been outstanding for at least `timeout` since it really left, and (c) `M` pings in
//! a row went out without any sign of life in between.
//!
//! The grid is what keeps a late loop's lateness from accumulating: the steps are due where
//! the grid says, not `timeout` after the (late) real send of the previous ping. Only the last
//! ping's window is stretched to its full `timeout` from its real send, because that is the
//! window that convicts. An intermediate ping sent late by `L` is followed by the next one
//! after `timeout − L`; its answer, if it comes later, is still a sign of life (it just gives no
//! RTT), so the shorter slot convicts nobody.
//!
//! # The bound
//!
//! With `timeout` a multiple of `tick` (it is rounded up to one otherwise):
//!
//! - **On-time driver** (`handle_timeout` called at `poll_timeout()`, as in virtual time): a
//!   peer silent since `t` is declared dead **no later than**
//!   `t + interval × (1 + jitter) + max_missed × timeout + one tick`, and no earlier than
//!   `t + interval × (1 − jitter) + max_missed × timeout` (for a peer never heard from since
//!   it was added at `t`, only `t + max_missed × timeout`, its first window being spread). The one tick is the rounding of `G`;
//!   every ping then leaves on a tick boundary, so the verdict is exactly `G + M·T`.
//! - **Late driver** (a real loop that runs each due timer up to `L` late, `L < timeout`): the
//!   verdict comes no later than that bound **+ `L_v` + `ceil_tick(L_p)`**, where `L_v` is the
//!   lateness of the verdict's own wake-up and `L_p` that of the wake-up that sent the last
//!   ping (whose full window the verdict waits for, rounded up to a tick). That is at most
//!   `bound + L + ceil_tick(L)`, i.e. `bound + L + one tick` for a loop late by less than a
//!   tick: once, whatever `max_missed` is. It is never earlier than the on-time floor.
//! - A peer that answers every ping within `timeout` of its real send (its answer handled at
//!   or before the verdict, i.e. read in the same turn or earlier) is **never** declared dead,
//!   however late the loop runs: the verdict is never due before the last ping's full window.
//! - With [`Monitor::set_read_before_verdict`] on, a conviction waits for one read of the
//!   peer's socket in the same turn (a second `handle_timeout` call): the bounds above hold
//!   unchanged, plus the time of that read.
//!
//! `tests/timeline_late_loop.rs` and `tests/timeline_props.rs` check these in virtual time,
//! the latter with a driver that wakes up late at random.
//!
//! # The ping-flood policy
//!
//! Answering pings costs the loop, so a peer may send at most
//! [`Config::max_pings_per_interval`] (default 256) in one silence cycle (between two firings
//! of its timer, about one `interval`). Each time it passes that it earns a strike and the
//! count starts over; at [`Config::max_ping_strikes`] (default 2) it is refused with
//! [`Action::PingFlood`] (the shell sends "too many pings" in the peer's format and closes), as
//! gRPC servers answer `too_many_pings`. A cycle that ends without a strike clears them. A peer
//! pinging once per an interval of its own reaches the cap only if that interval is over 256
//! times shorter than ours. The count lives in padding of the peer's slot: no memory per peer.
//!
//! # The local-pause guard
//!
//! Every timer knows the tick it was due at. If `handle_timeout` runs a step more than the
//! peer's `timeout` after it was due — the gap between that step (or the previous call, if
//! later) and `now` is longer than `timeout` — the loop itself was not running across it
//! (process stopped, machine overloaded), and the peer's silence may be ours: our ping may
//! have left late, its pong may still be in flight. That step is *forgiven*: no miss is
//! counted, the peer gets a fresh ping and a fresh full `timeout` to answer it. Pings that
//! merely became due during the gap just go out (a ping convicts nobody). A call that runs any
//! timer more than the [`Config`]'s `timeout` late also reports [`Event::LocalPause`].
//!
//! A step that runs so late that the next grid slot has passed (a stall of `timeout` or more)
//! breaks the grid: the rest of that cycle is chained, each step `timeout` after the real send
//! of its ping, so a resumed loop sends no burst of pings and each keeps a full window. A
//! stalled, really dead peer is then convicted `(max_missed − missed) × timeout` (plus a tick)
//! after the loop resumes, `missed` being its count of misses before the stall.
//!
//! Together with the call order (sockets are read before `handle_timeout`, so every pong that
//! reached us during the stall is counted first), nobody is convicted for a stall of the loop.
//! Lateness is measured against each timer's true deadline, not against `poll_timeout()`
//! (which may be earlier than any deadline), so a prompt loop never trips the guard.
//!
//! # Memory per connection
//!
//! One slot of the peer table (88 bytes with an 8-byte `C`) plus one wheel timer (24-byte slab
//! entry, 4-byte generation and a 4-byte list link): [`Monitor::bytes_per_peer`] = 120 bytes, asserted in this
//! module's tests. Nothing else grows with the number of peers, except the action and event
//! queues, which hold what one `handle_timeout` produced until they are drained.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use wheelbeat_heartbeat::monitor::{Action, Config, Monitor};
//! use wheelbeat_heartbeat::protocol::Message;
//!
//! let t0 = Instant::now();
//! let config = Config { jitter: 0.0, ..Config::default() };
//! let mut monitor: Monitor<u32> = Monitor::new(config, t0);
//! let peer = monitor.add(t0, 7);
//!
//! // Run the loop in virtual time: sleep until poll_timeout(), handle it, drain actions.
//! let (t, seq) = loop {
//!     let t = monitor.poll_timeout().unwrap();
//!     monitor.handle_timeout(t);
//!     if let Some(Action::SendPing { conn: 7, seq, .. }) = monitor.poll_action() {
//!         break (t, seq);
//!     }
//! };
//! // Silent for the 30 s interval: pinged exactly then.
//! assert_eq!(t, t0 + Duration::from_secs(30));
//!
//! // Its pong arrives 20 ms later: an RTT sample, and the peer is quiet again.
//! monitor.handle_message(peer, t + Duration::from_millis(20), &Message::Pong(seq));
//! assert!(monitor.poll_event().is_some());
//! ```

mod config;
mod output;
mod peer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wheelbeat_timer::{Expired, TickClock, Wheel};

pub use config::{Config, ConfigError, PeerConfig};
pub use output::{Action, DeadReason, Event, Stats};

use crate::protocol::Message;
use peer::{Peer, Settings, draw_first_interval, flag};

/// A generation-checked handle to a peer of a [`Monitor`]. Once the peer is removed or dead, the
/// handle is stale and ignored, even if its slot is reused by a new peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    index: u32,
    generation: u32,
}

impl PeerId {
    /// The slot index (dense, reused after removal): handy as a table index for the caller.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Index and generation in one word: the per-peer key of the jitter hash.
    fn key(&self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }
}

/// One entry of the peer table.
#[derive(Debug)]
struct Slot<C> {
    generation: u32,
    peer: Option<Peer<C>>,
}

/// The liveness core. See the [module docs](self) for the rules, the call order and the bound.
///
/// `C` is a caller tag stored per peer (for instance the shell's connection key) and returned
/// in every [`Action`] and [`Event`].
#[derive(Debug)]
pub struct Monitor<C: Copy = ()> {
    config: Config,
    defaults: Settings,
    clock: TickClock,
    tick_ns: u64,
    pause_ticks: u64,
    wheel: Wheel<PeerId>,
    slots: Vec<Slot<C>>,
    free: Vec<u32>,
    actions: VecDeque<Action<C>>,
    events: VecDeque<Event<C>>,
    stats: Stats,
    /// The tick of the previous `handle_timeout` call (or of creation).
    last_call: u64,
    /// How late, in nanoseconds, the latest timer run by the last `handle_timeout` call was
    /// against its own deadline; `None` if that call ran none.
    last_lateness_ns: Option<u64>,
    /// Ticks the driver reported the loop not running since the last call that ran
    /// everything due ([`Monitor::report_stall`]); `None` until the first report, when every
    /// late call counts as a pause.
    stall_ticks: Option<u64>,
    /// Ask the driver to read a peer's socket before its verdict ([`Action::ReadFirst`]).
    read_first: bool,
    /// Peers whose verdict waits for the read asked for: judged at the start of the next
    /// `handle_timeout` call. They have no timer meanwhile.
    awaiting_read: Vec<PeerId>,
}

impl<C: Copy> Monitor<C> {
    /// A monitor with no peers, whose tick 0 is `now`.
    ///
    /// # Panics
    /// If `config` is invalid (see [`Config::validate`]).
    pub fn new(config: Config, now: Instant) -> Self {
        Self::with_capacity(config, now, 0)
    }

    /// Like [`new`](Self::new), with room for `capacity` peers before reallocating.
    ///
    /// # Panics
    /// If `config` is invalid (see [`Config::validate`]).
    pub fn with_capacity(config: Config, now: Instant, capacity: usize) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid heartbeat config: {e}");
        }
        let clock = TickClock::new(now, config.tick);
        let tick_ns = clock.tick().as_nanos() as u64;
        let defaults = resolve(&config, &PeerConfig::default(), &clock);
        let pause_ticks = defaults.timeout_ticks;
        Monitor {
            config,
            defaults,
            clock,
            tick_ns,
            pause_ticks,
            wheel: Wheel::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_call: 0,
            last_lateness_ns: None,
            stall_ticks: None,
            read_first: false,
            awaiting_read: Vec::new(),
        }
    }

    /// The settings this monitor was created with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock mapping instants to the wheel's ticks.
    pub fn clock(&self) -> &TickClock {
        &self.clock
    }

    /// Starts monitoring a peer, first seen at `now`, with the monitor's settings. Its first
    /// ping is due after a silence drawn uniformly over `(0, interval × (1 + jitter)]` (exactly
    /// `interval` with no jitter); later ones after `interval` ± jitter.
    pub fn add(&mut self, now: Instant, conn: C) -> PeerId {
        let settings = self.defaults;
        self.insert(now, conn, settings)
    }

    /// Like [`add`](Self::add), with per-peer overrides.
    ///
    /// # Panics
    /// If the overrides make an invalid configuration (see [`Config::validate_peer`]).
    pub fn add_with(&mut self, now: Instant, conn: C, overrides: PeerConfig) -> PeerId {
        if let Err(e) = self.config.validate_peer(&overrides) {
            panic!("invalid heartbeat peer config: {e}");
        }
        let settings = resolve(&self.config, &overrides, &self.clock);
        self.insert(now, conn, settings)
    }

    fn insert(&mut self, now: Instant, conn: C, settings: Settings) -> PeerId {
        let now_ns = self.nanos(now);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 peers");
                self.slots.push(Slot {
                    generation: 0,
                    peer: None,
                });
                index
            }
        };
        let id = PeerId {
            index,
            generation: self.slots[index as usize].generation,
        };
        let interval = draw_first_interval(self.config.seed, id.key(), &settings, now_ns);
        let due = now_ns.saturating_add(interval).div_ceil(self.tick_ns);
        let timer = self.wheel.insert(due, id);
        self.slots[index as usize].peer = Some(Peer::new(conn, now_ns, settings, timer));
        self.stats.added += 1;
        self.stats.peers += 1;
        id
    }

    /// Changes `peer`'s settings (say once the application has read the keep-alive its
    /// protocol announced, MQTT's CONNECT): `overrides` replace the monitor's defaults for it,
    /// as in [`add_with`](Self::add_with). A new silence cycle starts from the peer's last
    /// sign of life (an outstanding ping is forgotten, its answer still counts as a sign of
    /// life), so the new window applies at once. An invalid combination is returned as an
    /// error and changes nothing; a stale `peer` is `Ok` and ignored.
    pub fn reconfigure(
        &mut self,
        peer: PeerId,
        now: Instant,
        overrides: &PeerConfig,
    ) -> Result<(), ConfigError> {
        self.config.validate_peer(overrides)?;
        let settings = resolve(&self.config, overrides, &self.clock);
        let now_tick = self.clock.now_to_tick(now);
        let tick_ns = self.tick_ns;
        let seed = self.config.seed;
        let Some(p) = peer_mut(&mut self.slots, peer) else {
            return Ok(());
        };
        self.wheel.discard(p.timer);
        p.settings = settings;
        p.missed = 0;
        p.flags &= flag::UNREAD;
        let due = p.ping_due_tick(p.window_ns(seed, peer.key()), tick_ns);
        p.timer = self.wheel.insert(due.max(now_tick + 1), peer);
        Ok(())
    }

    /// The sequence number of `peer`'s outstanding (or last) ping, for formats whose pongs
    /// carry none: such a pong answers the ping outstanding. `None` if stale or never pinged.
    pub fn last_ping_seq(&self, peer: PeerId) -> Option<u64> {
        self.peer(peer).map(|p| p.seq).filter(|&s| s != 0)
    }

    /// Stops monitoring `peer` and returns its tag; `None` if the id is stale (already removed,
    /// or declared dead by the monitor). Pings and pongs still queued for it are dropped.
    pub fn remove(&mut self, peer: PeerId) -> Option<C> {
        let p = self.take(peer)?;
        self.wheel.discard(p.timer);
        self.stats.removed += 1;
        Some(p.conn)
    }

    /// The number of monitored peers.
    pub fn len(&self) -> usize {
        self.stats.peers
    }

    /// Whether no peer is monitored.
    pub fn is_empty(&self) -> bool {
        self.stats.peers == 0
    }

    /// Whether `peer` is monitored (not stale).
    pub fn contains(&self, peer: PeerId) -> bool {
        self.peer(peer).is_some()
    }

    /// The tag of `peer`; `None` if stale.
    pub fn conn(&self, peer: PeerId) -> Option<C> {
        self.peer(peer).map(|p| p.conn)
    }

    /// When `peer` last gave a sign of life; `None` if stale.
    pub fn last_seen(&self, peer: PeerId) -> Option<Instant> {
        self.peer(peer)
            .map(|p| self.clock.origin() + Duration::from_nanos(p.last_seen))
    }

    /// How many pings in a row `peer` has left unanswered so far; `None` if stale.
    pub fn missed(&self, peer: PeerId) -> Option<u32> {
        self.peer(peer).map(|p| p.missed)
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Feeds a frame received from `peer` at `now`. O(1), no wheel operation: every frame is a
    /// sign of life (data only when `data_counts_as_liveness`), a [`Message::Ping`] queues an
    /// [`Action::SendPong`], a [`Message::Pong`] matching the outstanding ping queues an
    /// [`Event::Rtt`]. A stale `peer` is ignored.
    ///
    /// `now` is the time of the loop turn that read the frame. Each ping queues one pong, so
    /// the action queue grows with what was read in this turn (which the shell's read cap
    /// bounds) and empties when drained.
    pub fn handle_message(&mut self, peer: PeerId, now: Instant, msg: &Message<'_>) {
        let now_ns = self.nanos(now);
        let Some(p) = peer_mut(&mut self.slots, peer) else {
            self.stats.stale_ignored += 1;
            return;
        };
        match *msg {
            Message::Ping(seq) => {
                self.stats.pings_received += 1;
                p.on_alive(now_ns);
                let cap = self.config.max_pings_per_interval;
                if cap > 0 {
                    p.pings = p.pings.saturating_add(1);
                    if p.pings > cap {
                        // A strike; the count starts over, so each strike takes `cap` more.
                        p.pings = 0;
                        p.strikes = p.strikes.saturating_add(1);
                        p.flags |= flag::STRUCK;
                        if p.strikes >= self.config.max_ping_strikes {
                            self.evict_flooder(peer);
                            return;
                        }
                    }
                }
                self.actions.push_back(Action::SendPong {
                    peer,
                    conn: p.conn,
                    seq,
                });
            }
            Message::Pong(seq) => {
                self.stats.pongs_received += 1;
                match p.match_pong(seq) {
                    Some(sent) => self.events.push_back(Event::Rtt {
                        peer,
                        conn: p.conn,
                        rtt: Duration::from_nanos(now_ns.saturating_sub(sent)),
                    }),
                    None => self.stats.pongs_unmatched += 1,
                }
                p.on_alive(now_ns);
            }
            Message::Data(_) => {
                self.stats.data_received += 1;
                if p.settings.data_live {
                    p.on_alive(now_ns);
                }
            }
        }
    }

    /// Runs the timers due at `now`: pings due, answers overdue, deaths, with the local-pause
    /// guard (see the [module docs](self)). Call it when `now >= poll_timeout()`, after feeding
    /// the frames read in this turn; calling it earlier is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_bounded(now, usize::MAX);
    }

    /// Like [`handle_timeout`](Self::handle_timeout), but does at most `max_timers` units of
    /// timer work — a timer expiry, or the wheel moving one timer down a level (a lazily
    /// re-armed timer, or one filed far ahead) — so that one turn of the loop stays short even
    /// when very many timers are due or cascade at once (after a stall, or peers added together
    /// without jitter). Returns `true` when everything due at `now` was handled; otherwise
    /// `poll_timeout()` stays at or before `now` and the rest runs in the next calls, with the
    /// same local-pause verdicts as if it had run in this one.
    pub fn handle_timeout_bounded(&mut self, now: Instant, max_timers: usize) -> bool {
        let now_tick = self.clock.now_to_tick(now);
        let now_ns = self.nanos(now);
        let mut worst_late = 0;
        let mut budget = max_timers;
        self.last_lateness_ns = None;
        self.judge_after_read(now_tick, now_ns);
        let mut drained = true;
        loop {
            if budget == 0 {
                drained = self
                    .wheel
                    .next_deadline()
                    .is_none_or(|next| next > now_tick);
                break;
            }
            budget -= 1;
            let expired = if max_timers == usize::MAX {
                self.wheel.poll(now_tick)
            } else {
                // One unit of wheel work per step, so that the budget bounds the level moves
                // too, not just the expiries (`poll` would cascade without limit).
                self.wheel.advance_bounded(now_tick, 1).next()
            };
            let Some(expired) = expired else {
                if max_timers != usize::MAX
                    && self
                        .wheel
                        .next_deadline()
                        .is_some_and(|next| next <= now_tick)
                {
                    // The unit went into moving a timer down a level: more may be due.
                    continue;
                }
                break;
            };
            // How late this call is for this timer: it was due at `expired.deadline`, and the
            // last call that ran everything due (`last_call`, earlier than the deadline or it
            // would have fired then) did not run it. Once the driver reports stalls, only the
            // time the loop really was not running counts towards the pause guard: its own
            // busy turns are lateness, never a pause.
            let late = now_tick.saturating_sub(expired.deadline.max(self.last_call));
            let late = self.stall_ticks.map_or(late, |stall| late.min(stall));
            worst_late = worst_late.max(late);
            let late_ns = now_ns.saturating_sub(expired.deadline.saturating_mul(self.tick_ns));
            self.last_lateness_ns = Some(self.last_lateness_ns.map_or(late_ns, |l| l.max(late_ns)));
            self.fire(expired, now_tick, now_ns, late);
        }
        if drained {
            // Only a call that left nothing due moves the reference point of lateness, so a
            // backlog worked off over several bounded calls is judged as one late call.
            self.last_call = self.last_call.max(now_tick);
            if let Some(stall) = &mut self.stall_ticks {
                *stall = 0;
            }
        }
        if worst_late > self.pause_ticks {
            self.stats.local_pauses += 1;
            self.events.push_back(Event::LocalPause {
                stalled_for: Duration::from_nanos(worst_late.saturating_mul(self.tick_ns)),
            });
        }
        drained
    }

    /// Tells the monitor whether the driver holds bytes from `peer` that it has not read yet
    /// (a readiness event not served yet, or a read cut short by its budget). While it does,
    /// no miss and no verdict is pronounced for the peer: a step that falls due is looked at
    /// again one tick later. A peer is never convicted while its answer sits unread in its
    /// socket; the cost is that a verdict waits for the loop's read lateness, which the
    /// driver's turn budget bounds. A stale `peer` is ignored.
    pub fn set_unread(&mut self, peer: PeerId, unread: bool) {
        if let Some(p) = peer_mut(&mut self.slots, peer) {
            if unread {
                p.flags |= flag::UNREAD;
            } else {
                p.flags &= !flag::UNREAD;
            }
        }
    }

    /// Turns on the read before a verdict: when a peer is about to be convicted (its last
    /// miss, or a passive window's end) and nothing says bytes wait unread, the monitor
    /// emits [`Action::ReadFirst`] and holds the verdict; the driver reads the peer's
    /// socket, feeds what it found, and calls [`handle_timeout`](Self::handle_timeout)
    /// again ([`poll_timeout`](Self::poll_timeout) says "now" until it does). That call
    /// takes the held verdicts first: a peer heard from lives on, one whose bytes are still
    /// unread waits for them, any other is convicted, at that call's `now`.
    ///
    /// [`set_unread`](Self::set_unread) covers what the driver knows is waiting (an event
    /// seen, a read cut short). This covers what it cannot know: an event the kernel holds
    /// but the driver has not polled yet (full event batches under load). The cost is one
    /// read of a dead peer's socket and a second `handle_timeout` call in the same turn;
    /// the bound is unchanged. Off by default: a virtual-time driver holds no sockets.
    pub fn set_read_before_verdict(&mut self, on: bool) {
        self.read_first = on;
    }

    /// Reports that the loop thread was not running (stopped, frozen, not scheduled) for
    /// `not_running` since the previous report. Once a driver reports at all, the local-pause
    /// guard forgives a verdict only for such time, never for the loop's own busy turns: a loop
    /// late because it was computing convicts on its grid, late by its lateness. A driver
    /// that never calls this keeps the older rule (any lateness over `timeout` is a pause),
    /// which is what virtual-time drivers want.
    ///
    /// The driver measures it as the wall-clock time outside `poll` in which the thread used
    /// no CPU, plus the time `poll` overslept its timeout.
    pub fn report_stall(&mut self, not_running: Duration) {
        let ticks =
            u64::try_from(not_running.as_nanos() / u128::from(self.tick_ns)).unwrap_or(u64::MAX);
        self.stall_ticks = Some(self.stall_ticks.unwrap_or(0).saturating_add(ticks));
    }

    /// How late the last [`handle_timeout`](Self::handle_timeout) call ran the most overdue
    /// timer it fired, measured against that timer's own deadline (not against
    /// [`poll_timeout`](Self::poll_timeout), which is only a lower bound: a coarse wheel slot's
    /// start). `None` if the call fired no timer. This is the loop's real lateness, the `L` of
    /// the bound in the [module docs](self).
    pub fn last_lateness(&self) -> Option<Duration> {
        self.last_lateness_ns.map(Duration::from_nanos)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next; `None` when no peer
    /// is monitored. May be in the past (call it now), and may be earlier than strictly needed
    /// (a timer re-filed lazily), never later.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.awaiting_read.is_empty() {
            // Verdicts wait for the read asked for: call again as soon as it is done.
            return Some(self.clock.tick_to_instant(self.last_call));
        }
        self.wheel
            .next_deadline()
            .map(|tick| self.clock.tick_to_instant(tick))
    }

    /// The next action for the shell, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action<C>> {
        while let Some(action) = self.actions.pop_front() {
            match action {
                // A peer removed since the ping, pong or read was queued needs none.
                Action::SendPing { peer, .. }
                | Action::SendPong { peer, .. }
                | Action::ReadFirst { peer, .. }
                    if !self.contains(peer) => {}
                _ => return Some(action),
            }
        }
        None
    }

    /// The next event, in the order they arose.
    pub fn poll_event(&mut self) -> Option<Event<C>> {
        self.events.pop_front()
    }

    /// Bytes held by the monitor's own tables (peer table, free list, queues), excluding the
    /// timer wheel and the struct itself.
    pub fn table_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<C>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.actions.capacity() * std::mem::size_of::<Action<C>>()
            + self.events.capacity() * std::mem::size_of::<Event<C>>()
    }

    /// Bytes held by the monitor in total: its own tables plus the timer wheel
    /// ([`Wheel::memory_bytes`]), excluding the struct itself.
    pub fn memory_bytes(&self) -> usize {
        self.table_bytes() + self.wheel.memory_bytes()
    }

    /// The size of one entry of the peer table: the per-connection memory of the monitor
    /// itself, not counting the wheel entry.
    pub const fn slot_size() -> usize {
        std::mem::size_of::<Slot<C>>()
    }

    /// The steady-state memory of one peer: its peer-table slot plus its one timer (the
    /// wheel's slab entry, [`Wheel::ENTRY_SIZE`], and its 4-byte link in a wheel slot list).
    /// 120 bytes with an 8-byte `C`. Allocator overhead and spare capacity come on top; the
    /// `simulate` example measures the whole by RSS.
    pub const fn bytes_per_peer() -> usize {
        Self::slot_size() + Wheel::<PeerId>::ENTRY_SIZE + std::mem::size_of::<u32>()
    }

    /// Removes a peer that flooded pings past its last strike (its timer is still filed) and
    /// queues [`Action::PingFlood`]. Not a death: no [`Event::Dead`].
    fn evict_flooder(&mut self, id: PeerId) {
        let Some(p) = self.take(id) else { return };
        self.wheel.discard(p.timer);
        self.stats.ping_floods += 1;
        self.actions.push_back(Action::PingFlood {
            peer: id,
            conn: p.conn,
        });
    }

    /// One timer of `expired.value` fired at `now_tick`. See the state table in `peer.rs`.
    fn fire(&mut self, expired: Expired<PeerId>, now_tick: u64, now_ns: u64, late: u64) {
        let id = expired.value;
        self.stats.timer_fires += 1;
        let tick_ns = self.tick_ns;
        let seed = self.config.seed;
        let Some(p) = peer_mut(&mut self.slots, id) else {
            // Cannot happen (a removed peer's timer is cancelled); ignore rather than panic.
            return;
        };
        if p.has(flag::HEARD) {
            // The ping-flood count is per cycle; a cycle that ends without a strike clears them.
            if !p.has(flag::STRUCK) {
                p.strikes = 0;
            }
            p.pings = 0;
            // Heard from since (idle or pinged): a new cycle, whose grid starts from `last_seen`
            // with a fresh jitter draw (a new `last_seen` hashes to a new draw).
            // Also ends the first cycle (FIRST): later ones draw interval ± jitter. UNREAD is
            // the socket's, not the cycle's.
            p.flags &= flag::UNREAD;
            let interval = p.window_ns(seed, id.key());
            let due = p.ping_due_tick(interval, tick_ns);
            if due > now_tick {
                p.timer = self.wheel.insert(due, id);
                self.stats.rearms += 1;
                return;
            }
            if !p.settings.passive {
                self.send_ping(id, now_tick, now_ns);
                return;
            }
            // Passive, and the new window has elapsed already (the last frame came less than
            // a tick after the one the timer was filed for, or the loop is late): the peer
            // has been silent for a whole window. Judged below like any passive window's end,
            // never pinged.
        }
        if !p.has(flag::PINGED) {
            // Idle and nothing heard since the timer was filed at the cycle's `G`: the silence
            // window has fully elapsed.
            if p.settings.passive {
                // Passive: the window is the verdict. Not while bytes wait unread, and not
                // for a stall of the loop itself (a fresh `timeout` of grace instead).
                if p.has(flag::UNREAD) {
                    self.stats.deferred += 1;
                    p.timer = self.wheel.insert(now_tick + 1, id);
                } else if late > p.settings.timeout_ticks {
                    self.stats.forgiven += 1;
                    p.timer = self.wheel.insert(now_tick + p.settings.timeout_ticks, id);
                } else if self.read_first && !p.has(flag::READ_ASKED) {
                    self.ask_read_first(id);
                } else {
                    self.kill(id, now_ns, DeadReason::Silent);
                }
                return;
            }
            // Active: ping 0 of the cycle.
            self.send_ping(id, now_tick, now_ns);
            return;
        }
        let grid_start = p.ping_due_tick(p.window_ns(seed, id.key()), tick_ns);
        let due = p.step_tick(grid_start, tick_ns);
        if now_tick < due {
            // Filed early because interval < timeout, and nothing heard yet. Look again after
            // at most the shortest silence window: a frame arriving before the step then starts
            // its new cycle on time, instead of waiting for the step (which would stretch the
            // bound by timeout - interval).
            let recheck = now_tick + p.settings.min_interval_ticks(tick_ns);
            p.timer = self.wheel.insert(due.min(recheck), id);
            return;
        }
        if p.has(flag::UNREAD) {
            // The peer's bytes (perhaps the very answer) wait unread in the driver's socket:
            // judging now could convict a peer that did answer. Look again one tick later; the
            // driver reads carried-over sockets first, so this waits only for the loop's own
            // read lateness.
            self.stats.deferred += 1;
            p.timer = self.wheel.insert(now_tick + 1, id);
            return;
        }
        // Lateness of the step itself (this expiry may be an earlier re-check).
        let late = late.min(now_tick - due);
        if late > p.settings.timeout_ticks {
            // The local-pause guard: this step passed more than a timeout ago without the loop
            // running, so the silence may be ours. No miss; a fresh ping and a fresh full window
            // instead (the grid is broken, so `send_ping` chains the rest of the cycle).
            self.stats.forgiven += 1;
            self.send_ping(id, now_tick, now_ns);
            return;
        }
        if self.read_first && p.missed + 1 >= p.settings.max_missed && !p.has(flag::READ_ASKED) {
            // The miss that would convict: before it counts, the driver reads the socket
            // (an answer may sit there with its event not polled yet). Judged at the next
            // call, right after that read.
            self.ask_read_first(id);
            return;
        }
        p.missed += 1;
        let missed = p.missed;
        let conn = p.conn;
        self.stats.missed += 1;
        self.events.push_back(Event::Missed {
            peer: id,
            conn,
            missed,
        });
        if missed >= p.settings.max_missed {
            self.kill(id, now_ns, DeadReason::MissedPings { missed });
        } else {
            self.send_ping(id, now_tick, now_ns);
        }
    }

    /// Holds the verdict due for `id` and asks the driver to read its socket; the next
    /// `handle_timeout` call judges it ([`judge_after_read`](Self::judge_after_read)).
    fn ask_read_first(&mut self, id: PeerId) {
        let Some(p) = peer_mut(&mut self.slots, id) else {
            return;
        };
        // No timer while it waits: its expiry just fired, and `poll_timeout` says "now"
        // until the verdict is taken.
        p.flags |= flag::READ_ASKED;
        self.awaiting_read.push(id);
        self.stats.read_first += 1;
        self.actions.push_back(Action::ReadFirst {
            peer: id,
            conn: p.conn,
        });
    }

    /// Takes the verdicts held for a read ([`Action::ReadFirst`]), with what the read found:
    /// a peer heard from starts a new cycle, one with bytes still unread waits for them, any
    /// other is judged as its step was, now final. As many as the previous call asked for.
    fn judge_after_read(&mut self, now_tick: u64, now_ns: u64) {
        let mut awaiting = std::mem::take(&mut self.awaiting_read);
        for id in awaiting.drain(..) {
            // Skipped if gone, or re-armed since (its heartbeat settings were changed).
            let Some(p) = peer_mut(&mut self.slots, id) else {
                continue;
            };
            if !p.has(flag::READ_ASKED) {
                continue;
            }
            let expired = Expired {
                key: p.timer,
                deadline: now_tick,
                value: id,
            };
            // The step's lateness was judged when it fell due (the local-pause guard), so
            // none is counted again.
            self.fire(expired, now_tick, now_ns, 0);
        }
        if self.awaiting_read.is_empty() {
            // Keep the allocation.
            self.awaiting_read = awaiting;
        }
    }

    /// Emits ping number `missed` of the peer's cycle and files its next step.
    fn send_ping(&mut self, id: PeerId, now_tick: u64, now_ns: u64) {
        let tick_ns = self.tick_ns;
        let seed = self.config.seed;
        let Some(p) = peer_mut(&mut self.slots, id) else {
            return;
        };
        let seq = p.start_ping(now_ns);
        let grid_start = p.ping_due_tick(p.window_ns(seed, id.key()), tick_ns);
        if p.step_tick(grid_start, tick_ns) <= now_tick {
            // This ping went out so late that its successor's grid slot has passed already
            // (a stall of at least a timeout): following the grid would fire the next steps
            // at once. Chain the rest of the cycle instead, each ping with its full window.
            p.flags |= flag::CHAINED;
        }
        // The next step, or an earlier re-check when interval < timeout (see `fire`).
        let due = p.step_tick(grid_start, tick_ns);
        let recheck = now_tick + p.settings.min_interval_ticks(tick_ns);
        p.timer = self.wheel.insert(due.min(recheck), id);
        self.actions.push_back(Action::SendPing {
            peer: id,
            conn: p.conn,
            seq,
        });
        self.stats.pings_sent += 1;
    }

    /// Declares a peer dead: removes it, queues its Close and Dead. Its timer already fired.
    fn kill(&mut self, id: PeerId, now_ns: u64, reason: DeadReason) {
        let Some(p) = self.take(id) else { return };
        self.stats.dead += 1;
        self.actions.push_back(Action::Close {
            peer: id,
            conn: p.conn,
            reason,
        });
        self.events.push_back(Event::Dead {
            peer: id,
            conn: p.conn,
            reason,
            silent_for: Duration::from_nanos(now_ns.saturating_sub(p.last_seen)),
        });
    }

    /// Frees a live peer's slot (its generation moves on) and returns the peer.
    fn take(&mut self, id: PeerId) -> Option<Peer<C>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let p = slot.peer.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.stats.peers -= 1;
        Some(p)
    }

    fn peer(&self, id: PeerId) -> Option<&Peer<C>> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.peer.as_ref()
    }

    /// Nanoseconds since the origin (saturating: instants before it count as 0).
    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(
            now.saturating_duration_since(self.clock.origin())
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }
}

fn peer_mut<C>(slots: &mut [Slot<C>], id: PeerId) -> Option<&mut Peer<C>> {
    let slot = slots.get_mut(id.index as usize)?;
    if slot.generation != id.generation {
        return None;
    }
    slot.peer.as_mut()
}

/// Resolves a peer's settings (already validated).
fn resolve(config: &Config, overrides: &PeerConfig, clock: &TickClock) -> Settings {
    let interval = overrides.interval.unwrap_or(config.interval);
    let timeout = overrides.timeout.unwrap_or(config.timeout);
    let passive = overrides.passive.unwrap_or(false);
    // A passive window is exact: never a verdict before `interval` of silence.
    let jitter = if passive {
        0.0
    } else {
        overrides.jitter.unwrap_or(config.jitter)
    };
    // Validation caps durations at 2^62 ns, so these conversions are exact.
    let interval_ns = interval.as_nanos() as u64;
    // Truncated, so the longest window never exceeds interval * (1 + jitter).
    let jitter_ns = ((interval_ns as f64) * jitter) as u64;
    Settings {
        interval_ns,
        jitter_ns: jitter_ns.min(interval_ns.saturating_sub(1)),
        timeout_ticks: clock.duration_to_ticks(timeout).max(1),
        max_missed: overrides.max_missed.unwrap_or(config.max_missed),
        data_live: overrides
            .data_counts_as_liveness
            .unwrap_or(config.data_counts_as_liveness),
        passive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_peer_state_fits_the_memory_budget() {
        // The peer table entry with a usize-sized tag, as the mio shell uses.
        assert_eq!(Monitor::<usize>::slot_size(), 88);
        assert!(Monitor::<()>::slot_size() <= 88);
        // Including its timer: well under the 256-byte budget.
        assert_eq!(Monitor::<usize>::bytes_per_peer(), 120);
        assert!(Monitor::<usize>::bytes_per_peer() <= 256);
    }

    #[test]
    fn memory_bytes_grows_by_about_bytes_per_peer() {
        let t0 = Instant::now();
        let n = 10_000;
        let mut m: Monitor<usize> = Monitor::with_capacity(Config::default(), t0, n);
        for i in 0..n {
            m.add(t0, i);
        }
        let per_peer = m.memory_bytes() / n;
        assert!(per_peer >= Monitor::<usize>::bytes_per_peer(), "{per_peer}");
        assert!(per_peer <= 256, "{per_peer}");
    }

    #[test]
    fn bounded_timeout_counts_level_moves_against_its_budget() {
        // 2,000 peers due together at tick 3,000: the wheel files them on level 1 and must move
        // each down to level 0 before it expires, 4,000 units of work in all. A budget of 7
        // units per call must therefore take at least 4,000 / 7 calls (counting expiries
        // alone would finish in 286) and run at most 7 expiries per call.
        let t0 = Instant::now();
        let config = Config {
            jitter: 0.0,
            ..Config::default()
        };
        let mut bounded: Monitor<usize> = Monitor::new(config.clone(), t0);
        let mut whole: Monitor<usize> = Monitor::new(config, t0);
        for i in 0..2_000 {
            bounded.add(t0, i);
            whole.add(t0, i);
        }
        let now = t0 + Duration::from_secs(30);
        whole.handle_timeout(now);
        let mut calls = 0;
        loop {
            let before = bounded.stats().timer_fires;
            let done = bounded.handle_timeout_bounded(now, 7);
            assert!(bounded.stats().timer_fires - before <= 7);
            calls += 1;
            if done {
                break;
            }
            assert!(bounded.poll_timeout().is_some_and(|t| t <= now));
        }
        assert!(calls * 7 >= 4_000, "{calls} calls");
        assert_eq!(bounded.stats(), whole.stats());
        assert_eq!(bounded.stats().pings_sent, 2_000);
    }

    #[test]
    fn jitter_window_never_exceeds_the_bound() {
        let config = Config {
            jitter: 0.1,
            ..Config::default()
        };
        let clock = TickClock::new(Instant::now(), config.tick);
        let s = resolve(&config, &PeerConfig::default(), &clock);
        assert_eq!(s.interval_ns, 30_000_000_000);
        assert_eq!(s.jitter_ns, 3_000_000_000);
        let (mut low, mut high, mut sum) = (0, 0, 0u128);
        let n = 100_000u64;
        for last_seen in 0..n {
            let i = peer::draw_interval(7, 3 << 32, &s, last_seen * 1_000_003);
            assert!((27_000_000_000..=33_000_000_000).contains(&i));
            low += u64::from(i < 27_600_000_000);
            high += u64::from(i > 32_400_000_000);
            sum += u128::from(i);
        }
        // Roughly uniform: each outer tenth of the span holds about a tenth of the draws, and
        // the mean is the configured interval.
        assert!((8_000..12_000).contains(&low), "{low}");
        assert!((8_000..12_000).contains(&high), "{high}");
        let mean = (sum / u128::from(n)) as i128;
        assert!((mean - 30_000_000_000).abs() < 50_000_000, "{mean}");
    }

    #[test]
    fn first_window_is_spread_over_the_whole_bound() {
        let config = Config::default(); // interval 30 s, jitter 0.1
        let clock = TickClock::new(Instant::now(), config.tick);
        let s = resolve(&config, &PeerConfig::default(), &clock);
        let n = 100_000u64;
        let mut tenths = [0u32; 11];
        for key in 0..n {
            let i = draw_first_interval(7, key << 32, &s, 5_000_000);
            assert!((1..=33_000_000_000).contains(&i), "{i}");
            tenths[(i / 3_000_000_000) as usize] += 1;
        }
        // Uniform over (0, 33 s]: each 3 s slice (of 11) holds about 1/11 of the draws.
        for (k, &c) in tenths.iter().enumerate() {
            assert!((8_000..10_200).contains(&c), "slice {k}: {c}");
        }
        let no_jitter = Settings { jitter_ns: 0, ..s };
        assert_eq!(draw_first_interval(7, 1, &no_jitter, 0), 30_000_000_000);
    }
}
