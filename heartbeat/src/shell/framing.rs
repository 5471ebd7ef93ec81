//! The framing a loop speaks: newline-delimited (the default), length-prefixed, WebSocket, or
//! one the application provides ([`CustomFraming`]: MQTT's fixed header, a game's opcode
//! header), chosen at run time with [`Options::framing`](super::Options::framing).
//!
//! A plain enum that delegates to wheelbeat-net's codecs, so a loop needs no generic
//! parameter and no boxing per connection.
//!
//! # Ground rules
//! - A custom framing is **stateless**: it decodes with `&self`, from the bytes buffered so
//!   far and the loop's frame cap. One value, behind an [`Arc`], serves every connection of
//!   every loop; a connection holds a thin pointer to it (8 bytes inline, one reference-count
//!   increment when it opens), never a heap allocation of its own.
//! - The cap is the loop's [`Options::max_frame_len`](super::Options::max_frame_len), handed
//!   to every call: a framing must refuse a longer frame as soon as its header says so, before
//!   the body is buffered.
//! - Decoding untrusted bytes must not panic: `Ok(None)` is "need more bytes", `Err` closes
//!   that connection only.

use std::fmt;
use std::sync::Arc;

use wheelbeat_net::ws::WsCodec;
use wheelbeat_net::{Codec, Decoded, FrameError, LengthCodec, LineCodec};

/// A framing written by the application: how its protocol cuts a byte stream into frames and
/// puts a frame on the wire, for [`Framing::custom`].
///
/// - It is **stateless**: it decodes with `&self`, from the bytes buffered so far. One value
///   serves every connection of every loop; a connection holds a thin pointer to it (8 bytes
///   inline), never a heap allocation of its own.
/// - The cap is the loop's [`Options::max_frame_len`](crate::Options::max_frame_len), handed
///   to every call: refuse a longer frame as soon as its header says so, before the body is
///   buffered.
/// - Decoding untrusted bytes must not panic: `Ok(None)` is "need more bytes", `Err` closes
///   that connection only. Return [`FrameError::FrameTooLong`](wheelbeat_net::FrameError) for
///   a frame over the cap (a protocol error: the format's goodbye is sent, then the close);
///   any other error closes the connection at once ([`CloseReason::Io`](crate::CloseReason)
///   with its message).
///
/// ```
/// use wheelbeat_heartbeat::{CustomFraming, Framing};
/// use wheelbeat_net::{Decoded, FrameError};
///
/// /// A 2-byte big-endian length, then the frame.
/// #[derive(Debug)]
/// struct Short;
///
/// impl CustomFraming for Short {
///     fn decode(&self, buf: &[u8], max: usize) -> Result<Option<Decoded>, FrameError> {
///         let Some(head) = buf.get(..2) else { return Ok(None) };
///         let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
///         if len > max {
///             return Err(FrameError::FrameTooLong { len: len as u64, max });
///         }
///         Ok((buf.len() >= 2 + len).then(|| Decoded { frame: 2..2 + len, consumed: 2 + len }))
///     }
///     fn encode(&self, payload: &[u8], max: usize, dst: &mut Vec<u8>) -> Result<(), FrameError> {
///         let len = u16::try_from(payload.len())
///             .ok()
///             .filter(|&n| usize::from(n) <= max)
///             .ok_or(FrameError::FrameTooLong { len: payload.len() as u64, max })?;
///         dst.extend_from_slice(&len.to_be_bytes());
///         dst.extend_from_slice(payload);
///         Ok(())
///     }
///     fn encoded_len(&self, len: usize) -> usize {
///         2 + len
///     }
/// }
///
/// let framing = Framing::custom(Short);
/// # let _ = framing;
/// ```
pub trait CustomFraming: Send + Sync + fmt::Debug + 'static {
    /// Finds the first frame in `buf`: `Ok(Some(_))` with its position, `Ok(None)` if more
    /// bytes are needed, `Err` if `buf` does not start with a valid frame or announces one
    /// longer than `max_frame_len`. Must not return `Ok(None)` once
    /// [`max_buffered_len`](Self::max_buffered_len) bytes are present.
    fn decode(&self, buf: &[u8], max_frame_len: usize) -> Result<Option<Decoded>, FrameError>;

    /// Appends `payload`, framed, to `dst`; fails (leaving `dst` unchanged) if it is longer
    /// than `max_frame_len` or cannot be framed.
    fn encode(
        &self,
        payload: &[u8],
        max_frame_len: usize,
        dst: &mut Vec<u8>,
    ) -> Result<(), FrameError>;

    /// Exactly how many bytes [`encode`](Self::encode) appends for a payload of `len` bytes.
    fn encoded_len(&self, len: usize) -> usize;

    /// The most bytes buffered without a complete frame. The default allows 8 framing bytes.
    fn max_buffered_len(&self, max_frame_len: usize) -> usize {
        max_frame_len + 8
    }
}

/// How frames are cut from the byte stream.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Framing {
    /// One frame per line, ended by `\n` (a `\r` before it is stripped).
    #[default]
    Line,
    /// A 4-byte big-endian length, then the frame.
    Length,
    /// WebSocket (RFC 6455): the HTTP upgrade, then WebSocket frames; the heartbeat is the
    /// RFC's own ping and pong. Set with [`ServerBuilder::websocket`](crate::ServerBuilder::websocket)
    /// / [`PoolBuilder::websocket`](crate::PoolBuilder::websocket), which also take the
    /// [`WsSettings`](crate::WsSettings).
    WebSocket,
    /// The application's own framing ([`Framing::custom`]), shared by every connection.
    Custom(SharedFraming),
}

/// A [`CustomFraming`] shared by every connection of every loop; cloning it clones a
/// pointer. Made by [`Framing::custom`].
#[derive(Debug, Clone)]
pub struct SharedFraming(Arc<Box<dyn CustomFraming>>);

impl Framing {
    /// The application's own framing. See [`CustomFraming`].
    pub fn custom(framing: impl CustomFraming) -> Framing {
        // Boxed once, so that a connection's pointer to it is thin (8 bytes, not 16).
        Framing::Custom(SharedFraming(Arc::new(Box::new(framing))))
    }

    /// Bytes on the wire for a frame of `len` bytes (at most, for WebSocket: a server's
    /// frames are unmasked, a client's carry a 4-byte mask).
    pub(crate) fn encoded_len(&self, len: usize) -> usize {
        AnyCodec::new(self, len, false).encoded_len(len)
    }
}

/// Two custom framings are equal if they are the same value.
impl PartialEq for Framing {
    fn eq(&self, other: &Framing) -> bool {
        match (self, other) {
            (Framing::Line, Framing::Line)
            | (Framing::Length, Framing::Length)
            | (Framing::WebSocket, Framing::WebSocket) => true,
            (Framing::Custom(a), Framing::Custom(b)) => Arc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

impl Eq for Framing {}

/// The codec of one connection.
#[derive(Debug, Clone)]
pub(crate) enum AnyCodec {
    Line(LineCodec),
    Length(LengthCodec),
    Ws(WsCodec),
    /// A thin pointer and the cap as `u32` (the loop's cap is at most 16 MiB) keep the enum
    /// at 16 bytes.
    Custom {
        framing: Arc<Box<dyn CustomFraming>>,
        max: u32,
    },
}

impl AnyCodec {
    /// The codec of a connection we accepted (`inbound`) or opened.
    pub(crate) fn new(framing: &Framing, max_frame_len: usize, inbound: bool) -> AnyCodec {
        match framing {
            Framing::Line => AnyCodec::Line(LineCodec::with_max_frame_len(max_frame_len)),
            Framing::Length => AnyCodec::Length(LengthCodec::with_max_frame_len(max_frame_len)),
            Framing::WebSocket => {
                let codec = if inbound {
                    WsCodec::server()
                } else {
                    WsCodec::client()
                };
                // `Options::validate` keeps the cap within what the codec accepts.
                AnyCodec::Ws(codec.with_max_frame_len(max_frame_len))
            }
            Framing::Custom(f) => AnyCodec::Custom {
                framing: f.0.clone(),
                max: u32::try_from(max_frame_len).unwrap_or(u32::MAX),
            },
        }
    }
}

impl Codec for AnyCodec {
    fn decode_mut(&mut self, buf: &mut [u8]) -> Result<Option<Decoded>, FrameError> {
        match self {
            // WebSocket unmasks in place; the others have nothing to change.
            AnyCodec::Ws(c) => c.decode_mut(buf),
            other => other.decode(buf),
        }
    }

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        match self {
            AnyCodec::Line(c) => c.decode(buf),
            AnyCodec::Length(c) => c.decode(buf),
            AnyCodec::Ws(c) => c.decode(buf),
            AnyCodec::Custom { framing, max } => framing.decode(buf, *max as usize),
        }
    }

    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        match self {
            AnyCodec::Line(c) => c.encode(payload, dst),
            AnyCodec::Length(c) => c.encode(payload, dst),
            AnyCodec::Ws(c) => c.encode(payload, dst),
            AnyCodec::Custom { framing, max } => framing.encode(payload, *max as usize, dst),
        }
    }

    fn max_frame_len(&self) -> usize {
        match self {
            AnyCodec::Line(c) => c.max_frame_len(),
            AnyCodec::Length(c) => c.max_frame_len(),
            AnyCodec::Ws(c) => c.max_frame_len(),
            AnyCodec::Custom { max, .. } => *max as usize,
        }
    }

    fn encoded_len(&self, len: usize) -> usize {
        match self {
            AnyCodec::Line(c) => c.encoded_len(len),
            AnyCodec::Length(c) => c.encoded_len(len),
            AnyCodec::Ws(c) => c.encoded_len(len),
            AnyCodec::Custom { framing, .. } => framing.encoded_len(len),
        }
    }

    fn max_buffered_len(&self) -> usize {
        match self {
            AnyCodec::Line(c) => c.max_buffered_len(),
            AnyCodec::Length(c) => c.max_buffered_len(),
            AnyCodec::Ws(c) => c.max_buffered_len(),
            AnyCodec::Custom { framing, max } => framing.max_buffered_len(*max as usize),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyCodec::Line(c) => c.reset(),
            AnyCodec::Length(c) => c.reset(),
            AnyCodec::Ws(c) => c.reset(),
            AnyCodec::Custom { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-byte length, then the frame: the smallest custom framing.
    #[derive(Debug)]
    struct Byte;

    impl CustomFraming for Byte {
        fn decode(&self, buf: &[u8], max: usize) -> Result<Option<Decoded>, FrameError> {
            let Some(&len) = buf.first() else {
                return Ok(None);
            };
            let len = usize::from(len);
            if len > max {
                return Err(FrameError::FrameTooLong {
                    len: len as u64,
                    max,
                });
            }
            Ok((buf.len() > len).then_some(Decoded {
                frame: 1..1 + len,
                consumed: 1 + len,
            }))
        }
        fn encode(&self, payload: &[u8], max: usize, dst: &mut Vec<u8>) -> Result<(), FrameError> {
            match u8::try_from(payload.len()) {
                Ok(n) if payload.len() <= max => {
                    dst.push(n);
                    dst.extend_from_slice(payload);
                    Ok(())
                }
                _ => Err(FrameError::FrameTooLong {
                    len: payload.len() as u64,
                    max,
                }),
            }
        }
        fn encoded_len(&self, len: usize) -> usize {
            1 + len
        }
    }

    fn all() -> [Framing; 3] {
        [Framing::Line, Framing::Length, Framing::custom(Byte)]
    }

    #[test]
    fn every_framing_round_trips_a_heartbeat() {
        for framing in all() {
            let mut codec = AnyCodec::new(&framing, 100, true);
            let mut wire = Vec::new();
            codec.encode(br#"{"ping":1}"#, &mut wire).unwrap();
            assert_eq!(wire.len(), codec.encoded_len(10));
            assert_eq!(wire.len(), framing.encoded_len(10));
            let d = codec.decode(&wire).unwrap().unwrap();
            assert_eq!(&wire[d.frame], br#"{"ping":1}"#);
        }
    }

    #[test]
    fn the_frame_cap_holds_for_every_framing() {
        for framing in all() {
            let codec = AnyCodec::new(&framing, 16, true);
            assert_eq!(codec.max_frame_len(), 16);
            assert!(codec.encode(&[b'a'; 17], &mut Vec::new()).is_err());
        }
        // The custom framing is handed the loop's cap, not a cap of its own.
        let mut codec = AnyCodec::new(&Framing::custom(Byte), 16, true);
        assert!(codec.decode(&[17]).is_err());
        assert!(matches!(codec.decode(&[16]), Ok(None)));
    }

    /// Guards "no heap per idle connection": a custom framing costs a connection a shared
    /// pointer and the cap, inline in the enum, never an allocation of its own. (The enum is
    /// as large as its largest codec, the WebSocket one with its UTF-8 state: 24 bytes.)
    #[test]
    fn a_custom_framing_is_shared_not_copied_per_connection() {
        let framing = Framing::custom(Byte);
        let a = AnyCodec::new(&framing, 64, true);
        let b = AnyCodec::new(&framing, 64, true);
        let (AnyCodec::Custom { framing: fa, .. }, AnyCodec::Custom { framing: fb, .. }) = (a, b)
        else {
            panic!("custom framing expected");
        };
        assert!(Arc::ptr_eq(&fa, &fb));
        let size = std::mem::size_of::<AnyCodec>();
        assert!(size <= 24, "AnyCodec is {size} bytes");
        assert_eq!(framing, framing.clone());
        assert_ne!(framing, Framing::custom(Byte));
    }
}
