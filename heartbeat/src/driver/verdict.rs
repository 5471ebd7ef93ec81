//! The timers of a turn, and the read before a verdict.
//!
//! A peer is never convicted while its answer sits unread in its socket. The driver marks a
//! peer unread when it has *seen* a readable event that it has not served yet
//! ([`Endpoint::set_unread`]), but under load the kernel can hold a readable event the
//! driver has not polled yet: with full event batches (16 rounds of 1,024 events) the rest
//! waits for the next turn, and meanwhile the endpoint's timer could convict that peer with
//! its pong in the socket.
//!
//! So the endpoint is run with [`Endpoint::set_read_before_verdict`]: when a peer is about
//! to be convicted (its last miss, or a passive window's end) it holds the verdict and asks,
//! with [`Output::ReadFirst`](crate::endpoint::Output::ReadFirst), for the peer's socket to
//! be read. The driver reads each such socket once, right after the timers and without
//! waiting for an event, through the same [`Turn::read`](wheelbeat_net::Turn::read) as any
//! read, feeds what it finds to the endpoint, and runs the timers again: that call takes the
//! held verdicts, in the same turn.
//!
//! | what the read finds                       | the verdict                             |
//! |-------------------------------------------|-----------------------------------------|
//! | a frame that counts as life (the pong)    | none: a new cycle, the peer lives       |
//! | nothing (`WouldBlock`)                    | taken, final                            |
//! | more than one read may take (carried)     | marked unread: taken once it is read    |
//! | a frozen or handshaking socket (not read) | taken, final                            |
//!
//! # Ground rules
//! - The read is bounded like any other: the byte budget, and (the turn's time being spent
//!   by then) one frame; the rest is carried over, served first next turn, and the verdict
//!   waits for it (unread).
//! - It costs one `read` per peer about to be convicted, and a second pass of the timers in
//!   that turn; the bound is unchanged. At most [`MAX_PASSES`] passes per turn: asks from
//!   the last pass are read before it ends, and their verdicts taken next turn.

use std::time::Instant;

use wheelbeat_net::ConnKey;

use super::Driver;
use crate::shell::handler::Handler;

/// Passes of the timers in one turn: the held verdicts of a pass are taken by the next one;
/// passes after the first only take those (and whatever fell due meanwhile).
const MAX_PASSES: usize = 4;

impl<H: Handler> Driver<H> {
    /// Runs the endpoint's timers if due at `now` and carries out what they decided; if they
    /// held verdicts for a read, reads those sockets and runs the timers again, which takes
    /// the verdicts with what the reads found.
    pub(super) fn run_timers(&mut self, mut now: Instant) {
        for _ in 0..MAX_PASSES {
            if self.ep.poll_timeout(now).is_none_or(|t| t > now) {
                return;
            }
            self.ep.handle_timeout(now);
            self.apply_outputs(now);
            if self.suspects.is_empty() {
                return;
            }
            self.read_suspects(now);
            // (Never before the `now` given: a caller may run ahead of the clock.)
            now = now.max(Instant::now());
        }
    }

    /// Reads, once each, the sockets the endpoint asked for ([`super::Output::ReadFirst`]).
    fn read_suspects(&mut self, now: Instant) {
        let mut suspects = std::mem::take(&mut self.suspects);
        for key in suspects.drain(..) {
            self.read(key, now);
        }
        // Keep the allocation.
        if self.suspects.is_empty() {
            self.suspects = suspects;
        }
    }

    /// Remembers a socket to read before the verdict (from `apply_outputs`).
    pub(super) fn read_before_verdict(&mut self, key: ConnKey) {
        self.suspects.push(key);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use mio::Poll;
    use wheelbeat_net::PeerAddr;

    use super::super::stream::{Plain, Stream};
    use super::*;
    use crate::monitor::{Config, DeadReason};
    use crate::shell::handle::Shared;
    use crate::shell::handler::{ConnInfo, Context};
    use crate::shell::{ConnId, Options};

    /// What the handler heard: connections in order, and the dead.
    #[derive(Clone, Default)]
    struct Heard {
        connected: Arc<Mutex<Vec<ConnKey>>>,
        dead: Arc<Mutex<Vec<ConnKey>>>,
    }

    impl Handler for Heard {
        fn on_connect(&mut self, _: &mut Context<'_>, conn: ConnId, _: &ConnInfo) {
            self.connected.lock().unwrap().push(conn.key());
        }
        fn on_dead(&mut self, _: &mut Context<'_>, conn: ConnId, _: DeadReason, _: Duration) {
            self.dead.lock().unwrap().push(conn.key());
        }
    }

    /// A loop that is never polled: no readiness event is ever seen, as for a socket whose
    /// event waits in the kernel behind full batches.
    fn driver(heard: &Heard) -> Driver<Heard> {
        let opts = Options {
            heartbeat: Config {
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                max_missed: 2,
                jitter: 0.0,
                ..Config::default()
            },
            ..Options::default()
        };
        let (_tx, rx) = crossbeam_channel::bounded(4);
        let shared = Arc::new(Shared::new(1));
        let poll = Poll::new().unwrap();
        Driver::new(0, poll, heard.clone(), rx, shared, opts, None, Vec::new()).unwrap()
    }

    /// Accepts a real TCP connection into the driver; returns the client side and a clone
    /// of the server side (to wait until bytes have arrived).
    fn connect(
        d: &mut Driver<Heard>,
        listener: &TcpListener,
        now: Instant,
    ) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let watch = server.try_clone().unwrap();
        let stream = Stream::Plain(Plain::Tcp(mio::net::TcpStream::from_std(server)));
        d.serve_accepted(stream, PeerAddr::Tcp(peer), now);
        (client, watch)
    }

    /// Waits (bounded) until `n` bytes sit in the server side's receive queue.
    fn wait_for_bytes(watch: &TcpStream, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        loop {
            if watch.peek(&mut buf).is_ok_and(|got| got >= n) {
                return;
            }
            assert!(Instant::now() < deadline, "the bytes never arrived");
            std::thread::yield_now();
        }
    }

    /// Runs the timers in virtual time, every tick from `from` to `to`.
    fn run(d: &mut Driver<Heard>, from: Instant, to: Instant) {
        let mut t = from;
        while t <= to {
            d.run_timers(t);
            t += Duration::from_millis(10);
        }
    }

    /// `a` has its pong in its socket when its verdict falls due, with no readiness event
    /// seen; `b` is silent. Returns whether each was convicted.
    fn pong_in_the_socket_at_the_verdict(read_first: bool) -> (bool, bool) {
        let heard = Heard::default();
        let mut d = driver(&heard);
        d.ep.set_read_before_verdict(read_first);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let t0 = Instant::now();
        let (mut a_client, a_watch) = connect(&mut d, &listener, t0);
        let (_b_client, _) = connect(&mut d, &listener, t0);
        let (a, b) = {
            let c = heard.connected.lock().unwrap();
            (c[0], c[1])
        };
        // Pings at 1 s and 1.5 s (the first counts a miss); the verdict is due at 2 s.
        run(&mut d, t0, t0 + Duration::from_millis(1900));
        assert!(d.ep.is_open(a) && d.ep.is_open(b));
        // `a` answers; its bytes reach its socket, and nobody polls.
        a_client.write_all(b"{\"pong\":2}\n").unwrap();
        wait_for_bytes(&a_watch, 11);
        run(
            &mut d,
            t0 + Duration::from_millis(1910),
            t0 + Duration::from_millis(2100),
        );
        let dead = heard.dead.lock().unwrap().clone();
        (dead.contains(&a), dead.contains(&b))
    }

    /// Guards "a peer is never convicted while its answer sits unread in its socket", for an
    /// answer whose readiness event the driver has not seen.
    #[test]
    fn a_pong_in_the_socket_with_no_event_seen_saves_the_peer() {
        let (a_dead, b_dead) = pong_in_the_socket_at_the_verdict(true);
        assert!(!a_dead, "convicted with its pong in its socket");
        assert!(b_dead, "the silent peer is convicted");
    }

    /// The same timeline without the read before the verdict convicts the answering peer:
    /// what the test above guards is the read.
    #[test]
    fn without_the_read_before_the_verdict_that_peer_would_be_convicted() {
        let (a_dead, b_dead) = pong_in_the_socket_at_the_verdict(false);
        assert!(a_dead && b_dead);
    }
}
