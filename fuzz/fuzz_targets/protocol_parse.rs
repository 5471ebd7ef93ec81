//! Fuzzes `wheelbeat_heartbeat::protocol::parse`:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run protocol_parse`.
//!
//! Checked on every input (a frame as a peer could send it):
//! - no panic (the fuzzer's job);
//! - `parse` agrees with serde_json on objectness: `Ok` exactly when serde_json reads the bytes
//!   as one JSON object, `Err(NotAnObject)` when it reads another JSON value, `Err(InvalidJson)`
//!   when it rejects them (see [`wheelbeat_net_fuzz::serde_json_shape`] for the one documented
//!   difference);
//! - a heartbeat is what serde_json sees too: an object whose one key is `ping` or `pong` with
//!   that exact `u64`; data is handed on as the whole frame;
//! - the encoders' output parses back to the same heartbeat.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wheelbeat_heartbeat::protocol::{self, Message, ProtocolError};
use wheelbeat_net_fuzz::{Shape, serde_json_shape};

fuzz_target!(|data: &[u8]| {
    let parsed = protocol::parse(data);
    match (serde_json_shape(data), &parsed) {
        (Shape::Object(map), Ok(msg)) => match *msg {
            Message::Ping(n) | Message::Pong(n) => {
                let key = if matches!(msg, Message::Ping(_)) {
                    "ping"
                } else {
                    "pong"
                };
                assert_eq!(map.len(), 1, "heartbeat with other keys: {data:?}");
                assert_eq!(map.get(key).and_then(|v| v.as_u64()), Some(n));
            }
            Message::Data(bytes) => assert_eq!(bytes, data),
        },
        (Shape::Other, Err(ProtocolError::NotAnObject)) => {}
        (Shape::Invalid, Err(ProtocolError::InvalidJson)) => {}
        (shape, _) => panic!("parse {parsed:?} but serde_json {shape:?} for {data:?}"),
    }
    if let [a, b, c, d, e, f, g, h, ..] = *data {
        let n = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let mut out = Vec::new();
        protocol::encode_ping(n, &mut out);
        assert_eq!(protocol::parse(&out), Ok(Message::Ping(n)));
        out.clear();
        protocol::encode_pong(n, &mut out);
        assert_eq!(protocol::parse(&out), Ok(Message::Pong(n)));
    }
});
