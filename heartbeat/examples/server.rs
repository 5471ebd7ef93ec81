//! A heartbeat server: answers pings, pings silent clients, drops dead ones,
//! echoes application frames, logs every event to stderr.
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example server -- --listen 127.0.0.1:7000
//! cargo run --release -p wheelbeat-heartbeat --example server -- --listen-unix /tmp/wb.sock
//! cargo run --release -p wheelbeat-heartbeat --example server -- --listen 127.0.0.1:7443 \
//!     --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! Prints exactly `listening on IP:PORT` on stdout once ready (port 0 picks a
//! free one). Try it by hand: `nc 127.0.0.1 7000`, then type `{"ping":1}`.
//!
//! Stopping it:
//! - SIGTERM **drains** (what an orchestrator sends before it kills): the listener closes at
//!   once, every client gets `{"goaway":N}` (`N` the milliseconds left), the connections are
//!   served and heartbeated until the clients leave or `--drain-timeout` (default 10 s)
//!   passes, then the rest are closed. The process exits 0 as soon as nobody is left.
//! - SIGINT (Ctrl-C), or a second SIGTERM during a drain, closes everything at once.
//!
//! `--metrics ADDR` serves the Prometheus text format on `GET http://ADDR/metrics` (a small
//! HTTP responder on its own thread): every counter of every loop, as each loop last
//! published it (at most 100 ms old), never a blocking round trip to the loops. The address
//! it bound is logged on stderr as `metrics on http://IP:PORT/metrics`.
//!
//! The knobs a user tuning it needs: `--framing line|length`, `--write-cap BYTES`,
//! `--max-frame-len BYTES`, `--memory-budget BYTES` (per loop), `--turn-budget DURATION`,
//! and `--stats-every DURATION`, which prints one line `STATS {json}` on stderr with the
//! counters (connections, close reasons, timer lateness, memory) every period. A bad value
//! is refused at start with the setting named.
//!
//! WebSocket: `--ws` serves WebSocket instead of lines (any path, or `--ws-path`; messages
//! echoed in the kind they came; the heartbeat is RFC 6455 ping/pong; caps `--max-frame-len`
//! and `--max-message-len`, raise `--write-cap` with them). `--web` also serves
//! `examples/web/index.html` at `/` (open `http://127.0.0.1:7000/?n=200`), upgrades at `/ws`,
//! and sends each connection the RTT measured for it as `{"rtt_us":N}`. `--events` prints one
//! line per connection event on stdout (`EVENT open|rtt|dead|close CONN ...`, times in
//! wall-clock microseconds since the Unix epoch) for scripts such as `tests/interop/browser.sh`.
//!
//! Transports: `--listen-unix PATH` listens on a Unix domain socket instead (stdout then
//! says `listening on unix:PATH`); `--tls-cert FILE --tls-key FILE` (PEM chain and key)
//! serve TLS on the same `--listen` address, ALPN `wheelbeat` offered, with
//! `--handshake-timeout` (default 10 s). What it serves is said on stderr's first line.

#[path = "common/mod.rs"]
mod common;
#[path = "common/metrics_http.rs"]
mod metrics_http;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use common::{HeartbeatArgs, fmt_dur, raise_fds};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wheelbeat_heartbeat::{
    CloseReason, ConnId, ConnInfo, Context, DeadReason, Framing, Handler, Options, SendAs, Server,
    Snapshot, WsSettings, tls,
};

#[derive(Debug, Parser)]
#[command(about = "Heartbeat server: JSON ping/pong over newline-delimited TCP")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Listen on a Unix domain socket at this path instead (it must not exist).
    #[arg(long, conflicts_with = "listen")]
    listen_unix: Option<std::path::PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// How long a TLS handshake may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    /// Event-loop threads sharing the port.
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Most connections per loop.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// How frames are delimited on the wire.
    #[arg(long, value_enum, default_value_t = FramingArg::Line)]
    framing: FramingArg,
    /// Cap on bytes queued for one connection (default 1 MiB).
    #[arg(long)]
    write_cap: Option<usize>,
    /// Largest frame accepted or sent, in bytes (default 64 KiB).
    #[arg(long)]
    max_frame_len: Option<usize>,
    /// Cap on the bytes all connections of one loop hold (default 256 MiB).
    #[arg(long)]
    memory_budget: Option<usize>,
    /// Longest a loop turn reads before running its timers (default 5 ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    turn_budget: Option<Duration>,
    /// Print `STATS {json}` on stderr this often (off by default).
    #[arg(long, value_parser = humantime::parse_duration)]
    stats_every: Option<Duration>,
    /// On SIGTERM, how long clients have to leave before the rest are closed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    drain_timeout: Duration,
    /// Serve Prometheus metrics on `GET http://ADDR/metrics` (port 0 picks a free port).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Serve WebSocket (RFC 6455) instead of lines.
    #[arg(long)]
    ws: bool,
    /// With `--ws`: upgrade only this path (default: any; `/ws` with `--web`).
    #[arg(long)]
    ws_path: Option<String>,
    /// With `--ws`: largest message, fragments assembled (default 64 KiB).
    #[arg(long)]
    max_message_len: Option<usize>,
    /// With `--ws`: serve the demo page at `/` and report RTTs to each connection.
    #[arg(long, requires = "ws")]
    web: bool,
    /// Print `EVENT ...` lines on stdout (open, rtt, dead, close).
    #[arg(long)]
    events: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FramingArg {
    /// One frame per line (`\n`).
    Line,
    /// A 4-byte big-endian length prefix.
    Length,
}

impl Args {
    fn options(&self) -> Options {
        let mut o = Options::default();
        o.heartbeat = self.heartbeat.config(0);
        o.framing = match self.framing {
            FramingArg::Line => Framing::Line,
            FramingArg::Length => Framing::Length,
        };
        if let Some(n) = self.write_cap {
            o.write_cap = n;
        }
        if let Some(n) = self.max_frame_len {
            o.max_frame_len = n;
        }
        if let Some(n) = self.memory_budget {
            o.memory_budget = n;
        }
        if let Some(d) = self.turn_budget {
            o.turn_budget = d;
        }
        if self.ws {
            o.framing = Framing::WebSocket;
            let mut ws = WsSettings::default().send_as(SendAs::LikeReceived);
            if let Some(n) = self.max_message_len {
                ws = ws.max_message_len(n);
            }
            let path = self.ws_path.clone().or(self.web.then(|| "/ws".to_string()));
            if let Some(path) = path {
                ws = ws.path(path);
            }
            if self.web {
                ws = ws.http(page);
            }
            o.websocket = ws;
        }
        o
    }
}

/// The demo page, for `--web`.
const PAGE: &str = include_str!("web/index.html");

/// Answers `GET /` (any query) with the page, anything else with a 404.
fn page(target: &str) -> Option<Vec<u8>> {
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = if path == "/" || path == "/index.html" {
        ("200 OK", "text/html; charset=utf-8", PAGE)
    } else {
        ("404 Not Found", "text/plain", "not found\n")
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    Some([head.as_bytes(), body.as_bytes()].concat())
}

/// The `STATS` line: every counter of the snapshot, as one JSON object.
fn stats_json(s: &Snapshot) -> serde_json::Value {
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let rtt = s.rtt();
    serde_json::json!({
        "connections": s.connections,
        "accepted": s.accepted,
        "pings_sent": s.pings_sent,
        "pongs_received": s.pongs_received,
        "pings_received": s.pings_received,
        "messages_received": s.messages_received,
        "misses": s.misses,
        "dead_silent": s.dead_silent,
        "protocol_errors": s.protocol_errors,
        "closed": {
            "missed_pings": s.closed.missed_pings,
            "peer_closed": s.closed.peer_closed,
            "protocol_error": s.closed.protocol_error,
            "write_overflow": s.closed.write_overflow,
            "memory_budget": s.closed.memory_budget,
            "paused_too_long": s.closed.paused_too_long,
            "too_many_pings": s.closed.too_many_pings,
            "go_away": s.closed.go_away,
            "drain_timeout": s.closed.drain_timeout,
            "io_error": s.closed.io_error,
            "handler_panicked": s.closed.handler_panicked,
            "local": s.closed.local,
            "handshake": s.closed.handshake,
        },
        "timer_lateness_max_us": us(s.timer_lateness_max),
        "timer_late_runs": s.timer_late_runs,
        "local_pauses": s.local_pauses,
        "memory_bytes": s.memory_bytes,
        "memory_peak": s.memory_peak,
        "reads_paused": s.reads_paused,
        "connections_paused": s.connections_paused,
        "handler_panics": s.handler_panics,
        "loops_failed": s.loops_failed,
        "rtt_us": { "count": rtt.count, "p50": us(rtt.p50), "p99": us(rtt.p99), "max": us(rtt.max) },
    })
}

/// Logs everything; echoes application frames; with `web`, reports RTTs to each peer; with
/// `events`, prints the `EVENT` lines.
struct Logger {
    web: bool,
    events: bool,
}

impl Logger {
    fn event(&self, what: &str, conn: ConnId, rest: std::fmt::Arguments<'_>) {
        if self.events {
            // Wall-clock time, so a script can compare it with its own (`date +%s%6N`).
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            println!("EVENT {what} {conn} t_us={at} {rest}");
        }
    }
}

impl Handler for Logger {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {
        match (&info.alpn, &info.server_name) {
            (None, None) => log::info!("{conn}: connected from {}", info.peer),
            (alpn, sni) => log::info!(
                "{conn}: connected from {} (tls, alpn {:?}, sni {:?})",
                info.peer,
                alpn.as_deref().map(String::from_utf8_lossy),
                sni.as_deref().unwrap_or("-")
            ),
        }
        self.event("open", conn, format_args!("peer={}", info.peer));
    }
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
        log::debug!("{conn}: {}", String::from_utf8_lossy(frame));
        cx.send(conn, frame);
    }
    fn on_rtt(&mut self, cx: &mut Context<'_>, conn: ConnId, rtt: Duration) {
        log::debug!("{conn}: rtt {}", fmt_dur(rtt));
        self.event("rtt", conn, format_args!("rtt_us={}", rtt.as_micros()));
        if self.web {
            cx.send(
                conn,
                format!("{{\"rtt_us\":{}}}", rtt.as_micros()).into_bytes(),
            );
        }
    }
    fn on_missed(&mut self, _cx: &mut Context<'_>, conn: ConnId, missed: u32) {
        log::info!("{conn}: {missed} ping(s) unanswered");
    }
    fn on_dead(
        &mut self,
        _cx: &mut Context<'_>,
        conn: ConnId,
        reason: DeadReason,
        silent: Duration,
    ) {
        log::warn!(
            "{conn}: dead ({reason}) after {} of silence",
            fmt_dur(silent)
        );
        self.event(
            "dead",
            conn,
            format_args!("silent_us={}", silent.as_micros()),
        );
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        log::info!("{conn}: closed: {reason}");
        let kind = match reason {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Dead(_) => "dead",
            CloseReason::Local => "local",
            CloseReason::Protocol(_) => "protocol",
            _ => "other",
        };
        self.event("close", conn, format_args!("reason={kind}"));
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let fds = raise_fds();
    let total = (args.max_connections * args.loops.max(1)) as u64;
    let mut max_connections = args.max_connections;
    if fds > 0 && total + 64 > fds {
        // Accepting past the limit would only meet EMFILE: cap it, and say so.
        max_connections = (fds.saturating_sub(64) as usize / args.loops.max(1)).max(1);
        log::warn!(
            "the descriptor limit is {fds}: at most {max_connections} connections per loop \
             instead of {} (raise `ulimit -Hn` for more)",
            args.max_connections
        );
    }
    // Register the signals before serving, so an early SIGTERM is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            std::process::exit(1);
        }
    };
    let fail = |what: String| -> ! {
        eprintln!("error: {what}");
        std::process::exit(1);
    };
    let mut builder = match &args.listen_unix {
        Some(path) => Server::builder_unix(path),
        None => Server::builder(args.listen),
    };
    builder = builder
        .options(args.options())
        .loops(args.loops)
        .max_connections(max_connections)
        .handshake_timeout(args.handshake_timeout);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p)
                    .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", p.display())))
            };
            let config = tls::server_config(
                &read(cert),
                &read(key),
                &[b"wheelbeat"],
                tls::ClientAuth::None,
            )
            .unwrap_or_else(|e| fail(format!("bad TLS certificate or key: {e}")));
            builder = builder.tls(config);
            format!(
                "TLS (certificate {}, ALPN wheelbeat, handshake timeout {})",
                cert.display(),
                fmt_dur(args.handshake_timeout)
            )
        }
        _ => "plain (no TLS)".to_string(),
    };
    let where_ = match &args.listen_unix {
        Some(p) => format!("unix:{}", p.display()),
        None => args.listen.to_string(),
    };
    let server = builder
        .start(|_| Logger {
            web: args.web,
            events: args.events,
        })
        .unwrap_or_else(|e| fail(format!("cannot listen on {where_}: {e}")));
    // What it serves, first on stderr: stdout carries only the `listening on` line.
    eprintln!(
        "serving heartbeats on {} over {tls}, {} loop(s)",
        server.listen_addr(),
        args.loops.max(1)
    );
    println!("listening on {}", server.listen_addr());
    let _ = std::io::stdout().flush();
    // The stats printer waits on a channel with a timeout, so dropping `stop` ends it at once.
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let printer = args.stats_every.map(|every| {
        let handle = server.handle();
        std::thread::spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(every)
            {
                eprintln!("STATS {}", stats_json(&handle.stats()));
            }
        })
    });
    if let Some(addr) = args.metrics {
        match metrics_http::serve(addr, server.handle()) {
            Ok(bound) => log::info!("metrics on http://{bound}/metrics"),
            Err(e) => {
                eprintln!("error: cannot serve metrics on {addr}: {e}");
                server.shutdown();
                std::process::exit(1);
            }
        }
    }
    // The first signal goes to this thread; any later one, on the signal thread, closes
    // everything at once, cutting a drain short.
    let (first_tx, first_rx) = crossbeam_channel::bounded::<i32>(1);
    let handle = server.handle();
    std::thread::spawn(move || {
        let mut first = true;
        for sig in signals.forever() {
            if first {
                first = false;
                let _ = first_tx.send(sig);
            } else {
                log::warn!("signal {sig} during the drain: closing everything now");
                handle.shutdown();
            }
        }
    });
    match first_rx.recv() {
        Ok(SIGTERM) => {
            log::info!(
                "SIGTERM: draining (at most {}; SIGINT or SIGTERM again to close at once)",
                fmt_dur(args.drain_timeout)
            );
            server.drain(Instant::now() + args.drain_timeout);
        }
        sig => {
            log::info!("signal {}: shutting down", sig.unwrap_or(SIGINT));
            server.shutdown();
        }
    }
    drop(stop);
    if let Some(p) = printer {
        let _ = p.join();
    }
    // Every loop published its last counters as it ended.
    let s = server.handle().published_stats();
    log::info!(
        "served {} connections; {} pings sent, {} pongs received, {} dead, {} protocol errors",
        s.accepted,
        s.pings_sent,
        s.pongs_received,
        s.closed.missed_pings,
        s.protocol_errors
    );
}
