//! One event-loop thread: the turn that drives sockets, the monitor and the
//! handler. Servers and pools are both this loop; a server has an acceptor, a
//! pool has connect targets.
//!
//! # The turn
//! 1. Poll with timeout = the earliest of the monitor's `poll_timeout()`, the
//!    pool's timers and the acceptor's back-off (zero when connections have
//!    bytes left over from the previous turn).
//! 2. Read the clock, once: every decision of the turn uses that `now`. (The
//!    only other read, just before `poll`, turns the next deadline into a
//!    sleep length; using a stale `now` there would oversleep by the length
//!    of the turn.)
//! 3. Handle I/O events: accept; finish connects; read readable connections
//!    (one read budget each), feeding every frame to `protocol::parse` and then
//!    to `Monitor::handle_message` (data also to the handler); a frame error
//!    closes that connection only, after a best-effort `{"error":"<reason>"}`.
//!    Connections that spent their budget are remembered and read again next
//!    turn (edge-triggered readiness would not tell us again).
//! 4. Drain the command channel (sends, closes, freezes, stats requests).
//! 5. Pool: fire connect deadlines and backoff timers, start connects.
//! 6. `Monitor::handle_timeout_bounded(now, 16384)` when it is due (the rest,
//!    if any, runs next turn without sleeping); then drain its events
//!    (handler callbacks: `on_dead` before `on_close`) and its actions (pings
//!    and pongs on the priority lane; closes).
//! 7. Carry out what handlers asked for; flush every connection that has bytes
//!    queued, and sync interest (a syscall only when it changes).
//!
//! # Ground rules
//! - The loop never blocks except in `poll`, and never panics on peer input.
//! - A connection that failed is closed at once, with a [`CloseReason`], and
//!   everything queued for it is dropped; its [`ConnId`] is stale from then on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read as _};
use std::net::{Shutdown, SocketAddr};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Token};
use wheelbeat_net::{
    AcceptStatus, Acceptor, ConnKey, ConnTable, Connecting, Connection, Error as NetError,
    FlushStatus, ReadBuf, ReadStatus,
};

use super::framing::AnyCodec;
use super::handle::{Command, CommandRx, Shared};
use super::handler::{ConnInfo, Context, Handler, Op};
use super::pacer::Pacer;
use super::stats::Snapshot;
use super::{CloseReason, ConnId, GOODBYE_DRAIN, Options};
use crate::monitor::{Action, Event, Monitor, PeerId};
use crate::protocol::{self, Message};

mod outbound;

pub(crate) use outbound::Target;
use outbound::{TargetState, Timer};

/// The waker's token; the table never issues tokens with the top bit set.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// The listener's token.
pub(crate) const LISTENER: Token = Token(usize::MAX - 1);

/// Most monitor timers run in one turn.
const MAX_TIMERS_PER_TURN: usize = 16_384;

/// Most batches of I/O events taken in one turn before the timers run.
const MAX_IO_ROUNDS: usize = 16;

struct Open {
    conn: Connection<AnyCodec>,
    peer: PeerId,
    target: Option<usize>,
    frozen: bool,
    /// Queued in `dirty` (bytes to flush / interest to sync).
    dirty: bool,
    /// Queued in `backlog` (bytes left over after the read budget).
    backlogged: bool,
}

enum Slot {
    Connecting {
        connecting: Connecting,
        target: usize,
    },
    Open(Box<Open>),
}

/// One event loop. Built on the spawning thread, then moved to its own.
pub(crate) struct EventLoop<H: Handler> {
    index: usize,
    poll: Poll,
    events: Events,
    conns: ConnTable<Slot>,
    live: usize,
    monitor: Monitor<ConnKey>,
    handler: H,
    ops: Vec<Op>,
    scratch: ReadBuf,
    wire: Vec<u8>,
    stats: Snapshot,
    rx: CommandRx,
    shared: Arc<Shared>,
    opts: Options,
    acceptor: Option<Acceptor>,
    accept_again: bool,
    targets: Vec<Target>,
    ready: VecDeque<usize>,
    connecting: usize,
    pacer: Pacer,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    rng: fastrand::Rng,
    backlog: Vec<ConnKey>,
    dirty: Vec<ConnKey>,
}

impl<H: Handler> EventLoop<H> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        handler: H,
        rx: CommandRx,
        shared: Arc<Shared>,
        opts: Options,
        acceptor: Option<Acceptor>,
        targets: Vec<Target>,
    ) -> io::Result<EventLoop<H>> {
        let mut heartbeat = opts.heartbeat.clone();
        // Each loop gets its own jitter sequence.
        heartbeat.seed = heartbeat.seed.wrapping_add(index as u64);
        let rng = fastrand::Rng::with_seed(heartbeat.seed ^ 0x9e37_79b9_7f4a_7c15);
        let monitor = Monitor::new(heartbeat, Instant::now());
        let ready = (0..targets.len()).collect();
        let mut el = EventLoop {
            index,
            events: Events::with_capacity(opts.events_capacity.max(16)),
            poll,
            conns: ConnTable::new(),
            live: 0,
            monitor,
            handler,
            ops: Vec::new(),
            scratch: ReadBuf::with_max_frame_len(opts.max_frame_len),
            wire: Vec::with_capacity(64),
            stats: Snapshot::new(),
            rx,
            shared,
            acceptor,
            accept_again: false,
            targets,
            ready,
            connecting: 0,
            pacer: Pacer::new(opts.connect_rate),
            timers: BinaryHeap::new(),
            rng,
            backlog: Vec::new(),
            dirty: Vec::new(),
            opts,
        };
        if let Some(a) = el.acceptor.as_mut() {
            a.register(el.poll.registry()).map_err(net_to_io)?;
        }
        Ok(el)
    }

    /// Runs until shutdown, then closes everything.
    pub(crate) fn run(mut self) {
        log::debug!("event loop {} started", self.index);
        let mut backlog = Vec::new();
        loop {
            // Checked before every poll: the wake-up that follows the flag may
            // have been consumed by any poll of the previous turn (including
            // the extra zero-timeout ones), and would not come again.
            if self.shared.shutdown.load(Ordering::Acquire) {
                break;
            }
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut self.events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("event loop {}: poll failed: {e}; stopping", self.index);
                break;
            }
            let now = Instant::now();
            if self.shared.shutdown.load(Ordering::Acquire) {
                break;
            }
            // Connections with bytes left over from the last turn come first,
            // so the order of service rotates fairly.
            std::mem::swap(&mut backlog, &mut self.backlog);
            for key in backlog.drain(..) {
                if let Some(Slot::Open(o)) = self.conns.get_mut(key) {
                    o.backlogged = false;
                }
                self.read(key, now);
            }
            // A full batch means more sockets may be ready: take them too (up
            // to MAX_IO_ROUNDS batches) before the timers run, so a pong that
            // has arrived is never judged missing just because its event did
            // not fit in the first batch.
            for round in 0..MAX_IO_ROUNDS {
                if round > 0
                    && let Err(e) = self.poll.poll(&mut self.events, Some(Duration::ZERO))
                    && e.kind() != io::ErrorKind::Interrupted
                {
                    log::error!("event loop {}: poll failed: {e}", self.index);
                }
                let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
                let mut n = 0;
                for ev in events.iter() {
                    n += 1;
                    match ev.token() {
                        WAKER => {}
                        LISTENER => self.accept_again = true,
                        token => {
                            let key = ConnKey::from_token(token);
                            let closed = ev.is_read_closed() || ev.is_error();
                            self.conn_event(key, ev.is_readable() || closed, closed, now);
                        }
                    }
                }
                let full = n >= events.capacity();
                self.events = events;
                if !full {
                    break;
                }
            }
            if self.accept_again
                || self
                    .acceptor
                    .as_ref()
                    .and_then(Acceptor::resume_at)
                    .is_some_and(|t| now >= t)
            {
                self.accept(now);
            }
            self.commands(now);
            if !self.targets.is_empty() {
                self.pool_timers(now);
            }
            if let Some(due) = self.monitor.poll_timeout()
                && now >= due
            {
                // How late the loop runs the monitor's timers: verdicts are
                // late by exactly this on top of the monitor's own bound.
                self.stats.record_timer_lateness(now - due);
                // Bounded, so a turn stays short even when a stall left very
                // many timers due; the rest runs next turn (poll_timeout stays
                // at or before now, so the next poll does not sleep).
                self.monitor
                    .handle_timeout_bounded(now, MAX_TIMERS_PER_TURN);
            }
            self.drain_monitor(now);
            self.flush_dirty(now);
        }
        self.shutdown(Instant::now());
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.backlog.is_empty()
            || !self.dirty.is_empty()
            || self.accept_again
            || self.next_connect_at(now).is_some_and(|t| t <= now)
        {
            return Some(Duration::ZERO);
        }
        let mut next = self.monitor.poll_timeout();
        let mut fold = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        fold(self.timers.peek().map(|Reverse((t, _))| *t));
        fold(self.next_connect_at(now));
        fold(self.acceptor.as_ref().and_then(Acceptor::resume_at));
        next.map(|t| t.saturating_duration_since(now))
    }

    fn cx(ops: &mut Vec<Op>, now: Instant, index: usize) -> Context<'_> {
        Context {
            ops,
            now,
            loop_index: index,
        }
    }

    // ----- accept and connect -------------------------------------------------

    fn accept(&mut self, now: Instant) {
        self.accept_again = false;
        let Some(acceptor) = self.acceptor.as_mut() else {
            return;
        };
        let mut accepted = Vec::new();
        let status = acceptor.accept(self.poll.registry(), now, self.live, |stream, peer| {
            accepted.push((stream, peer));
        });
        match status {
            Ok(AcceptStatus::Drained) | Ok(AcceptStatus::BackedOff { .. }) => {}
            // At the cap the listener keeps its backlog; a close re-arms accepting.
            Ok(AcceptStatus::Full) => {}
            Ok(_) => self.accept_again = true,
            Err(e) => log::error!("loop {}: accept failed: {e}", self.index),
        }
        for (stream, peer) in accepted {
            self.stats.accepted += 1;
            self.open(stream, peer, None, now);
        }
    }

    /// Starts serving an established connection.
    fn open(
        &mut self,
        stream: TcpStream,
        peer_addr: SocketAddr,
        target: Option<usize>,
        now: Instant,
    ) {
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                // The peer reset before we got here: nothing to serve.
                log::debug!(
                    "loop {}: new connection from {peer_addr} lost: {e}",
                    self.index
                );
                if let Some(t) = target {
                    self.schedule_reconnect(t, now);
                }
                return;
            }
        };
        let mut conn = Connection::with_codec(
            stream,
            AnyCodec::new(self.opts.framing, self.opts.max_frame_len),
        );
        conn.set_write_cap(self.opts.write_cap);
        let registry = self.poll.registry();
        let monitor = &mut self.monitor;
        let mut reg = Ok(());
        let key = self.conns.insert_with(|key| {
            reg = conn.sync_interest(registry, key.token());
            Slot::Open(Box::new(Open {
                conn,
                peer: monitor.add(now, key),
                target,
                frozen: false,
                dirty: false,
                backlogged: false,
            }))
        });
        if let Err(e) = reg {
            log::warn!("loop {}: cannot register {peer_addr}: {e}", self.index);
            if let Some(Slot::Open(o)) = self.conns.remove(key) {
                self.monitor.remove(o.peer);
            }
            if let Some(t) = target {
                self.schedule_reconnect(t, now);
            }
            return;
        }
        self.live += 1;
        self.stats.connections += 1;
        let info = ConnInfo {
            local,
            peer: peer_addr,
            inbound: target.is_none(),
        };
        let id = ConnId::new(self.index, key);
        self.handler
            .on_connect(&mut Self::cx(&mut self.ops, now, self.index), id, &info);
        // Data may have arrived before registration: edge-triggered readiness
        // reports it anyway (registration of a readable socket fires).
    }

    // ----- reading -------------------------------------------------------------

    /// `read_closed`: the event said read-closed or error (see `Connection::note_event`).
    fn conn_event(&mut self, key: ConnKey, readable: bool, read_closed: bool, now: Instant) {
        match self.conns.get_mut(key) {
            None => {} // "Sporadic events happen": a stale token.
            Some(Slot::Connecting { .. }) => self.finish_connect(key, now),
            Some(Slot::Open(o)) => {
                // Lets reads stop after a short read, saving the `read` that would return
                // WouldBlock, until an event says the peer's FIN may be pending.
                o.conn.note_event(read_closed);
                if o.frozen {
                    return;
                }
                if readable && !o.backlogged {
                    self.read(key, now);
                }
                // Writable, or anything else: flush at the end of the turn.
                self.mark_dirty(key);
            }
        }
    }

    fn mark_dirty(&mut self, key: ConnKey) {
        if let Some(Slot::Open(o)) = self.conns.get_mut(key)
            && !o.dirty
        {
            o.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Reads one budget's worth of frames from `key`.
    fn read(&mut self, key: ConnKey, now: Instant) {
        let EventLoop {
            index,
            conns,
            monitor,
            handler,
            ops,
            scratch,
            stats,
            opts,
            ..
        } = self;
        let Some(Slot::Open(o)) = conns.get_mut(key) else {
            return;
        };
        if o.frozen {
            return;
        }
        let peer = o.peer;
        let id = ConnId::new(*index, key);
        let mut bad: Option<&'static str> = None;
        let result =
            o.conn.read_frames(
                scratch,
                opts.read_budget,
                |frame, _out| match protocol::parse(frame) {
                    Ok(msg) => {
                        monitor.handle_message(peer, now, &msg);
                        match msg {
                            Message::Ping(_) => stats.pings_received += 1,
                            Message::Pong(_) => {}
                            Message::Data(data) => {
                                stats.messages_received += 1;
                                handler.on_message(&mut Self::cx(ops, now, *index), id, data);
                            }
                        }
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        bad = Some(e.reason());
                        ControlFlow::Break(())
                    }
                },
            );
        match result {
            Ok(ReadStatus::Drained) => {}
            Ok(ReadStatus::BudgetExhausted) => {
                o.backlogged = true;
                self.backlog.push(key);
            }
            Ok(ReadStatus::Stopped) => {
                let reason = bad.unwrap_or("invalid frame");
                self.protocol_error(key, reason, now);
                return;
            }
            Ok(ReadStatus::Closed) => {
                self.close(key, CloseReason::PeerClosed, now);
                return;
            }
            Err(NetError::FrameTooLong { .. }) => {
                self.protocol_error(key, "frame too long", now);
                return;
            }
            Err(e) => {
                let reason = close_reason_for(&e);
                self.close(key, reason, now);
                return;
            }
        }
        // Pongs for the pings just read are queued by the monitor: flush later.
        self.mark_dirty(key);
    }

    /// Sends `{"error":"<reason>"}` (best effort) and closes `key`.
    fn protocol_error(&mut self, key: ConnKey, reason: &'static str, now: Instant) {
        self.stats.protocol_errors += 1;
        if let Some(Slot::Open(o)) = self.conns.get_mut(key) {
            log::info!(
                "loop {}: protocol error from {:?}: {reason}",
                self.index,
                o.conn.stream().peer_addr().ok()
            );
            self.wire.clear();
            protocol::encode_error(reason, &mut self.wire);
            // The priority lane jumps queued data: the goodbye is what matters now.
            let _ = o.conn.send_priority(&self.wire[..]);
            let _ = o.conn.flush();
            let stream = o.conn.stream_mut();
            let _ = stream.shutdown(Shutdown::Write);
            // Read what the peer already sent, so that closing sends FIN, not
            // an RST that could destroy the goodbye before the peer reads it.
            let mut drained = 0;
            let mut sink = [0u8; 4096];
            while drained < GOODBYE_DRAIN {
                match stream.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        }
        self.close(key, CloseReason::Protocol(reason), now);
    }

    // ----- closing -------------------------------------------------------------

    /// Closes `key` now: removes it everywhere, tells the handler, and lets a
    /// pool reconnect if the close was not asked for.
    fn close(&mut self, key: ConnKey, reason: CloseReason, now: Instant) {
        let Some(slot) = self.conns.remove(key) else {
            return;
        };
        let Slot::Open(mut o) = slot else {
            // A connect in flight: the pool's bookkeeping only.
            if let Slot::Connecting { target, .. } = slot {
                self.connecting -= 1;
                if reason == CloseReason::Local || reason == CloseReason::Shutdown {
                    self.targets[target].state = TargetState::Stopped;
                }
            }
            return;
        };
        self.monitor.remove(o.peer);
        let _ = o.conn.deregister(self.poll.registry());
        drop(o.conn);
        self.live -= 1;
        self.stats.connections -= 1;
        let c = &mut self.stats.closed;
        match &reason {
            CloseReason::Dead(_) => c.missed_pings += 1,
            CloseReason::PeerClosed => c.peer_closed += 1,
            CloseReason::Protocol(_) => c.protocol_error += 1,
            CloseReason::WriteOverflow => c.write_overflow += 1,
            CloseReason::Io(_) | CloseReason::ConnectFailed(_) => c.io_error += 1,
            CloseReason::Local | CloseReason::Shutdown => c.local += 1,
        }
        let id = ConnId::new(self.index, key);
        log::debug!("loop {}: {id} closed: {reason}", self.index);
        self.handler
            .on_close(&mut Self::cx(&mut self.ops, now, self.index), id, &reason);
        if self.acceptor.is_some() {
            // A slot freed below max_connections: look at the backlog again.
            self.accept_again = true;
        }
        if let Some(t) = o.target {
            match reason {
                CloseReason::Local | CloseReason::Shutdown => {
                    self.targets[t].state = TargetState::Stopped;
                }
                _ => self.schedule_reconnect(t, now),
            }
        }
    }

    // ----- commands, monitor, handler requests ---------------------------------

    fn commands(&mut self, now: Instant) {
        // Bounded: a flood of commands cannot starve the sockets and timers.
        for _ in 0..self.opts.command_capacity.max(1) {
            let Ok(cmd) = self.rx.try_recv() else {
                return;
            };
            match cmd {
                Command::Send(id, frame) => self.ops.push(Op::Send(id, frame)),
                Command::Close(id) => self.ops.push(Op::Close(id)),
                Command::Freeze(id) => self.freeze(id.key()),
                Command::Snapshot(reply) => {
                    let _ = reply.try_send(self.stats.clone());
                }
            }
        }
        self.run_ops(now);
    }

    fn freeze(&mut self, key: ConnKey) {
        let registry = self.poll.registry();
        if let Some(Slot::Open(o)) = self.conns.get_mut(key) {
            if o.frozen {
                return;
            }
            o.frozen = true;
            let _ = o.conn.deregister(registry);
            self.monitor.remove(o.peer);
            log::debug!("loop {}: conn {:?} frozen", self.index, key);
        }
    }

    fn drain_monitor(&mut self, now: Instant) {
        // Events first, so a handler hears `on_dead` before `on_close`.
        while let Some(ev) = self.monitor.poll_event() {
            let cx = &mut Self::cx(&mut self.ops, now, self.index);
            match ev {
                Event::Dead {
                    conn,
                    reason,
                    silent_for,
                    ..
                } => {
                    let id = ConnId::new(self.index, conn);
                    log::info!(
                        "loop {}: {id} dead ({reason}, silent for {silent_for:?})",
                        self.index
                    );
                    self.handler.on_dead(cx, id, reason, silent_for);
                }
                Event::Rtt { conn, rtt, .. } => {
                    self.stats.pongs_received += 1;
                    self.stats.record_rtt(rtt);
                    self.handler.on_rtt(cx, ConnId::new(self.index, conn), rtt);
                }
                Event::Missed { conn, missed, .. } => {
                    self.stats.misses += 1;
                    self.handler
                        .on_missed(cx, ConnId::new(self.index, conn), missed);
                }
                Event::LocalPause { stalled_for } => {
                    log::warn!(
                        "loop {}: stalled for {stalled_for:?}; heartbeat verdicts in the gap forgiven",
                        self.index
                    );
                }
                // Events added to the monitor later are not the shell's business.
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        while let Some(action) = self.monitor.poll_action() {
            match action {
                Action::SendPing { conn, seq, .. } => {
                    self.wire.clear();
                    protocol::encode_ping(seq, &mut self.wire);
                    if self.send_heartbeat(conn, now) {
                        self.stats.pings_sent += 1;
                    }
                }
                Action::SendPong { conn, seq, .. } => {
                    self.wire.clear();
                    protocol::encode_pong(seq, &mut self.wire);
                    self.send_heartbeat(conn, now);
                }
                Action::Close { conn, reason, .. } => {
                    self.close(conn, CloseReason::Dead(reason), now);
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
    }

    /// Queues `self.wire` on `key`'s priority lane.
    fn send_heartbeat(&mut self, key: ConnKey, now: Instant) -> bool {
        let Some(Slot::Open(o)) = self.conns.get_mut(key) else {
            return false;
        };
        if o.frozen {
            return false;
        }
        match o.conn.send_priority(&self.wire[..]) {
            Ok(()) => {
                self.mark_dirty(key);
                true
            }
            Err(e) if e.is_full() => {
                // Hundreds of heartbeats unread: the peer is not reading at all.
                self.close(key, CloseReason::WriteOverflow, now);
                false
            }
            Err(e) => {
                log::error!("loop {}: cannot frame a heartbeat: {e}", self.index);
                false
            }
        }
    }

    fn run_ops(&mut self, now: Instant) {
        // Handlers may queue more ops while these run (on_close of a closed
        // connection); loop until none are left.
        while !self.ops.is_empty() {
            let ops = std::mem::take(&mut self.ops);
            for op in ops {
                match op {
                    Op::Send(id, frame) => self.send_data(id, &frame, now),
                    Op::Close(id) => {
                        if id.loop_index() == self.index {
                            self.close(id.key(), CloseReason::Local, now);
                        }
                    }
                }
            }
        }
    }

    fn send_data(&mut self, id: ConnId, frame: &[u8], now: Instant) {
        if id.loop_index() != self.index {
            return;
        }
        let key = id.key();
        let Some(Slot::Open(o)) = self.conns.get_mut(key) else {
            return;
        };
        if o.frozen {
            return;
        }
        match o.conn.send(frame) {
            Ok(()) => self.mark_dirty(key),
            Err(e) if e.is_full() => self.close(key, CloseReason::WriteOverflow, now),
            Err(e) => log::warn!("loop {}: {id}: frame dropped: {e}", self.index),
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        // Two passes: `on_close` handlers of connections closed in the first
        // may queue sends to others. Whatever is still dirty after that is
        // flushed next turn (the poll does not sleep while `dirty` is set).
        for _ in 0..2 {
            self.run_ops(now);
            if self.dirty.is_empty() {
                return;
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            for key in dirty.drain(..) {
                let registry = self.poll.registry();
                let Some(Slot::Open(o)) = self.conns.get_mut(key) else {
                    continue;
                };
                o.dirty = false;
                if o.frozen {
                    continue;
                }
                let result = match o.conn.flush() {
                    Ok(FlushStatus::Empty) | Ok(FlushStatus::Pending) => {
                        o.conn.sync_interest(registry, key.token())
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    let reason = close_reason_for(&e);
                    self.close(key, reason, now);
                }
            }
            if self.dirty.is_empty() {
                // Keep the allocation for the next turn.
                self.dirty = dirty;
            }
        }
    }

    // ----- shutdown ------------------------------------------------------------

    fn shutdown(&mut self, now: Instant) {
        log::debug!(
            "event loop {} shutting down; monitor {:?}",
            self.index,
            self.monitor.stats()
        );
        if let Some(mut a) = self.acceptor.take() {
            let _ = a.deregister(self.poll.registry());
        }
        for t in &mut self.targets {
            t.state = TargetState::Stopped;
        }
        for key in self.conns.keys() {
            if let Some(Slot::Open(o)) = self.conns.get_mut(key) {
                // Best effort: hand what is queued to the kernel.
                let _ = o.conn.flush();
            }
            self.close(key, CloseReason::Shutdown, now);
        }
        self.ops.clear();
    }
}

fn close_reason_for(e: &NetError) -> CloseReason {
    match e {
        NetError::TruncatedFrame { .. } | NetError::WriteZero => CloseReason::PeerClosed,
        NetError::QueueFull { .. } => CloseReason::WriteOverflow,
        NetError::FrameTooLong { .. } => CloseReason::Protocol("frame too long"),
        NetError::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => CloseReason::PeerClosed,
            _ => CloseReason::Io(io.to_string()),
        },
        other => CloseReason::Io(other.to_string()),
    }
}

pub(crate) fn net_to_io(e: NetError) -> io::Error {
    match e {
        NetError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the per-connection cost stated in the shell's module docs.
    #[test]
    fn per_connection_state_stays_small() {
        let open = std::mem::size_of::<Open>();
        let slot = std::mem::size_of::<Slot>();
        assert!(open <= 192, "Open is {open} bytes");
        assert!(slot <= 72, "Slot is {slot} bytes");
    }
}
