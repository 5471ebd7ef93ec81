//! scratch
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};
use wheelbeat_heartbeat::{Action, Config, Event, Message, Monitor, PeerId};
#[test]
fn scratch() {
    let n = 2000usize;
    let cfg = |seed| Config { interval: Duration::from_secs(1), timeout: Duration::from_millis(500), max_missed: 3, seed, ..Config::default() };
    let t0 = Instant::now();
    let mut s: Monitor<usize> = Monitor::new(cfg(1), t0);
    let mut c: Monitor<usize> = Monitor::new(cfg(2), t0);
    let mut sid: Vec<PeerId> = Vec::new();
    let mut cid: Vec<PeerId> = Vec::new();
    for i in 0..n { let t = t0 + Duration::from_micros(i as u64 * 150); sid.push(s.add(t, i)); cid.push(c.add(t, i)); }
    let freeze = t0 + Duration::from_secs(3);
    let frozen = |i: usize| i % 10 == 0;
    // (deliver_at_ns, to_server, conn, is_ping, seq)
    let mut net: BinaryHeap<Reverse<(u64, bool, usize, bool, u64)>> = BinaryHeap::new();
    let ns = |t: Instant| (t - t0).as_nanos() as u64;
    let lat = 1_000_000u64; // 1 ms
    let mut now = t0;
    let mut maxs = Duration::ZERO;
    let mut over = 0;
    let mut dead = 0;
    let mut rng = 12345u64;
    while now < t0 + Duration::from_secs(10) {
        let mut next = t0 + Duration::from_secs(10);
        if let Some(t) = s.poll_timeout() { next = next.min(t); }
        if let Some(t) = c.poll_timeout() { next = next.min(t); }
        if let Some(Reverse((at, ..))) = net.peek() { next = next.min(t0 + Duration::from_nanos(*at)); }
        now = next.max(now);
        while let Some(Reverse((at, to_server, i, is_ping, seq))) = net.peek().copied() {
            if t0 + Duration::from_nanos(at) > now { break; }
            net.pop();
            let msg = if is_ping { Message::Ping(seq) } else { Message::Pong(seq) };
            if to_server { s.handle_message(sid[i], now, &msg); }
            else if !(frozen(i) && now >= freeze) { c.handle_message(cid[i], now, &msg); }
        }
        if s.poll_timeout().is_some_and(|t| now >= t) { s.handle_timeout(now); }
        if c.poll_timeout().is_some_and(|t| now >= t) { c.handle_timeout(now); }
        while let Some(a) = s.poll_action() {
            match a {
                Action::SendPing { conn, seq, .. } => net.push(Reverse((ns(now) + lat, false, conn, true, seq))),
                Action::SendPong { conn, seq, .. } => net.push(Reverse((ns(now) + lat, false, conn, false, seq))),
                _ => {}
            }
        }
        while let Some(a) = c.poll_action() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let extra = (rng >> 33) % 3_000_000;
            match a {
                Action::SendPing { conn, seq, .. } if !(frozen(conn) && now >= freeze) => net.push(Reverse((ns(now) + lat + extra, true, conn, true, seq))),
                Action::SendPong { conn, seq, .. } if !(frozen(conn) && now >= freeze) => net.push(Reverse((ns(now) + lat + extra, true, conn, false, seq))),
                _ => {}
            }
        }
        while let Some(e) = s.poll_event() {
            if let Event::Dead { silent_for, conn, .. } = e { dead += 1; assert!(frozen(conn)); maxs = maxs.max(silent_for); if silent_for > Duration::from_millis(2610) { over += 1; } }
        }
        while c.poll_event().is_some() {}
    }
    eprintln!("dead {dead} max silent {maxs:?} over bound {over}");
}
