//! The `wheelbeat-ws` mode: wheelbeat-net's WebSocket module on one mio loop, the RFC's own
//! ping and pong as the heartbeat, driven by the heartbeat crate's I/O-free [`Monitor`].
//!
//! The heartbeat `Server` does not speak WebSocket yet, so this server is assembled from the
//! pieces a user would assemble it from, as `net/examples/ws_echo.rs` is: net's `Acceptor`,
//! `ConnTable`, `Ready`, `Connection<WsCodec>` and a `ws::Session` per connection (the
//! upgrade, framing, pongs to the peer's pings, the close handshake), plus a `Monitor` that
//! says when to send a ping carrying its sequence number (`Control::ping_seq`) and matches
//! the pongs that echo it. Text and binary messages are echoed. One thread, one loop.
//!
//! # Ground rules
//!
//! - Every frame is a sign of life for the monitor; a pong carrying a sequence number is fed
//!   as the pong of that ping (RTT), anything else as data.
//! - The close path is `ws_echo`'s: a closed session is read no more and dropped once its
//!   queue is flushed (or at the close timeout); an upgrade not done by the handshake timeout
//!   is dropped; a peer the monitor declares dead is dropped.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};
use wheelbeat_heartbeat::monitor::{Action, Monitor, PeerId};
use wheelbeat_heartbeat::protocol::Message;
use wheelbeat_net::ws::{
    Control, Deadlines, Encoder, Event, MessageKind, Role, Session, Sink, WsCodec, accept_any,
    pong_seq,
};
use wheelbeat_net::{
    Acceptor, ConnKey, ConnTable, Connection, Error, ListenConfig, ReadBuf, ReadStatus, Ready,
};

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

/// Most timers the monitor runs per turn, so a burst of due pings cannot starve the sockets.
const TIMERS_PER_TURN: usize = 4096;
/// Time from accept to a complete upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to flush the last bytes once a session is closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One WebSocket connection, its protocol state and its peer in the monitor.
struct Ws {
    conn: Connection<WsCodec>,
    session: Session,
    id: PeerId,
}

/// Starts the server on `127.0.0.1:0` on its own thread; returns its address. It runs until
/// the process exits.
pub fn start(interval: Duration) -> Result<SocketAddr, Error> {
    let acceptor = Acceptor::bind(
        "127.0.0.1:0".parse().expect("an address"),
        LISTENER,
        ListenConfig::default(),
    )?;
    let addr = acceptor.local_addr()?;
    std::thread::Builder::new()
        .name("wheelbeat-ws".into())
        .spawn(move || {
            if let Err(e) = run(acceptor, interval) {
                eprintln!("wheelbeat-ws: loop ended: {e}");
            }
        })
        .map_err(Error::Io)?;
    Ok(addr)
}

fn run(mut acceptor: Acceptor, interval: Duration) -> Result<(), Error> {
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    acceptor.register(poll.registry())?;
    let (mut conns, mut ready, mut scratch) =
        (ConnTable::<Ws>::new(), Ready::new(), ReadBuf::new());
    let mut encoder = Encoder::new();
    let mut monitor: Monitor<ConnKey> =
        Monitor::new(super::heartbeat_config(interval), Instant::now());
    let mut handshakes = Deadlines::new(HANDSHAKE_TIMEOUT);
    let mut closing = Deadlines::new(CLOSE_TIMEOUT);
    loop {
        let now = Instant::now();
        let due = [
            handshakes.next_deadline(),
            closing.next_deadline(),
            monitor.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now));
        let timeout = match (acceptor.timeout(now), due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match poll.poll(&mut events, ready.timeout(timeout)) {
            // A signal (a debugger or profiler attaching, say) is no reason to stop serving.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        let (now, registry) = (Instant::now(), poll.registry());
        // What each event said (readable, read-closed) lets a plain socket's read stop after
        // a short read instead of reading again for `WouldBlock`.
        for event in events.iter() {
            if let Some(ws) = conns.get_mut(event.token()) {
                ws.conn.on_event(event);
            }
        }
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        while let Some(token) = ready.next_token() {
            if token == LISTENER {
                acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let mut registered = Ok(());
                    let key = conns.insert_with(|key| {
                        let mut conn = Connection::with_codec(stream, WsCodec::server());
                        registered = conn.sync_interest(registry, key.token());
                        let id = monitor.add(now, key);
                        Ws {
                            conn,
                            session: Session::server(),
                            id,
                        }
                    });
                    match registered {
                        Ok(()) => handshakes.push(now, key),
                        Err(_) => close(&mut conns, &mut monitor, key),
                    }
                })?;
            } else if let Some(ws) = conns.get_mut(token) {
                // (a token not in the table is stale: its connection closed; ignore it)
                match serve(
                    ws,
                    registry,
                    token,
                    now,
                    &mut scratch,
                    &mut encoder,
                    &mut monitor,
                ) {
                    Step::Again => ready.again(token),
                    Step::Wait => {}
                    Step::Closing => closing.push(now, ConnKey::from_token(token)),
                    Step::Drop => close(&mut conns, &mut monitor, ConnKey::from_token(token)),
                }
            }
        }
        while let Some(key) = handshakes.pop_expired(now) {
            if conns.get(key).is_some_and(|ws| ws.session.is_handshaking()) {
                close(&mut conns, &mut monitor, key);
            }
        }
        while let Some(key) = closing.pop_expired(now) {
            close(&mut conns, &mut monitor, key);
        }
        if monitor.poll_timeout().is_some_and(|at| at <= now) {
            monitor.handle_timeout_bounded(now, TIMERS_PER_TURN);
        }
        while let Some(action) = monitor.poll_action() {
            match action {
                Action::SendPing { conn: key, seq, .. } => {
                    let sent = ping(&mut conns, registry, key, seq);
                    if sent.is_err() {
                        close(&mut conns, &mut monitor, key);
                    }
                }
                // Already out of the monitor: only the socket is left to close.
                Action::Close { conn: key, .. } => drop(conns.remove(key)),
                // Pongs to the peer's pings are the session's job (the monitor never sees a
                // ping: they are fed as data).
                _ => {}
            }
        }
        while monitor.poll_event().is_some() {}
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

/// Reads what the peer sent through its session, feeding the monitor and echoing messages.
fn serve(
    ws: &mut Ws,
    registry: &Registry,
    token: Token,
    now: Instant,
    scratch: &mut ReadBuf,
    encoder: &mut Encoder,
    monitor: &mut Monitor<ConnKey>,
) -> Step {
    let Ws { conn, session, id } = ws;
    let (id, was_closed) = (*id, session.is_closed());
    let mut status = Ok(ReadStatus::Drained);
    if !was_closed {
        status = conn.read_frames(scratch, DEFAULT_BUDGET, |frame, out| {
            let mut stalled = false;
            let handled = session.handle(frame, out, &mut accept_any, |event, out| {
                let msg = match event {
                    Event::Pong(p) => pong_seq(p).map_or(Message::Data(p), Message::Pong),
                    Event::Text(t) => {
                        stalled = encoder
                            .send(out, Role::Server, MessageKind::Text, t.as_bytes())
                            .is_err();
                        Message::Data(t.as_bytes())
                    }
                    Event::Binary(b) => {
                        stalled = encoder
                            .send(out, Role::Server, MessageKind::Binary, b)
                            .is_err();
                        Message::Data(b)
                    }
                    _ => Message::Data(&[]),
                };
                monitor.handle_message(id, now, &msg);
            });
            match handled {
                Err(e) => session.fail(out, &e),
                // The peer is not reading its echoes: tell it, then give up on it.
                Ok(()) if stalled => session.fail(out, &Error::QueueFull { queued: 0, cap: 0 }),
                Ok(()) => {}
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

/// Read budget per call: 64 KiB (the benchmark's messages are tiny).
const DEFAULT_BUDGET: usize = 64 * 1024;

/// Queues a ping carrying `seq` on the priority lane and writes it.
fn ping(
    conns: &mut ConnTable<Ws>,
    registry: &Registry,
    key: ConnKey,
    seq: u64,
) -> Result<(), Error> {
    let Some(ws) = conns.get_mut(key) else {
        return Ok(()); // closed this turn
    };
    if !ws.session.is_open() {
        return Ok(()); // still upgrading, or closing: the monitor counts the miss
    }
    let frame = Control::ping_seq(Role::Server, seq)?;
    ws.conn.send_priority_frames(frame.as_ref())?;
    ws.conn.flush()?;
    ws.conn.sync_interest(registry, key.token())
}

/// Drops a connection and its peer in the monitor.
fn close(conns: &mut ConnTable<Ws>, monitor: &mut Monitor<ConnKey>, key: ConnKey) {
    if let Some(ws) = conns.remove(key) {
        monitor.remove(ws.id);
    }
}
