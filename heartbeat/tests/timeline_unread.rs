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

/// With the read before a verdict on, the miss that would convict is held behind an
/// `Action::ReadFirst`: an answer the driver finds in the socket then (its readiness event not
/// seen) keeps the peer alive; a peer with nothing there is convicted at the next call, at
/// the same time.
#[test]
fn a_verdict_waits_for_the_read_it_asked_for() {
    use wheelbeat_heartbeat::monitor::Action;

    let mut h = Timeline::new(config());
    h.m.set_read_before_verdict(true);
    let answers = h.add(0, 1);
    let silent = h.add(0, 2);
    h.run_to(49_990);
    assert_eq!(h.misses(1), vec![(40_000, 1)]);
    // The verdicts fall due at 50 s (called directly: the harness's prompt loop would call
    // again before the read).
    h.stall_until(50_000);
    let mut asked: Vec<_> = h
        .actions
        .iter()
        .filter_map(|(t, a)| match a {
            Action::ReadFirst { conn, .. } => Some((*t, *conn)),
            _ => None,
        })
        .collect();
    asked.sort();
    assert_eq!(asked, [(50_000, 1), (50_000, 2)]);
    assert_eq!((h.dead(1), h.dead(2)), (None, None), "held, not convicted");
    assert_eq!(h.misses(2).len(), 1, "the convicting miss not counted yet");
    assert_eq!(
        h.m.poll_timeout(),
        Some(h.at(50_000)),
        "call again after the read"
    );
    // The driver's read of peer 1 finds its pong; then it calls again.
    h.deliver(50_000, answers, Message::Pong(2));
    h.stall_until(50_000);
    let (dead_at, _) = h.dead(2).expect("convicted");
    assert_eq!(dead_at, 50_000, "at the call after the read");
    assert!(!h.m.contains(silent));
    // (Peer 1's next cycle's verdict would be due at 100 s.)
    h.run_to(99_000);
    assert_eq!(h.dead(1), None, "its answer was in the socket");
    assert_eq!(h.m.stats().read_first, 2);
}
