//! Issue 9, item 1: a heartbeat format written here, a binary ping opcode with a sequence
//! number, runs on the same endpoint and driver as the JSON default, over real sockets; and
//! so does a framing written here ([`Framing::custom`]), as MQTT's or a game protocol's needs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wheelbeat_heartbeat::format::{Format, Inbound};
use wheelbeat_heartbeat::{CustomFraming, Framing, Pool, ProtocolError, Server};
use wheelbeat_net::{Decoded, FrameError};

/// `0x01 seq(8)` ping, `0x02 seq(8)` pong, `0x03 …` data; length-prefixed frames.
#[derive(Debug)]
struct Opcodes;

fn seq(frame: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(frame.get(1..9)?.try_into().ok()?))
}

impl Format for Opcodes {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        match frame.first() {
            Some(1) => Ok(Inbound::Ping(Some(
                seq(frame).ok_or(ProtocolError::Malformed("short ping"))?,
            ))),
            Some(2) => Ok(Inbound::Pong(Some(
                seq(frame).ok_or(ProtocolError::Malformed("short pong"))?,
            ))),
            Some(3) => Ok(Inbound::Data(&frame[1..])),
            _ => Err(ProtocolError::Malformed("unknown opcode")),
        }
    }
    fn encode_ping(&self, seq: u64, out: &mut Vec<u8>) {
        out.push(1);
        out.extend_from_slice(&seq.to_be_bytes());
    }
    fn encode_pong(&self, seq: u64, out: &mut Vec<u8>) {
        out.push(2);
        out.extend_from_slice(&seq.to_be_bytes());
    }
    fn encode_error(&self, _error: ProtocolError, out: &mut Vec<u8>) {
        out.push(0xff);
    }
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut f).unwrap();
    f
}

#[test]
fn a_binary_opcode_format_heartbeats_between_a_server_and_a_pool() {
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(common::heartbeat(100, 1_000, 3))
        .framing(Framing::Length)
        .format(Opcodes)
        .start(|_| ())
        .unwrap();
    let pool = Pool::builder()
        .connect(server.local_addr(), 20)
        .heartbeat(common::heartbeat(100, 1_000, 3))
        .framing(Framing::Length)
        .format(Opcodes)
        .start(|_| ())
        .unwrap();
    // Both sides ping every ~100 ms and answer each other: wait (bounded) for RTT samples.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (server.stats().pongs_received < 40 || pool.stats().pongs_received < 40)
        && Instant::now() < deadline
    {
        std::thread::yield_now();
    }
    let (s, p) = (server.stats(), pool.stats());
    pool.shutdown();
    server.shutdown();
    assert!(
        s.pongs_received >= 40 && p.pongs_received >= 40,
        "{s:?} {p:?}"
    );
    assert_eq!(s.closed.missed_pings + p.closed.missed_pings, 0);
    assert_eq!(s.protocol_errors + p.protocol_errors, 0);
}

#[test]
fn a_raw_client_gets_its_opcode_pong_and_a_bad_opcode_gets_the_goodbye() {
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(common::heartbeat(60_000, 10_000, 3))
        .framing(Framing::Length)
        .format(Opcodes)
        .start(|_| ())
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut ping = vec![0, 0, 0, 9, 1];
    ping.extend_from_slice(&77u64.to_be_bytes());
    c.write_all(&ping).unwrap();
    let mut pong = vec![2];
    pong.extend_from_slice(&77u64.to_be_bytes());
    // (A server ping could come first if its first window were tiny; it is up to 66 s here.)
    assert_eq!(read_frame(&mut c), pong);
    c.write_all(&[0, 0, 0, 1, 9]).unwrap();
    assert_eq!(read_frame(&mut c), [0xff], "the format's goodbye");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "then the close");
    assert_eq!(server.stats().closed.protocol_error, 1);
    server.shutdown();
}

/// A 2-byte big-endian length, then the frame: a framing the shell does not have built in.
#[derive(Debug)]
struct Short;

impl CustomFraming for Short {
    fn decode(&self, buf: &[u8], max: usize) -> Result<Option<Decoded>, FrameError> {
        let Some(head) = buf.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        if len > max {
            return Err(FrameError::FrameTooLong {
                len: len as u64,
                max,
            });
        }
        Ok((buf.len() >= 2 + len).then_some(Decoded {
            frame: 2..2 + len,
            consumed: 2 + len,
        }))
    }
    fn encode(&self, payload: &[u8], max: usize, dst: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = u16::try_from(payload.len())
            .ok()
            .filter(|_| payload.len() <= max)
            .ok_or(FrameError::FrameTooLong {
                len: payload.len() as u64,
                max,
            })?;
        dst.extend_from_slice(&len.to_be_bytes());
        dst.extend_from_slice(payload);
        Ok(())
    }
    fn encoded_len(&self, len: usize) -> usize {
        2 + len
    }
}

#[test]
fn a_custom_framing_carries_the_opcode_format_between_a_server_and_a_pool() {
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(common::heartbeat(100, 1_000, 3))
        .framing(Framing::custom(Short))
        .format(Opcodes)
        .start(|_| ())
        .unwrap();
    let pool = Pool::builder()
        .connect(server.local_addr(), 20)
        .heartbeat(common::heartbeat(100, 1_000, 3))
        .framing(Framing::custom(Short))
        .format(Opcodes)
        .start(|_| ())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (server.stats().pongs_received < 40 || pool.stats().pongs_received < 40)
        && Instant::now() < deadline
    {
        std::thread::yield_now();
    }
    let (s, p) = (server.stats(), pool.stats());
    pool.shutdown();
    server.shutdown();
    assert!(
        s.pongs_received >= 40 && p.pongs_received >= 40,
        "{s:?} {p:?}"
    );
    assert_eq!(s.closed.missed_pings + p.closed.missed_pings, 0);
    assert_eq!(s.protocol_errors + p.protocol_errors, 0);
}

/// The loop's cap reaches the custom framing: a header announcing more is refused before the
/// body is sent, and only that connection is closed.
#[test]
fn a_custom_framing_refuses_an_over_cap_frame_from_its_header() {
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(common::heartbeat(60_000, 10_000, 3))
        .framing(Framing::custom(Short))
        .format(Opcodes)
        .max_frame_len(64)
        .start(|_| ())
        .unwrap();
    let mut good = TcpStream::connect(server.local_addr()).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bad = TcpStream::connect(server.local_addr()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // 65 bytes announced, none sent.
    bad.write_all(&[0, 65]).unwrap();
    let mut rest = Vec::new();
    bad.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest,
        [0, 1, 0xff],
        "the format's goodbye, in the custom framing, then the close"
    );
    // The loop publishes its counters after the turn that closed the connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().closed.protocol_error == 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(server.stats().closed.protocol_error, 1);
    // The other connection carries on: its ping is answered.
    let mut ping = vec![0, 9, 1];
    ping.extend_from_slice(&5u64.to_be_bytes());
    good.write_all(&ping).unwrap();
    let mut pong = [0u8; 11];
    good.read_exact(&mut pong).unwrap();
    assert_eq!(pong[..3], [0, 9, 2]);
    assert_eq!(pong[3..], 5u64.to_be_bytes());
    server.shutdown();
}
