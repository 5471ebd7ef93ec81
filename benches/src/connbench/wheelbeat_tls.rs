//! The `wheelbeat-tls` mode: wheelbeat-net's TLS on one mio loop, heartbeats by the
//! heartbeat crate's I/O-free [`Monitor`].
//!
//! The heartbeat `Server` does not speak TLS yet, so this server is assembled from the
//! pieces a user would assemble it from: net's `Acceptor`, `ConnTable`, `Ready`, and
//! `Connection<LineCodec, TlsStream<TcpStream>>` (rustls' unbuffered API; the certificate
//! through `wheelbeat_net::tls::server_config`), with the heartbeat protocol's parser and
//! encoders and a `Monitor` deciding when to ping and when a peer is dead. One thread, one
//! loop, as in `net/examples/tls_echo.rs`.
//!
//! # Ground rules
//!
//! - Every frame is fed to the monitor (any frame is a sign of life); the monitor's actions
//!   (ping, pong, close) are carried out at the end of each turn.
//! - A handshake not done by its deadline (`DEFAULT_HANDSHAKE_TIMEOUT`) closes the
//!   connection; a clean close from the peer is answered with close notify.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Registry, Token};
use wheelbeat_heartbeat::monitor::{Action, Monitor, PeerId};
use wheelbeat_heartbeat::protocol;
use wheelbeat_net::tls::{DEFAULT_HANDSHAKE_TIMEOUT, TlsStream};
use wheelbeat_net::{Acceptor, ConnKey, ConnTable, Connection, DEFAULT_READ_BUDGET, Error};
use wheelbeat_net::{LineCodec, ListenConfig, ReadBuf, ReadStatus, Ready};

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

/// Most timers the monitor runs per turn, so a burst of due pings cannot starve the sockets.
const TIMERS_PER_TURN: usize = 4096;

type Conn = Connection<LineCodec, TlsStream<TcpStream>>;

/// One connection and its peer in the monitor.
struct Peer {
    conn: Conn,
    id: PeerId,
}

/// Starts the server on `127.0.0.1:0` on its own thread; returns its address. It runs until
/// the process exits.
pub fn start(config: Arc<rustls::ServerConfig>, interval: Duration) -> Result<SocketAddr, Error> {
    let acceptor = Acceptor::bind(
        "127.0.0.1:0".parse().expect("an address"),
        LISTENER,
        ListenConfig::default(),
    )?;
    let addr = acceptor.local_addr()?;
    std::thread::Builder::new()
        .name("wheelbeat-tls".into())
        .spawn(move || {
            if let Err(e) = run(acceptor, config, interval) {
                eprintln!("wheelbeat-tls: loop ended: {e}");
            }
        })?;
    Ok(addr)
}

fn run(
    mut acceptor: Acceptor,
    config: Arc<rustls::ServerConfig>,
    interval: Duration,
) -> Result<(), Error> {
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    acceptor.register(poll.registry())?;
    let (mut conns, mut scratch, mut ready) =
        (ConnTable::<Peer>::new(), ReadBuf::new(), Ready::new());
    let mut monitor: Monitor<ConnKey> =
        Monitor::new(super::heartbeat_config(interval), Instant::now());
    // Handshake deadlines in accept order, hence in deadline order: the front is next due.
    let mut handshakes: VecDeque<(Instant, ConnKey)> = VecDeque::new();
    let mut out = Vec::with_capacity(64);
    loop {
        let now = Instant::now();
        let due = [handshakes.front().map(|(d, _)| *d), monitor.poll_timeout()]
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
            if let Some(p) = conns.get_mut(event.token()) {
                p.conn.on_event(event);
            }
        }
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        while let Some(token) = ready.next_token() {
            if token == LISTENER {
                acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let deadline = now + DEFAULT_HANDSHAKE_TIMEOUT;
                    let Ok(tls) = TlsStream::server(stream, config.clone(), Some(deadline)) else {
                        return;
                    };
                    let mut registered = Ok(());
                    let key = conns.insert_with(|key| {
                        let mut conn = Connection::new(tls);
                        registered = conn.sync_interest(registry, key.token());
                        let id = monitor.add(now, key);
                        Peer { conn, id }
                    });
                    match registered {
                        Ok(()) => handshakes.push_back((deadline, key)),
                        Err(_) => close(&mut conns, &mut monitor, key),
                    }
                })?;
                continue;
            }
            let Some(Peer { conn, id }) = conns.get_mut(token) else {
                continue; // stale: already closed
            };
            let id = *id;
            let result = conn.drive(
                registry,
                token,
                &mut scratch,
                DEFAULT_READ_BUDGET,
                |frame, _| {
                    match protocol::parse(frame) {
                        Ok(msg) => {
                            monitor.handle_message(id, now, &msg);
                            ControlFlow::Continue(())
                        }
                        Err(_) => ControlFlow::Break(()), // not the protocol: stop reading it
                    }
                },
            );
            match result {
                Ok(ReadStatus::BudgetExhausted) => ready.again(token),
                Ok(ReadStatus::Drained) => {}
                Ok(ReadStatus::Closed) => {
                    // The peer is done sending: answer with close notify and a FIN.
                    let _ = conn.shutdown();
                    close(&mut conns, &mut monitor, ConnKey::from_token(token));
                }
                _ => close(&mut conns, &mut monitor, ConnKey::from_token(token)),
            }
        }
        while let Some(&(deadline, key)) = handshakes.front() {
            if deadline > now {
                break;
            }
            handshakes.pop_front();
            if conns
                .get(key)
                .is_some_and(|p| p.conn.handshake_expired(now))
            {
                close(&mut conns, &mut monitor, key);
            }
        }
        if monitor.poll_timeout().is_some_and(|at| at <= now) {
            monitor.handle_timeout_bounded(now, TIMERS_PER_TURN);
        }
        while let Some(action) = monitor.poll_action() {
            type Encode = fn(u64, &mut Vec<u8>);
            let (key, seq, encode): (_, _, Encode) = match action {
                Action::SendPing { conn, seq, .. } => (conn, seq, protocol::encode_ping),
                Action::SendPong { conn, seq, .. } => (conn, seq, protocol::encode_pong),
                Action::Close { conn, .. } => {
                    // Already out of the monitor: only the socket is left to close.
                    conns.remove(conn);
                    continue;
                }
                _ => continue,
            };
            out.clear();
            encode(seq, &mut out);
            if send(&mut conns, registry, key, &out).is_err() {
                close(&mut conns, &mut monitor, key);
            }
        }
        while monitor.poll_event().is_some() {}
    }
}

/// Queues a heartbeat frame on the priority lane and writes it.
fn send(
    conns: &mut ConnTable<Peer>,
    registry: &Registry,
    key: ConnKey,
    frame: &[u8],
) -> Result<(), Error> {
    let Some(peer) = conns.get_mut(key) else {
        return Ok(()); // closed this turn
    };
    peer.conn
        .send_priority(frame)
        .map_err(|e| e.into_parts().1)?;
    peer.conn.flush()?;
    peer.conn.sync_interest(registry, key.token())
}

/// Drops a connection and its peer in the monitor.
fn close(conns: &mut ConnTable<Peer>, monitor: &mut Monitor<ConnKey>, key: ConnKey) {
    if let Some(peer) = conns.remove(key) {
        monitor.remove(peer.id);
    }
}
