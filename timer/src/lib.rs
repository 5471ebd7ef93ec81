//! # wheelbeat-timer
//!
//! Timers for servers that hold very many long-lived connections, where every connection has
//! a timer or two (ping due, answer overdue) that is pushed back on nearly every packet and
//! almost never fires. Two layers:
//!
//! - [`Wheel<T>`]: a single-threaded, I/O-free hierarchical timer wheel over integer ticks.
//!   O(1) insert, cancel and reset; pushing a deadline later touches no list; finding the
//!   next deadline and skipping empty ticks cost O(1). You own the clock: pass `now` in, get
//!   expired timers out. This is what an event loop embeds (the heartbeat `Monitor` does).
//! - [`Timer`]: a gtimer-style task service on top (once / times / forever jobs, singleton,
//!   stop / start / reset / close entries), with its own thread and a worker pool.
//!
//! ```
//! use wheelbeat_timer::Wheel;
//!
//! let mut wheel = Wheel::new();
//! let conn7 = wheel.insert(30_000, "conn 7: ping due"); // tick = 1 ms
//! wheel.reset(conn7, 31_000); // a frame arrived: O(1), no list touched
//! assert_eq!(wheel.advance(30_999).count(), 0); // never early
//! assert_eq!(wheel.poll(31_000).unwrap().value, "conn 7: ping due");
//! ```
//!
//! # The wheel
//!
//! Eleven levels of 64 slots, after Varghese & Lauck, "Hashed and Hierarchical Timing
//! Wheels: Data Structures for the Efficient Implementation of a Timer Facility" (SOSP 1987),
//! laid out as in tokio's timer wheel and Linux's `timer.c`. A slot of level `L` is `64^L`
//! ticks wide. A timer is filed at the level of the highest bit in which its deadline differs
//! from `now`, so a level-`L` timer is usually between `64^L` and `64^(L+1)` ticks away (one
//! just across a block boundary can sit higher; its slot still starts at most one slot width
//! before its deadline). Eleven levels cover all of `u64`: there is no overflow list.
//!
//! | level | slot width (ticks) | level span (ticks) | slot width, 1 ms ticks | span, 1 ms ticks |
//! |------:|-------------------:|-------------------:|-----------------------:|-----------------:|
//! | 0     | 1                  | 64                 | 1 ms                   | 64 ms            |
//! | 1     | 64                 | 4,096              | 64 ms                  | 4.1 s            |
//! | 2     | 4,096              | 262,144            | 4.1 s                  | 4.4 min          |
//! | 3     | 2^18 = 262,144     | 2^24               | 4.4 min                | 4.7 h            |
//! | 4     | 2^24               | 2^30               | 4.7 h                  | 12.4 days        |
//! | 5     | 2^30               | 2^36               | 12.4 days              | 2.2 years        |
//! | 6     | 2^36               | 2^42               | 2.2 years              | 139 years        |
//! | 7     | 2^42               | 2^48               | 139 years              | 8,900 years      |
//! | 8     | 2^48               | 2^54               | 8,900 years            | 571,000 years    |
//! | 9     | 2^54               | 2^60               | 571,000 years          | 36.5 M years     |
//! | 10    | 2^60               | 2^64 (16 slots)    | 36.5 M years           | 585 M years      |
//!
//! Each level has an `occupied: u64` bitmap and the wheel a bitmap of non-empty levels, so
//! the next due slot is two `trailing_zeros`, never a scan: advancing from tick 0 to 60,000
//! with a few timers visits a few slots, not 60,000 ticks. Nothing cascades ahead of time: a
//! slot's timers move one level down only when that slot comes due.
//!
//! One exception to "one level down": when a level-2 slot (4,096 ticks wide) comes due, its
//! timers, whose deadlines the drain has just read, are put on a **stage**: a buffer sorted
//! by deadline (a counting sort on the 12-bit offset) from which they expire as time reaches
//! them, instead of being re-filed on level 1 and then on level 0. Each re-file reads the
//! timer's entry, a cache miss when there are many timers; a timer a minute away (1 ms ticks)
//! is therefore read twice (staged, expired) instead of three times. A staged timer moved
//! earlier leaves a stale key on the stage (flagged, skipped when met); one moved later is
//! re-filed when its key comes up, as from a slot.
//!
//! ## Cost of each operation
//!
//! | operation                         | cost | what it touches |
//! |-----------------------------------|------|-----------------|
//! | [`insert`](Wheel::insert)         | O(1) | one slab entry, a push on one slot list, two bitmap bits |
//! | [`cancel`](Wheel::cancel)         | O(1) | the generation (4 bytes in a cache-friendly array), one bit, and the entry (its value is moved out); no list: the index stays on its list, flagged, until the slot drains (a sweep when flagged ones outnumber pending ones, amortised O(1)) |
//! | [`discard`](Wheel::discard)       | O(1) | as `cancel`, without reading the entry when the value needs no drop: one generation and one bit |
//! | [`reset`](Wheel::reset), later    | O(1) | the generation and one field of the entry: no list at all (lazy re-file, below) |
//! | [`reset`](Wheel::reset), earlier  | O(1) | the entry, one hole in its list (holes are filled in batches, amortised O(1)), a push on another list |
//! | [`poll`](Wheel::poll) / [`advance`](Wheel::advance) | O(1) per timer expired or re-filed, and per cancelled timer dropped | finding the next occupied slot is O(1) however many empty ticks are skipped; a drained slot's entries are read in batches so their cache misses overlap |
//! | [`next_deadline`](Wheel::next_deadline) | O(1) | the bitmaps |
//!
//! A timer is re-filed at most once per level it descends, with levels 1 and 0 counted as
//! one for a staged timer (a timer a minute away with 1 ms ticks: once), plus once per lazy
//! reset it outlived. [`advance_bounded`](Wheel::advance_bounded)
//! caps the work (expiries plus re-files) done by one call, so an event loop never stalls on
//! a burst.
//!
//! ## Lazy reset
//!
//! Moving a deadline later only overwrites the entry's deadline: the entry stays in the slot
//! it was filed in, which comes due no later than the new deadline. When it does, the entry is
//! found not yet due and is re-filed at its true deadline (tokio calls these the registered
//! and the true deadline). A heartbeat that pushes its deadline 30 s ahead on every packet
//! thus costs one field write per packet and one re-file per slot period, whatever the packet
//! rate. The price is that [`next_deadline`](Wheel::next_deadline) is a lower bound: it may
//! name such a re-file point, or the start of a higher level's slot, where nothing expires.
//!
//! ## Memory per timer
//!
//! A pending timer costs one slab entry and its generation, [`Wheel::ENTRY_SIZE`] bytes: 14
//! bytes of bookkeeping (deadline, list and position) plus the value `T`, rounded up to a
//! multiple of 8, i.e. **16 bytes** for values up to 2 bytes (`()`, a `u16`) and 24 for a
//! `u32` or a `u64`, plus the **4-byte generation**, kept beside the slab; plus **4 bytes** in
//! its slot's list (8 while it is on the stage, which holds one level-2 slot's timers at a
//! time) and two bits in bitmaps (cancelled indices, stale stage keys). Vacant and occupied
//! entries share one `Option` whose tag lives in a niche, so there is no tag byte or padding
//! for it. With growth slack, 10 million `()` timers measured 26 bytes each
//! ([`Wheel::memory_bytes`]), plus a fixed 22 KiB for the list table. A cancelled timer
//! keeps its 4 bytes in its list (and its index) until its slot drains; once cancelled timers
//! outnumber the pending ones every list is swept of them, so they never hold more than about
//! the pending ones do. Entries are addressed by `u32` index, so a wheel holds up to about 4
//! billion timers.
//!
//! ## Keys
//!
//! A [`TimerKey`] is an index and a generation. Cancelling or expiring a timer bumps the
//! generation at once, so a key of a timer that fired or was cancelled is rejected by every
//! method and never reaches a new timer in the same slot; an index whose generation would
//! wrap is retired instead of reused, so not even 2^32 reuses alias. The generations live in
//! their own array (4 bytes per index, 4 MB per million timers) rather than in the entries
//! (24-32 MB per million): checking a key in a random-order cancel then reads a line that is
//! likely cached, instead of one that almost never is.
//!
//! # Ticks and instants
//!
//! The wheel knows only `u64` ticks; [`TickClock`] maps [`Instant`](std::time::Instant)s to
//! them with a chosen tick length and origin. Deadlines round **up**
//! ([`TickClock::deadline_to_tick`]) and the current time rounds **down**
//! ([`TickClock::now_to_tick`]), so a timer never fires before its deadline and at most one
//! tick after it (plus however late the caller polls).
//!
#![doc = include_str!("../docs/coming-from-gtimer.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod service;
pub mod wheel;

pub use clock::TickClock;
pub use service::{Entry, EntryOptions, JobContext, ManualClock, Schedule, Status, Timer};
pub use service::{
    add, add_entry, add_once, add_singleton, add_times, default_timer, delay_add, delay_add_entry,
    delay_add_once, delay_add_singleton, delay_add_times, set_interval, set_timeout,
};
pub use wheel::{Advance, Expired, TimerKey, Wheel};

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
