//! The TLS read-path harness: arbitrary bytes from a "peer" into a server-side
//! `Connection<LineCodec, TlsStream<Mem>>`, fed in chunks the way a socket delivers them.
//!
//! Input layout: byte 0 seeds the chunk sizes; bit 0 of byte 1 puts a real ClientHello
//! (made once by a rustls client) in front of the rest, so the fuzzer also reaches the
//! states after it; the rest is the peer's bytes.
//!
//! Checked, on every call:
//! - no panic, no endless loop (every `read_frames` call returns);
//! - the connection's own buffers stay under the documented bound
//!   (`INCOMING_CAP` of ciphertext + a record of plaintext + the partial frame + output);
//! - an error ends the connection: nothing is read after it.

use std::io::{self, IoSlice};
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use mio::{Interest, Registry, Token};
use wheelbeat_net::tls::stream::{INCOMING_CAP, READ_CHUNK};
use wheelbeat_net::tls::{ClientAuth, Roots, TlsStream, client_config, server_config};
use wheelbeat_net::{Codec, Connection, PeerAddr, ReadBuf, ReadStatus, ShutdownStatus, Transport};

/// An in-memory transport: reads come from `input` up to `avail`, writes are counted and
/// dropped.
#[derive(Debug, Default)]
pub struct Mem {
    pub input: Vec<u8>,
    pub pos: usize,
    pub avail: usize,
    pub written: usize,
    pub eof: bool,
}

impl mio::event::Source for Mem {
    fn register(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn reregister(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Mem {
    const SHORT_READ_DRAINS: bool = true;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.avail - self.pos).min(buf.len());
        if n == 0 {
            return if self.eof && self.pos == self.input.len() {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.iter().map(|b| b.len()).sum();
        self.written += n;
        Ok(n)
    }
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        Ok(ShutdownStatus::Done)
    }
    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(None))
    }
    fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(None))
    }
}

struct Fixture {
    server: Arc<wheelbeat_net::tls::rustls::ServerConfig>,
    client_hello: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
        let server = server_config(cert.as_bytes(), key.as_bytes(), &[], ClientAuth::None).unwrap();
        let client = client_config(Roots::Pem(cert.into_bytes()), &[], None).unwrap();
        // A real ClientHello: what a client writes on its first flush.
        let mut rec = TlsStream::client(Recorder::default(), client, "localhost", None).unwrap();
        assert!(rec.flush_output().unwrap());
        let hello = rec.get_ref().0.clone();
        Fixture {
            server,
            client_hello: hello,
        }
    })
}

/// A transport that records what is written to it.
#[derive(Debug, Default)]
struct Recorder(Vec<u8>);

impl mio::event::Source for Recorder {
    fn register(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn reregister(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Recorder {
    const SHORT_READ_DRAINS: bool = true;
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            self.0.extend_from_slice(b);
            n += b.len();
        }
        Ok(n)
    }
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        Ok(ShutdownStatus::Done)
    }
    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(None))
    }
    fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(None))
    }
}

/// Runs the TLS read path on `data` (see the module docs).
pub fn check_tls(data: &[u8]) {
    let [seed, flags, rest @ ..] = data else {
        return;
    };
    let f = fixture();
    let mut input = Vec::new();
    if flags & 1 == 1 {
        input.extend_from_slice(&f.client_hello);
    }
    input.extend_from_slice(rest);
    let total = input.len();
    let mem = Mem {
        input,
        ..Mem::default()
    };
    let mut conn = Connection::new(TlsStream::server(mem, f.server.clone(), None).unwrap());
    let mut scratch = ReadBuf::new();
    let mut rng = u32::from(*seed) | 1;
    let bound = INCOMING_CAP + 2 * READ_CHUNK + conn.codec().max_frame_len() + 64 * 1024;
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let step = rng as usize % 4096 + 1;
        let m = conn.stream_mut().get_mut();
        m.avail = (m.avail + step).min(total);
        if m.avail == total {
            m.eof = flags & 2 == 2;
        }
        let before = m.pos;
        let r = conn.read_frames(&mut scratch, 1 << 16, |_, _| ControlFlow::Continue(()));
        let _ = conn.flush();
        assert!(
            conn.heap_bytes() <= bound,
            "{} > {bound}",
            conn.heap_bytes()
        );
        match r {
            Err(_) | Ok(ReadStatus::Closed) => return,
            Ok(_) => {}
        }
        let m = conn.stream_mut().get_mut();
        if m.avail == total && m.pos == before {
            return; // everything fed, nothing more consumed
        }
    }
}
