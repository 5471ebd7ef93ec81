//! Run with: `cargo run -p wheelbeat-net --example echo -- 127.0.0.1:7000`, then `nc 127.0.0.1 7000`.
//!
//! A line echo server on one mio loop: every frame received is sent back. A peer that lets
//! more than the write cap (1 MiB) of echoes pile up unread is disconnected.
use std::{ops::ControlFlow, time::Duration, time::Instant};

use mio::{Events, Poll, Token};
use wheelbeat_net::{AcceptStatus, Acceptor, ConnTable, Connection, Error, ListenConfig};
use wheelbeat_net::{
    DEFAULT_READ_BUDGET, LineCodec, Outbox, ReadBuf, ReadStatus, bind, raise_fd_limit,
};

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

fn main() -> Result<(), Error> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7000".into());
    let fds = raise_fd_limit()?;
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    let config = ListenConfig::default();
    let listener = bind(addr.parse().expect("ip:port"), &config)?;
    let mut acceptor = Acceptor::new(listener, LISTENER, config);
    acceptor.register(poll.registry())?;
    println!("echo on {addr}, fd limit {} of {}", fds.soft, fds.hard);
    let (mut conns, mut scratch) = (ConnTable::new(), ReadBuf::new());
    let (mut ready, mut full) = (Vec::new(), false); // work carried over; at max_connections
    loop {
        let idle = ready.is_empty(); // leftover work: poll without blocking
        let timeout = if idle {
            acceptor.timeout(Instant::now())
        } else {
            Some(Duration::ZERO)
        };
        poll.poll(&mut events, timeout)?;
        let (now, registry) = (Instant::now(), poll.registry());
        ready.extend(events.iter().map(|e| e.token()));
        ready.extend(acceptor.resume_due(now).then_some(LISTENER));
        for token in std::mem::take(&mut ready) {
            if token == LISTENER {
                match acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let key = conns.insert(Connection::new(stream));
                    let conn = conns.get_mut(key).expect("just inserted");
                    if conn.sync_interest(registry, key.token()).is_err() {
                        conns.remove(key);
                    }
                })? {
                    AcceptStatus::BudgetExhausted => ready.push(LISTENER),
                    AcceptStatus::Full => full = true,
                    _ => {}
                }
            } else if let Some(conn) = conns.get_mut(token) {
                // (a token not in the table is stale: its connection closed; ignore it)
                match conn.drive(registry, token, &mut scratch, DEFAULT_READ_BUDGET, echo) {
                    Ok(ReadStatus::BudgetExhausted) => ready.push(token),
                    Ok(ReadStatus::Drained) => {}
                    _ => {
                        conns.remove(token); // closed, hostile, too slow or failed
                        ready.extend(std::mem::take(&mut full).then_some(LISTENER));
                    }
                }
            }
        }
    }
}

/// Queues `frame` back to its sender; stops reading a peer that is not reading its echoes.
fn echo(frame: &[u8], out: &mut Outbox<'_, LineCodec>) -> ControlFlow<()> {
    match out.send(frame) {
        Ok(()) => ControlFlow::Continue(()),
        Err(_full) => ControlFlow::Break(()),
    }
}
