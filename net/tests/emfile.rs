//! Real sockets: when `accept` fails with `EMFILE`, the acceptor backs off instead of spinning,
//! existing connections keep being served, and accepting resumes once descriptors free up.
//!
//! Run with: `cargo test -p wheelbeat-net --test emfile`.
//!
//! The descriptor limit is process-wide, so the test re-executes its own binary as a child
//! (selected by an environment variable and `--exact`), which lowers its soft limit and does
//! the work; the parent only checks the child's exit status and report.

mod common;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream as StdStream;
use std::ops::ControlFlow;
use std::process::Command;
use std::time::{Duration, Instant};

use common::WAIT;
use mio::{Events, Poll, Token};
use wheelbeat_net::{
    Acceptor, ConnTable, Connection, DEFAULT_READ_BUDGET, ListenConfig, ReadBuf, ReadStatus, bind,
};

const CHILD_ENV: &str = "WHEELBEAT_NET_EMFILE_CHILD";
const TEST_NAME: &str = "emfile_backs_off_without_spinning_and_keeps_serving";
const LISTENER: Token = Token(usize::MAX);
const BACKOFF: Duration = Duration::from_millis(50);
const EXISTING: usize = 20;

#[test]
fn emfile_backs_off_without_spinning_and_keeps_serving() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("emfile child: ok"),
        "child did not run\n{stdout}\n{stderr}"
    );
}

/// The server half: one loop turn at a time, so the test can interleave its client steps.
struct Server {
    poll: Poll,
    events: Events,
    acceptor: Acceptor,
    conns: ConnTable<Connection>,
    scratch: ReadBuf,
    wakeups: u64,
}

impl Server {
    /// One poll (at most `max_wait`, shorter if the acceptor wants to resume) and its work.
    fn turn(&mut self, max_wait: Duration) {
        let mut wait = max_wait;
        if let Some(t) = self.acceptor.resume_at() {
            wait = wait.min(t.saturating_duration_since(Instant::now()));
        }
        self.poll.poll(&mut self.events, Some(wait)).unwrap();
        self.wakeups += 1;
        let now = Instant::now();
        let mut tokens: Vec<Token> = self.events.iter().map(|e| e.token()).collect();
        if self.acceptor.resume_at().is_some_and(|t| t <= now) {
            tokens.push(LISTENER);
        }
        for token in tokens {
            if token == LISTENER {
                let registry = self.poll.registry();
                let conns = &mut self.conns;
                self.acceptor
                    .accept(registry, now, conns.len(), |s, _| {
                        let k = conns.insert(Connection::new(s));
                        conns
                            .get_mut(k)
                            .unwrap()
                            .sync_interest(registry, k.token())
                            .unwrap();
                    })
                    .unwrap();
                continue;
            }
            let Some(conn) = self.conns.get_mut(token) else {
                continue;
            };
            let status = conn
                .read_frames(&mut self.scratch, DEFAULT_READ_BUDGET, |f, out| {
                    out.send(f).unwrap();
                    ControlFlow::Continue(())
                })
                .unwrap();
            conn.flush().unwrap();
            conn.sync_interest(self.poll.registry(), token).unwrap();
            assert_ne!(status, ReadStatus::BudgetExhausted, "small test traffic");
            if status == ReadStatus::Closed {
                self.conns.remove(token);
            }
        }
    }

    /// Turns until `done`, bounded by `WAIT`.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.turn(Duration::from_millis(20));
        }
    }
}

/// Sends a line on `c` and drives the server until the echo is back.
fn echo(server: &mut Server, c: &mut StdStream, line: &str) {
    let wire = format!("{line}\n");
    c.write_all(wire.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    server.until("an echo", |_| {
        match c.read(&mut buf) {
            Ok(0) => panic!("server closed {line}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        got.len() >= wire.len()
    });
    assert_eq!(got, wire.as_bytes());
}

fn child() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(256, hard).unwrap();

    let config = ListenConfig::default().emfile_backoff(BACKOFF);
    let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = listener.local_addr().unwrap();
    let poll = Poll::new().unwrap();
    let mut acceptor = Acceptor::new(listener, LISTENER, config);
    acceptor.register(poll.registry()).unwrap();
    let mut server = Server {
        poll,
        events: Events::with_capacity(64),
        acceptor,
        conns: ConnTable::new(),
        scratch: ReadBuf::new(),
        wakeups: 0,
    };

    let connect = || {
        let c = StdStream::connect(addr).unwrap();
        c.set_nonblocking(true).unwrap();
        c
    };
    let mut clients: Vec<StdStream> = (0..EXISTING).map(|_| connect()).collect();
    server.until("the first connections", |s| s.conns.len() == EXISTING);
    for (i, c) in clients.iter_mut().enumerate() {
        echo(&mut server, c, &format!("before {i}"));
    }

    // Use up every descriptor, then free exactly one for a new client: its connection sits
    // in the backlog and the server's accept() can only fail with EMFILE.
    let mut fillers = Vec::new();
    let err = loop {
        match File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
    fillers.pop();
    let mut late = connect();

    // A quiet window of 300 ms: the loop must sleep between back-offs, not spin.
    let wakeups_before = server.wakeups;
    let window_end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < window_end {
        server.turn(window_end.saturating_duration_since(Instant::now()));
    }
    let wakeups = server.wakeups - wakeups_before;
    let backoffs = server.acceptor.backoffs();
    assert!(
        backoffs >= 2,
        "the acceptor should have retried and backed off again: {backoffs}"
    );
    // 300 ms / 50 ms back-off = 6 retries, each a wake-up or two; a spin would be thousands.
    assert!(
        wakeups <= 40,
        "{wakeups} wake-ups in 300 ms: the loop spins"
    );
    assert_eq!(server.conns.len(), EXISTING);

    // Existing connections are served while the listener is backed off.
    for (i, c) in clients.iter_mut().enumerate() {
        echo(&mut server, c, &format!("during {i}"));
    }

    // Descriptors come back: the acceptor resumes by itself and the waiting peer gets in.
    drop(fillers);
    server.until("the late connection", |s| s.conns.len() == EXISTING + 1);
    echo(&mut server, &mut late, "late");
    eprintln!("emfile child: ok, {wakeups} wake-ups and {backoffs} back-offs in the 300 ms window");
}
