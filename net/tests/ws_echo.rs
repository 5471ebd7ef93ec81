//! Real sockets: the `ws` module's client and the `ws_echo` example's server (the same loop a
//! user runs) talk to each other over loopback. Each wait is bounded by a socket timeout.
//!
//! Run with: `cargo test -p wheelbeat-net --test ws_echo`.

mod ws_client;

use std::io::Write;
use std::time::Duration;

use wheelbeat_net::ws::{Control, MessageKind, Role, close, pong_seq};
use ws_client::{Client, Ev, read_to_eof, start_server, tcp, ws_echo::Caps};

#[test]
fn client_and_server_exchange_messages_pings_and_a_clean_close() {
    let addr = start_server(Caps::default());
    let (mut c, open) = Client::connect(addr, "/chat", &[]).unwrap();
    assert_eq!(open, Ev::Open(None));
    c.send(MessageKind::Text, "héllo".as_bytes()).unwrap();
    assert_eq!(c.next_event().unwrap(), Ev::Text("héllo".into()));
    // 60 KiB fits one frame of the server's 64 KiB frame cap and its message cap.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    c.send(MessageKind::Binary, &big).unwrap();
    assert_eq!(c.next_event().unwrap(), Ev::Binary(big));
    // The heartbeat's probe: a ping carrying a sequence number comes back as a pong with it.
    c.send_control(Control::ping_seq(Role::Client, 7).unwrap())
        .unwrap();
    match c.next_event().unwrap() {
        Ev::Pong(p) => assert_eq!(pong_seq(&p), Some(7)),
        other => panic!("{other:?}"),
    }
    c.close(close::NORMAL).unwrap();
    assert_eq!(
        c.next_event().unwrap(),
        Ev::Close(Some(1000), String::new())
    );
    // The server closes the TCP connection after its close frame.
    assert!(read_to_eof(&mut c.stream).is_empty());
}

#[test]
fn bad_upgrade_gets_a_400_and_only_that_connection_closes() {
    let addr = start_server(Caps::default());
    let (mut good, _) = Client::connect(addr, "/", &[]).unwrap();
    let mut bad = tcp(addr);
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(read_to_eof(&mut bad)).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    // A request over the 8 KiB cap, without its blank line: 400 as well.
    let mut long = tcp(addr);
    let mut junk = b"GET / HTTP/1.1\r\n".to_vec();
    junk.resize(9000, b'a');
    long.write_all(&junk).unwrap();
    let answer = read_to_eof(&mut long);
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{answer:?}");
    // The good connection did not notice.
    good.send(MessageKind::Text, b"still here").unwrap();
    assert_eq!(good.next_event().unwrap(), Ev::Text("still here".into()));
}

#[test]
fn configured_path_serves_only_itself_and_refuses_others_with_404() {
    let caps = Caps {
        path: Some("/ws".into()),
        ..Caps::default()
    };
    let addr = start_server(caps);
    assert!(Client::connect(addr, "/ws?x=1", &[]).is_ok());
    let refused = Client::connect(addr, "/other", &[]).err().unwrap();
    assert!(refused.to_string().contains("404"), "{refused}");
}

#[test]
fn frame_over_the_cap_is_answered_with_1009_before_its_payload_is_sent() {
    let caps = Caps {
        max_frame: 1024,
        max_message: 4096,
        ..Caps::default()
    };
    let addr = start_server(caps);
    let (mut c, _) = Client::connect(addr, "/", &[]).unwrap();
    // A masked binary header announcing 2,000 bytes, and no payload at all.
    c.send_raw(b"\x82\xfe\x07\xd0\x01\x02\x03\x04").unwrap();
    assert_eq!(
        c.next_event().unwrap(),
        Ev::Close(Some(1009), String::new())
    );
    // Message cap: 5 fragments of 1,000 bytes pass the frame cap but not the 4,096-byte message cap.
    let (mut c, _) = Client::connect(addr, "/", &[]).unwrap();
    let mut enc = wheelbeat_net::ws::Encoder::with_max_frame_len(1000);
    struct Raw<'a>(&'a mut Client);
    impl wheelbeat_net::ws::Sink for Raw<'_> {
        fn send_frames(&mut self, b: &[u8]) -> Result<(), wheelbeat_net::Error> {
            self.0.send_raw(b)
        }
        fn send_priority_frames(&mut self, b: &[u8]) -> Result<(), wheelbeat_net::Error> {
            self.0.send_raw(b)
        }
    }
    enc.send(
        &mut Raw(&mut c),
        Role::Client,
        MessageKind::Binary,
        &[0; 5000],
    )
    .unwrap();
    assert_eq!(
        c.next_event().unwrap(),
        Ev::Close(Some(1009), String::new())
    );
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let addr = start_server(Caps::default());
    let (mut c, _) = Client::connect(addr, "/", &[]).unwrap();
    c.send_raw(b"\x81\x02hi").unwrap();
    assert_eq!(
        c.next_event().unwrap(),
        Ev::Close(Some(1002), String::new())
    );
}

#[test]
fn silent_connection_is_dropped_at_the_handshake_timeout() {
    let caps = Caps {
        handshake_timeout: Duration::from_millis(200),
        ..Caps::default()
    };
    let addr = start_server(caps);
    let mut silent = tcp(addr);
    let started = std::time::Instant::now();
    assert!(read_to_eof(&mut silent).is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "closed early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "closed late: {waited:?}");
}
