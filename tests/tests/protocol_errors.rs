//! Real sockets: a bad frame (invalid JSON, a non-object, an over-cap line)
//! gets `{"error":"<reason>"}` and closes that connection only; so does a ping
//! flood from a peer that never reads its pongs.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Seen, heartbeat, next_line, reporter, wait_until};
use wheelbeat_heartbeat::{CloseReason, Server};

/// A blocking client with a read timeout: waits are bounded, never sleeps.
fn client(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

/// Sends `bytes`, then reads everything until the server closes.
fn goodbye(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut c = client(addr);
    c.get_mut().write_all(bytes).unwrap();
    let mut all = String::new();
    while let Some(line) = next_line(&mut c) {
        all.push_str(&line);
    }
    all
}

fn ping_pong(c: &mut BufReader<TcpStream>, n: u64) {
    writeln!(c.get_mut(), "{{\"ping\":{n}}}").unwrap();
    // The server's own pings, if any, are skipped.
    let line = next_line(c).expect("closed");
    assert_eq!(line, format!("{{\"pong\":{n}}}\n"));
}

#[test]
fn bad_frames_close_only_their_own_connection() {
    let _ = env_logger::builder().is_test(true).try_init();
    let (h, rx) = reporter(true);
    let mut h = Some(h);
    // Long interval: this test is about frames, not heartbeats.
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(10_000, 5_000, 3))
        .max_frame_len(1024)
        .start(|_| h.take().unwrap())
        .unwrap();
    let addr = server.local_addr();

    let mut healthy = client(addr);
    ping_pong(&mut healthy, 1);

    assert_eq!(goodbye(addr, b"{nope}\n"), "{\"error\":\"invalid json\"}\n");
    ping_pong(&mut healthy, 2);
    assert_eq!(
        goodbye(addr, b"[1,2,3]\n"),
        "{\"error\":\"not a json object\"}\n"
    );
    ping_pong(&mut healthy, 3);
    // 4 KiB without a newline, over the 1 KiB cap.
    assert_eq!(
        goodbye(addr, &[b'a'; 4096]),
        "{\"error\":\"frame too long\"}\n"
    );
    ping_pong(&mut healthy, 4);
    // Invalid UTF-8 inside a string is invalid JSON too.
    assert_eq!(
        goodbye(addr, b"{\"a\":\"\xff\"}\n"),
        "{\"error\":\"invalid json\"}\n"
    );

    // Frames before the bad one were served; application data is echoed.
    let mut c = client(addr);
    c.get_mut()
        .write_all(b"{\"hello\":1}\n{\"ping\":9}\n")
        .unwrap();
    let mut lines = [next_line(&mut c), next_line(&mut c)].map(|l| l.expect("two lines"));
    // Heartbeats take the priority lane, so the pong may overtake the echo.
    lines.sort();
    assert_eq!(lines, ["{\"hello\":1}\n", "{\"pong\":9}\n"]);

    ping_pong(&mut healthy, 5);
    let handle = server.handle();
    assert!(wait_until(&rx, Duration::from_secs(5), || handle
        .stats()
        .protocol_errors
        == 4));
    let s = handle.stats();
    assert_eq!(s.closed.protocol_error, 4);
    assert_eq!(
        s.connections, 2,
        "the healthy client and the echo client remain"
    );
    let reasons: Vec<_> = rx
        .try_iter()
        .filter_map(|e| match e {
            Seen::Close(_, CloseReason::Protocol(r)) => Some(r.reason()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "invalid json",
            "not a json object",
            "frame too long",
            "invalid json"
        ]
    );
    server.shutdown();
}

/// A peer that floods pings and never reads its pongs: the pongs pile up in the
/// kernel buffers, then in the 4 KiB priority lane, and the server closes that
/// connection (`WriteOverflow`), nothing else. Memory stays bounded however
/// long the flood goes on. Since the ping-flood policy (issue 12) the flood is
/// usually refused first (`TooManyPings`, at the 513th ping of an interval):
/// either way, that connection alone is closed.
#[test]
fn a_ping_flood_that_never_reads_is_cut_off_alone() {
    let (h, rx) = reporter(false);
    let mut h = Some(h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(heartbeat(60_000, 5_000, 3))
        .start(|_| h.take().unwrap())
        .unwrap();
    let addr = server.local_addr();
    let mut healthy = client(addr);
    ping_pong(&mut healthy, 1);

    let mut flood = client(addr).into_inner();
    flood
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let batch: Vec<u8> = (0..1000)
        .flat_map(|n| format!("{{\"ping\":{n}}}\n").into_bytes())
        .collect();
    let mut sent = 0usize;
    // Until the server hangs up: a write fails (reset, broken pipe, or a
    // full window that stays full once the server stopped reading).
    while flood.write_all(&batch).is_ok() {
        sent += batch.len();
        assert!(sent < 512 << 20, "never cut off after {sent} bytes");
    }
    let handle = server.handle();
    assert!(wait_until(&rx, Duration::from_secs(5), || {
        let c = handle.stats().closed;
        c.write_overflow + c.too_many_pings == 1
    }));
    ping_pong(&mut healthy, 2);
    assert_eq!(handle.stats().connections, 1, "only the flood was closed");
    server.shutdown();
}
