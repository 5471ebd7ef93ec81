//! The endpoint's byte budgets: back-pressure per connection (queued output against the
//! write cap and its watermarks) and the loop's memory budget (every connection's buffers
//! together).
//!
//! # Ground rules
//! - The driver reports bytes ([`Endpoint::handle_queued`], [`Endpoint::handle_held`]); the
//!   endpoint decides: who hears `on_writable_changed`, whose reads are paused and resumed,
//!   who is closed over the budget, when freed memory should go back to the OS. The driver
//!   only obeys: it does not read a paused connection ([`Endpoint::is_paused`]) and serves it
//!   again at [`Output::Resume`](super::Output::Resume), event or not.
//!
//! # The policy, by the loop's total `T` against its budget `B`
//!
//! | when                                   | what                                                        |
//! |----------------------------------------|-------------------------------------------------------------|
//! | `T > B/2`                              | a pressure episode starts (memory to give back after)       |
//! | `T > 3/4 B` (after `B/16` of growth)   | pause reading the holders: biggest first, those over their write high watermark before any other, until what the unpaused connections hold is at most `B/2` |
//! | `T > B`                                | close the holders, biggest first ([`CloseReason::MemoryBudget`]), until `T <= 7/8 B` |
//! | a paused connection holds nothing      | resume it alone: its peer read all its output              |
//! | `T <= B/2`                             | resume every paused connection: the pressure is over        |
//! | paused longer than the heartbeat bound | close it ([`CloseReason::PausedTooLong`])                   |
//! | `T <= B/16` after an episode           | hand freed memory back to the OS                            |
//!
//! Why pause: reading a peer that does not read what we send (an echo it never reads) only
//! makes us queue more for it, and reading a peer in the middle of a huge frame only grows
//! that frame; not reading them stops the growth without closing anyone yet, while the
//! connections holding little (the healthy ones) are read as before. The cost of an attack
//! falls on the attackers, who hold the most. The pause and resume marks are apart (3/4 and
//! 1/2) so that a loop near one mark does not pause and resume the same peers every read.
//!
//! Why the bound: a paused peer cannot be judged on silence (its answer may sit unread in
//! its socket, and a peer is never convicted while it does, see
//! [`Monitor::set_unread`](crate::monitor::Monitor::set_unread)), so the pause must end by
//! itself: after `interval × (1 + jitter) + max_missed × timeout` (the heartbeat bound of
//! the loop's settings) it ends with a close. An honest peer is paused only while the loop
//! is under pressure and it holds the most; a pressure that lasts a whole heartbeat bound
//! is an attack, or a load the budget was not sized for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use wheelbeat_net::{ConnKey, ConnTable};

use super::{Endpoint, Queued, State};
use crate::monitor::Config;
use crate::shell::handler::Handler;
use crate::shell::{CloseReason, ConnId};

/// The loop's memory budget: every connection's buffered bytes, summed. See
/// [`Options::memory_budget`](crate::Options::memory_budget) and the module docs.
#[derive(Debug)]
pub(super) struct Memory {
    pub(super) budget: usize,
    pub(super) total: usize,
    /// Above half the budget since the last release: memory to give back once it is over.
    pub(super) pressure: bool,
    /// The connections whose reads are paused, with when each pause began: in that order,
    /// since pauses begin at the `now` of successive inputs.
    pub(super) paused: VecDeque<(ConnKey, Instant)>,
    /// The longest a pause lasts: the heartbeat bound of the loop's settings.
    pub(super) pause_bound: Duration,
    /// The total at or above which the next pause pass runs: a pass sorts every
    /// connection, so it runs again only after `budget / 16` of growth (or after closes).
    pub(super) next_pause_pass: usize,
}

impl Memory {
    pub(super) fn new(budget: usize, heartbeat: &Config) -> Memory {
        Memory {
            budget,
            total: 0,
            pressure: false,
            paused: VecDeque::new(),
            pause_bound: pause_bound(heartbeat),
            next_pause_pass: 0,
        }
    }

    /// The total above which reads are paused.
    fn pause_mark(&self) -> usize {
        self.budget / 4 * 3
    }

    /// The total at or below which every pause ends.
    fn resume_mark(&self) -> usize {
        self.budget / 2
    }
}

/// The heartbeat bound of `c` (the crate docs, THE BOUND): the longest a peer can be silent
/// before it is convicted, so the longest a paused peer, which is never convicted, is kept.
pub(super) fn pause_bound(c: &Config) -> Duration {
    c.interval
        .mul_f64(1.0 + c.jitter)
        .saturating_add(c.timeout.saturating_mul(c.max_missed))
        .saturating_add(c.tick)
}

/// Back-pressure settings of one loop.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watermarks {
    pub(super) cap: usize,
    pub(super) high: usize,
    pub(super) low: usize,
}

/// What a handler callback may read of its loop's connections (through [`Context`]).
pub(crate) struct QueueView<'a> {
    pub(super) conns: &'a ConnTable<State>,
    pub(super) index: usize,
    pub(super) cap: usize,
}

impl QueueView<'_> {
    /// Bytes queued on `id`'s data lane, if it is open on this loop.
    pub(crate) fn queued(&self, id: ConnId) -> Option<usize> {
        if id.loop_index() != self.index {
            return None;
        }
        match self.conns.get(id.key()) {
            Some(State::Open { queued, .. }) => Some(*queued),
            _ => None,
        }
    }

    /// The data lane's cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

/// What one data frame of `len` bytes costs against the write cap: the payload, its framing
/// (at most a 4-byte prefix) and the queue's per-frame bookkeeping.
pub(crate) fn data_cost(len: usize) -> usize {
    len + 4 + wheelbeat_net::FRAME_OVERHEAD
}

impl<H: Handler> Endpoint<H> {
    /// `conn`'s data lane now holds `queued` bytes (after frames were queued or flushed).
    /// Crossing the high watermark upwards, or the low one downwards, tells the handler
    /// ([`Handler::on_writable_changed`]).
    pub(crate) fn handle_queued(&mut self, now: Instant, conn: ConnKey, queued: usize) {
        let marks = self.marks;
        let Some(State::Open {
            queued: q,
            writable,
            ..
        }) = self.conns.get_mut(conn)
        else {
            return;
        };
        *q = queued;
        let changed = if *writable && queued > marks.high {
            *writable = false;
            true
        } else if !*writable && queued <= marks.low {
            *writable = true;
            true
        } else {
            false
        };
        if changed {
            let w = *writable;
            let id = self.id(conn);
            self.call(now, Some(conn), |h, cx| h.on_writable_changed(cx, id, w));
            self.settle(now);
        }
    }

    /// `conn`'s buffers (unread output, an unfinished input frame) now hold `bytes` of heap.
    /// A paused connection that holds nothing any more is resumed: its peer has read all
    /// its output, so reading it again no longer grows what we hold for it.
    pub(crate) fn handle_held(&mut self, conn: ConnKey, bytes: usize) {
        if let Some(State::Open { held, paused, .. }) = self.conns.get_mut(conn) {
            self.mem.total = self.mem.total - *held + bytes;
            *held = bytes;
            self.stats.memory_bytes = self.mem.total as u64;
            self.stats.memory_peak = self.stats.memory_peak.max(self.stats.memory_bytes);
            if *paused && bytes == 0 {
                self.resume(conn);
            }
        }
    }

    /// Whether `conn`'s reads are paused by the memory budget: the driver does not read it
    /// until [`Output::Resume`](super::Output::Resume).
    pub(crate) fn is_paused(&self, conn: ConnKey) -> bool {
        matches!(self.conns.get(conn), Some(State::Open { paused: true, .. }))
    }

    /// The memory budget's policy (the module docs' table); call after any input that may
    /// have grown the buffers. Over the budget, the open connections holding the most are
    /// closed ([`CloseReason::MemoryBudget`]) until the loop is back under 7/8 of it; over
    /// 3/4 of it, the biggest holders are paused; at or under 1/2, every pause ends. Returns
    /// `true` when a pressure episode (over half the budget) has just ended (under 1/16 of
    /// it): the moment to hand freed memory back to the OS.
    pub(crate) fn check_memory(&mut self, now: Instant) -> bool {
        let budget = self.mem.budget;
        if self.mem.total > budget / 2 {
            self.mem.pressure = true;
        }
        if self.mem.total > budget {
            self.close_biggest(now);
            // What is left may still be over the pause mark: look at once.
            self.mem.next_pause_pass = 0;
        }
        if self.mem.total > self.mem.pause_mark() && self.mem.total >= self.mem.next_pause_pass {
            self.pause_biggest(now);
        }
        if self.mem.total <= self.mem.resume_mark() && !self.mem.paused.is_empty() {
            log::info!(
                "loop {}: {} bytes buffered, memory pressure over: {} paused connection(s) \
                 resumed",
                self.index,
                self.mem.total,
                self.mem.paused.len()
            );
            while let Some(&(key, _)) = self.mem.paused.front() {
                self.resume(key);
            }
            self.mem.next_pause_pass = 0;
        }
        if self.mem.pressure && self.mem.total <= budget / 16 {
            self.mem.pressure = false;
            return true;
        }
        false
    }

    /// Over the budget: closes the biggest holders until the loop is under 7/8 of it.
    fn close_biggest(&mut self, now: Instant) {
        let budget = self.mem.budget;
        let mut holders: Vec<(usize, ConnKey)> = self
            .conns
            .iter()
            .filter_map(|(key, s)| match s {
                State::Open { held, .. } => Some((*held, key)),
                _ => None,
            })
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let before = self.mem.total;
        let target = budget / 8 * 7;
        let mut closed = 0;
        for (_, key) in holders {
            if self.mem.total <= target {
                break;
            }
            self.close(now, key, CloseReason::MemoryBudget);
            closed += 1;
        }
        self.settle(now);
        log::warn!(
            "loop {}: {before} bytes buffered, over the {budget}-byte memory budget: \
             closed the {closed} connection(s) holding the most",
            self.index
        );
    }

    /// Over the pause mark: pauses the biggest holders (those over their write high
    /// watermark first: they do not read what we send) until the connections still read
    /// hold at most half the budget.
    fn pause_biggest(&mut self, now: Instant) {
        let mut read_hold = self.mem.total;
        let mut candidates: Vec<(bool, usize, ConnKey)> = Vec::new();
        for (key, s) in self.conns.iter() {
            match s {
                State::Open {
                    held, paused: true, ..
                } => read_hold -= held,
                State::Open {
                    held,
                    writable,
                    paused: false,
                    ..
                } if *held > 0 => candidates.push((!writable, *held, key)),
                _ => {}
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut paused = 0;
        for (_, held, key) in candidates {
            if read_hold <= self.mem.resume_mark() {
                break;
            }
            if let Some(State::Open {
                peer, paused: p, ..
            }) = self.conns.get_mut(key)
            {
                *p = true;
                // Never judged while paused: its answer may be among the bytes not read.
                self.monitor.set_unread(*peer, true);
                self.mem.paused.push_back((key, now));
                read_hold -= held;
                paused += 1;
            }
        }
        self.stats.reads_paused += paused;
        self.stats.connections_paused = self.mem.paused.len() as u64;
        self.mem.next_pause_pass = self.mem.total + self.mem.budget / 16;
        if paused > 0 {
            log::warn!(
                "loop {}: {} bytes buffered, over 3/4 of the {}-byte memory budget: paused \
                 reading the {paused} connection(s) holding the most ({} paused)",
                self.index,
                self.mem.total,
                self.mem.budget,
                self.mem.paused.len()
            );
        }
    }

    /// Ends `key`'s pause: the driver serves it again at once, event or not. The peer stays
    /// marked unread (no verdict) until the driver has read it.
    fn resume(&mut self, key: ConnKey) {
        if let Some(State::Open { paused, .. }) = self.conns.get_mut(key) {
            *paused = false;
            self.out.push_back(Queued::Resume { conn: key });
        }
        self.forget_pause(key);
    }

    /// Drops `key` from the paused list (resumed, closed or frozen).
    pub(super) fn forget_pause(&mut self, key: ConnKey) {
        if let Some(i) = self.mem.paused.iter().position(|(k, _)| *k == key) {
            self.mem.paused.remove(i);
        }
        self.stats.connections_paused = self.mem.paused.len() as u64;
    }

    /// When the oldest pause reaches its bound, if any.
    pub(super) fn next_pause_end(&self) -> Option<Instant> {
        let (_, since) = self.mem.paused.front()?;
        Some(*since + self.mem.pause_bound)
    }

    /// Closes the connections paused for longer than the bound
    /// ([`CloseReason::PausedTooLong`]).
    pub(super) fn pause_deadlines(&mut self, now: Instant) {
        while let Some(&(key, since)) = self.mem.paused.front()
            && now >= since + self.mem.pause_bound
        {
            log::info!(
                "loop {}: {} paused for {:?} by the memory budget; closing it",
                self.index,
                self.id(key),
                now - since
            );
            // Removes it from the list (the close path forgets its pause).
            self.close(now, key, CloseReason::PausedTooLong);
            if self.mem.paused.front().is_some_and(|(k, _)| *k == key) {
                self.mem.paused.pop_front();
            }
        }
    }
}
