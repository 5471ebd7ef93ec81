//! Real sockets: an event fetched for a connection that is then closed, its slot reused by a
//! new connection, never reaches the new connection.
//!
//! Run with: `cargo test -p wheelbeat-net --test stale_token`.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{WAIT, client};
use mio::{Events, Poll, Token};
use wheelbeat_net::{Acceptor, ConnTable, Connection, ListenConfig, bind};

const LISTENER: Token = Token(usize::MAX);

/// Polls until `want` returns true for some event token, bounded by `WAIT`.
fn poll_until(poll: &mut Poll, events: &mut Events, want: impl Fn(Token) -> bool) -> Vec<Token> {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no matching event");
        poll.poll(events, Some(Duration::from_millis(100))).unwrap();
        let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
        if tokens.iter().any(|t| want(*t)) {
            return tokens;
        }
    }
}

#[test]
fn stale_token_after_close_and_slot_reuse_is_rejected() {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(64);
    let config = ListenConfig::default();
    let listener = bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut acceptor = Acceptor::new(listener, LISTENER, config);
    acceptor.register(poll.registry()).unwrap();
    let mut table: ConnTable<Connection> = ConnTable::new();

    let accept_one = |poll: &mut Poll,
                      events: &mut Events,
                      acceptor: &mut Acceptor,
                      table: &mut ConnTable<Connection>| {
        poll_until(poll, events, |t| t == LISTENER);
        let mut key = None;
        acceptor
            .accept(poll.registry(), Instant::now(), table.len(), |s, _| {
                let k = table.insert(Connection::new(s));
                key = Some(k);
            })
            .unwrap();
        let k = key.expect("one connection accepted");
        table
            .get_mut(k)
            .unwrap()
            .sync_interest(poll.registry(), k.token())
            .unwrap();
        k
    };

    // Connection A speaks; we hold a real readable event for its token.
    let mut a = client(addr);
    let key_a = accept_one(&mut poll, &mut events, &mut acceptor, &mut table);
    a.write_all(b"for A\n").unwrap();
    let stale = poll_until(&mut poll, &mut events, |t| t == key_a.token());
    assert!(stale.contains(&key_a.token()));

    // While that event batch is still being handled, A is closed and B takes its slot.
    table.remove(key_a).unwrap();
    let mut b = client(addr);
    let key_b = accept_one(&mut poll, &mut events, &mut acceptor, &mut table);
    b.write_all(b"for B\n").unwrap();
    assert_eq!(key_a.index(), key_b.index(), "the slot was reused");
    assert_ne!(key_a.token(), key_b.token());

    // The stale event's token finds nothing; B is intact and still owns its bytes.
    assert!(table.get_mut(key_a.token()).is_none());
    assert!(table.remove(key_a.token()).is_none());
    assert_eq!(table.len(), 1);
    poll_until(&mut poll, &mut events, |t| t == key_b.token());
    let mut scratch = wheelbeat_net::ReadBuf::new();
    let mut got = Vec::new();
    table
        .get_mut(key_b.token())
        .unwrap()
        .read_frames(&mut scratch, 1 << 16, |f, _| {
            got.push(f.to_vec());
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(got, vec![b"for B".to_vec()]);
}
