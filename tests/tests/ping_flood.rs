//! Real sockets: the ping-flood policy. A client that writes 100,000 pings as fast as it can,
//! reading its pongs, is answered until its second strike, then gets
//! `{"error":"too many pings"}` and is closed (`CloseReason::TooManyPings`), while 100 healthy
//! peers on the same loop keep heartbeating with RTTs and nobody else is closed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::{Seen, heartbeat, reporter, wait_until};
use wheelbeat_heartbeat::{CloseReason, Pool, Server};

#[test]
fn a_ping_flood_is_cut_with_the_error_frame_while_healthy_peers_keep_their_rtt() {
    let _ = env_logger::builder().is_test(true).try_init();
    let config = heartbeat(200, 200, 3); // defaults for the policy: 256 per cycle, 2 strikes
    let (server_h, server_rx) = reporter(false);
    let mut server_h = Some(server_h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(config.clone())
        .start(|_| server_h.take().unwrap())
        .unwrap();
    let (client_h, _client_rx) = reporter(false);
    let healthy = 100;
    let pool = Pool::builder()
        .connect(server.local_addr(), healthy)
        .heartbeat(config)
        .start(move |_| client_h.clone())
        .unwrap();
    let stats = server.handle();
    assert!(
        wait_until(&server_rx, Duration::from_secs(10), || stats
            .stats()
            .connections
            == healthy as u64),
        "the healthy peers connect"
    );

    // The flooder: one thread writes, this one reads until the server closes.
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let flood = thread::spawn(move || {
        let mut batch = Vec::new();
        let mut written = 0u64;
        for chunk in 0..100 {
            batch.clear();
            for i in 0..1_000u64 {
                batch.extend_from_slice(format!("{{\"ping\":{}}}\n", chunk * 1_000 + i).as_bytes());
            }
            if writer.write_all(&batch).is_err() {
                break; // closed by the server: the point of the test
            }
            written += 1_000;
        }
        written
    });
    let mut reader = BufReader::new(stream);
    let (mut pongs, mut error) = (0u64, None);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.starts_with("{\"pong\":") => pongs += 1,
            Ok(_) if line.starts_with("{\"error\":") => error = Some(line),
            Ok(_) => {} // the server's own pings
        }
    }
    let written = flood.join().unwrap();
    assert_eq!(error.as_deref(), Some("{\"error\":\"too many pings\"}\n"));
    // 256 answered, the 257th is strike 1 (answered, the count starts over), 256 more, the
    // next is strike 2: refused.
    assert!(
        (256..=2 * 256 + 1).contains(&pongs),
        "answered until the second strike: {pongs} pongs for {written} pings written"
    );
    assert!(
        wait_until(&server_rx, Duration::from_secs(5), || stats
            .stats()
            .closed
            .too_many_pings
            == 1),
        "counted as its own close reason"
    );

    // The healthy peers kept heartbeating, with RTTs, and none was closed.
    let before = stats.stats().pongs_received;
    assert!(wait_until(&server_rx, Duration::from_secs(5), || stats
        .stats()
        .pongs_received
        >= before + 2 * healthy as u64));
    let s = stats.stats();
    assert_eq!(s.connections, healthy as u64);
    assert_eq!(s.closed.missed_pings, 0);
    assert!(s.rtt().count >= healthy as u64, "{:?}", s.rtt());
    // Nobody else was closed, for any reason (the waits above consumed the callbacks, so the
    // counters say it).
    let c = s.closed;
    assert_eq!(c.too_many_pings, 1);
    assert_eq!(
        (
            c.peer_closed,
            c.protocol_error,
            c.write_overflow,
            c.io_error,
            c.memory_budget
        ),
        (0, 0, 0, 0, 0),
        "{c:?}"
    );
    let late: Vec<CloseReason> = server_rx
        .try_iter()
        .filter_map(|e| match e {
            Seen::Close(_, r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(late.is_empty(), "{late:?}");
    drop(pool);
    server.shutdown();
}
