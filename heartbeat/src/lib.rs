//! # wheelbeat-heartbeat
//!
//! Keep many long-lived TCP connections alive and find the dead peers among them, within a
//! stated bound, without ever convicting a healthy one.
//!
//! The crate has an I/O-free core and a shell around it:
//!
//! - [`protocol`]: the wire format (JSON `{"ping":N}` / `{"pong":N}`), parsed without
//!   allocating on the heartbeat path.
//! - [`monitor`]: [`Monitor`], the liveness state of every peer on one hierarchical timer wheel
//!   ([`wheelbeat_timer::Wheel`]). It is fed `now` and received frames and returns actions (send
//!   a ping, answer one, close) and events (dead, RTT, missed ping, local pause). It reads no
//!   clock and touches no socket, so it is tested in virtual time.
//! - the loop's endpoint (crate-private, `src/endpoint/`): the second I/O-free level, above the
//!   monitor, in the style of quinn-proto's `Endpoint`. It owns every connection's bookkeeping
//!   (the table, reconnects with backoff and pacing, the one close path with a typed
//!   [`CloseReason`], the statistics, the [`Handler`] calls) and the wire format, fed `now` and
//!   socket events, handing back frames to write, closes and connects. Tested as timelines.
//! - the thin mio driver (`src/driver/`) moves bytes, readiness and `Instant::now()` between
//!   the sockets (through `wheelbeat-net`'s `Ready`, `Acceptor` and `Connection`) and the
//!   endpoint, with every loop turn bounded in bytes and in time ([`Options::turn_budget`]).
//! - the [`shell`]: the public face, [`Server`] and [`Pool`] (one loop thread each, or
//!   several), [`Handle`], [`Handler`], [`Snapshot`], settings checked when built; graceful
//!   drain ([`Handle::drain`]) and statistics a scraper reads without a round trip
//!   ([`Handle::published_stats`]).
//! - `metrics` (cargo feature `metrics`): the Prometheus text of a [`Snapshot`], through
//!   `prometheus-client`.
//!
//! A received frame goes: socket -> driver (codec) -> endpoint (format) -> monitor -> endpoint
//! (a pong to send) -> driver (write queue) -> socket.
//!
//! ## The wire protocol, byte for byte
//!
//! Each frame is one JSON object; the codec frames it (one per line with `LineCodec`, or a
//! length prefix with `LengthCodec`) and caps its size. Another protocol brings its own
//! [`format`](mod@format) (which frames are pings, pongs, data) and, if it needs one, its
//! own framing ([`Framing::custom`], as the `mqtt` example does for MQTT 3.1.1).
//!
//! | bytes                  | meaning                                                          |
//! |------------------------|------------------------------------------------------------------|
//! | `{"ping":N}`           | heartbeat request, `N` an unsigned integer in `0..=18446744073709551615` |
//! | `{"pong":N}`           | answer carrying the same `N`, so the pinger matches it and measures RTT |
//! | `{"goaway":N}`         | the sender is draining and closes the connection within `N` ms: reconnect elsewhere or later, not a failure ([`Handle::drain`]) |
//! | `{"error":"<reason>"}` | sent best effort before a connection is closed for a bad frame   |
//! | any other JSON object  | application data, handed to the application                     |
//!
//! Both sides may ping. An object is a heartbeat (or a going-away notice) only if its one and
//! only key is `ping`, `pong` (or `goaway`) with an integer value in range; `{"ping":-1}`, `{"ping":1.5}`, `{"ping":1,"x":2}` or
//! `{"ping":18446744073709551616}` are application data. Anything that is not valid JSON or not
//! an object is a protocol error: the connection gets `{"error":"invalid json"}` or
//! `{"error":"not a json object"}` and is closed; nothing else is affected. Every received frame
//! is a sign of life (data only if `data_counts_as_liveness`, the default).
//!
//! ## The settings
//!
//! | [`Config`] field          | default | meaning                                               |
//! |---------------------------|---------|-------------------------------------------------------|
//! | `interval`                | 30 s    | ping a peer silent for this long                      |
//! | `timeout`                 | 10 s    | how long a ping waits for its answer; also the local-pause threshold |
//! | `max_missed`              | 3       | unanswered pings in a row before the peer is dead     |
//! | `jitter`                  | 0.1     | each silence window is `interval` ± 10%, drawn per peer per cycle; a new peer's first one is drawn over `(0, interval × 1.1]` |
//! | `data_counts_as_liveness` | true    | a busy connection is never pinged                     |
//! | `seed`                    | 0       | seed of the jitter draws (runs replay exactly)        |
//! | `tick`                    | 10 ms   | wheel resolution: the `+ one tick` of the bound       |
//!
//! Any of `interval`, `timeout`, `max_missed`, `jitter`, `data_counts_as_liveness` can be
//! overridden per peer with [`PeerConfig`].
//!
//! A new peer's **first** silence window is drawn uniformly over `(0, interval × (1 + jitter)]`
//! rather than `interval ± jitter`: peers that connect in a burst (a restart, a reconnect
//! wave) then ping spread over the whole first window instead of all together one interval
//! later, when both sides may still be busy connecting (at 19,000 connections on two cores
//! that burst convicted healthy peers; see `benches/scale/RESULTS.md`). Pinging a
//! just-connected peer early costs one ping; the longest window, and so the bound below, is
//! unchanged. `jitter = 0.0` turns all randomisation off, this spreading included.
//!
//! ## THE BOUND
//!
//! With `handle_timeout` called at `poll_timeout()` (an on-time driver, as in virtual time), a
//! peer silent since `t` is declared dead **no later than**
//!
//! ```text
//! t + interval × (1 + jitter) + max_missed × timeout + one tick
//! ```
//!
//! and a peer that answers every ping within `timeout` of its real send is **never** declared
//! dead, however late the loop runs.
//!
//! A real loop wakes up a little late. If it runs each due timer at most `L` late
//! (`L < timeout`), the verdict comes no later than
//!
//! ```text
//! bound + L_verdict + ceil_tick(L_last_ping)  ≤  bound + L + ceil_tick(L)
//! ```
//!
//! i.e. `bound + L + one tick` for a loop late by less than a tick: the lateness of the
//! verdict's own wake-up, plus that of the wake-up that sent the last ping rounded up to a tick
//! (the last ping's full answer window is measured from its real send). Once, whatever
//! `max_missed` is: lateness and rounding do not accumulate per ping.
//!
//! Why: the silence window is drawn in `interval × (1 ± jitter)` and its end is rounded up to
//! the next tick `G` (never early, less than one tick late). The pings of the cycle are then
//! due on a fixed grid, `G + k × timeout`, and the verdict at `G + max_missed × timeout` —
//! positions that depend on `t` and the draw only, never on when the loop actually ran — except
//! that the verdict also waits until the last ping has been out for a full `timeout` since it
//! really left, which is what makes an answer within `timeout` always arrive in time. A loop
//! stalled for more than `timeout` triggers the **local-pause guard**: the verdicts that fell
//! in the stall are forgiven (fresh ping, fresh full window, the rest of the cycle chained), so
//! a stalled server does not wake up and convict everyone. Timeline tests in
//! `tests/timeline_*.rs` check the bound at its exact edges, with a late loop, and as a
//! property over random settings and random lateness.
//!
//! ## Using the core
//!
//! Per loop turn, in this order: feed every received frame to [`Monitor::handle_message`];
//! when `now >= poll_timeout()`, call [`Monitor::handle_timeout`]; drain
//! [`Monitor::poll_action`] (write pings and pongs, close dead connections) and
//! [`Monitor::poll_event`]; sleep until [`Monitor::poll_timeout`] or I/O. [`sim`] drives
//! monitors the same way in virtual time, for tests and simulations.
//!
//! ## Memory per connection
//!
//! A peer costs its 88-byte slot in the monitor's peer table (with an 8-byte caller tag) plus
//! its one timer in the wheel (24-byte entry, 4-byte generation and a 4-byte list link):
//! [`Monitor::bytes_per_peer`] = **120 bytes**, asserted by a test. Measured as the RSS delta
//! of a monitor holding a million connections, allocator and wheel tables included, it is
//! about 165 bytes per connection (173 at the peak of a run, queues included):
//!
//! ```text
//! cargo run --release -p wheelbeat-heartbeat --example simulate -- --conns 1000000
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod driver;
mod endpoint;
pub mod format;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod monitor;
pub mod protocol;
pub mod shell;
pub mod sim;

pub use monitor::{Action, Config, DeadReason, Event, Monitor, PeerConfig, PeerId, Stats};
pub use protocol::{Message, ProtocolError};
pub use shell::{
    CloseReason, ConnId, ConnInfo, Context, CustomFraming, DEFAULT_HANDSHAKE_TIMEOUT, Framing,
    Handle, Handler, HttpHook, Options, Pool, PoolBuilder, SendAs, SendError, Server,
    ServerBuilder, SettingsError, Snapshot, StartError, TrySendError, UpgradeHook, WsSettings,
};
/// Where a connection is: a TCP address or a Unix socket path (in [`ConnInfo`]).
pub use wheelbeat_net::PeerAddr;
/// TLS configuration (feature `tls`): `wheelbeat-net`'s module, for the builders'
/// `tls` methods ([`ServerBuilder::tls`], [`PoolBuilder::tls`]).
#[cfg(feature = "tls")]
pub use wheelbeat_net::tls;

/// The README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
