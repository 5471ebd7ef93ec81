//! The slab of timer entries (generation-checked slots and a free list) and the lists that
//! file them: one `Vec<u32>` of entry indices per wheel slot, plus the ready list.
//!
//! # Ground rules
//!
//! - An entry lives at a fixed index for its whole life; handles are `(index, generation)`.
//!   Freeing an entry bumps its slot's generation, so an old handle never matches again.
//! - A slot whose generation would wrap back to 0 is retired (never reused) instead: a stale
//!   handle can therefore never alias a later timer, even after 2^32 reuses of one index. The
//!   cost is one leaked slot per 2^32 timers filed in it.
//! - Every occupied entry is on exactly one list (a `Vec` of indices, see `list.rs`) and
//!   records which, and at what position, so it leaves the list in O(1). No `unsafe`, no
//!   pointers.
//! - Why arrays and not intrusive linked lists: draining a slot walks its entries, and a
//!   linked list makes each step wait for the previous cache miss (the next index lives in
//!   the entry just fetched). An array of indices lets the CPU fetch many entries at once,
//!   and a cancel touches its own entry and not its two neighbours (holes it leaves are
//!   filled later in batches, see `list.rs`). On the 1M-timer bench workload (1M timers,
//!   cancel half, 1-tick steps) this halved the time spent advancing.
//! - Vacant and occupied entries share the `Slot` enum; the `ListId` niche encodes the
//!   variant, so an entry costs 18 bytes plus the value, rounded up to 8 (24 for values up
//!   to 6 bytes), with no tag byte.

use super::level::{LISTS, ListId};
use super::list::List;

/// "No entry": an empty free list.
pub(super) const NIL: u32 = u32::MAX;

/// A pending timer.
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// The true deadline. May be later than the slot the entry is filed in (lazy reset).
    pub(super) deadline: u64,
    /// Position in `list`.
    pos: u32,
    generation: u32,
    list: ListId,
    value: T,
}

#[derive(Debug)]
enum Slot<T> {
    Occupied(Entry<T>),
    /// `generation` is the one the next occupant will get.
    Vacant {
        generation: u32,
        next_free: u32,
    },
}

/// An entry taken out of the slab.
pub(super) struct Removed<T> {
    pub(super) generation: u32,
    pub(super) deadline: u64,
    pub(super) value: T,
}

/// The slab plus the lists.
pub(super) struct Entries<T> {
    slots: Vec<Slot<T>>,
    lists: Box<[List]>,
    free: u32,
    len: usize,
}

impl<T> Entries<T> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Entries {
            slots: Vec::with_capacity(capacity),
            lists: (0..LISTS).map(|_| List::default()).collect(),
            free: NIL,
            len: 0,
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub(super) fn reserve(&mut self, additional: usize) {
        let vacant = self.slots.len() - self.len;
        self.slots.reserve(additional.saturating_sub(vacant));
    }

    /// The live entry at `index` if its generation is `generation`.
    #[inline]
    pub(super) fn get(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        match self.slots.get(index as usize) {
            Some(Slot::Occupied(e)) if e.generation == generation => Some(e),
            _ => None,
        }
    }

    /// The live entry at `index` if its generation is `generation`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        match self.slots.get_mut(index as usize) {
            Some(Slot::Occupied(e)) if e.generation == generation => Some(e),
            _ => None,
        }
    }

    /// The entry at `index`, which the caller knows to be occupied (it came off a list).
    #[inline]
    fn entry_mut(&mut self, index: u32) -> &mut Entry<T> {
        match &mut self.slots[index as usize] {
            Slot::Occupied(e) => e,
            Slot::Vacant { .. } => unreachable!("list members are occupied entries"),
        }
    }

    /// The deadline of the occupied entry at `index`.
    #[inline]
    pub(super) fn deadline_of(&self, index: u32) -> u64 {
        match &self.slots[index as usize] {
            Slot::Occupied(e) => e.deadline,
            Slot::Vacant { .. } => unreachable!("list members are occupied entries"),
        }
    }

    /// Stores a new entry and files it on `list`. Returns `(index, generation)`.
    ///
    /// # Panics
    /// If `u32::MAX` entries are already stored (indices are `u32`, `NIL` excluded).
    pub(super) fn insert(&mut self, deadline: u64, value: T, list: ListId) -> (u32, u32) {
        let pos = self.lists[list.index()].len() as u32;
        let (index, generation) = if self.free != NIL {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            let Slot::Vacant {
                generation,
                next_free,
            } = *slot
            else {
                unreachable!("the free list holds vacant slots only")
            };
            self.free = next_free;
            *slot = Slot::Occupied(Entry {
                deadline,
                pos,
                generation,
                list,
                value,
            });
            (index, generation)
        } else {
            let index = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("a Wheel holds at most u32::MAX - 1 timers");
            self.slots.push(Slot::Occupied(Entry {
                deadline,
                pos,
                generation: 0,
                list,
                value,
            }));
            (index, 0)
        };
        let filed = self.lists[list.index()].push(index);
        debug_assert_eq!(filed, pos);
        self.len += 1;
        (index, generation)
    }

    /// Files the occupied, currently unlisted entry at `index` on `list`.
    #[inline]
    pub(super) fn link(&mut self, index: u32, list: ListId) {
        let pos = self.lists[list.index()].push(index);
        let e = self.entry_mut(index);
        e.pos = pos;
        e.list = list;
    }

    /// Takes the occupied entry at `index` off its list. Returns the list and whether it is
    /// now empty. The entry keeps a stale `list` until it is linked again or freed.
    #[inline]
    pub(super) fn unlink(&mut self, index: u32) -> (ListId, bool) {
        let e = self.entry_mut(index);
        let (list, pos) = (e.list, e.pos);
        let slots = &mut self.slots;
        let empty = self.lists[list.index()].remove(pos, |i, p| set_pos(slots, i, p));
        (list, empty)
    }

    /// Takes positions `base..` off `list` and appends their live members to `out` (see
    /// [`List::take_tail`]). Their entries keep a stale `list` until linked again.
    #[inline]
    pub(super) fn take_tail(&mut self, list: ListId, base: usize, out: &mut Vec<u32>) {
        self.lists[list.index()].take_tail(base, out);
    }

    /// Whether `list` has no entries.
    #[inline]
    pub(super) fn is_list_empty(&self, list: ListId) -> bool {
        self.lists[list.index()].is_empty()
    }

    /// The number of positions on `list`, holes included.
    #[inline]
    pub(super) fn list_len(&self, list: ListId) -> usize {
        self.lists[list.index()].len()
    }

    /// The index of the entry at `pos` on `list`, or [`HOLE`](super::list::HOLE).
    #[cfg(test)]
    pub(super) fn member(&self, list: ListId, pos: usize) -> u32 {
        self.lists[list.index()].get(pos)
    }

    /// Takes a live entry off `list` and returns its index.
    #[inline]
    pub(super) fn pop(&mut self, list: ListId) -> Option<u32> {
        self.lists[list.index()].pop()
    }

    /// Frees the occupied, already unlinked entry at `index` and returns its contents.
    pub(super) fn remove(&mut self, index: u32) -> Removed<T> {
        let slot = &mut self.slots[index as usize];
        let generation = match slot {
            Slot::Occupied(e) => e.generation,
            Slot::Vacant { .. } => unreachable!("remove is only called on occupied entries"),
        };
        let next_generation = generation.wrapping_add(1);
        let old = std::mem::replace(
            slot,
            Slot::Vacant {
                generation: next_generation,
                next_free: self.free,
            },
        );
        // A wrapped generation would let a handle from 2^32 timers ago match again: retire
        // the slot instead of putting it on the free list.
        if next_generation != 0 {
            self.free = index;
        }
        self.len -= 1;
        let Slot::Occupied(e) = old else {
            unreachable!("checked above")
        };
        Removed {
            generation,
            deadline: e.deadline,
            value: e.value,
        }
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

    /// Drops every entry and empties every list, keeping the allocation. Generations keep
    /// counting so old handles stay stale.
    pub(super) fn clear(&mut self) {
        for list in self.lists.iter_mut() {
            list.clear();
        }
        self.free = NIL;
        // Rebuild the free list from the back so that low indices are reused first.
        for (index, slot) in self.slots.iter_mut().enumerate().rev() {
            let generation = match slot {
                Slot::Occupied(e) => e.generation.wrapping_add(1),
                Slot::Vacant { generation, .. } => *generation,
            };
            *slot = Slot::Vacant {
                generation,
                next_free: self.free,
            };
            // A vacant slot at generation 0 has wrapped (fresh slots are born occupied at
            // generation 0 and leave it at 1): it stays retired.
            if generation != 0 {
                self.free = index as u32;
            }
        }
        self.len = 0;
    }

    /// Heap bytes held: the slab at capacity, plus every list's buffer and the list table.
    pub(super) fn memory_bytes(&self) -> usize {
        let lists: usize = self.lists.iter().map(List::capacity).sum();
        self.slots.capacity() * Self::entry_size()
            + (lists * std::mem::size_of::<u32>())
            + LISTS * std::mem::size_of::<List>()
    }

    /// The size of one slab entry holding a `T`, in bytes.
    pub(super) const fn entry_size() -> usize {
        std::mem::size_of::<Slot<T>>()
    }
}

/// Records that the entry at `index` now sits at `pos` of its list.
#[inline]
fn set_pos<T>(slots: &mut [Slot<T>], index: u32, pos: u32) {
    match &mut slots[index as usize] {
        Slot::Occupied(e) => e.pos = pos,
        Slot::Vacant { .. } => unreachable!("list members are occupied entries"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ListId = ListId::READY;

    /// The values on list `l`, sorted, after checking every member's recorded position.
    fn list(e: &mut Entries<u32>, l: ListId) -> Vec<u32> {
        let mut out = Vec::new();
        for pos in 0..e.list_len(l) {
            let i = e.member(l, pos);
            if i == super::super::list::HOLE {
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
    fn entry_costs_18_bytes_plus_the_value_rounded_up_and_no_tag() {
        assert_eq!(Entries::<()>::entry_size(), 24);
        assert_eq!(Entries::<u32>::entry_size(), 24);
        assert_eq!(Entries::<u64>::entry_size(), 32);
        assert_eq!(Entries::<[u64; 2]>::entry_size(), 40);
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
    fn compaction_updates_the_positions_of_moved_entries() {
        let mut e = Entries::with_capacity(0);
        let keys: Vec<_> = (0..100).map(|v| e.insert(1, v, A).0).collect();
        // Cancel every other one from the front: holes, then compactions moving the back.
        for &i in keys.iter().step_by(2) {
            e.unlink(i);
            e.remove(i);
        }
        let odd: Vec<u32> = (0..100).filter(|v| v % 2 == 1).collect();
        assert_eq!(list(&mut e, A), odd);
        while let Some(i) = e.pop(A) {
            e.remove(i);
        }
        assert!(e.is_list_empty(A));
        assert_eq!(e.len(), 0);
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
        // Pretend this slot has been reused 2^32 - 1 times.
        let Slot::Vacant { generation, .. } = &mut e.slots[i as usize] else {
            panic!("vacant")
        };
        *generation = u32::MAX;
        let (i1, g1) = e.insert(1, 1, A);
        assert_eq!((i1, g1), (i, u32::MAX));
        e.unlink(i1);
        e.remove(i1);
        // The next generation would be 0 again, the same as the very first handle: retired.
        let (i2, g2) = e.insert(2, 2, A);
        assert_ne!(i2, i, "a wrapped slot is never handed out again");
        assert_eq!(g2, 0);
        assert!(e.get(i, 0).is_none());
        assert!(e.get(i, u32::MAX).is_none());
    }
}
