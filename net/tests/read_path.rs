//! Real sockets: the read path's budget and stop semantics, which an edge-triggered loop
//! depends on.
//!
//! Run with: `cargo test -p wheelbeat-net --test read_path`.

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use common::WAIT;
use mio::{Events, Poll, Token};
use wheelbeat_net::{Connection, ReadBuf, ReadStatus};

/// Reads with `budget` until `n` frames arrived, counting `BudgetExhausted` results. Waits on
/// readable events only after `Drained`, as an edge-triggered loop must.
fn read_all(
    poll: &mut Poll,
    conn: &mut Connection,
    budget: usize,
    n: usize,
) -> (Vec<Vec<u8>>, usize) {
    conn.sync_interest(poll.registry(), Token(1)).unwrap();
    let mut scratch = ReadBuf::new();
    let mut frames = Vec::new();
    let mut exhausted = 0;
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + WAIT;
    while frames.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} frames",
            frames.len()
        );
        let status = conn
            .read_frames(&mut scratch, budget, |f, _| {
                frames.push(f.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
        match status {
            ReadStatus::BudgetExhausted => exhausted += 1,
            ReadStatus::Drained => {
                if frames.len() < n {
                    poll.poll(&mut events, Some(Duration::from_millis(100)))
                        .unwrap();
                }
            }
            other => panic!("{other:?}"),
        }
    }
    (frames, exhausted)
}

#[test]
fn read_budget_yields_and_resumes_without_losing_frames() {
    let mut poll = Poll::new().unwrap();
    let (mut client, mut conn) = common::pair(&mut poll);
    let lines: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("frame {i}").into_bytes())
        .collect();
    let mut wire = Vec::new();
    for l in &lines {
        wire.extend_from_slice(l);
        wire.push(b'\n');
    }
    // ~230 KB: fits the loopback socket buffers, so the client can write it all up front.
    let writer = std::thread::spawn(move || client.write_all(&wire).map(|_| client));
    let (frames, exhausted) = read_all(&mut poll, &mut conn, 16 * 1024, lines.len());
    let _client = writer.join().unwrap().unwrap();
    assert_eq!(frames, lines);
    assert!(
        exhausted >= 3,
        "a 16 KiB budget should have yielded, got {exhausted}"
    );
    assert_eq!(conn.partial_len(), 0);
    assert_eq!(conn.heap_bytes(), 0, "no heap between frames");
}

#[test]
fn stopped_read_keeps_the_rest_for_the_next_call_without_an_event() {
    let mut poll = Poll::new().unwrap();
    let (mut client, mut conn) = common::pair(&mut poll);
    client.write_all(b"one\ntwo\nthree\npart").unwrap();
    conn.sync_interest(poll.registry(), Token(1)).unwrap();
    let mut scratch = ReadBuf::new();
    let mut events = Events::with_capacity(8);
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    // Stop after the first frame.
    loop {
        assert!(Instant::now() < deadline);
        let status = conn
            .read_frames(&mut scratch, 1 << 16, |f, _| {
                got.push(f.to_vec());
                ControlFlow::Break(())
            })
            .unwrap();
        if status == ReadStatus::Stopped {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
    }
    assert_eq!(got, [b"one".to_vec()]);
    // The rest is delivered by the next call, before any read: no event needed.
    let status = conn
        .read_frames(&mut scratch, 1 << 16, |f, _| {
            got.push(f.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(status, ReadStatus::Drained);
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    assert_eq!(conn.partial_len(), 4, "\"part\" waits for its newline");
    // Replies queued from inside the callback go out with the next flush.
    client.write_all(b"ial\n").unwrap();
    let mut done = false;
    while !done {
        assert!(Instant::now() < deadline);
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        conn.read_frames(&mut scratch, 1 << 16, |f, out| {
            assert_eq!(f, b"partial");
            out.send(b"ack").unwrap();
            done = true;
            ControlFlow::Continue(())
        })
        .unwrap();
    }
    conn.flush().unwrap();
    assert_eq!(common::read_n(&mut client, 4), b"ack\n");
}
