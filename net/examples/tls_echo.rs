//! Run with: `cargo run -p wheelbeat-net --features tls --example tls_echo -- --listen
//! 127.0.0.1:7443 --tls-cert cert.pem --tls-key key.pem`, then
//! `openssl s_client -connect 127.0.0.1:7443 -quiet` and type lines.
//!
//! A line echo server over TLS on one mio loop: every frame received is sent back, inside
//! TLS. It prints exactly `listening on IP:PORT` on stdout once bound (scripts wait for that
//! line), and one line per closed connection on stderr with the reason. A client that has
//! not finished its handshake 10 s after connecting is closed; a clean close sends
//! close_notify. `tests/interop/tls.sh` drives it with Python's `ssl` module.
use std::collections::VecDeque;
use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Poll, Token};
use wheelbeat_net::tls::{ClientAuth, DEFAULT_HANDSHAKE_TIMEOUT, TlsStream, server_config};
use wheelbeat_net::{Acceptor, ConnKey, ConnTable, Connection, DEFAULT_READ_BUDGET, Error};
use wheelbeat_net::{LineCodec, ListenConfig, ReadBuf, ReadStatus, Ready, raise_fd_limit};

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

type Conn = Connection<LineCodec, TlsStream<TcpStream>>;

struct Args {
    listen: String,
    cert: String,
    key: String,
}

fn args() -> Args {
    let mut a = Args {
        listen: "127.0.0.1:7443".into(),
        cert: String::new(),
        key: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--listen" => a.listen = value(),
            "--tls-cert" => a.cert = value(),
            "--tls-key" => a.key = value(),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if a.cert.is_empty() || a.key.is_empty() {
        usage("--tls-cert and --tls-key are required");
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!("tls_echo: {why}\nusage: tls_echo [--listen IP:PORT] --tls-cert FILE --tls-key FILE");
    std::process::exit(2)
}

fn main() -> Result<(), Error> {
    let args = args();
    let config = server_config(
        &std::fs::read(&args.cert)?,
        &std::fs::read(&args.key)?,
        &[],
        ClientAuth::None,
    )?;
    raise_fd_limit()?;
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    let addr = args
        .listen
        .parse()
        .unwrap_or_else(|_| usage("--listen wants IP:PORT"));
    let mut acceptor = Acceptor::bind(addr, LISTENER, ListenConfig::default())?;
    acceptor.register(poll.registry())?;
    println!("listening on {}", acceptor.local_addr()?);
    std::io::stdout().flush()?;

    let (mut conns, mut scratch, mut ready) =
        (ConnTable::<Conn>::new(), ReadBuf::new(), Ready::new());
    // Handshake deadlines in accept order, hence in deadline order: the front is next due.
    let mut handshakes: VecDeque<(Instant, ConnKey)> = VecDeque::new();
    loop {
        let now = Instant::now();
        let next = handshakes
            .front()
            .map(|(d, _)| d.saturating_duration_since(now));
        let timeout = ready.timeout(acceptor.timeout(now).into_iter().chain(next).min());
        poll.poll(&mut events, timeout)?;
        let (now, registry) = (Instant::now(), poll.registry());
        while let Some(&(deadline, key)) = handshakes.front() {
            if deadline > now {
                break;
            }
            handshakes.pop_front();
            if conns.get(key).is_some_and(|c| c.handshake_expired(now)) {
                close(&mut conns, key.token(), "handshake timed out");
            }
        }
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        while let Some(token) = ready.next_token() {
            if token == LISTENER {
                acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let deadline = now + DEFAULT_HANDSHAKE_TIMEOUT;
                    match TlsStream::server(stream, config.clone(), Some(deadline)) {
                        Ok(tls) => match conns.insert_registered(registry, Connection::new(tls)) {
                            Ok(key) => handshakes.push_back((deadline, key)),
                            Err(e) => eprintln!("register: {e}"),
                        },
                        Err(e) => eprintln!("tls: {e}"),
                    }
                })?;
                continue;
            }
            let Some(conn) = conns.get_mut(token) else {
                continue;
            }; // stale: already closed
            // (No `on_event` needed: over TLS a short read proves nothing, so `drive` reads
            // until `WouldBlock` anyway.)
            let result = conn.drive(
                registry,
                token,
                &mut scratch,
                DEFAULT_READ_BUDGET,
                |frame, out| {
                    match out.send(frame) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_full) => ControlFlow::Break(()), // stop reading a peer that does not read
                    }
                },
            );
            match result {
                Ok(ReadStatus::BudgetExhausted) => ready.again(token),
                Ok(ReadStatus::Drained | ReadStatus::Stopped) => {}
                Ok(ReadStatus::Closed) => {
                    let peer = peer_of(conn);
                    // The peer is done sending: answer with close_notify and a FIN.
                    let _ = conn.shutdown();
                    conns.remove(token);
                    eprintln!("closed {peer}: closed by peer");
                }
                Err(e) => close(&mut conns, token, &e.to_string()),
            }
        }
    }
}

fn close(conns: &mut ConnTable<Conn>, token: Token, why: &str) {
    if let Some(conn) = conns.remove(token) {
        eprintln!("closed {}: {why}", peer_of(&conn));
    }
}

fn peer_of(conn: &Conn) -> String {
    // (A peer that reset its end may no longer have an address to report.)
    conn.peer_addr()
        .map_or_else(|_| "(reset peer)".into(), |p| p.to_string())
}
