//! The wire protocol: one JSON object per frame.
//!
//! # Format, byte for byte
//!
//! | frame                  | meaning                                                        |
//! |------------------------|----------------------------------------------------------------|
//! | `{"ping":N}`           | heartbeat request; `N` is an unsigned integer, 0 ..= 2^64-1     |
//! | `{"pong":N}`           | answer to `{"ping":N}`, echoing the same `N` (RTT matching)     |
//! | `{"error":"<reason>"}` | sent (best effort) before closing a connection for a bad frame  |
//! | any other JSON object  | application data ([`Message::Data`])                            |
//!
//! The encoders serialize with serde_json (an externally tagged enum is exactly a one-key
//! object) and write exactly these bytes, with no whitespace and no line terminator: framing
//! (a `\n` for the line codec, a length prefix for the length codec) is the codec's job, and so
//! is the frame-size cap.
//!
//! # Ground rules of the parser
//!
//! - Every byte is untrusted. [`parse`] never panics; anything that is not a single JSON object
//!   (invalid JSON, invalid UTF-8, trailing bytes, an array, a number, nesting deeper than
//!   serde_json's limit of 128) is a [`ProtocolError`], whose [`reason`](ProtocolError::reason)
//!   is what goes into the `{"error":...}` frame.
//! - A frame is a heartbeat only if it is an object with **exactly one** key, `ping` or `pong`,
//!   whose value is an integer in `0..=u64::MAX`. Everything else that is a JSON object is
//!   [`Message::Data`], including `{"ping":-1}`, `{"ping":1.5}`, `{"ping":"1"}`,
//!   `{"ping":18446744073709551616}` (2^64, out of range), `{"ping":1,"x":2}` and
//!   `{"ping":1,"ping":2}`. Rationale: those are valid JSON objects a peer may legitimately
//!   send as its own data, and closing a connection over them would be harsher than the format
//!   requires; they still count as a sign of life (see the monitor's docs).
//! - The heartbeat path does not allocate: the frame is walked with a serde visitor that
//!   compares keys in place and checks, without storing, every other value (`Skip`). (serde_json
//!   only allocates its scratch buffer for strings containing escape sequences.)
//! - [`Message::Data`] is exactly what `serde_json::from_slice::<serde_json::Value>` accepts as
//!   an object: numbers out of the `f64` range and undecodable escapes are invalid json, as
//!   they are for serde_json (the `protocol_parse` fuzz target checks the agreement).
//!
//! ```
//! use wheelbeat_heartbeat::protocol::{self, Message};
//!
//! assert_eq!(protocol::parse(br#"{"ping":7}"#), Ok(Message::Ping(7)));
//! assert_eq!(protocol::parse(br#"{"pong":18446744073709551615}"#), Ok(Message::Pong(u64::MAX)));
//! assert!(matches!(protocol::parse(br#"{"ping":-1}"#), Ok(Message::Data(_))));
//! assert!(protocol::parse(b"[1]").is_err());
//!
//! let mut out = Vec::new();
//! protocol::encode_pong(7, &mut out);
//! assert_eq!(out, br#"{"pong":7}"#);
//! ```

use std::fmt;

use serde::Deserializer as _;
use serde::Serialize;
use serde::de::{self, MapAccess, Visitor};

/// A parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `{"ping":N}`: the peer asks for `{"pong":N}`.
    Ping(u64),
    /// `{"pong":N}`: the peer answers our `{"ping":N}`.
    Pong(u64),
    /// Any other JSON object, as the raw bytes of the frame (already validated as one JSON
    /// object, so the application can deserialize it without re-checking its shape).
    Data(&'a [u8]),
}

/// Why a frame was rejected. Every variant closes the connection that sent it, and only that
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is not valid JSON: a syntax error, invalid UTF-8, an empty frame, bytes after
    /// the value, or nesting deeper than the parser's recursion limit.
    InvalidJson,
    /// The frame is valid JSON but not an object (an array, a string, a number, ...).
    NotAnObject,
    /// The frame is longer than the frame cap (`max_frame_len`); the codec refused it before
    /// anything was parsed.
    FrameTooLong,
    /// A frame another [`Format`](crate::format::Format) refused, with that format's own short
    /// lowercase reason.
    Malformed(&'static str),
    /// The peer sent more pings than the ping-flood policy allows
    /// ([`Config::max_pings_per_interval`](crate::Config::max_pings_per_interval)).
    TooManyPings,
}

impl ProtocolError {
    /// A short lowercase reason, as sent in `{"error":"<reason>"}`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProtocolError::InvalidJson => "invalid json",
            ProtocolError::NotAnObject => "not a json object",
            ProtocolError::FrameTooLong => "frame too long",
            ProtocolError::Malformed(reason) => reason,
            ProtocolError::TooManyPings => "too many pings",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ProtocolError {}

/// Parses one frame (without its framing bytes). See the [module docs](self) for what is a
/// heartbeat, what is data and what is an error.
pub fn parse(frame: &[u8]) -> Result<Message<'_>, ProtocolError> {
    Ok(match parse_shape(frame)? {
        Shape::Ping(n) => Message::Ping(n),
        Shape::Pong(n) => Message::Pong(n),
        // A going-away notice is data to this function's callers: [`Message`] predates it,
        // and only the endpoint's format ([`crate::format::JsonLines`]) acts on it.
        Shape::GoAway(_) | Shape::Data => Message::Data(frame),
        Shape::NotObject => return Err(ProtocolError::NotAnObject),
    })
}

/// What a frame is, going-away notices included; `Err` for anything [`parse`] refuses.
pub(crate) fn parse_shape(frame: &[u8]) -> Result<Shape, ProtocolError> {
    // serde_json does not check the UTF-8 of the strings it skips; data frames are handed on as
    // validated JSON, so check the whole frame (fast, and it does not allocate).
    if std::str::from_utf8(frame).is_err() {
        return Err(ProtocolError::InvalidJson);
    }
    let mut de = serde_json::Deserializer::from_slice(frame);
    let shape = match de.deserialize_any(ShapeVisitor) {
        Ok(shape) => shape,
        Err(e) => return Err(classify(&e)),
    };
    if let Err(e) = de.end() {
        return Err(classify(&e));
    }
    Ok(shape)
}

fn classify(e: &serde_json::Error) -> ProtocolError {
    match e.classify() {
        // Our visitor accepts every JSON type, so a data error cannot come from a well-formed
        // value; map it conservatively.
        serde_json::error::Category::Data => ProtocolError::NotAnObject,
        _ => ProtocolError::InvalidJson,
    }
}

/// The frames this side writes, as serde sees them: an externally tagged enum is exactly a
/// one-key object, `{"ping":N}`, `{"pong":N}`, `{"goaway":N}`, `{"error":"<reason>"}`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Outgoing<'a> {
    Ping(u64),
    Pong(u64),
    Goaway(u64),
    Error(&'a str),
}

fn encode(frame: &Outgoing<'_>, out: &mut Vec<u8>) {
    // Serializing integers and strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, frame);
}

/// Appends `{"ping":n}` to `out`.
pub fn encode_ping(n: u64, out: &mut Vec<u8>) {
    encode(&Outgoing::Ping(n), out);
}

/// Appends `{"pong":n}` to `out`.
pub fn encode_pong(n: u64, out: &mut Vec<u8>) {
    encode(&Outgoing::Pong(n), out);
}

/// Appends `{"goaway":n}` to `out`: the sender is draining and closes this connection within
/// `n` milliseconds; the peer should reconnect (elsewhere or later) without treating it as a
/// failure.
pub fn encode_goaway(n: u64, out: &mut Vec<u8>) {
    encode(&Outgoing::Goaway(n), out);
}

/// Appends `{"error":"<reason>"}` to `out`, with `reason` escaped as a JSON string.
pub fn encode_error(reason: &str, out: &mut Vec<u8>) {
    encode(&Outgoing::Error(reason), out);
}

/// What the top-level value turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Ping(u64),
    Pong(u64),
    /// `{"goaway":N}`: the peer is draining (see [`encode_goaway`]).
    GoAway(u64),
    Data,
    NotObject,
}

/// Which of the keys we care about a map key is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Ping,
    Pong,
    GoAway,
    Other,
}

struct ShapeVisitor;

macro_rules! not_object {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name<E: de::Error>(self, _: $ty) -> Result<Shape, E> {
            Ok(Shape::NotObject)
        })*
    };
}

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object")
    }

    not_object! {
        visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str,
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::NotObject)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        // Walk the array so syntax errors inside it are still reported as invalid json.
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Shape::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut count = 0usize;
        let mut heartbeat: Option<(Key, u64)> = None;
        while let Some(key) = map.next_key::<KeyOf>()? {
            count += 1;
            if count == 1 && key.0 != Key::Other {
                if let Value::U64(n) = map.next_value::<Value>()? {
                    heartbeat = Some((key.0, n));
                }
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(match (count, heartbeat) {
            (1, Some((Key::Ping, n))) => Shape::Ping(n),
            (1, Some((Key::Pong, n))) => Shape::Pong(n),
            (1, Some((Key::GoAway, n))) => Shape::GoAway(n),
            _ => Shape::Data,
        })
    }
}

/// Any JSON value, checked as strictly as serde_json checks its own `Value` (numbers in the
/// range of an `f64`, string escapes that decode, e.g. no lone surrogate) and then dropped.
///
/// `serde::de::IgnoredAny` would be faster, but serde_json skips it without checking numbers
/// or escapes, so `{"x":1e400}` would pass as [`Message::Data`] and then fail in the
/// application's own `serde_json::from_slice` (found by the `protocol_parse` fuzz target).
/// Unescaped strings are borrowed, so this allocates no more than the keys already do.
struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SkipVisitor;
        impl<'de> Visitor<'de> for SkipVisitor {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any json value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(SkipVisitor)
    }
}

/// A map key, classified without allocating.
struct KeyOf(Key);

impl<'de> de::Deserialize<'de> for KeyOf {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyOf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyOf, E> {
                Ok(KeyOf(match s {
                    "ping" => Key::Ping,
                    "pong" => Key::Pong,
                    "goaway" => Key::GoAway,
                    _ => Key::Other,
                }))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The value of a `ping`/`pong` key: an unsigned 64-bit integer or anything else (skipped).
enum Value {
    U64(u64),
    Other,
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any json value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
                Ok(Value::U64(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
                // serde_json reports non-negative integers through visit_u64; be robust anyway.
                Ok(u64::try_from(n).map_or(Value::Other, Value::U64))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
                Ok(Value::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
                Ok(Value::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
                Ok(Value::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Value::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Value::Other)
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(frame: &[u8]) -> Result<Message<'_>, ProtocolError> {
        Ok(Message::Data(frame))
    }

    #[test]
    fn values_serde_json_rejects_are_invalid_json_not_data() {
        // Found by the `protocol_parse` fuzz target: a number out of the f64 range, or a bad
        // escape, inside a data object. The application must be able to read every
        // `Message::Data` with serde_json, so these are protocol errors.
        for frame in [
            &br#"{"ponQ":18e674105}"#[..],
            br#"{"x":[1,-1e400]}"#,
            br#"{"x":{"y":"\ud800"}}"#,
            br#"{"ping":1e400}"#,
            br#"{"ping":1,"x":1e999}"#,
            br#"[1e400]"#,
        ] {
            assert!(serde_json::from_slice::<serde_json::Value>(frame).is_err());
            assert_eq!(parse(frame), Err(ProtocolError::InvalidJson), "{frame:?}");
        }
        assert_eq!(parse(br#"{"x":1e300}"#), data(br#"{"x":1e300}"#));
    }

    #[test]
    fn encodes_exact_bytes() {
        let mut out = Vec::new();
        encode_ping(0, &mut out);
        assert_eq!(out, br#"{"ping":0}"#);
        out.clear();
        encode_ping(u64::MAX, &mut out);
        assert_eq!(out, br#"{"ping":18446744073709551615}"#);
        out.clear();
        encode_pong(42, &mut out);
        assert_eq!(out, br#"{"pong":42}"#);
        out.clear();
        encode_error("invalid json", &mut out);
        assert_eq!(out, br#"{"error":"invalid json"}"#);
    }

    #[test]
    fn encode_appends_without_clearing() {
        let mut out = b"x".to_vec();
        encode_ping(1, &mut out);
        assert_eq!(out, br#"x{"ping":1}"#);
    }

    #[test]
    fn error_reason_is_escaped() {
        let mut out = Vec::new();
        encode_error("a \"b\"\n", &mut out);
        assert_eq!(out, br#"{"error":"a \"b\"\n"}"#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"], "a \"b\"\n");
    }

    #[test]
    fn round_trips_heartbeats() {
        for n in [0, 1, 10, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            encode_ping(n, &mut out);
            assert_eq!(parse(&out), Ok(Message::Ping(n)));
            out.clear();
            encode_pong(n, &mut out);
            assert_eq!(parse(&out), Ok(Message::Pong(n)));
        }
    }

    #[test]
    fn whitespace_and_escaped_keys_are_still_heartbeats() {
        assert_eq!(parse(b" { \"ping\" : 5 }\r"), Ok(Message::Ping(5)));
        assert_eq!(parse(br#"{"p\u0069ng":5}"#), Ok(Message::Ping(5)));
    }

    #[test]
    fn non_u64_heartbeat_values_are_data() {
        for frame in [
            &br#"{"ping":-1}"#[..],
            br#"{"ping":1.5}"#,
            br#"{"ping":1e3}"#,
            br#"{"ping":"1"}"#,
            br#"{"ping":null}"#,
            br#"{"ping":true}"#,
            br#"{"ping":[1]}"#,
            br#"{"ping":{"n":1}}"#,
            br#"{"pong":18446744073709551616}"#,
            br#"{"pong":99999999999999999999999999999999999999}"#,
        ] {
            assert_eq!(
                parse(frame),
                data(frame),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn extra_or_duplicate_keys_are_data() {
        for frame in [
            &br#"{"ping":1,"x":2}"#[..],
            br#"{"x":2,"ping":1}"#,
            br#"{"ping":1,"ping":2}"#,
            br#"{"ping":1,"pong":1}"#,
            br#"{}"#,
            br#"{"hello":"world","n":[1,2,{"a":null}]}"#,
            br#"{"Ping":1}"#,
        ] {
            assert_eq!(
                parse(frame),
                data(frame),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn invalid_json_is_rejected() {
        for frame in [
            &b""[..],
            b"   ",
            b"{",
            b"{\"ping\":1",
            b"{\"ping\":1}}",
            b"{\"ping\":1} x",
            b"{\"ping\":1}\n{\"ping\":2}",
            b"{ping:1}",
            b"{\"a\":\"\xff\"}",
            b"\xff\xfe",
            b"{\"ping\":01}",
            b"{\"a\":NaN}",
        ] {
            assert_eq!(
                parse(frame),
                Err(ProtocolError::InvalidJson),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn non_objects_are_rejected() {
        for frame in [
            &b"[]"[..],
            b"[1,{\"ping\":1}]",
            b"1",
            b"-1",
            b"1.5",
            b"\"ping\"",
            b"null",
            b"true",
        ] {
            assert_eq!(
                parse(frame),
                Err(ProtocolError::NotAnObject),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn deep_nesting_neither_overflows_the_stack_nor_passes_as_a_heartbeat() {
        // Skipped values are walked iteratively by serde_json, so depth costs no stack. Checked
        // with is_ok/is_err only: printing a 200 kB frame on failure helps nobody.
        let depth = 100_000;
        for (open, close) in [(b'[', b']'), (b'{', b'}')] {
            let mut frame = b"{\"ping\":".to_vec();
            for _ in 0..depth {
                frame.push(open);
                if open == b'{' {
                    frame.extend_from_slice(b"\"a\":");
                }
            }
            frame.push(b'1');
            frame.extend(std::iter::repeat_n(close, depth));
            frame.push(b'}');
            let parsed = parse(&frame);
            assert!(matches!(
                parsed,
                Ok(Message::Data(_)) | Err(ProtocolError::InvalidJson)
            ));
            // Cut short, it must be an error, not a panic.
            frame.truncate(frame.len() / 2);
            assert!(parse(&frame).is_err());
        }
        let top = vec![b'['; depth];
        assert_eq!(parse(&top), Err(ProtocolError::InvalidJson));
    }

    #[test]
    fn skipped_values_are_still_validated() {
        for frame in [
            &br#"{"x":01}"#[..],
            br#"{"x":"\q"}"#,
            br#"{"x":[1,]}"#,
            br#"{"x":{"a"}}"#,
            br#"{"x":1,}"#,
            b"{\"x\":\"\x01\"}",
        ] {
            assert_eq!(
                parse(frame),
                Err(ProtocolError::InvalidJson),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    #[test]
    fn reasons_are_short_lowercase() {
        for e in [
            ProtocolError::InvalidJson,
            ProtocolError::NotAnObject,
            ProtocolError::TooManyPings,
        ] {
            let r = e.reason();
            assert_eq!(r, r.to_lowercase());
            assert!(!r.ends_with('.'));
            assert_eq!(e.to_string(), r);
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Bytes that are often almost JSON, so the interesting paths get exercised.
        fn jsonish() -> impl Strategy<Value = Vec<u8>> {
            let atoms = prop::sample::select(vec![
                &b"{"[..],
                b"}",
                b"[",
                b"]",
                b":",
                b",",
                b"\"",
                b"\"ping\"",
                b"\"pong\"",
                b"\"x\"",
                b"0",
                b"1",
                b"18446744073709551615",
                b"18446744073709551616",
                b"-",
                b".5",
                b"e3",
                b"null",
                b"true",
                b" ",
                b"\\",
                b"\xff",
            ]);
            prop::collection::vec(atoms, 0..24).prop_map(|parts| parts.concat())
        }

        /// Well-formed JSON values, biased towards ping/pong keys.
        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            use serde_json::Value;
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (-1e30..1e30f64).prop_map(Value::from),
                "[a-z]{0,4}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                let key = prop_oneof![
                    Just("ping".to_string()),
                    Just("pong".to_string()),
                    "[a-z]{1,3}"
                ];
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(key, inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// What `value` must parse as: a heartbeat, `Ok(None)` for data, or an error.
        fn expected(value: &serde_json::Value) -> Result<Option<Message<'static>>, ProtocolError> {
            let Some(map) = value.as_object() else {
                return Err(ProtocolError::NotAnObject);
            };
            Ok(match (map.len(), map.iter().next()) {
                (1, Some((k, v))) if k == "ping" => v.as_u64().map(Message::Ping),
                (1, Some((k, v))) if k == "pong" => v.as_u64().map(Message::Pong),
                _ => None,
            })
        }

        proptest! {
            #[test]
            fn well_formed_values_are_classified_like_serde_json(value in json_value()) {
                let frame = serde_json::to_vec(&value).unwrap();
                let want = expected(&value).map(|m| m.unwrap_or(Message::Data(&frame)));
                prop_assert_eq!(parse(&frame), want);
            }

            #[test]
            fn parse_agrees_with_serde_json_and_never_panics(frame in jsonish()) {
                let parsed = parse(&frame);
                let value = serde_json::from_slice::<serde_json::Value>(&frame);
                match (&parsed, &value) {
                    (Ok(msg), Ok(serde_json::Value::Object(map))) => {
                        let heartbeat = match (map.len(), map.iter().next()) {
                            (1, Some((k, v))) if k == "ping" => v.as_u64().map(Message::Ping),
                            (1, Some((k, v))) if k == "pong" => v.as_u64().map(Message::Pong),
                            _ => None,
                        };
                        prop_assert_eq!(*msg, heartbeat.unwrap_or(Message::Data(&frame)));
                    }
                    (Err(ProtocolError::NotAnObject), Ok(v)) => prop_assert!(!v.is_object()),
                    (Err(ProtocolError::InvalidJson), Err(_)) => {}
                    _ => prop_assert!(false, "parse {:?} vs serde_json {:?}", parsed, value),
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..64)) {
                let _ = parse(&frame);
            }

            #[test]
            fn heartbeats_round_trip(n in any::<u64>()) {
                let mut out = Vec::new();
                encode_ping(n, &mut out);
                prop_assert_eq!(parse(&out), Ok(Message::Ping(n)));
                out.clear();
                encode_pong(n, &mut out);
                prop_assert_eq!(parse(&out), Ok(Message::Pong(n)));
            }

            #[test]
            fn error_frames_are_data_objects(reason in ".{0,40}") {
                let mut out = Vec::new();
                encode_error(&reason, &mut out);
                prop_assert_eq!(parse(&out), Ok(Message::Data(&out)));
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                prop_assert_eq!(v["error"].as_str(), Some(reason.as_str()));
            }
        }
    }
}
