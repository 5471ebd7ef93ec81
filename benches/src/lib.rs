//! Shared workloads for wheelbeat's benchmarks and the `compare` binary.
//!
//! # Ground rules
//!
//! - Every timer implementation under test (a *contender*) sits behind the small
//!   [`Contender`](contenders::Contender) trait, so the criterion benches and the `compare` binary
//!   run exactly the same code for each of them.
//! - Time is virtual: deadlines are integer milliseconds from the start of a run, and a
//!   workload advances time in 1 ms steps. The tokio contenders run under a paused clock
//!   (`start_paused`), so no real time passes while they are measured either.
//! - No contender may win by doing less: every workload counts the timers that fired and
//!   [`workloads`] asserts the count equals the expected one (`expired == inserted - cancelled`).
//! - Every contender carries the same 8-byte payload (a `u64` id) per timer.
//!
//! See `benches/RESULTS.md` for the figures and the commands that produce them.

pub mod alloc;
pub mod connbench;
pub mod contenders;
pub mod loopbench;
pub mod svg;
pub mod workloads;
