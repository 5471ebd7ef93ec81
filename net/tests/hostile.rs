//! Real sockets: hostile input closes only the offending connection, after a bounded number of
//! bytes, while the others keep being served.
//!
//! Run with: `cargo test -p wheelbeat-net --test hostile`.

mod common;

use std::io::Write;

use common::{EchoServer, client, is_closed_by_server, read_n, round_trip};
use wheelbeat_net::{LengthCodec, LineCodec, ListenConfig};

#[test]
fn endless_line_closes_only_that_connection() {
    let server = EchoServer::start(ListenConfig::default(), LineCodec::new);
    let mut good = client(server.addr);
    round_trip(&mut good, b"hello");
    let mut bad = client(server.addr);
    // 64 KiB + 2 bytes is the most the server holds; send more, with no newline, in pieces.
    let junk = vec![b'x'; 8 * 1024];
    for _ in 0..9 {
        if bad.write_all(&junk).is_err() {
            break; // already closed on us: fine
        }
    }
    assert!(is_closed_by_server(&mut bad));
    round_trip(&mut good, b"still served");
    drop(good);
    let stats = server.stop();
    assert_eq!(stats.errors, 1);
}

#[test]
fn four_gib_length_prefix_closes_the_connection_at_once() {
    let server = EchoServer::start(ListenConfig::default(), LengthCodec::new);
    let mut good = client(server.addr);
    let mut bad = client(server.addr);
    bad.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(is_closed_by_server(&mut bad));
    good.write_all(&[0, 0, 0, 2, b'o', b'k']).unwrap();
    assert_eq!(read_n(&mut good, 6), [0, 0, 0, 2, b'o', b'k']);
    drop(good);
    assert_eq!(server.stop().errors, 1);
}

#[test]
fn byte_at_a_time_delivery_reassembles_frames() {
    let server = EchoServer::start(ListenConfig::default(), LineCodec::new);
    let mut c = client(server.addr);
    let mut wire = b"{\"ping\":10}\r\n".to_vec();
    wire.extend(std::iter::repeat_n(b'y', 3000));
    wire.push(b'\n');
    for b in &wire {
        c.write_all(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(read_n(&mut c, 12), b"{\"ping\":10}\n");
    let long = read_n(&mut c, 3001);
    assert!(long[..3000].iter().all(|&b| b == b'y') && long[3000] == b'\n');
    drop(c);
    assert_eq!(server.stop().errors, 0);
}

#[test]
fn invalid_utf8_is_passed_through_as_bytes() {
    let server = EchoServer::start(ListenConfig::default(), LineCodec::new);
    let mut c = client(server.addr);
    round_trip(&mut c, b"\xff\xfe\xc3\x28 not utf-8");
    drop(c);
    server.stop();
}

#[test]
fn peer_closing_mid_frame_is_reported_not_delivered() {
    let server = EchoServer::start(ListenConfig::default(), LineCodec::new);
    let mut c = client(server.addr);
    round_trip(&mut c, b"whole");
    c.write_all(b"half a fra").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(is_closed_by_server(&mut c));
    let stats = server.stop();
    assert_eq!(stats.frames, 1, "the partial frame is not delivered");
    assert_eq!(stats.errors, 1, "truncated frame");
}
