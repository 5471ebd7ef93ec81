//! [`Turn`]: one turn of an edge-triggered loop, bounded in time as well as in bytes.
//!
//! A loop that reads and decodes (and parses) whatever its peers send inline must stop
//! before its timers are late: a flood of expensive frames would otherwise make one turn as
//! long as the flood. `Turn` is [`Ready`] (the work list, carried-over tokens first) plus the
//! rule that bounds a turn in time. It never reads the clock: every method takes `now` (or a
//! clock closure) from the caller, so the policy is tested as a timeline in virtual time (see
//! the tests below) and the driver runs the same code with `Instant::now`.
//!
//! # A turn
//! 1. `poll` with [`Turn::timeout`] (zero while work is carried over).
//! 2. [`Turn::begin`] with the time the poll returned and the events' tokens (plus any due
//!    without an event, such as an acceptor's): the turn's deadline is `now + budget`.
//! 3. [`Turn::next`] until `None`, serving each token; a connection is read with
//!    [`Turn::read`], which stops at the connection's byte budget or, between two frames, at
//!    the turn's deadline, and carries the token over in both cases.
//! 4. If the batch of events was full, [`Turn::another_round`] says whether to `poll` again
//!    (without sleeping) in the same turn; its tokens join with [`Turn::add_round`].
//! 5. Run the timers: the turn is over.
//!
//! # Ground rules (the guarantees the timeline tests check)
//! - A turn ends at its deadline, checked before each token and between two frames: it
//!   overruns the budget by at most one frame's cost (plus one service's fixed cost: a
//!   `read` that finds nothing), so timers run between turns are late by at most the budget
//!   plus one frame.
//! - At least one token is served per turn (the deadline is never passed at `begin`), so a
//!   flood cannot stall the loop's progress either.
//! - What a turn leaves is served first next turn: the tokens it did not reach, then those
//!   it carried over after serving them (budget spent), in order. No token starves, and none
//!   is served twice while another waits ([`Ready`]'s ground rules). The one exception is
//!   the token set with [`Turn::with_first`] (an acceptor's): it goes first in every turn
//!   it is listed in, so new peers are accepted within a turn or two however long the
//!   rotation of busy ones.
//! - A connection is read at most its byte budget per service (plus one read, as
//!   [`Connection::read_frames`] documents).
//! - Tokens still in the kernel's queue join at the next `poll`: at least one batch per turn.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mio::Token;

use crate::codec::Codec;
use crate::conn::{Connection, Outbox, ReadBuf, ReadStatus};
use crate::error::Error;
use crate::ready::Ready;
use crate::transport::Transport;

/// How one [`Turn::read`] of a connection ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Everything available was read: wait for the next event.
    Drained,
    /// Bytes may be left (the byte budget or the turn's time was spent): the token is carried
    /// over and served first next turn.
    Carried,
    /// The frame callback stopped the read (the connection is closing, say); unread frames
    /// stay buffered in the connection.
    Stopped,
    /// The peer closed its sending side at a frame boundary.
    Closed,
}

/// One turn's work list and time budget. See the [module docs](self).
#[derive(Debug)]
pub struct Turn {
    ready: Ready,
    budget: Duration,
    max_rounds: usize,
    /// The deadline of the turn under way; `None` before the first.
    deadline: Option<Instant>,
    /// `poll` rounds taken in the turn under way.
    rounds: usize,
}

impl Turn {
    /// A turn that reads for at most `budget` (checked between frames) and takes at most
    /// `max_rounds` batches of events (at least one).
    pub fn new(budget: Duration, max_rounds: usize) -> Self {
        Turn {
            ready: Ready::new(),
            budget,
            max_rounds: max_rounds.max(1),
            deadline: None,
            rounds: 0,
        }
    }

    /// Serves `token` first whenever it is listed, ahead of carried tokens: an acceptor's
    /// (see [`Ready::set_first`]).
    pub fn with_first(mut self, token: Token) -> Self {
        self.ready.set_first(token);
        self
    }

    /// The `poll` timeout: zero while work is carried over, otherwise `otherwise`.
    pub fn timeout(&self, otherwise: Option<Duration>) -> Option<Duration> {
        self.ready.timeout(otherwise)
    }

    /// Starts a turn at `now` (when `poll` returned): carried tokens first, then `tokens`.
    pub fn begin(&mut self, now: Instant, tokens: impl IntoIterator<Item = Token>) {
        self.deadline = Some(now.checked_add(self.budget).unwrap_or(now));
        self.rounds = 1;
        self.ready.begin_turn_with(tokens);
    }

    /// Whether to `poll` again (without sleeping) in this turn: the last batch of events was
    /// `full`, time is left, and the turn has taken fewer than its rounds.
    pub fn another_round(&self, now: Instant, full: bool) -> bool {
        full && self.rounds < self.max_rounds && !self.out_of_time(now)
    }

    /// The tokens of a further `poll` of this turn: served after the ones still waiting.
    pub fn add_round(&mut self, tokens: impl IntoIterator<Item = Token>) {
        self.rounds += 1;
        self.ready.add_tokens(tokens);
    }

    /// The next token to serve, or `None` when the turn is over: nothing is left, or its time
    /// is spent at `now` (then what is left is carried over, ahead of the tokens carried
    /// after their service).
    pub fn next(&mut self, now: Instant) -> Option<Token> {
        let token = self.ready.next_token()?;
        if self.out_of_time(now) {
            self.ready.put_back(token);
            self.ready.defer_rest();
            return None;
        }
        Some(token)
    }

    /// Serves `token` again next turn, without waiting for an event.
    pub fn again(&mut self, token: Token) {
        self.ready.again(token);
    }

    /// Whether the turn's time is spent at `now`. False before the first turn begins (a read
    /// outside any turn is bounded by its byte budget only).
    pub fn out_of_time(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// The deadline of the turn under way (`None` before the first).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True if work is carried over to the next turn.
    pub fn has_carried(&self) -> bool {
        self.ready.has_carried()
    }

    /// Reads `conn` (served as `token`) for at most `byte_budget` bytes, handing each frame to
    /// `on_frame`; after each frame it reads `clock` and stops once the turn's time is spent
    /// (between frames: a frame is never cut, so the overrun is at most one frame). On
    /// [`Served::Carried`] the token is carried over already.
    pub fn read<C, S, F>(
        &mut self,
        token: Token,
        conn: &mut Connection<C, S>,
        scratch: &mut ReadBuf,
        byte_budget: usize,
        mut clock: impl FnMut() -> Instant,
        mut on_frame: F,
    ) -> Result<Served, Error>
    where
        C: Codec,
        S: Transport,
        F: FnMut(&[u8], &mut Outbox<'_, C>) -> ControlFlow<()>,
    {
        let mut out_of_time = false;
        let status = conn.read_frames(scratch, byte_budget, |frame, out| {
            if on_frame(frame, out).is_break() {
                return ControlFlow::Break(());
            }
            // The clock read costs little next to a frame's parse.
            if self.out_of_time(clock()) {
                out_of_time = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        Ok(match status {
            ReadStatus::Drained => Served::Drained,
            ReadStatus::BudgetExhausted => {
                self.again(token);
                Served::Carried
            }
            ReadStatus::Stopped if out_of_time => {
                // The rest of what was read stays in the connection: next turn.
                self.again(token);
                Served::Carried
            }
            ReadStatus::Stopped => Served::Stopped,
            ReadStatus::Closed => Served::Closed,
        })
    }
}

#[cfg(test)]
mod tests;
