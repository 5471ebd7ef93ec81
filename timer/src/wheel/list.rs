//! One slot's list of entry indices: an array with dead members, compacted in batches.
//!
//! # Ground rules
//!
//! - A member is *dead* in one of two ways. A **hole** (`HOLE`) is left where an entry was
//!   unlinked eagerly (a reset to an earlier deadline moves it to another list). A **tombstone**
//!   is the index of a cancelled entry, left in place: cancelling marks the index in
//!   [`Tombs`] (one bit per slab index) and touches neither the list's buffer nor any other
//!   entry. In a server, cancels come in random order, and writing a hole at a random
//!   position of a large list was a second cache miss per cancel (about 75 ns per cancel at
//!   1M timers, against 17 ns in insertion order: issue 13); the bitset is 128 KiB per
//!   million timers and stays in the cache.
//! - A tombstoned index is not reused until its list drops the member (a drain, a
//!   compaction or a clear), so a list member never names a later timer by mistake; dropping
//!   it clears its bit and hands the index to [`Tombs::reuse`].
//! - Each entry records its position in its list (used by eager unlinks). Dead members are
//!   filled in batches, by moving live members from the back, when they exceed half of the
//!   list: at most one moved member per dead one, in a tight loop where the misses overlap.
//!   The scan costs O(len) per compaction, which is O(1) per dead member since half the list
//!   is dead. Why half and not a quarter: dead members a drain meets are skipped for free
//!   (a bit test), while every move is a write to a random entry.
//! - A list never consists of dead members only: when its last live member goes it is
//!   cleared, so "empty" is simply "no members", and the wheel's occupancy bit can be
//!   cleared at once.
//! - So memory stays bounded: a list holds at most twice its live members, plus `Vec`
//!   growth slack, and an emptied list with a large buffer gives the buffer back.

/// A position left by an entry unlinked eagerly.
pub(super) const HOLE: u32 = u32::MAX;

/// An emptied list whose buffer holds more members than this gives the buffer back.
const SHRINK_ABOVE: usize = 1024;

/// The tombstones: slab indices cancelled while still members of a list, one bit each, and
/// the indices whose tombstone has been dropped from its list and may be reused.
#[derive(Debug, Default)]
pub(super) struct Tombs {
    bits: Vec<u64>,
    /// Indices free for reuse: their slab slot is vacant and no list names them.
    pub(super) reuse: Vec<u32>,
}

impl Tombs {
    /// Makes room for indices below `slots`.
    #[inline]
    pub(super) fn cover(&mut self, slots: usize) {
        let words = slots.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `index` as a tombstone (its entry was cancelled; its list still names it).
    #[inline]
    pub(super) fn bury(&mut self, index: u32) {
        self.bits[index as usize / 64] |= 1 << (index % 64);
    }

    /// Whether `index` (a member, or `HOLE`) is dead: a hole or a tombstone.
    #[inline]
    fn is_dead(&self, index: u32) -> bool {
        // Indices past the bitset are never list members, but reading them as dead keeps
        // this free of a panic branch; `|` rather than `||` keeps it free of any branch.
        let word = self.bits.get(index as usize / 64).copied().unwrap_or(!0);
        (index == HOLE) | (word >> (index % 64) & 1 != 0)
    }

    /// Drops a dead member: a tombstone's index becomes reusable. Holes need nothing.
    #[inline]
    fn drop_dead(&mut self, index: u32) {
        if index != HOLE {
            self.bits[index as usize / 64] &= !(1 << (index % 64));
            self.reuse.push(index);
        }
    }

    /// Forgets every tombstone and reusable index (the slab is being cleared).
    pub(super) fn clear(&mut self) {
        self.bits.fill(0);
        self.reuse.clear();
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.bits.capacity() * 8 + self.reuse.capacity() * 4
    }
}

/// The entry indices filed in one slot (or the ready list).
#[derive(Debug, Default)]
pub(super) struct List {
    members: Vec<u32>,
    /// Dead members: holes and tombstones.
    dead: usize,
}

impl List {
    /// Appends `index`; returns its position.
    #[inline]
    pub(super) fn push(&mut self, index: u32) -> u32 {
        let pos = self.members.len() as u32;
        self.members.push(index);
        pos
    }

    /// Whether no live member is left.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The number of positions, dead members included.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// The member at `pos`, or [`HOLE`].
    #[cfg(test)]
    pub(super) fn get(&self, pos: usize) -> u32 {
        self.members[pos]
    }

    /// The buffer's capacity, in members.
    pub(super) fn capacity(&self) -> usize {
        self.members.capacity()
    }

    /// Removes the member at `pos` eagerly, leaving a hole. Compaction may move other
    /// members: `moved(index, new_pos)` is called for each. Returns whether the list is now
    /// empty.
    #[inline]
    pub(super) fn remove(
        &mut self,
        pos: u32,
        tombs: &mut Tombs,
        moved: impl FnMut(u32, u32),
    ) -> bool {
        let pos = pos as usize;
        debug_assert!(!tombs.is_dead(self.members[pos]));
        if pos + 1 == self.members.len() {
            self.members.pop();
        } else {
            self.members[pos] = HOLE;
            self.dead += 1;
        }
        self.after_death(tombs, moved)
    }

    /// Counts one more tombstone among the members (the caller buried it in `tombs`); the
    /// buffer is not touched. Returns whether the list is now empty.
    #[inline]
    pub(super) fn bury(&mut self, tombs: &mut Tombs, moved: impl FnMut(u32, u32)) -> bool {
        self.dead += 1;
        self.after_death(tombs, moved)
    }

    /// Clears a list left with dead members only, or compacts one that is more than half
    /// dead. Returns whether the list is now empty.
    #[inline]
    fn after_death(&mut self, tombs: &mut Tombs, moved: impl FnMut(u32, u32)) -> bool {
        if self.clear_if_dead(tombs) {
            return true;
        }
        if self.dead * 2 > self.members.len() {
            self.compact(tombs, moved);
        }
        false
    }

    /// Takes positions `base..` off the list and appends their live members to `out`, in
    /// order; the dead ones among them are dropped. Never moves a member below `base`.
    ///
    /// The dead are squeezed out without a branch per position (a store, then the write
    /// cursor moves on only for a live member): after a random half of a slot's timers were
    /// cancelled, a branch on "dead or not" mispredicts about every other position.
    #[inline]
    pub(super) fn take_tail(&mut self, base: usize, out: &mut Vec<u32>, tombs: &mut Tombs) {
        if self.dead == 0 {
            // No dead member anywhere (the usual case for a list filled by re-files): no bit
            // to look up.
            out.extend_from_slice(&self.members[base..]);
            self.members.truncate(base);
            if self.members.is_empty() {
                self.forget();
            }
            return;
        }
        let start = out.len();
        out.extend_from_slice(&self.members[base..]);
        let (mut live, mut holes) = (start, 0);
        for j in start..out.len() {
            let index = out[j];
            out[live] = index;
            live += usize::from(!tombs.is_dead(index));
            holes += usize::from(index == HOLE);
        }
        // The tombstones among them become reusable (holes need nothing). Lists filed by
        // re-files, not inserts, seldom hold any: skip the second pass then.
        if out.len() - live > holes {
            for &index in &self.members[base..] {
                if index != HOLE && tombs.is_dead(index) {
                    tombs.drop_dead(index);
                }
            }
        }
        self.dead -= out.len() - live;
        out.truncate(live);
        self.members.truncate(base);
        self.clear_if_dead(tombs);
    }

    /// Takes a live member off the back. Never compacts (the list is being drained).
    #[inline]
    pub(super) fn pop(&mut self, tombs: &mut Tombs) -> Option<u32> {
        if self.dead == 0 {
            let index = self.members.pop();
            if self.members.is_empty() {
                self.forget();
            }
            return index;
        }
        loop {
            let index = self.members.pop()?;
            if !tombs.is_dead(index) {
                self.clear_if_dead(tombs);
                return Some(index);
            }
            tombs.drop_dead(index);
            self.dead -= 1;
        }
    }

    /// Drops every member; tombstones among them become reusable.
    pub(super) fn clear(&mut self, tombs: &mut Tombs) {
        if self.dead > 0 {
            for &index in &self.members {
                if tombs.is_dead(index) {
                    tombs.drop_dead(index);
                }
            }
        }
        self.forget();
    }

    /// Drops every member without looking at them (the whole slab is being cleared).
    pub(super) fn forget(&mut self) {
        self.members.clear();
        self.dead = 0;
        if self.members.capacity() > SHRINK_ABOVE {
            self.members = Vec::new();
        }
    }

    /// Clears a list left with dead members only; returns whether the list is empty.
    #[inline]
    fn clear_if_dead(&mut self, tombs: &mut Tombs) -> bool {
        if self.dead == self.members.len() {
            self.clear(tombs);
            return true;
        }
        false
    }

    /// Fills every dead position with a live member taken from the back.
    #[cold]
    fn compact(&mut self, tombs: &mut Tombs, mut moved: impl FnMut(u32, u32)) {
        let mut front = 0;
        while self.dead > 0 {
            // Dead members at the back are simply dropped.
            match self.members.last() {
                Some(&index) if tombs.is_dead(index) => {
                    self.members.pop();
                    tombs.drop_dead(index);
                    self.dead -= 1;
                    continue;
                }
                None => break,
                Some(_) => {}
            }
            while !tombs.is_dead(self.members[front]) {
                front += 1;
            }
            // `front` is dead and before the live last member.
            tombs.drop_dead(self.members[front]);
            let index = self.members.pop().unwrap_or(HOLE);
            self.members[front] = index;
            self.dead -= 1;
            moved(index, front as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_leaves_holes_then_compacts_moving_members_from_the_back() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        for i in 0..8 {
            assert_eq!(list.push(i), i);
        }
        let mut moves = Vec::new();
        for pos in 1..5 {
            assert!(!list.remove(pos, &mut tombs, |i, p| moves.push((i, p))));
        }
        assert_eq!(list.dead, 4);
        assert!(moves.is_empty(), "4 holes in 8 is not yet more than half");
        assert!(!list.remove(5, &mut tombs, |i, p| moves.push((i, p))));
        // 5 holes > 8 / 2: the live 7 and 6 fill positions 1 and 2, trailing holes go.
        assert_eq!(list.dead, 0);
        assert_eq!(list.members, [0, 7, 6]);
        assert_eq!(moves, [(7, 1), (6, 2)]);
    }

    #[test]
    fn holes_never_exceed_half_the_list() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        let mut pos_of: Vec<u32> = (0..1_000).map(|i| list.push(i)).collect();
        let mut live: Vec<u32> = (0..1_000).collect();
        let mut state = 0x9e37_79b9_u64;
        while let Some(n) = std::num::NonZeroUsize::new(live.len()) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let victim = live.swap_remove((state >> 33) as usize % n.get());
            list.remove(pos_of[victim as usize], &mut tombs, |i, p| {
                pos_of[i as usize] = p
            });
            assert!(
                list.dead * 2 <= list.len(),
                "{} holes in {}",
                list.dead,
                list.len()
            );
            assert_eq!(list.len() - list.dead, live.len());
            for &i in &live {
                assert_eq!(
                    list.get(pos_of[i as usize] as usize),
                    i,
                    "moved members are reported"
                );
            }
        }
        assert!(list.is_empty());
    }

    #[test]
    fn removing_the_last_member_pops_without_a_hole() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        list.push(10);
        list.push(11);
        assert!(!list.remove(1, &mut tombs, |_, _| panic!("nothing moves")));
        assert_eq!((list.members.as_slice(), list.dead), (&[10][..], 0));
        assert!(list.remove(0, &mut tombs, |_, _| panic!("nothing moves")));
        assert!(list.is_empty());
    }

    #[test]
    fn a_list_left_with_holes_only_is_cleared() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        for i in 0..8 {
            list.push(i);
        }
        list.remove(0, &mut tombs, |_, _| {
            panic!("1 hole in 8 is no reason to compact")
        });
        for expect in (1..8).rev() {
            assert_eq!(list.pop(&mut tombs), Some(expect));
        }
        assert!(list.is_empty(), "only the hole at 0 was left");
        assert_eq!(list.dead, 0);
        assert_eq!(list.pop(&mut tombs), None);
    }

    #[test]
    fn pop_skips_holes_and_take_tail_drops_them() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        for i in 0..10 {
            list.push(i);
        }
        list.remove(8, &mut tombs, |_, _| {});
        assert_eq!(list.pop(&mut tombs), Some(9));
        assert_eq!(list.pop(&mut tombs), Some(7), "the hole at 8 is skipped");
        list.remove(5, &mut tombs, |_, _| {});
        list.remove(2, &mut tombs, |_, _| {});
        let mut out = vec![42];
        list.take_tail(4, &mut out, &mut tombs);
        assert_eq!(out, [42, 4, 6], "appended in order, the hole at 5 dropped");
        assert_eq!(
            (list.members.as_slice(), list.dead),
            (&[0, 1, HOLE, 3][..], 1)
        );
        out.clear();
        list.remove(0, &mut tombs, |_, _| {});
        list.take_tail(1, &mut out, &mut tombs);
        assert_eq!(out, [1, 3]);
        assert!(list.is_empty(), "left with holes only: cleared");
        assert_eq!(list.dead, 0);
    }

    #[test]
    fn a_list_header_is_32_bytes() {
        // 705 of them make the wheel's fixed table: 22 KiB, as documented.
        assert_eq!(std::mem::size_of::<List>(), 32);
    }

    #[test]
    fn tombstones_are_skipped_dropped_and_their_indices_reused_only_then() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        tombs.cover(16);
        for i in 0..10 {
            list.push(i);
        }
        // Cancel 3 and 7: the buffer is untouched.
        for i in [3, 7] {
            tombs.bury(i);
            assert!(!list.bury(&mut tombs, |_, _| panic!("2 dead in 10: no compaction")));
        }
        assert_eq!(list.members, (0..10).collect::<Vec<u32>>());
        assert!(tombs.reuse.is_empty(), "still named by the list");
        assert_eq!(list.pop(&mut tombs), Some(9));
        assert_eq!(list.pop(&mut tombs), Some(8));
        assert_eq!(
            list.pop(&mut tombs),
            Some(6),
            "the tombstone 7 is skipped ..."
        );
        assert_eq!(tombs.reuse, [7], "... and its index freed");
        let mut out = Vec::new();
        list.take_tail(1, &mut out, &mut tombs);
        assert_eq!(out, [1, 2, 4, 5]);
        assert_eq!(tombs.reuse, [7, 3]);
        assert!(
            !tombs.is_dead(3) && !tombs.is_dead(7),
            "bits cleared for reuse"
        );
        assert_eq!(list.dead, 0);
    }

    #[test]
    fn a_mostly_buried_list_compacts_and_an_all_buried_one_clears() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        tombs.cover(8);
        for i in 0..8 {
            list.push(i);
        }
        let mut moves = Vec::new();
        for i in [0, 1, 2, 3, 4] {
            tombs.bury(i);
            list.bury(&mut tombs, |i, p| moves.push((i, p)));
        }
        // 5 dead > 8 / 2: the live 7, 6, 5 fill positions 0, 1, 2.
        assert_eq!(list.members, [7, 6, 5]);
        assert_eq!(moves, [(7, 0), (6, 1), (5, 2)]);
        let mut freed = tombs.reuse.clone();
        freed.sort_unstable();
        assert_eq!(freed, [0, 1, 2, 3, 4]);
        for i in [5, 6, 7] {
            tombs.bury(i);
            let empty = list.bury(&mut tombs, |_, _| {});
            assert_eq!(empty, i == 7);
        }
        assert!(list.is_empty());
        assert_eq!(tombs.reuse.len(), 8);
    }

    #[test]
    fn an_emptied_list_gives_back_a_large_buffer() {
        let mut list = List::default();
        let mut tombs = Tombs::default();
        tombs.cover(10_000);
        for i in 0..5_000 {
            list.push(i);
        }
        while list.pop(&mut tombs).is_some() {}
        assert_eq!(list.capacity(), 0);
    }
}
