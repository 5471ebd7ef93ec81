//! The broker's state for one event loop: which connections have said CONNECT, what each has
//! subscribed to, and what to answer each packet with. No I/O: it is handed parsed packets and
//! returns the packets to send and the keep-alive to apply, so it is tested without sockets.
//!
//! # Ground rules
//! - The first packet of a connection must be CONNECT, and only the first (section 3.1);
//!   anything else is a protocol error that closes that connection.
//! - PUBLISH is delivered at QoS 0 to every subscriber on this loop whose filter matches,
//!   the publisher included if it subscribed (MQTT has no "no local" in 3.1.1).
//! - The keep-alive is enforced by the heartbeat layer in passive mode: the server never pings,
//!   and a client silent for 1.5 × its keep-alive is closed (section 3.1.2.10).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use super::packet::{self, Packet, PacketError};

/// What the caller must do after a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing beyond the replies already sent.
    Continue,
    /// CONNECT accepted: watch this connection's silence with the given window (`None`: the
    /// client asked for no keep-alive).
    Connected {
        client_id: String,
        window: Option<Duration>,
    },
    /// DISCONNECT: close the connection without a will (none is kept).
    Disconnect,
    /// A protocol error: close the connection.
    Refuse(PacketError),
}

#[derive(Debug, Default)]
struct Session {
    connected: bool,
    filters: Vec<String>,
}

/// Sessions and subscriptions of one loop.
#[derive(Debug)]
pub struct Broker<K> {
    sessions: HashMap<K, Session>,
}

impl<K: Copy + Eq + Hash> Default for Broker<K> {
    fn default() -> Self {
        Broker {
            sessions: HashMap::new(),
        }
    }
}

/// Section 3.1.2.10: "If the Keep Alive value is non-zero and the Server does not receive a
/// Control Packet from the Client within one and a half times the Keep Alive time period, it
/// MUST disconnect".
pub fn silence_window(keep_alive: u16) -> Option<Duration> {
    (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500))
}

impl<K: Copy + Eq + Hash> Broker<K> {
    /// A connection opened: it owes us a CONNECT.
    pub fn open(&mut self, conn: K) {
        self.sessions.insert(conn, Session::default());
    }

    /// A connection closed, for whatever reason.
    pub fn close(&mut self, conn: K) {
        self.sessions.remove(&conn);
    }

    /// Handles one packet from `conn`, calling `send(to, bytes)` for each packet to send.
    pub fn handle(&mut self, conn: K, frame: &[u8], mut send: impl FnMut(K, &[u8])) -> Verdict {
        let packet = match packet::parse(frame) {
            Ok(p) => p,
            Err(e) => return Verdict::Refuse(e),
        };
        let Some(session) = self.sessions.get_mut(&conn) else {
            return Verdict::Continue;
        };
        let mut out = Vec::new();
        match (session.connected, packet) {
            (
                false,
                Packet::Connect {
                    client_id,
                    keep_alive,
                },
            ) => {
                session.connected = true;
                packet::connack(0, &mut out);
                send(conn, &out);
                Verdict::Connected {
                    client_id: client_id.to_owned(),
                    window: silence_window(keep_alive),
                }
            }
            (false, _) | (true, Packet::Connect { .. }) => {
                Verdict::Refuse(PacketError::UnexpectedType(frame[0] >> 4))
            }
            (true, Packet::PingReq) => {
                // Answered by the heartbeat layer (it classifies PINGREQ as a ping); a broker
                // driven without one answers here.
                Verdict::Continue
            }
            (true, Packet::Subscribe { packet_id, filters }) => {
                for (f, _) in &filters {
                    if !session.filters.iter().any(|have| have == f) {
                        session.filters.push((*f).to_owned());
                    }
                }
                packet::suback(packet_id, filters.len(), &mut out);
                send(conn, &out);
                Verdict::Continue
            }
            (true, Packet::Unsubscribe { packet_id, filters }) => {
                session
                    .filters
                    .retain(|have| !filters.contains(&have.as_str()));
                packet::unsuback(packet_id, &mut out);
                send(conn, &out);
                Verdict::Continue
            }
            (
                true,
                Packet::Publish {
                    topic,
                    qos,
                    packet_id,
                    payload,
                },
            ) => {
                if let Some(id) = packet_id {
                    // QoS 1: PUBACK; QoS 2: PUBREC, then PUBCOMP on the client's PUBREL.
                    packet::ack(if qos == 1 { 4 } else { 5 }, id, &mut out);
                    send(conn, &out);
                    out.clear();
                }
                packet::publish(topic, payload, &mut out);
                for (&to, s) in &self.sessions {
                    if s.connected && s.filters.iter().any(|f| packet::matches(f, topic)) {
                        send(to, &out);
                    }
                }
                Verdict::Continue
            }
            (true, Packet::PubRel { packet_id }) => {
                packet::ack(7, packet_id, &mut out);
                send(conn, &out);
                Verdict::Continue
            }
            (true, Packet::Ack) => Verdict::Continue,
            (true, Packet::Disconnect) => Verdict::Disconnect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::PINGREQ;
    use super::*;

    fn connect(keep_alive: u16) -> Vec<u8> {
        let mut p = vec![0x10, 0];
        p.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02]);
        p.extend_from_slice(&keep_alive.to_be_bytes());
        p.extend_from_slice(&[0, 1, b'x']);
        p[1] = (p.len() - 2) as u8;
        p
    }

    fn subscribe(filter: &str) -> Vec<u8> {
        let mut body = vec![0, 1];
        body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        body.extend_from_slice(filter.as_bytes());
        body.push(0);
        let mut p = vec![0x82, body.len() as u8];
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn connect_is_answered_with_connack_and_sets_the_window() {
        let mut b = Broker::default();
        b.open(1);
        let mut sent = Vec::new();
        let v = b.handle(1, &connect(2), |to, bytes| sent.push((to, bytes.to_vec())));
        assert_eq!(
            v,
            Verdict::Connected {
                client_id: "x".into(),
                window: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(sent, vec![(1, vec![0x20, 0x02, 0x00, 0x00])]);
    }

    #[test]
    fn keep_alive_zero_means_no_window() {
        assert_eq!(silence_window(0), None);
        assert_eq!(silence_window(1), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_packet_before_connect_is_refused() {
        let mut b = Broker::default();
        b.open(1);
        assert!(matches!(
            b.handle(1, &PINGREQ, |_, _| {}),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn a_second_connect_is_refused() {
        let mut b = Broker::default();
        b.open(1);
        b.handle(1, &connect(0), |_, _| {});
        assert!(matches!(
            b.handle(1, &connect(0), |_, _| {}),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn qos_1_is_acknowledged_and_disconnect_closes() {
        let mut b = Broker::default();
        b.open(1);
        b.handle(1, &connect(0), |_, _| {});
        // PUBLISH QoS 1, topic "t", packet id 9, payload "p".
        let publish = [0x32, 6, 0, 1, b't', 0, 9, b'p'];
        let mut sent = Vec::new();
        let v = b.handle(1, &publish, |to, bytes| sent.push((to, bytes.to_vec())));
        assert_eq!(v, Verdict::Continue);
        assert_eq!(
            sent,
            vec![(1, vec![0x40, 0x02, 0, 9])],
            "PUBACK only: no subscriber"
        );
        assert_eq!(b.handle(1, &[0xE0, 0x00], |_, _| {}), Verdict::Disconnect);
    }

    #[test]
    fn publish_reaches_matching_subscribers_only() {
        let mut b = Broker::default();
        for c in 1..=3 {
            b.open(c);
            b.handle(c, &connect(0), |_, _| {});
        }
        b.handle(1, &subscribe("t/+"), |_, _| {});
        b.handle(2, &subscribe("other"), |_, _| {});
        let mut msg = Vec::new();
        packet::publish("t/x", b"hello", &mut msg);
        let mut to = Vec::new();
        b.handle(3, &msg, |c, bytes| {
            assert_eq!(bytes, &msg[..]);
            to.push(c)
        });
        assert_eq!(to, vec![1]);
    }
}
