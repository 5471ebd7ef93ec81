//! Timeline tests of unread input: a peer whose bytes wait unread in the driver's socket is
//! never judged before they are read (issue 8: "never convict a peer whose answer is unread in
//! its socket").

use std::time::Duration;

use wheelbeat_heartbeat::monitor::Config;
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_heartbeat::sim::Timeline;

fn config() -> Config {
    Config {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        max_missed: 2,
        jitter: 0.0,
        tick: Duration::from_millis(10),
        ..Config::default()
    }
}

#[test]
fn an_answer_waiting_unread_in_the_socket_is_read_before_the_verdict() {
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    h.run_to(40_000);
    assert_eq!(h.misses(1), vec![(40_000, 1)]);
    // The pong arrives at 45 s, but the loop is busy and reads it only at 52 s; the verdict
    // was due at 50 s.
    h.m.set_unread(p, true);
    h.run_to(51_990);
    assert_eq!(
        h.misses(1).len(),
        1,
        "no verdict while the answer is unread"
    );
    assert_eq!(h.dead(1), None);
    assert!(h.m.stats().deferred > 0);
    h.m.set_unread(p, false);
    h.recv(52_000, p, Message::Pong(2));
    h.run_to(100_000);
    assert_eq!(h.dead(1), None, "the answer, once read, keeps it alive");
}

#[test]
fn a_silent_peer_with_nothing_unread_is_convicted_on_its_grid() {
    let mut h = Timeline::new(config());
    let p = h.add(0, 1);
    h.m.set_unread(p, true);
    h.run_to(45_000);
    // Read at 45 s: it was not an answer (say a partial frame); nothing is unread any more.
    h.m.set_unread(p, false);
    h.run_to(60_000);
    // The miss due at 40 s is judged one tick after the read, and the last ping then gets its
    // full answer window: convicted within read time + timeout + one tick.
    assert_eq!(
        h.misses(1)[0].0,
        45_010,
        "the deferred miss one tick after the read"
    );
    let (dead_at, _) = h.dead(1).expect("convicted");
    assert!(dead_at <= 45_000 + 10_000 + 10, "{dead_at}");
}
