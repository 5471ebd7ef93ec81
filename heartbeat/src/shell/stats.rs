//! Statistics of the event loops: counters plus an RTT histogram, and the
//! [`Snapshot`] snapshot a [`Handle`](crate::Handle) hands out.
//!
//! # Ground rules
//! - Each loop owns its own [`Snapshot`] and is the only one to touch it, so the
//!   hot path is plain integer increments: no atomics, no locks.
//! - A snapshot is taken on request (a command over the loop's channel) and
//!   the per-loop snapshots are merged by the caller; a loop never waits for
//!   a reader.
//! - RTTs are recorded in microseconds in an [`hdrhistogram`] with three
//!   significant digits (±0.1 %), 1 µs to 1 h; larger values saturate.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Lowest RTT the histogram can tell apart, in microseconds.
const RTT_LOW_US: u64 = 1;
/// Highest RTT the histogram records exactly, in microseconds (one hour).
const RTT_HIGH_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the histogram.
const RTT_SIGFIG: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's preconditions
    // (low >= 1, high >= 2 * low, sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(RTT_LOW_US, RTT_HIGH_US, RTT_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Why connections were closed, counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadCounts {
    /// Declared dead by the heartbeat monitor (unanswered pings).
    pub missed_pings: u64,
    /// Closed by the peer (end of stream or connection reset).
    pub peer_closed: u64,
    /// Closed because the peer sent a frame that broke the protocol.
    pub protocol_error: u64,
    /// Closed because the peer did not read fast enough and the write
    /// queue reached its cap.
    pub write_overflow: u64,
    /// Closed after another I/O error on the socket.
    pub io_error: u64,
    /// Closed because a handler callback for it panicked.
    pub handler_panicked: u64,
    /// Closed because its loop was over its memory budget and it held the most.
    pub memory_budget: u64,
    /// Closed because its reads were paused by the memory budget for longer than the
    /// heartbeat bound ([`CloseReason::PausedTooLong`](crate::CloseReason::PausedTooLong)).
    pub paused_too_long: u64,
    /// Closed by the ping-flood policy (too many pings).
    pub too_many_pings: u64,
    /// Closed because the peer announced it was going away (draining).
    pub go_away: u64,
    /// Closed by this side's drain at its deadline, the peer still connected.
    pub drain_timeout: u64,
    /// Closed on request of the application (handle, handler or shutdown).
    pub local: u64,
    /// Closed before its TLS handshake completed: timed out, or failed (garbage instead
    /// of a ClientHello...). Such peers never reached the monitor.
    pub handshake: u64,
}

impl DeadCounts {
    fn merge(&mut self, other: &DeadCounts) {
        self.missed_pings += other.missed_pings;
        self.peer_closed += other.peer_closed;
        self.protocol_error += other.protocol_error;
        self.write_overflow += other.write_overflow;
        self.io_error += other.io_error;
        self.handler_panicked += other.handler_panicked;
        self.memory_budget += other.memory_budget;
        self.paused_too_long += other.paused_too_long;
        self.too_many_pings += other.too_many_pings;
        self.go_away += other.go_away;
        self.drain_timeout += other.drain_timeout;
        self.local += other.local;
        self.handshake += other.handshake;
    }

    /// Total number of closed connections, all reasons together. Peers closed before their
    /// TLS handshake completed ([`handshake`](Self::handshake)) are not in it: they were
    /// never counted as accepted or connected either.
    pub fn total(&self) -> u64 {
        self.missed_pings
            + self.peer_closed
            + self.protocol_error
            + self.write_overflow
            + self.io_error
            + self.handler_panicked
            + self.memory_budget
            + self.paused_too_long
            + self.too_many_pings
            + self.go_away
            + self.drain_timeout
            + self.local
    }
}

/// Percentiles of the round-trip times measured by ping/pong pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RttSummary {
    /// Number of RTT samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// A snapshot of the counters of one or more event loops.
///
/// Counters are cumulative since the loops started; subtract two snapshots
/// for rates (see [`Snapshot::pings_per_sec_since`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// Connections open right now.
    pub connections: u64,
    /// Inbound connections accepted so far.
    pub accepted: u64,
    /// Outbound connections established so far (pools only).
    pub connected: u64,
    /// Outbound connection attempts that failed (pools only).
    pub connect_failures: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Pongs received that matched an outstanding ping.
    pub pongs_received: u64,
    /// Pings received from peers (each answered with a pong).
    pub pings_received: u64,
    /// Application frames received.
    pub messages_received: u64,
    /// Ping timeouts (a ping not answered within `timeout`).
    pub misses: u64,
    /// Dead verdicts of passive peers, silent for a whole window
    /// ([`DeadReason::Silent`](crate::DeadReason::Silent)); they are also counted in
    /// `closed.missed_pings`, with the verdicts of unanswered pings.
    pub dead_silent: u64,
    /// Closed connections by reason.
    pub closed: DeadCounts,
    /// Protocol errors seen (each also closed its connection).
    pub protocol_errors: u64,
    /// The latest the loop ran the monitor's timers after they were due
    /// (`poll` wake-up granularity plus scheduling). Heartbeat verdicts can be
    /// late by this much on top of the monitor's bound.
    pub timer_lateness_max: Duration,
    /// Timer runs later than 10 ms after they were due.
    pub timer_late_runs: u64,
    /// Local pauses: the loop stalled longer than the heartbeat `timeout`, and the verdicts
    /// that fell in the stall were forgiven (see the crate docs, THE BOUND).
    pub local_pauses: u64,
    /// Heap bytes held by the connections' buffers right now (unread output, unfinished input
    /// frames), summed over loops: what [`Options::memory_budget`](crate::Options::memory_budget)
    /// caps per loop.
    pub memory_bytes: u64,
    /// The largest `memory_bytes` a loop has held (the maximum over loops).
    pub memory_peak: u64,
    /// Pauses of a connection's reads by the memory budget, so far (over 3/4 of it, the
    /// connections holding the most are not read until the pressure ends; see
    /// [`Options::memory_budget`](crate::Options::memory_budget)).
    pub reads_paused: u64,
    /// Connections whose reads are paused right now.
    pub connections_paused: u64,
    /// Handler callbacks that panicked (each closed the connection it was called for, if
    /// any, with [`CloseReason::HandlerPanicked`](crate::CloseReason::HandlerPanicked)).
    pub handler_panics: u64,
    /// Loops that ended other than by [`Handle::shutdown`](crate::Handle::shutdown) (a
    /// failed `poll`, a panic outside the handler): their counters are missing from this
    /// snapshot, and their connections are gone.
    pub loops_failed: u64,
    rtt: Histogram<u64>,
}

impl Snapshot {
    pub(crate) fn new() -> Snapshot {
        Snapshot {
            connections: 0,
            accepted: 0,
            connected: 0,
            connect_failures: 0,
            pings_sent: 0,
            pongs_received: 0,
            pings_received: 0,
            messages_received: 0,
            misses: 0,
            dead_silent: 0,
            closed: DeadCounts::default(),
            protocol_errors: 0,
            timer_lateness_max: Duration::ZERO,
            timer_late_runs: 0,
            local_pauses: 0,
            memory_bytes: 0,
            memory_peak: 0,
            reads_paused: 0,
            connections_paused: 0,
            handler_panics: 0,
            loops_failed: 0,
            rtt: new_histogram(),
        }
    }

    /// Records one RTT sample.
    pub(crate) fn record_rtt(&mut self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt.saturating_record(us.max(RTT_LOW_US));
    }

    /// Records how late the monitor's timers ran.
    pub(crate) fn record_timer_lateness(&mut self, late: Duration) {
        self.timer_lateness_max = self.timer_lateness_max.max(late);
        if late > Duration::from_millis(10) {
            self.timer_late_runs += 1;
        }
    }

    /// Adds another snapshot into this one (used to sum several loops).
    pub fn merge(&mut self, other: &Snapshot) {
        self.connections += other.connections;
        self.accepted += other.accepted;
        self.connected += other.connected;
        self.connect_failures += other.connect_failures;
        self.pings_sent += other.pings_sent;
        self.pongs_received += other.pongs_received;
        self.pings_received += other.pings_received;
        self.messages_received += other.messages_received;
        self.misses += other.misses;
        self.dead_silent += other.dead_silent;
        self.closed.merge(&other.closed);
        self.protocol_errors += other.protocol_errors;
        self.timer_lateness_max = self.timer_lateness_max.max(other.timer_lateness_max);
        self.timer_late_runs += other.timer_late_runs;
        self.local_pauses += other.local_pauses;
        self.memory_bytes += other.memory_bytes;
        self.memory_peak = self.memory_peak.max(other.memory_peak);
        self.reads_paused += other.reads_paused;
        self.connections_paused += other.connections_paused;
        self.handler_panics += other.handler_panics;
        self.loops_failed += other.loops_failed;
        // Both histograms share the same constant bounds, so adding cannot
        // run out of range; saturate instead of failing if it ever did.
        if self.rtt.add(&other.rtt).is_err() {
            for v in other.rtt.iter_recorded() {
                self.rtt
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Every recorded RTT value, in microseconds, with how many samples it holds (the
    /// histogram's resolution: three significant digits).
    #[cfg(feature = "metrics")]
    pub(crate) fn rtt_samples(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.rtt
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
    }

    /// RTT percentiles.
    pub fn rtt(&self) -> RttSummary {
        let q = |q: f64| Duration::from_micros(self.rtt.value_at_quantile(q));
        if self.rtt.is_empty() {
            return RttSummary::default();
        }
        RttSummary {
            count: self.rtt.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: Duration::from_micros(self.rtt.max()),
        }
    }

    /// The RTT value at quantile `q` (0.0 to 1.0), or zero without samples.
    pub fn rtt_quantile(&self, q: f64) -> Duration {
        if self.rtt.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rtt.value_at_quantile(q))
    }

    /// Pings per second sent between `earlier` and `self`, `elapsed` apart.
    pub fn pings_per_sec_since(&self, earlier: &Snapshot, elapsed: Duration) -> f64 {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.pings_sent.saturating_sub(earlier.pings_sent) as f64 / secs
    }
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot::new()
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("connections", &self.connections)
            .field("accepted", &self.accepted)
            .field("connected", &self.connected)
            .field("connect_failures", &self.connect_failures)
            .field("pings_sent", &self.pings_sent)
            .field("pongs_received", &self.pongs_received)
            .field("pings_received", &self.pings_received)
            .field("messages_received", &self.messages_received)
            .field("misses", &self.misses)
            .field("dead_silent", &self.dead_silent)
            .field("closed", &self.closed)
            .field("protocol_errors", &self.protocol_errors)
            .field("timer_lateness_max", &self.timer_lateness_max)
            .field("timer_late_runs", &self.timer_late_runs)
            .field("local_pauses", &self.local_pauses)
            .field("memory_bytes", &self.memory_bytes)
            .field("memory_peak", &self.memory_peak)
            .field("reads_paused", &self.reads_paused)
            .field("connections_paused", &self.connections_paused)
            .field("handler_panics", &self.handler_panics)
            .field("loops_failed", &self.loops_failed)
            .field("rtt", &self.rtt())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_report_zero_rtt() {
        let s = Snapshot::new();
        assert_eq!(s.rtt(), RttSummary::default());
        assert_eq!(s.rtt_quantile(0.99), Duration::ZERO);
    }

    #[test]
    fn merge_sums_counters_and_histograms() {
        let mut a = Snapshot::new();
        let mut b = Snapshot::new();
        a.pings_sent = 3;
        b.pings_sent = 4;
        b.closed.missed_pings = 2;
        for ms in 1..=100 {
            a.record_rtt(Duration::from_millis(ms));
        }
        b.record_rtt(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.pings_sent, 7);
        assert_eq!(a.closed.total(), 2);
        let rtt = a.rtt();
        assert_eq!(rtt.count, 101);
        // 101 samples: the median is the 51st, 51 ms, reported within 0.1 %.
        assert!(rtt.p50.abs_diff(Duration::from_millis(51)) <= Duration::from_micros(100));
        assert!(rtt.max.abs_diff(Duration::from_secs(2)) <= Duration::from_millis(2));
    }

    #[test]
    fn huge_rtt_saturates_instead_of_panicking() {
        let mut s = Snapshot::new();
        s.record_rtt(Duration::from_secs(u64::MAX / 2));
        s.record_rtt(Duration::ZERO);
        assert_eq!(s.rtt().count, 2);
    }

    #[test]
    fn rate_is_zero_for_zero_elapsed() {
        let s = Snapshot::new();
        assert_eq!(s.pings_per_sec_since(&s, Duration::ZERO), 0.0);
    }
}
