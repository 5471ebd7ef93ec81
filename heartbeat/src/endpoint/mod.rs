//! The I/O-free core of one event loop: every connection's bookkeeping above the
//! [`Monitor`], in the style of quinn-proto's `Endpoint`.
//!
//! The [`Monitor`] knows one thing, who is alive. The endpoint knows everything else a loop
//! decides: which connections exist and in what state, which outbound targets to (re)connect
//! and when (backoff with full jitter, connect pacing), what to write where, what to close and
//! why (one close path, a typed [`CloseReason`]), the statistics, and the application's
//! [`Handler`] callbacks. It owns no socket, reads no clock and starts no thread: the driver
//! (`crate::driver`) feeds it `now` and what the sockets said, and carries out what it hands
//! back. So every decision of a loop is tested as a timeline in virtual time (`tests.rs`).
//!
//! # Calling it
//! - Inputs, `handle_*`: a connection accepted or connected, a connect failed, a frame read,
//!   the peer's read end closed, a socket failure or a full write queue, how many bytes a
//!   connection's data lane holds (back-pressure watermarks) and its buffers hold (the memory
//!   budget), bytes left unread, the loop's measured stalls, a command from a
//!   [`Handle`](crate::Handle), the timeout, a drain, shutdown; and
//!   [`Endpoint::check_memory`], the memory budget's policy (`budget.rs`: pause the biggest
//!   holders over 3/4 of it, close them over all of it).
//! - Outputs: [`Endpoint::poll_output`] until `None` after every input (frames to queue on a
//!   lane, connections to close, freeze, connect or resume reading), and
//!   [`Endpoint::poll_timeout`] for the next wake-up. One query the driver asks before each
//!   read: [`Endpoint::is_paused`].
//!
//! A received frame goes: driver (socket, codec) -> [`Endpoint::handle_frame`] -> the format
//! ([`Format::classify`]) -> [`Monitor::handle_message`] (and the handler for data) -> the
//! monitor's actions (a pong) -> [`Output::Transmit`] -> driver (write queue, socket).
//!
//! # Ground rules
//! - Every connection is in exactly one [`State`]; a key that is not in the table is stale and
//!   every input for it is ignored ("sporadic events happen").
//! - One close path ([`Endpoint::close`]): it removes the connection everywhere, counts the
//!   reason, tells the handler (`on_dead`, if any, always came first), hands the driver an
//!   [`Output::Close`], and lets a pool reconnect unless the close was asked for.
//! - Outputs come out in the order they arose, so the frames queued for a connection always
//!   come out before its close: replies to the frames that arrived with the peer's FIN are
//!   written before the socket is closed.
//! - A handler callback that panics is caught: the connection it was called for is closed
//!   ([`CloseReason::HandlerPanicked`]), counted and logged, and the loop goes on.
//! - What the format says a frame is decides everything about it ([`Format`]); the JSON
//!   default is one implementation among others, passive formats included.
//!
//! # Draining
//! [`Endpoint::handle_drain`] starts a graceful drain, in the style of gRPC's GOAWAY: every
//! open connection (and any opened afterwards) gets the format's going-away notice
//! ([`Format::encode_goaway`], the milliseconds left), the pool stops (re)connecting, and
//! the connections are served and heartbeated as before until their peers leave. At the
//! deadline the rest are closed ([`CloseReason::DrainTimeout`]). [`Endpoint::drained`] says
//! when nothing is left, the moment the driver ends the loop. The other direction: a
//! connection whose peer sends the notice is closed at once ([`CloseReason::GoAway`]), and a
//! pool reconnects it after its backoff, with no dead verdict.

mod backoff;
mod budget;
mod outbound;
mod pacer;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use wheelbeat_net::{ConnKey, ConnTable, PeerAddr};

use crate::monitor::{Action, DeadReason, Event, Monitor, PeerConfig, PeerId};
use crate::protocol::{Message, ProtocolError};
use crate::shell::handler::{ConnInfo, Context, Handler, Op};
use crate::shell::{CloseReason, ConnId, Options, Snapshot};

pub(crate) use crate::format::{Format, Inbound};
pub(crate) use outbound::Target;

use budget::{Memory, Watermarks};
pub(crate) use budget::{QueueView, data_cost};
use outbound::Outbound;

/// Most monitor timers run by one call to [`Endpoint::handle_timeout`]; the rest runs at the
/// next call, which `poll_timeout` asks for at once.
const MAX_TIMERS_PER_CALL: usize = 16_384;

/// Which lane of a connection's write queue a frame goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Heartbeats and goodbyes: they jump the application's data.
    Priority,
    /// Application frames, in order, under the write cap.
    Data,
}

/// Something the driver must do. See [`Endpoint::poll_output`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output<'a> {
    /// Queue `frame` (unframed: the codec adds the framing) on `conn`'s `lane`. A full lane is
    /// reported back with [`Endpoint::handle_write_full`].
    Transmit {
        conn: ConnKey,
        lane: Lane,
        frame: &'a [u8],
    },
    /// Close `conn`: flush what is queued (best effort) and drop the socket. With `goodbye`,
    /// shut the write side first and drain what the peer already sent, so the kernel sends
    /// FIN rather than a reset that could destroy the goodbye in flight. The key is stale from
    /// now on.
    Close { conn: ConnKey, goodbye: bool },
    /// Stop serving `conn` (deregister it) but keep its socket open: fault injection.
    Freeze { conn: ConnKey },
    /// Start a connect to `addr` for `conn`; report the outcome with
    /// [`Endpoint::handle_connected`] or [`Endpoint::handle_connect_failed`].
    Connect { conn: ConnKey, addr: PeerAddr },
    /// `conn`'s reads, paused by the memory budget ([`Endpoint::is_paused`]), resume: serve
    /// it again now, even if no readiness event comes (the one that came while it was
    /// paused was consumed without reading).
    Resume { conn: ConnKey },
    /// `conn` is about to be convicted: read its socket once now (bounded, without waiting
    /// for an event) and feed what it held, before the next [`Endpoint::handle_timeout`].
    /// Only with [`Endpoint::set_read_before_verdict`] on.
    ReadFirst { conn: ConnKey },
}

/// An output waiting in the queue; frames are ranges of one shared byte buffer.
#[derive(Debug)]
enum Queued {
    Transmit {
        conn: ConnKey,
        lane: Lane,
        start: usize,
        end: usize,
    },
    Close {
        conn: ConnKey,
        goodbye: bool,
    },
    Freeze {
        conn: ConnKey,
    },
    Connect {
        conn: ConnKey,
        addr: PeerAddr,
    },
    Resume {
        conn: ConnKey,
    },
    ReadFirst {
        conn: ConnKey,
    },
}

/// The state of one connection. A pool's `target` is the outbound target it serves.
///
/// | state        | monitored | reads / writes | left by                                     |
/// |--------------|-----------|----------------|---------------------------------------------|
/// | `Connecting` | no        | no             | connected (-> `Open`), failed or timed out  |
/// | `Open`       | yes       | yes            | any close; a freeze (-> `Frozen`)           |
/// | `Frozen`     | no        | no             | a close (shutdown, local)                   |
///
/// An `Open` connection may have its reads paused by the memory budget (`paused`, see
/// `budget.rs`): written but not read, and never judged on silence, until it is resumed
/// ([`Output::Resume`]) or closed.
#[derive(Debug)]
enum State {
    Connecting {
        target: usize,
    },
    Open {
        peer: PeerId,
        target: Option<usize>,
        /// Bytes queued on the data lane, as the driver last reported plus what was handed
        /// to it since (see [`Endpoint::handle_queued`]).
        queued: usize,
        /// Below the high watermark since it was last under the low one (see
        /// [`Handler::on_writable_changed`]).
        writable: bool,
        /// Heap bytes its buffers hold, as the driver last reported.
        held: usize,
        /// Its reads are paused by the memory budget (see `budget.rs`).
        paused: bool,
    },
    Frozen {
        target: Option<usize>,
        held: usize,
    },
}

/// Bytes of one entry of the endpoint's connection table, for the memory figures: a
/// `ConnTable` slot is the value (optional) plus its 4-byte generation.
#[cfg(test)]
pub(crate) fn state_size() -> usize {
    std::mem::size_of::<Option<State>>() + std::mem::size_of::<u32>()
}

/// The I/O-free core of one loop. See the [module docs](self).
pub(crate) struct Endpoint<H: Handler> {
    index: usize,
    conns: ConnTable<State>,
    /// Connections accepted or connected and not closed yet (`Open` or `Frozen`).
    live: usize,
    monitor: Monitor<ConnKey>,
    handler: H,
    format: Arc<dyn Format>,
    /// What every new peer starts with: passive if the format is.
    peer_config: PeerConfig,
    marks: Watermarks,
    mem: Memory,
    /// What handler callbacks asked for, carried out after each callback returns.
    ops: Vec<Op>,
    /// Connections whose handler callback panicked, closed once the callback is unwound.
    panicked: Vec<ConnKey>,
    stats: Snapshot,
    out: VecDeque<Queued>,
    /// The bytes of the queued transmits; emptied when the queue is.
    bytes: Vec<u8>,
    pool: Outbound,
    /// The deadline of the drain in progress, if any.
    drain: Option<Instant>,
}

impl<H: Handler> Endpoint<H> {
    /// The endpoint of loop `index`, with `targets` to connect to (none for a server). `opts`
    /// must have been validated ([`Options::validate`]).
    pub(crate) fn new(
        index: usize,
        opts: &Options,
        handler: H,
        targets: Vec<Target>,
        now: Instant,
    ) -> Self {
        let mut heartbeat = opts.heartbeat.clone();
        // Each loop gets its own jitter sequence.
        heartbeat.seed = heartbeat.seed.wrapping_add(index as u64);
        let rng = fastrand::Rng::with_seed(heartbeat.seed ^ 0x9e37_79b9_7f4a_7c15);
        Endpoint {
            index,
            conns: ConnTable::new(),
            live: 0,
            monitor: Monitor::new(heartbeat, now),
            handler,
            format: opts.format.clone(),
            peer_config: PeerConfig {
                passive: Some(opts.format.passive()),
                ..PeerConfig::default()
            },
            mem: Memory::new(opts.memory_budget, &opts.heartbeat),
            marks: Watermarks {
                cap: opts.write_cap,
                high: opts.watermarks().1,
                low: opts.watermarks().0,
            },
            ops: Vec::new(),
            panicked: Vec::new(),
            stats: Snapshot::new(),
            out: VecDeque::new(),
            bytes: Vec::with_capacity(64),
            pool: Outbound::new(targets, opts.connect_rate, opts.connect_timeout, rng),
            drain: None,
        }
    }

    // ----- inputs: connections ------------------------------------------------------

    /// A connection was accepted; returns its key (its token for the driver).
    pub(crate) fn handle_accepted(&mut self, now: Instant, info: ConnInfo) -> ConnKey {
        self.stats.accepted += 1;
        let monitor = &mut self.monitor;
        let base = self.peer_config.clone();
        let key = self.conns.insert_with(|key| State::Open {
            peer: monitor.add_with(now, key, base),
            target: None,
            queued: 0,
            writable: true,
            held: 0,
            paused: false,
        });
        self.opened(now, key, info);
        key
    }

    /// The connect started for `conn` completed.
    pub(crate) fn handle_connected(&mut self, now: Instant, conn: ConnKey, info: ConnInfo) {
        let Some(State::Connecting { target }) = self.conns.get(conn) else {
            return;
        };
        let target = *target;
        self.pool.connected(target);
        self.stats.connected += 1;
        let peer = self.monitor.add_with(now, conn, self.peer_config.clone());
        if let Some(state) = self.conns.get_mut(conn) {
            *state = State::Open {
                peer,
                target: Some(target),
                queued: 0,
                writable: true,
                held: 0,
                paused: false,
            };
        }
        self.opened(now, conn, info);
    }

    /// The connect started for `conn` failed (or could not start).
    pub(crate) fn handle_connect_failed(&mut self, now: Instant, conn: ConnKey, error: &io::Error) {
        let Some(State::Connecting { target }) = self.conns.get(conn) else {
            return;
        };
        let target = *target;
        self.conns.remove(conn);
        self.out.push_back(Queued::Close {
            conn,
            goodbye: false,
        });
        self.connect_failed(now, target, error);
        self.settle(now);
    }

    /// `key` has just become `Open`.
    fn opened(&mut self, now: Instant, key: ConnKey, info: ConnInfo) {
        self.live += 1;
        self.stats.connections += 1;
        let id = self.id(key);
        self.call(now, Some(key), |h, cx| h.on_connect(cx, id, &info));
        if let Some(deadline) = self.drain {
            // Opened while draining (accepted in the turn the drain began, or a connect
            // already in flight): it is told at once, like the others.
            self.send_goaway(now, key, deadline);
        }
        self.settle(now);
    }

    /// One frame read from `conn` (without its framing). `Break` means stop reading this
    /// connection: it was closed (a protocol error, or by the handler) or frozen meanwhile.
    pub(crate) fn handle_frame(
        &mut self,
        now: Instant,
        conn: ConnKey,
        frame: &[u8],
    ) -> ControlFlow<()> {
        if !matches!(self.conns.get(conn), Some(State::Open { .. })) {
            return ControlFlow::Break(());
        }
        match self.format.classify(frame) {
            Ok(inbound) => self.handle_inbound(now, conn, Some(inbound)),
            Err(e) => {
                self.protocol_error(now, conn, e);
                ControlFlow::Break(())
            }
        }
    }

    /// What one frame from `conn` was, already classified by the connection's own protocol
    /// state (WebSocket: the driver's `ws::Session`, which answers pings itself). `None` is a
    /// sign of life with nothing to answer or deliver (a WebSocket ping, a fragment, the
    /// upgrade). `Break` as for [`handle_frame`](Self::handle_frame).
    pub(crate) fn handle_inbound(
        &mut self,
        now: Instant,
        conn: ConnKey,
        inbound: Option<Inbound<'_>>,
    ) -> ControlFlow<()> {
        let Some(State::Open { peer, .. }) = self.conns.get(conn) else {
            return ControlFlow::Break(());
        };
        let peer = *peer;
        let msg = match inbound {
            Some(Inbound::Ping(n)) => {
                self.stats.pings_received += 1;
                Message::Ping(n.unwrap_or(0))
            }
            // Without a sequence number, a pong answers the ping outstanding.
            Some(Inbound::Pong(n)) => {
                Message::Pong(n.or_else(|| self.monitor.last_ping_seq(peer)).unwrap_or(0))
            }
            Some(Inbound::Data(d)) => Message::Data(d),
            Some(Inbound::GoAway(_)) => {
                // Not a failure: the peer leaves on purpose. A pool reconnects after its
                // backoff (elsewhere or later); nothing is judged dead.
                log::debug!("loop {}: {} is going away", self.index, self.id(conn));
                self.close(now, conn, CloseReason::GoAway);
                self.settle(now);
                return ControlFlow::Break(());
            }
            // To the monitor any frame that is neither ping nor pong is the same: life.
            None => Message::Data(&[]),
        };
        self.monitor.handle_message(peer, now, &msg);
        if let Some(Inbound::Data(data)) = inbound {
            self.stats.messages_received += 1;
            let id = self.id(conn);
            self.call(now, Some(conn), |h, cx| h.on_message(cx, id, data));
        }
        self.settle(now);
        if matches!(self.conns.get(conn), Some(State::Open { .. })) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    /// The codec refused what `conn` sent (a frame over the cap): a protocol error.
    pub(crate) fn handle_bad_frame(&mut self, now: Instant, conn: ConnKey, error: ProtocolError) {
        if matches!(self.conns.get(conn), Some(State::Open { .. })) {
            self.protocol_error(now, conn, error);
        }
    }

    /// `conn`'s peer closed its sending side at a frame boundary, after the frames already
    /// handed in. What was queued for it (replies to those frames) comes out before the close.
    pub(crate) fn handle_read_closed(&mut self, now: Instant, conn: ConnKey) {
        self.close(now, conn, CloseReason::PeerClosed);
        self.settle(now);
    }

    /// `conn`'s socket failed (or the peer went away in the middle of a frame).
    pub(crate) fn handle_failure(&mut self, now: Instant, conn: ConnKey, reason: CloseReason) {
        self.close(now, conn, reason);
        self.settle(now);
    }

    /// A frame for `conn` did not fit its `lane`: the peer does not read what it is sent.
    pub(crate) fn handle_write_full(&mut self, now: Instant, conn: ConnKey, lane: Lane) {
        log::debug!("loop {}: {}: {lane:?} lane full", self.index, self.id(conn));
        self.close(now, conn, CloseReason::WriteOverflow);
        self.settle(now);
    }

    // ----- inputs: commands ---------------------------------------------------------

    /// [`Handle::send`](crate::Handle::send): one application frame for `id`.
    pub(crate) fn handle_send(&mut self, now: Instant, id: ConnId, frame: &[u8]) {
        self.send_data(id, frame);
        self.settle(now);
    }

    /// [`Handle::close`](crate::Handle::close).
    pub(crate) fn handle_close(&mut self, now: Instant, id: ConnId) {
        if id.loop_index() == self.index {
            self.close(now, id.key(), CloseReason::Local);
        }
        self.settle(now);
    }

    /// [`Handle::freeze`](crate::Handle::freeze): stop serving and heartbeating `id` but keep
    /// its socket open, so the peer sees a hung process.
    pub(crate) fn handle_freeze(&mut self, id: ConnId) {
        if id.loop_index() != self.index {
            return;
        }
        let conn = id.key();
        if let Some(state) = self.conns.get_mut(conn)
            && let State::Open {
                peer,
                target,
                held,
                paused,
                ..
            } = *state
        {
            *state = State::Frozen { target, held };
            self.monitor.remove(peer);
            if paused {
                self.forget_pause(conn);
            }
            self.out.push_back(Queued::Freeze { conn });
            log::debug!("loop {}: {id} frozen", self.index);
        }
    }

    /// Starts a graceful drain that ends by `deadline` (an earlier drain's deadline holds if it
    /// is sooner). See the module docs, "Draining".
    pub(crate) fn handle_drain(&mut self, now: Instant, deadline: Instant) {
        let deadline = self.drain.map_or(deadline, |d| d.min(deadline));
        let first = self.drain.is_none();
        self.drain = Some(deadline);
        self.pool.stop_all();
        if first {
            log::info!(
                "loop {}: draining {} connection(s) within {:?}",
                self.index,
                self.live,
                deadline.saturating_duration_since(now)
            );
            for key in self.conns.keys() {
                match self.conns.get(key) {
                    // A connect in flight would only open a connection to drain.
                    Some(State::Connecting { .. }) => self.close(now, key, CloseReason::Local),
                    Some(State::Open { .. }) => self.send_goaway(now, key, deadline),
                    _ => {}
                }
            }
        }
        // A deadline already passed closes the rest now.
        self.drain_deadline(now);
        self.settle(now);
    }

    /// Queues the format's going-away notice for `key`, if the format has one.
    fn send_goaway(&mut self, now: Instant, key: ConnKey, deadline: Instant) {
        let ms = deadline.saturating_duration_since(now).as_millis();
        let start = self.bytes.len();
        self.format
            .encode_goaway(u64::try_from(ms).unwrap_or(u64::MAX), &mut self.bytes);
        if self.bytes.len() > start {
            self.push_transmit(key, Lane::Priority, start);
        }
    }

    /// Closes what is left once the drain's deadline has come.
    fn drain_deadline(&mut self, now: Instant) {
        if self.drain.is_some_and(|d| now >= d) {
            for key in self.conns.keys() {
                self.close(now, key, CloseReason::DrainTimeout);
            }
        }
    }

    /// Whether a drain is in progress and nothing is left of this loop's connections: the
    /// loop can end.
    pub(crate) fn drained(&self) -> bool {
        self.drain.is_some() && self.conns.is_empty()
    }

    /// Closes everything (reason [`CloseReason::Shutdown`]) and stops every target.
    pub(crate) fn handle_shutdown(&mut self, now: Instant) {
        self.pool.stop_all();
        for key in self.conns.keys() {
            self.close(now, key, CloseReason::Shutdown);
        }
        self.settle(now);
        self.ops.clear();
    }

    // ----- inputs: time -------------------------------------------------------------

    /// Runs what is due at `now`: the pool's connect deadlines and backoffs, connects the
    /// pacer allows, the memory budget's pause bound, the monitor's timers (bounded per call).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.drain_deadline(now);
        self.pause_deadlines(now);
        self.pool_timers(now);
        self.start_connects(now);
        if self.monitor.poll_timeout().is_some_and(|due| now >= due) {
            self.monitor
                .handle_timeout_bounded(now, MAX_TIMERS_PER_CALL);
            if let Some(late) = self.monitor.last_lateness() {
                // Against the real due time of the timers that fired, not the wheel's coarse
                // next deadline (a lower bound that can be seconds early).
                self.stats.record_timer_lateness(late);
            }
        }
        self.settle(now);
    }

    /// Whether the driver holds bytes from `conn` it has not read yet: its heartbeat steps
    /// wait until they are read (see [`Monitor::set_unread`]). A paused connection stays
    /// unread whatever the driver says: it is not read, so its answer may wait in its socket.
    pub(crate) fn set_unread(&mut self, conn: ConnKey, unread: bool) {
        if let Some(State::Open { peer, paused, .. }) = self.conns.get(conn) {
            self.monitor.set_unread(*peer, unread || *paused);
        }
    }

    /// Asks for a read of a peer's socket before its verdict ([`Output::ReadFirst`]): a
    /// peer is never convicted while its answer sits in its socket, even with its readiness
    /// event not polled yet. See [`Monitor::set_read_before_verdict`].
    pub(crate) fn set_read_before_verdict(&mut self, on: bool) {
        self.monitor.set_read_before_verdict(on);
    }

    /// The loop thread was not running (stopped, not scheduled) for `not_running` since the
    /// last report: the only time the local-pause guard forgives. See
    /// [`Monitor::report_stall`].
    pub(crate) fn report_stall(&mut self, not_running: std::time::Duration) {
        self.monitor.report_stall(not_running);
    }

    // ----- outputs ------------------------------------------------------------------

    /// The next thing the driver must do, in the order it arose. Call until `None` after
    /// every input.
    pub(crate) fn poll_output(&mut self) -> Option<Output<'_>> {
        let Some(q) = self.out.pop_front() else {
            self.bytes.clear();
            return None;
        };
        Some(match q {
            Queued::Transmit {
                conn,
                lane,
                start,
                end,
            } => Output::Transmit {
                conn,
                lane,
                frame: &self.bytes[start..end],
            },
            Queued::Close { conn, goodbye } => Output::Close { conn, goodbye },
            Queued::Freeze { conn } => Output::Freeze { conn },
            Queued::Connect { conn, addr } => Output::Connect { conn, addr },
            Queued::Resume { conn } => Output::Resume { conn },
            Queued::ReadFirst { conn } => Output::ReadFirst { conn },
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; `None` if nothing is
    /// scheduled. May be in the past (call it now).
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        [
            self.monitor.poll_timeout(),
            self.pool.next_timer(),
            self.next_connect_at(now),
            self.drain.filter(|_| !self.conns.is_empty()),
            self.next_pause_end(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- queries ------------------------------------------------------------------

    /// Connections accepted or connected and not closed yet.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// A TLS peer that never reached the endpoint was closed by the driver before its
    /// handshake completed: counted and logged here, so the statistics show it.
    pub(crate) fn handle_handshake_failed(&mut self, peer: &PeerAddr, reason: &CloseReason) {
        self.stats.closed.handshake += 1;
        log::info!("loop {}: {peer} closed: {reason}", self.index);
    }

    /// Whether `conn` is open (read and written).
    pub(crate) fn is_open(&self, conn: ConnKey) -> bool {
        matches!(self.conns.get(conn), Some(State::Open { .. }))
    }

    /// The loop's counters.
    pub(crate) fn stats(&self) -> &Snapshot {
        &self.stats
    }

    // ----- the one close path -------------------------------------------------------

    /// Closes `key` with `reason`. See the module's ground rules.
    fn close(&mut self, now: Instant, key: ConnKey, reason: CloseReason) {
        let Some(state) = self.conns.remove(key) else {
            return;
        };
        let target = match state {
            State::Connecting { target } => {
                // A connect in flight closed on purpose (shutdown): the pool's bookkeeping only.
                self.pool.connect_ended();
                self.out.push_back(Queued::Close {
                    conn: key,
                    goodbye: false,
                });
                self.pool.stop(target);
                return;
            }
            State::Open {
                peer,
                target,
                held,
                paused,
                ..
            } => {
                self.monitor.remove(peer);
                self.mem.total -= held;
                if paused {
                    self.forget_pause(key);
                }
                target
            }
            State::Frozen { target, held } => {
                self.mem.total -= held;
                target
            }
        };
        self.stats.memory_bytes = self.mem.total as u64;
        self.live -= 1;
        self.stats.connections -= 1;
        let c = &mut self.stats.closed;
        match &reason {
            CloseReason::Dead(reason) => {
                c.missed_pings += 1;
                if matches!(reason, DeadReason::Silent) {
                    self.stats.dead_silent += 1;
                }
            }
            CloseReason::PeerClosed => c.peer_closed += 1,
            // Every protocol error closes, whoever found it (the format, the codec, the
            // WebSocket session): one count for all.
            CloseReason::Protocol(_) => {
                c.protocol_error += 1;
                self.stats.protocol_errors += 1;
            }
            CloseReason::WriteOverflow => c.write_overflow += 1,
            CloseReason::Io(_) | CloseReason::ConnectFailed(_) => c.io_error += 1,
            CloseReason::HandlerPanicked => c.handler_panicked += 1,
            CloseReason::MemoryBudget => c.memory_budget += 1,
            CloseReason::PausedTooLong => c.paused_too_long += 1,
            CloseReason::TooManyPings => c.too_many_pings += 1,
            CloseReason::GoAway => c.go_away += 1,
            CloseReason::DrainTimeout => c.drain_timeout += 1,
            CloseReason::Local | CloseReason::Shutdown => c.local += 1,
            CloseReason::HandshakeTimeout | CloseReason::Handshake(_) => c.handshake += 1,
        }
        self.out.push_back(Queued::Close {
            conn: key,
            goodbye: matches!(reason, CloseReason::Protocol(_) | CloseReason::TooManyPings),
        });
        let id = self.id(key);
        log::debug!("loop {}: {id} closed: {reason}", self.index);
        // The connection is gone: a panic here has nothing left to close.
        self.call(now, None, |h, cx| h.on_close(cx, id, &reason));
        if let Some(t) = target {
            match reason {
                CloseReason::Local | CloseReason::Shutdown | CloseReason::DrainTimeout => {
                    self.pool.stop(t)
                }
                _ => self.schedule_reconnect(t, now),
            }
        }
    }

    /// Queues the format's goodbye for `error` and closes `key`.
    fn protocol_error(&mut self, now: Instant, key: ConnKey, error: ProtocolError) {
        log::info!(
            "loop {}: protocol error from {}: {error}",
            self.index,
            self.id(key)
        );
        let start = self.bytes.len();
        self.format.encode_error(error, &mut self.bytes);
        self.push_transmit(key, Lane::Priority, start);
        self.close(now, key, CloseReason::Protocol(error));
    }

    // ----- handler calls, ops, the monitor's outputs --------------------------------

    fn id(&self, key: ConnKey) -> ConnId {
        ConnId::new(self.index, key)
    }

    /// Runs one handler callback, catching a panic. `conn` is the connection the callback is
    /// about, closed with [`CloseReason::HandlerPanicked`] if it panics.
    fn call(
        &mut self,
        now: Instant,
        conn: Option<ConnKey>,
        f: impl FnOnce(&mut H, &mut Context<'_>),
    ) {
        let mut cx = Context {
            ops: &mut self.ops,
            now,
            loop_index: self.index,
            heartbeat: self.monitor.config(),
            view: QueueView {
                conns: &self.conns,
                index: self.index,
                cap: self.marks.cap,
            },
        };
        let handler = &mut self.handler;
        // The handler's own state may be half-updated after a panic; it is the application's
        // to keep consistent (as with a poisoned lock ignored). The loop's state is untouched:
        // callbacks reach it only through `ops`, applied after the call.
        if catch_unwind(AssertUnwindSafe(|| f(handler, &mut cx))).is_err() {
            self.stats.handler_panics += 1;
            log::error!(
                "loop {}: a handler callback panicked{}",
                self.index,
                conn.map(|c| format!(" (for {}); closing it", self.id(c)))
                    .unwrap_or_default()
            );
            if let Some(c) = conn {
                self.panicked.push(c);
            }
        }
    }

    /// Carries out everything queued by the last input: the monitor's events and actions,
    /// what callbacks asked for, closes of connections whose callback panicked. Each of these
    /// can queue more of the others, so it loops until all are empty.
    fn settle(&mut self, now: Instant) {
        loop {
            self.drain_monitor(now);
            if !self.ops.is_empty() {
                let ops = std::mem::take(&mut self.ops);
                for op in ops {
                    match op {
                        Op::Send(id, frame) => self.send_data(id, &frame),
                        Op::SetHeartbeat(id, mut overrides) => {
                            if id.loop_index() == self.index
                                && let Some(State::Open { peer, .. }) = self.conns.get(id.key())
                            {
                                // The format's mode holds unless the handler says otherwise.
                                overrides.passive = overrides.passive.or(self.peer_config.passive);
                                // Validated by `Context::set_heartbeat` already.
                                let _ = self.monitor.reconfigure(*peer, now, &overrides);
                            }
                        }
                        Op::Close(id) => {
                            if id.loop_index() == self.index {
                                self.close(now, id.key(), CloseReason::Local);
                            }
                        }
                    }
                }
                continue;
            }
            if let Some(key) = self.panicked.pop() {
                self.close(now, key, CloseReason::HandlerPanicked);
                continue;
            }
            return;
        }
    }

    fn drain_monitor(&mut self, now: Instant) {
        // Events first, so a handler hears `on_dead` before `on_close` (the close is an
        // action).
        while let Some(ev) = self.monitor.poll_event() {
            match ev {
                Event::Dead {
                    conn,
                    reason,
                    silent_for,
                    ..
                } => {
                    let id = self.id(conn);
                    log::info!(
                        "loop {}: {id} dead ({reason}, silent for {silent_for:?})",
                        self.index
                    );
                    self.call(now, Some(conn), |h, cx| {
                        h.on_dead(cx, id, reason, silent_for)
                    });
                }
                Event::Rtt { conn, rtt, .. } => {
                    self.stats.pongs_received += 1;
                    self.stats.record_rtt(rtt);
                    let id = self.id(conn);
                    self.call(now, Some(conn), |h, cx| h.on_rtt(cx, id, rtt));
                }
                Event::Missed { conn, missed, .. } => {
                    self.stats.misses += 1;
                    let id = self.id(conn);
                    self.call(now, Some(conn), |h, cx| h.on_missed(cx, id, missed));
                }
                Event::LocalPause { stalled_for } => {
                    self.stats.local_pauses += 1;
                    log::warn!(
                        "loop {}: stalled for {stalled_for:?}; heartbeat verdicts in the gap forgiven",
                        self.index
                    );
                }
            }
        }
        while let Some(action) = self.monitor.poll_action() {
            match action {
                Action::SendPing { conn, seq, .. } => {
                    let start = self.bytes.len();
                    self.format.encode_ping(seq, &mut self.bytes);
                    if self.push_transmit(conn, Lane::Priority, start) {
                        self.stats.pings_sent += 1;
                    }
                }
                Action::SendPong { conn, seq, .. } => {
                    let start = self.bytes.len();
                    self.format.encode_pong(seq, &mut self.bytes);
                    self.push_transmit(conn, Lane::Priority, start);
                }
                Action::Close { conn, reason, .. } => {
                    self.close(now, conn, CloseReason::Dead(reason));
                }
                Action::ReadFirst { conn, .. } => self.out.push_back(Queued::ReadFirst { conn }),
                Action::PingFlood { conn, .. } => {
                    log::info!(
                        "loop {}: {} refused: too many pings",
                        self.index,
                        self.id(conn)
                    );
                    let start = self.bytes.len();
                    self.format
                        .encode_error(ProtocolError::TooManyPings, &mut self.bytes);
                    self.push_transmit(conn, Lane::Priority, start);
                    self.close(now, conn, CloseReason::TooManyPings);
                }
            }
        }
    }

    fn send_data(&mut self, id: ConnId, frame: &[u8]) {
        if id.loop_index() != self.index {
            return;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(frame);
        if self.push_transmit(id.key(), Lane::Data, start)
            && let Some(State::Open { queued, .. }) = self.conns.get_mut(id.key())
        {
            // Until the driver reports the exact figure: what a `Context::try_send` in the
            // same turn must count.
            *queued += data_cost(frame.len());
        }
    }

    /// Queues `bytes[start..]` for `conn` if it is open (else drops them); true if queued.
    fn push_transmit(&mut self, conn: ConnKey, lane: Lane, start: usize) -> bool {
        if !self.is_open(conn) {
            self.bytes.truncate(start);
            return false;
        }
        self.out.push_back(Queued::Transmit {
            conn,
            lane,
            start,
            end: self.bytes.len(),
        });
        true
    }
}
