//! The shared fuzz harness (the WebSocket targets are at the end: [`check_ws_frames`],
//! [`check_ws_handshake`]): feeds arbitrary bytes to a decoder the way a connection does and
//! checks the decoder contract from `net/src/codec.rs` ([`check`]); and serde_json's reading of
//! a frame, the reference of the `protocol_parse` target ([`serde_json_shape`]).
//!
//! Input layout: byte 0 picks the maximum frame length (1..=256, small so limits are hit
//! often), byte 1 seeds the chunk sizes, the rest is the byte stream from the "peer".
//!
//! Checked, on every call:
//! - no panic (the fuzzer's job);
//! - `Ok(None)` only while fewer than `max_buffered_len` bytes are buffered (memory bound);
//! - a frame is at most `max_frame_len` bytes and lies inside the consumed bytes;
//! - the resume hint changes nothing: a fresh codec on the same bytes gives the same answer;
//! - a decoded frame that the codec can encode decodes back to itself.

use wheelbeat_net::Codec;

/// Runs the checks for codecs built by `make(max_frame_len)`.
pub fn check<C: Codec>(make: impl Fn(usize) -> C, data: &[u8]) {
    let [max, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max) + 1;
    let mut codec = make(max);
    let mut buf: Vec<u8> = Vec::new();
    let mut rng = u32::from(*seed) | 1;
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift: chunk sizes 1..=64 from the seed.
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let n = (rng as usize % 64 + 1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let got = codec.decode(&buf);
            let fresh = make(max).decode(&buf);
            match (&got, &fresh) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "resume hint changed the answer"),
                (Err(_), Err(_)) => {}
                _ => panic!("resume hint changed the answer: {got:?} vs {fresh:?}"),
            }
            match got {
                Ok(Some(d)) => {
                    assert!(d.frame.start <= d.frame.end && d.frame.end <= d.consumed);
                    assert!(d.consumed <= buf.len() && d.consumed > 0);
                    let frame = &buf[d.frame.clone()];
                    assert!(frame.len() <= codec.max_frame_len());
                    let mut wire = Vec::new();
                    if codec.encode(frame, &mut wire).is_ok() {
                        assert_eq!(wire.len(), codec.encoded_len(frame.len()));
                        let again = make(max).decode(&wire).unwrap().unwrap();
                        assert_eq!(&wire[again.frame], frame);
                        assert_eq!(again.consumed, wire.len());
                    }
                    buf.drain(..d.consumed);
                }
                Ok(None) => {
                    assert!(
                        buf.len() < codec.max_buffered_len(),
                        "buffered past the bound"
                    );
                    break;
                }
                Err(_) => return, // the connection would be closed here
            }
        }
    }
}

/// What serde_json makes of a frame, for the `protocol_parse` target.
#[derive(Debug)]
pub enum Shape {
    /// One JSON object.
    Object(serde_json::Map<String, serde_json::Value>),
    /// One JSON value that is not an object.
    Other,
    /// Not one JSON value.
    Invalid,
}

/// Reads `frame` with serde_json as one [`serde_json::Value`].
pub fn serde_json_shape(frame: &[u8]) -> Shape {
    match serde_json::from_slice::<serde_json::Value>(frame) {
        Ok(serde_json::Value::Object(map)) => Shape::Object(map),
        Ok(_) => Shape::Other,
        Err(_) => Shape::Invalid,
    }
}

pub mod tls;
/// Collects what a WebSocket session queues, bounded like a connection's lanes.
#[derive(Default)]
struct WsSink {
    data: usize,
    prio: usize,
}

impl wheelbeat_net::ws::Sink for WsSink {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), wheelbeat_net::Error> {
        self.data += bytes.len();
        Ok(())
    }
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), wheelbeat_net::Error> {
        // Every queued control frame is whole and small.
        assert!(bytes.len() <= 6 + 125);
        self.prio += bytes.len();
        Ok(())
    }
}

/// The `ws_frames` target. Input: byte 0 picks the role (bit 0: client) and the frame cap
/// (1..=128) and message cap (2 x the frame cap); byte 1 seeds the chunk sizes; the rest is the
/// peer's byte stream after the upgrade.
///
/// Checked: no panic; `Ok(None)` only below `max_buffered_len`; `decode` and `decode_mut`
/// agree on where each frame is; a delivered frame parses back to a header whose length
/// matches; the session never holds more than its message cap, and none once the frame that
/// ended a message is handled; a text event is UTF-8 (it is a `&str`); nothing is handed over
/// after the session is closed.
pub fn check_ws_frames(data: &[u8]) {
    use wheelbeat_net::ws::{Event, FrameHeader, Role, Session, WsCodec, accept_any};
    let [mode, seed, stream @ ..] = data else {
        return;
    };
    let client = mode & 1 == 1;
    let max_frame = usize::from(mode >> 1) + 1;
    let max_message = 2 * max_frame;
    let (mut codec, mut session) = if client {
        (WsCodec::client_open(), Session::open(Role::Client))
    } else {
        (WsCodec::server_open(), Session::open(Role::Server))
    };
    codec = codec.with_max_frame_len(max_frame);
    session = session.with_max_message_len(max_message);
    let mut sink = WsSink::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut rng = u32::from(*seed) | 1;
    let mut rest = stream;
    while !rest.is_empty() {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let n = (rng as usize % 64 + 1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let plain = codec.clone().decode(&buf);
            let got = codec.decode_mut(&mut buf);
            match (&plain, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "decode and decode_mut disagree"),
                (Err(_), Err(_)) => {}
                _ => panic!("decode and decode_mut disagree: {plain:?} vs {got:?}"),
            }
            match got {
                Ok(Some(d)) => {
                    assert!(d.frame == (0..d.consumed) && d.consumed <= buf.len());
                    let frame = &buf[d.frame.clone()];
                    let h = FrameHeader::parse(frame).unwrap().unwrap();
                    assert_eq!(h.header_len as u64 + h.payload_len, frame.len() as u64);
                    assert!(h.payload_len <= max_frame as u64);
                    let was_closed = session.is_closed();
                    let result = session.handle(frame, &mut sink, &mut accept_any, |e, _| {
                        assert!(!was_closed, "event after close");
                        if let Event::Text(t) = e {
                            assert!(t.len() <= max_message);
                        }
                    });
                    assert!(session.heap_bytes() <= max_message, "message past its cap");
                    buf.drain(..d.consumed);
                    if let Err(e) = result {
                        session.fail(&mut sink, &e);
                        assert!(session.is_closed() && session.heap_bytes() == 0);
                        return;
                    }
                    if session.is_closed() {
                        return;
                    }
                }
                Ok(None) => {
                    assert!(
                        buf.len() < codec.max_buffered_len(),
                        "buffered past the bound"
                    );
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// The `ws_handshake` target. The input is one head (request or response) as a peer sends it.
///
/// Checked: no panic; the codec cuts at most `max_handshake_len` bytes and, if it cuts, the
/// head ends with a blank line; the server's answer is a whole 101 head when it accepts and a
/// 4xx otherwise; the client's check of an arbitrary response never panics.
pub fn check_ws_handshake(data: &[u8]) {
    use wheelbeat_net::ws::{WsCodec, accept_any, check_response, server_handshake};
    let mut codec = WsCodec::server().with_max_handshake_len(1024);
    let head = match codec.decode(data) {
        Ok(Some(d)) => {
            assert!(d.consumed <= 1024);
            let head = &data[d.frame];
            assert!(head.ends_with(b"\r\n\r\n"));
            head
        }
        Ok(None) => {
            assert!(data.len() < 1024);
            data
        }
        Err(_) => return,
    };
    let reply = server_handshake(head, &mut accept_any);
    let text = &reply.response;
    match &reply.outcome {
        Ok(()) => {
            assert!(text.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(text.ends_with(b"\r\n\r\n"));
        }
        Err(_) => assert!(text.starts_with(b"HTTP/1.1 4")),
    }
    let _ = check_response(head, &[0; 16]);
}
