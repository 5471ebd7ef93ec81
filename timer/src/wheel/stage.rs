//! The stage: the timers of one drained level-2 slot, sorted by deadline, expired straight
//! from there as time advances instead of being re-filed on level 1 and then on level 0.
//!
//! # Ground rules
//!
//! - Why: re-filing a timer reads its entry (its deadline says where it goes), and with many
//!   timers each read is a cache miss. A timer a minute away (1 ms ticks) sits on level 2 and
//!   was read three times: re-filed to level 1, to level 0, then expired. When a level-2 slot
//!   drains its deadlines are loaded anyway, so they are kept here, sorted, and the timer is
//!   read only once more, when it expires: two reads instead of three.
//! - The stage holds one slot's worth (a level-2 slot is 4096 ticks wide) as `offset << 32 |
//!   index` keys, the offset being the deadline minus the slot's start. It is filled while the
//!   slot drains (`Filling`), sorted by a counting sort on the offset once the slot is empty
//!   (`Sorted`, latest first so that the next due key is the last), and drained from the back.
//! - Staged entries are not written again: their position in the stage is nobody's business.
//!   A staged timer that must leave before its time (a reset to an earlier deadline) is
//!   flagged "unstaged" in a bitmap instead and filed elsewhere; its key here is dropped when
//!   met. A cancelled one is flagged dead as on any list. See `entries.rs`.
//! - At most one stage is in use: a level-2 slot is staged only when the stage is empty, and
//!   every staged deadline lies before the start of the next level-2 slot (and of any slot
//!   above), so the stage is always drained before the next slot that could refill it.
//! - A lazily reset staged timer (moved later) is found not due when its key comes up, and is
//!   re-filed at its true deadline like one found in a slot.

/// The width of a level-2 slot: every staged deadline is less than this after the stage's
/// start.
pub(super) const SPAN: u64 = 4096;

/// How many staged entries [`Stage::ahead`] has read at once.
const WARM_BATCH: usize = 256;

/// Where the stage is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Empty and unused.
    Idle,
    /// A level-2 slot starting at `base` is being drained into it; keys are unsorted.
    Filling { base: u64 },
    /// Sorted, latest first: the last key is the next due.
    Sorted { base: u64 },
}

/// The staged timers of one level-2 slot.
#[derive(Debug)]
pub(super) struct Stage {
    /// `offset << 32 | index`.
    keys: Vec<u64>,
    state: State,
    /// How many keys at the back have had their entries read ahead of time (see
    /// [`ahead`](Self::ahead)).
    warm: usize,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            keys: Vec::new(),
            state: State::Idle,
            warm: 0,
        }
    }
}

impl Stage {
    /// Starts filling for the slot starting at `base`; `false` (and nothing changes) if the
    /// stage is in use.
    pub(super) fn open(&mut self, base: u64) -> bool {
        if self.state != State::Idle {
            return false;
        }
        debug_assert!(self.keys.is_empty());
        self.state = State::Filling { base };
        true
    }

    /// Whether a timer due at `deadline` may be staged now: the stage is filling and the
    /// deadline lies after its start and within its span.
    #[inline]
    pub(super) fn accepts(&self, deadline: u64) -> bool {
        match self.state {
            State::Filling { base } => deadline > base && deadline - base < SPAN,
            _ => false,
        }
    }

    /// Adds the timer at `index`, due at `deadline` (which it [`accepts`](Self::accepts)).
    #[inline]
    pub(super) fn push(&mut self, deadline: u64, index: u32) {
        let State::Filling { base } = self.state else {
            unreachable!("pushed while not filling")
        };
        self.keys.push((deadline - base) << 32 | u64::from(index));
    }

    /// Ends filling: sorts the keys, latest first (a counting sort on the 12-bit offset,
    /// O(keys + 4096)).
    pub(super) fn seal(&mut self) {
        let State::Filling { base } = self.state else {
            return;
        };
        if self.keys.is_empty() {
            self.state = State::Idle;
            return;
        }
        let mut starts = vec![0u32; SPAN as usize];
        for &key in &self.keys {
            starts[(key >> 32) as usize] += 1;
        }
        // Latest offset first.
        let mut at = 0;
        for start in starts.iter_mut().rev() {
            let count = *start;
            *start = at;
            at += count;
        }
        let mut sorted = vec![0u64; self.keys.len()];
        for &key in &self.keys {
            let start = &mut starts[(key >> 32) as usize];
            sorted[*start as usize] = key;
            *start += 1;
        }
        self.keys = sorted;
        self.state = State::Sorted { base };
        self.warm = 0;
    }

    /// The deadline of the next key (a lower bound of the next staged deadline: its timer
    /// may have moved), once sorted.
    #[inline]
    pub(super) fn next(&self) -> Option<u64> {
        match self.state {
            State::Sorted { base } => self.keys.last().map(|&key| base + (key >> 32)),
            State::Filling { base } if !self.keys.is_empty() => Some(base),
            _ => None,
        }
    }

    /// Whether the stage is filling (its keys not sorted yet).
    #[inline]
    pub(super) fn is_filling(&self) -> bool {
        matches!(self.state, State::Filling { .. })
    }

    /// Takes the next key if it is due at or before `now`; returns its index.
    #[inline]
    pub(super) fn pop_due(&mut self, now: u64) -> Option<u32> {
        let State::Sorted { base } = self.state else {
            return None;
        };
        let &key = self.keys.last()?;
        if base + (key >> 32) > now {
            return None;
        }
        self.keys.pop();
        self.warm = self.warm.saturating_sub(1);
        if self.keys.is_empty() {
            self.state = State::Idle;
            self.give_back();
        }
        Some(key as u32)
    }

    /// The indices of the keys due next whose entries should be read now, if the ones read
    /// ahead before are running out: the next [`WARM_BATCH`] after them. Why: a staged timer
    /// is read only when it expires, a handful per tick, and one tick's misses alone do not
    /// overlap enough; reading a few hundred ahead at once lets them overlap, and they stay
    /// cached until their tick (a few hundred entries are a few dozen KiB).
    pub(super) fn ahead(&mut self) -> impl Iterator<Item = u32> + '_ {
        let len = self.keys.len();
        let (from, to) = if self.warm < WARM_BATCH / 4 {
            let to = len - self.warm.min(len);
            let from = to.saturating_sub(WARM_BATCH);
            self.warm += to - from;
            (from, to)
        } else {
            (0, 0)
        };
        self.keys[from..to].iter().map(|&key| key as u32)
    }

    /// Keeps only the indices for which `keep` says so, in order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        self.warm = 0;
        self.keys.retain(|&key| keep(key as u32));
        if self.keys.is_empty() && !self.is_filling() {
            self.state = State::Idle;
            self.give_back();
        }
    }

    /// Drops every key.
    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.warm = 0;
        self.state = State::Idle;
        self.give_back();
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<u64>()
    }

    fn give_back(&mut self) {
        if self.keys.capacity() > 1024 {
            self.keys = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_come_out_in_deadline_order_and_only_when_due() {
        let mut stage = Stage::default();
        assert!(stage.open(8192));
        assert!(!stage.open(4096), "one stage at a time");
        assert!(!stage.accepts(8192) && !stage.accepts(8192 + SPAN));
        for (i, offset) in [700u64, 3, 4095, 3, 1].into_iter().enumerate() {
            assert!(stage.accepts(8192 + offset));
            stage.push(8192 + offset, i as u32);
        }
        assert_eq!(stage.next(), Some(8192), "a lower bound while filling");
        assert_eq!(
            stage.pop_due(u64::MAX),
            None,
            "nothing comes out before sealing"
        );
        stage.seal();
        assert!(!stage.accepts(8193), "sealed");
        assert_eq!(stage.next(), Some(8193));
        assert_eq!(stage.pop_due(8192), None);
        assert_eq!(stage.pop_due(8193), Some(4));
        let mut at_3 = vec![stage.pop_due(8195).unwrap(), stage.pop_due(8195).unwrap()];
        at_3.sort_unstable();
        assert_eq!(at_3, [1, 3]);
        assert_eq!(stage.pop_due(8195), None);
        stage.retain(|index| index != 0);
        assert_eq!(stage.pop_due(u64::MAX), Some(2));
        assert_eq!(stage.next(), None);
        assert!(stage.open(12288), "emptied: usable again");
        stage.seal();
        assert_eq!(stage.next(), None, "sealed empty: idle");
        assert!(stage.open(16384));
    }
}
