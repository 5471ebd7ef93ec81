//! The endpoint's byte budgets: back-pressure per connection (queued output against the
//! write cap and its watermarks) and the loop's memory budget (every connection's buffers
//! together).
//!
//! # Ground rules
//! - The driver reports bytes ([`Endpoint::handle_queued`], [`Endpoint::handle_held`]); the
//!   endpoint decides: who hears `on_writable_changed`, who is closed over the budget, when
//!   freed memory should go back to the OS.
//! - The policy over the memory budget closes the open connections holding the most
//!   (unread output or an unfinished input frame) until the loop is under 7/8 of it: the
//!   cost of an attack falls on the attackers, who hold the most.

use std::time::Instant;

use wheelbeat_net::{ConnKey, ConnTable};

use super::{Endpoint, State};
use crate::shell::handler::Handler;
use crate::shell::{CloseReason, ConnId};

/// The loop's memory budget: every connection's buffered bytes, summed. See
/// [`Options::memory_budget`].
#[derive(Debug)]
pub(super) struct Memory {
    pub(super) budget: usize,
    pub(super) total: usize,
    /// Above half the budget since the last release: memory to give back once it is over.
    pub(super) pressure: bool,
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
    pub(crate) fn handle_held(&mut self, conn: ConnKey, bytes: usize) {
        if let Some(State::Open { held, .. }) = self.conns.get_mut(conn) {
            self.mem.total = self.mem.total - *held + bytes;
            *held = bytes;
            self.stats.memory_bytes = self.mem.total as u64;
            self.stats.memory_peak = self.stats.memory_peak.max(self.stats.memory_bytes);
        }
    }

    /// The memory budget's policy; call after any input that may have grown the buffers.
    /// Above the budget, the open connections holding the most are closed
    /// ([`CloseReason::MemoryBudget`]) until the loop is back under 7/8 of it. Returns `true`
    /// when a pressure episode (over half the budget) has just ended (under 1/16 of it): the
    /// moment to hand freed memory back to the OS.
    pub(crate) fn check_memory(&mut self, now: Instant) -> bool {
        let budget = self.mem.budget;
        if self.mem.total > budget / 2 {
            self.mem.pressure = true;
        }
        if self.mem.total > budget {
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
            return false;
        }
        if self.mem.pressure && self.mem.total <= budget / 16 {
            self.mem.pressure = false;
            return true;
        }
        false
    }
}
