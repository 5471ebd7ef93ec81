//! A blocking WebSocket client for the real-socket tests, built from the same sans-I/O pieces
//! as the server (`WsCodec` in client role, `Session::client`, `Encoder`), and the `ws_echo`
//! example's loop started on its own thread.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wheelbeat_net::ws::{
    ClientRequest, Control, Encoder, Event, MessageKind, Role, Session, Sink, WsCodec, accept_any,
    client_request, random_key,
};
use wheelbeat_net::{Acceptor, Codec, Error, ListenConfig};

#[path = "../../examples/ws_echo.rs"]
#[allow(dead_code)]
pub mod ws_echo;

/// Generous bound for any single wait; a healthy run never gets near it.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts the `ws_echo` example's loop on 127.0.0.1:0 on its own thread (it runs until the
/// test process exits).
pub fn start_server(caps: ws_echo::Caps) -> SocketAddr {
    let acceptor = Acceptor::bind(
        "127.0.0.1:0".parse().unwrap(),
        mio::Token(usize::MAX),
        ListenConfig::default(),
    )
    .unwrap();
    let addr = acceptor.local_addr().unwrap();
    std::thread::spawn(move || ws_echo::run(acceptor, caps));
    addr
}

/// A TCP connection with the tests' timeouts.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until EOF (bounded by the read timeout); a reset counts as EOF.
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("no EOF within the timeout: {e}"),
        }
    }
}

/// An event, owned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ev {
    Open(Option<String>),
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// Both lanes of the client's queue: written out right after each call.
#[derive(Default)]
struct Out(Vec<u8>);

impl Sink for Out {
    fn send_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn send_priority_frames(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// The blocking client.
pub struct Client {
    pub stream: TcpStream,
    codec: WsCodec,
    session: Session,
    buf: Vec<u8>,
    out: Out,
    encoder: Encoder,
}

impl Client {
    /// Connects and completes the upgrade; returns the client and the `Open` event.
    pub fn connect(
        addr: SocketAddr,
        target: &str,
        protocols: &[&str],
    ) -> Result<(Client, Ev), Error> {
        let mut stream = tcp(addr);
        let key = random_key()?;
        let host = addr.to_string();
        let request = ClientRequest {
            host: &host,
            target,
            origin: Some("http://localhost"),
            protocols,
        };
        stream.write_all(&client_request(&request, &key))?;
        let mut c = Client {
            stream,
            codec: WsCodec::client().with_max_frame_len(1 << 24),
            session: Session::client(key).with_max_message_len(1 << 24),
            buf: Vec::new(),
            out: Out::default(),
            encoder: Encoder::new(),
        };
        let open = c.next_event()?;
        Ok((c, open))
    }

    /// Sends one message (masked, fragmented at 64 KiB).
    pub fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), Error> {
        self.encoder
            .send(&mut self.out, Role::Client, kind, payload)?;
        self.flush()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Sends a control frame.
    pub fn send_control(&mut self, c: Control) -> Result<(), Error> {
        self.send_raw(c.as_ref())
    }

    /// Starts the closing handshake.
    pub fn close(&mut self, code: u16) -> Result<(), Error> {
        self.session.close(&mut self.out, code, "")?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.stream.write_all(&self.out.0)?;
        self.out.0.clear();
        Ok(())
    }

    /// The next event other than a fragment; EOF is `Err(Io(UnexpectedEof))`.
    pub fn next_event(&mut self) -> Result<Ev, Error> {
        loop {
            while let Some(d) = self.codec.decode_mut(&mut self.buf)? {
                let mut ev = None;
                let r = self.session.handle(
                    &self.buf[d.frame.clone()],
                    &mut self.out,
                    &mut accept_any,
                    |e, _| {
                        ev = match e {
                            Event::Open { protocol } => Some(Ev::Open(protocol.map(String::from))),
                            Event::Text(t) => Some(Ev::Text(t.into())),
                            Event::Binary(b) => Some(Ev::Binary(b.into())),
                            Event::Ping(p) => Some(Ev::Ping(p.into())),
                            Event::Pong(p) => Some(Ev::Pong(p.into())),
                            Event::Close(c) => Some(Ev::Close(c.code, c.reason.into())),
                            Event::Fragment => None,
                        }
                    },
                );
                self.buf.drain(..d.consumed);
                r?;
                self.flush()?;
                if let Some(ev) = ev {
                    return Ok(ev);
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk)? {
                0 => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
