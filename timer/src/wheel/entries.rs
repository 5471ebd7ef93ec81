//! The slab of timer entries, their generations, and the lists that file them: one `Vec<u32>`
//! of entry indices per wheel slot, plus the ready list.
//!
//! # Ground rules
//!
//! - An entry lives at a fixed index for its whole life; handles are `(index, generation)`.
//!   The generations live in their own array (`generations`), not in the entries: checking a
//!   handle reads 4 bytes in a 4 MB array per million timers, which stays in the last-level
//!   cache, instead of a 24-32 byte entry in a slab that does not.
//! - `generations[i]` is the generation of index `i`'s live timer, or the one its next timer
//!   will get. Cancelling or expiring a timer bumps it, so an old handle never matches again.
//!   A generation that reaches [`RETIRED`] is never handed out: a stale handle can therefore
//!   never alias a later timer, even after 2^32 reuses of one index (one leaked index per
//!   2^32 timers filed in it).
//! - **Cancel is lazy.** A cancelled timer's index stays on its list, flagged in `dead` (one
//!   bit per index: 128 KiB per million timers, cache-resident). Neither its entry nor its
//!   list is written. Whoever meets a flagged member later (a drain, a pop, a compaction)
//!   drops it and pushes its index on the `free` stack, still without touching the entry.
//!   Only then is the index reused, so a list never meets a later timer's index by mistake.
//!   Why: with cancels in random order, the eager cancel paid two cache misses (the entry,
//!   then a hole in its list at the entry's position); the lazy one pays none in the slab.
//! - The stage (`stage.rs`) holds keys, not positions: a staged entry is marked
//!   `ListId::STAGE`, and one that leaves the stage early (a reset to an earlier deadline) is
//!   flagged in `unstaged`, one bit per index, so that its key is dropped when met without
//!   touching the entry, and never mistaken for a later timer that reuses the index (an
//!   index is reused only after it expired or was reaped, and the stage refills only when
//!   empty, so the flag is always cleared by the key it was set for).
//! - Memory stays bounded: when dead members outnumber the live timers (plus a slack of
//!   [`SWEEP_SLACK`]), every list is swept of them at once, O(members), as the heap
//!   contenders rebuild. The wheel triggers it (see `Wheel::cancel`).
//! - Every live entry is on exactly one list (a `Vec` of indices, see `list.rs`) and records
//!   which, and at what position, so that a reset to an earlier deadline can take it off in
//!   O(1) (that leaves a hole; holes are filled in batches, see `list.rs`); or it is on the
//!   stage, as above. No `unsafe`, no pointers.
//! - Why arrays and not intrusive linked lists: draining a slot walks its entries, and a
//!   linked list makes each step wait for the previous cache miss (the next index lives in
//!   the entry just fetched). An array of indices lets the CPU fetch many entries at once.
//! - An expired timer's index goes on an intrusive free list threaded through the vacant
//!   entries instead (its entry was just read, so writing the link costs nothing), so that
//!   expiring a million timers allocates nothing. Insert reuses reaped indices first.
//! - Vacant and occupied entries share the `Slot` enum; the `ListId` niche encodes the
//!   variant, so an entry costs 14 bytes plus the value, rounded up to 8 (16 for values up to
//!   2 bytes, 24 up to 10), plus 4 bytes of generation, with no tag byte. A discarded entry
//!   whose value needs no drop is left as it is (stale, never read again) until its index is
//!   reused.

use super::level::{LISTS, ListId};
use super::list::{HOLE, List};
use super::stage::Stage;

/// A generation never handed out: an index whose generation reaches it is retired.
const RETIRED: u32 = u32::MAX;

/// Dead members may outnumber live timers by this much before every list is swept.
pub(super) const SWEEP_SLACK: usize = 1024;

/// A pending timer.
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// The true deadline. May be later than the slot the entry is filed in (lazy reset).
    pub(super) deadline: u64,
    /// Position in `list`.
    pos: u32,
    list: ListId,
    value: T,
}

/// An entry taken out of the slab.
pub(super) struct Removed<T> {
    pub(super) generation: u32,
    pub(super) deadline: u64,
    pub(super) value: T,
}

#[derive(Debug)]
enum Slot<T> {
    Occupied(Entry<T>),
    /// `next_free`: the next index on the intrusive free list, or `NIL`.
    Vacant {
        next_free: u32,
    },
}

/// "No index": the end of the intrusive free list.
const NIL: u32 = u32::MAX;

/// The slab, the generations, the dead bits and the lists.
pub(super) struct Entries<T> {
    slots: Vec<Slot<T>>,
    generations: Vec<u32>,
    /// Bit `i`: index `i` was cancelled and is still on a list.
    dead: Vec<u64>,
    /// Reaped indices ready for reuse (retired ones are skipped when popped).
    free: Vec<u32>,
    /// The head of the intrusive free list of expired indices (`NIL` when empty).
    free_head: u32,
    lists: Box<[List]>,
    /// The timers of the last drained level-2 slot, sorted (see `stage.rs`).
    stage: Stage,
    /// Bit `i`: index `i`'s key in the stage is stale (it was filed elsewhere since).
    unstaged: Vec<u64>,
    /// Live timers.
    len: usize,
    /// Cancelled timers whose index is still on a list.
    dead_len: usize,
}

impl<T> Entries<T> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Entries {
            slots: Vec::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            dead: Vec::with_capacity(capacity.div_ceil(64)),
            free: Vec::new(),
            free_head: NIL,
            lists: (0..LISTS).map(|_| List::default()).collect(),
            stage: Stage::default(),
            unstaged: Vec::with_capacity(capacity.div_ceil(64)),
            len: 0,
            dead_len: 0,
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Cancelled timers whose index is still on a list.
    #[inline]
    pub(super) fn dead_len(&self) -> usize {
        self.dead_len
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub(super) fn reserve(&mut self, additional: usize) {
        let spare = self.slots.len() - self.len;
        let more = additional.saturating_sub(spare);
        self.slots.reserve(more);
        self.generations.reserve(more);
        let bits = (self.slots.len() + more).div_ceil(64);
        self.dead.reserve(bits.saturating_sub(self.dead.len()));
        self.unstaged
            .reserve(bits.saturating_sub(self.unstaged.len()));
    }

    /// Whether `(index, generation)` names a live timer.
    #[inline]
    fn is_live(&self, index: u32, generation: u32) -> bool {
        self.generations.get(index as usize) == Some(&generation)
    }

    /// The live entry at `index` if its generation is `generation`.
    #[inline]
    pub(super) fn get(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        if !self.is_live(index, generation) {
            return None;
        }
        match &self.slots[index as usize] {
            Slot::Occupied(e) => Some(e),
            Slot::Vacant { .. } => None,
        }
    }

    /// The live entry at `index` if its generation is `generation`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        if !self.is_live(index, generation) {
            return None;
        }
        match &mut self.slots[index as usize] {
            Slot::Occupied(e) => Some(e),
            Slot::Vacant { .. } => None,
        }
    }

    /// The entry at `index`, which the caller knows to be live (it came off a list).
    #[inline]
    fn entry_mut(&mut self, index: u32) -> &mut Entry<T> {
        entry_mut(&mut self.slots, index)
    }

    /// The deadline of the live entry at `index`.
    #[inline]
    pub(super) fn deadline_of(&self, index: u32) -> u64 {
        match &self.slots[index as usize] {
            Slot::Occupied(e) => e.deadline,
            Slot::Vacant { .. } => unreachable!("live list members have entries"),
        }
    }

    /// The generation of `index`.
    #[inline]
    pub(super) fn generation_of(&self, index: u32) -> u32 {
        self.generations[index as usize]
    }

    #[inline]
    fn is_dead(&self, index: u32) -> bool {
        self.dead[index as usize / 64] & (1 << (index % 64)) != 0
    }

    /// Stores a new entry and files it on `list`. Returns `(index, generation)`.
    ///
    /// # Panics
    /// If `u32::MAX - 1` indices are already in use (indices are `u32`, `HOLE` excluded).
    pub(super) fn insert(&mut self, deadline: u64, value: T, list: ListId) -> (u32, u32) {
        let pos = self.lists[list.index()].len() as u32;
        let entry = Entry {
            deadline,
            pos,
            list,
            value,
        };
        let (index, generation) = match self.reuse() {
            Some(index) => {
                self.slots[index as usize] = Slot::Occupied(entry);
                (index, self.generations[index as usize])
            }
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != HOLE)
                    .expect("a Wheel holds at most u32::MAX - 1 timers");
                self.slots.push(Slot::Occupied(entry));
                self.generations.push(0);
                if index % 64 == 0 {
                    self.dead.push(0);
                    self.unstaged.push(0);
                }
                (index, 0)
            }
        };
        let filed = self.lists[list.index()].push(index);
        debug_assert_eq!(filed, pos);
        self.len += 1;
        (index, generation)
    }

    /// An index to reuse, if any: a reaped one first, then an expired one; retired ones
    /// (whose generation reached [`RETIRED`]) are skipped and never handed out again.
    #[inline]
    fn reuse(&mut self) -> Option<u32> {
        loop {
            let index = match self.free.pop() {
                Some(index) => index,
                None if self.free_head != NIL => {
                    let index = self.free_head;
                    let Slot::Vacant { next_free } = self.slots[index as usize] else {
                        unreachable!("the free list holds vacant slots only")
                    };
                    self.free_head = next_free;
                    index
                }
                None => return None,
            };
            if self.generations[index as usize] != RETIRED {
                return Some(index);
            }
        }
    }

    /// Files the live, currently unlisted entry at `index` on `list`.
    #[inline]
    pub(super) fn link(&mut self, index: u32, list: ListId) {
        let pos = self.lists[list.index()].push(index);
        let e = self.entry_mut(index);
        e.pos = pos;
        e.list = list;
    }

    /// Takes the live entry at `index` off its list. Returns the list and whether it is now
    /// empty. The entry keeps a stale `list` until it is linked again or freed.
    #[inline]
    pub(super) fn unlink(&mut self, index: u32) -> (ListId, bool) {
        let e = entry_mut(&mut self.slots, index);
        let (list, pos) = (e.list, e.pos);
        if list == ListId::STAGE {
            // The stage's keys are never moved: flag this one stale instead.
            self.unstaged[index as usize / 64] |= 1 << (index % 64);
            return (list, false);
        }
        let Entries {
            slots,
            lists,
            dead,
            free,
            dead_len,
            ..
        } = self;
        let reap = |i| reap(dead, free, dead_len, i);
        let empty = lists[list.index()].remove(pos, reap, |i, p| set_pos(slots, i, p));
        (list, empty)
    }

    /// Cancels the live timer `(index, generation)` and returns its value; `None` if stale.
    /// Its index stays on its list, flagged dead; only the entry itself is read.
    #[inline]
    pub(super) fn cancel(&mut self, index: u32, generation: u32) -> Option<T> {
        if !self.is_live(index, generation) {
            return None;
        }
        self.kill(index);
        // Not on the free list yet: its index is still on a list, flagged dead.
        match std::mem::replace(
            &mut self.slots[index as usize],
            Slot::Vacant { next_free: NIL },
        ) {
            Slot::Occupied(e) => Some(e.value),
            Slot::Vacant { .. } => unreachable!("a live index has an entry"),
        }
    }

    /// Cancels the live timer `(index, generation)` without reading its entry: the value is
    /// left in place and dropped when the index is reused. Returns whether it was live. Only
    /// for values that need no drop (the caller checks), which may then stay unread.
    #[inline]
    pub(super) fn discard(&mut self, index: u32, generation: u32) -> bool {
        debug_assert!(!std::mem::needs_drop::<T>());
        if !self.is_live(index, generation) {
            return false;
        }
        self.kill(index);
        true
    }

    /// Bumps the generation of the live index and flags it dead.
    #[inline]
    fn kill(&mut self, index: u32) {
        bump(&mut self.generations, index);
        self.dead[index as usize / 64] |= 1 << (index % 64);
        self.len -= 1;
        self.dead_len += 1;
    }

    /// Takes positions `base..` off `list` and appends their live members to `out` (see
    /// [`List::take_tail`]); dead members among them are freed. The live entries keep a stale
    /// `list` until linked again. `scratch` is a buffer for the dead ones.
    ///
    /// Without a branch per member, as in `List::take_tail`: after a random half of a slot's
    /// timers were cancelled, "dead or not" mispredicts about every other member.
    #[inline]
    pub(super) fn take_tail(
        &mut self,
        list: ListId,
        base: usize,
        out: &mut Vec<u32>,
        scratch: &mut Vec<u32>,
    ) {
        let start = out.len();
        self.lists[list.index()].take_tail(base, out);
        // Loads only: most chunks below level 2 hold no cancelled member, and then nothing
        // is written.
        if self.dead_len == 0 || !out[start..].iter().any(|&index| self.is_dead(index)) {
            return;
        }
        scratch.clear();
        scratch.resize(out.len() - start, 0);
        let (mut live, mut dead) = (start, 0);
        for j in start..out.len() {
            let index = out[j];
            let word = &mut self.dead[index as usize / 64];
            let bit = 1 << (index % 64);
            let is_dead = *word & bit != 0;
            // A live member's bit is clear already: clearing it unconditionally is a no-op.
            *word &= !bit;
            out[live] = index;
            scratch[dead] = index;
            live += usize::from(!is_dead);
            dead += usize::from(is_dead);
        }
        out.truncate(live);
        self.free.extend_from_slice(&scratch[..dead]);
        self.dead_len -= dead;
    }

    /// Starts staging the level-2 slot starting at `base`; `false` if the stage is in use.
    #[inline]
    pub(super) fn open_stage(&mut self, base: u64) -> bool {
        self.stage.open(base)
    }

    /// Stages the live, unlisted entry at `index` if the stage is filling and takes its
    /// `deadline`; returns whether it did.
    #[inline]
    pub(super) fn stage(&mut self, index: u32, deadline: u64) -> bool {
        if !self.stage.accepts(deadline) {
            return false;
        }
        self.stage.push(deadline, index);
        self.entry_mut(index).list = ListId::STAGE;
        true
    }

    /// Ends filling the stage (sorts it).
    #[inline]
    pub(super) fn seal_stage(&mut self) {
        self.stage.seal();
    }

    /// A lower bound of the next staged deadline; `None` if nothing is staged.
    #[inline]
    pub(super) fn stage_next(&self) -> Option<u64> {
        self.stage.next()
    }

    /// Reads ahead the entries and generations of the staged timers due next, when those
    /// read before run out (see `Stage::ahead`). Returns a meaningless digest of what it read,
    /// for `black_box`, so that the reads are not optimised away.
    #[inline]
    pub(super) fn warm_stage(&mut self) -> u64 {
        let Entries {
            stage,
            slots,
            generations,
            ..
        } = self;
        let mut digest = 0;
        for index in stage.ahead() {
            if let (Some(Slot::Occupied(e)), Some(&g)) =
                (slots.get(index as usize), generations.get(index as usize))
            {
                digest ^= e.deadline ^ u64::from(g);
            }
        }
        digest
    }

    /// Takes the next staged timer due at or before `now` and returns its index (its entry
    /// still marked as staged: link it somewhere). Stale keys and cancelled timers met on
    /// the way are dropped (the latter freed).
    #[inline]
    pub(super) fn pop_staged(&mut self, now: u64) -> Option<u32> {
        loop {
            let index = self.stage.pop_due(now)?;
            let word = &mut self.unstaged[index as usize / 64];
            let bit = 1 << (index % 64);
            if *word & bit != 0 {
                *word &= !bit;
                continue;
            }
            if !reap(&mut self.dead, &mut self.free, &mut self.dead_len, index) {
                return Some(index);
            }
        }
    }

    /// Whether every live member at positions `from..` of `list` is due at `now`. Reads
    /// their entries, so that the pops that follow find them cached.
    #[inline]
    pub(super) fn all_due(&self, list: ListId, from: usize, now: u64) -> bool {
        let mut all = true;
        for &index in self.lists[list.index()].tail(from) {
            if index == HOLE || (self.dead_len != 0 && self.is_dead(index)) {
                continue;
            }
            all &= self.deadline_of(index) <= now;
        }
        all
    }

    /// Whether `list` has no members (live or dead).
    #[inline]
    pub(super) fn is_list_empty(&self, list: ListId) -> bool {
        self.lists[list.index()].is_empty()
    }

    /// The number of positions on `list`, holes and dead members included.
    #[inline]
    pub(super) fn list_len(&self, list: ListId) -> usize {
        self.lists[list.index()].len()
    }

    /// The index of the member at `pos` on `list`, or [`HOLE`].
    #[cfg(test)]
    pub(super) fn member(&self, list: ListId, pos: usize) -> u32 {
        self.lists[list.index()].get(pos)
    }

    /// Takes a live member off `list` and returns its index; dead ones met on the way are
    /// freed. `None` when the list is empty.
    #[inline]
    pub(super) fn pop(&mut self, list: ListId) -> Option<u32> {
        loop {
            let index = self.lists[list.index()].pop()?;
            if self.dead_len == 0 || !self.is_dead(index) {
                return Some(index);
            }
            drop_dead(&mut self.dead, &mut self.free, &mut self.dead_len, index);
        }
    }

    /// Expires the live, already unlinked entry at `index`: bumps its generation, frees the
    /// index and returns its contents.
    pub(super) fn remove(&mut self, index: u32) -> Removed<T> {
        let generation = bump(&mut self.generations, index);
        // A retired index stays off the free list.
        let next_free = if generation + 1 == RETIRED {
            NIL
        } else {
            std::mem::replace(&mut self.free_head, index)
        };
        let Slot::Occupied(e) =
            std::mem::replace(&mut self.slots[index as usize], Slot::Vacant { next_free })
        else {
            unreachable!("remove is only called on live entries")
        };
        self.len -= 1;
        Removed {
            generation,
            deadline: e.deadline,
            value: e.value,
        }
    }

    /// Drops every dead member from every list and frees its index, filling the gaps from
    /// the back of each list (see `List::compact`). Returns the lists left empty.
    /// O(members); run when dead members outnumber the live.
    #[cold]
    pub(super) fn sweep(&mut self, mut emptied: impl FnMut(ListId)) {
        let Entries {
            slots,
            lists,
            dead,
            free,
            dead_len,
            stage,
            unstaged,
            ..
        } = self;
        stage.retain(|index| {
            let word = &mut unstaged[index as usize / 64];
            let bit = 1 << (index % 64);
            if *word & bit != 0 {
                *word &= !bit;
                return false;
            }
            !reap(dead, free, dead_len, index)
        });
        for (i, list) in lists.iter_mut().enumerate() {
            if list.is_empty() {
                continue;
            }
            let reap = |index| reap(dead, free, dead_len, index);
            if list.purge(reap, |index, pos| set_pos(slots, index, pos)) {
                emptied(ListId::from_index(i));
            }
        }
        debug_assert_eq!(self.dead_len, 0);
    }

    /// The value of a live entry.
    #[inline]
    pub(super) fn value(e: &Entry<T>) -> &T {
        &e.value
    }

    /// The value of a live entry, mutably.
    #[inline]
    pub(super) fn value_mut(e: &mut Entry<T>) -> &mut T {
        &mut e.value
    }

    /// Drops every entry and empties every list, keeping the allocation. Every generation
    /// moves on so old handles stay stale.
    pub(super) fn clear(&mut self) {
        for list in self.lists.iter_mut() {
            list.clear();
        }
        self.free.clear();
        self.free_head = NIL;
        // Low indices are reused first: push from the back.
        for index in (0..self.slots.len() as u32).rev() {
            self.slots[index as usize] = Slot::Vacant { next_free: NIL };
            if self.generations[index as usize] != RETIRED {
                bump(&mut self.generations, index);
            }
            self.free.push(index);
        }
        self.dead.iter_mut().for_each(|w| *w = 0);
        self.unstaged.iter_mut().for_each(|w| *w = 0);
        self.stage.clear();
        self.len = 0;
        self.dead_len = 0;
    }

    /// Heap bytes held: the slab, the generations, the dead bits and the free stack at
    /// capacity, plus every list's buffer and the list table.
    pub(super) fn memory_bytes(&self) -> usize {
        let lists: usize = self.lists.iter().map(List::capacity).sum();
        self.slots.capacity() * std::mem::size_of::<Slot<T>>()
            + self.generations.capacity() * std::mem::size_of::<u32>()
            + (self.dead.capacity() + self.unstaged.capacity()) * std::mem::size_of::<u64>()
            + self.stage.memory_bytes()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + lists * std::mem::size_of::<u32>()
            + LISTS * std::mem::size_of::<List>()
    }

    /// The bytes one timer holding a `T` takes in the slab plus its generation.
    pub(super) const fn entry_size() -> usize {
        std::mem::size_of::<Slot<T>>() + std::mem::size_of::<u32>()
    }
}

/// Moves the generation of `index` on, retiring the index at [`RETIRED`]. Returns the
/// generation it had.
#[inline]
fn bump(generations: &mut [u32], index: u32) -> u32 {
    let g = &mut generations[index as usize];
    let old = *g;
    *g = old + 1; // `old` < RETIRED: live generations are never RETIRED
    old
}

/// If the member `index` is dead, frees it and returns `true` (the list drops it).
#[inline]
fn reap(dead: &mut [u64], free: &mut Vec<u32>, dead_len: &mut usize, index: u32) -> bool {
    if dead[index as usize / 64] & (1 << (index % 64)) == 0 {
        return false;
    }
    drop_dead(dead, free, dead_len, index);
    true
}

/// Frees a dead member met on a list: clears its bit, pushes its index for reuse.
#[inline]
fn drop_dead(dead: &mut [u64], free: &mut Vec<u32>, dead_len: &mut usize, index: u32) {
    dead[index as usize / 64] &= !(1 << (index % 64));
    free.push(index);
    *dead_len -= 1;
}

/// The live entry at `index`.
#[inline]
fn entry_mut<T>(slots: &mut [Slot<T>], index: u32) -> &mut Entry<T> {
    match &mut slots[index as usize] {
        Slot::Occupied(e) => e,
        Slot::Vacant { .. } => unreachable!("live list members have entries"),
    }
}

/// Records that the live entry at `index` now sits at `pos` of its list.
#[inline]
fn set_pos<T>(slots: &mut [Slot<T>], index: u32, pos: u32) {
    entry_mut(slots, index).pos = pos;
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ListId = ListId::READY;

    /// The values on list `l`, sorted, after checking every live member's recorded position.
    /// Dead members are skipped.
    fn list(e: &mut Entries<u32>, l: ListId) -> Vec<u32> {
        let mut out = Vec::new();
        for pos in 0..e.list_len(l) {
            let i = e.member(l, pos);
            if i == HOLE || e.is_dead(i) {
                continue;
            }
            let entry = e.entry_mut(i);
            assert_eq!((entry.list, entry.pos as usize), (l, pos));
            out.push(entry.value);
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn entry_costs_14_bytes_plus_the_value_rounded_up_plus_a_generation() {
        assert_eq!(Entries::<()>::entry_size(), 16 + 4);
        assert_eq!(Entries::<u16>::entry_size(), 16 + 4);
        assert_eq!(Entries::<u32>::entry_size(), 24 + 4);
        assert_eq!(Entries::<u64>::entry_size(), 24 + 4);
        assert_eq!(Entries::<[u64; 2]>::entry_size(), 32 + 4);
    }

    #[test]
    fn unlink_and_link_keep_lists_and_positions_consistent() {
        let mut e = Entries::with_capacity(0);
        let b = ListId::slot(0, 1);
        let (i1, _) = e.insert(1, 1u32, A);
        let (i2, _) = e.insert(2, 2, A);
        let (i3, _) = e.insert(3, 3, A);
        e.insert(4, 4, b);
        assert_eq!(list(&mut e, A), [1, 2, 3]);
        assert_eq!(e.unlink(i1), (A, false));
        assert_eq!(list(&mut e, A), [2, 3]);
        assert_eq!(e.unlink(i3), (A, false));
        assert_eq!(list(&mut e, A), [2]);
        assert_eq!(e.unlink(i2), (A, true));
        assert!(e.is_list_empty(A));
        assert_eq!(list(&mut e, b), [4]);
        e.link(i2, b);
        assert_eq!(list(&mut e, b), [2, 4]);
        assert_eq!(e.pop(b), Some(i2));
        assert_eq!(list(&mut e, b), [4]);
    }

    #[test]
    fn compaction_updates_the_positions_of_moved_entries_and_reaps_dead_ones() {
        let mut e = Entries::with_capacity(0);
        let keys: Vec<_> = (0..100).map(|v| e.insert(1, v, A)).collect();
        // Every 3rd is cancelled: dead, entry taken, left on the list.
        for &(i, g) in keys.iter().skip(1).step_by(3) {
            assert!(e.cancel(i, g).is_some());
        }
        let dead = e.dead_len();
        assert_eq!(dead, 33);
        // Every other from the front is taken off (reset earlier): holes, then compactions
        // moving live members from the back and reaping dead ones without touching them
        // (their entries are gone: a position written there would panic).
        for &(i, g) in keys.iter().step_by(2) {
            if e.get(i, g).is_some() {
                e.unlink(i);
                e.remove(i);
            }
        }
        let left: Vec<u32> = (0..100).filter(|v| v % 2 == 1 && v % 3 != 1).collect();
        assert_eq!(list(&mut e, A), left);
        while let Some(i) = e.pop(A) {
            e.remove(i);
        }
        assert!(e.is_list_empty(A));
        assert_eq!((e.len(), e.dead_len()), (0, 0));
    }

    #[test]
    fn a_cancelled_index_is_reused_only_after_its_list_dropped_it() {
        let mut e = Entries::with_capacity(0);
        let (i, g) = e.insert(1, 1u32, A);
        assert_eq!(e.cancel(i, g), Some(1));
        assert_eq!(e.cancel(i, g), None, "stale at once");
        assert!(e.get(i, g).is_none());
        let (j, _) = e.insert(2, 2, A);
        assert_ne!(j, i, "still on its list: not reused yet");
        assert_eq!(e.pop(A), Some(j));
        e.remove(j);
        assert!(!e.is_list_empty(A), "the dead member is still there");
        assert_eq!(e.pop(A), None, "and is dropped, not returned");
        assert!(e.is_list_empty(A));
        assert_eq!(e.dead_len(), 0);
        let (k, gk) = e.insert(3, 3, A);
        assert!(k == i || k == j);
        assert!(e.get(i, g).is_none() && e.get(k, gk).is_some());
    }

    #[test]
    fn discard_leaves_the_entry_alone_and_sweep_frees_every_dead_member() {
        let mut e = Entries::with_capacity(0);
        let b = ListId::slot(2, 5);
        let keys: Vec<_> = (0..50)
            .map(|v| e.insert(1, v, if v % 2 == 0 { A } else { b }))
            .collect();
        for &(i, g) in keys.iter().filter(|(i, _)| i % 5 != 0) {
            assert!(e.discard(i, g));
            assert!(!e.discard(i, g));
        }
        assert_eq!((e.len(), e.dead_len()), (10, 40));
        let mut emptied = Vec::new();
        e.sweep(|l| emptied.push(l));
        assert!(emptied.is_empty(), "both lists keep live members");
        assert_eq!(e.dead_len(), 0);
        assert_eq!(e.list_len(A) + e.list_len(b), 10, "no holes or dead left");
        assert_eq!(list(&mut e, A), [0, 10, 20, 30, 40]);
        assert_eq!(list(&mut e, b), [5, 15, 25, 35, 45]);
        for &(i, g) in keys.iter().filter(|(i, _)| i % 5 == 0) {
            assert!(e.discard(i, g));
        }
        e.sweep(|l| emptied.push(l));
        emptied.sort_by_key(|l| l.index());
        assert_eq!(emptied, [b, A]);
        assert!(e.is_list_empty(A) && e.is_list_empty(b));
    }

    #[test]
    fn freed_slot_is_reused_with_a_new_generation() {
        let mut e = Entries::with_capacity(0);
        let (i, g) = e.insert(1, 1u32, A);
        e.unlink(i);
        let r = e.remove(i);
        assert_eq!((r.generation, r.deadline, r.value), (g, 1, 1));
        assert!(e.get(i, g).is_none());
        let (i2, g2) = e.insert(2, 2, A);
        assert_eq!(i2, i);
        assert_ne!(g2, g);
        assert!(
            e.get(i, g).is_none(),
            "stale handle must not see the new entry"
        );
        assert!(e.get(i2, g2).is_some());
    }

    #[test]
    fn generation_wrap_retires_the_slot_instead_of_aliasing() {
        let mut e = Entries::with_capacity(0);
        let (i, _) = e.insert(1, 1u32, A);
        e.unlink(i);
        e.remove(i);
        // Pretend this index has been reused 2^32 - 2 times.
        e.generations[i as usize] = RETIRED - 1;
        let (i1, g1) = e.insert(1, 1, A);
        assert_eq!((i1, g1), (i, RETIRED - 1));
        e.unlink(i1);
        e.remove(i1);
        // Its generation is now RETIRED: the index is never handed out again.
        let (i2, g2) = e.insert(2, 2, A);
        assert_ne!(i2, i, "a wrapped slot is never handed out again");
        assert_eq!(g2, 0);
        assert!(e.get(i, 0).is_none());
        assert!(e.get(i, RETIRED - 1).is_none());
        assert!(e.get(i, RETIRED).is_none());
        e.clear();
        assert_eq!(e.generations[i as usize], RETIRED, "clear keeps it retired");
        let (i3, _) = e.insert(3, 3, A);
        let (i4, _) = e.insert(4, 4, A);
        assert!(i3 != i && i4 != i);
    }
}
