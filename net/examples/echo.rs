//! Run with: `cargo run -p wheelbeat-net --example echo -- 127.0.0.1:7000`, then `nc 127.0.0.1 7000`.
//!
//! A line echo server on one mio loop: every frame received is sent back. A peer that lets
//! more than the write cap (1 MiB) of echoes pile up unread is disconnected.
use std::{ops::ControlFlow, time::Instant};

use mio::{Events, Poll, Token};
use wheelbeat_net::{Acceptor, ConnTable, Connection, DEFAULT_READ_BUDGET, Error, LineCodec};
use wheelbeat_net::{ListenConfig, Outbox, ReadBuf, ReadStatus, Ready, raise_fd_limit};

const LISTENER: Token = Token(usize::MAX); // ConnTable never issues tokens with the top bit set

fn main() -> Result<(), Error> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7000".into());
    let fds = raise_fd_limit()?;
    let (mut poll, mut events) = (Poll::new()?, Events::with_capacity(1024));
    let config = ListenConfig::default();
    let mut acceptor = Acceptor::bind(addr.parse().expect("ip:port"), LISTENER, config)?;
    acceptor.register(poll.registry())?;
    println!("echo on {addr}, fd limit {} of {}", fds.soft, fds.hard);
    let (mut conns, mut scratch, mut ready) = (ConnTable::new(), ReadBuf::new(), Ready::new());
    loop {
        poll.poll(&mut events, ready.timeout(acceptor.timeout(Instant::now())))?;
        let (now, registry) = (Instant::now(), poll.registry());
        ready.begin_turn(&events, acceptor.accept_due(now).then_some(LISTENER));
        while let Some(token) = ready.next_token() {
            if token == LISTENER {
                acceptor.accept(registry, now, conns.len(), |stream, _peer| {
                    let _ = conns.insert_registered(registry, Connection::new(stream));
                })?;
            } else if let Some(conn) = conns.get_mut(token) {
                // (a token not in the table is stale: its connection closed; ignore it)
                match conn.drive(registry, token, &mut scratch, DEFAULT_READ_BUDGET, echo) {
                    Ok(ReadStatus::BudgetExhausted) => ready.again(token),
                    Ok(ReadStatus::Drained) => {}
                    _ => drop(conns.remove(token)), // closed, hostile, too slow or failed
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
