//! The thin mio driver of one loop thread: it moves bytes, readiness and `now` between the
//! sockets and the [`Endpoint`], and decides nothing else.
//!
//! It is built on `wheelbeat-net`'s own turn bookkeeping: [`Turn`] (work carried over
//! between turns, the turn's time budget), [`Acceptor`] (accept budget, descriptor
//! exhaustion), [`Connecting`], [`Connection`] (framing, the two write lanes, interest). The
//! endpoint owns every decision and every key; the driver keeps, per key, only the socket
//! side ([`Io`]).
//!
//! # The turn
//! 1. `poll`, with the timeout the endpoint, the acceptor and carried-over work ask for.
//! 2. Read the clock: `now` for every decision of the turn; [`Turn::begin`] sets the turn's
//!    read deadline, `now + turn_budget`.
//! 3. Serve the ready tokens, carried-over ones first: accept, finish connects, read frames
//!    into [`Endpoint::handle_frame`] ([`Turn::read`]; not a connection the memory budget
//!    paused, [`Endpoint::is_paused`]: [`Output::Resume`] serves it again). Reading stops at
//!    a connection's byte budget, and for the whole turn when the read deadline passes
//!    (checked between frames, so an expensive frame costs at most its own parse): what is
//!    left is served first next turn, so an expensive flood delays the timers by at most the
//!    budget plus one frame.
//!    If the event batch was full, poll again (without sleeping) while time is left. The
//!    policy is [`Turn`]'s, the same code its virtual-time timelines test.
//! 4. Drain the command channel (bounded).
//! 5. Re-read the clock and run the endpoint's timers when due: the verdicts are judged at
//!    the real time, after this turn's reads. A peer about to be convicted has its socket
//!    read first, even with no event seen (`verdict.rs`).
//! 6. After every input, carry out the endpoint's outputs in order (queue frames, close,
//!    freeze, connect); at the end of the turn flush every connection written to and sync its
//!    interest (a syscall only when it changes).
//! 7. Publish the statistics for [`Handle::published_stats`](crate::Handle::published_stats)
//!    if the last publication is [`PUBLISH_EVERY`] old (else ask for a wake-up then: a busy
//!    loop publishes at most that often, an idle one never), and end the loop if a drain
//!    left nothing to serve.
//!
//! A drain asked for in the shared state starts at the next turn: the listener is closed
//! (new connects are refused by the kernel) and the endpoint tells the peers
//! ([`Endpoint::handle_drain`]).
//!
//! # Ground rules
//! - The driver never blocks except in `poll`, and nothing a peer sends can panic it or make
//!   it spin: every read is bounded in bytes and in time.
//! - The stream type is named once ([`Stream`], in `stream.rs`: TCP, Unix, or TLS over
//!   either); peer addresses appear only where a connection starts ([`ConnInfo`]).
//! - A TLS peer is driven through its handshake here (`handshake.rs`) and handed to the
//!   endpoint only once it completes: the monitor never judges a handshake as silence, and a
//!   handshake that does not complete in time is closed with its own reason.
//! - A loop that ends other than by shutdown (a failed `poll`, a panic here) is counted in
//!   the shared state, so [`Handle`](crate::Handle) and [`Snapshot`](crate::Snapshot) report
//!   it.

mod handshake;
mod side;
mod socket;
mod stall;
mod stream;
mod verdict;
mod ws;

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use wheelbeat_net::{
    AcceptStatus, ConnKey, ConnectStatus, Connection, Error as NetError, FlushStatus, PeerAddr,
    ReadBuf, Served, Transport, Turn,
};

use crate::endpoint::{Endpoint, Lane, Output, Target};
use crate::protocol::ProtocolError;
use crate::shell::handle::{Command, CommandRx, PUBLISH_EVERY, Shared};
use crate::shell::handler::{ConnInfo, Handler};
use crate::shell::websocket::WsPings;
use crate::shell::{AnyCodec, CloseReason, Framing, Options};

use side::SideTable;
use socket::{Full, close_reason_for, close_socket, send_heartbeat};
use stall::StallMeter;

/// The waker's token; the table never issues tokens with the top bit set.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// The listener's token.
pub(crate) const LISTENER: Token = Token(usize::MAX - 1);

/// Most batches of events taken in one turn before the timers run.
const MAX_IO_ROUNDS: usize = 16;

pub(crate) use stream::AnyAcceptor;
use stream::{Dialing, Plain, Stream};

/// A connection of the shell: framing over the shell's one stream type.
type Conn = Connection<AnyCodec, Stream>;

/// The socket side of one endpoint key.
enum Io {
    /// A connect in flight.
    Connecting(Dialing),
    /// Connected, TLS handshake in progress (a pool's connection): the endpoint still sees
    /// a connect in flight, bounded by its connect deadline.
    Handshaking(Stream),
    /// Served: read, written, registered.
    Open {
        conn: Conn,
        /// Listed in `Driver::dirty` (bytes to flush, interest to sync).
        dirty: bool,
    },
    /// Deregistered, socket kept open (fault injection).
    Frozen(Conn),
}

/// One loop. Built on the spawning thread, then moved to its own.
pub(crate) struct Driver<H: Handler> {
    index: usize,
    poll: Poll,
    events: Events,
    /// The turn's work list and time budget (carried-over tokens, the read deadline).
    ready: Turn,
    /// The socket side of every endpoint key.
    sockets: SideTable<Io>,
    ep: Endpoint<H>,
    scratch: ReadBuf,
    rx: CommandRx,
    shared: Arc<Shared>,
    opts: Options,
    acceptor: Option<AnyAcceptor>,
    /// A close freed a slot below `max_connections`, or accepting stopped at its budget.
    accept_again: bool,
    accepted: Vec<(Plain, PeerAddr)>,
    /// Accepted TLS peers whose handshake is in progress (not known to the endpoint yet).
    handshakes: handshake::Handshakes,
    dirty: Vec<ConnKey>,
    /// The deadline of the drain in progress (as handed to the endpoint).
    drain: Option<Instant>,
    /// When the statistics were last published, and whether turns ran since.
    published_at: Option<Instant>,
    unpublished: bool,
    /// The WebSocket sessions, on a WebSocket loop only ([`ws`]).
    ws: Option<ws::WsConns>,
    /// Peers about to be convicted whose sockets are read before the verdict (`verdict.rs`).
    suspects: Vec<ConnKey>,
}

impl<H: Handler> Driver<H> {
    /// `opts` must have been validated.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        handler: H,
        rx: CommandRx,
        shared: Arc<Shared>,
        mut opts: Options,
        acceptor: Option<AnyAcceptor>,
        targets: Vec<Target>,
    ) -> io::Result<Driver<H>> {
        let websocket = opts.framing == Framing::WebSocket;
        let mut max_read = opts.max_frame_len;
        if websocket {
            // The heartbeat of a WebSocket loop is the RFC's ping frame, whatever format was
            // set; a server's loop accepts, a pool's connects.
            opts.format = Arc::new(WsPings {
                role: ws::role(acceptor.is_some()),
                passive: opts.websocket.passive,
            });
            // A frame's header, or the whole upgrade head, must fit the read buffer too.
            max_read = (max_read + 14).max(wheelbeat_net::ws::DEFAULT_MAX_HANDSHAKE_LEN);
        }
        let mut ep = Endpoint::new(index, &opts, handler, targets, Instant::now());
        // Read a peer's socket before convicting it (`verdict.rs`).
        ep.set_read_before_verdict(true);
        let mut d = Driver {
            index,
            events: Events::with_capacity(opts.events_capacity.max(16)),
            poll,
            // New peers are accepted ahead of the rotation of busy ones (cheap, bounded by
            // the accept budget): under a flood a hung peer is accepted, and so judged, on
            // time.
            ready: Turn::new(opts.turn_budget, MAX_IO_ROUNDS).with_first(LISTENER),
            sockets: SideTable::default(),
            ep,
            scratch: ReadBuf::with_max_frame_len(max_read),
            rx,
            shared,
            acceptor,
            accept_again: false,
            accepted: Vec::new(),
            handshakes: handshake::Handshakes::default(),
            dirty: Vec::new(),
            drain: None,
            published_at: None,
            unpublished: false,
            ws: websocket.then(|| ws::WsConns::new(&opts.websocket, opts.max_frame_len)),
            suspects: Vec::new(),
            opts,
        };
        if let Some(a) = d.acceptor.as_mut() {
            a.register(d.poll.registry())?;
        }
        Ok(d)
    }

    /// Runs the loop until shutdown (or a failure, counted in the shared state).
    pub(crate) fn run(self) {
        let index = self.index;
        let shared = self.shared.clone();
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turns()));
        let failed = match ended {
            Ok(Ok(())) => false,
            Ok(Err(e)) => {
                log::error!("event loop {index}: poll failed: {e}; loop ended");
                true
            }
            Err(_) => {
                log::error!("event loop {index}: panicked; loop ended");
                true
            }
        };
        if failed {
            shared.failed.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn turns(mut self) -> io::Result<()> {
        log::debug!("event loop {} started", self.index);
        let mut stall = StallMeter::new();
        let result = loop {
            // Checked before every poll: the wake-up that follows the flag may have been
            // consumed by an earlier poll of this turn, and would not come again.
            if self.shared.shutdown.load(Ordering::Acquire) {
                break Ok(());
            }
            let before = Instant::now();
            let timeout = self.poll_timeout(before);
            stall.before_poll(before);
            if let Err(e) = self.poll.poll(&mut self.events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                break Err(e);
            }
            let now = Instant::now();
            if let Some(not_running) = stall.after_poll(now, timeout) {
                self.ep.report_stall(not_running);
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                break Ok(());
            }
            self.io_rounds(now)?;
            self.commands(now);
            self.expire_ws_upgrades(now);
            // The reads may have taken up to the turn budget: judge at the real time. A peer
            // about to be convicted has its socket read first (`verdict.rs`).
            let now = Instant::now();
            self.expire_handshakes(now);
            self.run_timers(now);
            self.check_drain(now);
            self.flush_dirty(now);
            self.check_memory(now);
            self.publish(now);
            if self.ep.drained() {
                log::debug!("event loop {}: drained", self.index);
                break Ok(());
            }
        };
        let now = Instant::now();
        if let Some(mut a) = self.acceptor.take() {
            let _ = a.deregister(self.poll.registry());
        }
        self.ep.handle_shutdown(now);
        self.apply_outputs(now);
        // The last word, whatever a reader holds: the loop is ending and may wait.
        if let Some(slot) = self.shared.published.get(self.index) {
            *slot.lock() = self.ep.stats().clone();
        }
        log::debug!("event loop {} stopped", self.index);
        result
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.dirty.is_empty() || self.accept_again {
            return Some(Duration::ZERO);
        }
        let publish = self
            .published_at
            .filter(|_| self.unpublished)
            .map(|t| t + PUBLISH_EVERY);
        let next = [
            self.ep.poll_timeout(now),
            self.acceptor.as_ref().and_then(AnyAcceptor::resume_at),
            self.handshakes.next_deadline(),
            self.ws.as_ref().and_then(ws::WsConns::next_deadline),
            publish,
        ]
        .into_iter()
        .flatten()
        .min();
        self.ready
            .timeout(next.map(|t| t.saturating_duration_since(now)))
    }

    /// Serves this turn's ready tokens, in rounds of events while batches come full and time
    /// is left. The policy (carried tokens first, the deadline checked before each token and
    /// between frames, the rounds) is [`Turn`]'s, tested as timelines in `wheelbeat-net`.
    fn io_rounds(&mut self, now: Instant) -> io::Result<()> {
        let mut first = true;
        loop {
            if !first
                && let Err(e) = self.poll.poll(&mut self.events, Some(Duration::ZERO))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
            let mut n = 0;
            for ev in events.iter() {
                n += 1;
                // What each event says is recorded before serving (the short-read stop and
                // the sticky read-closed flag live in `Connection`).
                let key = ConnKey::from_token(ev.token());
                match self.sockets.get_mut(key) {
                    Some(Io::Open { conn, .. }) => {
                        let closed = ev.is_read_closed() || ev.is_error();
                        conn.note_event(closed);
                        if ev.is_readable() || closed {
                            // Not judged before it is read (served this turn or the next).
                            self.ep.set_unread(key, true);
                        }
                        // Writable, or anything else: flush at the end of the turn.
                        self.mark_dirty(key);
                    }
                    Some(Io::Connecting(_)) => self.finish_connect(key, now),
                    // Served through the turn, like a connection's read.
                    Some(Io::Handshaking(_)) => {}
                    _ => {}
                }
            }
            let accept = self.accept_again
                || self
                    .acceptor
                    .as_ref()
                    .is_some_and(|a| a.resume_due(now) || a.accept_due(now));
            self.accept_again = false;
            let tokens = events
                .iter()
                .map(|e| e.token())
                .chain(accept.then_some(LISTENER));
            if first {
                self.ready.begin(now, tokens);
            } else {
                self.ready.add_round(tokens);
            }
            first = false;
            let full = n >= events.capacity();
            self.events = events;
            while let Some(token) = self.ready.next(Instant::now()) {
                match token {
                    WAKER => {}
                    LISTENER => self.accept(now),
                    token if handshake::is_handshake_token(token) => {
                        self.drive_accepted_handshake(token, now)
                    }
                    token => self.read(ConnKey::from_token(token), now),
                }
            }
            if !self.ready.another_round(Instant::now(), full) {
                return Ok(());
            }
        }
    }

    // ----- accept and connect ----------------------------------------------------------

    fn accept(&mut self, now: Instant) {
        let Some(acceptor) = self.acceptor.as_mut() else {
            return;
        };
        let mut accepted = std::mem::take(&mut self.accepted);
        // Handshakes in progress hold descriptors and memory: they count as live.
        let live = self.ep.live() + self.handshakes.len();
        let status = acceptor.accept(self.poll.registry(), now, live, |s, peer| {
            accepted.push((s, peer));
        });
        match status {
            Ok(AcceptStatus::Drained) | Ok(AcceptStatus::BackedOff { .. }) => {}
            // At the cap the listener keeps its backlog; a close re-arms accepting.
            Ok(AcceptStatus::Full) => {}
            Ok(_) => self.ready.again(LISTENER),
            Err(e) => log::error!("loop {}: accept failed: {e}", self.index),
        }
        for (plain, peer) in accepted.drain(..) {
            match self.wrap_accepted(plain, now) {
                Ok(stream) if stream.is_handshaking() => {
                    self.start_accepted_handshake(stream, peer, now);
                }
                Ok(stream) => self.serve_accepted(stream, peer, now),
                Err(e) => log::warn!("loop {}: connection from {peer}: {e}", self.index),
            }
        }
        self.accepted = accepted;
    }

    /// Hands an accepted connection (its handshake done, if any) to the endpoint and serves
    /// it.
    fn serve_accepted(&mut self, stream: Stream, peer: PeerAddr, now: Instant) {
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                // The peer reset before we got here: nothing to serve.
                log::debug!("loop {}: connection from {peer} lost: {e}", self.index);
                return;
            }
        };
        let (alpn, server_name) = stream.tls_names();
        let info = ConnInfo {
            local,
            peer,
            inbound: true,
            alpn,
            server_name,
        };
        let key = self.ep.handle_accepted(now, info);
        self.start_serving(key, stream, true, now);
    }

    /// Registers an established connection under `key` and applies what the endpoint
    /// decided on opening it (`on_connect` may have sent or closed).
    fn start_serving(&mut self, key: ConnKey, stream: Stream, inbound: bool, now: Instant) {
        let (tls, early) = (stream.is_tls(), stream.has_early_input());
        let mut conn = Connection::with_codec(
            stream,
            AnyCodec::new(&self.opts.framing, self.opts.max_frame_len, inbound),
        );
        conn.set_write_cap(self.opts.write_cap);
        let mut reg = Ok(());
        if let Some(ws) = self.ws.as_mut() {
            reg = ws
                .open(key, &mut conn, inbound, now)
                .map_err(io::Error::from);
        }
        let reg = reg.and_then(|()| {
            conn.sync_interest(self.poll.registry(), key.token())
                .map_err(io::Error::from)
        });
        self.sockets.insert(key, Io::Open { conn, dirty: false });
        if let Err(e) = reg {
            self.ep
                .handle_failure(now, key, CloseReason::Io(e.to_string()));
        }
        // Bytes that arrived before registration raise an event anyway: registering a
        // readable socket fires. Plaintext read with the end of a TLS handshake, or records
        // still in the TLS buffer, raise none: read a TLS stream once without waiting for
        // one. Only bytes already in hand mark it unread: that holds its verdicts until it
        // is read, which under a flood of other peers can be many turns away.
        if tls && self.sockets.get_mut(key).is_some() {
            if early {
                self.ep.set_unread(key, true);
            }
            self.ready.again(key.token());
        }
        self.apply_outputs(now);
    }

    fn start_connect(&mut self, key: ConnKey, addr: PeerAddr, now: Instant) {
        let started = Dialing::start(&addr, &self.opts.socket, now, self.opts.connect_timeout)
            .and_then(|mut c| {
                self.poll
                    .registry()
                    .register(c.source(), key.token(), Interest::WRITABLE)?;
                Ok(c)
            });
        match started {
            Ok(c) => self.sockets.insert(key, Io::Connecting(c)),
            Err(e) => self.ep.handle_connect_failed(now, key, &e.into()),
        }
    }

    /// Checks a connect in flight after an event on it.
    fn finish_connect(&mut self, key: ConnKey, now: Instant) {
        let Some(Io::Connecting(c)) = self.sockets.get_mut(key) else {
            return;
        };
        match c.poll(now) {
            ConnectStatus::Pending => {}
            ConnectStatus::Connected(mut plain) => {
                self.sockets.remove(key);
                let _ = self.poll.registry().deregister(&mut plain);
                match self.wrap_connected(plain) {
                    Ok(stream) if stream.is_handshaking() => {
                        self.start_connected_handshake(key, stream, now);
                    }
                    Ok(stream) => self.serve_connected(key, stream, now),
                    Err(e) => self.ep.handle_connect_failed(now, key, &e),
                }
            }
            ConnectStatus::Failed(e) => {
                self.sockets.remove(key);
                self.ep.handle_connect_failed(now, key, &e.into());
            }
            ConnectStatus::TimedOut => {
                self.sockets.remove(key);
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                self.ep.handle_connect_failed(now, key, &e);
            }
        }
        self.apply_outputs(now);
    }

    /// Hands a pool's connection (its handshake done, if any) to the endpoint and serves it.
    fn serve_connected(&mut self, key: ConnKey, stream: Stream, now: Instant) {
        let addrs = stream
            .local_addr()
            .and_then(|l| Ok((l, stream.peer_addr()?)));
        match addrs {
            Ok((local, peer)) => {
                let (alpn, server_name) = stream.tls_names();
                let info = ConnInfo {
                    local,
                    peer,
                    inbound: false,
                    alpn,
                    server_name,
                };
                self.ep.handle_connected(now, key, info);
                self.start_serving(key, stream, false, now);
            }
            Err(e) => self.ep.handle_connect_failed(now, key, &e),
        }
    }

    // ----- reading ---------------------------------------------------------------------

    /// Reads `key` for one byte budget, or until the turn's deadline ([`Turn::read`]): in
    /// its turn, or once before its verdict (`verdict.rs`).
    fn read(&mut self, key: ConnKey, now: Instant) {
        if self.ep.is_paused(key) {
            // The memory budget paused it: not read, not carried over. Its readiness is not
            // lost: the endpoint's `Output::Resume` serves it again, event or not.
            return;
        }
        if self.ws.is_some() && matches!(self.sockets.get_mut(key), Some(Io::Open { .. })) {
            return self.read_ws(key, now);
        }
        let conn = match self.sockets.get_mut(key) {
            Some(Io::Open { conn, .. }) => conn,
            Some(Io::Handshaking(_)) => return self.drive_connected_handshake(key, now),
            _ => return, // "Sporadic events happen": a stale or frozen token.
        };
        let ep = &mut self.ep;
        let result = self.ready.read(
            key.token(),
            conn,
            &mut self.scratch,
            self.opts.read_budget,
            Instant::now,
            |frame, _| ep.handle_frame(now, key, frame),
        );
        match result {
            Ok(Served::Drained) => self.ep.set_unread(key, false),
            // Carried over, served first next turn; its verdicts wait until then.
            Ok(Served::Carried) => self.ep.set_unread(key, true),
            Ok(Served::Stopped) => {}
            Ok(Served::Closed) => self.ep.handle_read_closed(now, key),
            Err(NetError::FrameTooLong { .. }) => {
                self.ep
                    .handle_bad_frame(now, key, ProtocolError::FrameTooLong);
            }
            Err(e) => self.ep.handle_failure(now, key, close_reason_for(&e)),
        }
        self.recharge(key);
        self.mark_dirty(key);
        self.apply_outputs(now);
        // What this read made the handler queue counts at once, not at the end of the turn:
        // the budget then holds within one connection's growth.
        self.check_memory(now);
    }

    // ----- drain and published statistics --------------------------------------------

    /// Starts the drain asked for in the shared state (or brings its deadline closer).
    fn check_drain(&mut self, now: Instant) {
        if !self.shared.draining.load(Ordering::Acquire) {
            return;
        }
        let Some(deadline) = *self.shared.drain_deadline.lock() else {
            return;
        };
        if self.drain.is_some_and(|d| d <= deadline) {
            return;
        }
        if let Some(mut a) = self.acceptor.take() {
            // Closing the listener makes the kernel refuse new connects at once, rather than
            // leaving them in a backlog nobody accepts.
            let _ = a.deregister(self.poll.registry());
            self.accept_again = false;
        }
        self.drain = Some(deadline);
        self.ep.handle_drain(now, deadline);
        self.apply_outputs(now);
    }

    /// Publishes the loop's statistics if the last publication is old enough; never waits
    /// for a reader (a held lock skips this publication).
    fn publish(&mut self, now: Instant) {
        if self.published_at.is_some_and(|t| now < t + PUBLISH_EVERY) {
            self.unpublished = true;
            return;
        }
        match self.shared.published.get(self.index).map(|s| s.try_lock()) {
            Some(Some(mut slot)) => {
                slot.clone_from(self.ep.stats());
                self.published_at = Some(now);
                self.unpublished = false;
            }
            _ => self.unpublished = true,
        }
    }

    // ----- commands --------------------------------------------------------------------

    fn commands(&mut self, now: Instant) {
        // Bounded: a flood of commands cannot starve the sockets and timers.
        for _ in 0..self.opts.command_capacity {
            let Ok(cmd) = self.rx.try_recv() else {
                break;
            };
            match cmd {
                Command::Send(id, frame) => {
                    self.ep.handle_send(now, id, &frame);
                    self.apply_outputs(now);
                    self.check_memory(now);
                }
                Command::Close(id) => self.ep.handle_close(now, id),
                Command::Freeze(id) => self.ep.handle_freeze(id),
                Command::Snapshot(reply) => {
                    let _ = reply.try_send(self.ep.stats().clone());
                }
            }
            self.apply_outputs(now);
        }
    }

    // ----- outputs ---------------------------------------------------------------------

    fn mark_dirty(&mut self, key: ConnKey) {
        if let Some(Io::Open { dirty, .. }) = self.sockets.get_mut(key)
            && !*dirty
        {
            *dirty = true;
            self.dirty.push(key);
        }
    }

    /// Carries out everything the endpoint has decided, in order.
    fn apply_outputs(&mut self, now: Instant) {
        while let Some(out) = self.ep.poll_output() {
            match out {
                Output::Transmit {
                    conn: key,
                    lane,
                    frame,
                } => {
                    let Some(Io::Open { conn, dirty, .. }) = self.sockets.get_mut(key) else {
                        continue;
                    };
                    let queued = match (self.ws.as_mut(), lane) {
                        (Some(ws), lane) => ws.transmit(key, conn, lane, frame),
                        (None, Lane::Data) => conn.send(frame).map_err(|e| Full::from(e.error())),
                        (None, Lane::Priority) => send_heartbeat(conn, frame),
                    };
                    let data_queued = conn.queued();
                    if !*dirty {
                        *dirty = true;
                        self.dirty.push(key);
                    }
                    self.recharge(key);
                    match queued {
                        Ok(()) if lane == Lane::Data => {
                            self.ep.handle_queued(now, key, data_queued);
                        }
                        Ok(()) => {}
                        Err(Full::Lane) => self.ep.handle_write_full(now, key, lane),
                        Err(Full::Failed(reason)) => self.ep.handle_failure(now, key, reason),
                        Err(Full::Refused(e)) => {
                            log::warn!("loop {}: frame dropped: {e}", self.index);
                        }
                    }
                }
                Output::Close { conn: key, goodbye } => {
                    if let Some(mut io) = self.sockets.remove(key) {
                        // A WebSocket connection says goodbye with a close frame.
                        let ws = self.ws.as_mut().is_some_and(|ws| ws.closing(key, &mut io));
                        close_socket(io, goodbye || ws, self.poll.registry());
                        // A slot freed below max_connections: look at the backlog again.
                        self.accept_again = self.acceptor.is_some();
                    }
                }
                Output::Freeze { conn: key } => {
                    if let Some(Io::Open { mut conn, .. }) = self.sockets.remove(key) {
                        let _ = conn.deregister(self.poll.registry());
                        self.sockets.insert(key, Io::Frozen(conn));
                    }
                }
                Output::Connect { conn: key, addr } => self.start_connect(key, addr, now),
                // Whatever came while it was paused was consumed unread: serve it next turn.
                Output::Resume { conn: key } => self.ready.again(key.token()),
                Output::ReadFirst { conn: key } => self.read_before_verdict(key),
            }
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            let registry = self.poll.registry();
            let Some(Io::Open { conn, dirty, .. }) = self.sockets.get_mut(key) else {
                continue;
            };
            *dirty = false;
            let result = match conn.flush() {
                Ok(FlushStatus::Empty) | Ok(FlushStatus::Pending) => {
                    conn.sync_interest(registry, key.token())
                }
                Err(e) => Err(e),
            };
            let data_queued = conn.queued();
            if let Err(e) = result {
                self.ep.handle_failure(now, key, close_reason_for(&e));
            } else {
                // A flush may bring the queue back under the low watermark.
                self.ep.handle_queued(now, key, data_queued);
            }
            self.apply_outputs(now);
            self.recharge(key);
        }
        if self.dirty.is_empty() {
            // Keep the allocation for the next turn.
            self.dirty = dirty;
        }
    }
}

impl<H: Handler> Driver<H> {
    /// Tells the endpoint what `key`'s buffers hold now, after they may have changed.
    fn recharge(&mut self, key: ConnKey) {
        if let Some(Io::Open { conn, .. }) = self.sockets.get_mut(key) {
            let session = self.ws.as_ref().map_or(0, |ws| ws.heap_bytes(key));
            self.ep.handle_held(key, conn.heap_bytes() + session);
        }
    }

    /// Runs the endpoint's memory-budget policy and carries out its closes; gives freed
    /// memory back to the OS when it says a pressure episode is over.
    fn check_memory(&mut self, now: Instant) {
        let release = self.ep.check_memory(now);
        self.apply_outputs(now);
        if release {
            let released = wheelbeat_net::release_free_memory();
            log::debug!(
                "loop {}: memory pressure over; freed memory released to the OS: {released}",
                self.index
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the per-connection cost stated in the shell's module docs: the driver's slot
    /// (socket, codec, write-queue bookkeeping) and the endpoint's table entry.
    #[test]
    fn per_connection_state_stays_small() {
        let driver = std::mem::size_of::<Option<(ConnKey, Io)>>();
        let endpoint = crate::endpoint::state_size();
        eprintln!("driver slot {driver} B, endpoint entry {endpoint} B");
        assert!(driver <= 200, "driver slot is {driver} bytes");
        assert!(endpoint <= 64, "endpoint entry is {endpoint} bytes");
    }

    /// Guards the cost of a WebSocket connection stated in `shell::websocket`: the plain slot
    /// plus the session's slot beside it (a `ws::Session`, 56 bytes, and the driver's flags),
    /// with no heap while idle (checked over real sockets in `tests/tests/websocket.rs`).
    #[test]
    fn websocket_state_stays_small() {
        let driver = std::mem::size_of::<Option<(ConnKey, Io)>>();
        let session = ws::slot_size();
        let endpoint = crate::endpoint::state_size();
        eprintln!(
            "websocket connection: driver slot {driver} B + session slot {session} B + endpoint entry {endpoint} B = {} B",
            driver + session + endpoint
        );
        assert!(session <= 96, "session slot is {session} bytes");
    }
}
