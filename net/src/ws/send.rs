//! The sending side: [`Control`] frames built on the stack (pings with a sequence number,
//! pongs, closes), whole messages framed by a per-loop [`Encoder`], and the [`Sink`] both go
//! to.
//!
//! # Ground rules
//! - A queued item is always one or more *whole* frames, so the write queue's priority lane
//!   (pongs, heartbeat pings) can only slip in between frames, which RFC 6455 allows.
//! - A message is queued whole or not at all: the frames of a message are encoded into the
//!   encoder's buffer and handed to the queue as one item, so a full queue never leaves half a
//!   message on the wire.
//! - A client masks every frame with a fresh key from the OS's generator; a server never masks.
//! - The heartbeat is the RFC's own ping/pong: [`Control::ping_seq`] carries a `u64` sequence
//!   number (8 bytes, big-endian) and [`pong_seq`] reads it back from the pong that echoes it.
//!   Browsers answer pings with no JavaScript at all.

use crate::conn::{Connection, Outbox};
use crate::error::Error;

use super::frame::{
    MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, apply_mask, encode_frame, header_len,
};
use super::{Role, WsCodec, close};

/// Where frames go: a connection, or the [`Outbox`] lent to a frame callback.
pub trait Sink {
    /// Queues whole frames on the data lane.
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Queues whole control frames on the priority lane (ahead of queued data, at a frame
    /// boundary).
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error>;
}

impl Sink for Outbox<'_, WsCodec> {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.send(bytes)?)
    }
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.send_priority(bytes)?)
    }
}

impl Sink for Connection<WsCodec> {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.send(bytes)?)
    }
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        Ok(self.send_priority(bytes)?)
    }
}

/// A fresh masking key for a client frame; `None` for a server.
fn mask_for(role: Role) -> Result<Option<[u8; 4]>, Error> {
    match role {
        Role::Server => Ok(None),
        Role::Client => {
            let mut key = [0u8; 4];
            getrandom::fill(&mut key).map_err(|e| Error::Io(std::io::Error::other(e)))?;
            Ok(Some(key))
        }
    }
}

/// One encoded control frame, on the stack (at most 131 bytes).
#[derive(Clone, Copy)]
pub struct Control {
    bytes: [u8; 6 + MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Control").field(&self.as_ref()).finish()
    }
}

impl AsRef<[u8]> for Control {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Control {
    /// A control frame of `opcode` (close, ping or pong) for `role`; a payload over 125 bytes
    /// is refused.
    pub fn new(role: Role, opcode: OpCode, payload: &[u8]) -> Result<Control, Error> {
        if !opcode.is_control() || payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::Unencodable {
                reason: "not a control frame of at most 125 bytes",
            });
        }
        let mask = mask_for(role)?;
        let mut bytes = [0u8; 6 + MAX_CONTROL_PAYLOAD];
        bytes[0] = 0x80 | opcode.bits();
        bytes[1] = if mask.is_some() { 0x80 } else { 0 } | payload.len() as u8;
        let start = if mask.is_some() { 6 } else { 2 };
        let end = start + payload.len();
        bytes[start..end].copy_from_slice(payload);
        if let Some(key) = mask {
            bytes[2..6].copy_from_slice(&key);
            apply_mask(&mut bytes[start..end], key, 0);
        }
        Ok(Control {
            bytes,
            len: end as u8,
        })
    }

    /// A ping carrying `seq` (8 bytes, big-endian): the heartbeat's probe.
    ///
    /// ```
    /// use wheelbeat_net::ws::{Control, Role, pong_seq};
    /// let ping = Control::ping_seq(Role::Server, 42).unwrap();
    /// assert_eq!(ping.as_ref(), b"\x89\x08\0\0\0\0\0\0\0\x2a");
    /// // The peer's pong echoes the payload:
    /// assert_eq!(pong_seq(&ping.as_ref()[2..]), Some(42));
    /// ```
    pub fn ping_seq(role: Role, seq: u64) -> Result<Control, Error> {
        Control::new(role, OpCode::Ping, &seq.to_be_bytes())
    }

    /// A close frame with `code` and a reason (cut to fit 123 bytes, at a char boundary).
    /// `None` sends an empty body.
    pub fn close(role: Role, code: Option<u16>, reason: &str) -> Result<Control, Error> {
        let Some(code) = code else {
            return Control::new(role, OpCode::Close, &[]);
        };
        let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        body[..2].copy_from_slice(&code.to_be_bytes());
        body[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
        Control::new(role, OpCode::Close, &body[..2 + end])
    }

    /// The normal close (1000, no reason).
    pub fn close_normal(role: Role) -> Result<Control, Error> {
        Control::close(role, Some(close::NORMAL), "")
    }
}

/// The sequence number in a pong's payload, if it is one of [`Control::ping_seq`]'s.
pub fn pong_seq(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

/// Text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A UTF-8 text message.
    Text,
    /// A binary message.
    Binary,
}

/// Frames whole messages into a buffer reused across connections: one per event loop.
///
/// Messages longer than the frame length are split into continuation frames. The buffer
/// is released after a message over 256 KiB, so a rare large message does not pin memory.
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
    max_frame: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder cutting messages into frames of at most 64 KiB (the
    /// [`WsCodec`] default, which refuses to queue larger frames).
    pub fn new() -> Self {
        Encoder::with_max_frame_len(super::codec::DEFAULT_MAX_FRAME_LEN)
    }

    /// An encoder cutting messages into frames of at most `max` bytes of payload (at least 1;
    /// at most the connection codec's [`max_payload_len`](WsCodec::max_payload_len)).
    pub fn with_max_frame_len(max: usize) -> Self {
        Encoder {
            buf: Vec::new(),
            max_frame: max.max(1),
        }
    }

    /// The encoded size of a message of `len` bytes (what it costs in the write queue).
    pub fn encoded_len(&self, role: Role, len: usize) -> usize {
        let frames = len.div_ceil(self.max_frame).max(1);
        let full = len / self.max_frame;
        let last = len - full.min(frames - 1) * self.max_frame;
        let masked = role == Role::Client;
        (frames - 1) * header_len(self.max_frame, masked) + header_len(last, masked) + len
    }

    /// Queues one message, whole or not at all.
    pub fn send<S: Sink + ?Sized>(
        &mut self,
        out: &mut S,
        role: Role,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.buf.clear();
        self.buf.reserve(self.encoded_len(role, payload.len()));
        let mut opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let mut chunks = payload.chunks(self.max_frame).peekable();
        if chunks.peek().is_none() {
            encode_frame(&mut self.buf, true, opcode, &[], mask_for(role)?);
        }
        while let Some(chunk) = chunks.next() {
            let fin = chunks.peek().is_none();
            encode_frame(&mut self.buf, fin, opcode, chunk, mask_for(role)?);
            opcode = OpCode::Continuation;
        }
        let sent = out.send_frames(&self.buf);
        if self.buf.capacity() > 256 * 1024 {
            self.buf = Vec::new();
        }
        sent
    }

    /// The bytes of the longest frame this encoder produces, header included.
    pub fn max_encoded_frame(&self) -> usize {
        self.max_frame + MAX_HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::FrameHeader;

    struct Capture(Vec<u8>, Vec<u8>);
    impl Sink for Capture {
        fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
            self.0.extend_from_slice(bytes);
            Ok(())
        }
        fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
            self.1.extend_from_slice(bytes);
            Ok(())
        }
    }

    /// Splits `wire` into (fin, opcode, unmasked payload) triples.
    fn frames(mut wire: &[u8]) -> Vec<(bool, OpCode, Vec<u8>)> {
        let mut out = Vec::new();
        while !wire.is_empty() {
            let h = FrameHeader::parse(wire).unwrap().unwrap();
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

    #[test]
    fn long_message_is_fragmented_and_encoded_len_is_exact() {
        for role in [Role::Server, Role::Client] {
            for len in [0, 1, 9, 10, 11, 25, 30] {
                let mut enc = Encoder::with_max_frame_len(10);
                let payload: Vec<u8> = (0..len as u8).collect();
                let mut out = Capture(Vec::new(), Vec::new());
                enc.send(&mut out, role, MessageKind::Binary, &payload)
                    .unwrap();
                assert_eq!(out.0.len(), enc.encoded_len(role, len), "{role:?} {len}");
                let f = frames(&out.0);
                assert_eq!(f.len(), len.div_ceil(10).max(1));
                assert_eq!(f[0].1, OpCode::Binary);
                assert!(f[1..].iter().all(|x| x.1 == OpCode::Continuation));
                assert!(f[..f.len() - 1].iter().all(|x| !x.0) && f[f.len() - 1].0);
                let joined: Vec<u8> = f.into_iter().flat_map(|x| x.2).collect();
                assert_eq!(joined, payload);
                let masked = FrameHeader::parse(&out.0).unwrap().unwrap().mask.is_some();
                assert_eq!(masked, role == Role::Client);
            }
        }
    }

    #[test]
    fn close_reason_is_cut_at_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let c = Control::close(Role::Server, Some(1000), &reason).unwrap();
        let f = frames(c.as_ref());
        assert_eq!(f[0].2.len(), 2 + 122);
        assert!(std::str::from_utf8(&f[0].2[2..]).is_ok());
        assert!(Control::new(Role::Server, OpCode::Ping, &[0; 126]).is_err());
        assert!(Control::new(Role::Server, OpCode::Text, b"x").is_err());
    }

    #[test]
    fn ping_seq_round_trips_through_a_masked_client_ping() {
        let ping = Control::ping_seq(Role::Client, u64::MAX - 1).unwrap();
        let f = frames(ping.as_ref());
        assert_eq!(f[0].1, OpCode::Ping);
        assert_eq!(pong_seq(&f[0].2), Some(u64::MAX - 1));
        assert_eq!(pong_seq(b"short"), None);
    }
}
