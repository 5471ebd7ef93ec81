//! The examples over the other transports, run as the processes people run:
//! - `server --tls-cert FILE --tls-key FILE` serves TLS on `--listen` (stdout still exactly
//!   `listening on IP:PORT`, what it serves on stderr), and `load --tls --tls-ca FILE` holds
//!   its connections against it with no dead peer;
//! - `server --listen-unix PATH` and `load --connect-unix PATH` do the same over a Unix
//!   socket;
//! - `demo --tls` (its own throwaway certificate) passes at a small size.
//!
//! Certificates are made here with `rcgen` and written to a temporary directory. Every wait
//! is bounded: output is read on a thread and received with a deadline, and a process that
//! overstays is killed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Generous bound on any one wait; a healthy run is far inside it.
const WAIT: Duration = Duration::from_secs(60);

/// The path of an example built for this package by `cargo test`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the profile directory");
    dir.join("examples").join(name)
}

/// A running example; its stdout (or stderr) lines arrive on channels.
struct Running {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Running { child, out, err }
    }

    /// Every stdout line until it closes, then the exit status.
    fn finish(mut self) -> (Vec<String>, ExitStatus) {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        while let Ok(line) = self
            .out
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(line);
        }
        let status = self.child.wait().expect("wait for the example");
        (out, status)
    }

    /// The first stderr line that contains `what`.
    fn stderr_line(&self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .err
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no stderr line with {what:?}: {e}"));
            if line.contains(what) {
                return line;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("wheelbeat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, f: &str) -> String {
        self.0.join(f).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `server` with `args` and returns it with the address its stdout printed.
fn start_server(args: &[&str]) -> (Running, String) {
    let server = Running::start("server", args);
    let first = server
        .out
        .recv_timeout(WAIT)
        .expect("server exited before listening");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line is {first:?}, not `listening on ...`"))
        .to_string();
    (server, addr)
}

/// Runs `load` with `args` for 2 s with 50 connections and checks its `done:` line.
fn load_holds_its_connections(args: &[&str]) {
    let mut all = vec!["--conns", "50", "--duration", "2s", "--interval", "200ms"];
    all.extend_from_slice(args);
    let (out, status) = Running::start("load", &all).finish();
    assert!(status.success(), "load: {status}; output: {out:?}");
    let done = out
        .iter()
        .find_map(|l| l.strip_prefix("done: "))
        .unwrap_or_else(|| panic!("no `done:` line in {out:?}"));
    assert!(done.starts_with("50 connected,"), "{done}");
    assert!(done.contains(" 0 dead,"), "{done}");
    assert!(!done.starts_with("50 connected, 0 pings"), "{done}");
}

fn write_cert(dir: &TempDir) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn server_and_load_over_tls_say_so_and_hold_their_connections() {
    let dir = TempDir::new("examples-tls");
    let (cert, key) = write_cert(&dir);
    let (server, addr) = start_server(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--interval",
        "200ms",
    ]);
    let said = server.stderr_line("serving heartbeats on");
    assert!(said.contains("over TLS"), "{said}");
    let _: std::net::SocketAddr = addr.parse().expect("IP:PORT on stdout");
    load_holds_its_connections(&["--connect", &addr, "--tls", "--tls-ca", &cert]);
    // A client that does not trust the certificate never gets through.
    let other = TempDir::new("examples-tls-other");
    let (wrong_ca, _) = write_cert(&other);
    let args = [
        "--connect",
        &addr,
        "--conns",
        "1",
        "--duration",
        "1s",
        "--tls",
        "--tls-ca",
        &wrong_ca,
    ];
    let (out, status) = Running::start("load", &args).finish();
    assert!(status.success(), "{out:?}");
    assert!(
        out.iter().any(|l| l.starts_with("done: 0 connected,")),
        "{out:?}"
    );
}

#[test]
fn server_and_load_over_a_unix_socket() {
    let dir = TempDir::new("examples-unix");
    let path = dir.path("wb.sock");
    let (_server, addr) = start_server(&["--listen-unix", &path, "--interval", "200ms"]);
    assert_eq!(addr, format!("unix:{path}"));
    assert!(Path::new(&path).exists());
    load_holds_its_connections(&["--connect-unix", &path]);
}

#[test]
fn demo_passes_over_tls_at_a_small_size() {
    let args = ["--tls", "--conns", "200", "--warmup", "1s", "--tail", "1s"];
    let (out, status) = Running::start("demo", &args).finish();
    assert!(
        out.first().is_some_and(|l| l.contains("over TLS")),
        "{out:?}"
    );
    assert!(
        status.success(),
        "demo --tls: {status}; output:\n{}",
        out.join("\n")
    );
}
