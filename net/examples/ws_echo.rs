//! Run with: `cargo run --release -p wheelbeat-net --example ws_echo -- 127.0.0.1:9001`
//! (flags: `--max-frame BYTES`, `--max-message BYTES`, `--path /ws`; see `Caps`).
//!
//! A WebSocket echo server on one mio loop, built from wheelbeat-net's pieces (`Acceptor`,
//! `ConnTable`, `Ready`, `Connection`) and its `ws` module: every text or binary message is
//! sent back. It is the server Autobahn|Testsuite runs against (`tests/interop/autobahn.sh`,
//! with both caps raised to 16 MiB for cases 9.*). Prints `listening on IP:PORT` once bound.
//!
//! The close path, in one place (`serve`): a session that is closed (closing handshake done,
//! or failed with its close frame or 400 queued) is read no more; it is dropped once its queue
//! is flushed, or when the close timeout expires for a peer that does not read. A connection
//! still handshaking when the handshake timeout expires is dropped.
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};
use wheelbeat_net::ws::{
    Deadlines, Decision, Encoder, Event, MessageKind, Request, Session, WsCodec, accept_any,
    only_path,
};
use wheelbeat_net::{
    Acceptor, ConnKey, ConnTable, Connection, Error, ListenConfig, ReadBuf, ReadStatus, Ready,
};

/// The upgrade hook: accepts, refuses, picks a subprotocol.
type Hook = dyn FnMut(&Request<'_>) -> Decision;

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Caps {
    /// Largest frame payload accepted (and sent: longer echoes are fragmented).
    pub max_frame: usize,
    /// Largest message accepted.
    pub max_message: usize,
    /// Serve only this path (`None`: any).
    pub path: Option<String>,
    /// Time allowed from accept to a complete upgrade request.
    pub handshake_timeout: Duration,
    /// Time allowed to flush the last bytes once a session is closed.
    pub close_timeout: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_frame: wheelbeat_net::ws::DEFAULT_MAX_FRAME_LEN,
            max_message: wheelbeat_net::ws::DEFAULT_MAX_MESSAGE_LEN,
            path: None,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// One WebSocket connection: the framed socket and its protocol state.
struct Ws {
    conn: Connection<WsCodec>,
    session: Session,
}

#[allow(dead_code)] // the tests include this file as a module and call `run` only
fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut caps) = ("127.0.0.1:9001".to_string(), Caps::default());
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match arg.as_str() {
            "--max-frame" => caps.max_frame = value().parse().expect("bytes"),
            "--max-message" => caps.max_message = value().parse().expect("bytes"),
            "--path" => caps.path = Some(value()),
            _ => addr = arg,
        }
    }
    wheelbeat_net::raise_fd_limit()?;
    let acceptor = Acceptor::bind(
        addr.parse().expect("ip:port"),
        LISTENER,
        ListenConfig::default(),
    )?;
    println!("listening on {}", acceptor.local_addr()?);
    run(acceptor, caps)
}

/// Serves WebSocket echo on `acceptor` forever.
pub fn run(mut acceptor: Acceptor, caps: Caps) -> Result<(), Error> {
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    acceptor.register(poll.registry())?;
    let (mut conns, mut ready) = (ConnTable::<Ws>::new(), Ready::new());
    let mut scratch = ReadBuf::with_max_frame_len(caps.max_frame + 14);
    let mut encoder = Encoder::with_max_frame_len(caps.max_frame);
    let mut handshakes = Deadlines::new(caps.handshake_timeout);
    let mut closing = Deadlines::new(caps.close_timeout);
    let mut hook: Box<Hook> = match caps.path.clone() {
        Some(path) => Box::new(move |r: &Request<'_>| only_path(&path)(r)),
        None => Box::new(accept_any),
    };
    // A big message costs its size in the read buffer's partial frame, in the session, and
    // twice in flight on the way back: read at most 1 MiB per call so one peer cannot hog the loop.
    let budget = 1024 * 1024;
    loop {
        let now = Instant::now();
        let deadline = [handshakes.next_deadline(), closing.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now));
        let timeout = match (acceptor.timeout(now), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        poll.poll(&mut events, ready.timeout(timeout))?;
        let (now, registry) = (Instant::now(), poll.registry());
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        while let Some(token) = ready.next_token() {
            if token == LISTENER {
                acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let codec = WsCodec::server().with_max_frame_len(caps.max_frame);
                    let mut conn = Connection::with_codec(stream, codec);
                    // Room for one echoed message of the maximum size plus its headers.
                    conn.set_write_cap(caps.max_message + caps.max_message / 8 + 64 * 1024);
                    let session = Session::server().with_max_message_len(caps.max_message);
                    let key = conns.insert(Ws { conn, session });
                    let ws = conns.get_mut(key).expect("just inserted");
                    match ws.conn.sync_interest(registry, key.token()) {
                        Ok(()) => handshakes.push(now, key),
                        Err(_) => drop(conns.remove(key)),
                    }
                })?;
            } else if let Some(ws) = conns.get_mut(token) {
                // (a token not in the table is stale: its connection closed; ignore it)
                match serve(
                    ws,
                    registry,
                    token,
                    &mut scratch,
                    &mut encoder,
                    &mut *hook,
                    budget,
                ) {
                    Step::Again => ready.again(token),
                    Step::Wait => {}
                    Step::Closing => closing.push(now, ConnKey::from_token(token)),
                    Step::Drop => drop(conns.remove(token)),
                }
            }
        }
        while let Some(key) = handshakes.pop_expired(now) {
            if conns.get(key).is_some_and(|ws| ws.session.is_handshaking()) {
                conns.remove(key);
            }
        }
        while let Some(key) = closing.pop_expired(now) {
            conns.remove(key);
        }
    }
}

/// What the loop does with a connection after serving it.
enum Step {
    /// Budget spent: serve again next turn.
    Again,
    /// Wait for the next event.
    Wait,
    /// Closed with bytes still queued: keep it until flushed or the close timeout.
    Closing,
    /// Done: drop it (closes the socket).
    Drop,
}

fn serve(
    ws: &mut Ws,
    registry: &Registry,
    token: Token,
    scratch: &mut ReadBuf,
    encoder: &mut Encoder,
    hook: &mut Hook,
    budget: usize,
) -> Step {
    let Ws { conn, session } = ws;
    let was_closed = session.is_closed();
    let mut status = Ok(ReadStatus::Drained);
    if !was_closed {
        let role = session.role();
        status = conn.read_frames(scratch, budget, |frame, out| {
            let mut echoed = Ok(());
            let handled = session.handle(frame, out, hook, |event, out| {
                echoed = match event {
                    Event::Text(t) => encoder.send(out, role, MessageKind::Text, t.as_bytes()),
                    Event::Binary(b) => encoder.send(out, role, MessageKind::Binary, b),
                    _ => Ok(()),
                };
            });
            // An echo that does not fit the write cap: the peer is not reading; give up on it.
            if let Err(e) = handled.and(echoed) {
                session.fail(out, &e);
            }
            if session.is_closed() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if let Err(e) = &status {
            session.fail(conn, e); // e.g. a frame over the cap: 1009, or a 400
        }
    }
    let flushed = conn.flush().is_ok() && conn.sync_interest(registry, token).is_ok();
    if !flushed || matches!(status, Ok(ReadStatus::Closed)) {
        return Step::Drop;
    }
    if session.is_closed() {
        return match (conn.wants_write(), was_closed) {
            (false, _) => Step::Drop,
            (true, false) => Step::Closing, // start the close timeout once
            (true, true) => Step::Wait,
        };
    }
    match status {
        Ok(ReadStatus::BudgetExhausted) => Step::Again,
        _ => Step::Wait,
    }
}
