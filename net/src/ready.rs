//! [`Ready`]: the work list of one turn of an edge-triggered loop.
//!
//! With edge-triggered readiness the kernel reports a socket once per change, not once per
//! turn. A connection that stopped reading because it spent its budget
//! ([`ReadStatus::BudgetExhausted`](crate::ReadStatus)) still has bytes waiting, and no event
//! will say so again: the loop must remember it and serve it next turn, and must not block in
//! `poll` while it has such work. The same holds for an [`Acceptor`](crate::Acceptor) that
//! stopped at its accept budget, or whose back-off has expired.
//!
//! `Ready` keeps that list. A turn is: `poll` with [`Ready::timeout`], then
//! [`Ready::begin_turn`] with the events (and any token due without one), then
//! [`Ready::next_token`] until `None`, calling [`Ready::again`] for anything left unfinished.
//! Tokens carried over go first, so a busy peer cannot starve the others for more than a turn.
//! A token may come twice in one turn (carried over and reported); serving it twice is harmless
//! (the second read finds `WouldBlock`), and a stale token misses in a
//! [`ConnTable`](crate::ConnTable).
//!
//! No allocation once the two lists have grown to the loop's usual size.

use std::time::Duration;

use mio::{Events, Token};

/// The tokens to serve this turn, and those carried over to the next. See the module docs.
#[derive(Debug, Default)]
pub struct Ready {
    /// This turn's tokens, served from the back.
    turn: Vec<Token>,
    /// Tokens to serve again next turn.
    next: Vec<Token>,
}

impl Ready {
    /// An empty work list.
    pub fn new() -> Self {
        Ready::default()
    }

    /// The `poll` timeout: zero while work is carried over (do not sleep on it), otherwise
    /// `otherwise` (e.g. [`Acceptor::timeout`](crate::Acceptor::timeout) or the next timer).
    pub fn timeout(&self, otherwise: Option<Duration>) -> Option<Duration> {
        if self.next.is_empty() {
            otherwise
        } else {
            Some(Duration::ZERO)
        }
    }

    /// Starts a turn: the tokens carried over, then those of `events`, then `extra` (tokens due
    /// without an event, such as the listener's when
    /// [`Acceptor::accept_due`](crate::Acceptor::accept_due)). Anything left of the previous
    /// turn is served too.
    pub fn begin_turn(&mut self, events: &Events, extra: impl IntoIterator<Item = Token>) {
        // Served from the back: push in reverse order of priority.
        let carried = std::mem::take(&mut self.next);
        self.turn.extend(extra);
        self.turn.extend(events.iter().map(|e| e.token()));
        self.turn.extend(carried.iter().rev());
        // Keep the carried list's allocation for the next turn.
        self.next = carried;
        self.next.clear();
    }

    /// The next token to serve this turn, or `None` when the turn is over.
    pub fn next_token(&mut self) -> Option<Token> {
        self.turn.pop()
    }

    /// Serves `token` again next turn, without waiting for an event.
    pub fn again(&mut self, token: Token) {
        self.next.push(token);
    }

    /// Ends the turn early (say its time budget is spent): the tokens of this turn not served
    /// yet are served first next turn, ahead of those passed to [`again`](Self::again), so
    /// the order of service rotates fairly instead of favouring the front of the turn.
    pub fn defer_rest(&mut self) {
        let Ready { turn, next } = self;
        // `turn` is served from the back, so its serving order is reversed.
        next.splice(0..0, turn.drain(..).rev());
    }

    /// True if work is carried over to the next turn.
    pub fn has_carried(&self) -> bool {
        !self.next.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_work_goes_first_and_keeps_the_loop_awake() {
        let mut ready = Ready::new();
        let events = Events::with_capacity(4);
        let idle = Some(Duration::from_secs(1));
        assert_eq!(
            ready.timeout(idle),
            idle,
            "nothing carried: the caller's timeout"
        );

        ready.again(Token(1));
        ready.again(Token(2));
        assert!(ready.has_carried());
        assert_eq!(ready.timeout(idle), Some(Duration::ZERO));

        ready.begin_turn(&events, [Token(9)]);
        assert!(!ready.has_carried());
        assert_eq!(ready.timeout(None), None);
        ready.again(Token(2)); // still unfinished
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(1), Token(2), Token(9)]);

        ready.begin_turn(&events, None);
        assert_eq!(ready.next_token(), Some(Token(2)));
        assert_eq!(ready.next_token(), None);
    }

    #[test]
    fn a_turn_cut_short_serves_the_unserved_first_next_turn() {
        let mut ready = Ready::new();
        let events = Events::with_capacity(4);
        ready.begin_turn(&events, [Token(3), Token(2), Token(1)]);
        assert_eq!(ready.next_token(), Some(Token(1)));
        ready.again(Token(1)); // served, still has bytes
        ready.defer_rest(); // out of time: 2 and 3 were not served
        assert_eq!(ready.next_token(), None);
        assert_eq!(ready.timeout(None), Some(Duration::ZERO));
        ready.begin_turn(&events, None);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(2), Token(3), Token(1)]);
    }
}
