//! The parent ↔ child line protocol, both ends.
//!
//! # Ground rules
//!
//! - The child prints exactly one line `addr <socket address>` once it listens, then, for every
//!   line `sample` read from its stdin, one [`Sample`] as a JSON line. When its stdin closes
//!   (the parent is done, or died) it exits; so a child never outlives its parent's interest.
//! - The child's stderr is inherited: a child's error shows up in the parent's terminal.
//! - The parent bounds every wait on the child ([`Child::sample`] is answered within the
//!   child's next read of a line; a child that died gives an error, not a hang).

use crate::loopbench::proc;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

/// One sample of a server process.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Sample {
    /// utime + stime of the whole process, nanoseconds.
    pub cpu_ns: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Live heap bytes (counting allocator).
    pub heap_bytes: u64,
}

impl Sample {
    /// Samples this process now. CPU comes from the process CPU clock, to the nanosecond
    /// (`/proc`'s utime and stime move in 10 ms ticks, too coarse for a few seconds' window);
    /// it falls back to `/proc` if the clock is unavailable.
    pub fn now() -> Sample {
        let s = proc::Sample::now();
        Sample {
            cpu_ns: process_cpu_ns().unwrap_or(s.cpu_ns),
            rss_bytes: s.rss_bytes,
            heap_bytes: s.heap_bytes,
        }
    }
}

/// User + system CPU time of all threads of this process (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call, which is all
    // `clock_gettime` requires; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Child side: announces `addr`, then answers `sample` lines until stdin closes.
pub fn serve(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "addr {addr}")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        match line?.trim() {
            "sample" => {
                let json = serde_json::to_string(&Sample::now()).map_err(io::Error::other)?;
                writeln!(out, "{json}")?;
                out.flush()?;
            }
            "" => {}
            other => eprintln!("connbench child: unknown command {other:?}"),
        }
    }
    Ok(())
}

/// Parent side: a running child server.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Child {
    /// Starts `command` (stdin and stdout piped) and reads its address line.
    pub fn spawn(mut command: Command) -> io::Result<Child> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("addr ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("child said {line:?}, not its address")))?;
        Ok(Child {
            child,
            stdin,
            stdout,
            addr,
        })
    }

    /// The address the child listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks the child for a sample of itself.
    pub fn sample(&mut self) -> io::Result<Sample> {
        let stdin = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        stdin.write_all(b"sample\n")?;
        stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("child exited"));
        }
        serde_json::from_str(line.trim()).map_err(|e| io::Error::other(format!("{e}: {line}")))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Closing stdin is the child's signal to exit; kill it if it does not within a bound.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent side against a stand-in child (a shell script): the address line is read,
    /// a sample request is answered, and a child that exits gives an error, not a hang.
    #[test]
    fn child_protocol_reads_address_then_samples_then_sees_the_exit() {
        let script = r#"echo "addr 127.0.0.1:9"; read line; [ "$line" = sample ] && echo '{"cpu_ns":1,"rss_bytes":2,"heap_bytes":3}'"#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let mut child = Child::spawn(cmd).expect("the stand-in starts");
        assert_eq!(child.addr(), "127.0.0.1:9".parse().unwrap());
        let s = child.sample().expect("a sample");
        assert_eq!((s.cpu_ns, s.rss_bytes, s.heap_bytes), (1, 2, 3));
        // The script has exited: the next request fails instead of waiting forever.
        assert!(child.sample().is_err());
    }

    #[test]
    fn child_that_does_not_announce_an_address_is_an_error() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo hello"]);
        assert!(Child::spawn(cmd).is_err());
    }

    #[test]
    fn process_cpu_clock_moves_with_work_at_sub_tick_resolution() {
        let before = Sample::now().cpu_ns;
        // 2 ms of work: well under /proc's 10 ms tick, so only a fine clock sees it.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(2) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let spent = Sample::now().cpu_ns - before;
        assert!(spent >= 1_000_000, "only {spent} ns of CPU seen");
    }
}
