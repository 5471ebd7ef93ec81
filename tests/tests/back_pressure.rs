//! Issue 9, item 4, over real sockets: a handler fills a slow reader's queue with
//! `Context::try_send` until the frame is handed back (the connection lives), hears
//! `on_writable_changed(false)` at the high watermark, and `true` once the reader caught up.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use wheelbeat_heartbeat::{ConnId, Context, Handler, Server, TrySendError};

#[derive(Debug, PartialEq)]
enum Seen {
    Full { queued_frames: usize },
    Writable(bool),
}

struct Producer {
    tx: Sender<Seen>,
    chunk: Vec<u8>,
}

impl Handler for Producer {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, _frame: &[u8]) {
        // Queue until the cap hands a frame back.
        for n in 0.. {
            match cx.try_send(conn, self.chunk.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    let _ = self.tx.send(Seen::Full { queued_frames: n });
                    return;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    fn on_writable_changed(&mut self, cx: &mut Context<'_>, conn: ConnId, writable: bool) {
        let _ = self.tx.send(Seen::Writable(writable));
        if writable {
            cx.send(conn, &b"{\"done\":1}"[..]);
        }
    }
}

#[test]
fn a_slow_reader_gets_frames_handed_back_then_a_writable_signal_and_is_never_closed() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let chunk = format!("{{\"p\":\"{}\"}}", "x".repeat(60 * 1024)).into_bytes();
    let mut h = Some(Producer { tx, chunk });
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .heartbeat(common::heartbeat(60_000, 10_000, 3))
        .start(|_| h.take().unwrap())
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"{\"go\":1}\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let full = rx
        .recv_deadline(deadline)
        .expect("the cap handed a frame back");
    assert!(
        matches!(full, Seen::Full { queued_frames } if queued_frames >= 10),
        "{full:?}"
    );
    assert_eq!(rx.recv_deadline(deadline), Ok(Seen::Writable(false)));
    // Now read everything: the queue drains, the handler hears `true` and says done.
    let mut r = BufReader::new(c);
    let mut frames = 0;
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed before done");
        if line == "{\"done\":1}\n" {
            break;
        }
        if line.starts_with("{\"p\":") {
            frames += 1;
        }
    }
    assert_eq!(rx.recv_deadline(deadline), Ok(Seen::Writable(true)));
    assert!(frames >= 10, "{frames} frames");
    let s = server.stats();
    assert_eq!(
        s.closed.total(),
        0,
        "the slow reader was never closed: {s:?}"
    );
    assert_eq!(s.connections, 1);
    server.shutdown();
}
