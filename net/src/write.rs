//! The per-connection outbound queue: a capped data lane plus a priority lane.
//!
//! # Ground rules
//! - Bytes are queued already encoded. The data lane is one `Vec<u8>` with a read offset plus
//!   the length of every queued frame; the frame lengths are what let a priority frame go out
//!   at the next frame boundary without splitting a frame already partly written.
//! - The cap counts encoded bytes plus [`FRAME_OVERHEAD`] bytes of bookkeeping per frame, so
//!   even a flood of empty frames cannot grow memory past it. The data buffer's allocation
//!   never passes the cap: written bytes are moved out before the `Vec` would grow, and
//!   growth is clamped to the cap. The frame-length ring adds 4 bytes per queued frame (8
//!   with a `VecDeque`'s growth slack), so a queue of 1-byte frames can reach 2.6 × the cap;
//!   64-byte frames about 1.1 ×.
//! - Drained lanes free their memory: an idle connection holds no heap.
//!
//! # Wire order (the state table)
//!
//! | data lane            | priority lane | next bytes on the wire                        |
//! |----------------------|---------------|-----------------------------------------------|
//! | mid-frame            | any           | rest of that frame, then priority, then data  |
//! | at a frame boundary  | non-empty     | all priority bytes, then data                 |
//! | at a frame boundary  | empty         | data                                          |
//!
//! Priority bytes, once started, are finished before any data byte (they only start at a
//! boundary, and the table puts them first there).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use crate::error::Error;

/// Bytes of bookkeeping charged to the write cap for each queued data frame.
pub const FRAME_OVERHEAD: usize = 4;

/// What [`Connection::flush`](crate::Connection::flush) achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStatus {
    /// Everything queued has been handed to the kernel; the queue is empty.
    Empty,
    /// The socket would block with bytes still queued: wait for a writable event
    /// (keep `WRITABLE` interest, see [`Connection::sync_interest`](crate::Connection::sync_interest)).
    Pending,
}

#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    data: Vec<u8>,
    /// Bytes at the front of `data` already written.
    head: usize,
    /// Lengths of the data frames not yet fully written; the front one may be partly written.
    frames: VecDeque<u32>,
    /// Bytes of the front frame already written.
    front_done: u32,
    prio: Vec<u8>,
    /// Bytes at the front of `prio` already written (the lane is capped far below 4 GiB).
    prio_head: u32,
}

impl WriteQueue {
    /// Bytes charged against the data cap.
    pub(crate) fn queued(&self) -> usize {
        self.data.len() - self.head + self.frames.len() * FRAME_OVERHEAD
    }

    /// Priority bytes not yet written.
    pub(crate) fn prio_queued(&self) -> usize {
        self.prio.len() - self.prio_head as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.data.len() && self.prio_head as usize == self.prio.len()
    }

    /// Heap bytes held by the queue (capacities, not lengths).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.prio.capacity() + self.frames.capacity() * 4
    }

    /// Makes room for `extra` more bytes without letting the allocation pass `cap` (unless a
    /// single frame needs more): written bytes are moved out first, and growth doubles but is
    /// clamped. The move happens at most once per flush that made progress, and moves at most
    /// `cap` bytes.
    fn reserve_data(&mut self, extra: usize, cap: usize) {
        if self.data.len() + extra <= self.data.capacity() {
            return;
        }
        if self.head > 0 {
            self.data.drain(..self.head);
            self.head = 0;
        }
        let need = self.data.len() + extra;
        if need > self.data.capacity() {
            let target = (self.data.capacity() * 2).max(need).min(cap.max(need));
            self.data.reserve_exact(target - self.data.len());
        }
    }

    /// Appends one encoded data frame produced by `encode`, which must append exactly
    /// `encoded_len` bytes or fail without appending. `cap` bounds the allocation.
    pub(crate) fn push_data(
        &mut self,
        encoded_len: usize,
        cap: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.reserve_data(encoded_len, cap);
        let before = self.data.len();
        encode(&mut self.data)?;
        let n = self.data.len() - before;
        debug_assert_eq!(n, encoded_len, "Codec::encoded_len disagrees with encode");
        if n == 0 {
            return Ok(());
        }
        // Frames are at most MAX_MAX_FRAME_LEN + framing, which fits a u32.
        self.frames.push_back(n as u32);
        Ok(())
    }

    pub(crate) fn push_prio(
        &mut self,
        encoded_len: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.prio_head as usize == self.prio.len() {
            self.prio.clear();
            self.prio_head = 0;
        }
        self.prio.reserve(encoded_len);
        encode(&mut self.prio)
    }

    /// Bytes of the front data frame still to write if it is partly written, else 0.
    fn mid_frame_rest(&self) -> usize {
        match self.frames.front() {
            Some(&len) if self.front_done > 0 => (len - self.front_done) as usize,
            _ => 0,
        }
    }

    /// Marks `n` data bytes as written.
    fn advance_data(&mut self, mut n: usize) {
        self.head += n;
        while n > 0 {
            let front = *self.frames.front().expect("written bytes belong to frames");
            let rest = (front - self.front_done) as usize;
            if n >= rest {
                n -= rest;
                self.frames.pop_front();
                self.front_done = 0;
            } else {
                // n < rest <= u32::MAX
                self.front_done += n as u32;
                n = 0;
            }
        }
    }

    /// Writes in wire order (see the module's table) until empty or `WouldBlock`.
    pub(crate) fn flush<W: Write>(&mut self, w: &mut W) -> Result<FlushStatus, Error> {
        loop {
            if self.is_empty() {
                self.release();
                return Ok(FlushStatus::Empty);
            }
            let mid = self.mid_frame_rest();
            let a = &self.data[self.head..self.head + mid];
            let b = &self.prio[self.prio_head as usize..];
            let c = &self.data[self.head + mid..];
            let bufs = [IoSlice::new(a), IoSlice::new(b), IoSlice::new(c)];
            let wanted = a.len() + b.len() + c.len();
            match w.write_vectored(&bufs) {
                Ok(0) => return Err(Error::WriteZero),
                Ok(n) => {
                    let n = n.min(wanted);
                    let na = n.min(mid);
                    let nb = (n - na).min(self.prio_queued());
                    let nc = n - na - nb;
                    self.advance_data(na);
                    // nb <= prio_queued, which the priority cap (a u32) bounds.
                    self.prio_head += nb as u32;
                    self.advance_data(nc);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.compact();
                    return Ok(FlushStatus::Pending);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// Frees the priority lane once it is written (data is compacted lazily, on append).
    fn compact(&mut self) {
        if self.prio_head as usize == self.prio.len() {
            self.prio = Vec::new();
            self.prio_head = 0;
        }
    }

    /// Frees all memory once everything is written.
    fn release(&mut self) {
        *self = WriteQueue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `chunk` bytes per call, then `WouldBlock` after `budget`.
    struct Trickle {
        out: Vec<u8>,
        chunk: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.budget);
            self.out.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn push(q: &mut WriteQueue, bytes: &[u8]) {
        q.push_data(bytes.len(), usize::MAX, |d| {
            d.extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
    }

    fn push_prio(q: &mut WriteQueue, bytes: &[u8]) {
        q.push_prio(bytes.len(), |d| {
            d.extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn priority_waits_for_the_frame_in_progress_then_jumps_the_queue() {
        let mut q = WriteQueue::default();
        push(&mut q, b"AAAA\n");
        push(&mut q, b"BBBB\n");
        let mut w = Trickle {
            out: Vec::new(),
            chunk: 2,
            budget: 2,
        };
        assert_eq!(q.flush(&mut w).unwrap(), FlushStatus::Pending);
        push_prio(&mut q, b"p\n");
        w.budget = usize::MAX;
        assert_eq!(q.flush(&mut w).unwrap(), FlushStatus::Empty);
        assert_eq!(w.out, b"AAAA\np\nBBBB\n");
    }

    #[test]
    fn priority_goes_first_at_a_boundary() {
        let mut q = WriteQueue::default();
        push(&mut q, b"AAAA\n");
        push_prio(&mut q, b"p\n");
        let mut w = Trickle {
            out: Vec::new(),
            chunk: 1,
            budget: usize::MAX,
        };
        q.flush(&mut w).unwrap();
        assert_eq!(w.out, b"p\nAAAA\n");
    }

    #[test]
    fn accounting_includes_per_frame_overhead_and_memory_is_freed_when_drained() {
        let mut q = WriteQueue::default();
        push(&mut q, b"\n");
        push(&mut q, b"\n");
        assert_eq!(q.queued(), 2 + 2 * FRAME_OVERHEAD);
        let mut w = Trickle {
            out: Vec::new(),
            chunk: 100,
            budget: usize::MAX,
        };
        q.flush(&mut w).unwrap();
        assert_eq!(q.queued(), 0);
        assert_eq!(q.heap_bytes(), 0);
    }

    #[test]
    fn partial_priority_write_finishes_before_data_resumes() {
        let mut q = WriteQueue::default();
        push_prio(&mut q, b"pppp\n");
        push(&mut q, b"AA\n");
        let mut w = Trickle {
            out: Vec::new(),
            chunk: 3,
            budget: 3,
        };
        assert_eq!(q.flush(&mut w).unwrap(), FlushStatus::Pending);
        push_prio(&mut q, b"q\n");
        w.budget = usize::MAX;
        q.flush(&mut w).unwrap();
        assert_eq!(w.out, b"pppp\nq\nAA\n");
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Data(usize),
            Prio,
            Flush { budget: usize, chunk: usize },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0usize..40).prop_map(Op::Data),
                1 => Just(Op::Prio),
                2 => (0usize..60, 1usize..12).prop_map(|(budget, chunk)| Op::Flush { budget, chunk }),
            ]
        }

        /// (complete data frames in `out`, whether `out` ends inside a data frame)
        fn position(out: &[u8]) -> (usize, bool) {
            let mut data = 0;
            let mut line_start = 0;
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' {
                    if out[line_start] == b'd' {
                        data += 1;
                    }
                    line_start = i + 1;
                }
            }
            let mid = line_start < out.len() && out[line_start] == b'd';
            (data, mid)
        }

        proptest! {
            /// Any interleaving of sends, priority sends and partial flushes puts every frame on
            /// the wire whole and in order, and each priority frame right at the first data
            /// frame boundary after it was queued (behind earlier priority frames only).
            #[test]
            fn priority_frames_land_on_the_next_boundary(ops in proptest::collection::vec(op(), 0..60)) {
                let mut q = WriteQueue::default();
                let mut w = Trickle { out: Vec::new(), chunk: 1, budget: 0 };
                let (mut n_data, mut n_prio) = (0usize, 0usize);
                let mut data_lens = Vec::new();
                let mut prio_expected_before = Vec::new();
                for op in ops {
                    match op {
                        Op::Data(len) => {
                            let mut f = format!("d{n_data}:").into_bytes();
                            f.resize(f.len() + len, b'x');
                            f.push(b'\n');
                            data_lens.push(f.len());
                            push(&mut q, &f);
                            n_data += 1;
                        }
                        Op::Prio => {
                            let (done, mid) = position(&w.out);
                            // Frames already complete, plus the one in progress.
                            prio_expected_before.push(done + usize::from(mid));
                            push_prio(&mut q, format!("p{n_prio}\n").as_bytes());
                            n_prio += 1;
                        }
                        Op::Flush { budget, chunk } => {
                            w.budget = budget;
                            w.chunk = chunk;
                            q.flush(&mut w).unwrap();
                        }
                    }
                    prop_assert!(q.queued() <= data_lens.iter().sum::<usize>() + FRAME_OVERHEAD * n_data);
                }
                w.budget = usize::MAX;
                w.chunk = 7;
                prop_assert_eq!(q.flush(&mut w).unwrap(), FlushStatus::Empty);
                prop_assert_eq!(q.heap_bytes(), 0);

                let (mut seen_data, mut seen_prio) = (0usize, 0usize);
                for line in w.out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    if line[0] == b'd' {
                        let head = format!("d{seen_data}:");
                        prop_assert!(line.starts_with(head.as_bytes()), "data out of order");
                        prop_assert_eq!(line.len() + 1, data_lens[seen_data]);
                        seen_data += 1;
                    } else {
                        let want = format!("p{seen_prio}");
                        prop_assert_eq!(line, want.as_bytes());
                        prop_assert_eq!(seen_data, prio_expected_before[seen_prio],
                            "priority frame {} not at the next boundary", seen_prio);
                        seen_prio += 1;
                    }
                }
                prop_assert_eq!((seen_data, seen_prio), (n_data, n_prio));
            }
        }
    }
}
