//! TLS handshakes in the driver: a peer is served by the endpoint only once its handshake
//! has completed.
//!
//! # Ground rules
//! - An accepted TLS peer waits here, in [`Handshakes`], under a token of its own (the top
//!   bit set, which the connection table never issues), with a deadline of
//!   `accepted + handshake_timeout`. The endpoint, and so the monitor and the handler, learn
//!   of it when the handshake completes ([`Driver::serve_accepted`]); a handshake in
//!   progress is never judged as silence. At the deadline it is closed with
//!   [`CloseReason::HandshakeTimeout`]; a handshake that fails (garbage instead of a
//!   ClientHello, a refused certificate, a peer that closes) with
//!   [`CloseReason::Handshake`]; both are counted and logged by the endpoint, and the
//!   other connections carry on.
//! - A pool's TLS connection finishes its handshake under its endpoint key
//!   ([`Io::Handshaking`]), which the endpoint still counts as a connect in flight: its
//!   connect deadline bounds the TCP connect and the handshake together, and a failure is a
//!   connect failure (retried after a backoff).
//! - A handshake step is bounded: at most [`HANDSHAKE_READS`] socket reads (of one record
//!   each), then the peer is served again next turn without an event, like a connection
//!   over its read budget.
//! - Handshake deadlines are all `now + handshake_timeout`, so they are taken in order from a
//!   queue; an entry whose handshake completed earlier is skipped by its serial number.
//! - Plaintext that arrives with the end of the handshake is kept in the stream and is the
//!   codec's first input ([`Stream::push_early`]).
//! - Memory: every accepted peer in its handshake may hold up to the TLS stream's ciphertext
//!   cap (82 KiB: one handshake message and a record), and thousands of peers that connect
//!   and send half a ClientHello would hold that much each, outside the endpoint's memory
//!   budget (those peers are not its connections yet). So the handshakes of a loop together
//!   may hold at most half of [`Options::memory_budget`](crate::Options::memory_budget): a
//!   step that leaves them above it closes the peer it served
//!   ([`CloseReason::MemoryBudget`]). An honest ClientHello is a few hundred bytes; only peers
//!   that stall with large partial records ever come near it.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use mio::{Interest, Token};
use wheelbeat_net::{ConnKey, PeerAddr, Transport};

use super::stream::{Plain, Stream};
use super::{Driver, Io, LISTENER, WAKER};
use crate::shell::CloseReason;
use crate::shell::handler::Handler;
use crate::shell::tls::TlsSettings;

/// The tag of handshake tokens: the top bit, never set in a connection table's tokens.
const TAG: usize = 1 << (usize::BITS - 1);

/// Socket reads one handshake step makes at most before yielding to the other peers.
const HANDSHAKE_READS: usize = 4;

/// Plaintext read at the end of a handshake goes through this buffer (more stays in the
/// TLS stream's own buffer).
const EARLY_CHUNK: usize = 4096;

/// Whether `token` names an accepted peer in its handshake.
pub(super) fn is_handshake_token(token: Token) -> bool {
    token.0 & TAG != 0 && token != WAKER && token != LISTENER
}

/// An accepted peer in its handshake.
struct Pending {
    stream: Stream,
    peer: PeerAddr,
    serial: u64,
    /// Heap bytes its stream held after its last step.
    held: usize,
}

/// The accepted peers whose TLS handshake is in progress.
#[derive(Default)]
pub(super) struct Handshakes {
    slots: Vec<Option<Pending>>,
    free: Vec<usize>,
    live: usize,
    /// `(deadline, slot, serial)`, in deadline order.
    deadlines: VecDeque<(Instant, usize, u64)>,
    next_serial: u64,
    /// Read buffer for handshake steps, allocated by the first TLS peer.
    buf: Vec<u8>,
    /// Heap bytes held by all the pending streams (the sum of their `held`).
    held: usize,
}

impl Handshakes {
    /// Handshakes in progress.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The earliest deadline still queued (possibly of a handshake already finished: the
    /// loop then wakes once for nothing and drops it).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|&(d, ..)| d)
    }

    fn insert(&mut self, stream: Stream, peer: PeerAddr, deadline: Instant) -> usize {
        let serial = self.next_serial;
        self.next_serial += 1;
        let pending = Pending {
            stream,
            peer,
            serial,
            held: 0,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(pending);
                i
            }
            None => {
                self.slots.push(Some(pending));
                self.slots.len() - 1
            }
        };
        self.live += 1;
        self.deadlines.push_back((deadline, slot, serial));
        slot
    }

    fn remove(&mut self, slot: usize) -> Option<Pending> {
        let p = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.live -= 1;
        self.held -= p.held;
        Some(p)
    }

    /// Records what `slot`'s stream holds now; returns the total all handshakes hold.
    fn recharge(&mut self, slot: usize) -> usize {
        if let Some(Some(p)) = self.slots.get_mut(slot) {
            let now = p.stream.heap_bytes();
            self.held = self.held - p.held + now;
            p.held = now;
        }
        self.held
    }
}

/// Where a handshake step left the stream.
enum Step {
    /// The handshake is over (plaintext that came with it is kept in the stream).
    Done,
    /// Waiting for the peer (the socket would block).
    Wait,
    /// Bytes are left to read: serve again next turn.
    Again,
}

/// Moves a handshake on: reads what the peer sent, a record at a time, and writes our
/// flight. An error (garbage, a refused certificate, the peer closing) ends it.
fn step(stream: &mut Stream, buf: &mut Vec<u8>) -> io::Result<Step> {
    if buf.is_empty() {
        buf.resize(EARLY_CHUNK, 0);
    }
    let mut step = Step::Again;
    for _ in 0..HANDSHAKE_READS {
        match stream.read(buf) {
            Ok(0) if !stream.is_handshaking() => {
                // Done, then closed: the codec reads the end of the stream itself.
                step = Step::Done;
                break;
            }
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls: peer closed during the handshake",
                ));
            }
            Ok(n) => {
                // Application data only comes once the handshake is over.
                stream.push_early(&buf[..n]);
                step = Step::Done;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                step = Step::Wait;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    // Our flight (or a pool's ClientHello); what the socket does not take now goes on the
    // next writable event.
    stream.flush_output()?;
    if !stream.is_handshaking() {
        return Ok(Step::Done);
    }
    Ok(step)
}

impl<H: Handler> Driver<H> {
    /// Wraps an accepted socket in TLS when the server speaks it.
    pub(super) fn wrap_accepted(&self, plain: Plain, now: Instant) -> io::Result<Stream> {
        match &self.opts.tls {
            #[cfg(feature = "tls")]
            TlsSettings::Server(config) => {
                let deadline = now.checked_add(self.opts.handshake_timeout);
                let tls = wheelbeat_net::tls::TlsStream::server(plain, config.clone(), deadline)?;
                Ok(Stream::tls(tls))
            }
            // A pool's client settings do not apply to what a server accepts.
            #[cfg(feature = "tls")]
            TlsSettings::Client { .. } => Ok(Stream::Plain(plain)),
            TlsSettings::Off => {
                let _ = now;
                Ok(Stream::Plain(plain))
            }
        }
    }

    /// Wraps a pool's connected socket in TLS when the pool speaks it.
    pub(super) fn wrap_connected(&self, plain: Plain) -> io::Result<Stream> {
        match &self.opts.tls {
            #[cfg(feature = "tls")]
            TlsSettings::Client {
                config,
                server_name,
            } => {
                // No deadline in the stream: the endpoint's connect deadline covers it.
                let tls = wheelbeat_net::tls::TlsStream::client(
                    plain,
                    config.clone(),
                    server_name,
                    None,
                )?;
                Ok(Stream::tls(tls))
            }
            #[cfg(feature = "tls")]
            TlsSettings::Server(_) => Ok(Stream::Plain(plain)),
            TlsSettings::Off => Ok(Stream::Plain(plain)),
        }
    }

    /// Starts serving an accepted peer's handshake under a token of its own.
    pub(super) fn start_accepted_handshake(
        &mut self,
        stream: Stream,
        peer: PeerAddr,
        now: Instant,
    ) {
        let deadline = now.checked_add(self.opts.handshake_timeout).unwrap_or(now);
        let slot = self.handshakes.insert(stream, peer, deadline);
        let token = Token(TAG | slot);
        let Some(Some(p)) = self.handshakes.slots.get_mut(slot) else {
            return;
        };
        let registered = self.poll.registry().register(
            &mut p.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            // The ClientHello may be in already: do not wait for an event.
            Ok(()) => self.ready.again(token),
            Err(e) => {
                if let Some(p) = self.handshakes.remove(slot) {
                    let reason = CloseReason::Io(e.to_string());
                    self.ep.handle_handshake_failed(&p.peer, &reason);
                }
            }
        }
    }

    /// Serves an accepted peer's handshake after an event (or again after its budget).
    pub(super) fn drive_accepted_handshake(&mut self, token: Token, now: Instant) {
        let slot = token.0 & !TAG;
        let hs = &mut self.handshakes;
        let Some(Some(p)) = hs.slots.get_mut(slot) else {
            return; // A stale event of a finished handshake.
        };
        let result = step(&mut p.stream, &mut hs.buf);
        if matches!(result, Ok(Step::Wait | Step::Again))
            && hs.recharge(slot) > self.opts.memory_budget / 2
        {
            // This peer's step took the handshakes past their share of the memory budget:
            // it is the one that grew (see the module docs, "Memory").
            if let Some(mut p) = self.handshakes.remove(slot) {
                let _ = self.poll.registry().deregister(&mut p.stream);
                self.ep
                    .handle_handshake_failed(&p.peer, &CloseReason::MemoryBudget);
                self.accept_again = true;
            }
            return;
        }
        match result {
            Ok(Step::Wait) => {}
            Ok(Step::Again) => self.ready.again(token),
            Ok(Step::Done) => {
                let Some(mut p) = self.handshakes.remove(slot) else {
                    return;
                };
                let _ = self.poll.registry().deregister(&mut p.stream);
                self.serve_accepted(p.stream, p.peer, now);
            }
            Err(e) => {
                let Some(mut p) = self.handshakes.remove(slot) else {
                    return;
                };
                let _ = self.poll.registry().deregister(&mut p.stream);
                self.ep
                    .handle_handshake_failed(&p.peer, &CloseReason::Handshake(e.to_string()));
                // A slot freed below `max_connections`.
                self.accept_again = true;
            }
        }
    }

    /// Closes the accepted peers whose handshake deadline has passed.
    pub(super) fn expire_handshakes(&mut self, now: Instant) {
        while let Some(&(deadline, slot, serial)) = self.handshakes.deadlines.front() {
            if deadline > now {
                break;
            }
            self.handshakes.deadlines.pop_front();
            let current = matches!(
                self.handshakes.slots.get(slot),
                Some(Some(p)) if p.serial == serial
            );
            if !current {
                continue; // Finished earlier; the slot may serve another peer now.
            }
            if let Some(mut p) = self.handshakes.remove(slot) {
                let _ = self.poll.registry().deregister(&mut p.stream);
                self.ep
                    .handle_handshake_failed(&p.peer, &CloseReason::HandshakeTimeout);
                self.accept_again = self.acceptor.is_some();
            }
        }
        if self.handshakes.live == 0 && self.handshakes.deadlines.is_empty() {
            // No TLS peer in its handshake: give the read buffer back.
            self.handshakes.buf = Vec::new();
        }
    }

    /// Starts a pool connection's handshake under its endpoint key.
    pub(super) fn start_connected_handshake(
        &mut self,
        key: ConnKey,
        mut stream: Stream,
        now: Instant,
    ) {
        let registered = self.poll.registry().register(
            &mut stream,
            key.token(),
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                self.sockets.insert(key, Io::Handshaking(stream));
                // The ClientHello is queued: send it now.
                self.ready.again(key.token());
            }
            Err(e) => self.ep.handle_connect_failed(now, key, &e),
        }
    }

    /// Serves a pool connection's handshake after an event (or again after its budget).
    pub(super) fn drive_connected_handshake(&mut self, key: ConnKey, now: Instant) {
        let Some(Io::Handshaking(stream)) = self.sockets.get_mut(key) else {
            return;
        };
        match step(stream, &mut self.handshakes.buf) {
            Ok(Step::Wait) => {}
            Ok(Step::Again) => self.ready.again(key.token()),
            Ok(Step::Done) => {
                if let Some(Io::Handshaking(mut stream)) = self.sockets.remove(key) {
                    let _ = self.poll.registry().deregister(&mut stream);
                    self.serve_connected(key, stream, now);
                }
            }
            Err(e) => {
                self.sockets.remove(key);
                self.ep.handle_connect_failed(now, key, &e);
            }
        }
        self.apply_outputs(now);
    }
}
