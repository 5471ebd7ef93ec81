//! [`WsCodec`]: how a WebSocket byte stream is cut into frames on a
//! [`Connection`](crate::Connection).
//!
//! # Ground rules
//! - Two phases. First the HTTP head of the upgrade (a request on a server, the response on a
//!   client) is delivered as one "frame": the bytes up to and including the blank line, at
//!   most `max_handshake_len` bytes. The codec then switches to WebSocket frames by itself, so
//!   frames the peer sent right behind its head are not lost.
//! - Then each delivered "frame" is one whole WebSocket frame, header included:
//!   [`Session::handle`](super::Session::handle) re-reads the (already validated) header.
//! - Caps before buffering: a header announcing more than `max_frame_len` payload bytes is
//!   [`WsError::FrameTooLong`] as soon as the header is complete; so at most
//!   `max(max_handshake_len, 14 + max_frame_len)` bytes are ever held for an unfinished frame.
//! - Roles: a server refuses unmasked frames, a client refuses masked ones (RFC 6455 5.1).
//! - [`Codec::decode_mut`] unmasks the payload in place and zeroes the key in the header, so
//!   the frame stays self-describing and the session reads the payload without a copy.
//!   (Plain `decode` leaves the bytes alone; the session then unmasks while copying.)
//! - Text fails fast: the payload of a text-carrying frame (a text frame, or a continuation of
//!   a fragmented text message) is checked as UTF-8 as its bytes arrive, before the frame is
//!   complete, so a sequence that can never be valid fails the connection at once (Autobahn
//!   6.4.3/6.4.4 send one frame in pieces and check this). Each byte is checked once (the
//!   codec remembers how far it got, like the head's resume hint); the bytes are unmasked into
//!   a 256-byte stack buffer for the check, never in place until the frame is whole.
//!   [`Session`](super::Session) still validates every message itself; this is only earlier.
//! - Encoding is the identity: what is sent is already framed by
//!   [`Session`](super::Session)'s send methods (or the 101 / 400 response), so the write
//!   queue holds the exact wire bytes.

use crate::codec::{Codec, Decoded, MAX_MAX_FRAME_LEN};
use crate::error::{Error, FrameError};

use super::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, apply_mask};
use super::utf8::Utf8Validator;
use super::{Role, WsError};

/// Default cap on one frame's payload: 64 KiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;
/// Default cap on the upgrade request or response head: 8 KiB.
pub const DEFAULT_MAX_HANDSHAKE_LEN: usize = 8 * 1024;

/// The WebSocket [`Codec`]; see the [module docs](self). Size: 20 bytes.
///
/// ```
/// use wheelbeat_net::Codec;
/// use wheelbeat_net::ws::WsCodec;
/// let mut codec = WsCodec::server_open(); // handshake already done elsewhere
/// let mut wire = *b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"; // masked "Hello"
/// let d = codec.decode_mut(&mut wire).unwrap().unwrap();
/// assert_eq!(d.frame, 0..11);
/// assert_eq!(&wire[6..], b"Hello"); // unmasked in place
/// assert!(codec.decode(b"\x81\x05Hello").is_err()); // a client must mask
/// ```
#[derive(Debug, Clone)]
pub struct WsCodec {
    role: Role,
    in_handshake: bool,
    max_frame: u32,
    max_handshake: u32,
    /// Handshake phase: bytes of the head already known to hold no blank line (resume hint).
    /// Frame phase: payload bytes of the unfinished frame at the buffer's start already
    /// checked as UTF-8 (see "Text fails fast" in the module docs).
    scanned: u32,
    /// True while a fragmented text message is in progress (its continuations carry text).
    text: bool,
    /// The UTF-8 state of the text message in progress, up to `scanned` bytes into the frame.
    utf8: Utf8Validator,
}

impl WsCodec {
    /// A server's codec, starting with the upgrade request; default caps.
    pub fn server() -> Self {
        WsCodec::new(Role::Server, true)
    }

    /// A client's codec, starting with the upgrade response; default caps.
    pub fn client() -> Self {
        WsCodec::new(Role::Client, true)
    }

    /// A server's codec for a connection whose handshake was done elsewhere: frames only.
    pub fn server_open() -> Self {
        WsCodec::new(Role::Server, false)
    }

    /// A client's codec for a connection whose handshake was done elsewhere: frames only.
    pub fn client_open() -> Self {
        WsCodec::new(Role::Client, false)
    }

    fn new(role: Role, in_handshake: bool) -> Self {
        WsCodec {
            role,
            in_handshake,
            max_frame: DEFAULT_MAX_FRAME_LEN as u32,
            max_handshake: DEFAULT_MAX_HANDSHAKE_LEN as u32,
            scanned: 0,
            text: false,
            utf8: Utf8Validator::new(),
        }
    }

    /// Sets the cap on one frame's payload.
    ///
    /// # Panics
    /// If `max` exceeds [`MAX_MAX_FRAME_LEN`] minus 14 header bytes.
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        assert!(
            max <= MAX_MAX_FRAME_LEN - MAX_HEADER_LEN,
            "frame cap {max} too large"
        );
        self.max_frame = max as u32;
        self
    }

    /// Sets the cap on the upgrade head (request line, headers and blank line), at least 64.
    pub fn with_max_handshake_len(mut self, max: usize) -> Self {
        self.max_handshake = max.clamp(64, MAX_MAX_FRAME_LEN) as u32;
        self
    }

    /// Which side of the connection this codec decodes for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True until the upgrade head has been delivered.
    pub fn in_handshake(&self) -> bool {
        self.in_handshake
    }

    /// The cap on one frame's payload.
    pub fn max_payload_len(&self) -> usize {
        self.max_frame as usize
    }

    fn decode_head(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        let max = self.max_handshake as usize;
        let limit = buf.len().min(max);
        // A blank line may straddle the previous scan's end: back up 3 bytes.
        let from = (self.scanned as usize).saturating_sub(3).min(limit);
        if let Some(i) = memchr::memmem::find(&buf[from..limit], b"\r\n\r\n") {
            let end = from + i + 4;
            self.scanned = 0;
            self.in_handshake = false;
            return Ok(Some(Decoded {
                frame: 0..end,
                consumed: end,
            }));
        }
        if limit == max {
            self.scanned = 0;
            return Err(Error::WebSocket(WsError::HandshakeTooLong { max }));
        }
        self.scanned = limit as u32;
        Ok(None)
    }

    /// Validates the frame at the start of `buf`; returns the header and the frame's length if
    /// it is all there. Checks as UTF-8 the text payload bytes that have arrived.
    fn frame(&mut self, buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let Some(h) = FrameHeader::parse(buf).map_err(Error::WebSocket)? else {
            return Ok(None);
        };
        if h.payload_len > u64::from(self.max_frame) {
            return Err(Error::WebSocket(WsError::FrameTooLong {
                len: h.payload_len,
                max: self.max_frame as usize,
            }));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Error::WebSocket(WsError::Unmasked)),
            (Role::Client, true) => return Err(Error::WebSocket(WsError::Masked)),
            _ => {}
        }
        // <= 14 + max_frame, which fits a usize.
        let total = h.header_len + h.payload_len as usize;
        self.check_text(&h, &buf[..buf.len().min(total)])?;
        if buf.len() < total {
            return Ok(None);
        }
        // The frame is whole: the next one starts unscanned; track the message's kind.
        self.scanned = 0;
        match h.opcode {
            OpCode::Text | OpCode::Binary => self.text = h.opcode == OpCode::Text && !h.fin,
            OpCode::Continuation if h.fin => self.text = false,
            _ => {}
        }
        Ok(Some((h, total)))
    }

    /// Feeds the not yet checked payload bytes of a text-carrying frame to the validator (see
    /// "Text fails fast"). `frame` is the frame's bytes that have arrived, masked as sent.
    fn check_text(&mut self, h: &FrameHeader, frame: &[u8]) -> Result<(), FrameError> {
        let text = match h.opcode {
            OpCode::Text => true,
            OpCode::Continuation => self.text,
            _ => false,
        };
        if !text {
            return Ok(());
        }
        if h.opcode == OpCode::Text && self.scanned == 0 {
            self.utf8 = Utf8Validator::new(); // a new message
        }
        let invalid = |_| Error::WebSocket(WsError::InvalidUtf8);
        let from = h.header_len + self.scanned as usize;
        let mut chunk = [0u8; 256];
        for piece in frame[from..].chunks(chunk.len()) {
            let bytes = &mut chunk[..piece.len()];
            bytes.copy_from_slice(piece);
            if let Some(key) = h.mask {
                apply_mask(bytes, key, self.scanned as usize);
            }
            self.utf8.feed(bytes).map_err(invalid)?;
            self.scanned += piece.len() as u32;
        }
        Ok(())
    }
}

impl Codec for WsCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        if self.in_handshake {
            return self.decode_head(buf);
        }
        Ok(self.frame(buf)?.map(|(_, total)| Decoded {
            frame: 0..total,
            consumed: total,
        }))
    }

    fn decode_mut(&mut self, buf: &mut [u8]) -> Result<Option<Decoded>, FrameError> {
        if self.in_handshake {
            return self.decode_head(buf);
        }
        let Some((h, total)) = self.frame(buf)? else {
            return Ok(None);
        };
        if let Some(key) = h.mask {
            apply_mask(&mut buf[h.header_len..total], key, 0);
            // A zero key: the header still says "masked", and unmasking again is a no-op.
            buf[h.header_len - 4..h.header_len].fill(0);
        }
        Ok(Some(Decoded {
            frame: 0..total,
            consumed: total,
        }))
    }

    /// Identity: the bytes given are already framed (see the module docs).
    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        if payload.len() > self.max_frame_len() {
            return Err(Error::FrameTooLong {
                len: payload.len() as u64,
                max: self.max_frame_len(),
            });
        }
        dst.extend_from_slice(payload);
        Ok(())
    }

    /// The largest encoded frame accepted for sending: the payload cap plus a full header.
    fn max_frame_len(&self) -> usize {
        self.max_frame as usize + MAX_HEADER_LEN
    }

    fn encoded_len(&self, len: usize) -> usize {
        len
    }

    fn max_buffered_len(&self) -> usize {
        if self.in_handshake {
            self.max_handshake as usize
        } else {
            self.max_frame as usize + MAX_HEADER_LEN
        }
    }

    /// Forgets the resume hint and the text message in progress (its continuations are then
    /// left to the session's check).
    fn reset(&mut self) {
        self.scanned = 0;
        self.text = false;
        self.utf8 = Utf8Validator::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::{OpCode, encode_frame};

    /// Feeds `wire` in pieces the way a connection does; returns the frames (unmasked) and the
    /// first error.
    fn feed(codec: &mut WsCodec, wire: &[u8], piece: usize) -> (Vec<Vec<u8>>, Option<Error>) {
        let (mut buf, mut frames) = (Vec::new(), Vec::new());
        for chunk in wire.chunks(piece.max(1)) {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode_mut(&mut buf) {
                    Ok(Some(d)) => {
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
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    #[test]
    fn head_then_frames_at_every_piece_size() {
        let mut wire = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        encode_frame(&mut wire, true, OpCode::Text, b"hi", Some([9, 8, 7, 6]));
        encode_frame(&mut wire, true, OpCode::Ping, b"", Some([1, 2, 3, 4]));
        for piece in 1..wire.len() {
            let (frames, err) = feed(&mut WsCodec::server(), &wire, piece);
            assert!(err.is_none(), "piece {piece}: {err:?}");
            assert_eq!(frames.len(), 3, "piece {piece}");
            assert!(frames[0].ends_with(b"\r\n\r\n"));
            assert_eq!(frames[1], b"\x81\x82\0\0\0\0hi");
            assert_eq!(frames[2], b"\x89\x80\0\0\0\0");
        }
    }

    #[test]
    fn oversize_head_is_refused_at_the_cap() {
        let mut c = WsCodec::server().with_max_handshake_len(64);
        let junk = [b'a'; 63];
        assert_eq!(c.decode(&junk).unwrap(), None);
        let junk = [b'a'; 64];
        assert!(matches!(
            c.decode(&junk),
            Err(Error::WebSocket(WsError::HandshakeTooLong { max: 64 }))
        ));
    }

    #[test]
    fn frame_over_the_cap_is_refused_from_its_header_alone() {
        let mut c = WsCodec::server_open().with_max_frame_len(1000);
        // Header announcing 1001 bytes, no payload yet: refused now, not after buffering.
        let err = c.decode(b"\x82\xfe\x03\xe9\x01\x02\x03\x04").unwrap_err();
        assert!(matches!(
            err,
            Error::WebSocket(WsError::FrameTooLong {
                len: 1001,
                max: 1000
            })
        ));
        // Exactly the cap: wait for it.
        assert_eq!(c.decode(b"\x82\xfe\x03\xe8\x01\x02\x03\x04").unwrap(), None);
        // 2^63 - 1 announced: refused, nothing allocated.
        assert!(
            c.decode(b"\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\0\0\0\0")
                .is_err()
        );
    }

    #[test]
    fn roles_enforce_masking() {
        assert!(matches!(
            WsCodec::server_open().decode(b"\x82\x00"),
            Err(Error::WebSocket(WsError::Unmasked))
        ));
        assert!(matches!(
            WsCodec::client_open().decode(b"\x82\x80\0\0\0\0"),
            Err(Error::WebSocket(WsError::Masked))
        ));
        assert!(
            WsCodec::client_open()
                .decode(b"\x82\x00")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn invalid_text_fails_when_its_bytes_arrive_not_when_the_frame_ends() {
        // Autobahn 6.4.3: one text frame sent in three pieces; the second holds the bad bytes.
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend_from_slice(b"\xf4\x90\x80\x80");
        payload.extend_from_slice(b"-edited");
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, OpCode::Text, &payload, Some([9, 8, 7, 6]));
        let mut c = WsCodec::server_open();
        let first = 6 + 11;
        assert_eq!(c.decode_mut(&mut wire[..first].to_vec()).unwrap(), None);
        let err = c.decode_mut(&mut wire[..first + 2].to_vec()).unwrap_err();
        assert!(matches!(err, Error::WebSocket(WsError::InvalidUtf8)));
        // The same bytes as a binary frame are fine.
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            true,
            OpCode::Binary,
            &payload,
            Some([9, 8, 7, 6]),
        );
        let (frames, err) = feed(&mut WsCodec::server_open(), &wire, 3);
        assert!(err.is_none() && frames.len() == 1);
    }

    #[test]
    fn continuation_of_a_text_message_is_checked_with_the_message_so_far() {
        // 'é' split across fragments, a ping between them: valid.
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            false,
            OpCode::Text,
            b"caf\xc3",
            Some([1, 2, 3, 4]),
        );
        encode_frame(&mut wire, true, OpCode::Ping, b"\xff", Some([1, 2, 3, 4]));
        encode_frame(
            &mut wire,
            true,
            OpCode::Continuation,
            b"\xa9!",
            Some([1, 2, 3, 4]),
        );
        for piece in 1..wire.len() {
            let (frames, err) = feed(&mut WsCodec::server_open(), &wire, piece);
            assert!(err.is_none(), "piece {piece}: {err:?}");
            assert_eq!(frames.len(), 3);
        }
        // A continuation that breaks the character fails at its first byte.
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            false,
            OpCode::Text,
            b"caf\xc3",
            Some([1, 2, 3, 4]),
        );
        encode_frame(
            &mut wire,
            true,
            OpCode::Continuation,
            b"(rest)",
            Some([1, 2, 3, 4]),
        );
        let (frames, err) = feed(&mut WsCodec::server_open(), &wire, 1);
        assert_eq!(frames.len(), 1);
        assert!(matches!(err, Some(Error::WebSocket(WsError::InvalidUtf8))));
        // A continuation of a binary message is not text.
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            false,
            OpCode::Binary,
            b"\xc3",
            Some([1, 2, 3, 4]),
        );
        encode_frame(
            &mut wire,
            true,
            OpCode::Continuation,
            b"(",
            Some([1, 2, 3, 4]),
        );
        let (frames, err) = feed(&mut WsCodec::server_open(), &wire, 1);
        assert!(err.is_none() && frames.len() == 2);
    }

    #[test]
    fn incomplete_frame_is_left_masked() {
        // Ok(None) must not touch the bytes: the next call sees them again.
        let mut wire = Vec::new();
        encode_frame(
            &mut wire,
            true,
            OpCode::Binary,
            b"abcdef",
            Some([1, 2, 3, 4]),
        );
        let mut part = wire[..wire.len() - 1].to_vec();
        let before = part.clone();
        assert_eq!(WsCodec::server_open().decode_mut(&mut part).unwrap(), None);
        assert_eq!(part, before);
    }
}
