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
//! [`Ready::begin_turn`] with the events (or [`Ready::begin_turn_with`] with any list of
//! tokens), plus any token due without one, then [`Ready::next_token`] until `None`, calling
//! [`Ready::again`] for anything left unfinished. A loop bounded in time as well uses
//! [`Turn`](crate::Turn), which is this list plus the deadline rule.
//!
//! # Ground rules
//! - Tokens carried over go first, in the order they were carried, so a busy peer cannot
//!   starve the others for more than a turn.
//! - A token is listed at most once: a token carried over and reported again, or reported
//!   twice, waits in one place (the earlier). One served already this turn and reported
//!   again (new bytes after it drained) goes to the back. So no token is served twice while
//!   another waits.
//! - A turn cut short ([`Ready::defer_rest`]) puts what it did not serve ahead of what it
//!   carried after serving: the order of service rotates fairly instead of favouring the
//!   front of the turn.
//! - One token may be set to go first ([`Ready::set_first`]): an acceptor's, whose service
//!   is cheap and admits new peers. Behind a long rotation of busy peers new connections
//!   would otherwise wait a whole round of them to be accepted.
//! - A stale token misses in a [`ConnTable`](crate::ConnTable); serving it is harmless.
//!
//! No allocation once the lists have grown to the loop's usual size.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use mio::{Events, Token};

/// Hashes a token (our own key, never chosen by a peer) with one multiplication: the
/// duplicate filter costs a few nanoseconds per event, not a SipHash.
#[derive(Debug, Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: distinct slot indexes (a token's low bits) stay distinct in the
        // low bits, and the high bits (the table's tag) mix every bit of `n`.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The tokens to serve this turn, and those carried over to the next. See the module docs.
#[derive(Debug, Default)]
pub struct Ready {
    /// This turn's tokens not served yet, in serving order.
    turn: VecDeque<Token>,
    /// Tokens to serve again next turn, in order.
    next: Vec<Token>,
    /// Every token waiting, in `turn` or in `next`: each is in one of them at most once.
    pending: HashSet<Token, BuildHasherDefault<TokenHasher>>,
    /// The token served first whenever it is listed ([`Ready::set_first`]).
    first: Option<Token>,
}

impl Ready {
    /// An empty work list.
    pub fn new() -> Self {
        Ready::default()
    }

    /// The `poll` timeout: zero while work is carried over (do not sleep on it), otherwise
    /// `otherwise` (e.g. [`Acceptor::timeout`](crate::Acceptor::timeout) or the next timer).
    pub fn timeout(&self, otherwise: Option<Duration>) -> Option<Duration> {
        if !self.has_carried() {
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
        self.begin_turn_with(events.iter().map(|e| e.token()).chain(extra));
    }

    /// [`begin_turn`](Self::begin_turn) from any list of tokens (the events' tokens, then any
    /// due without an event): carried tokens first, then `tokens` in their order, each token
    /// once.
    pub fn begin_turn_with(&mut self, tokens: impl IntoIterator<Item = Token>) {
        // Whatever the previous turn left unserved goes first (as if deferred), then what it
        // carried.
        // Each is listed once already (`pending`).
        self.turn.extend(self.next.drain(..));
        if let Some(first) = self.first
            && let Some(i) = self.turn.iter().position(|&t| t == first)
        {
            self.turn.remove(i);
            self.turn.push_front(first);
        }
        self.add_tokens(tokens);
    }

    /// Serves `token` first whenever it is listed (carried over or reported), ahead of the
    /// carried tokens: for an acceptor, whose service is cheap (bounded by its accept
    /// budget) and admits new peers. The rotation rules hold for every other token.
    pub fn set_first(&mut self, token: Token) {
        self.first = Some(token);
    }

    /// Lists more tokens in the turn under way (the events of a further `poll` of the same
    /// turn): they are served after the ones still waiting; tokens waiting already (this
    /// turn or carried to the next) are skipped.
    pub fn add_tokens(&mut self, tokens: impl IntoIterator<Item = Token>) {
        for token in tokens {
            if self.pending.insert(token) {
                if self.first == Some(token) {
                    self.turn.push_front(token);
                } else {
                    self.turn.push_back(token);
                }
            }
        }
    }

    /// The next token to serve this turn, or `None` when the turn is over.
    pub fn next_token(&mut self) -> Option<Token> {
        let token = self.turn.pop_front()?;
        self.pending.remove(&token);
        Some(token)
    }

    /// Gives back `token`, just taken from [`next_token`](Self::next_token) and not served:
    /// it is the next one again.
    pub fn put_back(&mut self, token: Token) {
        if self.pending.insert(token) {
            self.turn.push_front(token);
        }
    }

    /// Serves `token` again next turn, without waiting for an event (unless it is waiting
    /// already, this turn or the next: then it is served there).
    pub fn again(&mut self, token: Token) {
        if self.pending.insert(token) {
            self.next.push(token);
        }
    }

    /// Ends the turn early (say its time budget is spent): the tokens of this turn not served
    /// yet are served first next turn, ahead of those passed to [`again`](Self::again), so
    /// the order of service rotates fairly instead of favouring the front of the turn.
    pub fn defer_rest(&mut self) {
        let Ready { turn, next, .. } = self;
        // Still listed once: `pending` is unchanged.
        next.splice(0..0, turn.drain(..));
    }

    /// True if work is carried over to the next turn.
    pub fn has_carried(&self) -> bool {
        !self.next.is_empty() || !self.turn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_work_goes_first_and_keeps_the_loop_awake() {
        let mut ready = Ready::new();
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

        ready.begin_turn_with([Token(9)]);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(1), Token(2), Token(9)]);
        assert_eq!(ready.timeout(None), None);
        ready.again(Token(2)); // still unfinished

        ready.begin_turn_with(None);
        assert_eq!(ready.next_token(), Some(Token(2)));
        assert_eq!(ready.next_token(), None);
    }

    #[test]
    fn a_turn_cut_short_serves_the_unserved_first_next_turn() {
        let mut ready = Ready::new();
        ready.begin_turn_with([Token(1), Token(2), Token(3), Token(4)]);
        assert_eq!(ready.next_token(), Some(Token(1)));
        ready.again(Token(1)); // served, still has bytes
        let t = ready.next_token().unwrap(); // out of time before serving 2
        ready.put_back(t);
        ready.defer_rest();
        assert_eq!(ready.next_token(), None);
        assert_eq!(ready.timeout(None), Some(Duration::ZERO));
        ready.begin_turn_with(None);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(2), Token(3), Token(4), Token(1)]);
    }

    /// Guards "no token served twice while another waits": a carried token reported again,
    /// or a token reported in two rounds of one turn, is listed once.
    #[test]
    fn a_token_is_listed_once_per_turn() {
        let mut ready = Ready::new();
        ready.again(Token(7));
        ready.begin_turn_with([Token(7), Token(8), Token(7)]);
        assert_eq!(ready.next_token(), Some(Token(7)));
        ready.again(Token(7)); // budget spent: next turn
        ready.add_tokens([Token(7), Token(8), Token(9)]); // a further poll round
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(8), Token(9)]);
        ready.begin_turn_with([Token(8)]);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(7), Token(8)]);
    }

    /// Guards against a lost edge: a token served (drained) and reported again in a later
    /// round of the same turn has new bytes, and is served again, after the others.
    #[test]
    fn a_token_reported_after_its_service_is_served_again() {
        let mut ready = Ready::new();
        ready.begin_turn_with([Token(1), Token(2)]);
        assert_eq!(ready.next_token(), Some(Token(1))); // drained
        ready.add_tokens([Token(1), Token(3)]);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(2), Token(1), Token(3)]);
        assert!(!ready.has_carried());
    }

    /// Guards the acceptor's place: listed (carried or reported), it goes before the
    /// carried peers.
    #[test]
    fn the_first_token_goes_before_the_carried_ones() {
        let mut ready = Ready::new();
        ready.set_first(Token(100));
        ready.again(Token(1));
        ready.again(Token(100));
        ready.again(Token(2));
        ready.begin_turn_with([Token(3)]);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(100), Token(1), Token(2), Token(3)]);
        ready.again(Token(1));
        ready.begin_turn_with([Token(4), Token(100)]);
        let served: Vec<_> = std::iter::from_fn(|| ready.next_token()).collect();
        assert_eq!(served, [Token(100), Token(1), Token(4)]);
    }

    #[test]
    fn begin_turn_takes_the_events_tokens() {
        let mut ready = Ready::new();
        let events = Events::with_capacity(4);
        ready.begin_turn(&events, [Token(3)]);
        assert_eq!(ready.next_token(), Some(Token(3)));
        assert_eq!(ready.next_token(), None);
    }
}
