//! The pool side of a loop: outbound targets, connects in flight, and
//! reconnects after exponential backoff with full jitter.
//!
//! # Ground rules
//! - A target is always in exactly one [`TargetState`]; only a close on
//!   purpose (`Local`, `Shutdown`) moves it to `Stopped`, which is final.
//! - At most [`MAX_PENDING_CONNECTS`] connects are in flight; the others wait
//!   in the ready queue, in order.
//! - Connect deadlines and backoff ends share one binary heap of timers,
//!   checked lazily: a timer whose connection or state has moved on is
//!   ignored when it fires.

use std::cmp::Reverse;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::Interest;
use wheelbeat_net::{ConnKey, ConnectStatus, Connecting};

use super::super::backoff::Backoff;
use super::super::handler::Handler;
use super::{EventLoop, Slot, net_to_io};

/// Most connects a pool has in flight at once: a burst of thousands of SYNs
/// would overflow the server's accept backlog and cost seconds of SYN retries.
const MAX_PENDING_CONNECTS: usize = 256;

/// An outbound target of a pool.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(super) state: TargetState,
    backoff: Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TargetState {
    /// Waiting in the ready queue for a connect slot.
    Ready,
    /// A connect is in flight, or the connection is up (or frozen).
    Busy,
    /// Waiting for its backoff timer.
    BackingOff,
    /// Closed on purpose: never reconnected.
    Stopped,
}

impl Target {
    pub(crate) fn new(addr: SocketAddr, initial: Duration, max: Duration) -> Target {
        Target {
            addr,
            state: TargetState::Ready,
            backoff: Backoff::new(initial, max),
        }
    }
}

/// Timers of the loop outside the monitor (pool only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Re-check a connect in flight (its deadline).
    ConnectDeadline(ConnKey),
    /// A target's backoff is over.
    Reconnect(usize),
}

impl<H: Handler> EventLoop<H> {
    /// Starts connects for ready targets, at most [`MAX_PENDING_CONNECTS`] at
    /// once and as fast as the pacer allows.
    pub(super) fn start_connects(&mut self, now: Instant) {
        while self.connecting < MAX_PENDING_CONNECTS {
            let Some(&t) = self.ready.front() else {
                return;
            };
            if self.targets[t].state != TargetState::Ready {
                self.ready.pop_front();
                continue;
            }
            if !self.pacer.try_start(now) {
                return;
            }
            self.ready.pop_front();
            let addr = self.targets[t].addr;
            let timeout = self.opts.connect_timeout;
            match Connecting::start(addr, &self.opts.socket, now, timeout) {
                Ok(mut connecting) => {
                    let registry = self.poll.registry();
                    let deadline = connecting.deadline();
                    let mut reg = Ok(());
                    let key = self.conns.insert_with(|key| {
                        reg = registry.register(
                            connecting.stream_mut(),
                            key.token(),
                            Interest::WRITABLE,
                        );
                        Slot::Connecting {
                            connecting,
                            target: t,
                        }
                    });
                    if let Err(e) = reg {
                        self.conns.remove(key);
                        self.connect_failed(t, &e, now);
                        continue;
                    }
                    self.targets[t].state = TargetState::Busy;
                    self.connecting += 1;
                    self.timers
                        .push(Reverse((deadline, Timer::ConnectDeadline(key))));
                }
                Err(e) => self.connect_failed(t, &net_to_io(e), now),
            }
        }
    }

    fn connect_failed(&mut self, t: usize, e: &io::Error, now: Instant) {
        self.stats.connect_failures += 1;
        log::debug!(
            "loop {}: connect to {} failed: {e}",
            self.index,
            self.targets[t].addr
        );
        let addr = self.targets[t].addr;
        self.handler
            .on_connect_error(&mut Self::cx(&mut self.ops, now, self.index), addr, e);
        self.schedule_reconnect(t, now);
    }

    pub(super) fn schedule_reconnect(&mut self, t: usize, now: Instant) {
        let target = &mut self.targets[t];
        if target.state == TargetState::Stopped {
            return;
        }
        let delay = target.backoff.next_delay(&mut self.rng);
        target.state = TargetState::BackingOff;
        self.timers
            .push(Reverse((now + delay, Timer::Reconnect(t))));
    }

    /// When the pool next wants to start a connect: `None` if it has nothing
    /// to start or no room in flight, else now or when the pacer allows.
    pub(super) fn next_connect_at(&self, now: Instant) -> Option<Instant> {
        if self.ready.is_empty() || self.connecting >= MAX_PENDING_CONNECTS {
            return None;
        }
        Some(self.pacer.ready_at().map_or(now, |t| t.max(now)))
    }

    pub(super) fn pool_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Reconnect(t) => {
                    if self.targets[t].state == TargetState::BackingOff {
                        self.targets[t].state = TargetState::Ready;
                        self.ready.push_back(t);
                    }
                }
                Timer::ConnectDeadline(key) => self.finish_connect(key, now),
            }
        }
        self.start_connects(now);
    }

    /// Checks a connect in flight (on an event or at its deadline).
    pub(super) fn finish_connect(&mut self, key: ConnKey, now: Instant) {
        let Some(Slot::Connecting { connecting, target }) = self.conns.get_mut(key) else {
            return;
        };
        let t = *target;
        let status = connecting.poll(now);
        let stream = match status {
            ConnectStatus::Pending => return,
            ConnectStatus::Connected(stream) => stream,
            ConnectStatus::Failed(e) => {
                self.conns.remove(key);
                self.connecting -= 1;
                self.connect_failed(t, &net_to_io(e), now);
                return;
            }
            ConnectStatus::TimedOut => {
                self.conns.remove(key);
                self.connecting -= 1;
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                self.connect_failed(t, &e, now);
                return;
            }
        };
        self.conns.remove(key);
        self.connecting -= 1;
        let mut stream = stream;
        let _ = self.poll.registry().deregister(&mut stream);
        let peer = self.targets[t].addr;
        self.targets[t].backoff.reset();
        self.stats.connected += 1;
        self.open(stream, peer, Some(t), now);
    }
}
