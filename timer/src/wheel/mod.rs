//! `Wheel<T>`: the single-threaded, I/O-free hierarchical timer wheel over integer ticks.
//!
//! # Ground rules
//!
//! - Time is an input. The wheel never reads a clock: the caller passes `now` (in ticks) to
//!   [`Wheel::poll`] / [`Wheel::advance`] and maps ticks to [`Instant`](std::time::Instant)s
//!   itself, e.g. with [`TickClock`](crate::TickClock).
//! - Never early: a timer is only handed out by a poll whose `now` is at or after its
//!   deadline. Never late by more than the caller's polling: a poll at `now` hands out every
//!   timer due at or before `now`.
//! - `now` only moves forward; it moves from one occupied slot to the next without visiting
//!   the empty ticks in between (see `level.rs`), so a jump of a million ticks with few timers
//!   is a handful of steps.
//! - Moving a deadline *later* only rewrites the entry's deadline field. The entry stays in
//!   the slot it was filed in; when that slot comes due the entry is re-filed at its true
//!   deadline (tokio's "registered vs true timeout", Netty's idle handler). A heartbeat that
//!   pushes its deadline on every packet therefore never touches a list.
//! - Entries live in a slab (`entries.rs`) addressed by generation-checked [`TimerKey`]s;
//!   the generations live beside the slab, in an array small enough to stay cached.
//! - Cancelling is lazy: it checks and bumps the generation and sets one bit; the timer's
//!   index stays on its slot list until that slot drains (or a sweep, once cancelled timers
//!   outnumber pending ones), and only then is the index reused. With cancels in random order
//!   (connections closing in a server) this is what keeps a cancel off the slab and the
//!   lists, whose cache lines are cold by then. [`Wheel::discard`] does not even read the
//!   entry when the value needs no drop.
//! - Draining a slot reads its entries in batches, so that their cache misses overlap
//!   (`sift` below); a level-1 slot, whose timers go to level 0 and expire within 64 ticks,
//!   reads their generations in the same batch, so that the expiries find both cached. A
//!   level-0 slot whose timers are all due is popped as it is.
//! - A drained level-2 slot's timers go on the stage (`stage.rs`), sorted by deadline, and
//!   expire from there: one read of each entry fewer than re-filing them on levels 1 and 0.
//!
//! The layout and its costs are described in the crate documentation.

mod entries;
mod level;
mod list;
mod stage;

use entries::{Entries, Removed, SWEEP_SLACK};
use level::{ListId, Occupancy, level_for, slot_for, slot_start};

/// A handle to a timer in a [`Wheel`]. Generation-checked: once the timer fired or was
/// cancelled, the key is stale and every operation with it is rejected, even if its slot has
/// been reused by a new timer. A key means something only to the wheel that issued it.
///
/// ```
/// use wheelbeat_timer::Wheel;
///
/// let mut wheel = Wheel::new();
/// let old = wheel.insert(10, "old");
/// wheel.cancel(old);
/// let new = wheel.insert(10, "new"); // reuses the same slab slot ...
/// assert_eq!(wheel.get(old), None); // ... but the old key does not see it
/// assert_eq!(wheel.get(new), Some(&"new"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

/// How many entries of a draining slot [`Wheel::sift`] looks at in one go: enough to keep
/// many cache misses in flight, few enough (16 KiB of entries) to stay in the L1/L2 cache
/// until they are popped.
const SIFT_CHUNK: usize = 512;

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

/// A hierarchical timer wheel: 11 levels of 64 slots over `u64` ticks, O(1) insert, cancel
/// and reset, with the next due slot found through occupancy bitmaps. See the
/// [crate documentation](crate) for the table of levels and the cost of each operation.
///
/// ```
/// use wheelbeat_timer::Wheel;
///
/// let mut wheel = Wheel::new();
/// let ping = wheel.insert(30, "ping");
/// wheel.insert(100, "close");
/// wheel.reset(ping, 50); // pushed later: O(1), no list touched
///
/// assert_eq!(wheel.advance(49).count(), 0); // nothing is ever early
/// let fired: Vec<_> = wheel.advance(120).map(|e| (e.deadline, e.value)).collect();
/// assert_eq!(fired, [(50, "ping"), (100, "close")]);
/// assert!(wheel.is_empty());
/// ```
pub struct Wheel<T> {
    /// The tick the wheel has been advanced to. Every occupied slot starts after it.
    now: u64,
    entries: Entries<T>,
    occupied: Occupancy,
    /// The slot being emptied by the poll in progress, if any. Its occupancy bit is already
    /// clear; its entries are either handed out (due) or re-filed one by one, so the work can
    /// be bounded and callers may insert, cancel and reset between two polls.
    draining: Option<ListId>,
    /// How many entries at the back of the draining list [`sift`](Self::sift) has found due;
    /// a new sift runs when they are used up. Only a hint: correctness never depends on it.
    sifted: usize,
    /// Scratch space for [`sift`](Self::sift), kept to avoid an allocation per slot.
    sift_deadlines: Vec<u64>,
    /// Scratch space for [`sift`](Self::sift): the live members of the chunk it took.
    sift_live: Vec<u32>,
    /// Scratch space for [`sift`](Self::sift): the dead members of the chunk it took.
    sift_dead: Vec<u32>,
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
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Wheel<T> {
    /// The bytes one timer takes in the wheel's slab, including its `T`: the value is stored
    /// inline, and the entry costs 14 bytes plus `T`, rounded up to a multiple of 8, plus a
    /// 4-byte generation kept beside the slab. A filed timer also takes 4 bytes in its slot's
    /// list (see [`memory_bytes`](Self::memory_bytes)).
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// assert_eq!(Wheel::<()>::ENTRY_SIZE, 16 + 4);
    /// assert_eq!(Wheel::<u64>::ENTRY_SIZE, 24 + 4);
    /// ```
    pub const ENTRY_SIZE: usize = Entries::<T>::entry_size();

    /// An empty wheel at tick 0.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel at tick 0 with room for `capacity` timers before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            now: 0,
            entries: Entries::with_capacity(capacity),
            occupied: Occupancy::default(),
            draining: None,
            sifted: 0,
            sift_deadlines: Vec::new(),
            sift_live: Vec::new(),
            sift_dead: Vec::new(),
        }
    }

    /// The tick the wheel has been advanced to.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// The number of timers the wheel can hold without reallocating.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Makes room for at least `additional` more pending timers without reallocating.
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// The heap memory the wheel holds, in bytes: its slab and generations at capacity
    /// (values included), the buffers of its slot lists (4 bytes per filed timer, plus growth
    /// slack; a cancelled timer keeps its 4 bytes until its slot drains or a sweep), the stage
    /// (8 bytes per timer of the level-2 slot drained last, while they wait), two bitmaps (2
    /// bits per slab entry) and the stack of reaped indices, its fixed table of 705 lists
    /// (22 KiB), plus scratch buffers of up to 8 KiB used when draining.
    /// Memory the values own elsewhere is not counted.
    /// O(number of lists): meant for reporting, not for a hot path.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::with_capacity(100_000);
    /// for t in 0..100_000 {
    ///     wheel.insert(t * 7, ());
    /// }
    /// // 16 for the entry, 4 for its generation, 4 in its list, and growth slack.
    /// assert!(wheel.memory_bytes() / wheel.len() <= 32);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        self.entries.memory_bytes()
            + self.sift_deadlines.capacity() * std::mem::size_of::<u64>()
            + (self.sift_live.capacity() + self.sift_dead.capacity()) * std::mem::size_of::<u32>()
    }

    /// Drops every pending timer; keys handed out before stay stale. `now` is unchanged.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.occupied = Occupancy::default();
        self.draining = None;
        self.sifted = 0;
    }

    /// The list a deadline belongs on, relative to the current `now`.
    #[inline]
    fn list_for(&mut self, deadline: u64) -> ListId {
        if deadline <= self.now {
            return ListId::READY;
        }
        let level = level_for(self.now, deadline);
        let slot = slot_for(deadline, level);
        let list = ListId::slot(level, slot);
        // The draining slot contains `now`, and a future deadline never maps to it (see
        // `level.rs`): filing there would hide the timer behind a cleared occupancy bit.
        debug_assert!(self.draining != Some(list), "filed into the draining slot");
        self.occupied.set(level, slot);
        list
    }

    /// Keeps the occupancy bitmap in step after an entry left `list`.
    #[inline]
    fn left(&mut self, list: ListId, now_empty: bool) {
        if now_empty && let Some((level, slot)) = list.level_slot() {
            self.occupied.clear(level, slot);
        }
    }

    /// Files `value` to expire at tick `deadline`. A deadline at or before [`now`](Self::now)
    /// expires at the next [`poll`](Self::poll). O(1).
    ///
    /// # Panics
    /// If the wheel already holds `u32::MAX - 1` timers.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// let key = wheel.insert(5, 'a');
    /// assert_eq!(wheel.deadline(key), Some(5));
    /// assert_eq!(wheel.next_deadline(), Some(5));
    /// ```
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let list = self.list_for(deadline);
        let (index, generation) = self.entries.insert(deadline, value, list);
        TimerKey { index, generation }
    }

    /// Removes a pending timer and returns its value; `None` if the key is stale. O(1).
    ///
    /// Lazy: the key is stale at once and the value is moved out, but the timer's index stays
    /// on its slot list, flagged, until that slot drains (or a sweep, once cancelled timers
    /// outnumber pending ones): no list is written. [`discard`](Self::discard) is cheaper
    /// still when the value is not wanted.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// let key = wheel.insert(5, 'a');
    /// assert_eq!(wheel.cancel(key), Some('a'));
    /// assert_eq!(wheel.cancel(key), None); // stale now
    /// assert_eq!(wheel.advance(10).count(), 0);
    /// ```
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let value = self.entries.cancel(key.index, key.generation)?;
        self.after_cancel();
        Some(value)
    }

    /// Removes a pending timer and drops its value; `false` if the key is stale. O(1).
    ///
    /// The same as [`cancel`](Self::cancel) for the caller, but cheaper when the value needs
    /// no drop (`u32`, `()`, a connection index): the wheel then does not read the timer's
    /// entry at all, only its generation and one bit (see the crate documentation), which
    /// matters when timers are cancelled in random order, as connections close in a server.
    /// A value that needs a drop is dropped at once, as by `cancel`.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// let key = wheel.insert(5, 7u32);
    /// assert!(wheel.discard(key));
    /// assert!(!wheel.discard(key)); // stale now
    /// assert!(wheel.is_empty());
    /// assert_eq!(wheel.advance(10).count(), 0);
    /// ```
    pub fn discard(&mut self, key: TimerKey) -> bool {
        let live = if std::mem::needs_drop::<T>() {
            self.entries.cancel(key.index, key.generation).is_some()
        } else {
            self.entries.discard(key.index, key.generation)
        };
        if live {
            self.after_cancel();
        }
        live
    }

    /// Keeps memory bounded after a cancel: once cancelled timers still on their lists
    /// outnumber the pending ones, every list is swept of them (O(lists' members), so O(1)
    /// amortised per cancel).
    #[inline]
    fn after_cancel(&mut self) {
        if self.entries.dead_len() > self.entries.len() + SWEEP_SLACK {
            self.sweep();
        }
    }

    #[cold]
    fn sweep(&mut self) {
        let occupied = &mut self.occupied;
        self.entries.sweep(|list| {
            if let Some((level, slot)) = list.level_slot() {
                occupied.clear(level, slot);
            }
        });
        // The due entries `sift` left at the back of the draining list may have moved.
        self.sifted = 0;
    }

    /// Moves a pending timer's deadline; `false` if the key is stale.
    ///
    /// Moving it later is O(1) and touches no list: the entry stays filed where it was and is
    /// re-filed at its true deadline when that slot comes due. Moving it earlier re-files it
    /// at once, also O(1). A deadline at or before [`now`](Self::now) expires at the next
    /// poll.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// let key = wheel.insert(10, ());
    /// assert!(wheel.reset(key, 1_000)); // later: lazy
    /// assert_eq!(wheel.advance(999).count(), 0);
    /// assert!(wheel.reset(key, 0)); // earlier, into the past: due at the next poll
    /// assert_eq!(wheel.poll(999).map(|e| e.deadline), Some(0));
    /// assert!(!wheel.reset(key, 5)); // fired: the key is stale
    /// ```
    pub fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let now = self.now;
        let Some(entry) = self.entries.get_mut(key.index, key.generation) else {
            return false;
        };
        let old = entry.deadline;
        entry.deadline = deadline;
        // Later: the slot the entry is filed in still comes due at or before the new
        // deadline, so leave it there. The one exception is an entry on the ready list being
        // moved into the future: it must leave the ready list now or it would fire early.
        if deadline >= old && (old > now || deadline <= now) {
            return true;
        }
        let (list, now_empty) = self.entries.unlink(key.index);
        self.left(list, now_empty);
        let list = self.list_for(deadline);
        self.entries.link(key.index, list);
        true
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.entries
            .get(key.index, key.generation)
            .map(|e| e.deadline)
    }

    /// Whether `key` names a pending timer.
    pub fn contains(&self, key: TimerKey) -> bool {
        self.entries.get(key.index, key.generation).is_some()
    }

    /// The value of a pending timer.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.entries
            .get(key.index, key.generation)
            .map(Entries::value)
    }

    /// The value of a pending timer, mutably.
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        self.entries
            .get_mut(key.index, key.generation)
            .map(Entries::value_mut)
    }

    /// The earliest tick at which [`poll`](Self::poll) may have work to do: never later than
    /// the earliest deadline, but possibly earlier (a timer whose deadline was pushed later is
    /// re-filed lazily when its old slot comes due, and a timer on a higher level is re-filed
    /// when its slot, which starts up to that slot's width before the deadline, comes due).
    /// Each timer causes at most one such early wake-up per level. O(1).
    ///
    /// Returns [`now`](Self::now) when timers are already due, and `None` when the wheel is
    /// empty.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// assert_eq!(wheel.next_deadline(), None);
    /// wheel.insert(40, ());
    /// assert_eq!(wheel.next_deadline(), Some(40)); // level 0: exact
    /// wheel.insert(5_000, ());
    /// wheel.advance(40).for_each(drop);
    /// // 5000 is on level 2, whose slot starts at 4096: a lower bound.
    /// let bound = wheel.next_deadline().unwrap();
    /// assert!(bound > 40 && bound <= 5_000);
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        if !self.entries.is_list_empty(ListId::READY)
            || self
                .draining
                .is_some_and(|d| !self.entries.is_list_empty(d))
        {
            return Some(self.now);
        }
        let slot = self
            .occupied
            .next()
            .map(|(level, slot)| slot_start(self.now, level, slot));
        let staged = self.entries.stage_next().map(|t| t.max(self.now));
        match (slot, staged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the wheel to `now` (a `now` earlier than [`Wheel::now`] is taken as `now()`),
    /// and returns one timer whose deadline is at or before it, or `None` when none is left.
    ///
    /// Between two calls the caller may insert, cancel and reset freely; a timer inserted
    /// due meanwhile is returned by the next call. Timers filed with a future deadline come
    /// out in deadline order; one filed at or before `now()` comes out first.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// wheel.insert(3, "a");
    /// wheel.insert(7, "b");
    /// while let Some(e) = wheel.poll(10) {
    ///     if e.value == "a" {
    ///         wheel.insert(9, "re-armed"); // allowed mid-poll; due at 9 <= 10
    ///     }
    /// }
    /// assert!(wheel.is_empty());
    /// assert_eq!(wheel.now(), 10);
    /// ```
    pub fn poll(&mut self, now: u64) -> Option<Expired<T>> {
        let mut budget = usize::MAX;
        self.poll_bounded(now, &mut budget)
    }

    /// [`poll`](Self::poll) spending at most `budget` units of work (an expiry or a lazy
    /// re-file each cost one).
    fn poll_bounded(&mut self, target: u64, budget: &mut usize) -> Option<Expired<T>> {
        let target = target.max(self.now);
        loop {
            if *budget == 0 {
                return None;
            }
            if let Some(index) = self.entries.pop(ListId::READY) {
                *budget -= 1;
                return Some(self.expire(index));
            }
            if let Some(list) = self.draining {
                if self.sifted == 0 {
                    self.sifted = self.sift(list, budget);
                    if *budget == 0 {
                        return None;
                    }
                }
                if let Some(index) = self.entries.pop(list) {
                    self.sifted = self.sifted.saturating_sub(1);
                    *budget -= 1;
                    let deadline = self.entries.deadline_of(index);
                    if deadline <= self.now {
                        return Some(self.expire(index));
                    }
                    // Pushed later while filed here (lazy reset), or filed on a higher level:
                    // move it down to where its true deadline belongs. Never back into the
                    // draining slot, which contains `now` (see `level`).
                    self.refile(index, deadline);
                    continue;
                }
                self.draining = None;
                // A level-2 slot just emptied into the stage: sort it.
                self.entries.seal_stage();
            }
            let next_slot = self
                .occupied
                .next()
                .map(|(level, slot)| (slot_start(self.now, level, slot), level, slot));
            // The stage goes first unless a slot starts at or before its next deadline (a
            // slot must never start before `now`, see `level.rs`).
            if let Some(staged) = self.entries.stage_next()
                && next_slot.is_none_or(|(start, ..)| staged < start)
            {
                if staged > target {
                    self.now = target;
                    return None;
                }
                debug_assert!(staged >= self.now, "the stage is never behind now");
                self.now = self.now.max(staged);
                // The staged timers due now are drained like a level-0 slot: the one of
                // `now`, which is empty (nothing is ever filed in the slot of `now`).
                let list = ListId::slot(0, slot_for(self.now, 0));
                std::hint::black_box(self.entries.warm_stage());
                while *budget > 0
                    && let Some(index) = self.entries.pop_staged(self.now)
                {
                    self.entries.link(index, list);
                    *budget -= 1;
                }
                self.draining = Some(list);
                self.sifted = 0;
                continue;
            }
            let Some((start, level, slot)) = next_slot else {
                self.now = target;
                return None;
            };
            if start > target {
                self.now = target;
                return None;
            }
            debug_assert!(start > self.now, "occupied slots start after now");
            self.now = start;
            self.occupied.clear(level, slot);
            self.draining = Some(ListId::slot(level, slot));
            self.sifted = 0;
            if level == 2 {
                // Its timers will be staged rather than re-filed, if the stage is free.
                self.entries.open_stage(start);
            }
        }
    }

    /// Takes up to [`SIFT_CHUNK`] positions off the back of the draining `list` in one go,
    /// re-files the entries not yet due (each costs one unit of `budget`) and puts the due
    /// ones back at the back for the pops that follow. Returns how many due ones it put back.
    ///
    /// Why: the entries of a slot are scattered over the slab, and handing them out one per
    /// poll makes every poll wait for its own cache miss. Reading a chunk of them in one loop
    /// lets the CPU have many misses in flight at once; the pops then find them cached. On the
    /// 1M-timer bench workload this cut the time spent advancing by about a third. The holes
    /// (left by resets to an earlier deadline) and the cancelled members in the chunk are
    /// dropped first, without a branch per position (see
    /// [`List::take_tail`](list::List::take_tail) and `Entries::take_tail`), so neither loop
    /// below meets one.
    fn sift(&mut self, list: ListId, budget: &mut usize) -> usize {
        let len = self.entries.list_len(list);
        let examine = len.min(*budget).min(SIFT_CHUNK);
        // A level-0 slot's timers are normally all due: then read them where they are (the
        // same overlapping loads) and leave the list as it is for the pops that follow.
        if list.level_slot().is_some_and(|(level, _)| level == 0)
            && self.entries.all_due(list, len - examine, self.now)
        {
            return examine;
        }
        let mut live = std::mem::take(&mut self.sift_live);
        live.clear();
        let mut dead = std::mem::take(&mut self.sift_dead);
        self.entries
            .take_tail(list, len - examine, &mut live, &mut dead);
        self.sift_dead = dead;
        // First pass: only loads, independent of each other, so they overlap.
        let mut deadlines = std::mem::take(&mut self.sift_deadlines);
        deadlines.clear();
        deadlines.extend(live.iter().map(|&index| self.entries.deadline_of(index)));
        // Timers leaving a level-1 slot go to level 0 and expire within 64 ticks: read their
        // generations now too, in the same batch, so that the expiries find them in the cache
        // as they find their entries (the generations live apart from the entries, see
        // `entries.rs`; without this, every expiry waited for one more miss).
        let mut generations = 0;
        if list.level_slot().is_some_and(|(level, _)| level == 1) {
            for &index in &live {
                generations ^= u64::from(self.entries.generation_of(index));
            }
        }
        // Second pass: the entries are cached now. A due one goes back on the draining list
        // (its occupancy bit stays clear: the poll in progress empties it).
        let mut kept = 0;
        // The generations of the due ones, read here for the same reason as their deadlines
        // above: the expiries that follow find them cached instead of each waiting for one.
        for (&index, &deadline) in live.iter().zip(&deadlines) {
            if deadline <= self.now {
                self.entries.link(index, list);
                generations ^= u64::from(self.entries.generation_of(index));
                kept += 1;
            } else {
                self.refile(index, deadline);
                *budget -= 1;
            }
        }
        std::hint::black_box(generations);
        self.sift_deadlines = deadlines;
        self.sift_live = live;
        kept
    }

    /// Files the unlisted entry at `index`, not yet due at `deadline`: on the stage if it is
    /// filling and takes it, on the list of its deadline otherwise.
    #[inline]
    fn refile(&mut self, index: u32, deadline: u64) {
        if !self.entries.stage(index, deadline) {
            let to = self.list_for(deadline);
            self.entries.link(index, to);
        }
    }

    /// Frees the unlinked entry at `index` and wraps it as an [`Expired`].
    #[inline]
    fn expire(&mut self, index: u32) -> Expired<T> {
        let Removed {
            generation,
            deadline,
            value,
        } = self.entries.remove(index);
        Expired {
            key: TimerKey { index, generation },
            deadline,
            value,
        }
    }

    /// Advances to `now` and yields every timer due at or before it, each exactly once.
    ///
    /// The iterator is lazy: timers are expired, and [`now()`](Self::now) moves, only as it
    /// is driven; dropping it early leaves the rest due for the next call.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// for t in [5, 1_000, 60_000] {
    ///     wheel.insert(t, t);
    /// }
    /// // A big jump visits only the occupied slots, not 60,000 ticks.
    /// let fired: Vec<u64> = wheel.advance(60_000).map(|e| e.value).collect();
    /// assert_eq!(fired, [5, 1_000, 60_000]);
    /// ```
    pub fn advance(&mut self, now: u64) -> Advance<'_, T> {
        self.advance_bounded(now, usize::MAX)
    }

    /// Like [`advance`](Self::advance), but stops after `max_work` units of work (an expiry or a
    /// lazy re-file each count one). Timers left due are returned by the next call.
    ///
    /// ```
    /// use wheelbeat_timer::Wheel;
    ///
    /// let mut wheel = Wheel::new();
    /// for _ in 0..10 {
    ///     wheel.insert(3, ());
    /// }
    /// assert_eq!(wheel.advance_bounded(5, 4).count(), 4);
    /// assert_eq!(wheel.next_deadline(), Some(3)); // work is left at the current tick
    /// assert_eq!(wheel.advance_bounded(5, 100).count(), 6);
    /// ```
    pub fn advance_bounded(&mut self, now: u64, max_work: usize) -> Advance<'_, T> {
        Advance {
            wheel: self,
            now,
            budget: max_work,
        }
    }
}

/// The iterator returned by [`Wheel::advance`] and [`Wheel::advance_bounded`].
///
/// Lazy: the wheel moves on, and timers expire, only as it is driven. Dropping it early is
/// fine; whatever was left due is returned by the next poll or advance.
#[derive(Debug)]
#[must_use = "the wheel only advances, and timers only expire, as the iterator is driven"]
pub struct Advance<'a, T> {
    wheel: &'a mut Wheel<T>,
    now: u64,
    budget: usize,
}

impl<T> Iterator for Advance<'_, T> {
    type Item = Expired<T>;

    fn next(&mut self) -> Option<Expired<T>> {
        self.wheel.poll_bounded(self.now, &mut self.budget)
    }
}

impl<T> std::iter::FusedIterator for Advance<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(wheel: &mut Wheel<&'static str>, now: u64) -> Vec<(u64, &'static str)> {
        wheel.advance(now).map(|e| (e.deadline, e.value)).collect()
    }

    #[test]
    fn a_wheel_is_send_and_sync_when_its_values_are() {
        fn check<W: Send + Sync>() {}
        check::<Wheel<String>>();
    }

    #[test]
    fn lazy_reset_refiles_at_the_old_slot_and_fires_at_the_new_deadline() {
        let mut wheel = Wheel::new();
        let key = wheel.insert(100, "hb");
        assert!(wheel.reset(key, 5_000));
        // Still filed for 100: the wheel wakes there, finds it not due, re-files it.
        assert!(wheel.next_deadline().is_some_and(|t| t <= 100));
        assert_eq!(fired(&mut wheel, 100), []);
        let bound = wheel.next_deadline().unwrap();
        assert!(
            bound > 100 && bound <= 5_000,
            "re-filed towards 5000: {bound}"
        );
        assert_eq!(fired(&mut wheel, 4_999), []);
        assert_eq!(fired(&mut wheel, 5_000), [(5_000, "hb")]);
    }

    #[test]
    fn a_due_timer_reset_into_the_future_leaves_the_ready_list() {
        let mut wheel = Wheel::new();
        wheel.advance(50).for_each(drop);
        let key = wheel.insert(20, "late"); // already due
        assert_eq!(wheel.next_deadline(), Some(50));
        assert!(wheel.reset(key, 60)); // later, and no longer due: must not fire at 50
        assert_eq!(fired(&mut wheel, 59), []);
        assert_eq!(fired(&mut wheel, 60), [(60, "late")]);
    }

    #[test]
    fn work_left_by_a_bounded_advance_comes_before_later_timers() {
        let mut wheel = Wheel::new();
        for name in ["a", "b", "c"] {
            wheel.insert(10, name);
        }
        assert_eq!(wheel.advance_bounded(20, 1).count(), 1);
        assert_eq!(wheel.now(), 10, "stopped at the slot being drained");
        wheel.insert(11, "d");
        wheel.insert(5, "past");
        let order: Vec<_> = fired(&mut wheel, 20).into_iter().map(|(d, _)| d).collect();
        assert_eq!(order, [5, 10, 10, 11]);
    }

    #[test]
    fn cancel_during_a_drain_removes_the_timer_from_the_drained_slot() {
        let mut wheel = Wheel::new();
        let keys: Vec<_> = (0..5).map(|_| wheel.insert(7, "x")).collect();
        assert_eq!(wheel.advance_bounded(7, 2).count(), 2);
        let cancelled = keys.iter().filter(|&&k| wheel.cancel(k).is_some()).count();
        assert_eq!(
            cancelled, 3,
            "the three not yet handed out are still pending"
        );
        assert_eq!(wheel.next_deadline(), None);
        assert_eq!(fired(&mut wheel, 100), []);
    }

    #[test]
    fn a_drain_over_many_chunks_with_holes_hands_out_each_live_timer_once() {
        // Guards `sift` taking chunks off a slot full of cancel holes, under a small budget,
        // with cancels between two bounded polls hitting timers it has put back.
        let mut wheel = Wheel::new();
        let n = 3 * SIFT_CHUNK as u64 + 17;
        let keys: Vec<_> = (0..n).map(|v| wheel.insert(5_000 + v % 7, v)).collect();
        for &key in keys.iter().step_by(2) {
            assert!(wheel.cancel(key).is_some());
        }
        let mut fired = Vec::new();
        let mut cancelled = Vec::new();
        for round in 0.. {
            let batch: Vec<_> = wheel.advance_bounded(5_003, 100).collect();
            if batch.is_empty() && round > 0 {
                break;
            }
            for e in batch {
                assert!(e.deadline <= 5_003 && e.deadline == 5_000 + e.value % 7);
                fired.push(e.value);
            }
            // Every 5th odd timer still pending is cancelled mid-drain.
            for (v, &key) in keys.iter().enumerate().skip(round % 5 * 2 + 1).step_by(10) {
                if wheel.cancel(key).is_some() {
                    cancelled.push(v as u64);
                }
            }
        }
        fired.extend(wheel.advance(5_010).map(|e| e.value));
        assert!(wheel.is_empty());
        fired.extend(cancelled);
        fired.sort_unstable();
        let odd: Vec<u64> = (1..n).step_by(2).collect();
        assert_eq!(
            fired, odd,
            "each live timer fired or was cancelled, exactly once"
        );
    }

    #[test]
    fn churn_of_cancelled_timers_keeps_memory_bounded() {
        // Guards the lazy cancel: cancelled timers stay on their lists and keep their indices
        // until a drain meets them, so without the sweep a server that arms and cancels a
        // timer per request, with time standing still, would grow without bound.
        let mut wheel = Wheel::new();
        let pending: Vec<_> = (0..10).map(|v| wheel.insert(1_000_000 + v, v)).collect();
        for v in 0..200_000 {
            let key = wheel.insert(500_000 + v % 100_000, v);
            if v % 2 == 0 {
                assert!(wheel.discard(key));
            } else {
                assert_eq!(wheel.cancel(key), Some(v));
            }
        }
        assert_eq!(wheel.len(), pending.len());
        assert!(wheel.capacity() < 4_096, "slab: {}", wheel.capacity());
        assert!(
            wheel.memory_bytes() < 100_000,
            "{} bytes",
            wheel.memory_bytes()
        );
        let fired: Vec<_> = wheel.advance(u64::MAX).map(|e| e.value).collect();
        assert_eq!(fired, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_sweep_in_the_middle_of_a_drain_keeps_every_pending_timer() {
        let mut wheel = Wheel::new();
        let soon: Vec<_> = (0..3_000).map(|v| wheel.insert(5_000 + v % 7, v)).collect();
        let late: Vec<_> = (0..3_000)
            .map(|v| wheel.insert(70_000, 10_000 + v))
            .collect();
        assert_eq!(wheel.advance(4_999).count(), 0);
        // Staged (level 2), then taken off the stage and expired in bounded steps.
        let mut fired: Vec<u64> = Vec::new();
        while fired.len() < 100 {
            fired.extend(wheel.advance_bounded(5_003, 100).map(|e| e.value));
        }
        assert!(fired.len() < 3_000 && wheel.now() == 5_000, "mid-drain");
        // 3,000 + 1,000 cancelled against 1,900 pending: the sweep runs on the way.
        for &key in &late {
            assert!(wheel.discard(key));
        }
        let mut cancelled = Vec::new();
        for (v, &key) in soon.iter().enumerate().step_by(3) {
            if wheel.cancel(key).is_some() {
                cancelled.push(v as u64);
            }
        }
        // Without a sweep the 3,000 late ones would all still be on their list.
        let dead = wheel.entries.dead_len();
        assert!(
            dead < 1_000,
            "a sweep ran: {dead} cancelled timers left on lists"
        );
        fired.extend(wheel.advance(5_010).map(|e| e.value));
        assert_eq!(wheel.advance(u64::MAX).count(), 0);
        assert!(wheel.is_empty() && wheel.next_deadline().is_none());
        fired.extend(cancelled);
        fired.sort_unstable();
        assert_eq!(fired, (0..3_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_staged_timer_moved_earlier_leaves_a_stale_key_that_never_fires_its_successor() {
        // Guards the stage's "unstaged" flag: a staged key is never removed, so the timer
        // that moved away, expired and handed its index to a new timer must not be fired
        // again, nor the new timer with it, when the stale key comes up.
        let mut wheel = Wheel::new();
        let a = wheel.insert(5_000, "a"); // level 2: staged when its slot drains at 4096
        let c = wheel.insert(5_001, "c");
        assert_eq!(fired(&mut wheel, 4_096), []);
        assert!(wheel.entries.stage_next().is_some(), "staged");
        assert!(wheel.reset(a, 4_500)); // earlier: leaves the stage
        assert!(wheel.reset(c, 6_000)); // later: lazy, stays staged
        assert_eq!(fired(&mut wheel, 4_500), [(4_500, "a")]);
        let b = wheel.insert(5_000, "b"); // reuses a's index
        assert_eq!(b.index, a.index);
        assert_eq!(fired(&mut wheel, 4_999), []);
        assert_eq!(
            fired(&mut wheel, 5_000),
            [(5_000, "b")],
            "b once, a never again"
        );
        assert_eq!(
            fired(&mut wheel, 5_999),
            [],
            "c was pushed later while staged"
        );
        assert_eq!(fired(&mut wheel, 6_000), [(6_000, "c")]);
        assert!(wheel.is_empty() && wheel.entries.stage_next().is_none());
    }

    #[test]
    fn staged_timers_cancelled_or_swept_are_dropped_and_the_rest_fire_in_order() {
        let mut wheel = Wheel::new();
        let keys: Vec<_> = (0..6_000u64)
            .map(|v| wheel.insert(4_096 + 1 + (v * 7) % 4_000, v))
            .collect();
        assert_eq!(wheel.advance(4_096).count(), 0);
        // Cancel two thirds: the sweep runs over the stage too.
        for (v, &key) in keys.iter().enumerate() {
            if v % 3 != 0 {
                assert!(wheel.discard(key));
            }
        }
        assert!(wheel.entries.dead_len() < 1_000, "swept");
        let got: Vec<(u64, u64)> = wheel
            .advance(9_000)
            .map(|e| (e.deadline, e.value))
            .collect();
        let mut want: Vec<(u64, u64)> = (0..6_000u64)
            .filter(|v| v % 3 == 0)
            .map(|v| (4_096 + 1 + (v * 7) % 4_000, v))
            .collect();
        want.sort_unstable();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, want);
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "in deadline order"
        );
        assert!(wheel.is_empty());
    }

    #[test]
    fn clear_drops_everything_and_keeps_keys_stale() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(3, "a");
        wheel.insert(300, "b");
        wheel.clear();
        assert!(wheel.is_empty() && wheel.next_deadline().is_none());
        let c = wheel.insert(3, "c");
        assert_ne!(a, c);
        assert_eq!(wheel.get(a), None);
        assert_eq!(fired(&mut wheel, 1_000), [(3, "c")]);
    }
}
