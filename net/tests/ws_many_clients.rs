//! Both ends on mio: 200 WebSocket clients, each a `Connection<WsCodec>` in client role with a
//! `Session::client`, driven on one `Poll` in the test thread against the `ws_echo` example's
//! loop on another thread. Each upgrades, sends a text and a binary message, checks the echoes,
//! pings with a sequence number, then closes; the server must answer every close.
//!
//! Run with: `cargo test -p wheelbeat-net --test ws_many_clients`.

mod ws_client;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use wheelbeat_net::ws::{
    ClientRequest, Control, Encoder, Event, MessageKind, Role, Session, Sink, WsCodec, accept_any,
    client_request, close, pong_seq, random_key,
};
use wheelbeat_net::{ConnTable, Connection, DEFAULT_READ_BUDGET, ReadBuf, ReadStatus};
use ws_client::{WAIT, start_server, ws_echo::Caps};

const CLIENTS: usize = 200;

/// Where a client is in its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Upgrading,
    AwaitText,
    AwaitBinary,
    AwaitPong,
    SendClose,
    AwaitClose,
    Done,
}

struct Client {
    conn: Connection<WsCodec>,
    session: Session,
    step: Step,
    seq: u64,
}

#[test]
fn two_hundred_mio_clients_upgrade_echo_ping_and_close() {
    let addr = start_server(Caps::default());
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut clients = ConnTable::new();
    for i in 0..CLIENTS {
        let std = std::net::TcpStream::connect(addr).unwrap();
        std.set_nonblocking(true).unwrap();
        let key = random_key().unwrap();
        let mut conn =
            Connection::with_codec(mio::net::TcpStream::from_std(std), WsCodec::client());
        let host = addr.to_string();
        let request = ClientRequest {
            host: &host,
            target: "/",
            origin: None,
            protocols: &[],
        };
        conn.send(client_request(&request, &key)).unwrap();
        let k = clients.insert(Client {
            conn,
            session: Session::client(key),
            step: Step::Upgrading,
            seq: i as u64,
        });
        let c = clients.get_mut(k).unwrap();
        c.conn.flush().unwrap();
        c.conn.sync_interest(poll.registry(), k.token()).unwrap();
    }
    let (mut scratch, mut encoder) = (ReadBuf::new(), Encoder::new());
    let mut done = 0;
    let deadline = Instant::now() + WAIT;
    while done < CLIENTS {
        assert!(
            Instant::now() < deadline,
            "only {done} of {CLIENTS} finished"
        );
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let token: Token = ev.token();
            let Some(c) = clients.get_mut(token) else {
                continue;
            };
            let Client {
                conn,
                session,
                step,
                seq,
            } = c;
            let status = conn
                .drive_event(
                    poll.registry(),
                    token,
                    ev,
                    &mut scratch,
                    DEFAULT_READ_BUDGET,
                    |frame, out| {
                        let role = session.role();
                        session
                            .handle(frame, out, &mut accept_any, |event, out| {
                                *step = advance(*step, event, out, &mut encoder, role, *seq);
                            })
                            .unwrap();
                        if *step == Step::SendClose {
                            // Through the session, so it knows it closed first and does not
                            // answer the server's close with another.
                            session.close(out, close::NORMAL, "done").unwrap();
                            *step = Step::AwaitClose;
                        }
                        ControlFlow::Continue(())
                    },
                )
                .unwrap();
            if *step == Step::Done {
                assert!(session.is_closed());
                clients.remove(token);
                done += 1;
            } else {
                assert_ne!(
                    status,
                    ReadStatus::Closed,
                    "server closed early at {step:?}"
                );
            }
        }
    }
}

/// One step of a client's script: checks `event`, queues what comes next.
fn advance<S: Sink + ?Sized>(
    step: Step,
    event: Event<'_>,
    out: &mut S,
    encoder: &mut Encoder,
    role: Role,
    seq: u64,
) -> Step {
    match (step, event) {
        (Step::Upgrading, Event::Open { protocol: None }) => {
            encoder
                .send(
                    out,
                    role,
                    MessageKind::Text,
                    format!("hello {seq}").as_bytes(),
                )
                .unwrap();
            Step::AwaitText
        }
        (Step::AwaitText, Event::Text(t)) => {
            assert_eq!(t, format!("hello {seq}"));
            encoder
                .send(out, role, MessageKind::Binary, &seq.to_le_bytes())
                .unwrap();
            Step::AwaitBinary
        }
        (Step::AwaitBinary, Event::Binary(b)) => {
            assert_eq!(b, seq.to_le_bytes());
            out.send_priority_frames(Control::ping_seq(role, seq).unwrap().as_ref())
                .unwrap();
            Step::AwaitPong
        }
        (Step::AwaitPong, Event::Pong(p)) => {
            assert_eq!(pong_seq(p), Some(seq));
            Step::SendClose
        }
        (Step::AwaitClose, Event::Close(body)) => {
            assert_eq!(body.code, Some(close::NORMAL));
            Step::Done
        }
        (step, event) => panic!("client {seq}: {event:?} at {step:?}"),
    }
}
