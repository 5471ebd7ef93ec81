//! Process CPU time and resident size from `/proc/self` (Linux), plus the heap counter.

use std::time::Instant;

/// One sample of the process's state.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub wall: Instant,
    /// utime + stime, nanoseconds.
    pub cpu_ns: u64,
    /// utime, nanoseconds.
    pub user_ns: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Live heap bytes ([`crate::alloc::live_bytes`]).
    pub heap_bytes: u64,
}

impl Sample {
    /// Samples now. CPU and RSS read 0 where `/proc` is missing.
    pub fn now() -> Sample {
        let (user_ns, sys_ns) = cpu_times().unwrap_or((0, 0));
        Sample {
            wall: Instant::now(),
            cpu_ns: user_ns + sys_ns,
            user_ns,
            rss_bytes: rss().unwrap_or(0),
            heap_bytes: crate::alloc::live_bytes() as u64,
        }
    }
}

/// Clock ticks per second of `/proc/*/stat` times. 100 on every Linux this runs on
/// (`sysconf(_SC_CLK_TCK)`; the kernel's USER_HZ is fixed at 100 for the ABI).
const CLK_TCK: u64 = 100;
/// Page size of `/proc/*/statm` (x86-64 and aarch64 with 4 KiB pages).
const PAGE: u64 = 4096;

fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after its closing paren are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ns = 1_000_000_000 / CLK_TCK;
    Some((utime * ns, stime * ns))
}

fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_sample_reads_cpu_and_rss() {
        let s = Sample::now();
        assert!(s.rss_bytes > 0, "statm parsed");
        // Burn CPU until utime moves: its 10 ms ticks are coarse, and on a busy machine this
        // thread may get little of the wall-clock time, so wait on the condition itself, with
        // a generous deadline, rather than for a fixed time.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut x = 0u64;
        while Sample::now().cpu_ns <= s.cpu_ns {
            assert!(Instant::now() < deadline, "CPU time never moved");
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
        }
        std::hint::black_box(x);
    }
}
