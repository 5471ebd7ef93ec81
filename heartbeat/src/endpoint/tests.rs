//! Timelines of the endpoint in virtual time: every decision of a loop, without a socket.
//!
//! Each test feeds inputs at chosen instants and checks the outputs and the handler's calls,
//! in order. Settings: interval 1 s, timeout 500 ms, max_missed 2, no jitter, tick 10 ms, so
//! a silent peer is dead within 1 s + 2 × 500 ms + one tick = 2.01 s.

use std::net::SocketAddr;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wheelbeat_net::PeerAddr;

use super::*;
use crate::monitor::{Config, DeadReason};

mod read_first;

/// An output, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Tx(ConnKey, Lane, String),
    Close(ConnKey, bool),
    Freeze(ConnKey),
    Connect(ConnKey, PeerAddr),
    Resume(ConnKey),
    ReadFirst(ConnKey),
}

/// What the handler heard.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Connect(ConnKey),
    Message(ConnKey, String),
    Missed(ConnKey, u32),
    Dead(ConnKey, DeadReason),
    Close(ConnKey, CloseReason),
    ConnectError(io::ErrorKind),
    Writable(ConnKey, bool),
    Tried(ConnKey, bool),
}

#[derive(Clone, Default)]
struct Recorder {
    heard: Arc<Mutex<Vec<Heard>>>,
}

impl Recorder {
    fn take(&self) -> Vec<Heard> {
        std::mem::take(&mut *self.heard.lock().unwrap())
    }
    fn push(&self, h: Heard) {
        self.heard.lock().unwrap().push(h);
    }
}

impl Handler for Recorder {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, _info: &ConnInfo) {
        self.push(Heard::Connect(conn.key()));
    }
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
        let text = String::from_utf8_lossy(frame).into_owned();
        self.push(Heard::Message(conn.key(), text.clone()));
        if text.contains("boom") {
            panic!("the application's bug");
        }
        if text.contains("echo") {
            cx.send(conn, frame);
        }
        if text.contains("bye") {
            cx.close(conn);
        }
        if let Some(n) = text
            .strip_prefix("{\"try\":")
            .and_then(|t| t.strip_suffix('}'))
        {
            let ok = cx.try_send(conn, vec![b'x'; n.parse().unwrap()]).is_ok();
            self.push(Heard::Tried(conn.key(), ok));
        }
        // `CONNECT k`: the keep-alive (seconds) is learned; the window is 1.5 × k.
        if let Some(k) = text.strip_prefix("CONNECT ") {
            let window = crate::monitor::PeerConfig {
                interval: Some(Duration::from_millis(k.parse::<u64>().unwrap() * 1500)),
                ..Default::default()
            };
            if cx.set_heartbeat(conn, window).is_err() {
                cx.close(conn);
            }
        }
    }
    fn on_missed(&mut self, _cx: &mut Context<'_>, conn: ConnId, missed: u32) {
        self.push(Heard::Missed(conn.key(), missed));
    }
    fn on_dead(&mut self, _: &mut Context<'_>, conn: ConnId, reason: DeadReason, _: Duration) {
        self.push(Heard::Dead(conn.key(), reason));
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        self.push(Heard::Close(conn.key(), reason.clone()));
    }
    fn on_connect_error(&mut self, _: &mut Context<'_>, _: &PeerAddr, error: &io::Error) {
        self.push(Heard::ConnectError(error.kind()));
    }
    fn on_writable_changed(&mut self, _: &mut Context<'_>, conn: ConnId, writable: bool) {
        self.push(Heard::Writable(conn.key(), writable));
    }
}

fn options() -> Options {
    Options {
        heartbeat: Config {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            max_missed: 2,
            jitter: 0.0,
            ..Config::default()
        },
        connect_timeout: Duration::from_secs(2),
        ..Options::default()
    }
}

const ADDR: &str = "127.0.0.1:7000";

fn info() -> ConnInfo {
    ConnInfo {
        local: PeerAddr::Tcp("127.0.0.1:1".parse().unwrap()),
        peer: PeerAddr::Tcp("127.0.0.1:2".parse().unwrap()),
        inbound: true,
        alpn: None,
        server_name: None,
    }
}

struct Timeline {
    t0: Instant,
    ep: Endpoint<Recorder>,
    rec: Recorder,
}

impl Timeline {
    fn server() -> Timeline {
        Timeline::with(options(), Vec::new())
    }

    fn with(opts: Options, targets: Vec<Target>) -> Timeline {
        let t0 = Instant::now();
        let rec = Recorder::default();
        let ep = Endpoint::new(0, &opts, rec.clone(), targets, t0);
        Timeline { t0, ep, rec }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn outputs(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            v.push(match o {
                Output::Transmit { conn, lane, frame } => {
                    Out::Tx(conn, lane, String::from_utf8_lossy(frame).into_owned())
                }
                Output::Close { conn, goodbye } => Out::Close(conn, goodbye),
                Output::Freeze { conn } => Out::Freeze(conn),
                Output::Connect { conn, addr } => Out::Connect(conn, addr),
                Output::Resume { conn } => Out::Resume(conn),
                Output::ReadFirst { conn } => Out::ReadFirst(conn),
            });
        }
        v
    }

    /// Runs the endpoint's timers at each of its deadlines up to `until`, as an on-time
    /// driver does; returns the outputs.
    fn run_until(&mut self, until: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout(until)
            && t <= until
        {
            self.ep.handle_timeout(t);
            out.extend(self.outputs());
        }
        out
    }

    /// Runs the timers at each deadline until one produces outputs: when, and what.
    fn next_outputs(&mut self, limit: Instant) -> (Instant, Vec<Out>) {
        while let Some(t) = self.ep.poll_timeout(limit)
            && t <= limit
        {
            self.ep.handle_timeout(t);
            let out = self.outputs();
            if !out.is_empty() {
                return (t, out);
            }
        }
        (limit, Vec::new())
    }

    fn accept(&mut self, ms: u64) -> ConnKey {
        let key = self.ep.handle_accepted(self.at(ms), info());
        assert_eq!(self.rec.take(), [Heard::Connect(key)]);
        key
    }

    fn frame(&mut self, ms: u64, key: ConnKey, frame: &str) -> ControlFlow<()> {
        self.ep.handle_frame(self.at(ms), key, frame.as_bytes())
    }
}

fn tx(key: ConnKey, s: &str) -> Out {
    Out::Tx(key, Lane::Priority, s.to_string())
}

#[test]
fn a_silent_peer_is_pinged_then_dead_within_the_bound_and_on_dead_comes_before_on_close() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    // Nothing before the silence window ends.
    assert_eq!(tl.run_until(tl.at(999)), []);
    assert_eq!(tl.run_until(tl.at(1000)), [tx(a, r#"{"ping":1}"#)]);
    assert_eq!(tl.run_until(tl.at(1500)), [tx(a, r#"{"ping":2}"#)]);
    assert_eq!(tl.rec.take(), [Heard::Missed(a, 1)]);
    assert_eq!(tl.run_until(tl.at(1999)), []);
    assert_eq!(tl.run_until(tl.at(2010)), [Out::Close(a, false)]);
    let dead = DeadReason::MissedPings { missed: 2 };
    assert_eq!(
        tl.rec.take(),
        [
            Heard::Missed(a, 2),
            Heard::Dead(a, dead),
            Heard::Close(a, CloseReason::Dead(dead))
        ]
    );
    let s = tl.ep.stats();
    assert_eq!(
        (s.connections, s.closed.missed_pings, s.pings_sent),
        (0, 1, 2)
    );
    // The key is stale: inputs for it are ignored.
    assert!(tl.frame(2020, a, r#"{"ping":1}"#).is_break());
    assert_eq!(tl.outputs(), []);
}

#[test]
fn an_answering_peer_lives_and_its_rtt_is_counted() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    // Answers every ping 20 ms after it left, for 10 s.
    for seq in 1..=9 {
        let (sent, out) = tl.next_outputs(tl.at(10_000));
        assert_eq!(out, [tx(a, &format!(r#"{{"ping":{seq}}}"#))]);
        let now = (sent - tl.t0).as_millis() as u64 + 20;
        assert!(
            tl.frame(now, a, &format!(r#"{{"pong":{seq}}}"#))
                .is_continue()
        );
        // The next ping a second after this answer, not before.
        assert!(tl.run_until(tl.at(now + 990)).is_empty());
    }
    assert_eq!(tl.ep.stats().pongs_received, 9);
    let max = tl.ep.stats().rtt().max;
    assert!(max.abs_diff(Duration::from_millis(20)) < Duration::from_micros(100));
    assert!(tl.ep.is_open(a));
    assert_eq!(tl.rec.take(), []);
}

/// Guards issue 8: "a reading peer that pipelines 324 pings in one write gets no pong". The
/// endpoint answers every one, in order; the driver flushes the lane when it fills.
#[test]
fn pipelined_pings_are_all_answered_in_order() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    for n in 0..324 {
        assert!(tl.frame(5, a, &format!(r#"{{"ping":{n}}}"#)).is_continue());
    }
    let out = tl.outputs();
    let want: Vec<_> = (0..324)
        .map(|n| tx(a, &format!(r#"{{"pong":{n}}}"#)))
        .collect();
    assert_eq!(out, want);
    assert_eq!(tl.ep.stats().pings_received, 324);
}

/// Guards issue 8: "replies to frames that arrive together with the peer's FIN are dropped".
/// The pong comes out before the close, so the driver writes it before closing.
#[test]
fn replies_to_frames_read_with_the_fin_come_out_before_the_close() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    assert!(tl.frame(5, a, r#"{"ping":9}"#).is_continue());
    tl.ep.handle_read_closed(tl.at(5), a);
    assert_eq!(tl.outputs(), [tx(a, r#"{"pong":9}"#), Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::PeerClosed)]);
    assert_eq!(tl.ep.stats().closed.peer_closed, 1);
}

#[test]
fn a_protocol_error_sends_the_goodbye_then_closes_that_connection_only() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    let b = tl.accept(0);
    assert!(tl.frame(5, a, "[1,2]").is_break());
    tl.ep
        .handle_bad_frame(tl.at(6), b, ProtocolError::FrameTooLong);
    assert_eq!(
        tl.outputs(),
        [
            tx(a, r#"{"error":"not a json object"}"#),
            Out::Close(a, true),
            tx(b, r#"{"error":"frame too long"}"#),
            Out::Close(b, true),
        ]
    );
    assert_eq!(
        tl.rec.take(),
        [
            Heard::Close(a, CloseReason::Protocol(ProtocolError::NotAnObject)),
            Heard::Close(b, CloseReason::Protocol(ProtocolError::FrameTooLong)),
        ]
    );
    assert_eq!(tl.ep.stats().protocol_errors, 2);
}

/// Guards issue 8: "one panicking Handler callback kills its whole loop".
#[test]
fn a_panicking_handler_closes_only_its_connection_and_the_loop_goes_on() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    let b = tl.accept(0);
    assert!(tl.frame(5, a, r#"{"boom":1}"#).is_break());
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert_eq!(
        tl.rec.take(),
        [
            Heard::Message(a, r#"{"boom":1}"#.into()),
            Heard::Close(a, CloseReason::HandlerPanicked)
        ]
    );
    assert!(tl.frame(6, b, r#"{"ping":1}"#).is_continue());
    assert!(tl.frame(6, b, r#"{"echo":1}"#).is_continue());
    assert_eq!(
        tl.outputs(),
        [
            tx(b, r#"{"pong":1}"#),
            Out::Tx(b, Lane::Data, r#"{"echo":1}"#.into())
        ]
    );
    let s = tl.ep.stats();
    assert_eq!((s.handler_panics, s.closed.handler_panicked), (1, 1));
    assert_eq!(s.connections, 1);
}

#[test]
fn a_handler_closing_its_connection_mid_read_stops_the_read_after_its_replies() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    assert!(tl.frame(5, a, r#"{"echo":"bye"}"#).is_break());
    assert_eq!(
        tl.outputs(),
        [
            Out::Tx(a, Lane::Data, r#"{"echo":"bye"}"#.into()),
            Out::Close(a, false)
        ]
    );
    assert_eq!(tl.rec.take()[1], Heard::Close(a, CloseReason::Local));
}

#[test]
fn write_overflow_closes_with_its_reason() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    tl.ep.handle_write_full(tl.at(5), a, Lane::Data);
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::WriteOverflow)]);
    assert_eq!(tl.ep.stats().closed.write_overflow, 1);
}

#[test]
fn a_frozen_connection_is_never_pinged_nor_read_and_is_closed_at_shutdown() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    tl.ep.handle_freeze(ConnId::new(0, a));
    assert_eq!(tl.outputs(), [Out::Freeze(a)]);
    assert!(tl.frame(5, a, r#"{"ping":1}"#).is_break());
    assert_eq!(tl.run_until(tl.at(60_000)), []);
    tl.ep.handle_send(tl.at(60_000), ConnId::new(0, a), b"{}");
    assert_eq!(tl.outputs(), []);
    tl.ep.handle_shutdown(tl.at(60_001));
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::Shutdown)]);
    assert_eq!(tl.ep.live(), 0);
}

#[test]
fn commands_for_another_loop_or_a_stale_key_are_ignored() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    tl.ep.handle_close(tl.at(1), ConnId::new(1, a));
    tl.ep.handle_send(tl.at(1), ConnId::new(1, a), b"{}");
    assert_eq!(tl.outputs(), []);
    tl.ep.handle_close(tl.at(2), ConnId::new(0, a));
    tl.ep.handle_close(tl.at(3), ConnId::new(0, a));
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::Local)]);
}

/// Guards issue 8: `timer_lateness_max` reported 456 ms after 1.7 s idle with an on-time loop,
/// because it was measured against the wheel's coarse next deadline.
#[test]
fn timer_lateness_is_measured_against_the_real_due_time() {
    let mut opts = options();
    opts.heartbeat.interval = Duration::from_secs(45);
    let mut tl = Timeline::with(opts, Vec::new());
    let a = tl.accept(0);
    // An on-time driver: it wakes at every poll_timeout, which may be early (a coarse slot).
    let out = tl.run_until(tl.at(45_000));
    assert_eq!(out, [tx(a, r#"{"ping":1}"#)]);
    assert_eq!(tl.ep.stats().timer_lateness_max, Duration::ZERO);
    // The ping's answer is due at 45.5 s, but the wheel's next deadline is only a lower
    // bound (a coarse slot's start, here 45.44 s): an on-time driver wakes there for nothing.
    let early = tl.ep.poll_timeout(tl.at(45_000)).unwrap();
    assert!(early < tl.at(45_500));
    assert_eq!(tl.run_until(tl.at(45_499)), []);
    assert_eq!(tl.ep.stats().timer_lateness_max, Duration::ZERO);
    // A driver 30 ms late for the real due time is reported 30 ms late, not 30 ms plus the
    // slot's earliness.
    tl.ep.handle_timeout(tl.at(45_530));
    assert_eq!(tl.rec.take(), [Heard::Missed(a, 1)]);
    assert_eq!(tl.ep.stats().timer_lateness_max, Duration::from_millis(30));
}

// ----- the pool side ---------------------------------------------------------------------

fn pool(targets: usize, rate: Option<u32>) -> Timeline {
    let mut opts = options();
    opts.connect_rate = rate;
    let addr: SocketAddr = ADDR.parse().unwrap();
    let targets = (0..targets)
        .map(|_| {
            Target::new(
                PeerAddr::Tcp(addr),
                Duration::from_millis(100),
                Duration::from_secs(1),
            )
        })
        .collect();
    Timeline::with(opts, targets)
}

fn connects(out: &[Out]) -> Vec<ConnKey> {
    out.iter()
        .filter_map(|o| match o {
            Out::Connect(k, _) => Some(*k),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pool_reconnects_after_a_jittered_backoff_that_doubles_and_resets_once_connected() {
    let mut tl = pool(1, None);
    let addr: SocketAddr = ADDR.parse().unwrap();
    let out = tl.run_until(tl.at(0));
    assert_eq!(connects(&out).len(), 1);
    let k1 = connects(&out)[0];
    assert_eq!(out, [Out::Connect(k1, PeerAddr::Tcp(addr))]);
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    tl.ep.handle_connect_failed(tl.at(1), k1, &refused);
    assert_eq!(tl.outputs(), [Out::Close(k1, false)]);
    assert_eq!(
        tl.rec.take(),
        [Heard::ConnectError(io::ErrorKind::ConnectionRefused)]
    );
    // Full jitter: the retry comes within [0, 100 ms] of the failure.
    let retry = tl.ep.poll_timeout(tl.at(1)).unwrap();
    assert!(retry <= tl.at(101), "first backoff at most 100 ms");
    let out = tl.run_until(retry);
    let k2 = connects(&out)[0];
    tl.ep.handle_connect_failed(retry, k2, &refused);
    tl.outputs();
    let retry2 = tl.ep.poll_timeout(retry).unwrap();
    assert!(
        retry2 <= retry + Duration::from_millis(200),
        "second at most 200 ms"
    );
    let k3 = connects(&tl.run_until(retry2))[0];
    let mut inf = info();
    inf.inbound = false;
    tl.ep.handle_connected(retry2, k3, inf.clone());
    tl.rec.take();
    assert!(tl.ep.is_open(k3));
    assert_eq!(tl.ep.stats().connected, 1);
    // Lost by accident: reconnected, the backoff starting over from 100 ms.
    let lost = retry2 + Duration::from_millis(50);
    tl.ep.handle_read_closed(lost, k3);
    tl.outputs();
    let retry3 = tl.ep.poll_timeout(lost).unwrap();
    assert!(retry3 <= lost + Duration::from_millis(100));
    let k4 = connects(&tl.run_until(retry3))[0];
    tl.ep.handle_connected(retry3, k4, inf);
    // Closed on purpose: never reconnected.
    tl.ep.handle_close(retry3, ConnId::new(0, k4));
    tl.outputs();
    assert_eq!(
        connects(&tl.run_until(retry3 + Duration::from_secs(60))),
        []
    );
}

#[test]
fn a_connect_that_hangs_times_out_at_its_deadline_and_is_retried() {
    let mut tl = pool(1, None);
    let k1 = connects(&tl.run_until(tl.at(0)))[0];
    assert_eq!(tl.run_until(tl.at(1999)), []);
    let out = tl.run_until(tl.at(2000));
    assert_eq!(out[0], Out::Close(k1, false));
    assert_eq!(
        tl.rec.take(),
        [Heard::ConnectError(io::ErrorKind::TimedOut)]
    );
    assert_eq!(tl.ep.stats().connect_failures, 1);
    // A late report for the timed-out key is ignored.
    tl.ep.handle_connected(tl.at(2001), k1, info());
    assert!(!tl.ep.is_open(k1));
    assert_eq!(connects(&tl.run_until(tl.at(2100))).len(), 1);
}

#[test]
fn connects_are_paced_at_the_configured_rate() {
    // 100 per second: one every 10 ms (the 10 ms burst holds exactly one).
    let mut tl = pool(10, Some(100));
    let mut started = Vec::new();
    for ms in (0..=100).step_by(5) {
        let n = connects(&tl.run_until(tl.at(ms))).len();
        started.push((ms, n));
    }
    let total: usize = started.iter().map(|&(_, n)| n).sum();
    assert_eq!(total, 10);
    let by_90: usize = started
        .iter()
        .filter(|&&(ms, _)| ms <= 90)
        .map(|&(_, n)| n)
        .sum();
    assert_eq!(by_90, 10, "{started:?}");
    let by_40: usize = started
        .iter()
        .filter(|&&(ms, _)| ms <= 40)
        .map(|&(_, n)| n)
        .sum();
    assert_eq!(by_40, 5, "{started:?}");
}

#[test]
fn shutdown_closes_everything_and_stops_reconnecting() {
    let mut tl = pool(2, None);
    let ks = connects(&tl.run_until(tl.at(0)));
    tl.ep.handle_connected(tl.at(1), ks[0], info());
    tl.rec.take();
    tl.ep.handle_shutdown(tl.at(2));
    let out = tl.outputs();
    assert!(out.contains(&Out::Close(ks[0], false)));
    assert!(out.contains(&Out::Close(ks[1], false)));
    assert_eq!(tl.rec.take(), [Heard::Close(ks[0], CloseReason::Shutdown)]);
    assert_eq!(tl.run_until(tl.at(60_000)), []);
    assert_eq!(tl.ep.live(), 0);
}

// ----- other formats (issue 9): passive, and pongs without sequence numbers ----------------

/// MQTT's keep-alive, reduced to what the endpoint sees: `C0 00` PINGREQ, `D0 00` PINGRESP,
/// anything else a packet (data). The server side is passive.
#[derive(Debug)]
struct MiniMqtt;

impl Format for MiniMqtt {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        match frame {
            [0xC0, 0x00] => Ok(Inbound::Ping(None)),
            [0xD0, 0x00] => Ok(Inbound::Pong(None)),
            [] => Err(ProtocolError::Malformed("empty packet")),
            _ => Ok(Inbound::Data(frame)),
        }
    }
    fn encode_ping(&self, _seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0xC0, 0x00]);
    }
    fn encode_pong(&self, _seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&[0xD0, 0x00]);
    }
    fn passive(&self) -> bool {
        true
    }
}

#[test]
fn a_passive_format_never_pings_and_closes_after_the_window_the_handler_set() {
    let mut opts = options();
    opts.format = Arc::new(MiniMqtt);
    let mut tl = Timeline::with(opts, Vec::new());
    let a = tl.accept(0);
    assert!(tl.frame(100, a, "CONNECT 1").is_continue());
    // PINGREQ at 1 s: answered, and the window starts again from it.
    assert!(
        tl.ep
            .handle_frame(tl.at(1000), a, &[0xC0, 0x00])
            .is_continue()
    );
    assert_eq!(
        tl.outputs(),
        [Out::Tx(a, Lane::Priority, "\u{fffd}\0".into())]
    );
    assert_eq!(
        tl.run_until(tl.at(2499)),
        [],
        "never pinged, not dead before 1.5 s"
    );
    assert_eq!(tl.run_until(tl.at(2510)), [Out::Close(a, false)]);
    let heard = tl.rec.take();
    assert!(
        heard.contains(&Heard::Dead(a, DeadReason::Silent)),
        "{heard:?}"
    );
    let s = tl.ep.stats();
    assert_eq!(s.pings_sent, 0);
    assert_eq!((s.closed.missed_pings, s.dead_silent), (1, 1));
}

#[test]
fn an_invalid_window_from_the_handler_is_an_error_it_can_act_on() {
    let mut opts = options();
    opts.format = Arc::new(MiniMqtt);
    let mut tl = Timeline::with(opts, Vec::new());
    let a = tl.accept(0);
    // Keep-alive 0 makes a zero window: refused, and this handler closes.
    assert!(tl.frame(100, a, "CONNECT 0").is_break());
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
}

/// Active, but pongs carry no sequence number: a pong answers the ping outstanding.
#[derive(Debug)]
struct NoSeq;

impl Format for NoSeq {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        match frame {
            b"PING" => Ok(Inbound::Ping(None)),
            b"PONG" => Ok(Inbound::Pong(None)),
            _ => Ok(Inbound::Data(frame)),
        }
    }
    fn encode_ping(&self, _seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"PING");
    }
    fn encode_pong(&self, _seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"PONG");
    }
}

#[test]
fn a_pong_without_a_sequence_number_answers_the_outstanding_ping_and_measures_rtt() {
    let mut opts = options();
    opts.format = Arc::new(NoSeq);
    let mut tl = Timeline::with(opts, Vec::new());
    let a = tl.accept(0);
    let (sent, out) = tl.next_outputs(tl.at(2000));
    assert_eq!(out, [tx(a, "PING")]);
    let now = (sent - tl.t0).as_millis() as u64 + 30;
    assert!(tl.frame(now, a, "PONG").is_continue());
    let s = tl.ep.stats();
    assert_eq!(s.pongs_received, 1);
    assert!(s.rtt().max.abs_diff(Duration::from_millis(30)) < Duration::from_micros(100));
    assert!(tl.frame(now + 1, a, "PING").is_continue());
    assert_eq!(tl.outputs(), [tx(a, "PONG")]);
}

// ----- back-pressure (issue 9) ----------------------------------------------------------

#[test]
fn the_handler_hears_when_queued_output_crosses_the_watermarks() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    let kib = 1024;
    tl.ep.handle_queued(tl.at(1), a, 500 * kib);
    assert_eq!(tl.rec.take(), [], "under the 512 KiB high watermark");
    tl.ep.handle_queued(tl.at(2), a, 600 * kib);
    assert_eq!(tl.rec.take(), [Heard::Writable(a, false)]);
    tl.ep.handle_queued(tl.at(3), a, 700 * kib);
    tl.ep.handle_queued(tl.at(4), a, 100 * kib);
    assert_eq!(
        tl.rec.take(),
        [],
        "once, and not back before the low watermark"
    );
    tl.ep.handle_queued(tl.at(5), a, 64 * kib);
    assert_eq!(tl.rec.take(), [Heard::Writable(a, true)]);
}

#[test]
fn try_send_hands_the_frame_back_at_the_cap_and_the_connection_lives() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    let cap = Options::default().write_cap;
    // The driver reports a nearly full data lane.
    tl.ep.handle_queued(tl.at(1), a, cap - 100);
    tl.rec.take();
    assert!(tl.frame(2, a, r#"{"try":50}"#).is_continue());
    assert!(tl.frame(3, a, r#"{"try":200}"#).is_continue());
    let heard = tl.rec.take();
    assert!(heard.contains(&Heard::Tried(a, true)), "{heard:?}");
    assert!(heard.contains(&Heard::Tried(a, false)), "{heard:?}");
    // The accepted one was queued; the refused one was not; nothing was closed.
    let out = tl.outputs();
    assert_eq!(out, [Out::Tx(a, Lane::Data, "x".repeat(50))]);
    assert!(tl.ep.is_open(a));
    // What this turn queued counts until the driver reports: the next 50 no longer fit.
    assert!(tl.frame(4, a, r#"{"try":50}"#).is_continue());
    assert!(tl.rec.take().contains(&Heard::Tried(a, false)));
}

// ----- the memory budget (issue 8) ------------------------------------------------------

#[test]
fn over_the_memory_budget_the_biggest_holders_are_closed_and_the_release_comes_after() {
    let kib = 1024;
    let opts = Options {
        memory_budget: 1024 * kib,
        write_cap: 256 * kib,
        ..options()
    };
    let mut tl = Timeline::with(opts, Vec::new());
    let (a, b, c) = (tl.accept(0), tl.accept(0), tl.accept(0));
    tl.ep.handle_held(a, 300 * kib);
    tl.ep.handle_held(b, 500 * kib);
    assert!(!tl.ep.check_memory(tl.at(1)));
    assert_eq!(tl.outputs(), [], "under the budget: nothing happens");
    tl.ep.handle_held(c, 400 * kib);
    assert!(!tl.ep.check_memory(tl.at(2)));
    // 1,200 KiB > 1,024 KiB: the biggest holder goes, which is enough (700 <= 896).
    assert_eq!(tl.outputs(), [Out::Close(b, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(b, CloseReason::MemoryBudget)]);
    let s = tl.ep.stats();
    assert_eq!(s.closed.memory_budget, 1);
    assert_eq!(s.memory_bytes, 700 * 1024);
    assert_eq!(s.memory_peak, 1200 * 1024);
    // The pressure ends when the others drain: the release is asked for once.
    tl.ep.handle_held(a, 0);
    tl.ep.handle_held(c, 10 * kib);
    assert!(tl.ep.check_memory(tl.at(3)), "pressure over: release");
    assert!(!tl.ep.check_memory(tl.at(4)), "once");
    // A closed connection's bytes leave the total with it.
    tl.ep.handle_close(tl.at(5), ConnId::new(0, c));
    assert_eq!(tl.ep.stats().memory_bytes, 0);
}

/// A loop with a 1 MiB budget (pause mark 768 KiB, resume mark 512 KiB) and a 256 KiB
/// write cap (high watermark 128 KiB, low 16 KiB).
fn small_budget() -> Timeline {
    let kib = 1024;
    let opts = Options {
        memory_budget: 1024 * kib,
        write_cap: 256 * kib,
        ..options()
    };
    Timeline::with(opts, Vec::new())
}

#[test]
fn over_three_quarters_of_the_budget_the_biggest_holders_are_paused_non_readers_first() {
    let kib = 1024;
    let mut tl = small_budget();
    let (a, b, c, d) = (tl.accept(0), tl.accept(0), tl.accept(0), tl.accept(0));
    // `c` does not read what it is sent: over its high watermark.
    tl.ep.handle_queued(tl.at(1), c, 200 * kib);
    assert_eq!(tl.rec.take(), [Heard::Writable(c, false)]);
    tl.ep.handle_held(a, 100 * kib);
    tl.ep.handle_held(b, 400 * kib);
    tl.ep.handle_held(c, 200 * kib);
    tl.ep.handle_held(d, 10 * kib);
    assert!(!tl.ep.check_memory(tl.at(2)));
    assert!(
        [a, b, c, d].iter().all(|k| !tl.ep.is_paused(*k)),
        "710 KiB: under the pause mark"
    );
    tl.ep.handle_held(a, 200 * kib);
    assert!(!tl.ep.check_memory(tl.at(3)));
    // 810 KiB > 768: `c` first (a non-reader), then the biggest, `b`, until what is still
    // read holds 210 KiB <= 512. Nothing is closed, nothing is said to the peers.
    assert_eq!(
        [a, b, c, d].map(|k| tl.ep.is_paused(k)),
        [false, true, true, false]
    );
    assert_eq!(tl.outputs(), []);
    assert_eq!(tl.rec.take(), []);
    let s = tl.ep.stats();
    assert_eq!((s.reads_paused, s.connections_paused), (2, 2));
    assert_eq!(s.closed.total(), 0);
    // `b`'s peer read everything: `b` holds nothing and is resumed alone, though the loop
    // is still over half its budget (610 KiB).
    tl.ep.handle_held(a, 400 * kib);
    tl.ep.handle_held(b, 0);
    assert_eq!(tl.outputs(), [Out::Resume(b)]);
    assert!(!tl.ep.is_paused(b) && tl.ep.is_paused(c));
    assert!(!tl.ep.check_memory(tl.at(4)));
    assert_eq!(
        tl.outputs(),
        [],
        "610 KiB: still under pressure, `c` stays paused"
    );
    // Back at half the budget: the pressure is over and every pause ends.
    tl.ep.handle_held(a, 100 * kib);
    assert!(!tl.ep.check_memory(tl.at(5)));
    assert_eq!(tl.outputs(), [Out::Resume(c)]);
    let s = tl.ep.stats();
    assert_eq!((s.reads_paused, s.connections_paused), (2, 0));
}

#[test]
fn a_paused_peer_is_never_convicted_and_is_closed_after_the_heartbeat_bound() {
    let kib = 1024;
    let mut tl = small_budget();
    let (a, b) = (tl.accept(0), tl.accept(0));
    tl.ep.handle_held(b, 800 * kib);
    assert!(!tl.ep.check_memory(tl.at(100)));
    assert!(tl.ep.is_paused(b) && !tl.ep.is_paused(a));
    // The driver read nothing from `b` and says so: the pause keeps it unread anyway.
    tl.ep.set_unread(b, false);
    // Both are silent. `a` is convicted at its bound (2.01 s); `b` is pinged (its pings
    // are queued) but never convicted while paused.
    let out = tl.run_until(tl.at(2010));
    assert!(out.contains(&Out::Close(a, false)), "{out:?}");
    assert!(!out.contains(&Out::Close(b, false)), "{out:?}");
    let heard = tl.rec.take();
    assert!(heard.contains(&Heard::Dead(a, DeadReason::MissedPings { missed: 2 })));
    assert!(
        !heard
            .iter()
            .any(|h| matches!(h, Heard::Dead(k, _) if *k == b))
    );
    // The pause lasts at most the heartbeat bound: 1 s + 2 x 500 ms + 10 ms after it began.
    assert!(!tl.run_until(tl.at(2109)).contains(&Out::Close(b, false)));
    assert_eq!(tl.run_until(tl.at(2110)), [Out::Close(b, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(b, CloseReason::PausedTooLong)]);
    let s = tl.ep.stats();
    assert_eq!(
        (
            s.closed.paused_too_long,
            s.connections_paused,
            s.memory_bytes
        ),
        (1, 0, 0)
    );
    assert_eq!(
        tl.ep.poll_timeout(tl.at(2110)),
        None,
        "nothing left to time"
    );
}

#[test]
fn a_resumed_peer_stays_unjudged_until_the_driver_has_read_it() {
    let kib = 1024;
    let mut tl = small_budget();
    let b = tl.accept(0);
    tl.ep.handle_held(b, 800 * kib);
    assert!(!tl.ep.check_memory(tl.at(100)));
    assert!(tl.ep.is_paused(b));
    // Resumed by the end of the pressure just before its verdict would be due.
    tl.ep.handle_held(b, 100 * kib);
    assert!(!tl.ep.check_memory(tl.at(2000)));
    let out = tl.run_until(tl.at(2000));
    assert!(out.contains(&Out::Resume(b)), "{out:?}");
    // Its answer may be in its socket: no verdict until the driver read it.
    assert!(!tl.run_until(tl.at(2500)).contains(&Out::Close(b, false)));
    assert!(tl.frame(2500, b, r#"{"pong":2}"#).is_continue());
    tl.ep.set_unread(b, false);
    assert!(!tl.run_until(tl.at(3000)).contains(&Out::Close(b, false)));
    assert!(tl.ep.is_open(b));
}

#[test]
fn over_the_budget_the_paused_holders_are_closed_first() {
    let kib = 1024;
    let mut tl = small_budget();
    let (a, b, c) = (tl.accept(0), tl.accept(0), tl.accept(0));
    tl.ep.handle_held(a, 500 * kib);
    tl.ep.handle_held(b, 300 * kib);
    assert!(!tl.ep.check_memory(tl.at(1)));
    assert!(tl.ep.is_paused(a) && !tl.ep.is_paused(b));
    // The unpaused ones keep growing past the budget: the biggest holder goes, the paused
    // `a`, which is enough (600 KiB <= 896, and under the pause mark: nobody else is paused).
    tl.ep.handle_held(c, 300 * kib);
    assert!(!tl.ep.check_memory(tl.at(2)));
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::MemoryBudget)]);
    let s = tl.ep.stats();
    assert_eq!((s.closed.memory_budget, s.connections_paused), (1, 0));
    assert_eq!(s.memory_bytes, 600 * kib as u64);
}

// ----- graceful drain and going-away (issue 12 item 1) ----------------------------------

#[test]
fn a_drain_tells_every_peer_keeps_heartbeating_them_and_closes_the_rest_at_its_deadline() {
    let mut tl = Timeline::server();
    let a = tl.accept(0);
    let b = tl.accept(0);
    tl.ep.handle_drain(tl.at(100), tl.at(3100));
    // Every open connection is told, with the milliseconds it has left.
    assert_eq!(
        tl.outputs(),
        [tx(a, r#"{"goaway":3000}"#), tx(b, r#"{"goaway":3000}"#)]
    );
    assert!(!tl.ep.drained());
    // Still served: a ping is answered, and a silent peer is still pinged on time.
    assert!(tl.frame(200, a, r#"{"ping":9}"#).is_continue());
    assert_eq!(tl.outputs(), [tx(a, r#"{"pong":9}"#)]);
    assert_eq!(
        tl.run_until(tl.at(1000)),
        [tx(b, r#"{"ping":1}"#)],
        "b's silence window ends at 1 s; a spoke at 200 ms"
    );
    // `a` leaves on its own before the deadline.
    tl.ep.handle_read_closed(tl.at(1100), a);
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    b_answers(&mut tl, b, 1200, 1);
    // Nothing more until the deadline, where the rest is closed with its own reason.
    assert_eq!(
        tl.run_until(tl.at(3099))
            .into_iter()
            .filter(|o| matches!(o, Out::Close(..)))
            .count(),
        0
    );
    tl.rec.take();
    let out = tl.run_until(tl.at(3100));
    assert_eq!(out.last(), Some(&Out::Close(b, false)));
    assert_eq!(tl.rec.take(), [Heard::Close(b, CloseReason::DrainTimeout)]);
    assert!(tl.ep.drained());
    let c = tl.ep.stats().closed;
    assert_eq!((c.peer_closed, c.drain_timeout, c.missed_pings), (1, 1, 0));
    // Nothing left to wake up for.
    assert_eq!(tl.ep.poll_timeout(tl.at(3100)), None);
}

fn b_answers(tl: &mut Timeline, b: ConnKey, ms: u64, seq: u64) {
    assert!(
        tl.frame(ms, b, &format!(r#"{{"pong":{seq}}}"#))
            .is_continue()
    );
    assert_eq!(tl.outputs(), []);
}

#[test]
fn a_connection_opened_during_a_drain_is_told_at_once_and_an_empty_loop_is_drained() {
    let mut tl = Timeline::server();
    tl.ep.handle_drain(tl.at(0), tl.at(500));
    assert_eq!(tl.outputs(), []);
    assert!(tl.ep.drained(), "nothing to wait for");
    let a = tl.accept(10);
    assert_eq!(tl.outputs(), [tx(a, r#"{"goaway":490}"#)]);
    assert!(!tl.ep.drained());
    // A second drain can only bring the deadline closer.
    tl.ep.handle_drain(tl.at(20), tl.at(10_000));
    assert_eq!(tl.outputs(), []);
    assert_eq!(tl.ep.poll_timeout(tl.at(20)), Some(tl.at(500)));
    tl.ep.handle_drain(tl.at(30), tl.at(30));
    assert_eq!(tl.outputs(), [Out::Close(a, false)]);
    assert!(tl.ep.drained());
}

#[test]
fn a_draining_pool_stops_connecting() {
    let mut tl = pool(2, None);
    let ks = connects(&tl.run_until(tl.at(0)));
    tl.ep.handle_connected(tl.at(1), ks[0], info());
    tl.rec.take();
    tl.ep.handle_drain(tl.at(2), tl.at(1000));
    // The connect in flight is abandoned; the open one is told.
    let out = tl.outputs();
    assert!(out.contains(&Out::Close(ks[1], false)), "{out:?}");
    assert!(out.contains(&tx(ks[0], r#"{"goaway":998}"#)), "{out:?}");
    tl.ep.handle_read_closed(tl.at(3), ks[0]);
    tl.outputs();
    assert!(tl.ep.drained());
    assert_eq!(connects(&tl.run_until(tl.at(60_000))), []);
}

#[test]
fn a_pool_told_going_away_reconnects_after_its_backoff_without_a_dead_verdict() {
    let mut tl = pool(1, None);
    let k1 = connects(&tl.run_until(tl.at(0)))[0];
    let mut inf = info();
    inf.inbound = false;
    tl.ep.handle_connected(tl.at(1), k1, inf);
    tl.rec.take();
    assert!(tl.frame(100, k1, r#"{"goaway":5000}"#).is_break());
    assert_eq!(tl.outputs(), [Out::Close(k1, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(k1, CloseReason::GoAway)]);
    // Full jitter over the first backoff step (100 ms), then a new connection.
    let retry = tl.ep.poll_timeout(tl.at(100)).unwrap();
    assert!(
        retry <= tl.at(200),
        "reconnect within the first backoff step"
    );
    let k2 = connects(&tl.run_until(retry))[0];
    assert_ne!(k1, k2);
    let s = tl.ep.stats();
    assert_eq!(
        (s.closed.go_away, s.closed.missed_pings, s.misses),
        (1, 0, 0)
    );
}

/// Guards `Format::encode_goaway`'s default: a format without a going-away notice drains
/// silently (nothing written), and its peers are still closed at the deadline.
#[test]
fn a_format_without_a_going_away_notice_drains_silently() {
    let mut opts = options();
    opts.format = Arc::new(NoSeq);
    let mut tl = Timeline::with(opts, Vec::new());
    let a = tl.accept(0);
    tl.ep.handle_drain(tl.at(10), tl.at(500));
    assert_eq!(tl.outputs(), []);
    assert_eq!(tl.run_until(tl.at(500)), [Out::Close(a, false)]);
    assert_eq!(tl.rec.take(), [Heard::Close(a, CloseReason::DrainTimeout)]);
    assert!(tl.ep.drained());
}
