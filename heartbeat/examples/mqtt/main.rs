//! A minimal MQTT 3.1.1 keep-alive server on the heartbeat shell: the protocol's own framing
//! and keep-alive, enforced by the same endpoint and monitor as the JSON heartbeats.
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example mqtt -- --listen 127.0.0.1:1883
//! ```
//!
//! Prints exactly `listening on IP:PORT` on stdout once ready (port 0 picks a free one).
//! SIGINT or SIGTERM stops it: it prints `STATS {json}` on stderr and exits 0. Try it with
//! any MQTT client, e.g. `mosquitto_sub -h 127.0.0.1 -p 1883 -t 'a/#' -k 5 -d`.
//!
//! # What it does
//! - **Framing**: [`packet::MqttFraming`] cuts whole packets (fixed header and remaining
//!   length), given to the shell with [`Framing::custom`]; a packet over `--max-frame-len`
//!   is refused from its header, before its body is buffered.
//! - **Format** ([`Mqtt`]): PINGREQ is a ping without a sequence number, answered with PINGRESP
//!   by the endpoint; every other well-formed packet is data for the handler; a malformed one
//!   is a protocol error that closes that connection only. The format is **passive**: the
//!   server never pings, it only watches each client's silence.
//! - **Keep-alive** (section 3.1.2.10): CONNECT's keep-alive `k` seconds becomes the
//!   connection's passive window, `1.5 × k`, with [`Context::set_heartbeat`]. A client silent
//!   for that long is closed within one tick (10 ms) plus the loop's lateness, never earlier.
//!   `k = 0` means no keep-alive: the monitor has no "never", so the window is a century
//!   ([`NO_KEEP_ALIVE`]); such a connection ends only by its peer, TCP, or the loop's limits.
//! - **Before CONNECT**: a new connection gets the loop's window, `--connect-window` (default
//!   10 s): one that sends nothing for that long is closed. Any packet other than CONNECT
//!   first closes it (section 3.1), except PINGREQ, which the endpoint answers before the
//!   handler sees it: a client that only pings keeps its connection within the connect
//!   window of each ping, and gets nothing else.
//! - **Broker** ([`broker::Broker`], one per loop): CONNECT -> CONNACK, SUBSCRIBE -> SUBACK,
//!   UNSUBSCRIBE -> UNSUBACK, PUBLISH delivered at QoS 0 to the matching subscribers of this
//!   loop (QoS 1 and 2 acknowledged), DISCONNECT closes.
//! - **Verdicts**: each connection closed for silence is logged on stderr as one line
//!   `VERDICT {"client":ID,"silent_ms":F,"window_ms":F}` (`client` is `""` before CONNECT),
//!   the silence measured by the loop from the client's last packet.

mod broker;
mod packet;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wheelbeat_heartbeat::format::{Format, Inbound};
use wheelbeat_heartbeat::monitor::PeerConfig;
use wheelbeat_heartbeat::{
    CloseReason, Config, ConnId, ConnInfo, Context, DeadReason, Framing, Handler, ProtocolError,
    Server, Snapshot,
};

use broker::{Broker, Verdict};
use packet::{MqttFraming, PINGREQ, PINGRESP};

/// The window of a client that asked for no keep-alive (`0` in CONNECT): a century, as long
/// as "never" gets with a monitor that always has a window.
pub const NO_KEEP_ALIVE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Debug, Parser)]
#[command(about = "MQTT 3.1.1 keep-alive server on the wheelbeat heartbeat shell")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: SocketAddr,
    /// How long a new connection may stay silent before its CONNECT.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_window: Duration,
    /// Largest packet accepted or sent, header included, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame_len: usize,
}

/// MQTT as a heartbeat format: PINGREQ is a ping with no sequence number, PINGRESP its
/// answer; the server never pings (passive).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mqtt;

impl Format for Mqtt {
    fn classify<'a>(&self, frame: &'a [u8]) -> Result<Inbound<'a>, ProtocolError> {
        // The heartbeat path: two bytes compared, nothing parsed or allocated.
        if frame == PINGREQ {
            return Ok(Inbound::Ping(None));
        }
        // Refused here rather than by the broker so that the close reason says "protocol".
        match packet::parse(frame) {
            Ok(_) => Ok(Inbound::Data(frame)),
            Err(e) => Err(ProtocolError::Malformed(e.reason())),
        }
    }

    fn encode_ping(&self, _seq: u64, _out: &mut Vec<u8>) {
        // Never called: the format is passive. An MQTT server has no ping to send.
    }

    fn encode_pong(&self, _seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&PINGRESP);
    }

    // No goodbye: MQTT 3.1.1 has no error packet after CONNECT, the server just closes.

    fn passive(&self) -> bool {
        true
    }
}

/// The per-connection settings for a CONNECT's keep-alive: a passive window of 1.5 × k, or
/// [`NO_KEEP_ALIVE`] for `k = 0`.
fn keep_alive_settings(window: Option<Duration>) -> PeerConfig {
    PeerConfig {
        interval: Some(window.unwrap_or(NO_KEEP_ALIVE)),
        passive: Some(true),
        ..PeerConfig::default()
    }
}

/// What the handler remembers of a connection beyond the broker's session.
#[derive(Debug)]
struct Client {
    id: String,
    window: Duration,
}

/// Drives one loop's broker from the shell's callbacks.
struct MqttHandler {
    broker: Broker<ConnId>,
    clients: HashMap<ConnId, Client>,
    connect_window: Duration,
}

impl Handler for MqttHandler {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId, info: &ConnInfo) {
        log::debug!("{conn}: connected from {}", info.peer);
        self.broker.open(conn);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, frame: &[u8]) {
        let verdict = self.broker.handle(conn, frame, |to, bytes| {
            if to == conn {
                cx.send(to, bytes);
            } else if cx.try_send(to, bytes).is_err() {
                // QoS 0 may be lost: a subscriber that does not read loses messages, it is
                // not closed for someone else's publish.
                log::debug!("{to}: slow subscriber, message dropped");
            }
        });
        match verdict {
            Verdict::Continue => {}
            Verdict::Connected { client_id, window } => {
                if let Err(e) = cx.set_heartbeat(conn, keep_alive_settings(window)) {
                    log::warn!("{conn}: keep-alive refused ({e:?}), closing");
                    cx.close(conn);
                    return;
                }
                log::info!("{conn}: CONNECT from {client_id:?}, window {window:?}");
                let window = window.unwrap_or(NO_KEEP_ALIVE);
                self.clients.insert(
                    conn,
                    Client {
                        id: client_id,
                        window,
                    },
                );
            }
            Verdict::Disconnect => cx.close(conn),
            Verdict::Refuse(e) => {
                log::info!("{conn}: {e}, closing");
                cx.close(conn);
            }
        }
    }

    fn on_dead(
        &mut self,
        _cx: &mut Context<'_>,
        conn: ConnId,
        reason: DeadReason,
        silent_for: Duration,
    ) {
        let (client, window) = match self.clients.get(&conn) {
            Some(c) => (c.id.as_str(), c.window),
            None => ("", self.connect_window),
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "VERDICT {}",
            serde_json::json!({
                "client": client,
                "silent_ms": ms(silent_for),
                "window_ms": ms(window),
                "reason": reason.to_string(),
            })
        );
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        log::info!("{conn}: closed: {reason}");
        self.broker.close(conn);
        self.clients.remove(&conn);
    }
}

/// The `STATS` line printed on exit.
fn stats_json(s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "connections": s.connections,
        "accepted": s.accepted,
        "pings_received": s.pings_received,
        "messages_received": s.messages_received,
        "protocol_errors": s.protocol_errors,
        "closed": {
            "silent": s.closed.missed_pings,
            "peer_closed": s.closed.peer_closed,
            "protocol_error": s.closed.protocol_error,
            "write_overflow": s.closed.write_overflow,
            "local": s.closed.local,
        },
        "timer_lateness_max_ms": s.timer_lateness_max.as_secs_f64() * 1e3,
        "timer_late_runs": s.timer_late_runs,
    })
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    // Registered before serving, so an early SIGTERM is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            std::process::exit(1);
        }
    };
    // The loop's window is the one before CONNECT; CONNECT replaces it per connection.
    let config = Config {
        interval: args.connect_window,
        ..Config::default()
    };
    let connect_window = args.connect_window;
    let server = match Server::builder(args.listen)
        .heartbeat(config)
        .format(Mqtt)
        .framing(Framing::custom(MqttFraming))
        .max_frame_len(args.max_frame_len)
        .start(|_| MqttHandler {
            broker: Broker::default(),
            clients: HashMap::new(),
            connect_window,
        }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot serve on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.local_addr());
    let _ = std::io::stdout().flush();
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: shutting down");
    }
    let stats = server.stats();
    server.shutdown();
    eprintln!("STATS {}", stats_json(&stats));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pingreq_is_a_ping_without_sequence_number() {
        assert_eq!(Mqtt.classify(&PINGREQ), Ok(Inbound::Ping(None)));
        let mut out = Vec::new();
        Mqtt.encode_pong(0, &mut out);
        assert_eq!(out, PINGRESP);
        assert!(Mqtt.passive());
    }

    #[test]
    fn other_packets_are_data_and_garbage_is_a_protocol_error() {
        let mut publish = Vec::new();
        packet::publish("a/b", b"x", &mut publish);
        assert_eq!(Mqtt.classify(&publish), Ok(Inbound::Data(&publish[..])));
        // PINGREQ with a reserved flag set is not a ping, it is malformed.
        assert!(matches!(
            Mqtt.classify(&[0xC1, 0x00]),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            Mqtt.classify(&[0xF0, 0x00]),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn keep_alive_becomes_a_passive_window_and_zero_a_century() {
        let c = keep_alive_settings(broker::silence_window(2));
        assert_eq!(c.interval, Some(Duration::from_secs(3)));
        assert_eq!(c.passive, Some(true));
        let none = keep_alive_settings(broker::silence_window(0));
        assert_eq!(none.interval, Some(NO_KEEP_ALIVE));
        // Both are settings the shell accepts (what `set_heartbeat` checks).
        let loop_config = Config::default();
        assert!(loop_config.validate_peer(&c).is_ok());
        assert!(loop_config.validate_peer(&none).is_ok());
    }
}
