//! Settings of a [`Monitor`](super::Monitor) and their per-peer overrides.
//!
//! Ground rules:
//! - [`Config`] holds the defaults for every peer; [`PeerConfig`] overrides any of them for one
//!   peer ([`Monitor::add_with`](super::Monitor::add_with)).
//! - Durations are kept by the monitor as whole ticks: `interval` and `timeout` are rounded
//!   **up** to a multiple of [`Config::tick`], so a window is never shorter than configured.
//!   Choose them as multiples of the tick to have them exact.

use std::time::Duration;

/// Settings shared by every peer of a [`Monitor`](super::Monitor).
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::monitor::Config;
///
/// let config = Config {
///     interval: Duration::from_secs(1),
///     timeout: Duration::from_millis(500),
///     ..Config::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Ping a peer that has been silent for this long (± `jitter`). Default 30 s.
    pub interval: Duration,
    /// The spacing of a silent peer's pings (on a fixed grid), and the least time the last ping
    /// of a cycle waits for its answer after it really left. Default 10 s. Also the threshold
    /// of the local-pause guard.
    pub timeout: Duration,
    /// Unanswered pings in a row after which the peer is dead. Default 3.
    pub max_missed: u32,
    /// Fraction of `interval` by which each silence window is randomly shortened or
    /// lengthened, drawn per peer per cycle: 0.1 means uniform in ±10%. A new peer's first
    /// window is drawn over `(0, interval × (1 + jitter)]` instead, so that peers connecting
    /// together do not ping together; 0.0 turns every draw off (exact windows). In `0.0..1.0`.
    /// Default 0.1.
    pub jitter: f64,
    /// Whether application data (frames that are not ping/pong) counts as a sign of life.
    /// With it (the default) a busy connection is never pinged. Pings and pongs always count.
    pub data_counts_as_liveness: bool,
    /// Most pings a peer may send in one silence cycle (about one `interval`) before it earns
    /// a strike; 0 turns the ping-flood policy off. Default 256: a peer pinging on a schedule
    /// of its own sends one per its interval, so only a peer whose interval is over 256 times
    /// shorter than ours, or a flood, reaches it. See [`max_ping_strikes`](Self::max_ping_strikes).
    pub max_pings_per_interval: u16,
    /// Strikes after which a ping-flooding peer is refused ([`Action::PingFlood`]: the shell
    /// sends its format's "too many pings" error and closes the connection), as gRPC servers
    /// answer `too_many_pings`. A cycle without a strike clears them. Default 2, at least 1.
    ///
    /// [`Action::PingFlood`]: super::Action::PingFlood
    pub max_ping_strikes: u8,
    /// Seed of the jitter draws (a hash of the seed, the peer and its last sign of life), so a
    /// run can be replayed exactly. Default 0.
    pub seed: u64,
    /// Resolution of the timer wheel. With an on-time driver every verdict happens within one
    /// tick after its exact time (the `+ one tick` of the bound); a smaller tick costs more
    /// wake-ups when timers are spread out. Default 10 ms.
    pub tick: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            max_missed: 3,
            jitter: 0.1,
            data_counts_as_liveness: true,
            max_pings_per_interval: 256,
            max_ping_strikes: 2,
            seed: 0,
            tick: Duration::from_millis(10),
        }
    }
}

impl Config {
    /// Checks the settings: non-zero `tick`, `interval` and `timeout`, `max_missed >= 1`,
    /// `jitter` in `0.0..1.0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tick.is_zero() {
            return Err(ConfigError::ZeroTick);
        }
        if u64::try_from(self.tick.as_nanos()).is_err() {
            return Err(ConfigError::TooLong);
        }
        if self.max_ping_strikes == 0 {
            return Err(ConfigError::ZeroPingStrikes);
        }
        self.settings_check(self.interval, self.timeout, self.max_missed, self.jitter)
    }

    fn settings_check(
        &self,
        interval: Duration,
        timeout: Duration,
        max_missed: u32,
        jitter: f64,
    ) -> Result<(), ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        if timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        if max_missed == 0 {
            return Err(ConfigError::ZeroMaxMissed);
        }
        // Written so that NaN fails too.
        if !(0.0..1.0).contains(&jitter) {
            return Err(ConfigError::Jitter);
        }
        // Keep every deadline computation far from u64 overflow: 2^62 ns is ~146 years.
        let limit = Duration::from_nanos(1 << 62);
        if interval > limit || timeout > limit {
            return Err(ConfigError::TooLong);
        }
        Ok(())
    }

    /// Checks `peer`'s overrides on top of these defaults.
    pub fn validate_peer(&self, peer: &PeerConfig) -> Result<(), ConfigError> {
        self.settings_check(
            peer.interval.unwrap_or(self.interval),
            peer.timeout.unwrap_or(self.timeout),
            peer.max_missed.unwrap_or(self.max_missed),
            peer.jitter.unwrap_or(self.jitter),
        )
    }
}

/// Overrides of [`Config`] for one peer; `None` keeps the monitor's setting.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::monitor::PeerConfig;
///
/// // A peer on a slow link: give it more time to answer.
/// let slow = PeerConfig { timeout: Some(Duration::from_secs(30)), ..PeerConfig::default() };
/// # let _ = slow;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerConfig {
    /// Overrides [`Config::interval`].
    pub interval: Option<Duration>,
    /// Overrides [`Config::timeout`].
    pub timeout: Option<Duration>,
    /// Overrides [`Config::max_missed`].
    pub max_missed: Option<u32>,
    /// Overrides [`Config::jitter`].
    pub jitter: Option<f64>,
    /// Overrides [`Config::data_counts_as_liveness`].
    pub data_counts_as_liveness: Option<bool>,
    /// Passive mode for this peer (default off): it is never pinged, and a silence of a whole
    /// `interval` (exactly: `jitter` does not apply) is the verdict,
    /// [`DeadReason::Silent`](super::DeadReason::Silent). For protocols whose keep-alive the
    /// client drives (MQTT's server side, Netty's reader-idle). Pings it sends are still
    /// answered. The bound: a peer silent since `t` is dead no later than
    /// `t + interval + one tick` (plus the loop's lateness), and never before `t + interval`.
    pub passive: Option<bool>,
}

/// An invalid [`Config`] or [`PeerConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `tick` is zero.
    ZeroTick,
    /// `interval` is zero.
    ZeroInterval,
    /// `timeout` is zero.
    ZeroTimeout,
    /// `max_missed` is zero.
    ZeroMaxMissed,
    /// `jitter` is not in `0.0..1.0`.
    Jitter,
    /// A duration is too long to be counted in nanoseconds (over ~146 years).
    TooLong,
    /// `max_ping_strikes` is zero (set `max_pings_per_interval` to 0 to turn the policy off).
    ZeroPingStrikes,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfigError::ZeroTick => "tick must be non-zero",
            ConfigError::ZeroInterval => "interval must be non-zero",
            ConfigError::ZeroTimeout => "timeout must be non-zero",
            ConfigError::ZeroMaxMissed => "max_missed must be at least 1",
            ConfigError::Jitter => "jitter must be in 0.0..1.0",
            ConfigError::TooLong => "duration too long",
            ConfigError::ZeroPingStrikes => "max_ping_strikes must be at least 1",
        })
    }
}

impl std::error::Error for ConfigError {}
