//! The calling thread's CPU time, for event loops that must tell their own busy turns from a
//! pause of the process (stopped, frozen, not scheduled).
//!
//! # Ground rules
//! - Wall-clock time that passed while the thread used no CPU outside of `poll` is time the
//!   thread was not running; time spent computing is not a pause, however long.
//! - `None` where the platform has no per-thread CPU clock: the caller then cannot tell, and
//!   should say so rather than guess.

use std::time::Duration;

/// CPU time used by the calling thread so far (`CLOCK_THREAD_CPUTIME_ID`), or `None` where
/// unavailable.
pub fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec` owned by this frame for the whole
        // call, and `CLOCK_THREAD_CPUTIME_ID` is a clock id every supported Unix accepts;
        // clock_gettime writes only into `ts` and reports failure through its return value.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc != 0 {
            return None;
        }
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_not_with_sleep() {
        let Some(t0) = thread_cpu_time() else {
            return; // no per-thread CPU clock here
        };
        // Spin until the thread has used 5 ms of CPU: on a loaded machine that takes longer
        // than 5 ms of wall time, but it must happen (bounded at 5 s).
        let mut x = 0u64;
        let start = std::time::Instant::now();
        let mut t1 = t0;
        while t1 - t0 < Duration::from_millis(5) && start.elapsed() < Duration::from_secs(5) {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            t1 = thread_cpu_time().unwrap();
        }
        assert!(t1 - t0 >= Duration::from_millis(5), "spinning used no CPU");
        // Blocking in a read with a timeout uses (almost) no CPU.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        let t1 = thread_cpu_time().unwrap();
        let _ = sock.recv(&mut [0u8; 1]);
        let t2 = thread_cpu_time().unwrap();
        assert!(
            t2 - t1 < Duration::from_millis(10),
            "blocked 30 ms: {:?}",
            t2 - t1
        );
    }
}
