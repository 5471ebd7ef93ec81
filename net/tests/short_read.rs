//! Real sockets: the short-read stop (Linux). Once events are reported with
//! `Connection::on_event`, a read that leaves room in the buffer ends `read_frames` without
//! the `read` that would return `WouldBlock`. These tests guard what that must not break:
//! later data still raises an event, and a FIN that arrived with the data is still seen.
//!
//! Run with: `cargo test -p wheelbeat-net --test short_read`.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::ops::ControlFlow;
use std::time::Instant;

use common::WAIT;
use mio::{Events, Poll, Token};
use wheelbeat_net::{Connection, ReadBuf, ReadStatus};

const CONN: Token = Token(1);

/// Waits (bounded by `WAIT`) for the next event on `CONN`, reports it to the connection, and
/// reads if it was readable. Returns the frames and the status, or `None` if no event came.
fn next_event_read(
    poll: &mut Poll,
    conn: &mut Connection,
    scratch: &mut ReadBuf,
) -> Option<(Vec<Vec<u8>>, ReadStatus)> {
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        poll.poll(&mut events, Some(left)).unwrap();
        for ev in events.iter().filter(|e| e.token() == CONN) {
            conn.on_event(ev);
            if ev.is_readable() || ev.is_read_closed() {
                let mut frames = Vec::new();
                let status = conn
                    .read_frames(scratch, 1 << 16, |f, _| {
                        frames.push(f.to_vec());
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                return Some((frames, status));
            }
        }
    }
}

/// Guards the premise of the short-read stop: after a read that did not fill the buffer, a
/// later write raises a new edge, so nothing is stranded, including the rest of a frame.
#[test]
fn data_after_a_short_read_still_raises_an_event() {
    let mut poll = Poll::new().unwrap();
    let (mut client, mut conn) = common::pair(&mut poll);
    conn.sync_interest(poll.registry(), CONN).unwrap();
    let mut scratch = ReadBuf::new();

    client.write_all(b"a\n").unwrap();
    let (frames, status) = next_event_read(&mut poll, &mut conn, &mut scratch).expect("first");
    assert_eq!(frames, vec![b"a".to_vec()]);
    assert_eq!(status, ReadStatus::Drained);

    // Several rounds, one frame split across two writes: each part needs its own edge.
    for i in 0..20 {
        client.write_all(format!("par{i}").as_bytes()).unwrap();
        let (frames, status) =
            next_event_read(&mut poll, &mut conn, &mut scratch).expect("no event for a head");
        assert!(frames.is_empty(), "{frames:?}");
        assert_eq!(status, ReadStatus::Drained);
        client.write_all(b"tial\n").unwrap();
        let (frames, status) =
            next_event_read(&mut poll, &mut conn, &mut scratch).expect("no event for a tail");
        assert_eq!(frames, vec![format!("par{i}tial").into_bytes()]);
        assert_eq!(status, ReadStatus::Drained);
    }
    assert!(!conn.is_read_closed());

    // And the FIN that comes later, on its own, is its own edge.
    client.shutdown(Shutdown::Write).unwrap();
    let (frames, status) = next_event_read(&mut poll, &mut conn, &mut scratch).expect("fin");
    assert!(frames.is_empty());
    assert_eq!(status, ReadStatus::Closed);
    assert!(conn.is_read_closed());
}

/// Guards the read-closed flag: data and FIN that arrive together raise ONE edge. A short
/// read returns the data but not the EOF, so if the connection stopped there (ignoring that
/// the event said read-closed) no further event would ever come and the close would be lost.
#[test]
fn data_and_fin_in_one_edge_deliver_the_data_and_the_close() {
    let mut poll = Poll::new().unwrap();
    let (mut client, mut conn) = common::pair(&mut poll);
    // Both the data and the FIN are queued before the socket is even registered, so the
    // first (registration) event covers both.
    client.write_all(b"x\ny\n").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    conn.sync_interest(poll.registry(), CONN).unwrap();
    let mut scratch = ReadBuf::new();

    let mut got = Vec::new();
    loop {
        let Some((frames, status)) = next_event_read(&mut poll, &mut conn, &mut scratch) else {
            panic!("the close was never seen; frames so far: {got:?}");
        };
        got.extend(frames);
        if status == ReadStatus::Closed {
            break;
        }
    }
    assert_eq!(got, vec![b"x".to_vec(), b"y".to_vec()]);
    assert!(conn.is_read_closed());
}

/// Guards `drive_event`: a writable-only event makes no read (the saved syscall), and data
/// that arrived meanwhile is still read when its own readable event comes.
#[test]
fn writable_only_event_does_not_read_and_loses_nothing() {
    let mut poll = Poll::new().unwrap();
    let (mut client, mut conn) = common::pair(&mut poll);
    conn.send(b"hi").unwrap();
    conn.sync_interest(poll.registry(), CONN).unwrap(); // readable + writable
    let mut scratch = ReadBuf::new();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut sent = false;
    while frames.is_empty() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("data never delivered");
        poll.poll(&mut events, Some(left)).unwrap();
        for ev in events.iter().filter(|e| e.token() == CONN) {
            let writable_only = !ev.is_readable() && !ev.is_read_closed();
            if writable_only && !sent {
                // Data is in the server's receive queue before the (writable) event is handled:
                // `drive` would read it now; `drive_event` must not.
                client.write_all(b"a\n").unwrap();
                sent = true;
            }
            let status = conn
                .drive_event(poll.registry(), CONN, ev, &mut scratch, 1 << 16, |f, _| {
                    frames.push(f.to_vec());
                    ControlFlow::Continue(())
                })
                .unwrap();
            if writable_only {
                assert!(frames.is_empty(), "a writable-only event read {frames:?}");
                assert_eq!(status, ReadStatus::Drained);
            }
        }
    }
    assert!(sent, "no writable-only event was seen");
    assert_eq!(frames, vec![b"a".to_vec()]);
    assert_eq!(common::read_n(&mut client, 3), b"hi\n");
}
