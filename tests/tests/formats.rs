//! Issue 9, item 1: a heartbeat format written here, a binary ping opcode with a sequence
//! number, runs on the same endpoint and driver as the JSON default, over real sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use wheelbeat_heartbeat::format::{Format, Inbound};
use wheelbeat_heartbeat::{Framing, Pool, ProtocolError, Server};

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
