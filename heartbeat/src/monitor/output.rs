//! What a [`Monitor`](super::Monitor) hands back: [`Action`]s for the shell to carry out,
//! [`Event`]s for the application, and [`Stats`] counters.

use std::time::Duration;

use super::PeerId;

/// Something the shell must do on the network. Drained with
/// [`Monitor::poll_action`](super::Monitor::poll_action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<C> {
    /// Send `{"ping":seq}` to the peer.
    SendPing {
        /// The peer.
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// The sequence number to put in the ping (its pong must echo it).
        seq: u64,
    },
    /// Send `{"pong":seq}` to the peer, answering its ping.
    SendPong {
        /// The peer.
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// The number from the peer's ping.
        seq: u64,
    },
    /// Close the connection. The peer is already removed from the monitor.
    Close {
        /// The peer (already stale).
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// Why.
        reason: DeadReason,
    },
    /// The peer sent more pings than [`Config::max_pings_per_interval`] allows, for
    /// [`Config::max_ping_strikes`] cycles: send it the format's "too many pings" error and
    /// close the connection. The peer is already removed from the monitor; it is not dead, so
    /// no [`Event::Dead`] comes with this.
    ///
    /// [`Config::max_pings_per_interval`]: super::Config::max_pings_per_interval
    /// [`Config::max_ping_strikes`]: super::Config::max_ping_strikes
    PingFlood {
        /// The peer (already stale).
        peer: PeerId,
        /// Its caller tag.
        conn: C,
    },
    /// The peer is about to be convicted: read its socket now (one bounded read, even
    /// without a readiness event), feed what it held with
    /// [`Monitor::handle_message`](super::Monitor::handle_message) (and
    /// [`Monitor::set_unread`](super::Monitor::set_unread) if bytes are left), then call
    /// [`Monitor::handle_timeout`](super::Monitor::handle_timeout) again: that call takes
    /// the verdict. Only with
    /// [`Monitor::set_read_before_verdict`](super::Monitor::set_read_before_verdict) on.
    ReadFirst {
        /// The peer (still monitored).
        peer: PeerId,
        /// Its caller tag.
        conn: C,
    },
}

/// Something that happened, for the application and for statistics. Drained with
/// [`Monitor::poll_event`](super::Monitor::poll_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<C> {
    /// The peer is dead and has been removed from the monitor (an [`Action::Close`] for it is
    /// queued too).
    Dead {
        /// The peer (already stale).
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// Why it was declared dead.
        reason: DeadReason,
        /// How long it had been silent at the verdict (time since the last frame that counted as
        /// a sign of life).
        silent_for: Duration,
    },
    /// A pong matched the outstanding ping: a round-trip time sample.
    Rtt {
        /// The peer.
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// Time from [`Monitor::handle_timeout`](super::Monitor::handle_timeout) emitting the
        /// ping to [`Monitor::handle_message`](super::Monitor::handle_message) receiving its pong.
        rtt: Duration,
    },
    /// A ping went unanswered until the next step of its cycle's grid: `timeout` after its
    /// grid slot (less the loop's lateness in sending it), and for the last ping of a cycle
    /// at least `timeout` after it really left. See the [module docs](super).
    Missed {
        /// The peer.
        peer: PeerId,
        /// Its caller tag.
        conn: C,
        /// Unanswered pings in a row, including this one.
        missed: u32,
    },
    /// The local-pause guard fired: `handle_timeout` ran more than `timeout` after it was due
    /// (process stopped, machine overloaded). Every verdict that fell in the gap was forgiven:
    /// those peers got a fresh ping and a fresh answer window instead of a miss.
    LocalPause {
        /// How late the call was, measured from when the earliest timer was due (or from the
        /// previous call, whichever is later).
        stalled_for: Duration,
    },
}

/// Why a peer was declared dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadReason {
    /// `missed` pings in a row went unanswered (`missed == max_missed`).
    MissedPings {
        /// The number of unanswered pings.
        missed: u32,
    },
    /// Passive mode: the peer sent nothing for a whole window.
    Silent,
}

impl std::fmt::Display for DeadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadReason::MissedPings { missed } => write!(f, "{missed} pings missed"),
            DeadReason::Silent => f.write_str("silent for a whole window"),
        }
    }
}

/// Counters since the monitor was created. See
/// [`Monitor::stats`](super::Monitor::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Peers currently monitored.
    pub peers: usize,
    /// Peers ever added.
    pub added: u64,
    /// Peers removed by [`Monitor::remove`](super::Monitor::remove) (not counting dead ones).
    pub removed: u64,
    /// Pings emitted ([`Action::SendPing`]).
    pub pings_sent: u64,
    /// Pings received from peers.
    pub pings_received: u64,
    /// Pongs emitted in answer ([`Action::SendPong`]).
    pub pongs_sent: u64,
    /// Pongs received (matching or not).
    pub pongs_received: u64,
    /// Pongs received that did not match the outstanding ping (late, duplicate or bogus); they
    /// still count as a sign of life but give no RTT.
    pub pongs_unmatched: u64,
    /// Application data frames received.
    pub data_received: u64,
    /// Pings that went unanswered until the next step of their grid ([`Event::Missed`]).
    pub missed: u64,
    /// Peers declared dead.
    pub dead: u64,
    /// Times the local-pause guard fired.
    pub local_pauses: u64,
    /// Verdicts forgiven by the local-pause guard.
    pub forgiven: u64,
    /// Peers refused by the ping-flood policy ([`Action::PingFlood`]).
    pub ping_floods: u64,
    /// Calls made with a stale or unknown [`PeerId`] (ignored).
    pub stale_ignored: u64,
    /// Timer expiries processed (wheel work).
    pub timer_fires: u64,
    /// Lazy re-arms: a timer that fired for a peer heard from since, and was re-filed.
    pub rearms: u64,
    /// Steps looked at again one tick later because the peer's bytes were still unread
    /// ([`Monitor::set_unread`](super::Monitor::set_unread)).
    pub deferred: u64,
    /// Verdicts held while the driver read the peer's socket
    /// ([`Action::ReadFirst`]).
    pub read_first: u64,
}
