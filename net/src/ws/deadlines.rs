//! [`Deadlines`]: handshake and close timeouts for many connections, without a timer per
//! connection.
//!
//! # Ground rules
//! - One queue per timeout length. Connections are pushed with `now + timeout` as `now` goes
//!   forward, so the queue is sorted by construction: the earliest deadline is at the front,
//!   and expiry is `pop_front` while due. O(1) per connection, no per-connection field.
//! - No clock reads: `now` comes from the caller's loop.
//! - Entries are not removed when a connection finishes its handshake or closes early: the
//!   caller checks, when an entry expires, whether its connection is still in the state the
//!   deadline was for (a generation-checked [`ConnKey`](crate::ConnKey) also misses a
//!   connection that closed and whose slot was reused). So the queue holds at most one entry
//!   per connection accepted during the last `timeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A FIFO of `(deadline, key)`; see the module docs.
///
/// ```
/// use std::time::{Duration, Instant};
/// use wheelbeat_net::ws::Deadlines;
/// let t0 = Instant::now();
/// let mut d = Deadlines::new(Duration::from_secs(5));
/// d.push(t0, "a");
/// d.push(t0 + Duration::from_secs(1), "b");
/// assert_eq!(d.pop_expired(t0 + Duration::from_secs(5)), Some("a"));
/// assert_eq!(d.pop_expired(t0 + Duration::from_secs(5)), None); // b is due at 6 s
/// assert_eq!(d.next_deadline(), Some(t0 + Duration::from_secs(6)));
/// ```
#[derive(Debug)]
pub struct Deadlines<K> {
    timeout: Duration,
    queue: VecDeque<(Instant, K)>,
}

impl<K> Deadlines<K> {
    /// An empty queue for deadlines `timeout` after their push.
    pub fn new(timeout: Duration) -> Self {
        Deadlines {
            timeout,
            queue: VecDeque::new(),
        }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Adds `key`, due at `now + timeout`. `now` must not go backwards between pushes
    /// (an `Instant` from the loop does not); if it does, the entry is due no earlier than
    /// the one before it.
    pub fn push(&mut self, now: Instant, key: K) {
        let mut at = now + self.timeout;
        if let Some((last, _)) = self.queue.back() {
            at = at.max(*last);
        }
        self.queue.push_back((at, key));
    }

    /// The earliest deadline, for the loop's `poll` timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }

    /// Removes and returns the next key whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        match self.queue.front() {
            Some((at, _)) if *at <= now => self.queue.pop_front().map(|(_, k)| k),
            _ => None,
        }
    }

    /// Entries queued (some may be for connections that have moved on).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_exactly_at_the_deadline_in_push_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Deadlines::new(ms(100));
        for i in 0..5u64 {
            d.push(t0 + ms(i * 10), i);
        }
        assert_eq!(d.pop_expired(t0 + ms(99)), None, "one tick early: nothing");
        assert_eq!(d.pop_expired(t0 + ms(100)), Some(0));
        assert_eq!(d.pop_expired(t0 + ms(100)), None);
        let mut late = Vec::new();
        while let Some(k) = d.pop_expired(t0 + ms(130)) {
            late.push(k);
        }
        assert_eq!(late, [1, 2, 3]);
        assert_eq!(d.next_deadline(), Some(t0 + ms(140)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn a_push_with_an_earlier_now_is_not_due_before_its_predecessor() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(Duration::from_secs(1));
        d.push(t0 + Duration::from_secs(5), 'a');
        d.push(t0, 'b');
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(6)), Some('a'));
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(6)), Some('b'));
    }
}
