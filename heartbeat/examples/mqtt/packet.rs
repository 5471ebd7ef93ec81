//! MQTT 3.1.1 control packets: the framing (fixed header and remaining length) and the few
//! packets a keep-alive server needs, parsed from untrusted bytes and encoded.
//!
//! # Ground rules
//! - Parsing never panics and never allocates more than the packet it was given: every length
//!   is checked against the bytes present before it is used.
//! - A packet the server does not understand, or one with flags the spec reserves, is an
//!   error that closes that connection only (MQTT 3.1.1, section 4.8: "the Server MUST close
//!   the Network Connection").
//! - Sizes follow the spec's sections: fixed header 2.2, remaining length 2.2.3, CONNECT 3.1,
//!   PUBLISH 3.3, SUBSCRIBE 3.8, UNSUBSCRIBE 3.10, PINGREQ 3.12, DISCONNECT 3.14.

use std::fmt;
use std::ops::Range;

use wheelbeat_net::{Codec, Decoded, FrameError};

/// PINGREQ, byte for byte (section 3.12).
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// PINGRESP, byte for byte (section 3.13).
pub const PINGRESP: [u8; 2] = [0xD0, 0x00];

/// Largest remaining length the four-byte encoding can carry (section 2.2.3).
const MAX_REMAINING: usize = 268_435_455;

/// Why a packet was refused. Each closes the connection that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// The remaining-length field used a fifth byte.
    MalformedLength,
    /// The packet is longer than the server's frame cap.
    TooLong,
    /// A packet type the server does not take from clients (or 0 / 15, reserved).
    UnexpectedType(u8),
    /// Flags that section 2.2.2 reserves were set.
    ReservedFlags,
    /// A field ran past the end of the packet, or a string was not UTF-8.
    Truncated,
    /// CONNECT named a protocol other than MQTT 3.1.1 (level 4) or 3.1 (level 3).
    Protocol,
    /// PUBLISH with QoS 3, or a topic with a wildcard.
    BadPublish,
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter, or a requested QoS above 2.
    BadSubscribe,
}

impl PacketError {
    /// The reason as the server logs it.
    pub fn reason(self) -> &'static str {
        match self {
            PacketError::MalformedLength => "malformed remaining length",
            PacketError::TooLong => "packet too long",
            PacketError::UnexpectedType(_) => "unexpected packet type",
            PacketError::ReservedFlags => "reserved flags set",
            PacketError::Truncated => "truncated packet",
            PacketError::Protocol => "unsupported protocol",
            PacketError::BadPublish => "malformed publish",
            PacketError::BadSubscribe => "malformed subscribe",
        }
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// One packet from a client, borrowing from the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT: the client's id and its keep-alive in seconds (0: no keep-alive).
    Connect { client_id: &'a str, keep_alive: u16 },
    /// PUBLISH: delivered to subscribers at QoS 0; QoS 1 and 2 are acknowledged.
    Publish {
        topic: &'a str,
        qos: u8,
        packet_id: Option<u16>,
        payload: &'a [u8],
    },
    /// PUBREL, the third step of a QoS 2 publish.
    PubRel { packet_id: u16 },
    /// SUBSCRIBE: the filters, each with its requested QoS.
    Subscribe {
        packet_id: u16,
        filters: Vec<(&'a str, u8)>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        packet_id: u16,
        filters: Vec<&'a str>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
    /// PUBACK, PUBREC, PUBCOMP from a client (for QoS > 0 messages the server sent: it sends
    /// none, so these are accepted and ignored).
    Ack,
}

/// Cuts the byte stream into whole packets, fixed header included, so that a frame can be
/// classified by its first byte. The cap applies to the whole packet and is checked as soon
/// as the remaining length is known, before any of the body is buffered.
#[derive(Debug, Clone)]
pub struct MqttCodec {
    max_frame_len: usize,
}

impl MqttCodec {
    /// A codec taking packets of up to `max_frame_len` bytes, header included.
    pub fn new(max_frame_len: usize) -> MqttCodec {
        MqttCodec {
            max_frame_len: max_frame_len.min(MAX_REMAINING + 5),
        }
    }
}

impl MqttCodec {
    fn too_long(&self, len: u64) -> FrameError {
        FrameError::FrameTooLong {
            len,
            max: self.max_frame_len,
        }
    }
}

/// Reads the remaining length at `buf[1..]`: `Ok(None)` if more bytes are needed, else the
/// length and the header size.
fn remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, PacketError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, 2 + i)));
        }
    }
    Err(PacketError::MalformedLength)
}

impl Codec for MqttCodec {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        let (len, header) = match remaining_length(buf) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            // A fifth length byte announces more than the encoding can carry: too long.
            Err(_) => return Err(self.too_long(MAX_REMAINING as u64 + 1)),
        };
        let total = header + len;
        if total > self.max_frame_len {
            return Err(self.too_long(total as u64));
        }
        if buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Decoded {
            frame: 0..total,
            consumed: total,
        }))
    }

    /// The payload is a whole packet already (the server encodes its own headers).
    fn encode(&self, payload: &[u8], dst: &mut Vec<u8>) -> Result<(), FrameError> {
        if payload.len() > self.max_frame_len {
            return Err(self.too_long(payload.len() as u64));
        }
        dst.extend_from_slice(payload);
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn encoded_len(&self, len: usize) -> usize {
        len
    }

    fn max_buffered_len(&self) -> usize {
        self.max_frame_len
    }
}

/// A cursor over a packet's variable header and payload.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PacketError> {
        if self.buf.len() < n {
            return Err(PacketError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PacketError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PacketError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], PacketError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn str(&mut self) -> Result<&'a str, PacketError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| PacketError::Truncated)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Parses one whole packet as [`MqttCodec`] delivers it.
pub fn parse(frame: &[u8]) -> Result<Packet<'_>, PacketError> {
    let (len, header) = remaining_length(frame)?.ok_or(PacketError::Truncated)?;
    let Some(body) = frame.get(header..header + len) else {
        return Err(PacketError::Truncated);
    };
    let (kind, flags) = (frame[0] >> 4, frame[0] & 0x0F);
    let mut f = Fields { buf: body };
    let fixed_flags = |want: u8| {
        if flags == want {
            Ok(())
        } else {
            Err(PacketError::ReservedFlags)
        }
    };
    match kind {
        1 => {
            fixed_flags(0)?;
            let name = f.str()?;
            let level = f.u8()?;
            if !matches!((name, level), ("MQTT", 4) | ("MQIsdp", 3)) {
                return Err(PacketError::Protocol);
            }
            let connect_flags = f.u8()?;
            if connect_flags & 1 != 0 {
                return Err(PacketError::ReservedFlags);
            }
            let keep_alive = f.u16()?;
            let client_id = f.str()?;
            // Will, user name and password follow; the server has no use for them, but they
            // must be well formed.
            if connect_flags & 0x04 != 0 {
                f.str()?;
                f.bytes()?;
            }
            if connect_flags & 0x80 != 0 {
                f.str()?;
            }
            if connect_flags & 0x40 != 0 {
                f.bytes()?;
            }
            Ok(Packet::Connect {
                client_id,
                keep_alive,
            })
        }
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(PacketError::BadPublish);
            }
            let topic = f.str()?;
            if topic.is_empty() || topic.contains(['+', '#']) {
                return Err(PacketError::BadPublish);
            }
            let packet_id = if qos > 0 { Some(f.u16()?) } else { None };
            Ok(Packet::Publish {
                topic,
                qos,
                packet_id,
                payload: f.buf,
            })
        }
        4 | 5 | 7 => {
            fixed_flags(0)?;
            f.u16()?;
            Ok(Packet::Ack)
        }
        6 => {
            fixed_flags(2)?;
            Ok(Packet::PubRel {
                packet_id: f.u16()?,
            })
        }
        8 => {
            fixed_flags(2)?;
            let packet_id = f.u16()?;
            let mut filters = Vec::new();
            while !f.is_empty() {
                let filter = f.str()?;
                let qos = f.u8()?;
                if qos > 2 || filter.is_empty() {
                    return Err(PacketError::BadSubscribe);
                }
                filters.push((filter, qos));
            }
            if filters.is_empty() {
                return Err(PacketError::BadSubscribe);
            }
            Ok(Packet::Subscribe { packet_id, filters })
        }
        10 => {
            fixed_flags(2)?;
            let packet_id = f.u16()?;
            let mut filters = Vec::new();
            while !f.is_empty() {
                filters.push(f.str()?);
            }
            if filters.is_empty() {
                return Err(PacketError::BadSubscribe);
            }
            Ok(Packet::Unsubscribe { packet_id, filters })
        }
        12 => {
            fixed_flags(0)?;
            Ok(Packet::PingReq)
        }
        14 => {
            fixed_flags(0)?;
            Ok(Packet::Disconnect)
        }
        other => Err(PacketError::UnexpectedType(other)),
    }
}

/// Appends the fixed header of a packet of `kind_flags` with `len` bytes after it.
fn header(kind_flags: u8, mut len: usize, out: &mut Vec<u8>) {
    out.push(kind_flags);
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}

/// CONNACK: accepted (return code 0) or refused with `code`; no session is kept.
pub fn connack(code: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x20, 0x02, 0x00, code]);
}

/// SUBACK granting QoS 0 to each of `n` filters.
pub fn suback(packet_id: u16, n: usize, out: &mut Vec<u8>) {
    header(0x90, 2 + n, out);
    out.extend_from_slice(&packet_id.to_be_bytes());
    out.extend(std::iter::repeat_n(0u8, n));
}

/// UNSUBACK.
pub fn unsuback(packet_id: u16, out: &mut Vec<u8>) {
    out.push(0xB0);
    out.push(0x02);
    out.extend_from_slice(&packet_id.to_be_bytes());
}

/// PUBACK (QoS 1), PUBREC (QoS 2, step 2) or PUBCOMP (QoS 2, step 4): `kind` is 4, 5 or 7.
pub fn ack(kind: u8, packet_id: u16, out: &mut Vec<u8>) {
    out.push(kind << 4);
    out.push(0x02);
    out.extend_from_slice(&packet_id.to_be_bytes());
}

/// PUBLISH at QoS 0 (what subscribers get, whatever the publisher's QoS).
pub fn publish(topic: &str, payload: &[u8], out: &mut Vec<u8>) {
    header(0x30, 2 + topic.len() + payload.len(), out);
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(payload);
}

/// The byte range of the packet's body after its fixed header (for logging sizes).
pub fn body_range(frame: &[u8]) -> Option<Range<usize>> {
    let (len, header) = remaining_length(frame).ok()??;
    Some(header..header + len)
}

/// True if `topic` matches the subscription `filter` (section 4.7: `+` one level, `#` the
/// rest; topics starting with `$` are not matched by a leading wildcard).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut t = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if t.next().is_none() {
                    return false;
                }
            }
            exact => {
                if t.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_packet(keep_alive: u16, client_id: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0, 4]);
        body.extend_from_slice(b"MQTT");
        body.extend_from_slice(&[4, 0x02]);
        body.extend_from_slice(&keep_alive.to_be_bytes());
        body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        body.extend_from_slice(client_id.as_bytes());
        let mut out = Vec::new();
        header(0x10, body.len(), &mut out);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn connect_yields_the_keep_alive_and_client_id() {
        let p = connect_packet(60, "c1");
        assert_eq!(
            parse(&p),
            Ok(Packet::Connect {
                client_id: "c1",
                keep_alive: 60
            })
        );
    }

    #[test]
    fn pingreq_is_exactly_two_bytes() {
        let mut c = MqttCodec::new(1024);
        let d = c.decode(&PINGREQ).unwrap().unwrap();
        assert_eq!(d.consumed, 2);
        assert_eq!(parse(&PINGREQ), Ok(Packet::PingReq));
    }

    #[test]
    fn a_fifth_length_byte_is_malformed() {
        let mut c = MqttCodec::new(1 << 20);
        assert!(c.decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err());
    }

    #[test]
    fn the_cap_is_checked_before_the_body_arrives() {
        let mut c = MqttCodec::new(1024);
        // 2 MiB announced, 3 bytes present.
        assert!(matches!(
            c.decode(&[0x30, 0x80, 0x80, 0x01]),
            Err(FrameError::FrameTooLong { .. })
        ));
    }

    #[test]
    fn reserved_flags_are_refused() {
        assert_eq!(parse(&[0xC1, 0x00]), Err(PacketError::ReservedFlags));
        assert_eq!(parse(&[0x80, 0x00]), Err(PacketError::ReservedFlags));
    }

    #[test]
    fn publish_round_trips_at_qos_0() {
        let mut out = Vec::new();
        publish("a/b", b"hi", &mut out);
        assert_eq!(
            parse(&out),
            Ok(Packet::Publish {
                topic: "a/b",
                qos: 0,
                packet_id: None,
                payload: b"hi"
            })
        );
    }

    #[test]
    fn subscribe_lists_its_filters() {
        let body = [0x00, 0x07, 0x00, 0x03, b'a', b'/', b'#', 0x00];
        let mut p = Vec::new();
        header(0x82, body.len(), &mut p);
        p.extend_from_slice(&body);
        assert_eq!(
            parse(&p),
            Ok(Packet::Subscribe {
                packet_id: 7,
                filters: vec![("a/#", 0)]
            })
        );
    }

    #[test]
    fn truncated_fields_are_errors_not_panics() {
        for n in 0..12 {
            let p = connect_packet(5, "client");
            let cut = &p[..n.min(p.len())];
            let _ = parse(cut);
        }
        assert_eq!(parse(&[0x10, 0x02, 0x00, 0x04]), Err(PacketError::Truncated));
    }

    #[test]
    fn topic_filters_match_as_section_4_7_says() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "x/y"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(matches("+/+", "/x"));
    }

    #[test]
    fn the_length_encoding_round_trips() {
        for len in [0usize, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_REMAINING] {
            let mut out = Vec::new();
            header(0x30, len, &mut out);
            assert_eq!(remaining_length(&out), Ok(Some((len, out.len()))));
        }
    }
}
