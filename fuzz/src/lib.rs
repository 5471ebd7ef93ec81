//! The shared fuzz harness: feeds arbitrary bytes to a decoder the way a connection does and
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
