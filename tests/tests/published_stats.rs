//! Real sockets: the statistics a scraper reads without a round trip
//! ([`Handle::published_stats`]) follow the loops within the publication interval, even when
//! a burst of activity ends and the loop has nothing else to wake up for.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{heartbeat, next_line};
use wheelbeat_heartbeat::Server;
use wheelbeat_heartbeat::shell::handle::PUBLISH_EVERY;

/// Waits (bounded) until `cond` holds on a fresh published snapshot; returns how long it took.
fn published_within(server: &Server, within: Duration, cond: impl Fn(u64) -> bool) -> Duration {
    let start = Instant::now();
    let handle = server.handle();
    while !cond(handle.published_stats().pings_received) {
        assert!(
            start.elapsed() < within,
            "published stats stuck at {:?}",
            handle.published_stats()
        );
        std::thread::yield_now();
    }
    start.elapsed()
}

/// Guards the loop's last publication of a burst: a turn that falls within
/// [`PUBLISH_EVERY`] of the previous publication skips publishing, and must then ask for a
/// wake-up at the end of the interval. Without it the second ping below would stay
/// unpublished until the next heartbeat timer, a minute away.
#[test]
fn the_last_turn_of_a_burst_is_published_within_the_interval() {
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        // Nothing else wakes the loop for a minute.
        .heartbeat(heartbeat(60_000, 10_000, 3))
        .start(|_| ())
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    // Two pings in two turns, close together: the second is inside the first's interval.
    c.write_all(b"{\"ping\":1}\n").unwrap();
    assert_eq!(next_line(&mut r).unwrap(), "{\"pong\":1}\n");
    c.write_all(b"{\"ping\":2}\n").unwrap();
    assert_eq!(next_line(&mut r).unwrap(), "{\"pong\":2}\n");
    let took = published_within(&server, Duration::from_secs(3), |n| n == 2);
    assert!(
        took <= PUBLISH_EVERY + Duration::from_millis(500),
        "published after {took:?}"
    );
    // And the round-trip statistics agree.
    assert_eq!(server.stats().pings_received, 2);
    server.shutdown();
}
