//! Server-side cost per connection over TLS and WebSocket, wheelbeat beside its tokio peers
//! (issue 10 item 6, issue 11 item 7).
//!
//! # Ground rules
//!
//! - Each *server* mode runs in a child process of its own (`connbench --child MODE`); the
//!   parent runs the clients, the same client code for every mode of a family ([`client`]:
//!   tokio-rustls for the TLS modes, tokio-tungstenite for the WebSocket modes). So client
//!   memory and CPU never enter a figure, and every figure is the server process alone.
//! - The parent and a child talk over the child's stdin and stdout ([`control`]): the child
//!   prints its address, then answers each `sample` line with a [`Sample`] of its own CPU time,
//!   resident set and live heap (counting allocator), as one JSON line. Nothing else is printed
//!   on a child's stdout.
//! - Three phases per mode; 1 and 2 against one child, mode after mode:
//!   1. **idle memory**: `N` connections, each through its handshake and one heartbeat round
//!      trip (the client pings once and waits for the pong; every server also pings at its own
//!      interval, which the client answers). Once all `N` have done so the child is sampled:
//!      RSS and heap grown since before the first connection, divided by `N`.
//!   2. **CPU per heartbeat at equal offered load**: the same `N` connections, every server
//!      pinging each of them at the same interval. After a warm-up, CPU time of the child
//!      over a window divided by the heartbeats (pings answered by the client) in the window.
//!   3. **handshakes per second**: a fixed number of client tasks each repeat connect + full
//!      handshake (TLS resumption off) + one round trip + close; completed cycles per second
//!      and child CPU per cycle. The modes of a family run this phase *interleaved*: a fresh
//!      child per mode, all up at once, the window cut into slices taken in turn, so a change
//!      in the machine's other load falls on every mode alike (rates from back-to-back
//!      windows swung 3x between rounds on a shared machine; interleaved, a few tens of %).
//! - Every tokio peer is written the way its users write it: a current-thread runtime, a task
//!   per connection, `tokio::time::interval` pings, a liveness check on the pong's age.
//! - The wheelbeat modes ([`wheelbeat_tls`], [`wheelbeat_ws`]) are one mio loop on one
//!   thread built from wheelbeat-net's pieces (`Acceptor`, `ConnTable`, `Ready`,
//!   `Connection` over `TlsStream` or with `WsCodec` + `ws::Session`) and the heartbeat
//!   crate's I/O-free `Monitor` (ping after `interval` of silence, 10 ms tick, ±10% jitter):
//!   the heartbeat `Server` does not speak TLS or WebSocket yet. Every server, wheelbeat or
//!   tokio, pings each connection once per interval, so the offered load is the same; the
//!   client counts the heartbeats, so no server counts its own.
//! - Modes and targets: `wheelbeat-tls` against `tokio-rustls` (RSS per idle connection
//!   <= 0.3x, CPU per heartbeat <= 0.8x, handshakes per second >= 0.9x); `wheelbeat-ws`
//!   against `tungstenite-default` (RSS <= 0.1x, CPU <= 0.8x) and `tungstenite-4k` (RSS
//!   <= 0.5x, CPU <= 0.8x). See [`targets`].
//! - Certificates are made at run time with `rcgen` (one throwaway ECDSA P-256 key), handed
//!   to the child in environment variables as PEM.

pub mod certs;
pub mod client;
pub mod control;
pub mod tokio_rustls_peer;
pub mod tungstenite_peer;
pub mod wheelbeat_tls;
pub mod wheelbeat_ws;

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use control::Sample;

/// The wire family of a mode: what the client speaks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// TLS 1.3, then `{"ping":N}` / `{"pong":N}` JSON lines.
    Tls,
    /// Plain TCP, an HTTP/1.1 upgrade, then RFC 6455 ping and pong frames carrying the
    /// sequence number as an 8-byte big-endian payload.
    Ws,
}

/// A server mode: its name on the command line and in the table, and its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Name (`--only` matches on it).
    pub name: &'static str,
    /// What the client speaks to it.
    pub family: Family,
    /// The tokio peer its ratios are taken against, for wheelbeat modes.
    pub peers: &'static [&'static str],
}

/// Every mode, in table order.
pub const MODES: [Mode; 5] = [
    Mode {
        name: "tokio-rustls",
        family: Family::Tls,
        peers: &[],
    },
    Mode {
        name: "wheelbeat-tls",
        family: Family::Tls,
        peers: &["tokio-rustls"],
    },
    Mode {
        name: "tungstenite-default",
        family: Family::Ws,
        peers: &[],
    },
    Mode {
        name: "tungstenite-4k",
        family: Family::Ws,
        peers: &[],
    },
    Mode {
        name: "wheelbeat-ws",
        family: Family::Ws,
        peers: &["tungstenite-default", "tungstenite-4k"],
    },
];

/// Finds a mode by name.
pub fn mode(name: &str) -> Option<Mode> {
    MODES.iter().copied().find(|m| m.name == name)
}

/// How a run is shaped (the same for every mode).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Plan {
    /// Connections held in phases 1 and 2.
    pub conns: usize,
    /// The servers' heartbeat interval (phase 2's offered load is `conns / interval`).
    pub interval: Duration,
    /// Heartbeating before phase 2's window opens.
    pub warmup: Duration,
    /// Phase 2's window.
    pub window: Duration,
    /// Phase 3's window.
    pub handshake_window: Duration,
    /// Client tasks repeating handshakes in phase 3.
    pub handshakers: usize,
    /// Connection attempts in flight while phase 1 connects.
    pub connect_concurrency: usize,
}

/// What one mode measured in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The mode.
    pub mode: String,
    /// Connections held in phases 1 and 2.
    pub conns: usize,
    /// Resident set grown by the `conns` idle connections, bytes.
    pub idle_rss_bytes: u64,
    /// Live heap grown by the `conns` idle connections, bytes.
    pub idle_heap_bytes: u64,
    /// Heartbeats answered by the client in phase 2's window.
    pub heartbeats: u64,
    /// Length of phase 2's window, seconds.
    pub hb_secs: f64,
    /// Server CPU (user + system) in phase 2's window, nanoseconds.
    pub hb_cpu_ns: u64,
    /// Handshake cycles completed in phase 3's window.
    pub handshakes: u64,
    /// Length of phase 3's window, seconds.
    pub hs_secs: f64,
    /// Server CPU from the start of phase 3 until its last cycle ended, nanoseconds.
    pub hs_cpu_ns: u64,
    /// Cycles completed by then (the window's, plus those that were in flight at its end).
    pub hs_total: u64,
    /// Connections lost or refused (must be 0).
    pub failures: u64,
    /// What the server is built from, as the child says (for wheelbeat modes).
    pub detail: String,
}

impl Report {
    /// Resident bytes per idle connection.
    pub fn rss_per_conn(&self) -> f64 {
        self.idle_rss_bytes as f64 / self.conns as f64
    }

    /// Heap bytes per idle connection.
    pub fn heap_per_conn(&self) -> f64 {
        self.idle_heap_bytes as f64 / self.conns as f64
    }

    /// Server CPU nanoseconds per heartbeat.
    pub fn cpu_per_hb(&self) -> f64 {
        self.hb_cpu_ns as f64 / self.heartbeats.max(1) as f64
    }

    /// Heartbeats per second in phase 2 (the offered load, if the server kept up).
    pub fn hb_rate(&self) -> f64 {
        self.heartbeats as f64 / self.hb_secs
    }

    /// Handshake cycles per second.
    pub fn hs_rate(&self) -> f64 {
        self.handshakes as f64 / self.hs_secs
    }

    /// Server CPU microseconds per handshake cycle.
    pub fn cpu_per_hs_us(&self) -> f64 {
        self.hs_cpu_ns as f64 / self.hs_total.max(1) as f64 / 1e3
    }
}

/// Starts the server of mode `name` in this process (on `127.0.0.1`, an ephemeral port) with
/// a heartbeat every `interval`, serving `pem` if it speaks TLS, and returns its address.
pub fn start_server(
    name: &str,
    interval: Duration,
    pem: &certs::Pem,
) -> Result<std::net::SocketAddr, String> {
    let e = |e: std::io::Error| format!("{name}: {e}");
    match name {
        "tokio-rustls" => {
            let config = pem.server_config()?;
            tokio_rustls_peer::start(config, interval).map_err(e)
        }
        "tungstenite-default" => {
            tungstenite_peer::start(tungstenite_peer::Tuning::Default, interval).map_err(e)
        }
        "tungstenite-4k" => {
            tungstenite_peer::start(tungstenite_peer::Tuning::ReadBuffer4k, interval).map_err(e)
        }
        "wheelbeat-tls" => {
            let config = wheelbeat_net::tls::server_config(
                pem.cert.as_bytes(),
                pem.key.as_bytes(),
                &[],
                wheelbeat_net::tls::ClientAuth::None,
            )
            .map_err(|e| format!("{name}: {e}"))?;
            wheelbeat_tls::start(config, interval).map_err(|e| format!("{name}: {e}"))
        }
        "wheelbeat-ws" => wheelbeat_ws::start(interval).map_err(|e| format!("{name}: {e}")),
        other => Err(format!("unknown mode {other}")),
    }
}

/// What the server of mode `name` is built from, for the output.
pub fn describe(name: &str) -> &'static str {
    match name {
        "tokio-rustls" => {
            "tokio current-thread runtime, task per connection, tokio-rustls, serde_json lines"
        }
        "tungstenite-default" => {
            "tokio current-thread runtime, task per connection, tokio-tungstenite, WebSocketConfig::default()"
        }
        "tungstenite-4k" => {
            "tokio current-thread runtime, task per connection, tokio-tungstenite, 4 KiB read buffer"
        }
        "wheelbeat-tls" => {
            "one mio loop: wheelbeat-net Acceptor/ConnTable/Ready, Connection<LineCodec, TlsStream> (rustls unbuffered), heartbeat Monitor"
        }
        "wheelbeat-ws" => {
            "one mio loop: wheelbeat-net Acceptor/ConnTable/Ready, Connection<WsCodec> + ws::Session, heartbeat Monitor"
        }
        _ => "",
    }
}

/// A figure a target is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Resident bytes per idle connection.
    Rss,
    /// Server CPU per heartbeat.
    Cpu,
    /// Handshakes per second.
    Handshakes,
}

impl Metric {
    /// The report's column for it.
    pub fn column(self) -> fn(&Report) -> f64 {
        match self {
            Metric::Rss => Report::rss_per_conn,
            Metric::Cpu => Report::cpu_per_hb,
            Metric::Handshakes => Report::hs_rate,
        }
    }

    /// Its name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Rss => "RSS per idle connection",
            Metric::Cpu => "CPU per heartbeat",
            Metric::Handshakes => "handshakes per second",
        }
    }
}

/// A target: the ratio wheelbeat / peer of `metric` is at most (or at least) `bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The figure.
    pub metric: Metric,
    /// `true`: ratio <= bound; `false`: ratio >= bound.
    pub at_most: bool,
    /// The bound on the ratio.
    pub bound: f64,
}

impl Target {
    /// Whether `ratio` meets it.
    pub fn met(&self, ratio: f64) -> bool {
        if self.at_most {
            ratio <= self.bound
        } else {
            ratio >= self.bound
        }
    }
}

/// The targets of issue 10 (TLS) and issue 11 (WebSocket) for a wheelbeat mode against a peer.
pub fn targets(_mode: &str, peer: &str) -> Vec<Target> {
    let t = |metric, at_most, bound| Target {
        metric,
        at_most,
        bound,
    };
    match peer {
        "tokio-rustls" => vec![
            t(Metric::Rss, true, 0.3),
            t(Metric::Cpu, true, 0.8),
            t(Metric::Handshakes, false, 0.9),
        ],
        "tungstenite-default" => vec![t(Metric::Rss, true, 0.1), t(Metric::Cpu, true, 0.8)],
        "tungstenite-4k" => vec![t(Metric::Rss, true, 0.5), t(Metric::Cpu, true, 0.8)],
        _ => Vec::new(),
    }
}

/// The heartbeat settings of the wheelbeat modes: ping after `interval` of silence, a peer
/// dead after three pings unanswered `interval` apart; everything else the monitor's defaults
/// (10 ms tick, ±10% jitter), as a user would leave them.
pub fn heartbeat_config(interval: Duration) -> wheelbeat_heartbeat::monitor::Config {
    wheelbeat_heartbeat::monitor::Config {
        interval,
        timeout: interval,
        ..wheelbeat_heartbeat::monitor::Config::default()
    }
}

/// A heartbeat frame of the TLS modes, as a tokio user declares it for serde_json
/// (`{"ping":N}`, `{"pong":N}`: wheelbeat's line format, byte for byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frame {
    /// Asks for a pong with the same number.
    Ping(u64),
    /// Answers a ping.
    Pong(u64),
}

/// A current-thread tokio runtime with I/O and time: what every tokio peer runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Encodes a heartbeat sequence number as a WebSocket ping payload (8 bytes, big-endian).
pub fn ws_payload(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// Decodes [`ws_payload`]; `None` for any other payload.
pub fn ws_seq(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_payload_round_trips_and_rejects_other_lengths() {
        assert_eq!(
            ws_seq(&ws_payload(0x0102_0304_0506_0708)),
            Some(0x0102_0304_0506_0708)
        );
        assert_eq!(ws_seq(b"1234567"), None);
        assert_eq!(ws_seq(b""), None);
    }

    #[test]
    fn frames_are_wheelbeats_line_format() {
        assert_eq!(
            serde_json::to_string(&Frame::Ping(7)).unwrap(),
            r#"{"ping":7}"#
        );
        assert_eq!(
            serde_json::from_str::<Frame>(r#"{"pong":9}"#).unwrap(),
            Frame::Pong(9)
        );
    }

    /// Every mode against its family's client, in this process: all connections get ready,
    /// the server's pings arrive at the interval, every close is clean and handshake cycles
    /// complete. Guards the benchmark against measuring servers that do not work.
    #[test]
    fn every_mode_serves_its_familys_client() {
        let pem = certs::Pem::generate().expect("a certificate");
        let interval = Duration::from_millis(50);
        for m in MODES {
            let addr = start_server(m.name, interval, &pem).expect("a server");
            let client = client::Client::new(m.family, &pem).expect("a client");
            let held = client
                .hold(addr, 20, 8, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{}: {e}", m.name));
            // 20 connections pinged every 50 ms: 60 pings take about 150 ms.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while held.pings() < 60 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: pings stalled",
                    m.name
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(held.failures(), 0, "{}", m.name);
            client.close(held);
            let cycles = client.cycles(addr, 2, Duration::from_millis(200));
            assert!(
                cycles.completed > 0,
                "{}: no handshake cycle completed",
                m.name
            );
            assert_eq!(cycles.failures, 0, "{}", m.name);
        }
    }

    /// The verdicts: "at most" and "at least" bounds both include the bound itself, and every
    /// wheelbeat mode has a target against each of its peers.
    #[test]
    fn targets_meet_at_their_bound_and_cover_every_peer() {
        let rss = targets("wheelbeat-tls", "tokio-rustls")[0];
        assert_eq!((rss.metric, rss.at_most), (Metric::Rss, true));
        assert!(rss.met(0.3) && rss.met(0.1) && !rss.met(0.31));
        let hs = targets("wheelbeat-tls", "tokio-rustls")[2];
        assert_eq!((hs.metric, hs.at_most), (Metric::Handshakes, false));
        assert!(hs.met(0.9) && hs.met(1.5) && !hs.met(0.89));
        for m in MODES {
            for peer in m.peers {
                assert!(mode(peer).is_some(), "{}: unknown peer {peer}", m.name);
                assert!(!targets(m.name, peer).is_empty(), "{} vs {peer}", m.name);
            }
        }
    }

    #[test]
    fn every_mode_is_found_by_name() {
        for m in MODES {
            assert_eq!(mode(m.name), Some(m));
        }
        assert_eq!(mode("nope"), None);
    }
}
