//! Load generator: N heartbeating clients against a server in another process,
//! with the same live line as the demo.
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example load -- --connect 127.0.0.1:7000 --conns 10000 --duration 30s
//! cargo run --release -p wheelbeat-heartbeat --example load -- --connect 127.0.0.1:7443 \
//!     --tls --tls-ca cert.pem --tls-server-name localhost --conns 1000 --duration 30s
//! ```
//!
//! Start a server first (`--example server -- --listen 127.0.0.1:7000`). The
//! clients reconnect with exponential backoff and full jitter if the server
//! goes away. Stops after `--duration` (or never, without it; Ctrl-C).
//!
//! `--ws` connects with WebSocket upgrades instead (against `server --ws`; request target
//! `--ws-path`, default `/`); the heartbeat is then RFC 6455 ping/pong.
//!
//! `--tls --tls-ca FILE` connects over TLS, trusting the CA certificates in FILE (PEM; a
//! self-signed server certificate works as its own CA), for `--tls-server-name` (default
//! `localhost`), ALPN `wheelbeat` offered; `--connect-unix PATH` connects to a Unix socket.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use common::{HeartbeatArgs, LiveLine, ensure_fds, fmt_dur};
use wheelbeat_heartbeat::{Pool, WsSettings, tls};

#[derive(Debug, Parser)]
#[command(about = "N heartbeating clients against a wheelbeat server")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7000")]
    connect: SocketAddr,
    /// Connect to a Unix domain socket at this path instead.
    #[arg(long, conflicts_with = "connect")]
    connect_unix: Option<std::path::PathBuf>,
    /// Connect over TLS (needs `--tls-ca`).
    #[arg(long, requires = "tls_ca")]
    tls: bool,
    /// CA certificates to trust (PEM), for `--tls`.
    #[arg(long, requires = "tls")]
    tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry (also sent as SNI).
    #[arg(long, default_value = "localhost")]
    tls_server_name: String,
    /// Number of client connections.
    #[arg(long, default_value_t = 1_000)]
    conns: usize,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    /// Stop after this long (humantime); runs until killed without it.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// First reconnect delay ceiling.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    backoff_initial: Duration,
    /// Largest reconnect delay ceiling.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    backoff_max: Duration,
    /// Most connects started per second, reconnects included (no limit without it).
    #[arg(long)]
    connect_rate: Option<u32>,
    /// Event-loop threads the connections are dealt over.
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Speak WebSocket (RFC 6455) instead of lines.
    #[arg(long)]
    ws: bool,
    /// With `--ws`: the upgrade request's target.
    #[arg(long, default_value = "/")]
    ws_path: String,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    ensure_fds(args.conns as u64 + 64, &format!("--conns {}", args.conns));
    let mut builder = match &args.connect_unix {
        Some(path) => Pool::builder().connect_unix(path, args.conns),
        None => Pool::builder().connect(args.connect, args.conns),
    };
    builder = builder
        .heartbeat(args.heartbeat.config(7))
        .backoff(args.backoff_initial, args.backoff_max)
        .loops(args.loops);
    if args.ws {
        builder = builder.websocket(WsSettings::default().path(args.ws_path.clone()));
    }
    if let Some(rate) = args.connect_rate {
        builder = builder.connect_rate(rate);
    }
    let mut transport = "plain".to_string();
    if let (true, Some(ca)) = (args.tls, &args.tls_ca) {
        let pem = std::fs::read(ca).unwrap_or_else(|e| {
            eprintln!("error: cannot read {}: {e}", ca.display());
            std::process::exit(1);
        });
        let config = tls::client_config(tls::Roots::Pem(pem), &[b"wheelbeat"], None)
            .unwrap_or_else(|e| {
                eprintln!("error: bad CA file {}: {e}", ca.display());
                std::process::exit(1);
            });
        builder = builder.tls(config, &args.tls_server_name);
        transport = format!(
            "TLS (CA {}, server name {})",
            ca.display(),
            args.tls_server_name
        );
    }
    let pool = match builder.start(|_| ()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start the pool: {e}");
            std::process::exit(1);
        }
    };
    let target = match &args.connect_unix {
        Some(p) => format!("unix:{}", p.display()),
        None => args.connect.to_string(),
    };
    println!(
        "load: {} connections to {target} over {transport}, interval {} timeout {} max-missed {}",
        args.conns,
        fmt_dur(args.heartbeat.interval),
        fmt_dur(args.heartbeat.timeout),
        args.heartbeat.max_missed
    );
    let start = Instant::now();
    let mut live = LiveLine::new(pool.stats(), start);
    let mut next = start + Duration::from_secs(1);
    let end = args.duration.map(|d| start + d);
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        if now >= next {
            let s = pool.stats();
            let extra = format!("  connect failures {}", s.connect_failures);
            live.print(s, now, &extra);
            next += Duration::from_secs(1);
        }
        // The main thread only prints; sleeping here paces the output and
        // synchronises nothing.
        let wake = end.map_or(next, |e| e.min(next));
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    let s = pool.stats();
    pool.shutdown();
    let rtt = s.rtt();
    println!(
        "done: {} connected, {} pings sent, {} pongs, {} misses, {} dead, rtt p50 {} p99 {} max {}",
        s.connected,
        s.pings_sent,
        s.pongs_received,
        s.misses,
        s.closed.missed_pings,
        fmt_dur(rtt.p50),
        fmt_dur(rtt.p99),
        fmt_dur(rtt.max)
    );
}
