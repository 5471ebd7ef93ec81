//! Timelines of the read before a verdict ([`Endpoint::set_read_before_verdict`]): the
//! endpoint asks the driver to read a peer's socket before convicting it, and takes the
//! verdict at its next `handle_timeout` call (the driver's, right after the read) with what
//! the read found.

use super::*;

fn read_first_server() -> Timeline {
    let mut tl = Timeline::server();
    tl.ep.set_read_before_verdict(true);
    tl
}

/// Two silent peers reach their verdict at 2 s. The endpoint asks for both sockets to be
/// read and convicts nobody yet; the driver finds `a`'s pong there. At the call after the
/// read, still at 2 s, `b` is convicted and `a` lives on.
#[test]
fn a_peer_about_to_be_convicted_is_read_first_and_its_answer_found_there_saves_it() {
    let mut tl = read_first_server();
    let a = tl.accept(0);
    let b = tl.accept(0);
    assert_eq!(
        tl.run_until(tl.at(1500)),
        [
            tx(a, r#"{"ping":1}"#),
            tx(b, r#"{"ping":1}"#),
            tx(a, r#"{"ping":2}"#),
            tx(b, r#"{"ping":2}"#),
        ]
    );
    assert_eq!(tl.rec.take(), [Heard::Missed(a, 1), Heard::Missed(b, 1)]);
    let (when, out) = tl.next_outputs(tl.at(3000));
    assert_eq!(when, tl.at(2000), "the verdict's due time");
    assert_eq!(out, [Out::ReadFirst(a), Out::ReadFirst(b)]);
    assert_eq!(tl.rec.take(), [], "no miss counted, nobody convicted yet");
    assert_eq!(tl.ep.stats().closed.missed_pings, 0);
    // The driver's read of `a` finds the pong; `b`'s finds nothing.
    assert!(tl.frame(2000, a, r#"{"pong":2}"#).is_continue());
    assert_eq!(
        tl.ep.poll_timeout(tl.at(2000)),
        Some(tl.at(2000)),
        "call again now"
    );
    let (when, out) = tl.next_outputs(tl.at(3000));
    assert_eq!(when, tl.at(2000), "final at the call after the read");
    assert_eq!(out, [Out::Close(b, false)]);
    let dead = DeadReason::MissedPings { missed: 2 };
    assert_eq!(
        tl.rec.take(),
        [
            Heard::Missed(b, 2),
            Heard::Dead(b, dead),
            Heard::Close(b, CloseReason::Dead(dead))
        ]
    );
    assert!(tl.ep.is_open(a));
    // `a` starts a new cycle from its pong: its next ping a second later.
    assert_eq!(tl.run_until(tl.at(2999)), []);
    assert_eq!(tl.run_until(tl.at(3000)), [tx(a, r#"{"ping":3}"#)]);
}

/// The driver's read was cut short (its budget spent before the peer's last bytes): the
/// peer is marked unread, and the verdict waits until the rest is read. Read and still
/// silent, it is convicted then, without asking again.
#[test]
fn a_read_first_cut_short_holds_the_verdict_until_the_rest_is_read() {
    let mut tl = read_first_server();
    let a = tl.accept(0);
    tl.run_until(tl.at(1500));
    tl.rec.take();
    let (_, out) = tl.next_outputs(tl.at(3000));
    assert_eq!(out, [Out::ReadFirst(a)]);
    // The read stopped with bytes left (its budget spent on data that does not count as
    // life): carried over, unread.
    tl.ep.set_unread(a, true);
    assert_eq!(
        tl.run_until(tl.at(2100)),
        [],
        "held while bytes wait unread"
    );
    assert!(tl.ep.is_open(a));
    // Next turn reads the rest: nothing that counts. The verdict is final at the next tick.
    tl.ep.set_unread(a, false);
    let (when, out) = tl.next_outputs(tl.at(3000));
    assert_eq!(when, tl.at(2110));
    assert_eq!(out, [Out::Close(a, false)]);
}

/// A passive peer (its window is the verdict) is read first as well.
#[test]
fn a_passive_peer_is_read_before_its_window_convicts_it() {
    let mut opts = options();
    opts.format = Arc::new(MiniMqtt);
    let mut tl = Timeline::with(opts, Vec::new());
    tl.ep.set_read_before_verdict(true);
    let a = tl.accept(0);
    let b = tl.accept(0);
    let (when, out) = tl.next_outputs(tl.at(10_000));
    assert_eq!(out, [Out::ReadFirst(a), Out::ReadFirst(b)]);
    // The driver's read of `a` finds a PINGREQ (answered).
    assert!(tl.ep.handle_frame(when, a, &[0xC0, 0x00]).is_continue());
    assert_eq!(tl.outputs().len(), 1, "the PINGRESP");
    let (later, out) = tl.next_outputs(tl.at(10_000));
    assert_eq!(later, when, "final at the call after the read");
    assert_eq!(out, [Out::Close(b, false)]);
    assert!(tl.ep.is_open(a));
}
