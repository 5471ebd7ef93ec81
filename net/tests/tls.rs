//! TLS over real loopback sockets, both ends on one `Poll` in the test's thread: a handshake
//! and framed echo (ALPN and SNI read back), the handshake deadline in virtual time, garbage
//! instead of a ClientHello, a peer that stops reading cut off at the write cap alone, and
//! close_notify on a clean close.
//!
//! Run with: `cargo test -p wheelbeat-net --features tls --test tls`.
#![cfg(feature = "tls")]

mod tls_common;

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tls_common::{CLIENT, Pair, SERVER, WAIT, cert, server_cfg, tcp_pair};
use wheelbeat_net::tls::TlsStream;
use wheelbeat_net::{Connection, Handshake, ReadBuf, ReadStatus, ShutdownStatus, Transport};

fn cont() -> ControlFlow<()> {
    ControlFlow::Continue(())
}

#[test]
fn handshake_then_framed_echo_through_tls() {
    let cert = cert();
    let mut p = Pair::new(&cert, None);
    p.handshake();
    assert_eq!(p.server.handshake(), Handshake::Done);
    assert_eq!(p.server.stream().alpn_protocol(), Some(&b"wheelbeat"[..]));
    assert_eq!(p.client.stream().alpn_protocol(), Some(&b"wheelbeat"[..]));
    assert_eq!(p.server.stream().server_name(), Some("localhost"));

    // Small frames, and one of 40,000 bytes: more than two records each way.
    let big = vec![b'z'; 40_000];
    let lines: Vec<Vec<u8>> = vec![b"{\"ping\":1}".to_vec(), big, b"{\"ping\":2}".to_vec()];
    for l in &lines {
        p.client.send(l.clone()).unwrap();
    }
    p.client.flush().unwrap();
    p.client.sync_interest(p.poll.registry(), CLIENT).unwrap();
    let mut echoed = Vec::new();
    let deadline = Instant::now() + WAIT;
    while echoed.len() < lines.len() {
        assert!(
            Instant::now() < deadline,
            "echo incomplete: {}",
            echoed.len()
        );
        let t = p.turn(
            |f, out| {
                out.send(f).unwrap();
                cont()
            },
            |f, _| {
                echoed.push(f.to_vec());
                cont()
            },
        );
        assert!(!matches!(t.server, Some(Err(_))), "{t:?}");
        assert!(!matches!(t.client, Some(Err(_))), "{t:?}");
    }
    assert_eq!(echoed, lines);
    // Idle again: no ciphertext or plaintext buffer held on either side.
    assert_eq!(p.server.heap_bytes(), 0);
    assert_eq!(p.client.heap_bytes(), 0);
}

#[test]
fn silent_client_is_past_its_handshake_deadline_exactly_at_it() {
    let cert = cert();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(200);
    let (s, _client_sends_nothing) = tcp_pair();
    let mut conn =
        Connection::new(TlsStream::server(s, server_cfg(&cert), Some(deadline)).unwrap());
    let mut scratch = ReadBuf::new();
    // Nothing arrived: reading finds nothing, the handshake is in progress.
    let st = conn
        .read_frames(&mut scratch, 1 << 16, |_, _| cont())
        .unwrap();
    assert_eq!(st, ReadStatus::Drained);
    assert_eq!(
        conn.handshake(),
        Handshake::InProgress {
            deadline: Some(deadline)
        }
    );
    // Virtual time: the caller's clock decides, the crate never reads one.
    assert!(!conn.handshake_expired(t0));
    assert!(!conn.handshake_expired(deadline - Duration::from_nanos(1)));
    assert!(conn.handshake_expired(deadline));
}

#[test]
fn half_a_client_hello_still_hits_the_deadline() {
    let cert = cert();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(1);
    // A real ClientHello: a client stream writes it, the raw server side reads it.
    let (mut s, c) = tcp_pair();
    let mut client =
        TlsStream::client(c, tls_common::client_cfg(&cert), "localhost", None).unwrap();
    assert!(
        client.pending_output() > 0,
        "ClientHello queued at construction"
    );
    let until = Instant::now() + WAIT;
    while !client.flush_output().unwrap() {
        assert!(Instant::now() < until);
    }
    let mut hello = vec![0u8; 4096];
    let n = loop {
        match Read::read(&mut s, &mut hello) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < until, "no ClientHello");
                std::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(n > 10);

    // A fresh server gets half of it and nothing more.
    let (s2, mut c2) = tcp_pair();
    let mut server =
        Connection::new(TlsStream::server(s2, server_cfg(&cert), Some(deadline)).unwrap());
    Write::write_all(&mut c2, &hello[..n / 2]).unwrap();
    let mut scratch = ReadBuf::new();
    // Read until the half hello is held (a bounded wait on a real condition).
    while server.stream().heap_bytes() == 0 {
        assert!(Instant::now() < until, "half hello never arrived");
        let st = server
            .read_frames(&mut scratch, 1 << 16, |_, _| cont())
            .unwrap();
        assert_ne!(st, ReadStatus::Closed);
        std::thread::yield_now();
    }
    assert!(server.stream().is_handshaking());
    assert!(!server.handshake_expired(deadline - Duration::from_millis(1)));
    assert!(server.handshake_expired(deadline));
}

#[test]
fn garbage_instead_of_a_client_hello_fails_only_that_connection() {
    let cert = cert();
    let (s, mut c) = tcp_pair();
    let mut bad = Connection::new(TlsStream::server(s, server_cfg(&cert), None).unwrap());
    // A few bytes into an empty socket buffer: one write takes them all.
    Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();

    // A good pair on the side keeps working throughout.
    let mut good = Pair::new(&cert, None);
    good.handshake();

    let mut scratch = ReadBuf::new();
    let until = Instant::now() + WAIT;
    let err = loop {
        match bad.read_frames(&mut scratch, 1 << 16, |_, _| cont()) {
            Err(e) => break e,
            Ok(ReadStatus::Drained) => {
                assert!(Instant::now() < until, "garbage never rejected");
                std::thread::yield_now();
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("tls:"), "{err}");
    eprintln!("garbage rejected: {err}");

    good.client.send(b"still here").unwrap();
    good.client.flush().unwrap();
    good.client
        .sync_interest(good.poll.registry(), CLIENT)
        .unwrap();
    let mut got = None;
    let until = Instant::now() + WAIT;
    while got.is_none() {
        assert!(Instant::now() < until);
        good.turn(
            |f, _| {
                got = Some(f.to_vec());
                cont()
            },
            |_, _| cont(),
        );
    }
    assert_eq!(got.unwrap(), b"still here");
}

#[test]
fn peer_that_stops_reading_is_cut_off_at_the_write_cap_alone() {
    let cert = cert();
    let mut p = Pair::new(&cert, None);
    p.handshake();
    let cap = 64 * 1024;
    p.server.set_write_cap(cap);
    let frame = vec![b'x'; 1000];
    // The client never reads again. The server keeps sending and flushing until a send is
    // refused: the write cap, not the socket buffers or TLS, is what stops it.
    let mut sent = 0usize;
    let until = Instant::now() + WAIT;
    let refused = loop {
        assert!(Instant::now() < until, "never refused after {sent} frames");
        match p.server.send(frame.clone()) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        p.server.flush().unwrap();
    };
    assert!(refused.is_full(), "{}", refused.error());
    assert_eq!(refused.into_inner(), frame, "the frame is handed back");
    assert!(p.server.queued() <= cap);
    // Ciphertext waiting for the socket stays bounded: about two records.
    let pending = p.server.stream().pending_output();
    assert!(
        pending <= 2 * wheelbeat_net::tls::stream::READ_CHUNK,
        "{pending}"
    );
    let heap = p.server.heap_bytes();
    eprintln!(
        "sent {sent} frames; queued {} of cap {cap}; tls output {pending}; heap {heap}",
        p.server.queued()
    );
    assert!(
        heap <= cap * 2 + 4 * wheelbeat_net::tls::stream::READ_CHUNK,
        "{heap}"
    );
}

#[test]
fn clean_shutdown_sends_close_notify_and_the_peer_sees_a_clean_close() {
    let cert = cert();
    let mut p = Pair::new(&cert, None);
    p.handshake();
    p.server.send(b"bye").unwrap();
    let until = Instant::now() + WAIT;
    while p.server.shutdown().unwrap() == ShutdownStatus::Pending {
        assert!(Instant::now() < until);
        p.server.sync_interest(p.poll.registry(), SERVER).unwrap();
        p.turn(|_, _| cont(), |_, _| cont());
    }
    let mut frames = Vec::new();
    let until = Instant::now() + WAIT;
    let closed = loop {
        assert!(Instant::now() < until, "client never saw the close");
        let t = p.turn(
            |_, _| cont(),
            |f, _| {
                frames.push(f.to_vec());
                cont()
            },
        );
        match t.client {
            Some(Ok(ReadStatus::Closed)) => break true,
            Some(Err(e)) => panic!("unclean close: {e}"),
            _ => {}
        }
    };
    assert!(closed);
    assert_eq!(frames, vec![b"bye".to_vec()]);
}

/// Client-certificate verification: with `ClientAuth::Required`, a client without a
/// certificate fails the handshake (on both ends), and one with a certificate the server
/// trusts gets through, its chain readable on the server.
#[test]
fn required_client_certificate_is_checked() {
    use wheelbeat_net::tls::{ClientAuth, Roots, client_config, server_config};
    let server_cert = cert();
    let client_cert = cert();
    let scfg = server_config(
        server_cert.cert_pem.as_bytes(),
        server_cert.key_pem.as_bytes(),
        &[],
        ClientAuth::Required(client_cert.cert_pem.clone().into_bytes()),
    )
    .unwrap();
    let roots = || Roots::Pem(server_cert.cert_pem.clone().into_bytes());
    let with_cert = client_config(
        roots(),
        &[],
        Some((
            client_cert.cert_pem.as_bytes(),
            client_cert.key_pem.as_bytes(),
        )),
    )
    .unwrap();
    let without = client_config(roots(), &[], None).unwrap();

    for (client_cfg, should_pass) in [(with_cert, true), (without, false)] {
        let (s, c) = tcp_pair();
        let mut p = Pair::new(&server_cert, None);
        p.server = Connection::new(TlsStream::server(s, scfg.clone(), None).unwrap());
        p.client = Connection::new(TlsStream::client(c, client_cfg, "localhost", None).unwrap());
        p.server.sync_interest(p.poll.registry(), SERVER).unwrap();
        p.client.sync_interest(p.poll.registry(), CLIENT).unwrap();
        // TLS 1.3: the client finishes first; the server's verdict comes on its next read,
        // so have the client send a line and wait for the server to see it or fail.
        let until = Instant::now() + WAIT;
        let mut sent = false;
        let verdict = loop {
            assert!(Instant::now() < until, "no verdict");
            if !sent && !p.client.stream().is_handshaking() {
                p.client.send(b"hello").unwrap();
                p.client.flush().unwrap();
                p.client.sync_interest(p.poll.registry(), CLIENT).unwrap();
                sent = true;
            }
            let mut got = false;
            let t = p.turn(
                |_, _| {
                    got = true;
                    cont()
                },
                |_, _| cont(),
            );
            if got {
                break Ok(());
            }
            if let Some(Err(e)) = t.server {
                break Err(e);
            }
        };
        if should_pass {
            verdict.unwrap();
            let chain = p.server.stream().peer_certificates().expect("client chain");
            assert_eq!(chain.len(), 1);
        } else {
            let e = verdict.unwrap_err();
            assert!(e.to_string().contains("tls:"), "{e}");
        }
    }
}

/// The seam composes: TLS over a Unix domain socket, a line echoed through it.
#[test]
fn tls_over_a_unix_socket() {
    use mio::net::UnixStream;
    let cert = cert();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let (a, b) = (UnixStream::from_std(a), UnixStream::from_std(b));
    let mut server = Connection::new(TlsStream::server(a, server_cfg(&cert), None).unwrap());
    let mut client = Connection::new(
        TlsStream::client(b, tls_common::client_cfg(&cert), "localhost", None).unwrap(),
    );
    client.send(b"over unix").unwrap();
    let mut scratch = ReadBuf::new();
    let mut echoed = None;
    let until = Instant::now() + WAIT;
    // Both ends in this thread; each step makes progress or finds WouldBlock.
    while echoed.is_none() {
        assert!(Instant::now() < until, "no echo");
        client.flush().unwrap();
        server
            .read_frames(&mut scratch, 1 << 16, |f, out| {
                out.send(f).unwrap();
                cont()
            })
            .unwrap();
        server.flush().unwrap();
        client
            .read_frames(&mut scratch, 1 << 16, |f, _| {
                echoed = Some(f.to_vec());
                cont()
            })
            .unwrap();
    }
    assert_eq!(echoed.unwrap(), b"over unix");
    assert_eq!(
        server.peer_addr().unwrap(),
        wheelbeat_net::PeerAddr::Unix(None)
    );
}

/// A TCP socket that counts its reads, under the server's TLS stream.
#[derive(Debug)]
struct CountedReads {
    sock: mio::net::TcpStream,
    reads: std::rc::Rc<std::cell::Cell<usize>>,
}

impl mio::event::Source for CountedReads {
    fn register(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        self.sock.register(r, t, i)
    }
    fn reregister(
        &mut self,
        r: &mio::Registry,
        t: mio::Token,
        i: mio::Interest,
    ) -> std::io::Result<()> {
        self.sock.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &mio::Registry) -> std::io::Result<()> {
        self.sock.deregister(r)
    }
}

impl Transport for CountedReads {
    const SHORT_READ_DRAINS: bool = true;
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reads.set(self.reads.get() + 1);
        Transport::read(&mut self.sock, buf)
    }
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        Transport::write_vectored(&mut self.sock, bufs)
    }
    fn shutdown_write(&mut self) -> std::io::Result<ShutdownStatus> {
        self.sock.shutdown_write()
    }
    fn peer_addr(&self) -> std::io::Result<wheelbeat_net::PeerAddr> {
        Transport::peer_addr(&self.sock)
    }
    fn local_addr(&self) -> std::io::Result<wheelbeat_net::PeerAddr> {
        Transport::local_addr(&self.sock)
    }
}

/// Guards the TLS short-read stop (Linux): a heartbeat that arrives whole costs the server
/// one socket read, not a second one returning `WouldBlock`; and what comes after it, a
/// record cut in two included, still raises an event and is delivered.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_small_record_costs_one_socket_read_and_nothing_after_it_is_stranded() {
    let cert = cert();
    let reads = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = reads.clone();
    let mut p = tls_common::Pair::with_server_socket(&cert, None, |sock| CountedReads {
        sock,
        reads: counter,
    });
    p.handshake();

    let mut got = Vec::new();
    let serve = |p: &mut tls_common::Pair<CountedReads>, got: &mut Vec<Vec<u8>>, n: usize| {
        let deadline = Instant::now() + WAIT;
        while got.len() < n {
            assert!(Instant::now() < deadline, "frames missing: {got:?}");
            let t = p.turn(
                |f, _| {
                    got.push(f.to_vec());
                    cont()
                },
                |_, _| cont(),
            );
            assert!(!matches!(t.server, Some(Err(_))), "{t:?}");
        }
    };

    for i in 0..5 {
        let before = reads.get();
        p.client.send(format!("{{\"ping\":{i}}}")).unwrap();
        p.client.flush().unwrap();
        serve(&mut p, &mut got, i + 1);
        assert_eq!(reads.get() - before, 1, "heartbeat {i}: one socket read");
    }

    // Frames over several records (16 KiB each), then a small one: whatever the socket
    // reads cut, a record left half-read is completed by bytes that raise a new event.
    let big = vec![b'z'; 40_000];
    p.client.send(big.clone()).unwrap();
    p.client.send(b"{\"ping\":99}".to_vec()).unwrap();
    p.client.flush().unwrap();
    p.client
        .sync_interest(p.poll.registry(), tls_common::CLIENT)
        .unwrap();
    serve(&mut p, &mut got, 7);
    assert_eq!(got[5], big);
    assert_eq!(got[6], b"{\"ping\":99}");
}
