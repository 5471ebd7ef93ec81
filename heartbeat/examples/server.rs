//! A heartbeat server: answers pings, pings silent clients, drops dead ones,
//! echoes application frames, logs every event to stderr.
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example server -- --listen 127.0.0.1:7000
//! ```
//!
//! Prints exactly `listening on IP:PORT` on stdout once ready (port 0 picks a
//! free one). SIGINT or SIGTERM shuts it down gracefully. Try it by hand:
//! `nc 127.0.0.1 7000`, then type `{"ping":1}`.

#[path = "common/mod.rs"]
mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use common::{HeartbeatArgs, fmt_dur, raise_fds};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wheelbeat_heartbeat::{CloseReason, ConnId, ConnInfo, Context, DeadReason, Handler, Server};

#[derive(Debug, Parser)]
#[command(about = "Heartbeat server: JSON ping/pong over newline-delimited TCP")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    #[command(flatten)]
    heartbeat: HeartbeatArgs,
    /// Event-loop threads sharing the port.
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// Most connections per loop.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
}

/// Logs everything; echoes application frames.
struct Logger;

impl Handler for Logger {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {
        log::info!("{conn}: connected from {}", info.peer);
    }
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
        log::debug!("{conn}: {}", String::from_utf8_lossy(frame));
        cx.send(conn, frame);
    }
    fn on_rtt(&mut self, _cx: &mut Context<'_>, conn: ConnId, rtt: Duration) {
        log::debug!("{conn}: rtt {}", fmt_dur(rtt));
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
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        log::info!("{conn}: closed: {reason}");
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
    let server = match Server::builder(args.listen)
        .loops(args.loops)
        .max_connections(max_connections)
        .heartbeat(args.heartbeat.config(0))
        .start(|_| Logger)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: shutting down");
    }
    let s = server.stats();
    server.shutdown();
    log::info!(
        "served {} connections; {} pings sent, {} pongs received, {} dead, {} protocol errors",
        s.accepted,
        s.pings_sent,
        s.pongs_received,
        s.closed.missed_pings,
        s.protocol_errors
    );
}
