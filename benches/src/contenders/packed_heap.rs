//! `std::collections::BinaryHeap<Reverse<u64>>` of packed `deadline << 32 | index` keys, with
//! a bitset of cancelled indices: the strongest heap a user writes when handles need no
//! generation check (issue 13).
//!
//! A timer is a `u32` index; its heap entry packs the deadline above it, so the heap holds
//! plain `u64`s (8 bytes, one compare). Cancel sets the index's bit: one write to a bitset of
//! N bits (128 KiB for 1M timers, cache-resident), no heap work. A popped entry whose bit is
//! set is dropped, its bit cleared and its index freed; only then can the index be reused, so
//! a heap entry never meets a later timer's index. Reset to a later deadline cancels the old
//! index and pushes a new one (the key is updated in place).
//!
//! What it gives up against [`HeapContender`](super::HeapContender) and the wheel: a key is
//! not generation-checked, so cancelling a timer that already fired (or twice) may cancel a
//! later timer that reuses its index; the caller must never do that. Deadlines must fit in
//! 32 bits (49 days of 1 ms ticks), which the workloads do. Cancelled entries are dropped in
//! an O(n) rebuild once they outnumber the live ones, as in `HeapContender`.

use super::Contender;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Compaction runs when `heap.len() > COMPACT_FACTOR * live + COMPACT_SLACK`.
const COMPACT_FACTOR: usize = 2;
const COMPACT_SLACK: usize = 1024;

/// A min-heap of packed keys with a cancelled-index bitset.
#[derive(Debug, Default)]
pub struct PackedHeapContender {
    heap: BinaryHeap<Reverse<u64>>,
    /// Bit `i` set: index `i`'s heap entry is cancelled.
    cancelled: Vec<u64>,
    /// The payload of each index (the workloads' timer id).
    ids: Vec<u64>,
    free: Vec<u32>,
    len: usize,
}

impl PackedHeapContender {
    fn is_cancelled(&self, index: u32) -> bool {
        self.cancelled[index as usize / 64] & (1 << (index % 64)) != 0
    }

    fn set_cancelled(&mut self, index: u32, on: bool) {
        let word = &mut self.cancelled[index as usize / 64];
        let bit = 1u64 << (index % 64);
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    fn allocate(&mut self, id: u64) -> u32 {
        match self.free.pop() {
            Some(index) => {
                self.ids[index as usize] = id;
                index
            }
            None => {
                let index = u32::try_from(self.ids.len()).expect("fewer than 2^32 timers");
                self.ids.push(id);
                if self.cancelled.len() * 64 < self.ids.len() {
                    self.cancelled.push(0);
                }
                index
            }
        }
    }

    fn push(&mut self, deadline: u64, index: u32) {
        let deadline = u32::try_from(deadline).expect("deadline fits in 32 bits");
        self.heap
            .push(Reverse(u64::from(deadline) << 32 | u64::from(index)));
    }

    /// Drops cancelled entries once they outnumber the live ones (see the module docs).
    fn maybe_compact(&mut self) {
        if self.heap.len() <= COMPACT_FACTOR * self.len + COMPACT_SLACK {
            return;
        }
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|&Reverse(packed)| {
            let index = packed as u32;
            if self.is_cancelled(index) {
                self.set_cancelled(index, false);
                self.free.push(index);
                false
            } else {
                true
            }
        });
        self.heap = BinaryHeap::from(entries);
    }
}

impl Contender for PackedHeapContender {
    const NAME: &'static str = "packed heap";
    type Key = u32;

    fn new(capacity: usize) -> Self {
        PackedHeapContender {
            heap: BinaryHeap::with_capacity(capacity),
            cancelled: Vec::with_capacity(capacity.div_ceil(64)),
            ids: Vec::with_capacity(capacity),
            free: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> u32 {
        let index = self.allocate(id);
        self.push(deadline, index);
        self.len += 1;
        index
    }

    fn cancel(&mut self, key: u32) -> bool {
        if self.is_cancelled(key) {
            return false;
        }
        self.set_cancelled(key, true);
        self.len -= 1;
        self.maybe_compact();
        true
    }

    fn reset(&mut self, key: &mut u32, deadline: u64) {
        let id = self.ids[*key as usize];
        self.set_cancelled(*key, true);
        let index = self.allocate(id);
        self.push(deadline, index);
        *key = index;
        self.maybe_compact();
    }

    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while let Some(&Reverse(packed)) = self.heap.peek() {
            if packed >> 32 > now {
                break;
            }
            self.heap.pop();
            let index = packed as u32;
            if self.is_cancelled(index) {
                self.set_cancelled(index, false);
            } else {
                self.len -= 1;
                fired += 1;
            }
            self.free.push(index);
        }
        fired
    }

    fn pending(&self) -> Option<usize> {
        Some(self.len)
    }
}
