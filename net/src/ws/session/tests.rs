//! Session timelines: a client's bytes go through `WsCodec::decode_mut` and `Session::handle`
//! exactly as on a connection; every event and every queued reply is checked.

use super::*;
use crate::Codec;
use crate::ws::frame::{apply_mask, encode_frame};
use crate::ws::{WsCodec, client_request};

/// What the server queued.
#[derive(Default)]
struct Queued {
    data: Vec<u8>,
    prio: Vec<u8>,
}

impl Sink for Queued {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.data.extend_from_slice(bytes);
        Ok(())
    }
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.prio.extend_from_slice(bytes);
        Ok(())
    }
}

/// An event, owned, for comparisons.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Open,
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Fragment,
}

/// A server session behind its codec, fed bytes like a connection feeds it.
struct Server {
    codec: WsCodec,
    session: Session,
    buf: Vec<u8>,
    out: Queued,
    events: Vec<Ev>,
    error: Option<Error>,
}

impl Server {
    fn open() -> Server {
        Server::with(WsCodec::server_open(), Session::open(Role::Server))
    }

    fn with(codec: WsCodec, session: Session) -> Server {
        Server {
            codec,
            session,
            buf: Vec::new(),
            out: Queued::default(),
            events: Vec::new(),
            error: None,
        }
    }

    /// Receives `bytes`; returns the events they caused.
    fn recv(&mut self, bytes: &[u8]) -> Vec<Ev> {
        self.buf.extend_from_slice(bytes);
        while self.error.is_none() && !self.session.is_closed() {
            let d = match self.codec.decode_mut(&mut self.buf) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    self.session.fail(&mut self.out, &e);
                    self.error = Some(e);
                    break;
                }
            };
            let events = &mut self.events;
            let r = self.session.handle(
                &self.buf[d.frame.clone()],
                &mut self.out,
                &mut accept_any,
                |e, _| {
                    events.push(match e {
                        Event::Open { .. } => Ev::Open,
                        Event::Text(t) => Ev::Text(t.into()),
                        Event::Binary(b) => Ev::Binary(b.into()),
                        Event::Ping(p) => Ev::Ping(p.into()),
                        Event::Pong(p) => Ev::Pong(p.into()),
                        Event::Close(c) => Ev::Close(c.code, c.reason.into()),
                        Event::Fragment => Ev::Fragment,
                    })
                },
            );
            self.buf.drain(..d.consumed);
            if let Err(e) = r {
                self.session.fail(&mut self.out, &e);
                self.error = Some(e);
            }
        }
        std::mem::take(&mut self.events)
    }

    /// The close code of the close frame the server queued (on the data lane, after any
    /// HTTP head), if any.
    fn sent_close(&self) -> Option<Option<u16>> {
        let mut data = &self.out.data[..];
        if data.starts_with(b"HTTP/") {
            let end = data.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            data = &data[end + 4..];
        }
        let f = frames(data);
        f.into_iter()
            .find(|(_, op, _)| *op == OpCode::Close)
            .map(|(_, _, p)| (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
    }
}

/// A masked client frame.
fn cf(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, fin, op, payload, Some([0x12, 0x34, 0x56, 0x78]));
    v
}

fn frames(mut wire: &[u8]) -> Vec<(bool, OpCode, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(Some(h)) = FrameHeader::parse(wire) {
        let end = h.header_len + h.payload_len as usize;
        let mut p = wire[h.header_len..end].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut p, k, 0);
        }
        out.push((h.fin, h.opcode, p));
        wire = &wire[end..];
    }
    out
}

fn ws_err(s: &Server) -> Option<&WsError> {
    match &s.error {
        Some(Error::WebSocket(e)) => Some(e),
        _ => None,
    }
}

#[test]
fn upgrade_then_echo_timeline() {
    let mut s = Server::with(WsCodec::server(), Session::server());
    let key = [3u8; 16];
    let req = client_request(
        &crate::ws::ClientRequest {
            host: "h",
            target: "/",
            origin: None,
            protocols: &[],
        },
        &key,
    );
    // The request and a first frame in one read: both are handled.
    let mut wire = req.clone();
    wire.extend(cf(true, OpCode::Text, b"hi"));
    assert_eq!(s.recv(&wire), [Ev::Open, Ev::Text("hi".into())]);
    assert!(crate::ws::check_response(&s.out.data, &key).is_ok());
    assert!(s.session.is_open());
}

#[test]
fn bad_upgrade_queues_a_400_and_closes() {
    let mut s = Server::with(WsCodec::server(), Session::server());
    assert_eq!(s.recv(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []);
    assert!(s.out.data.starts_with(b"HTTP/1.1 400 "));
    assert!(s.session.is_closed());
    assert!(matches!(ws_err(&s), Some(WsError::BadHandshake(_))));
}

#[test]
fn oversize_upgrade_request_gets_a_400_too() {
    let mut s = Server::with(
        WsCodec::server().with_max_handshake_len(100),
        Session::server(),
    );
    s.recv(&[b'a'; 100]);
    assert!(s.out.data.starts_with(b"HTTP/1.1 400 "));
    assert!(matches!(ws_err(&s), Some(WsError::HandshakeTooLong { .. })));
}

#[test]
fn fragments_with_interleaved_ping_assemble_and_the_ping_is_answered_first() {
    let mut s = Server::open();
    let mut wire = cf(false, OpCode::Text, b"Hel");
    wire.extend(cf(true, OpCode::Ping, b"p1"));
    wire.extend(cf(false, OpCode::Continuation, b"lo, "));
    wire.extend(cf(true, OpCode::Continuation, "wörld".as_bytes()));
    let ev = s.recv(&wire);
    assert_eq!(
        ev,
        [
            Ev::Fragment,
            Ev::Ping(b"p1".to_vec()),
            Ev::Fragment,
            Ev::Text("Hello, wörld".into())
        ]
    );
    assert_eq!(frames(&s.out.prio), [(true, OpCode::Pong, b"p1".to_vec())]);
    assert_eq!(
        s.session.heap_bytes(),
        0,
        "the message buffer is freed once delivered"
    );
}

#[test]
fn single_frame_message_costs_no_heap() {
    let mut s = Server::open();
    assert_eq!(
        s.recv(&cf(true, OpCode::Binary, &[1, 2, 3])),
        [Ev::Binary(vec![1, 2, 3])]
    );
    assert_eq!(s.session.heap_bytes(), 0);
    assert_eq!(s.recv(&cf(true, OpCode::Binary, &[])), [Ev::Binary(vec![])]);
}

#[test]
fn each_sequencing_rule_is_a_1002() {
    let cases: [Vec<Vec<u8>>; 3] = [
        vec![cf(true, OpCode::Continuation, b"x")],
        vec![cf(false, OpCode::Text, b"a"), cf(true, OpCode::Text, b"b")],
        vec![
            cf(false, OpCode::Binary, b"a"),
            cf(false, OpCode::Binary, b"b"),
        ],
    ];
    for wire in cases {
        let mut s = Server::open();
        s.recv(&wire.concat());
        assert!(matches!(ws_err(&s), Some(WsError::Protocol(_))), "{wire:?}");
        assert_eq!(s.sent_close(), Some(Some(close::PROTOCOL_ERROR)));
        assert!(s.session.is_closed());
        assert_eq!(s.session.heap_bytes(), 0);
    }
}

#[test]
fn reserved_bits_opcodes_and_unmasked_frames_are_1002() {
    let mut rsv = cf(true, OpCode::Text, b"x");
    rsv[0] |= 0x40;
    let mut op = cf(true, OpCode::Text, b"x");
    op[0] = 0x85;
    let unmasked = b"\x81\x01x".to_vec();
    let mut big_ping = Vec::new();
    encode_frame(&mut big_ping, true, OpCode::Ping, &[0; 126], Some([1; 4]));
    for wire in [rsv, op, unmasked, big_ping] {
        let mut s = Server::open();
        s.recv(&wire);
        assert!(s.error.is_some(), "{wire:x?}");
        assert_eq!(
            s.sent_close(),
            Some(Some(close::PROTOCOL_ERROR)),
            "{wire:x?}"
        );
    }
}

#[test]
fn invalid_utf8_fails_fast_at_the_fragment_that_breaks_it() {
    // Autobahn 6.4.1: valid fragment, then a fragment with an invalid code point, then more.
    let mut s = Server::open();
    assert_eq!(
        s.recv(&cf(false, OpCode::Text, "κόσμε".as_bytes())),
        [Ev::Fragment]
    );
    s.recv(&cf(false, OpCode::Continuation, b"\xf4\x90\x80\x80"));
    assert_eq!(ws_err(&s), Some(&WsError::InvalidUtf8));
    assert_eq!(s.sent_close(), Some(Some(close::INVALID_PAYLOAD)));
    // A message that ends in the middle of a character is invalid too.
    let mut s = Server::open();
    s.recv(
        &[
            cf(false, OpCode::Text, b"\xce"),
            cf(true, OpCode::Continuation, b""),
        ]
        .concat(),
    );
    assert_eq!(ws_err(&s), Some(&WsError::InvalidUtf8));
    // A character split across fragments is fine.
    let mut s = Server::open();
    let ev = s.recv(
        &[
            cf(false, OpCode::Text, b"\xce"),
            cf(true, OpCode::Continuation, b"\xba"),
        ]
        .concat(),
    );
    assert_eq!(ev.last(), Some(&Ev::Text("κ".into())));
}

#[test]
fn message_cap_is_checked_before_a_fragment_is_appended() {
    let mut s = Server::with(
        WsCodec::server_open(),
        Session::open(Role::Server).with_max_message_len(10),
    );
    s.recv(&cf(false, OpCode::Binary, &[0; 6]));
    assert_eq!(s.session.heap_bytes(), 6);
    s.recv(&cf(true, OpCode::Continuation, &[0; 5]));
    assert!(matches!(
        ws_err(&s),
        Some(WsError::MessageTooLong { len: 11, max: 10 })
    ));
    assert_eq!(s.sent_close(), Some(Some(close::TOO_BIG)));
    assert_eq!(s.session.heap_bytes(), 0);
    // Exactly the cap is fine.
    let mut s = Server::with(
        WsCodec::server_open(),
        Session::open(Role::Server).with_max_message_len(10),
    );
    let ev = s.recv(
        &[
            cf(false, OpCode::Binary, &[0; 6]),
            cf(true, OpCode::Continuation, &[0; 4]),
        ]
        .concat(),
    );
    assert_eq!(ev.last(), Some(&Ev::Binary(vec![0; 10])));
}

#[test]
fn frame_cap_answers_1009_from_the_header() {
    let mut s = Server::with(
        WsCodec::server_open().with_max_frame_len(100),
        Session::open(Role::Server),
    );
    let wire = cf(true, OpCode::Binary, &[0; 101]);
    s.recv(&wire[..8]); // the header only
    assert!(matches!(
        ws_err(&s),
        Some(WsError::FrameTooLong { len: 101, .. })
    ));
    assert_eq!(s.sent_close(), Some(Some(close::TOO_BIG)));
}

#[test]
fn peer_close_is_echoed_and_nothing_after_it_is_read() {
    let mut s = Server::open();
    let mut wire = cf(true, OpCode::Close, b"\x03\xe8bye");
    wire.extend(cf(true, OpCode::Text, b"late"));
    assert_eq!(s.recv(&wire), [Ev::Close(Some(1000), "bye".into())]);
    assert_eq!(s.sent_close(), Some(Some(1000)));
    assert!(s.session.is_closed());
    // An empty close is answered by an empty close.
    let mut s = Server::open();
    assert_eq!(
        s.recv(&cf(true, OpCode::Close, b"")),
        [Ev::Close(None, String::new())]
    );
    assert_eq!(s.sent_close(), Some(None));
}

/// Regression (Autobahn 7.1.6): the close answering a close must follow the echo queued just
/// before it, so it goes on the data lane; on the priority lane it would overtake the echo and
/// data would follow a close.
#[test]
fn close_reply_is_queued_behind_data_not_on_the_priority_lane() {
    let mut s = Server::open();
    s.out.data.extend_from_slice(b"\x81\x01e"); // an echo already queued
    s.recv(&cf(true, OpCode::Close, b"\x03\xe8"));
    assert!(s.out.prio.is_empty());
    assert_eq!(
        frames(&s.out.data),
        [
            (true, OpCode::Text, b"e".to_vec()),
            (true, OpCode::Close, b"\x03\xe8".to_vec())
        ]
    );
}

#[test]
fn bad_close_frames_fail_with_the_right_code() {
    let cases: [(&[u8], u16); 4] = [
        (b"\x03", close::PROTOCOL_ERROR),
        (b"\x03\xed", close::PROTOCOL_ERROR), // 1005
        (b"\x03\xe8\xff", close::INVALID_PAYLOAD),
        (b"\x13\x88", close::PROTOCOL_ERROR), // 5000
    ];
    for (body, code) in cases {
        let mut s = Server::open();
        s.recv(&cf(true, OpCode::Close, body));
        assert_eq!(s.sent_close(), Some(Some(code)), "{body:x?}");
        assert!(s.session.is_closed());
    }
}

#[test]
fn after_our_close_data_and_pings_are_dropped_until_the_peer_closes() {
    let mut s = Server::open();
    s.session
        .close(&mut s.out, close::GOING_AWAY, "bye")
        .unwrap();
    assert_eq!(s.sent_close(), Some(Some(close::GOING_AWAY)));
    s.out.data.clear();
    let mut wire = cf(true, OpCode::Text, b"x");
    wire.extend(cf(true, OpCode::Ping, b"p"));
    wire.extend(cf(true, OpCode::Close, b"\x03\xe9"));
    assert_eq!(s.recv(&wire), [Ev::Close(Some(1001), String::new())]);
    assert!(
        s.out.prio.is_empty() && s.out.data.is_empty(),
        "no pong, and no second close"
    );
    assert!(s.session.is_closed());
}

#[test]
fn client_session_checks_the_response_and_refuses_masked_frames() {
    let key = [9u8; 16];
    let req = client_request(
        &crate::ws::ClientRequest {
            host: "h",
            target: "/",
            origin: None,
            protocols: &[],
        },
        &key,
    );
    let reply = crate::ws::server_handshake(&req, &mut accept_any);
    let mut c = Server::with(WsCodec::client(), Session::client(key));
    let mut wire = reply.response;
    wire.extend_from_slice(b"\x82\x02ok");
    assert_eq!(c.recv(&wire), [Ev::Open, Ev::Binary(b"ok".to_vec())]);
    // The client's pong is masked.
    c.recv(b"\x89\x01z");
    let pong = frames(&c.out.prio);
    assert_eq!(pong, [(true, OpCode::Pong, b"z".to_vec())]);
    assert!(
        FrameHeader::parse(&c.out.prio)
            .unwrap()
            .unwrap()
            .mask
            .is_some()
    );
    c.recv(b"\x82\x80\0\0\0\0");
    assert_eq!(ws_err(&c), Some(&WsError::Masked));
    // A wrong accept key fails the client.
    let mut c = Server::with(WsCodec::client(), Session::client([1u8; 16]));
    c.recv(&crate::ws::server_handshake(&req, &mut accept_any).response);
    assert!(matches!(ws_err(&c), Some(WsError::BadHandshake(_))));
}

/// Guards the documented footprint of an idle WebSocket connection.
#[test]
fn idle_websocket_state_fits_the_documented_size() {
    let session = std::mem::size_of::<Session>();
    let codec = std::mem::size_of::<WsCodec>();
    let conn = std::mem::size_of::<crate::Connection<WsCodec>>();
    eprintln!("Session {session} B, WsCodec {codec} B, Connection<WsCodec> {conn} B");
    assert!(session <= 56, "{session}");
    assert!(codec <= 20, "{codec}");
    assert!(conn + session <= 160 + 8 + 56, "{}", conn + session);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any message, cut into any fragments, with pings between them, and the whole wire
        /// fed in any chunk sizes, comes out whole: encode then decode is the identity.
        #[test]
        fn fragmented_messages_round_trip(
            messages in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 1usize..64), 1..8),
            chunk in 1usize..97,
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (text, bytes, frag) in &messages {
                let payload: Vec<u8> = if *text {
                    String::from_utf8_lossy(bytes).into_owned().into_bytes()
                } else {
                    bytes.clone()
                };
                let pieces: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(*frag).collect() };
                for (i, p) in pieces.iter().enumerate() {
                    let op = if i > 0 { OpCode::Continuation } else if *text { OpCode::Text } else { OpCode::Binary };
                    wire.extend(cf(i + 1 == pieces.len(), op, p));
                    if i % 2 == 1 {
                        wire.extend(cf(true, OpCode::Ping, b"p"));
                    }
                }
                expected.push(if *text {
                    Ev::Text(String::from_utf8(payload).unwrap())
                } else {
                    Ev::Binary(payload)
                });
            }
            let mut s = Server::open();
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                got.extend(s.recv(c));
            }
            prop_assert!(s.error.is_none());
            let got: Vec<Ev> = got.into_iter().filter(|e| matches!(e, Ev::Text(_) | Ev::Binary(_))).collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(s.session.heap_bytes(), 0);
        }

        /// Arbitrary bytes after an upgrade never panic, and the session never buffers more
        /// than its message cap.
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut s = Server::with(WsCodec::server_open().with_max_frame_len(64), Session::open(Role::Server).with_max_message_len(100));
            s.recv(&bytes);
            prop_assert!(s.session.heap_bytes() <= 100);
        }
    }
}

/// The heartbeat's round trip, both ends in memory: the server's `ping_seq` reaches a client
/// session, which answers by itself (masked pong on its priority lane); the pong reaches the
/// server as `Event::Pong`, whose payload `pong_seq` reads back.
#[test]
fn heartbeat_ping_seq_is_echoed_by_a_client_session_and_recognised() {
    let mut client = Server::with(WsCodec::client_open(), Session::open(Role::Client));
    let ping = crate::ws::Control::ping_seq(Role::Server, 0xdead_beef).unwrap();
    assert_eq!(
        client.recv(ping.as_ref()),
        [Ev::Ping(0xdead_beef_u64.to_be_bytes().to_vec())]
    );
    let pong = std::mem::take(&mut client.out.prio);
    let mut server = Server::open();
    let ev = server.recv(&pong);
    let [Ev::Pong(payload)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(crate::ws::pong_seq(payload), Some(0xdead_beef));
    assert!(
        server.out.prio.is_empty() && server.out.data.is_empty(),
        "a pong is not answered"
    );
}
