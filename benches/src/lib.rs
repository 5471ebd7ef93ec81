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

use std::time::Duration;

/// Parses `1.5`, `1.5s` or `500ms` as a duration: the `--interval`, `--window` and
/// `--warmup` flags of the `loopbench` and `connbench` binaries.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .map(|v| Duration::from_secs_f64(v * scale))
        .map_err(|e| e.to_string())
}
