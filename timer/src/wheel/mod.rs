//! `Wheel<T>`: the single-threaded, I/O-free timer wheel over integer ticks.
//!
//! PLACEHOLDER IMPLEMENTATION (a `BTreeSet`), standing in for the hierarchical wheel so the
//! crates above can build against the final API. The public API below is the contract.

use std::collections::BTreeSet;

/// A handle to a timer in a [`Wheel`]. Generation-checked: once the timer fired or was
/// cancelled, the key is stale and every operation with it is rejected, even if its slot has
/// been reused by a new timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// A timer returned by [`Wheel::poll`]: its key (now stale), the deadline it was due at, and
/// its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<T> {
    /// The key the timer had; stale from now on.
    pub key: TimerKey,
    /// The tick the timer was due at (its latest deadline).
    pub deadline: u64,
    /// The value stored with the timer.
    pub value: T,
}

struct Slot<T> {
    generation: u32,
    entry: Option<(u64, T)>,
}

/// A timer wheel. See the module docs.
pub struct Wheel<T> {
    now: u64,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    order: BTreeSet<(u64, u32)>,
    len: usize,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &self.len)
            .finish()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel at tick 0 with room for `capacity` timers before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            now: 0,
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            order: BTreeSet::new(),
            len: 0,
        }
    }

    /// The tick the wheel has been advanced to.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Files `value` to expire at tick `deadline`. A deadline at or before [`now`](Self::now)
    /// expires at the next [`poll`](Self::poll).
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some((deadline, value));
        self.order.insert((deadline, index));
        self.len += 1;
        TimerKey {
            index,
            generation: slot.generation,
        }
    }

    fn live(&self, key: TimerKey) -> Option<&(u64, T)> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn take(&mut self, index: u32) -> (u64, T) {
        let slot = &mut self.slots[index as usize];
        let (deadline, value) = slot.entry.take().expect("live slot");
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
        (deadline, value)
    }

    /// Removes a pending timer and returns its value; `None` if the key is stale.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let deadline = self.live(key)?.0;
        self.order.remove(&(deadline, key.index));
        Some(self.take(key.index).1)
    }

    /// Moves a pending timer's deadline; `false` if the key is stale.
    pub fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some(&(old, _)) = self.live(key) else {
            return false;
        };
        self.order.remove(&(old, key.index));
        self.order.insert((deadline, key.index));
        if let Some(entry) = self.slots[key.index as usize].entry.as_mut() {
            entry.0 = deadline;
        }
        true
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.live(key).map(|e| e.0)
    }

    /// Whether `key` names a pending timer.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.live(key).is_some()
    }

    /// The value of a pending timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.live(key).map(|e| &e.1)
    }

    /// The value of a pending timer, mutably.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.entry.as_mut().map(|e| &mut e.1)
    }

    /// The earliest tick at which [`poll`](Self::poll) may have work to do: never later than
    /// the earliest deadline, but possibly earlier (a timer whose deadline was pushed later is
    /// re-filed lazily when its old slot comes due).
    pub fn next_deadline(&self) -> Option<u64> {
        self.order.first().map(|&(d, _)| d.max(self.now))
    }

    /// Advances the wheel to `now` (a `now` earlier than [`Wheel::now`] is taken as `now()`),
    /// and returns one timer whose deadline is at or before it, or `None` when none is left.
    pub fn poll(&mut self, now: u64) -> Option<Expired<T>> {
        self.now = self.now.max(now);
        let &(deadline, index) = self.order.first()?;
        if deadline > self.now {
            return None;
        }
        self.order.pop_first();
        let generation = self.slots[index as usize].generation;
        let (deadline, value) = self.take(index);
        Some(Expired {
            key: TimerKey { index, generation },
            deadline,
            value,
        })
    }

    /// Advances to `now` and yields every timer due at or before it, each exactly once.
    pub fn advance(&mut self, now: u64) -> Advance<'_, T> {
        self.advance_bounded(now, usize::MAX)
    }

    /// Like [`advance`](Self::advance), but stops after `max_work` units of work (an expiry or a
    /// lazy re-file each count one). Timers left due are returned by the next call.
    pub fn advance_bounded(&mut self, now: u64, max_work: usize) -> Advance<'_, T> {
        Advance {
            wheel: self,
            now,
            budget: max_work,
        }
    }
}

/// The iterator returned by [`Wheel::advance`] and [`Wheel::advance_bounded`].
#[derive(Debug)]
pub struct Advance<'a, T> {
    wheel: &'a mut Wheel<T>,
    now: u64,
    budget: usize,
}

impl<T> Iterator for Advance<'_, T> {
    type Item = Expired<T>;

    fn next(&mut self) -> Option<Expired<T>> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        self.wheel.poll(self.now)
    }
}
