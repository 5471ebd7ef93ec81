//! The RFC 6455 frame header (section 5.2): parsed from a borrowed buffer, encoded into one.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! # Ground rules
//! - [`FrameHeader::parse`] looks at at most [`MAX_HEADER_LEN`] bytes and never at the
//!   payload: `Ok(None)` = the header is not complete yet; `Err` = these bytes can never be a
//!   valid frame. Everything checkable from the header is checked here, before a byte of
//!   payload is buffered: reserved bits (no extension is ever negotiated), reserved opcodes,
//!   fragmented or oversize (> 125 bytes) control frames, a 64-bit length with its top bit set.
//! - Once `parse` returned a header, `header_len + payload_len` is the frame's exact size
//!   and slicing the payload cannot panic once that many bytes are present.
//! - Masking is an XOR with a 4-byte key; applying it twice restores the payload, and a zero
//!   key changes nothing (the decoder relies on that, see [`WsCodec`](super::WsCodec)).

use super::WsError;

/// The longest header: 2 bytes, an 8-byte length, a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;
/// The largest control frame payload (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (the reserved ones are rejected by the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: a later fragment of a message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a ping; the peer answers with a pong carrying the same payload.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// The 4-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        }
    }

    /// The opcode for 4 bits off the wire; `None` for the reserved values 3-7 and 0xB-0xF.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xa => OpCode::Pong,
            _ => return None,
        })
    }

    /// True for close, ping and pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit: this is the last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
    /// Bytes of header before the payload: 2 to 14.
    pub header_len: usize,
}

impl FrameHeader {
    /// Parses the header at the start of `buf`. See the module docs for what is checked.
    ///
    /// ```
    /// use wheelbeat_net::ws::frame::{FrameHeader, OpCode};
    /// let h = FrameHeader::parse(b"\x81\x05hello").unwrap().unwrap();
    /// assert_eq!((h.fin, h.opcode, h.payload_len, h.header_len), (true, OpCode::Text, 5, 2));
    /// assert_eq!(FrameHeader::parse(b"\x81\x7e\x01").unwrap(), None); // 16-bit length cut short
    /// assert!(FrameHeader::parse(b"\xc1\x00").is_err()); // RSV1 without an extension
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_bits(b0 & 0x0f).ok_or(WsError::Protocol("reserved opcode"))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(WsError::Protocol("control frame over 125 bytes"));
            }
        }
        let (payload_len, ext) = match len7 {
            126 => match rest.first_chunk::<2>() {
                Some(b) => (u64::from(u16::from_be_bytes(*b)), 2),
                None => return Ok(None),
            },
            127 => match rest.first_chunk::<8>() {
                Some(b) => {
                    let len = u64::from_be_bytes(*b);
                    if len >> 63 != 0 {
                        return Err(WsError::Protocol("64-bit length with the top bit set"));
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 0),
        };
        let mask = if masked {
            match rest[ext..].first_chunk::<4>() {
                Some(k) => Some(*k),
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some(FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
            header_len: 2 + ext + if masked { 4 } else { 0 },
        }))
    }
}

/// The header length for a payload of `len` bytes, masked or not.
pub fn header_len(len: usize, masked: bool) -> usize {
    let ext = match len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// Appends a header (shortest length encoding, as RFC 6455 requires of senders) to `dst`.
pub fn encode_header(
    dst: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = if fin { 0x80 } else { 0 } | opcode.bits();
    let m = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => dst.extend_from_slice(&[b0, m | len as u8]),
        126..=0xffff => {
            dst.extend_from_slice(&[b0, m | 126]);
            dst.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            dst.extend_from_slice(&[b0, m | 127]);
            dst.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        dst.extend_from_slice(&key);
    }
}

/// Appends a whole frame to `dst`, masking the payload copy if `mask` is given.
pub fn encode_frame(
    dst: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    dst.reserve(header_len(payload.len(), mask.is_some()) + payload.len());
    encode_header(dst, fin, opcode, payload.len(), mask);
    let start = dst.len();
    dst.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut dst[start..], key, 0);
    }
}

/// XORs `buf` with `key`, `buf[0]` being byte `offset` of the payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = [0, 1, 2, 3].map(|i| key[(i + offset) & 3]);
    let mut key8 = [0u8; 8];
    key8[..4].copy_from_slice(&key);
    key8[4..].copy_from_slice(&key);
    let wide = u64::from_ne_bytes(key8);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 section 5.7: unmasked and masked "Hello".
        let h = FrameHeader::parse(b"\x81\x05\x48\x65\x6c\x6c\x6f")
            .unwrap()
            .unwrap();
        assert_eq!(h.mask, None);
        let mut masked = *b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        let h = FrameHeader::parse(&masked).unwrap().unwrap();
        assert_eq!(h.header_len, 6);
        apply_mask(&mut masked[6..], h.mask.unwrap(), 0);
        assert_eq!(&masked[6..], b"Hello");
        // 256 bytes binary in a 16-bit length; 64 KiB in a 64-bit one.
        let h = FrameHeader::parse(b"\x82\x7e\x01\x00").unwrap().unwrap();
        assert_eq!((h.payload_len, h.header_len), (256, 4));
        let h = FrameHeader::parse(b"\x82\x7f\0\0\0\0\0\x01\0\0")
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.header_len), (65536, 10));
    }

    #[test]
    fn every_header_rule_is_enforced_before_the_payload() {
        let bad: [(&[u8], &str); 7] = [
            (b"\x91\x00", "rsv3"),
            (b"\xa1\x00", "rsv2"),
            (b"\x83\x00", "opcode 3"),
            (b"\x8b\x00", "opcode 0xb"),
            (b"\x09\x00", "fragmented ping"),
            (b"\x89\x7e\x00\x7e", "ping over 125 bytes"),
            (b"\x82\x7f\x80\0\0\0\0\0\0\0", "length top bit"),
        ];
        for (bytes, why) in bad {
            assert!(FrameHeader::parse(bytes).is_err(), "{why}");
        }
        let ok = FrameHeader::parse(b"\x89\x7d").unwrap().unwrap();
        assert_eq!(ok.payload_len, 125);
    }

    #[test]
    fn header_is_incomplete_until_its_last_byte() {
        let full = b"\x82\xff\0\0\0\0\0\0\x01\0\xaa\xbb\xcc\xdd";
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]).unwrap(), None, "cut {cut}");
        }
        let h = FrameHeader::parse(full).unwrap().unwrap();
        assert_eq!(h.header_len, MAX_HEADER_LEN);
        assert_eq!(h.mask, Some([0xaa, 0xbb, 0xcc, 0xdd]));
    }

    #[test]
    fn encode_uses_the_shortest_length_and_parses_back() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x10000, 100_000] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut wire = Vec::new();
                encode_frame(&mut wire, true, OpCode::Binary, &payload, mask);
                let h = FrameHeader::parse(&wire).unwrap().unwrap();
                assert_eq!(h.header_len, header_len(len, mask.is_some()));
                assert_eq!(h.payload_len, len as u64);
                let body = &mut wire[h.header_len..];
                if let Some(k) = h.mask {
                    apply_mask(body, k, 0);
                }
                assert_eq!(body, &payload[..]);
            }
        }
    }

    #[test]
    fn mask_at_any_offset_matches_the_byte_loop() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for offset in 0..4 {
            for len in 0..40 {
                let mut a: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let b: Vec<u8> = a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x ^ key[(i + offset) & 3])
                    .collect();
                apply_mask(&mut a, key, offset);
                assert_eq!(a, b);
            }
        }
    }
}
