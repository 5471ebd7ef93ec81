//! The pool side of an endpoint: outbound targets, connects in flight, and reconnects after
//! exponential backoff with full jitter, connects paced.
//!
//! # Ground rules
//! - A target is always in exactly one [`TargetState`]; only a close on purpose (`Local`,
//!   `Shutdown`) moves it to `Stopped`, which is final.
//! - At most [`MAX_PENDING_CONNECTS`] connects are in flight; the others wait in the ready
//!   queue, in order, and start as fast as the [`Pacer`] allows.
//! - Connect deadlines and backoff ends share one binary heap of timers, checked lazily: a
//!   timer whose connection or state has moved on is ignored when it fires.
//! - The endpoint decides and the driver connects: a start is an
//!   [`Output::Connect`](super::Output::Connect) for a key in state `Connecting`, and the
//!   deadline is the endpoint's (the driver's socket is dropped by an
//!   [`Output::Close`](super::Output::Close) when it passes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use wheelbeat_net::{ConnKey, PeerAddr};

use super::backoff::Backoff;
use super::pacer::Pacer;
use super::{Endpoint, Queued, State};
use crate::shell::handler::Handler;

/// Most connects a pool has in flight at once: a burst of thousands of SYNs would overflow the
/// server's accept backlog and cost seconds of SYN retries.
pub(crate) const MAX_PENDING_CONNECTS: usize = 256;

/// An outbound target of a pool.
#[derive(Debug)]
pub(crate) struct Target {
    addr: PeerAddr,
    state: TargetState,
    backoff: Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetState {
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
    pub(crate) fn new(addr: PeerAddr, initial: Duration, max: Duration) -> Target {
        Target {
            addr,
            state: TargetState::Ready,
            backoff: Backoff::new(initial, max),
        }
    }
}

/// Timers of the endpoint outside the monitor (pool only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A connect in flight reaches its deadline.
    ConnectDeadline(ConnKey),
    /// A target's backoff is over.
    Reconnect(usize),
}

/// The pool's bookkeeping.
#[derive(Debug)]
pub(super) struct Outbound {
    targets: Vec<Target>,
    ready: VecDeque<usize>,
    connecting: usize,
    pacer: Pacer,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    rng: fastrand::Rng,
    connect_timeout: Duration,
}

impl Outbound {
    pub(super) fn new(
        targets: Vec<Target>,
        connect_rate: Option<u32>,
        connect_timeout: Duration,
        rng: fastrand::Rng,
    ) -> Outbound {
        Outbound {
            ready: (0..targets.len()).collect(),
            targets,
            connecting: 0,
            pacer: Pacer::new(connect_rate),
            timers: BinaryHeap::new(),
            rng,
            connect_timeout,
        }
    }

    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// A connect of `t` completed: its failures are forgotten.
    pub(super) fn connected(&mut self, t: usize) {
        self.connecting -= 1;
        self.targets[t].backoff.reset();
    }

    /// A connect in flight ended without a connection.
    pub(super) fn connect_ended(&mut self) {
        self.connecting -= 1;
    }

    /// `t` is never reconnected.
    pub(super) fn stop(&mut self, t: usize) {
        self.targets[t].state = TargetState::Stopped;
    }

    pub(super) fn stop_all(&mut self) {
        for t in &mut self.targets {
            t.state = TargetState::Stopped;
        }
        self.ready.clear();
    }
}

impl<H: Handler> Endpoint<H> {
    /// Starts connects for ready targets, at most [`MAX_PENDING_CONNECTS`] at once and as fast
    /// as the pacer allows.
    pub(super) fn start_connects(&mut self, now: Instant) {
        let pool = &mut self.pool;
        while pool.connecting < MAX_PENDING_CONNECTS {
            let Some(&t) = pool.ready.front() else {
                return;
            };
            if pool.targets[t].state != TargetState::Ready {
                pool.ready.pop_front();
                continue;
            }
            if !pool.pacer.try_start(now) {
                return;
            }
            pool.ready.pop_front();
            pool.targets[t].state = TargetState::Busy;
            pool.connecting += 1;
            let conn = self.conns.insert(State::Connecting { target: t });
            // `connect_timeout` is validated when the pool is built, so this cannot overflow
            // short of an `Instant` near the end of time; saturate rather than panic.
            let deadline = now.checked_add(pool.connect_timeout).unwrap_or(now);
            pool.timers
                .push(Reverse((deadline, Timer::ConnectDeadline(conn))));
            self.out.push_back(Queued::Connect {
                conn,
                addr: pool.targets[t].addr.clone(),
            });
        }
    }

    /// A connect of target `t` failed: tell the handler, back off.
    pub(super) fn connect_failed(&mut self, now: Instant, t: usize, e: &io::Error) {
        self.pool.connect_ended();
        self.stats.connect_failures += 1;
        let addr = self.pool.targets[t].addr.clone();
        log::debug!("loop {}: connect to {addr} failed: {e}", self.index);
        self.call(now, None, |h, cx| h.on_connect_error(cx, &addr, e));
        self.schedule_reconnect(t, now);
    }

    pub(super) fn schedule_reconnect(&mut self, t: usize, now: Instant) {
        let pool = &mut self.pool;
        let target = &mut pool.targets[t];
        if target.state == TargetState::Stopped {
            return;
        }
        let delay = target.backoff.next_delay(&mut pool.rng);
        target.state = TargetState::BackingOff;
        let at = now.checked_add(delay).unwrap_or(now);
        pool.timers.push(Reverse((at, Timer::Reconnect(t))));
    }

    /// When the pool next wants to start a connect: `None` if it has nothing to start or no
    /// room in flight, else now or when the pacer allows.
    pub(super) fn next_connect_at(&self, now: Instant) -> Option<Instant> {
        let pool = &self.pool;
        if pool.ready.is_empty() || pool.connecting >= MAX_PENDING_CONNECTS {
            return None;
        }
        Some(pool.pacer.ready_at().map_or(now, |t| t.max(now)))
    }

    /// Fires the pool's timers due at `now`.
    pub(super) fn pool_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.pool.timers.peek().copied() {
            if at > now {
                break;
            }
            self.pool.timers.pop();
            match timer {
                Timer::Reconnect(t) => {
                    if self.pool.targets[t].state == TargetState::BackingOff {
                        self.pool.targets[t].state = TargetState::Ready;
                        self.pool.ready.push_back(t);
                    }
                }
                Timer::ConnectDeadline(conn) => {
                    if let Some(State::Connecting { .. }) = self.conns.get(conn) {
                        let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                        self.handle_connect_failed(now, conn, &e);
                    }
                }
            }
        }
    }
}
