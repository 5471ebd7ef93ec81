//! One slot's list of entry indices: an array with holes, compacted in batches.
//!
//! # Ground rules
//!
//! - Each entry records its position in its list, so leaving the list is O(1). Only a reset
//!   to an earlier deadline (and a due timer moved into the future) leaves a list that way: a
//!   cancel leaves its index on the list, flagged dead in the slab (see `entries.rs`), and
//!   whoever meets it later drops it. The list itself only asks "is this member dead?"
//!   through the closures it is given.
//! - Leaving punches a hole (`HOLE`) instead of moving another member into the gap: moving
//!   one would mean writing that member's new position into its entry, a cache miss.
//!   Holes are filled in batches instead, by moving members from the back, when they exceed
//!   half of the list (dead members found on the way are dropped too): at most one moved
//!   member per hole, in a tight loop where the misses overlap. The scan costs O(len) per
//!   compaction, which is O(1) per hole since half the list are holes. Why half and not a
//!   quarter: holes a drain meets are skipped for free, while every move is a write to a
//!   random entry. On the 1M-timer mixed workload (then with eager cancels of a random half)
//!   compaction took ~7% of the run's samples at a quarter and ~1.5% at half (perf, same
//!   process, same inputs).
//! - A list never consists of holes only: when its last live or dead member leaves it is
//!   cleared, so "empty" is simply "no members". A list of dead members only is not empty:
//!   the wheel visits its slot and finds nothing due, as after a lazy reset.
//! - So memory stays bounded: a list holds at most twice its live and dead members, plus
//!   `Vec` growth slack; the wheel sweeps every list when the dead outnumber the live; and an
//!   emptied list with a large buffer gives the buffer back.

/// A position left by an entry that has gone.
pub(super) const HOLE: u32 = u32::MAX;

/// An emptied list whose buffer holds more members than this gives the buffer back.
const SHRINK_ABOVE: usize = 1024;

/// The entry indices filed in one slot (or the ready list).
#[derive(Debug, Default)]
pub(super) struct List {
    members: Vec<u32>,
    holes: usize,
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

    /// The number of positions, holes included.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// The members at positions `from..`, holes included.
    #[inline]
    pub(super) fn tail(&self, from: usize) -> &[u32] {
        &self.members[from..]
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

    /// Removes the member at `pos`, leaving a hole. Compaction may run: it drops every
    /// member for which `reap(index)` says it is dead (the caller frees it) and moves live
    /// members; `moved(index, new_pos)` is called for each move. Returns whether the list is
    /// now empty.
    #[inline]
    pub(super) fn remove(
        &mut self,
        pos: u32,
        reap: impl FnMut(u32) -> bool,
        moved: impl FnMut(u32, u32),
    ) -> bool {
        let pos = pos as usize;
        debug_assert!(self.members[pos] != HOLE);
        if pos + 1 == self.members.len() {
            self.members.pop();
        } else {
            self.members[pos] = HOLE;
            self.holes += 1;
        }
        if self.clear_if_hollow() {
            return true;
        }
        if self.holes * 2 > self.members.len() {
            return self.purge(reap, moved);
        }
        false
    }

    /// Turns every member for which `reap(index)` is true (a dead one, which `reap` frees)
    /// into a hole, then fills every hole with a live member taken from the back;
    /// `moved(index, new_pos)` is called for each move. Returns whether the list is now
    /// empty. O(len).
    #[cold]
    pub(super) fn purge(
        &mut self,
        mut reap: impl FnMut(u32) -> bool,
        moved: impl FnMut(u32, u32),
    ) -> bool {
        for member in self.members.iter_mut() {
            if *member != HOLE && reap(*member) {
                *member = HOLE;
                self.holes += 1;
            }
        }
        if self.clear_if_hollow() {
            return true;
        }
        self.compact(moved);
        false
    }

    /// Takes positions `base..` off the list and appends their live members to `out`, in
    /// order; the holes among them are dropped. Never moves a member below `base`.
    ///
    /// The holes are squeezed out without a branch per position (a store, then the write
    /// cursor moves on only for a live member): after a random half of a slot's timers were
    /// cancelled, a branch on "hole or not" mispredicts about every other position.
    #[inline]
    pub(super) fn take_tail(&mut self, base: usize, out: &mut Vec<u32>) {
        let start = out.len();
        out.extend_from_slice(&self.members[base..]);
        let mut live = start;
        for j in start..out.len() {
            let index = out[j];
            out[live] = index;
            live += usize::from(index != HOLE);
        }
        self.holes -= out.len() - live;
        out.truncate(live);
        self.members.truncate(base);
        self.clear_if_hollow();
    }

    /// Takes a member off the back, skipping holes. Never compacts (the list is being
    /// drained).
    #[inline]
    pub(super) fn pop(&mut self) -> Option<u32> {
        loop {
            let index = self.members.pop()?;
            if index != HOLE {
                self.clear_if_hollow();
                return Some(index);
            }
            self.holes -= 1;
        }
    }

    /// Drops every member.
    pub(super) fn clear(&mut self) {
        self.members.clear();
        self.holes = 0;
        self.give_back();
    }

    /// Clears a list left with holes only; returns whether the list is empty.
    #[inline]
    fn clear_if_hollow(&mut self) -> bool {
        if self.holes == self.members.len() {
            self.clear();
            return true;
        }
        false
    }

    /// Fills every hole with a live member taken from the back.
    #[cold]
    fn compact(&mut self, mut moved: impl FnMut(u32, u32)) {
        let mut front = 0;
        while self.holes > 0 {
            // Trailing holes are simply dropped.
            match self.members.last() {
                Some(&HOLE) => {
                    self.members.pop();
                    self.holes -= 1;
                    continue;
                }
                None => break,
                Some(_) => {}
            }
            while self.members[front] != HOLE {
                front += 1;
            }
            // `front` is a hole before the live last member.
            let index = self.members.pop().unwrap_or(HOLE);
            self.members[front] = index;
            self.holes -= 1;
            moved(index, front as u32);
        }
    }

    fn give_back(&mut self) {
        if self.members.capacity() > SHRINK_ABOVE {
            self.members = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_dead(_: u32) -> bool {
        false
    }

    #[test]
    fn remove_leaves_holes_then_compacts_moving_members_from_the_back() {
        let mut list = List::default();
        for i in 0..8 {
            assert_eq!(list.push(i), i);
        }
        let mut moves = Vec::new();
        for pos in 1..5 {
            assert!(!list.remove(pos, no_dead, |i, p| moves.push((i, p))));
        }
        assert_eq!(list.holes, 4);
        assert!(moves.is_empty(), "4 holes in 8 is not yet more than half");
        assert!(!list.remove(5, no_dead, |i, p| moves.push((i, p))));
        // 5 holes > 8 / 2: the live 7 and 6 fill positions 1 and 2, trailing holes go.
        assert_eq!(list.holes, 0);
        assert_eq!(list.members, [0, 7, 6]);
        assert_eq!(moves, [(7, 1), (6, 2)]);
    }

    #[test]
    fn holes_never_exceed_half_the_list() {
        let mut list = List::default();
        let mut pos_of: Vec<u32> = (0..1_000).map(|i| list.push(i)).collect();
        let mut live: Vec<u32> = (0..1_000).collect();
        let mut state = 0x9e37_79b9_u64;
        while let Some(n) = std::num::NonZeroUsize::new(live.len()) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let victim = live.swap_remove((state >> 33) as usize % n.get());
            list.remove(pos_of[victim as usize], no_dead, |i, p| {
                pos_of[i as usize] = p
            });
            assert!(
                list.holes * 2 <= list.len(),
                "{} holes in {}",
                list.holes,
                list.len()
            );
            assert_eq!(list.len() - list.holes, live.len());
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
        list.push(10);
        list.push(11);
        assert!(!list.remove(1, no_dead, |_, _| panic!("nothing moves")));
        assert_eq!((list.members.as_slice(), list.holes), (&[10][..], 0));
        assert!(list.remove(0, no_dead, |_, _| panic!("nothing moves")));
        assert!(list.is_empty());
    }

    #[test]
    fn a_list_left_with_holes_only_is_cleared() {
        let mut list = List::default();
        for i in 0..8 {
            list.push(i);
        }
        list.remove(0, no_dead, |_, _| {
            panic!("1 hole in 8 is no reason to compact")
        });
        for expect in (1..8).rev() {
            assert_eq!(list.pop(), Some(expect));
        }
        assert!(list.is_empty(), "only the hole at 0 was left");
        assert_eq!(list.holes, 0);
        assert_eq!(list.pop(), None);
    }

    #[test]
    fn pop_skips_holes_and_take_tail_drops_them() {
        let mut list = List::default();
        for i in 0..10 {
            list.push(i);
        }
        list.remove(8, no_dead, |_, _| {});
        assert_eq!(list.pop(), Some(9));
        assert_eq!(list.pop(), Some(7), "the hole at 8 is skipped");
        list.remove(5, no_dead, |_, _| {});
        list.remove(2, no_dead, |_, _| {});
        let mut out = vec![42];
        list.take_tail(4, &mut out);
        assert_eq!(out, [42, 4, 6], "appended in order, the hole at 5 dropped");
        assert_eq!(
            (list.members.as_slice(), list.holes),
            (&[0, 1, HOLE, 3][..], 1)
        );
        out.clear();
        list.remove(0, no_dead, |_, _| {});
        list.take_tail(1, &mut out);
        assert_eq!(out, [1, 3]);
        assert!(list.is_empty(), "left with holes only: cleared");
        assert_eq!(list.holes, 0);
    }

    #[test]
    fn purge_drops_the_dead_members_and_fills_their_gaps_from_the_back() {
        let mut list = List::default();
        for i in 0..10 {
            list.push(i);
        }
        list.remove(3, no_dead, |_, _| {
            panic!("1 hole in 10 is no reason to compact")
        });
        let mut reaped = Vec::new();
        let mut moves = Vec::new();
        let empty = list.purge(
            |i| {
                let dead = i % 2 == 0;
                if dead {
                    reaped.push(i);
                }
                dead
            },
            |i, p| moves.push((i, p)),
        );
        assert!(!empty);
        assert_eq!(reaped, [0, 2, 4, 6, 8]);
        assert_eq!(
            (list.members.as_slice(), list.holes),
            (&[9, 1, 7, 5][..], 0)
        );
        assert_eq!(moves, [(9, 0), (7, 2), (5, 3)]);
        assert!(list.purge(|_| true, |_, _| panic!("nothing is left to move")));
        assert!(list.is_empty());
    }

    #[test]
    fn a_list_header_is_32_bytes() {
        // 705 of them make the wheel's fixed table: 22 KiB, as documented.
        assert_eq!(std::mem::size_of::<List>(), 32);
    }

    #[test]
    fn an_emptied_list_gives_back_a_large_buffer() {
        let mut list = List::default();
        for i in 0..5_000 {
            list.push(i);
        }
        while list.pop().is_some() {}
        assert_eq!(list.capacity(), 0);
    }
}
