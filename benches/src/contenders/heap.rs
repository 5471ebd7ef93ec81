//! `std::collections::BinaryHeap` with lazy deletion: the baseline a careful user writes first.
//!
//! Timers live in a slab of `(generation, payload)` cells; the heap holds
//! `(deadline, index, generation)`. Cancel bumps the cell's generation and frees it, which
//! turns its heap entry stale; a popped stale entry is skipped. Reset to a later deadline
//! pushes a new heap entry and bumps the generation, invalidating the old one.
//!
//! Left alone, the stale entries would pile up (the re-arm workload pushes 10 million for
//! 100k timers, and popping them dominated the run by 100x), so the heap is compacted, as a
//! careful user would do: when it holds more than twice as many entries as live timers (plus
//! a little slack), the stale ones are dropped and the heap rebuilt in O(n), which is O(1)
//! amortised per operation.

use super::Contender;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The generation-checked key of a [`HeapContender`] timer.
#[derive(Debug, Clone, Copy)]
pub struct HeapKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Cell {
    generation: u32,
    /// `Some` while the timer is pending.
    id: Option<u64>,
}

/// A min-heap of deadlines with lazy deletion.
#[derive(Debug, Default)]
pub struct HeapContender {
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    cells: Vec<Cell>,
    free: Vec<u32>,
    len: usize,
}

/// Compaction runs when `heap.len() > COMPACT_FACTOR * live + COMPACT_SLACK`.
const COMPACT_FACTOR: usize = 2;
const COMPACT_SLACK: usize = 1024;

impl HeapContender {
    /// Drops stale heap entries once they outnumber the live timers (see the module docs).
    fn maybe_compact(&mut self) {
        if self.heap.len() <= COMPACT_FACTOR * self.len + COMPACT_SLACK {
            return;
        }
        let cells = &self.cells;
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|&Reverse((_, index, generation))| {
            let cell = &cells[index as usize];
            cell.generation == generation && cell.id.is_some()
        });
        self.heap = BinaryHeap::from(entries);
    }

    fn is_live(&self, key: HeapKey) -> bool {
        let cell = &self.cells[key.index as usize];
        cell.generation == key.generation && cell.id.is_some()
    }
}

impl Contender for HeapContender {
    const NAME: &'static str = "BinaryHeap";
    type Key = HeapKey;

    fn new(capacity: usize) -> Self {
        HeapContender {
            heap: BinaryHeap::with_capacity(capacity),
            cells: Vec::with_capacity(capacity),
            free: Vec::new(),
            len: 0,
        }
    }

    fn insert(&mut self, deadline: u64, id: u64) -> HeapKey {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.cells.push(Cell {
                    generation: 0,
                    id: None,
                });
                (self.cells.len() - 1) as u32
            }
        };
        let cell = &mut self.cells[index as usize];
        cell.id = Some(id);
        let generation = cell.generation;
        self.heap.push(Reverse((deadline, index, generation)));
        self.len += 1;
        HeapKey { index, generation }
    }

    fn cancel(&mut self, key: HeapKey) -> bool {
        if !self.is_live(key) {
            return false;
        }
        let cell = &mut self.cells[key.index as usize];
        cell.id = None;
        cell.generation = cell.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        self.maybe_compact();
        true
    }

    fn reset(&mut self, key: &mut HeapKey, deadline: u64) {
        if !self.is_live(*key) {
            return;
        }
        let cell = &mut self.cells[key.index as usize];
        cell.generation = cell.generation.wrapping_add(1);
        key.generation = cell.generation;
        self.heap
            .push(Reverse((deadline, key.index, key.generation)));
        self.maybe_compact();
    }

    fn advance(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while let Some(&Reverse((deadline, index, generation))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let cell = &mut self.cells[index as usize];
            if cell.generation != generation || cell.id.is_none() {
                continue; // stale: cancelled or reset since this entry was pushed
            }
            cell.id = None;
            cell.generation = cell.generation.wrapping_add(1);
            self.free.push(index);
            self.len -= 1;
            fired += 1;
        }
        fired
    }

    fn pending(&self) -> Option<usize> {
        Some(self.len)
    }
}
