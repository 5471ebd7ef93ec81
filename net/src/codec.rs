//! Framing: how a byte stream is cut into frames, and how a frame is put back on the wire.
//!
//! # Ground rules
//! - `decode` never allocates and never copies: it returns a [`Decoded`] with the frame's range
//!   inside the buffer it was given, so there are no lifetimes to fight and the caller slices.
//! - `Ok(None)` means "need more bytes"; `Err` means the bytes can never become a valid frame.
//!   The two are kept apart (rustls's deframer does the same) so a slow peer is never mistaken
//!   for a hostile one and a hostile one is never waited for.
//! - The maximum frame length is enforced *before* buffering: once
//!   [`Codec::max_buffered_len`] bytes are present, `decode` returns a frame or an error, never
//!   `Ok(None)`. That is what bounds the per-connection partial-frame buffer.
//! - Frames are opaque bytes. Invalid UTF-8 is passed through; checking it is the caller's job.
//!
//! # Resume hint
//! A codec may remember how far it has scanned, so a line delivered one byte at a time costs
//! O(n) instead of O(n²). The contract that makes this safe: after `Ok(None)`, the next call
//! gets the same unconsumed bytes (possibly followed by more); after `Ok(Some(d))`, the next
//! call gets the bytes that followed `d.consumed`. [`Connection`](crate::Connection) keeps this
//! contract. Call [`Codec::reset`] when starting over on an unrelated buffer.

use std::ops::Range;

use crate::error::{Error, FrameError};

/// The default maximum frame length: 64 KiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;

/// The largest maximum frame length a codec accepts (so frame lengths fit a `u32` with room
/// for the framing bytes).
pub const MAX_MAX_FRAME_LEN: usize = u32::MAX as usize - 8;

/// One decoded frame: where it is in the buffer passed to [`Codec::decode`], and how many
/// bytes to drop from the front of that buffer (frame plus framing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The frame's payload, as a range of the buffer given to `decode`.
    pub frame: Range<usize>,
    /// Bytes consumed from the front of the buffer; always `>= frame.end`.
    pub consumed: usize,
}

/// Cuts a byte stream into frames and frames payloads for sending.
///
/// See the [module docs](self) for the contract on `Ok(None)`, errors and the resume hint.
pub trait Codec {
    /// Finds the first frame in `buf`.
    ///
    /// Returns `Ok(Some(_))` with the frame's position, `Ok(None)` if more bytes are needed,
    /// or `Err` if `buf` does not start with a valid frame (the connection should be closed).
    /// Must not return `Ok(None)` when `buf.len() >= self.max_buffered_len()`.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError>;

    /// [`decode`](Codec::decode), allowed to rewrite the bytes of the frame it returns (and
    /// only those, and only when it returns `Ok(Some(_))`): a WebSocket server unmasks the
    /// payload in place here, so frames reach the handler without a copy.
    /// [`Connection`](crate::Connection) calls this one. The default calls `decode`.
    fn decode_mut(&mut self, buf: &mut [u8]) -> Result<Option<Decoded>, FrameError> {
        self.decode(buf)
    }

    /// Appends `payload`, framed, to `dst`.
    ///
    /// Fails (and leaves `dst` unchanged) if the payload is longer than
    /// [`max_frame_len`](Codec::max_frame_len) or cannot be framed by this codec.
    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError>;

    /// The largest payload this codec decodes or encodes.
    fn max_frame_len(&self) -> usize;

    /// Exactly how many bytes `encode` appends for a payload of `len` bytes (used to check
    /// the write cap before encoding).
    fn encoded_len(&self, len: usize) -> usize;

    /// The most bytes that can be buffered without a complete frame: `decode` returns a
    /// frame or an error once this many are present. The default allows 8 framing bytes.
    fn max_buffered_len(&self) -> usize {
        self.max_frame_len() + 8
    }

    /// Forgets any resume hint (see the module docs). The default does nothing.
    fn reset(&mut self) {}
}

fn check_max(max: usize) -> u32 {
    assert!(
        max <= MAX_MAX_FRAME_LEN,
        "max frame length {max} exceeds {MAX_MAX_FRAME_LEN}"
    );
    max as u32
}

/// Newline-delimited frames: the default codec.
///
/// A frame is the bytes before a `\n`; any `\r` right before the `\n` are stripped too, so
/// `nc` and Windows peers work, and a decoded frame never ends with `\r` (so it can always be
/// encoded back). The seed's `{"ping":10}` travels as `{"ping":10}\n`.
///
/// Bounds: a frame is at most `max_frame_len` bytes (default 64 KiB); a line with no `\n`
/// is an error as soon as `max_frame_len + 2` bytes have arrived. Encoding refuses payloads
/// containing `\n` or ending with `\r`, which could not round-trip.
///
/// Size: 8 bytes (the maximum and a resume hint).
///
/// ```
/// use wheelbeat_net::{Codec, LineCodec};
/// let mut codec = LineCodec::new();
/// let buf = b"{\"ping\":10}\r\n{\"po";
/// let d = codec.decode(buf).unwrap().unwrap();
/// assert_eq!(&buf[d.frame], b"{\"ping\":10}");
/// assert_eq!(d.consumed, 13);
/// assert_eq!(codec.decode(&buf[13..]).unwrap(), None); // need more bytes
/// ```
#[derive(Debug, Clone)]
pub struct LineCodec {
    max: u32,
    /// Bytes of the current buffer already known to hold no `\n`.
    scanned: u32,
}

impl LineCodec {
    /// A line codec with the default 64 KiB maximum frame length.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A line codec with the given maximum frame length (the line without its terminator).
    ///
    /// # Panics
    /// If `max` exceeds [`MAX_MAX_FRAME_LEN`].
    pub fn with_max_frame_len(max: usize) -> Self {
        LineCodec {
            max: check_max(max),
            scanned: 0,
        }
    }
}

impl Default for LineCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for LineCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        let max = self.max as usize;
        // A line of `max` bytes plus "\r\n" is the longest valid input; look no further.
        let limit = buf.len().min(max + 2);
        let from = (self.scanned as usize).min(limit);
        match memchr::memchr(b'\n', &buf[from..limit]) {
            Some(i) => {
                let nl = from + i;
                self.scanned = 0;
                // Every `\r` right before the `\n` is stripped, not just one: a frame then
                // never ends with `\r`, which is exactly what `encode` accepts, so whatever is
                // decoded can be sent back (issue 8: `{"a":1}\r\r\n` was accepted, then its
                // echo refused).
                let mut end = nl;
                while end > 0 && buf[end - 1] == b'\r' {
                    end -= 1;
                }
                if end > max {
                    return Err(Error::FrameTooLong {
                        len: end as u64,
                        max,
                    });
                }
                Ok(Some(Decoded {
                    frame: 0..end,
                    consumed: nl + 1,
                }))
            }
            None if limit == max + 2 => {
                self.scanned = 0;
                Err(Error::FrameTooLong {
                    len: buf.len() as u64,
                    max,
                })
            }
            None => {
                // limit <= max + 1 < u32::MAX, so this fits.
                self.scanned = limit as u32;
                Ok(None)
            }
        }
    }

    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        if payload.len() > self.max as usize {
            return Err(Error::FrameTooLong {
                len: payload.len() as u64,
                max: self.max as usize,
            });
        }
        if payload.contains(&b'\n') {
            return Err(Error::Unencodable {
                reason: "payload contains a newline",
            });
        }
        if payload.last() == Some(&b'\r') {
            return Err(Error::Unencodable {
                reason: "payload ends with a carriage return",
            });
        }
        dst.reserve(payload.len() + 1);
        dst.extend_from_slice(payload);
        dst.push(b'\n');
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.max as usize
    }

    fn encoded_len(&self, len: usize) -> usize {
        len + 1
    }

    fn max_buffered_len(&self) -> usize {
        self.max as usize + 2
    }

    fn reset(&mut self) {
        self.scanned = 0;
    }
}

/// Frames with a 4-byte big-endian length prefix (the payload length, prefix excluded).
///
/// Bounds: a frame is at most `max_frame_len` bytes (default 64 KiB); a prefix announcing
/// more is an error as soon as its 4 bytes arrive, before any payload is buffered (a 4 GiB
/// prefix costs 4 bytes, not 4 GiB). Any payload bytes, including none, can be encoded.
///
/// Size: 4 bytes.
///
/// ```
/// use wheelbeat_net::{Codec, LengthCodec};
/// let mut codec = LengthCodec::new();
/// let mut wire = Vec::new();
/// codec.encode(b"hi", &mut wire).unwrap();
/// assert_eq!(wire, [0, 0, 0, 2, b'h', b'i']);
/// let d = codec.decode(&wire).unwrap().unwrap();
/// assert_eq!(&wire[d.frame], b"hi");
/// assert!(codec.decode(&[0xff, 0xff, 0xff, 0xff]).is_err()); // 4 GiB: refused at once
/// ```
#[derive(Debug, Clone)]
pub struct LengthCodec {
    max: u32,
}

impl LengthCodec {
    /// Bytes in the length prefix.
    pub const PREFIX_LEN: usize = 4;

    /// A length-prefix codec with the default 64 KiB maximum frame length.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A length-prefix codec with the given maximum payload length.
    ///
    /// # Panics
    /// If `max` exceeds [`MAX_MAX_FRAME_LEN`].
    pub fn with_max_frame_len(max: usize) -> Self {
        LengthCodec {
            max: check_max(max),
        }
    }
}

impl Default for LengthCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for LengthCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len > self.max {
            return Err(Error::FrameTooLong {
                len: len.into(),
                max: self.max as usize,
            });
        }
        let end = Self::PREFIX_LEN + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        Ok(Some(Decoded {
            frame: Self::PREFIX_LEN..end,
            consumed: end,
        }))
    }

    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        if payload.len() > self.max as usize {
            return Err(Error::FrameTooLong {
                len: payload.len() as u64,
                max: self.max as usize,
            });
        }
        dst.reserve(Self::PREFIX_LEN + payload.len());
        // Cannot truncate: payload.len() <= self.max, a u32.
        dst.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        dst.extend_from_slice(payload);
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.max as usize
    }

    fn encoded_len(&self, len: usize) -> usize {
        len + Self::PREFIX_LEN
    }

    fn max_buffered_len(&self) -> usize {
        self.max as usize + Self::PREFIX_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards issue 8: `{"a":1}\r\r\n` was accepted as data, then echoing it back failed.
    #[test]
    fn carriage_returns_are_handled_the_same_way_on_decode_and_encode() {
        let mut codec = LineCodec::new();
        for wire in [&b"{\"a\":1}\r\r\n"[..], b"{\"a\":1}\r\n", b"{\"a\":1}\n"] {
            codec.reset();
            let d = codec.decode(wire).unwrap().unwrap();
            assert_eq!(&wire[d.frame.clone()], b"{\"a\":1}");
            assert_eq!(d.consumed, wire.len());
            let mut echo = Vec::new();
            codec.encode(&wire[d.frame], &mut echo).unwrap();
            assert_eq!(echo, b"{\"a\":1}\n");
        }
        codec.reset();
        let d = codec.decode(b"\r\r\n").unwrap().unwrap();
        assert_eq!(d.frame, 0..0);
    }

    /// Feeds `chunks` to `codec` the way a connection does (keep unconsumed bytes, append,
    /// decode until `Ok(None)`), collecting frames until the first error.
    fn feed<C: Codec>(codec: &mut C, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Error>, usize) {
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&buf) {
                    Ok(Some(d)) => {
                        assert!(d.frame.end <= d.consumed && d.consumed <= buf.len());
                        frames.push(buf[d.frame].to_vec());
                        buf.drain(..d.consumed);
                    }
                    Ok(None) => {
                        assert!(
                            buf.len() < codec.max_buffered_len(),
                            "Ok(None) past the bound"
                        );
                        break;
                    }
                    Err(e) => return (frames, Some(e), buf.len()),
                }
            }
        }
        (frames, None, buf.len())
    }

    /// Every way of cutting `wire` in two (and one byte at a time) decodes to `expected`.
    fn check_all_splits<C: Codec + Clone>(codec: &C, wire: &[u8], expected: &[&[u8]]) {
        for cut in 0..=wire.len() {
            let mut c = codec.clone();
            let (frames, err, rest) = feed(&mut c, &[&wire[..cut], &wire[cut..]]);
            assert!(err.is_none(), "cut at {cut}: {err:?}");
            assert_eq!(rest, 0, "cut at {cut}");
            assert_eq!(frames, expected, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let mut c = codec.clone();
        let (frames, err, _) = feed(&mut c, &bytes);
        assert!(err.is_none());
        assert_eq!(frames, expected, "byte at a time");
    }

    #[test]
    fn line_frames_split_at_every_byte_boundary() {
        let wire = b"{\"ping\":10}\n\r\nabc\r\n\n{\"pong\":11}\r\n";
        let expected: [&[u8]; 5] = [b"{\"ping\":10}", b"", b"abc", b"", b"{\"pong\":11}"];
        check_all_splits(&LineCodec::new(), wire, &expected);
    }

    #[test]
    fn length_frames_split_at_every_byte_boundary() {
        let c = LengthCodec::new();
        let mut wire = Vec::new();
        let payloads: [&[u8]; 4] = [b"hello", b"", b"\n\r\xff\x00", &[7u8; 300]];
        for p in payloads {
            c.encode(p, &mut wire).unwrap();
        }
        check_all_splits(&c, &wire, &payloads);
    }

    #[test]
    fn endless_line_is_an_error_after_max_plus_two_bytes() {
        let mut c = LineCodec::with_max_frame_len(16);
        let junk = [b'x'; 17];
        assert_eq!(c.decode(&junk).unwrap(), None);
        let junk = [b'x'; 18];
        assert!(matches!(
            c.decode(&junk),
            Err(Error::FrameTooLong { max: 16, .. })
        ));
        // Byte at a time: the error comes at byte 18, not later, and nothing is buffered past it.
        let mut c = LineCodec::with_max_frame_len(16);
        let stream = [b'x'; 1000];
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let (frames, err, held) = feed(&mut c, &bytes);
        assert!(frames.is_empty());
        assert!(matches!(err, Some(Error::FrameTooLong { .. })));
        assert_eq!(held, 18);
    }

    #[test]
    fn line_of_exactly_max_bytes_is_accepted_with_either_terminator() {
        let mut c = LineCodec::with_max_frame_len(4);
        assert_eq!(c.decode(b"abcd\r\n").unwrap().unwrap().frame, 0..4);
        assert_eq!(c.decode(b"abcd\n").unwrap().unwrap().frame, 0..4);
        assert!(c.decode(b"abcde\n").is_err());
        assert!(c.decode(b"abcde\r\n").is_err());
    }

    #[test]
    fn oversize_length_prefix_is_an_error_before_any_payload() {
        let mut c = LengthCodec::with_max_frame_len(100);
        assert_eq!(c.decode(&[0, 0, 0]).unwrap(), None);
        assert!(matches!(
            c.decode(&[0, 0, 0, 101]),
            Err(Error::FrameTooLong { len: 101, max: 100 })
        ));
        assert!(matches!(
            LengthCodec::new().decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(Error::FrameTooLong {
                len: 4_294_967_295,
                ..
            })
        ));
        assert_eq!(c.decode(&[0, 0, 0, 100]).unwrap(), None); // exactly max: wait for it
    }

    #[test]
    fn invalid_utf8_passes_through_as_bytes() {
        let mut c = LineCodec::new();
        let wire = b"\xff\xfe\xc3\x28\n";
        let d = c.decode(wire).unwrap().unwrap();
        assert_eq!(&wire[d.frame], b"\xff\xfe\xc3\x28");
    }

    #[test]
    fn line_encode_refuses_what_would_not_round_trip() {
        let c = LineCodec::with_max_frame_len(8);
        let mut dst = b"keep".to_vec();
        assert!(matches!(
            c.encode(b"a\nb", &mut dst),
            Err(Error::Unencodable { .. })
        ));
        assert!(matches!(
            c.encode(b"ab\r", &mut dst),
            Err(Error::Unencodable { .. })
        ));
        assert!(matches!(
            c.encode(b"123456789", &mut dst),
            Err(Error::FrameTooLong { .. })
        ));
        assert_eq!(dst, b"keep", "a failed encode leaves dst unchanged");
        c.encode(b"a\rb", &mut dst).unwrap();
        assert_eq!(dst, b"keepa\rb\n");
    }

    #[test]
    fn resume_hint_skips_scanned_bytes_and_resets_after_a_frame() {
        let mut c = LineCodec::new();
        assert_eq!(c.decode(b"abc").unwrap(), None);
        assert_eq!(c.scanned, 3, "the next call starts scanning at byte 3");
        assert_eq!(c.decode(b"abc\n").unwrap().unwrap().consumed, 4);
        assert_eq!(c.scanned, 0);
        // A long line fed one byte at a time, then a second line that must still be found.
        let mut c = LineCodec::new();
        let mut wire = vec![b'a'; 60_000];
        wire.extend_from_slice(b"\nbb\n");
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let (frames, err, rest) = feed(&mut c, &bytes);
        assert!(err.is_none());
        assert_eq!(rest, 0);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 60_000);
        assert_eq!(frames[1], b"bb");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Cuts `wire` at the given (sorted, deduplicated) points.
        fn cut(wire: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
            points.retain(|&p| p <= wire.len());
            points.sort_unstable();
            points.dedup();
            let mut out = Vec::new();
            let mut at = 0;
            for p in points {
                out.push(&wire[at..p]);
                at = p;
            }
            out.push(&wire[at..]);
            out
        }

        fn line_payload() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
                0..200,
            )
            .prop_map(|mut v| {
                while v.last() == Some(&b'\r') {
                    v.pop();
                }
                v
            })
        }

        proptest! {
            #[test]
            fn line_round_trip_through_random_chunks(
                payloads in proptest::collection::vec(line_payload(), 0..20),
                points in proptest::collection::vec(0usize..5000, 0..40),
            ) {
                let mut c = LineCodec::with_max_frame_len(200);
                let mut wire = Vec::new();
                for p in &payloads {
                    c.encode(p, &mut wire).unwrap();
                }
                let (frames, err, rest) = feed(&mut c, &cut(&wire, points));
                prop_assert!(err.is_none());
                prop_assert_eq!(rest, 0);
                prop_assert_eq!(frames, payloads);
            }

            #[test]
            fn length_round_trip_through_random_chunks(
                payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
                points in proptest::collection::vec(0usize..7000, 0..40),
            ) {
                let mut c = LengthCodec::with_max_frame_len(300);
                let mut wire = Vec::new();
                for p in &payloads {
                    c.encode(p, &mut wire).unwrap();
                }
                let (frames, err, rest) = feed(&mut c, &cut(&wire, points));
                prop_assert!(err.is_none());
                prop_assert_eq!(rest, 0);
                prop_assert_eq!(frames, payloads);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_never_exceed_the_bound(
                bytes in proptest::collection::vec(any::<u8>(), 0..2000),
                points in proptest::collection::vec(0usize..2000, 0..20),
            ) {
                // `feed` asserts Ok(None) only below max_buffered_len.
                let chunks = cut(&bytes, points);
                let _ = feed(&mut LineCodec::with_max_frame_len(64), &chunks);
                let _ = feed(&mut LengthCodec::with_max_frame_len(64), &chunks);
            }
        }
    }
}
