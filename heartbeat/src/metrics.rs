//! Prometheus exposition of a [`Snapshot`] (cargo feature `metrics`), through the
//! `prometheus-client` crate.
//!
//! # Ground rules
//! - A scrape never waits for a loop: encode [`Handle::published_stats`], which each loop
//!   refreshes at most every [`PUBLISH_EVERY`](crate::shell::handle::PUBLISH_EVERY) while it
//!   is busy (see [`Handle::published_stats`]). Calling [`Handle::stats`] instead also works,
//!   at the cost of a round trip through every loop.
//! - Names follow the Prometheus conventions: the `wheelbeat_` prefix, counters end in
//!   `_total`, durations are in seconds (`_seconds`), bytes in `_bytes`. Reasons are labels
//!   (`reason="missed_pings"`), so one family holds them all and new reasons add series, not
//!   names.
//! - Every series is written on every scrape, zeros included, so a rate over it is defined
//!   from the first scrape on.
//! - The RTT histogram is the loops' own (HdrHistogram, three significant digits), folded
//!   into fixed buckets ([`RTT_BUCKETS`]) at scrape time: the hot path records into one
//!   histogram only.
//!
//! | name | type | labels | meaning |
//! |------|------|--------|---------|
//! | `wheelbeat_connections` | gauge | | connections open now |
//! | `wheelbeat_accepted_total` | counter | | inbound connections accepted |
//! | `wheelbeat_connected_total` | counter | | outbound connections established (pools) |
//! | `wheelbeat_connect_failures_total` | counter | | outbound connects that failed (pools) |
//! | `wheelbeat_pings_sent_total` | counter | | pings sent |
//! | `wheelbeat_pings_received_total` | counter | | pings received (each answered) |
//! | `wheelbeat_pongs_received_total` | counter | | pongs that matched a ping (RTT samples) |
//! | `wheelbeat_messages_received_total` | counter | | application frames received |
//! | `wheelbeat_missed_pings_total` | counter | | pings unanswered within `timeout` |
//! | `wheelbeat_dead_total` | counter | `reason` | dead verdicts: `missed_pings` (unanswered pings), `silent` (a passive peer silent for a whole window) |
//! | `wheelbeat_closed_total` | counter | `reason` | closed connections by [`CloseReason`](crate::CloseReason) |
//! | `wheelbeat_protocol_errors_total` | counter | | frames that broke the protocol |
//! | `wheelbeat_write_overflows_total` | counter | | closes because a peer did not read |
//! | `wheelbeat_memory_budget_closes_total` | counter | | closes by the loop memory budget |
//! | `wheelbeat_reads_paused_total` | counter | | connections whose reads the memory budget paused |
//! | `wheelbeat_connections_paused` | gauge | | connections whose reads are paused now |
//! | `wheelbeat_ping_floods_total` | counter | | closes by the ping-flood policy |
//! | `wheelbeat_handler_panics_total` | counter | | handler callbacks that panicked |
//! | `wheelbeat_local_pauses_total` | counter | | loop stalls past `timeout` (verdicts forgiven) |
//! | `wheelbeat_timer_late_runs_total` | counter | | timer runs more than 10 ms late |
//! | `wheelbeat_timer_lateness_max_seconds` | gauge | | the latest a timer ran after it was due |
//! | `wheelbeat_memory_bytes` | gauge | | heap bytes the connections' buffers hold now |
//! | `wheelbeat_memory_peak_bytes` | gauge | | the most one loop has held |
//! | `wheelbeat_loops_failed` | gauge | | loops that ended without being asked to |
//! | `wheelbeat_rtt_seconds` | histogram | | ping round-trip times |
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use wheelbeat_heartbeat::{Server, metrics};
//!
//! let server = Server::builder("127.0.0.1:0".parse().unwrap()).start(|_| ())?;
//! // What a `GET /metrics` answers: the latest published counters of every loop.
//! let text = metrics::encode(&server.handle().published_stats());
//! assert!(text.contains("# TYPE wheelbeat_pings_sent counter"));
//! assert!(text.contains("wheelbeat_pings_sent_total 0"));
//! server.shutdown();
//! # Ok(()) }
//! ```
//!
//! [`Handle::published_stats`]: crate::Handle::published_stats
//! [`Handle::stats`]: crate::Handle::stats

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::shell::Snapshot;

/// The content type of [`encode`]'s output, for an HTTP `Content-Type` header (the
/// OpenMetrics text format, which Prometheus reads, as does its classic text parser).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the RTT histogram's buckets, in seconds (`+Inf` is added): from 100 µs,
/// a LAN round trip, to 10 s, the default heartbeat `timeout`.
pub const RTT_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The Prometheus text (OpenMetrics) of `s`; see the [module docs](self) for the names.
pub fn encode(s: &Snapshot) -> String {
    let mut r = Registry::with_prefix("wheelbeat");
    let counter = |r: &mut Registry, name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    let gauge = |r: &mut Registry, name: &str, help: &str, v: u64| {
        r.register(
            name,
            help,
            ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)),
        );
    };
    gauge(&mut r, "connections", "Connections open now", s.connections);
    counter(
        &mut r,
        "accepted",
        "Inbound connections accepted",
        s.accepted,
    );
    counter(
        &mut r,
        "connected",
        "Outbound connections established",
        s.connected,
    );
    counter(
        &mut r,
        "connect_failures",
        "Outbound connects that failed or timed out",
        s.connect_failures,
    );
    counter(&mut r, "pings_sent", "Pings sent", s.pings_sent);
    counter(
        &mut r,
        "pings_received",
        "Pings received from peers (each answered)",
        s.pings_received,
    );
    counter(
        &mut r,
        "pongs_received",
        "Pongs received that matched an outstanding ping",
        s.pongs_received,
    );
    counter(
        &mut r,
        "messages_received",
        "Application frames received",
        s.messages_received,
    );
    counter(
        &mut r,
        "missed_pings",
        "Pings not answered within the timeout",
        s.misses,
    );

    r.register(
        "dead",
        "Peers declared dead by the heartbeat monitor, by reason",
        Labelled(vec![
            (
                "missed_pings",
                s.closed.missed_pings.saturating_sub(s.dead_silent),
            ),
            ("silent", s.dead_silent),
        ]),
    );
    let c = &s.closed;
    r.register(
        "closed",
        "Connections closed, by reason",
        Labelled(vec![
            ("missed_pings", c.missed_pings),
            ("peer_closed", c.peer_closed),
            ("protocol_error", c.protocol_error),
            ("write_overflow", c.write_overflow),
            ("io_error", c.io_error),
            ("handler_panicked", c.handler_panicked),
            ("memory_budget", c.memory_budget),
            ("paused_too_long", c.paused_too_long),
            ("too_many_pings", c.too_many_pings),
            ("go_away", c.go_away),
            ("drain_timeout", c.drain_timeout),
            ("local", c.local),
        ]),
    );
    counter(
        &mut r,
        "protocol_errors",
        "Frames that broke the protocol (each closed its connection)",
        s.protocol_errors,
    );
    counter(
        &mut r,
        "write_overflows",
        "Connections closed because the peer did not read (write queue full)",
        c.write_overflow,
    );
    counter(
        &mut r,
        "memory_budget_closes",
        "Connections closed by the loop memory budget",
        c.memory_budget,
    );
    counter(
        &mut r,
        "reads_paused",
        "Connections whose reads the loop memory budget paused",
        s.reads_paused,
    );
    gauge(
        &mut r,
        "connections_paused",
        "Connections whose reads are paused by the loop memory budget now",
        s.connections_paused,
    );
    counter(
        &mut r,
        "ping_floods",
        "Connections closed by the ping-flood policy",
        c.too_many_pings,
    );
    counter(
        &mut r,
        "handler_panics",
        "Handler callbacks that panicked",
        s.handler_panics,
    );
    counter(
        &mut r,
        "local_pauses",
        "Loop stalls longer than the heartbeat timeout (verdicts in the gap forgiven)",
        s.local_pauses,
    );
    counter(
        &mut r,
        "timer_late_runs",
        "Timer runs more than 10 ms after they were due",
        s.timer_late_runs,
    );
    r.register_with_unit(
        "timer_lateness_max",
        "The latest the loop ran its timers after they were due",
        Unit::Seconds,
        Seconds(s.timer_lateness_max),
    );
    r.register_with_unit(
        "memory",
        "Heap bytes held by the connections' buffers now",
        Unit::Bytes,
        ConstGauge::new(i64::try_from(s.memory_bytes).unwrap_or(i64::MAX)),
    );
    r.register_with_unit(
        "memory_peak",
        "The most heap bytes one loop's connections have held",
        Unit::Bytes,
        ConstGauge::new(i64::try_from(s.memory_peak).unwrap_or(i64::MAX)),
    );
    gauge(
        &mut r,
        "loops_failed",
        "Event loops that ended without being asked to",
        s.loops_failed,
    );
    r.register_with_unit(
        "rtt",
        "Ping round-trip times",
        Unit::Seconds,
        RttHistogram::of(s),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

/// A counter family with one series per `reason` label, fixed values.
#[derive(Debug)]
struct Labelled(Vec<(&'static str, u64)>);

impl EncodeMetric for Labelled {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        for (reason, v) in &self.0 {
            let labels = [("reason", *reason)];
            let e = encoder.encode_family(&labels)?;
            ConstCounter::new(*v).encode(e)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// A gauge in seconds.
#[derive(Debug)]
struct Seconds(Duration);

impl EncodeMetric for Seconds {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.encode_gauge(&self.0.as_secs_f64())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// The loops' RTT histogram folded into [`RTT_BUCKETS`].
#[derive(Debug)]
struct RttHistogram {
    sum: f64,
    count: u64,
    /// `(upper bound, samples in this bucket only)`; the encoder accumulates.
    buckets: Vec<(f64, u64)>,
}

impl RttHistogram {
    fn of(s: &Snapshot) -> RttHistogram {
        let mut buckets: Vec<(f64, u64)> = RTT_BUCKETS.iter().map(|&b| (b, 0)).collect();
        buckets.push((f64::MAX, 0));
        let mut sum = 0.0;
        let mut count = 0;
        for (micros, n) in s.rtt_samples() {
            let secs = micros as f64 / 1e6;
            sum += secs * n as f64;
            count += n;
            // The first bucket whose bound holds the sample; `+Inf` holds everything.
            let i = RTT_BUCKETS.partition_point(|&b| b < secs);
            buckets[i].1 += n;
        }
        RttHistogram {
            sum,
            count,
            buckets,
        }
    }
}

impl EncodeMetric for RttHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one line starting with `series ` in `text`.
    fn value(text: &str, series: &str) -> f64 {
        let prefix = format!("{series} ");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(lines.len(), 1, "{series} in:\n{text}");
        lines[0][prefix.len()..].trim().parse().unwrap()
    }

    #[test]
    fn the_exposition_names_every_counter_with_its_value_and_the_rtt_buckets() {
        let mut s = Snapshot::new();
        s.connections = 3;
        s.pings_sent = 7;
        s.protocol_errors = 2;
        s.closed.missed_pings = 4;
        s.dead_silent = 1;
        s.closed.go_away = 5;
        s.closed.too_many_pings = 1;
        s.local_pauses = 6;
        s.timer_lateness_max = Duration::from_millis(1500);
        s.memory_bytes = 4096;
        s.reads_paused = 9;
        s.connections_paused = 2;
        s.closed.paused_too_long = 3;
        // 2 ms, 3 ms (bucket le=0.005), 20 ms (le=0.025), 20 s (+Inf).
        for ms in [2, 3, 20, 20_000] {
            s.record_rtt(Duration::from_millis(ms));
        }
        let t = encode(&s);
        assert!(t.contains("# TYPE wheelbeat_pings_sent counter"), "{t}");
        assert_eq!(value(&t, "wheelbeat_connections"), 3.0);
        assert_eq!(value(&t, "wheelbeat_pings_sent_total"), 7.0);
        assert_eq!(value(&t, "wheelbeat_protocol_errors_total"), 2.0);
        assert_eq!(
            value(&t, r#"wheelbeat_dead_total{reason="missed_pings"}"#),
            3.0
        );
        assert_eq!(value(&t, r#"wheelbeat_dead_total{reason="silent"}"#), 1.0);
        assert_eq!(
            value(&t, r#"wheelbeat_closed_total{reason="missed_pings"}"#),
            4.0
        );
        assert_eq!(
            value(&t, r#"wheelbeat_closed_total{reason="go_away"}"#),
            5.0
        );
        assert_eq!(
            value(&t, r#"wheelbeat_closed_total{reason="drain_timeout"}"#),
            0.0
        );
        assert_eq!(value(&t, "wheelbeat_ping_floods_total"), 1.0);
        assert_eq!(value(&t, "wheelbeat_local_pauses_total"), 6.0);
        assert_eq!(value(&t, "wheelbeat_timer_lateness_max_seconds"), 1.5);
        assert_eq!(value(&t, "wheelbeat_memory_bytes"), 4096.0);
        assert_eq!(value(&t, "wheelbeat_reads_paused_total"), 9.0);
        assert_eq!(value(&t, "wheelbeat_connections_paused"), 2.0);
        assert_eq!(
            value(&t, r#"wheelbeat_closed_total{reason="paused_too_long"}"#),
            3.0
        );
        assert!(t.contains("# TYPE wheelbeat_rtt_seconds histogram"), "{t}");
        assert_eq!(value(&t, "wheelbeat_rtt_seconds_count"), 4.0);
        // Cumulative buckets; the histogram keeps three significant digits.
        assert_eq!(
            value(&t, r#"wheelbeat_rtt_seconds_bucket{le="0.0025"}"#),
            1.0
        );
        assert_eq!(
            value(&t, r#"wheelbeat_rtt_seconds_bucket{le="0.005"}"#),
            2.0
        );
        assert_eq!(
            value(&t, r#"wheelbeat_rtt_seconds_bucket{le="0.025"}"#),
            3.0
        );
        assert_eq!(value(&t, r#"wheelbeat_rtt_seconds_bucket{le="10.0"}"#), 3.0);
        assert_eq!(value(&t, r#"wheelbeat_rtt_seconds_bucket{le="+Inf"}"#), 4.0);
        let sum = value(&t, "wheelbeat_rtt_seconds_sum");
        assert!((sum - 20.025).abs() < 0.03, "{sum}");
        assert!(t.trim_end().ends_with("# EOF"));
    }
}
