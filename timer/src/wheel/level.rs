//! Level and slot arithmetic, and the occupancy bitmaps that find the next due slot.
//!
//! # Ground rules
//!
//! - A level has 64 slots; a slot of level `L` is `64^L` ticks wide, so level `L` spans
//!   `64^(L+1)` ticks. Eleven levels cover every `u64` deadline (the top level uses only 16
//!   slots), so there is no overflow list.
//! - A deadline `d > now` is filed at the level of the highest bit in which `d` differs from
//!   `now` (bits 0-5 give level 0, bits 6-11 level 1, ...), in the slot given by `d`'s six bits
//!   of that level. `d` and `now` therefore share every bit above that level: the slot lies in
//!   the same block of the level above as `now`, strictly after `now`'s own slot.
//! - Because of that, an occupied slot is always *ahead* of `now` within its level and the
//!   lowest occupied level holds the earliest slot: finding the next due slot is two
//!   `trailing_zeros` (one on the bitmap of levels, one on the level's slot bitmap), never a
//!   scan. The wheel keeps the rule true by never moving `now` past an occupied slot's start
//!   without draining that slot first.
//!
//! This is the layout of tokio's `runtime/time/wheel` and of Linux's 2016 `timer.c` rework,
//! after Varghese & Lauck, "Hashed and Hierarchical Timing Wheels" (SOSP 1987).

use std::num::NonZeroU16;

/// Bits of the deadline consumed by one level.
const BITS: u32 = 6;
/// Slots per level.
pub(super) const SLOTS: usize = 1 << BITS;
/// Levels needed to cover all of `u64` (`ceil(64 / 6)`).
pub(super) const LEVELS: usize = 11;
/// Slot lists plus the one "ready" list of timers already due.
pub(super) const LISTS: usize = LEVELS * SLOTS + 1;

/// The level at which a deadline strictly after `now` is filed.
#[inline]
pub(super) fn level_for(now: u64, deadline: u64) -> usize {
    debug_assert!(deadline > now, "only future deadlines are filed in slots");
    // The `| 63` makes every deadline in `now`'s own 64-tick block land on level 0.
    let masked = (now ^ deadline) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / BITS) as usize
}

/// The slot of `deadline` within `level`.
#[inline]
pub(super) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (BITS * level as u32)) & (SLOTS as u64 - 1)) as usize
}

/// The width of one slot of `level`, in ticks (saturating at `u64::MAX` for the top level's
/// block, which covers the whole range).
#[cfg(test)]
pub(super) fn slot_width(level: usize) -> u64 {
    1u64 << (BITS * level as u32)
}

/// The first tick of `slot` at `level`, in the block of that level which contains `now`.
#[inline]
pub(super) fn slot_start(now: u64, level: usize, slot: usize) -> u64 {
    let shift = BITS * level as u32;
    let block_shift = shift + BITS;
    // The top level's block is the whole u64 range (a shift by >= 64 would overflow).
    let block = if block_shift >= u64::BITS {
        0
    } else {
        (now >> block_shift) << block_shift
    };
    block | ((slot as u64) << shift)
}

/// The address of one intrusive list of entries: a slot of a level, or the ready list.
///
/// Stored as a `NonZeroU16` so that the entry slab can tell vacant from occupied entries
/// through the niche, without a separate tag byte and its padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ListId(NonZeroU16);

impl ListId {
    /// The list of timers already due, handed out before any slot is looked at.
    pub(super) const READY: ListId = match NonZeroU16::new(LISTS as u16) {
        Some(id) => ListId(id),
        None => unreachable!(),
    };

    /// Not a list: the mark of an entry held by the stage (see `stage.rs`). Never indexes
    /// the table of lists.
    pub(super) const STAGE: ListId = match NonZeroU16::new(LISTS as u16 + 1) {
        Some(id) => ListId(id),
        None => unreachable!(),
    };

    /// The list of `slot` at `level`.
    #[inline]
    pub(super) fn slot(level: usize, slot: usize) -> ListId {
        debug_assert!(level < LEVELS && slot < SLOTS);
        let id = (level * SLOTS + slot + 1) as u16;
        // `+ 1` above makes it non-zero; `unwrap_or` keeps the hot path free of a panic.
        ListId(NonZeroU16::new(id).unwrap_or(Self::READY.0))
    }

    /// The list at `index` of the array of list heads (the inverse of [`index`](Self::index)).
    #[inline]
    pub(super) fn from_index(index: usize) -> ListId {
        debug_assert!(index < LISTS);
        let id = (index + 1) as u16;
        ListId(NonZeroU16::new(id).unwrap_or(Self::READY.0))
    }

    /// Index into the array of list heads.
    #[inline]
    pub(super) fn index(self) -> usize {
        usize::from(self.0.get()) - 1
    }

    /// The `(level, slot)` of a slot list, `None` for the ready list.
    #[inline]
    pub(super) fn level_slot(self) -> Option<(usize, usize)> {
        let i = self.index();
        (i < LEVELS * SLOTS).then_some((i / SLOTS, i % SLOTS))
    }
}

/// Which slots hold at least one entry: one `u64` per level, plus one bit per level in
/// `levels` so the lowest non-empty level is found without looking at empty ones.
#[derive(Debug, Clone, Default)]
pub(super) struct Occupancy {
    slots: [u64; LEVELS],
    levels: u16,
}

impl Occupancy {
    /// Marks `slot` of `level` as holding entries.
    #[inline]
    pub(super) fn set(&mut self, level: usize, slot: usize) {
        self.slots[level] |= 1 << slot;
        self.levels |= 1 << level;
    }

    /// Marks `slot` of `level` as empty.
    #[inline]
    pub(super) fn clear(&mut self, level: usize, slot: usize) {
        self.slots[level] &= !(1 << slot);
        if self.slots[level] == 0 {
            self.levels &= !(1 << level);
        }
    }

    /// The earliest occupied slot as `(level, slot)`.
    ///
    /// Every occupied slot lies after `now`'s slot of its level (module ground rules), so the
    /// lowest set bit of the lowest occupied level is the earliest slot. No rotation is needed
    /// because a level never holds a slot that has wrapped around behind `now`.
    #[inline]
    pub(super) fn next(&self) -> Option<(usize, usize)> {
        if self.levels == 0 {
            return None;
        }
        let level = self.levels.trailing_zeros() as usize;
        let slot = self.slots[level].trailing_zeros() as usize;
        Some((level, slot))
    }

    /// Whether no slot is occupied.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.levels == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_cover_the_whole_u64_range() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, u64::MAX), LEVELS - 1);
        assert_eq!(level_for(u64::MAX - 1, u64::MAX), 0);
        // The top level uses only 4 of its 6 bits: 16 slots.
        assert_eq!(slot_for(u64::MAX, LEVELS - 1), 15);
    }

    #[test]
    fn level_is_decided_by_the_highest_differing_bit_not_by_the_distance() {
        // 63 -> 64 is one tick away but crosses a 64-tick block boundary: level 1.
        assert_eq!(level_for(63, 64), 1);
        // 64 -> 127 is 63 ticks away inside one block: level 0.
        assert_eq!(level_for(64, 127), 0);
        // 4095 -> 4096 crosses a level-1 block: level 2.
        assert_eq!(level_for(4095, 4096), 2);
    }

    #[test]
    fn filed_slot_is_strictly_after_nows_slot_in_the_same_block() {
        let cases = [
            (0u64, 1u64),
            (5, 63),
            (63, 64),
            (100, 5000),
            (4095, 4096),
            (123_456_789, 987_654_321),
            (0, u64::MAX),
            (u64::MAX / 3, u64::MAX / 2),
        ];
        for (now, deadline) in cases {
            let level = level_for(now, deadline);
            let slot = slot_for(deadline, level);
            assert!(slot > slot_for(now, level), "{now} {deadline}");
            let start = slot_start(now, level, slot);
            assert!(start > now, "slot starts after now: {now} {deadline}");
            assert!(start <= deadline, "slot starts at or before the deadline");
            let width = slot_width(level);
            assert!(deadline - start < width, "deadline lies inside its slot");
        }
    }

    #[test]
    fn slot_start_of_the_top_level_does_not_overflow() {
        assert_eq!(slot_start(0, LEVELS - 1, 15), 15 << 60);
        assert_eq!(slot_start(u64::MAX, LEVELS - 1, 15), 15 << 60);
        assert_eq!(slot_start(1000, 0, 63), 1023);
        assert_eq!(slot_start(1000, 1, 63), 63 * 64);
    }

    #[test]
    fn slot_widths() {
        assert_eq!(slot_width(0), 1);
        assert_eq!(slot_width(1), 64);
        assert_eq!(slot_width(2), 4096);
        assert_eq!(slot_width(LEVELS - 1), 1 << 60);
    }

    #[test]
    fn list_ids_round_trip() {
        for level in 0..LEVELS {
            for slot in 0..SLOTS {
                let id = ListId::slot(level, slot);
                assert_eq!(id.level_slot(), Some((level, slot)));
                assert!(id.index() < LISTS - 1);
            }
        }
        assert_eq!(ListId::READY.level_slot(), None);
        assert_eq!(ListId::STAGE.level_slot(), None);
        for index in 0..LISTS {
            assert_eq!(ListId::from_index(index).index(), index);
        }
        assert_eq!(ListId::READY.index(), LISTS - 1);
    }

    #[test]
    fn occupancy_finds_the_lowest_level_first_then_the_lowest_slot() {
        let mut occ = Occupancy::default();
        assert_eq!(occ.next(), None);
        occ.set(3, 7);
        occ.set(1, 40);
        occ.set(1, 9);
        assert_eq!(occ.next(), Some((1, 9)));
        occ.clear(1, 9);
        assert_eq!(occ.next(), Some((1, 40)));
        occ.clear(1, 40);
        assert_eq!(occ.next(), Some((3, 7)));
        // Clearing an already clear slot is harmless (a drained slot's last entry cancelled).
        occ.clear(2, 5);
        assert_eq!(occ.next(), Some((3, 7)));
        occ.clear(3, 7);
        assert!(occ.is_empty());
    }
}
