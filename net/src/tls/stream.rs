//! [`TlsStream`]: rustls's unbuffered connection over a plain transport, as a [`Transport`].
//!
//! # Ground rules
//! - rustls's *unbuffered* API: rustls keeps its protocol state and keys, the stream keeps
//!   the bytes. Each buffer here is a `Vec` that is freed (not just cleared) when it empties,
//!   so an idle TLS connection holds no ciphertext or plaintext buffer at all; see the
//!   [module docs](super) for the figure.
//! - Reads: one socket read per [`Transport::read`] call, of at most one TLS record's worth
//!   ([`READ_CHUNK`]). Records are decrypted into the caller's buffer (the connection's
//!   per-loop scratch) while they fit. A call that read ciphertext but decrypted no
//!   application data (handshake records) returns `Interrupted`, which the connection counts
//!   against its read budget.
//! - Bounds: unprocessed ciphertext at most [`INCOMING_CAP`] (one 64 KiB handshake message,
//!   rustls's own limit, plus a record), then the connection fails; encrypted output waiting
//!   for the socket below [`OUTGOING_HIGH`] before more plaintext is taken, and at most
//!   [`MAX_PLAIN_PER_WRITE`] plaintext per write, so about two records in all plus a
//!   handshake flight. Plaintext beyond the caller's buffer: one record (or, while the
//!   caller writes, what is already buffered: at most [`INCOMING_CAP`]).
//! - No clock: the handshake deadline is an `Instant` given at construction and compared
//!   with the caller's `now` ([`Transport::handshake`]).
//!
//! # States (what `process_tls_records` reports, and what the stream does)
//!
//! | rustls state         | stream does                                                   |
//! |----------------------|---------------------------------------------------------------|
//! | `EncodeTlsData`      | appends the handshake record to the output buffer             |
//! | `TransmitTlsData`    | marks it sent; the output buffer goes out on the next flush   |
//! | `BlockedHandshake`   | stops: needs bytes from the peer                              |
//! | `ReadTraffic`        | copies records to the caller's buffer (or the overflow stash) |
//! | `WriteTraffic`       | encrypts the pending write or close_notify; else stops        |
//! | `PeerClosed`         | remembers it: reads return end of stream once drained         |
//! | `Closed`             | stops for good                                                |

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{ClientConfig, ServerConfig};

use super::config::{clear_sni, take_sni};
use crate::error::Error;
use crate::transport::{Handshake, PeerAddr, ShutdownStatus, Transport};

/// Largest TLS record on the wire: 16 KiB of plaintext plus the most expansion TLS 1.2
/// allows (2 KiB) plus the 5-byte header. One socket read takes at most this much.
pub const READ_CHUNK: usize = 16 * 1024 + 2048 + 5;
/// Most unprocessed ciphertext held: a 64 KiB handshake message (rustls's cap) plus a record.
pub const INCOMING_CAP: usize = 64 * 1024 + READ_CHUNK;
/// Encrypted output at or above this waits for the socket before more plaintext is taken.
pub const OUTGOING_HIGH: usize = 16 * 1024;
/// Most plaintext one write takes (one full record).
pub const MAX_PLAIN_PER_WRITE: usize = 16 * 1024;

/// rustls's two unbuffered connections behind one call.
trait Unbuffered {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

impl Side {
    fn common(&self) -> &rustls::CommonState {
        match self {
            Side::Server(c) => c,
            Side::Client(c) => c,
        }
    }
}

/// The end of stream was read from the socket.
const EOF: u8 = 1;
/// The peer's close_notify arrived.
const PEER_CLOSED: u8 = 2;
/// Our close_notify is queued (or the close began during the handshake, without one).
const CLOSE_SENT: u8 = 4;
/// The FIN followed it.
const FIN_SENT: u8 = 8;
/// The last [`Transport::read`] proved the socket drained: its socket read left room (the
/// kernel's queue was empty then) and every complete record it brought was delivered (the
/// pump stopped for want of input, nothing stashed). Cleared at the start of every read.
const DRAINED: u8 = 16;

/// The byte buffers, apart from the rustls connection so both can be borrowed at once.
#[derive(Default)]
struct Bufs {
    /// Ciphertext read but not yet processed; `in_head` bytes at its front are consumed.
    incoming: Vec<u8>,
    in_head: usize,
    /// Decrypted plaintext that did not fit the caller's buffer.
    stash: Vec<u8>,
    stash_head: usize,
    /// Encrypted output not yet written; `out_head` bytes at its front are written.
    outgoing: Vec<u8>,
    out_head: usize,
    flags: u8,
}

/// What a pump should do when rustls lets it write.
enum Mode<'a> {
    /// Deliver application data into `dst[*filled..]`.
    Read {
        dst: &'a mut [u8],
        filled: &'a mut usize,
    },
    /// Encrypt `data`; set `done`.
    Encrypt { data: &'a [u8], done: &'a mut bool },
    /// Queue close_notify; set `done`.
    CloseNotify { done: &'a mut bool },
    /// Only move handshake records (e.g. a client's ClientHello at start).
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Needs bytes from the peer (or has nothing more to do).
    Blocked,
    /// The caller's buffer cannot take the next record.
    Full,
    /// Closed both ways.
    Closed,
}

fn general(e: impl std::fmt::Display) -> rustls::Error {
    rustls::Error::General(e.to_string())
}

/// Runs rustls until it needs input, the caller's buffer is full, or the connection closed.
fn pump<U: Unbuffered>(
    conn: &mut U,
    b: &mut Bufs,
    mut mode: Mode<'_>,
) -> Result<Stop, rustls::Error> {
    loop {
        let mut extra_discard = 0;
        let UnbufferedStatus { discard, state } = conn.process(&mut b.incoming[b.in_head..]);
        let stop = match state? {
            ConnectionState::ReadTraffic(mut r) => {
                let mut stop = None;
                loop {
                    let room = match &mode {
                        Mode::Read { dst, filled } => dst.len() - **filled,
                        _ => 0,
                    };
                    let reading = matches!(mode, Mode::Read { .. });
                    if reading
                        && b.stash.len() > b.stash_head
                        && r.peek_len().is_some_and(|len| len.get() > room)
                    {
                        // Already one record stashed: leave the rest to rustls for now.
                        stop = Some(Stop::Full);
                        break;
                    }
                    let Some(record) = r.next_record() else { break };
                    let record = record?;
                    extra_discard += record.discard;
                    let p = record.payload;
                    match &mut mode {
                        Mode::Read { dst, filled } if p.len() <= room => {
                            dst[**filled..**filled + p.len()].copy_from_slice(p);
                            **filled += p.len();
                        }
                        Mode::Read { .. } => {
                            b.stash.extend_from_slice(p);
                            stop = Some(Stop::Full);
                            break;
                        }
                        _ => b.stash.extend_from_slice(p),
                    }
                }
                stop
            }
            ConnectionState::EncodeTlsData(mut e) => {
                let mut need = 4096;
                loop {
                    let start = b.outgoing.len();
                    b.outgoing.resize(start + need, 0);
                    match e.encode(&mut b.outgoing[start..]) {
                        Ok(n) => {
                            b.outgoing.truncate(start + n);
                            break;
                        }
                        Err(EncodeError::InsufficientSize(InsufficientSizeError {
                            required_size,
                        })) => {
                            b.outgoing.truncate(start);
                            need = required_size;
                        }
                        Err(e) => return Err(general(e)),
                    }
                }
                None
            }
            ConnectionState::TransmitTlsData(t) => {
                // The records are in `outgoing`, ahead of anything encrypted later; the
                // connection's next flush writes them.
                t.done();
                None
            }
            ConnectionState::BlockedHandshake => Some(Stop::Blocked),
            ConnectionState::WriteTraffic(mut w) => match &mut mode {
                Mode::Encrypt { data, done } if !**done => {
                    let records = data.len() / MAX_PLAIN_PER_WRITE + 1;
                    let mut need = data.len() + 64 * records;
                    loop {
                        let start = b.outgoing.len();
                        b.outgoing.resize(start + need, 0);
                        match w.encrypt(data, &mut b.outgoing[start..]) {
                            Ok(n) => {
                                b.outgoing.truncate(start + n);
                                break;
                            }
                            Err(EncryptError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            })) => {
                                b.outgoing.truncate(start);
                                need = required_size;
                            }
                            Err(e) => {
                                b.outgoing.truncate(start);
                                return Err(general(e));
                            }
                        }
                    }
                    **done = true;
                    Some(Stop::Blocked)
                }
                Mode::CloseNotify { done } if !**done => {
                    let start = b.outgoing.len();
                    b.outgoing.resize(start + 64, 0);
                    let n = w
                        .queue_close_notify(&mut b.outgoing[start..])
                        .map_err(general)?;
                    b.outgoing.truncate(start + n);
                    **done = true;
                    Some(Stop::Blocked)
                }
                _ => Some(Stop::Blocked),
            },
            ConnectionState::PeerClosed => {
                b.flags |= PEER_CLOSED;
                None
            }
            ConnectionState::Closed => Some(Stop::Closed),
            // Early data is never enabled in the configurations built here.
            ConnectionState::ReadEarlyData(_) => return Err(general("unexpected early data")),
            _ => return Err(general("unknown rustls state")),
        };
        b.in_head += discard + extra_discard;
        if b.in_head >= b.incoming.len() {
            // Drained: free it, so an idle connection holds no ciphertext buffer.
            b.incoming = Vec::new();
            b.in_head = 0;
        }
        if let Some(stop) = stop {
            return Ok(stop);
        }
    }
}

/// A TLS connection (server or client side) over a plain [`Transport`]; a [`Transport`]
/// itself, so a [`Connection`](crate::Connection) frames over it like over a socket.
/// See the [module docs](self).
pub struct TlsStream<S: Transport = TcpStream> {
    sock: S,
    tls: Side,
    bufs: Bufs,
    deadline: Option<Instant>,
    sni: Option<Box<str>>,
}

impl<S: Transport> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("handshaking", &self.is_handshaking())
            .field("pending_output", &self.pending_output())
            .finish_non_exhaustive()
    }
}

fn to_io(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}"))
}

impl<S: Transport> TlsStream<S> {
    /// The server side over an accepted socket. The handshake must complete by `deadline`
    /// (checked with the caller's `now`, see [`Transport::handshake`]); `None` for none.
    pub fn server(
        sock: S,
        config: Arc<ServerConfig>,
        deadline: Option<Instant>,
    ) -> Result<Self, Error> {
        let conn = UnbufferedServerConnection::new(config).map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?;
        Ok(TlsStream {
            sock,
            tls: Side::Server(conn),
            bufs: Bufs::default(),
            deadline,
            sni: None,
        })
    }

    /// The client side over a connected socket, for `server_name` (a DNS name or an IP
    /// address: what the certificate must name, and the SNI sent). The ClientHello is
    /// queued at once: register the connection and flush.
    pub fn client(
        sock: S,
        config: Arc<ClientConfig>,
        server_name: &str,
        deadline: Option<Instant>,
    ) -> Result<Self, Error> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| Error::Tls {
            reason: format!("server name {server_name:?}: {e}"),
        })?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?;
        let mut s = TlsStream {
            sock,
            tls: Side::Client(conn),
            bufs: Bufs::default(),
            deadline,
            sni: None,
        };
        s.pump(Mode::Idle).map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?;
        Ok(s)
    }

    fn pump(&mut self, mode: Mode<'_>) -> Result<Stop, rustls::Error> {
        match &mut self.tls {
            Side::Server(c) => {
                let capture = self.sni.is_none() && c.is_handshaking();
                if capture {
                    clear_sni();
                }
                let r = pump(c, &mut self.bufs, mode);
                if capture {
                    self.sni = take_sni();
                }
                r
            }
            Side::Client(c) => pump(c, &mut self.bufs, mode),
        }
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.tls.common().is_handshaking()
    }

    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.common().alpn_protocol()
    }

    /// Server side: the name the client asked for (SNI), when the configuration came from
    /// [`server_config`](super::server_config). Client side: `None`.
    pub fn server_name(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The peer's certificate chain (a client's, when client authentication is on).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.common().peer_certificates()
    }

    /// The negotiated protocol version, once known.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.common().protocol_version()
    }

    /// The plain transport underneath.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// The plain transport underneath, mutably (for socket options; reading or writing it
    /// directly would corrupt the TLS stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// Delivers stashed plaintext first.
    fn read_stash(&mut self, dst: &mut [u8]) -> usize {
        let b = &mut self.bufs;
        let n = (b.stash.len() - b.stash_head).min(dst.len());
        dst[..n].copy_from_slice(&b.stash[b.stash_head..b.stash_head + n]);
        b.stash_head += n;
        if b.stash_head == b.stash.len() {
            b.stash = Vec::new();
            b.stash_head = 0;
        }
        n
    }

    /// Moves `incoming`'s unconsumed bytes to the front and makes room for one socket read.
    fn prepare_read(&mut self) -> io::Result<usize> {
        let b = &mut self.bufs;
        if b.in_head > 0 {
            b.incoming.copy_within(b.in_head.., 0);
            b.incoming.truncate(b.incoming.len() - b.in_head);
            b.in_head = 0;
        }
        let start = b.incoming.len();
        if start >= INCOMING_CAP {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "tls: more than 82 KiB of records without progress",
            ));
        }
        b.incoming
            .resize(start + READ_CHUNK.min(INCOMING_CAP - start), 0);
        Ok(start)
    }
}

impl<S: Transport> mio::event::Source for TlsStream<S> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

impl<S: Transport> Transport for TlsStream<S> {
    // One socket read can yield less plaintext than it read ciphertext (a record split
    // across reads), so a short plaintext read proves nothing about the socket: the proof
    // is `read_drained`'s, from the socket read itself.
    const SHORT_READ_DRAINS: bool = false;

    // A short socket read whose records were all delivered (see `DRAINED`). A record cut in
    // two by the short read waits in `incoming` for bytes that raise a new edge.
    fn read_drained(&self, _n: usize, _room: usize) -> bool {
        self.bufs.flags & DRAINED != 0
    }

    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.bufs.flags &= !DRAINED;
        if dst.is_empty() {
            return Ok(0);
        }
        let n = self.read_stash(dst);
        if n > 0 {
            return Ok(n);
        }
        let mut short_socket_read = false;
        let mut read_socket = false;
        loop {
            let mut filled = 0;
            let stop = self
                .pump(Mode::Read {
                    dst,
                    filled: &mut filled,
                })
                .map_err(to_io)?;
            if filled > 0 {
                // A close_notify among the records: the next read must report it.
                if short_socket_read
                    && stop == Stop::Blocked
                    && self.bufs.flags & PEER_CLOSED == 0
                    && !self.is_handshaking()
                {
                    self.bufs.flags |= DRAINED;
                }
                return Ok(filled);
            }
            if stop == Stop::Full {
                // A record larger than `dst` went to the stash.
                return Ok(self.read_stash(dst));
            }
            if stop == Stop::Closed || self.bufs.flags & PEER_CLOSED != 0 {
                return Ok(0);
            }
            if self.bufs.flags & EOF != 0 {
                if self.is_handshaking() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tls: peer closed during the handshake",
                    ));
                }
                // Closed without close_notify: the codec reports a truncated frame, if any.
                return Ok(0);
            }
            if read_socket {
                // Records processed, no application data: "call again" (counted as a read).
                return Err(io::ErrorKind::Interrupted.into());
            }
            read_socket = true;
            let start = self.prepare_read()?;
            let b = &mut self.bufs;
            let room = b.incoming.len() - start;
            match self.sock.read(&mut b.incoming[start..]) {
                Ok(n) => {
                    b.incoming.truncate(start + n);
                    if n == 0 {
                        b.flags |= EOF;
                    }
                    short_socket_read = n > 0 && n < room;
                }
                Err(e) => {
                    b.incoming.truncate(start);
                    if b.incoming.is_empty() {
                        b.incoming = Vec::new();
                    }
                    return Err(e);
                }
            }
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        if self.pending_output() >= OUTGOING_HIGH
            && (!self.flush_output()? || self.pending_output() >= OUTGOING_HIGH)
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.bufs.flags & CLOSE_SENT != 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "tls: write after close",
            ));
        }
        if self.is_handshaking() {
            // Application data waits in the connection's queue until the handshake is done
            // (the read that completes it is followed by a flush).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // One record per call where possible: gather small slices (a priority frame and the
        // data behind it) instead of encrypting each into its own record.
        let take = total.min(MAX_PLAIN_PER_WRITE);
        let gathered;
        let data: &[u8] = match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if first.len() >= take => &first[..take],
            _ => {
                let mut v = Vec::with_capacity(take);
                for b in bufs {
                    let n = b.len().min(take - v.len());
                    v.extend_from_slice(&b[..n]);
                }
                gathered = v;
                &gathered
            }
        };
        let mut done = false;
        self.pump(Mode::Encrypt {
            data,
            done: &mut done,
        })
        .map_err(to_io)?;
        if !done {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush_output()?;
        Ok(take)
    }

    fn pending_output(&self) -> usize {
        self.bufs.outgoing.len() - self.bufs.out_head
    }

    fn flush_output(&mut self) -> io::Result<bool> {
        let b = &mut self.bufs;
        while b.out_head < b.outgoing.len() {
            match self
                .sock
                .write_vectored(&[IoSlice::new(&b.outgoing[b.out_head..])])
            {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => b.out_head += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if b.out_head > 0 {
                        b.outgoing.drain(..b.out_head);
                        b.out_head = 0;
                    }
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        b.outgoing = Vec::new();
        b.out_head = 0;
        Ok(true)
    }

    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        if self.bufs.flags & CLOSE_SENT == 0 {
            self.bufs.flags |= CLOSE_SENT;
            if !self.is_handshaking() {
                let mut done = false;
                // A failed connection cannot send an alert; the FIN still goes.
                let _ = self.pump(Mode::CloseNotify { done: &mut done });
            }
        }
        if !self.flush_output()? {
            return Ok(ShutdownStatus::Pending);
        }
        if self.bufs.flags & FIN_SENT == 0 {
            self.bufs.flags |= FIN_SENT;
            self.sock.shutdown_write()?;
        }
        Ok(ShutdownStatus::Done)
    }

    fn heap_bytes(&self) -> usize {
        let b = &self.bufs;
        b.incoming.capacity() + b.stash.capacity() + b.outgoing.capacity()
    }

    fn handshake(&self) -> Handshake {
        if self.is_handshaking() {
            Handshake::InProgress {
                deadline: self.deadline,
            }
        } else {
            Handshake::Done
        }
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.sock.peer_addr()
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        self.sock.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use proptest::prelude::*;

    use super::*;
    use crate::test_stream::MemStream;
    use crate::tls::{ClientAuth, server_config};
    use crate::{Connection, ReadBuf, ReadStatus};

    fn config() -> Arc<ServerConfig> {
        static CONFIG: std::sync::OnceLock<Arc<ServerConfig>> = std::sync::OnceLock::new();
        CONFIG
            .get_or_init(|| {
                let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
                let (c, k) = (ck.cert.pem(), ck.signing_key.serialize_pem());
                server_config(c.as_bytes(), k.as_bytes(), &[], ClientAuth::None).unwrap()
            })
            .clone()
    }

    /// Feeds `input` to a server connection until it errs, closes or stops consuming;
    /// returns the error, if any. Checks the buffer bound after every call.
    fn feed(input: Vec<u8>, chunk: usize, eof: bool) -> Option<crate::Error> {
        let mem = MemStream {
            eof,
            ..MemStream::new(input, chunk)
        };
        let mut conn = Connection::new(TlsStream::server(mem, config(), None).unwrap());
        let mut scratch = ReadBuf::new();
        let bound = INCOMING_CAP + 2 * READ_CHUNK;
        for _ in 0..10_000 {
            let before = conn.stream().get_ref().taken;
            let r = conn.read_frames(&mut scratch, 1 << 16, |_, _| ControlFlow::Continue(()));
            assert!(conn.heap_bytes() <= bound, "{}", conn.heap_bytes());
            match r {
                Err(e) => return Some(e),
                Ok(ReadStatus::Closed) => return None,
                Ok(_) if conn.stream().get_ref().taken == before => return None,
                Ok(_) => {}
            }
        }
        panic!("read path did not settle")
    }

    /// Guards the "garbage before the handshake" rule: an HTTP request instead of a
    /// ClientHello is an `InvalidData` error naming TLS, on the first read.
    #[test]
    fn http_request_instead_of_client_hello_is_a_tls_error() {
        let e = feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 4096, false).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("tls:"), "{e}");
    }

    /// A peer that closes mid-handshake is an error, not a clean close.
    #[test]
    fn eof_during_the_handshake_is_unexpected_eof() {
        let e = feed(vec![0x16, 0x03, 0x01], 4096, true).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    proptest! {
        /// Arbitrary bytes, in arbitrary chunk sizes, never panic, never spin, and never
        /// grow the connection's buffers past the documented bound.
        #[test]
        fn garbage_never_panics_or_grows_past_the_bound(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            record_header in any::<bool>(),
            chunk in 1usize..2048,
            eof in any::<bool>(),
        ) {
            let mut input = Vec::new();
            if record_header {
                // A plausible handshake record header, so the deframer looks further.
                input.extend_from_slice(&[0x16, 0x03, 0x01, 0x10, 0x00]);
            }
            input.extend_from_slice(&bytes);
            feed(input, chunk, eof);
        }
    }
}
