//! The main job, in one process: a heartbeat server and a client pool on
//! loopback; some clients hang, some vanish; the server must find exactly the
//! hung ones, within the bound.
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example demo
//! cargo run --release -p wheelbeat-heartbeat --example demo -- --conns 10000 --interval 2s
//! cargo run --release -p wheelbeat-heartbeat --example demo -- --tls
//! ```
//!
//! `--tls` runs the same over TLS: a throwaway certificate for `localhost` is made at start
//! with `rcgen` (nothing to set up), the server serves TLS with it (ALPN `wheelbeat`) and
//! the pool trusts it. The verdicts and their bound are the same.
//!
//! Timeline: connect `--conns` pairs; heartbeat for `--warmup`; then freeze
//! `--freeze-pct` of the clients (they stop reading and writing but keep their
//! sockets open: hung peers) and abruptly close `--close-pct` more; wait for
//! the bound to pass, watch a little longer, and print the summary.
//!
//! Verdicts: a frozen client must be declared dead by the server within the
//! bound `interval × (1 + jitter) + max_missed × timeout + tick` of its last
//! frame (the monitor's `silent_for` at the verdict). The bound holds in the
//! monitor's time; the real loop runs its timers a little late (`poll`
//! granularity, scheduling on a busy machine), measures that lateness and
//! reports its maximum `L`; the monitor's bound for such a loop is
//! `bound + L + ceil_tick(L)` (see the crate docs). A
//! closed client is *peer closed* (end of stream), not a heartbeat death. Any
//! other death or loss, on either side, is a false positive. Exit status 0
//! only if every frozen peer was detected within that bound (its parts are
//! printed) and there was no false positive.

#[path = "common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{HeartbeatArgs, LiveLine, cpu_time, ensure_fds, fmt_dur, rss_bytes};
use crossbeam_channel::{Receiver, Sender};
use wheelbeat_heartbeat::{
    CloseReason, ConnId, ConnInfo, Context, DeadReason, Handler, PeerAddr, Pool, Server, tls,
};

#[derive(Debug, Parser)]
#[command(about = "Server + client pool on loopback: hung peers must be found within the bound")]
struct Args {
    /// Number of client connections (each costs two descriptors here).
    #[arg(long, default_value_t = 5_000)]
    conns: usize,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    /// Heartbeating time before the faults are injected.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Percentage of clients frozen (hung: socket open, silent).
    #[arg(long, default_value_t = 10.0)]
    freeze_pct: f64,
    /// Percentage of clients closed abruptly.
    #[arg(long, default_value_t = 5.0)]
    close_pct: f64,
    /// Observation after the bound has passed, for late false positives.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    tail: Duration,
    /// Server event loops (threads sharing the port).
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Run over TLS, with a throwaway certificate made at start.
    #[arg(long)]
    tls: bool,
}

/// What a handler saw, sent to the main thread.
enum Seen {
    Connect {
        conn: ConnId,
        port: u16,
    },
    Dead {
        conn: ConnId,
        at: Instant,
        silent_for: Duration,
    },
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
}

struct Reporter(Sender<Seen>, bool);

impl Handler for Reporter {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {
        // Pair the two ends by the client's port.
        let addr = if self.1 { &info.peer } else { &info.local };
        let PeerAddr::Tcp(addr) = addr else {
            return; // The demo runs over TCP only.
        };
        let port = addr.port();
        let _ = self.0.send(Seen::Connect { conn, port });
    }
    fn on_dead(
        &mut self,
        cx: &mut Context<'_>,
        conn: ConnId,
        _r: DeadReason,
        silent_for: Duration,
    ) {
        let _ = self.0.send(Seen::Dead {
            conn,
            at: cx.now(),
            silent_for,
        });
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        let _ = self.0.send(Seen::Close {
            conn,
            reason: reason.clone(),
        });
    }
}

#[derive(Default)]
struct Book {
    server_by_port: HashMap<u16, ConnId>,
    client_by_port: HashMap<u16, ConnId>,
    frozen: HashSet<u16>,
    closed: HashSet<u16>,
    frozen_at: Option<Instant>,
    /// Frozen peers detected: detection latency from the freeze, silence seen by the monitor.
    detected: HashMap<u16, (Duration, Duration)>,
    closed_seen: usize,
    false_positives: Vec<String>,
}

impl Book {
    fn port_of_server_conn(&self, conn: ConnId) -> Option<u16> {
        // Built once the pool is up; the map is small enough to invert lazily.
        self.server_by_port
            .iter()
            .find(|(_, c)| **c == conn)
            .map(|(p, _)| *p)
    }

    fn server_event(&mut self, ev: Seen, index: &HashMap<ConnId, u16>) {
        match ev {
            Seen::Connect { conn, port } => {
                self.server_by_port.insert(port, conn);
            }
            Seen::Dead {
                conn,
                at,
                silent_for,
            } => {
                let port = index
                    .get(&conn)
                    .copied()
                    .or_else(|| self.port_of_server_conn(conn));
                match (port, self.frozen_at) {
                    (Some(p), Some(t0)) if self.frozen.contains(&p) => {
                        self.detected.insert(p, (at.saturating_duration_since(t0), silent_for));
                    }
                    _ => self.false_positives.push(format!(
                        "server declared {conn} dead after {silent_for:?} of silence (healthy or closed peer)"
                    )),
                }
            }
            Seen::Close { conn, reason } => {
                let port = index
                    .get(&conn)
                    .copied()
                    .or_else(|| self.port_of_server_conn(conn));
                let port = port.unwrap_or(0);
                match reason {
                    CloseReason::Dead(_) if self.frozen.contains(&port) => {}
                    CloseReason::Dead(_) => {} // counted by its Dead event
                    CloseReason::PeerClosed if self.closed.contains(&port) => self.closed_seen += 1,
                    CloseReason::Shutdown => {}
                    other => self
                        .false_positives
                        .push(format!("server lost healthy {conn}: {other}")),
                }
            }
        }
    }

    fn client_event(&mut self, ev: Seen) {
        match ev {
            Seen::Connect { conn, port } => {
                self.client_by_port.insert(port, conn);
            }
            Seen::Dead {
                conn, silent_for, ..
            } => self.false_positives.push(format!(
                "client {conn} declared the server dead after {silent_for:?}"
            )),
            Seen::Close { conn, reason } => match reason {
                CloseReason::Local | CloseReason::Shutdown => {}
                other => self
                    .false_positives
                    .push(format!("client {conn} lost: {other}")),
            },
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let n = args.conns;
    ensure_fds(
        2 * n as u64 + 128,
        &format!("--conns {n} (two descriptors per loopback pair)"),
    );
    let bound = args.heartbeat.bound();
    let tls_configs = args.tls.then(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("make a throwaway certificate");
        let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
        let server = tls::server_config(
            cert.as_bytes(),
            key.as_bytes(),
            &[b"wheelbeat"],
            tls::ClientAuth::None,
        )
        .expect("server TLS configuration");
        let client = tls::client_config(tls::Roots::Pem(cert.into_bytes()), &[b"wheelbeat"], None)
            .expect("client TLS configuration");
        (server, client)
    });
    println!(
        "demo: over {}",
        if args.tls {
            "TLS (throwaway certificate for localhost made with rcgen, ALPN wheelbeat)"
        } else {
            "plain TCP"
        }
    );
    println!(
        "demo: {n} connections, interval {} timeout {} max-missed {} jitter {} -> bound {}",
        fmt_dur(args.heartbeat.interval),
        fmt_dur(args.heartbeat.timeout),
        args.heartbeat.max_missed,
        args.heartbeat.jitter,
        fmt_dur(bound)
    );

    let cpu0 = cpu_time().unwrap_or_default();
    let rss0 = rss_bytes().unwrap_or(0);
    let (stx, srx) = crossbeam_channel::unbounded();
    let (ctx, crx) = crossbeam_channel::unbounded();
    let mut server = Server::builder("127.0.0.1:0".parse().unwrap())
        .loops(args.loops)
        .heartbeat(args.heartbeat.config(1));
    if let Some((config, _)) = &tls_configs {
        server = server.tls(config.clone());
    }
    let server = server
        .start(|_| Reporter(stx.clone(), true))
        .expect("start the server");
    let mut pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(args.heartbeat.config(2));
    if let Some((_, config)) = &tls_configs {
        pool = pool.tls(config.clone(), "localhost");
    }
    let pool = pool
        .start(move |_| Reporter(ctx.clone(), false))
        .expect("start the pool");
    let (sh, ph) = (server.handle(), pool.handle());

    // Connect everything.
    let mut book = Book::default();
    let mut index: HashMap<ConnId, u16> = HashMap::new();
    let t_connect = Instant::now();
    let connect_deadline = t_connect + Duration::from_secs(60);
    while book.server_by_port.len() < n || book.client_by_port.len() < n {
        if Instant::now() > connect_deadline {
            eprintln!(
                "error: only {} / {} connections up after 60 s",
                book.server_by_port.len(),
                book.client_by_port.len()
            );
            return ExitCode::FAILURE;
        }
        drain(
            &mut book,
            &mut index,
            &srx,
            &crx,
            Duration::from_millis(100),
        );
    }
    let connect_time = t_connect.elapsed();
    let rss1 = rss_bytes().unwrap_or(0);
    println!("connected {n} pairs in {}", fmt_dur(connect_time));

    // Heartbeat, inject faults after the warm-up, wait out the bound plus a tail.
    let start = Instant::now();
    let mut live = LiveLine::new(merged(&sh, &ph), start);
    let mut next_line = start + Duration::from_secs(1);
    let fault_at = start + args.warmup;
    let mut end = fault_at + bound + args.tail;
    let mut injected = false;
    loop {
        let now = Instant::now();
        if !injected && now >= fault_at {
            injected = true;
            let n_freeze = (n as f64 * args.freeze_pct / 100.0).round() as usize;
            let n_close = (n as f64 * args.close_pct / 100.0).round() as usize;
            let ports: Vec<u16> = book.client_by_port.keys().copied().collect();
            book.frozen = ports[..n_freeze].iter().copied().collect();
            book.closed = ports[n_freeze..n_freeze + n_close]
                .iter()
                .copied()
                .collect();
            book.frozen_at = Some(Instant::now());
            for p in &book.frozen {
                let _ = ph.freeze(book.client_by_port[p]);
            }
            for p in &book.closed {
                let _ = ph.close(book.client_by_port[p]);
            }
            end = Instant::now() + bound + args.tail;
            println!(
                "t={:>5.1}s  froze {n_freeze} clients, closed {n_close} clients",
                (now - start).as_secs_f64()
            );
        }
        if now >= next_line {
            let extra = if injected {
                format!(
                    "  frozen detected {}/{}",
                    book.detected.len(),
                    book.frozen.len()
                )
            } else {
                String::new()
            };
            live.print(merged(&sh, &ph), now, &extra);
            next_line += Duration::from_secs(1);
        }
        if now >= end {
            break;
        }
        let wait = next_line
            .min(end)
            .min(if injected { end } else { fault_at });
        drain(
            &mut book,
            &mut index,
            &srx,
            &crx,
            wait.saturating_duration_since(now),
        );
    }
    drain(&mut book, &mut index, &srx, &crx, Duration::ZERO);
    let cpu1 = cpu_time().unwrap_or_default();
    let s = sh.stats();
    let p = ph.stats();
    let wall = t_connect.elapsed();
    pool.shutdown();
    server.shutdown();

    // Summary. The bound holds in the monitor's time; the loop adds its own
    // lateness in running the timers (measured, reported, and allowed for).
    let mut lat: Vec<Duration> = book.detected.values().map(|(l, _)| *l).collect();
    lat.sort();
    let mut silence: Vec<Duration> = book.detected.values().map(|(_, s)| *s).collect();
    silence.sort();
    let pct = |v: &[Duration], q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let lateness = s.timer_lateness_max;
    // The monitor's bound for a loop that runs its timers up to `L` late:
    // `bound + L + ceil_tick(L)` (the verdict's own wake-up, plus the last
    // ping's, rounded up to a tick; see the crate docs).
    let tick = args.heartbeat.config(0).tick;
    let late_ticks = lateness.as_nanos().div_ceil(tick.as_nanos()).max(1) as u32;
    let rounding = tick * late_ticks;
    let allowed = bound + lateness + rounding;
    let beyond_bound = silence.iter().filter(|d| **d > bound).count();
    let beyond_allowed = silence.iter().filter(|d| **d > allowed).count();
    let mut all = s.clone();
    all.merge(&p);
    let rtt = all.rtt();
    let per_pair = rss1.saturating_sub(rss0) as f64 / n as f64;
    let row = |k: &str, v: String| println!("  {k:<40} {v:>12}");
    println!();
    println!("summary ({n} connections, {})", fmt_dur(wall));
    row("frozen clients", book.frozen.len().to_string());
    row("  detected by the server", book.detected.len().to_string());
    row("  silence at verdict p50", fmt_dur(pct(&silence, 0.5)));
    row("  silence at verdict max", fmt_dur(pct(&silence, 1.0)));
    row("  bound", fmt_dur(bound));
    row("  + server timer lateness max", fmt_dur(lateness));
    row("  + lateness rounded up to a tick", fmt_dur(rounding));
    row("  = allowed", fmt_dur(allowed));
    row("  beyond allowed (must be 0)", beyond_allowed.to_string());
    row("  beyond the bound alone", beyond_bound.to_string());
    row("  freeze -> verdict p50", fmt_dur(pct(&lat, 0.5)));
    row("  freeze -> verdict max", fmt_dur(pct(&lat, 1.0)));
    row("closed clients", book.closed.len().to_string());
    row("  seen as peer-closed", book.closed_seen.to_string());
    row("false positives", book.false_positives.len().to_string());
    row("pings sent (both sides)", all.pings_sent.to_string());
    row(
        "pongs received (both sides)",
        all.pongs_received.to_string(),
    );
    row("missed pings (both sides)", all.misses.to_string());
    row("rtt p50", fmt_dur(rtt.p50));
    row("rtt p90", fmt_dur(rtt.p90));
    row("rtt p99", fmt_dur(rtt.p99));
    row("rtt max", fmt_dur(rtt.max));
    row(
        "cpu seconds (whole process)",
        format!("{:.2}", (cpu1 - cpu0).as_secs_f64()),
    );
    row("rss per connection pair", format!("{per_pair:.0} B"));
    row(
        "  (server end + client end)",
        format!("{:.0} B/end", per_pair / 2.0),
    );
    for fp in book.false_positives.iter().take(10) {
        println!("  false positive: {fp}");
    }
    let ok = book.detected.len() == book.frozen.len()
        && beyond_allowed == 0
        && book.false_positives.is_empty()
        && book.closed_seen == book.closed.len();
    println!("{}", if ok { "PASS" } else { "FAIL" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn merged(
    sh: &wheelbeat_heartbeat::Handle,
    ph: &wheelbeat_heartbeat::Handle,
) -> wheelbeat_heartbeat::Snapshot {
    let mut s = sh.stats();
    let p = ph.stats();
    // Connections: count the server's side only (one per pair); the rest adds up.
    let conns = s.connections;
    s.merge(&p);
    s.connections = conns;
    s
}

/// Handles every event that arrives within `wait` (at least one pass).
fn drain(
    book: &mut Book,
    index: &mut HashMap<ConnId, u16>,
    srx: &Receiver<Seen>,
    crx: &Receiver<Seen>,
    wait: Duration,
) {
    let deadline = Instant::now() + wait;
    loop {
        let mut any = false;
        while let Ok(ev) = srx.try_recv() {
            any = true;
            if let Seen::Connect { conn, port } = &ev {
                index.insert(*conn, *port);
            }
            book.server_event(ev, index);
        }
        while let Ok(ev) = crx.try_recv() {
            any = true;
            book.client_event(ev);
        }
        if !any {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            crossbeam_channel::select! {
                recv(srx) -> ev => if let Ok(ev) = ev {
                    if let Seen::Connect { conn, port } = &ev {
                        index.insert(*conn, *port);
                    }
                    book.server_event(ev, index);
                },
                recv(crx) -> ev => if let Ok(ev) = ev { book.client_event(ev) },
                default(deadline - now) => return,
            }
        }
    }
}
