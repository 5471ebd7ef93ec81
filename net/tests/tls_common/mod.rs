//! Shared helpers for the TLS tests: throwaway certificates made with rcgen (never a committed
//! key), and a TLS pair (server and client `Connection`s over loopback) on one `Poll`, driven
//! in the test's own thread so every step is deterministic.
#![allow(dead_code)] // each test file uses a different subset

use std::io;
use std::net::TcpStream as StdStream;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Token};
use wheelbeat_net::tls::{ClientAuth, Roots, TlsStream, client_config, server_config};
use wheelbeat_net::{
    Connection, Error, LineCodec, ListenConfig, Outbox, ReadBuf, ReadStatus, Transport, bind,
};

/// Generous bound for any single wait; a healthy run never gets near it.
pub const WAIT: Duration = Duration::from_secs(10);
pub const SERVER: Token = Token(1);
pub const CLIENT: Token = Token(2);

pub type TlsConn = Connection<LineCodec, TlsStream<TcpStream>>;

/// A self-signed certificate for `localhost` and its key, as PEM.
pub struct Cert {
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn cert() -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Cert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

pub fn server_cfg(c: &Cert) -> Arc<wheelbeat_net::tls::rustls::ServerConfig> {
    server_config(
        c.cert_pem.as_bytes(),
        c.key_pem.as_bytes(),
        &[b"wheelbeat"],
        ClientAuth::None,
    )
    .unwrap()
}

pub fn client_cfg(c: &Cert) -> Arc<wheelbeat_net::tls::rustls::ClientConfig> {
    client_config(
        Roots::Pem(c.cert_pem.clone().into_bytes()),
        &[b"wheelbeat"],
        None,
    )
    .unwrap()
}

/// A connected loopback pair of plain mio streams: (accepted server side, client side).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = bind("127.0.0.1:0".parse().unwrap(), &ListenConfig::default()).unwrap();
    let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((s, _)) => return (s, TcpStream::from_std(client)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "accept timed out");
                std::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Both ends of a TLS connection, registered on one `Poll`; the server's socket may be
/// wrapped in another transport (`S`).
pub struct Pair<S: Transport = TcpStream> {
    pub poll: Poll,
    pub events: Events,
    pub server: Connection<LineCodec, TlsStream<S>>,
    pub client: TlsConn,
    pub scratch: ReadBuf,
}

impl Pair {
    pub fn new(cert: &Cert, deadline: Option<Instant>) -> Pair {
        Pair::with_server_socket(cert, deadline, |s| s)
    }
}

impl<S: Transport> Pair<S> {
    /// A pair whose server socket is `wrap(socket)`.
    pub fn with_server_socket(
        cert: &Cert,
        deadline: Option<Instant>,
        wrap: impl FnOnce(TcpStream) -> S,
    ) -> Pair<S> {
        let (s, c) = tcp_pair();
        let server =
            Connection::new(TlsStream::server(wrap(s), server_cfg(cert), deadline).unwrap());
        let client =
            Connection::new(TlsStream::client(c, client_cfg(cert), "localhost", None).unwrap());
        let poll = Poll::new().unwrap();
        let mut pair = Pair {
            poll,
            events: Events::with_capacity(64),
            server,
            client,
            scratch: ReadBuf::new(),
        };
        pair.server
            .sync_interest(pair.poll.registry(), SERVER)
            .unwrap();
        pair.client
            .sync_interest(pair.poll.registry(), CLIENT)
            .unwrap();
        pair
    }

    /// Polls once (up to 50 ms) and drives every connection that had an event: the server's
    /// frames go to `on_server`, the client's to `on_client`. Returns the read results.
    pub fn turn<FS, FC>(&mut self, mut on_server: FS, mut on_client: FC) -> Turn
    where
        FS: FnMut(&[u8], &mut Outbox<'_, LineCodec>) -> ControlFlow<()>,
        FC: FnMut(&[u8], &mut Outbox<'_, LineCodec>) -> ControlFlow<()>,
    {
        self.poll
            .poll(&mut self.events, Some(Duration::from_millis(50)))
            .unwrap();
        let mut turn = Turn::default();
        let registry = self.poll.registry();
        for ev in self.events.iter() {
            match ev.token() {
                SERVER => {
                    turn.server = Some(self.server.drive_event(
                        registry,
                        SERVER,
                        ev,
                        &mut self.scratch,
                        1 << 16,
                        &mut on_server,
                    ))
                }
                CLIENT => {
                    turn.client = Some(self.client.drive_event(
                        registry,
                        CLIENT,
                        ev,
                        &mut self.scratch,
                        1 << 16,
                        &mut on_client,
                    ))
                }
                _ => {}
            }
        }
        turn
    }

    /// Turns until neither side is handshaking (bounded by `WAIT`).
    pub fn handshake(&mut self) {
        let deadline = Instant::now() + WAIT;
        while self.server.stream().is_handshaking() || self.client.stream().is_handshaking() {
            assert!(Instant::now() < deadline, "handshake did not complete");
            let t = self.turn(
                |_, _| ControlFlow::Continue(()),
                |_, _| ControlFlow::Continue(()),
            );
            if let Some(Err(e)) = t.server {
                panic!("server: {e}");
            }
            if let Some(Err(e)) = t.client {
                panic!("client: {e}");
            }
        }
    }
}

/// What one [`Pair::turn`] saw.
#[derive(Debug, Default)]
pub struct Turn {
    pub server: Option<Result<ReadStatus, Error>>,
    pub client: Option<Result<ReadStatus, Error>>,
}
