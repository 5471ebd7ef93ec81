//! Real Unix domain stream sockets through the transport seam: an `Acceptor` on a socket
//! path, `Connecting` to it, a framed echo between two `Connection<_, UnixStream>`s on one
//! `Poll`, the peer address reported as a Unix path, a clean half-close, and `SO_SNDBUF`
//! applied to accepted Unix sockets.
//!
//! Run with: `cargo test -p wheelbeat-net --test unix`.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use socket2::SockRef;
use wheelbeat_net::{
    AcceptStatus, Acceptor, ConnectStatus, Connecting, Connection, ListenConfig, PeerAddr, ReadBuf,
    ReadStatus, ShutdownStatus, SocketOptions,
};

const WAIT: Duration = Duration::from_secs(10);
const LISTENER: Token = Token(usize::MAX);
const SERVER: Token = Token(1);
const CLIENT: Token = Token(2);

/// A socket path unique to this test process and test name, removed first if stale.
fn socket_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wheelbeat-net-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Accepts one connection on `acceptor`, bounded by `WAIT`.
fn accept_one(poll: &mut Poll, acceptor: &mut Acceptor<mio::net::UnixListener>) -> UnixStream {
    let mut events = Events::with_capacity(8);
    let mut got = None;
    let until = Instant::now() + WAIT;
    while got.is_none() {
        assert!(Instant::now() < until, "accept timed out");
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        let st = acceptor
            .accept(poll.registry(), Instant::now(), 0, |s, _peer| got = Some(s))
            .unwrap();
        assert!(!matches!(st, AcceptStatus::BackedOff { .. }), "{st:?}");
    }
    got.unwrap()
}

/// Connects to `path` with `Connecting`, bounded by `WAIT`.
fn connect(poll: &mut Poll, path: &std::path::Path) -> UnixStream {
    let mut c =
        Connecting::start_unix(path, &SocketOptions::default(), Instant::now(), WAIT).unwrap();
    assert_eq!(c.peer_addr(), &PeerAddr::Unix(Some(path.to_path_buf())));
    poll.registry()
        .register(c.stream_mut(), Token(9), Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let until = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < until, "connect never finished");
        match c.poll(Instant::now()) {
            ConnectStatus::Connected(mut s) => {
                poll.registry().deregister(&mut s).unwrap();
                return s;
            }
            ConnectStatus::Pending => {
                poll.poll(&mut events, Some(Duration::from_millis(50)))
                    .unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn framed_echo_over_a_unix_socket_path() {
    let path = socket_path("echo");
    let mut poll = Poll::new().unwrap();
    let mut acceptor = Acceptor::bind_unix(&path, LISTENER, ListenConfig::default()).unwrap();
    acceptor.register(poll.registry()).unwrap();
    let client = connect(&mut poll, &path);
    let server = accept_one(&mut poll, &mut acceptor);

    let mut server = Connection::new(server);
    let mut client = Connection::new(client);
    // The client end of a path connection is unnamed; its peer is the path.
    assert_eq!(
        client.peer_addr().unwrap(),
        PeerAddr::Unix(Some(path.clone()))
    );
    assert_eq!(server.peer_addr().unwrap(), PeerAddr::Unix(None));
    server.sync_interest(poll.registry(), SERVER).unwrap();
    client.sync_interest(poll.registry(), CLIENT).unwrap();

    for i in 0..100 {
        client.send(format!("{{\"ping\":{i}}}")).unwrap();
    }
    client.flush().unwrap();
    client.sync_interest(poll.registry(), CLIENT).unwrap();
    let mut scratch = ReadBuf::new();
    let mut events = Events::with_capacity(8);
    let mut echoed = Vec::new();
    let until = Instant::now() + WAIT;
    while echoed.len() < 100 {
        assert!(Instant::now() < until, "echoed only {}", echoed.len());
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let (conn, token) = match ev.token() {
                SERVER => (&mut server, SERVER),
                CLIENT => (&mut client, CLIENT),
                _ => continue,
            };
            let st = conn
                .drive_event(
                    poll.registry(),
                    token,
                    ev,
                    &mut scratch,
                    1 << 16,
                    |f, out| {
                        if token == SERVER {
                            out.send(f).unwrap();
                        } else {
                            echoed.push(String::from_utf8(f.to_vec()).unwrap());
                        }
                        ControlFlow::Continue(())
                    },
                )
                .unwrap();
            assert_ne!(st, ReadStatus::Closed);
        }
    }
    let want: Vec<String> = (0..100).map(|i| format!("{{\"ping\":{i}}}")).collect();
    assert_eq!(echoed, want);

    // A clean half-close: the server sees end of stream at a frame boundary.
    assert_eq!(client.shutdown().unwrap(), ShutdownStatus::Done);
    let until = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < until, "close not seen");
        match server.read_frames(&mut scratch, 1 << 16, |_, _| ControlFlow::Continue(())) {
            Ok(ReadStatus::Closed) => break,
            Ok(_) => poll
                .poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap(),
            Err(e) => panic!("{e}"),
        }
    }
    drop(acceptor);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn accepted_unix_sockets_get_the_send_buffer_size() {
    let path = socket_path("sndbuf");
    let mut poll = Poll::new().unwrap();
    let config =
        ListenConfig::default().socket(SocketOptions::default().send_buffer(Some(32 * 1024)));
    let mut acceptor = Acceptor::bind_unix(&path, LISTENER, config).unwrap();
    acceptor.register(poll.registry()).unwrap();
    let _client = connect(&mut poll, &path);
    let server = accept_one(&mut poll, &mut acceptor);
    // Linux doubles the requested size for its bookkeeping and reports the doubled value.
    let got = SockRef::from(&server).send_buffer_size().unwrap();
    assert!((32 * 1024..=64 * 1024).contains(&got), "{got}");
    let default = SockRef::from(&_client).send_buffer_size().unwrap();
    assert_ne!(got, default, "the option changed nothing");
    drop(acceptor);
    std::fs::remove_file(&path).unwrap();
}
