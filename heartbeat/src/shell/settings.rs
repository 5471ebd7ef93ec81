//! Checking every setting when a [`Server`](crate::Server) or [`Pool`](crate::Pool) is built,
//! so that a bad value is a typed error returned to the caller, never a panic on a loop thread
//! later (an overflowing `Instant`, a gigantic buffer).
//!
//! # Ground rules
//! - Each variant of [`SettingsError`] names the one setting that is wrong.
//! - The limits are far above any sane value; they only keep arithmetic and allocations of
//!   the loops away from overflow.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::monitor::ConfigError;

use super::{Framing, Options};

/// Largest accepted `max_frame_len`: 16 MiB. A loop's read buffer is this plus 64 KiB.
pub const MAX_FRAME_LEN_LIMIT: usize = 16 * 1024 * 1024;

/// Longest accepted duration setting (connect timeout, backoff): one day.
pub const DURATION_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// A setting of a [`Server`](crate::Server) or [`Pool`](crate::Pool) is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingsError {
    /// The heartbeat settings ([`Options::heartbeat`]) are invalid.
    Heartbeat(ConfigError),
    /// `max_frame_len` is 0 or over [`MAX_FRAME_LEN_LIMIT`].
    MaxFrameLen(usize),
    /// `read_budget` is 0.
    ReadBudget,
    /// `memory_budget` is smaller than one connection's worth (`write_cap` plus two frames of
    /// `max_frame_len`).
    MemoryBudget(usize),
    /// `turn_budget` is zero or over one second.
    TurnBudget(Duration),
    /// `write_cap` is smaller than one frame of `max_frame_len` bytes could ever need, or over
    /// 4 GiB.
    WriteCap(usize),
    /// The watermarks are not `low < high <= write_cap`.
    Watermarks(usize, usize),
    /// `command_capacity` is 0.
    CommandCapacity,
    /// `events_capacity` is 0.
    EventsCapacity,
    /// `connect_timeout` is zero or over [`DURATION_LIMIT`].
    ConnectTimeout(Duration),
    /// `connect_rate` is `Some(0)` (use `None` for no limit).
    ConnectRate,
    /// `handshake_timeout` is zero or over [`DURATION_LIMIT`].
    HandshakeTimeout(Duration),
    /// The pool's backoff: `initial` zero, or either over [`DURATION_LIMIT`].
    Backoff(Duration, Duration),
    /// A WebSocket setting ([`Options::websocket`]) is out of range: which one.
    WebSocket(&'static str),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Heartbeat(e) => write!(f, "heartbeat: {e}"),
            SettingsError::WebSocket(what) => write!(f, "websocket: {what}"),
            SettingsError::MaxFrameLen(n) => {
                write!(f, "max_frame_len {n} not in 1..={MAX_FRAME_LEN_LIMIT}")
            }
            SettingsError::ReadBudget => f.write_str("read_budget must be at least 1"),
            SettingsError::MemoryBudget(n) => {
                write!(
                    f,
                    "memory_budget {n} is less than one connection's write_cap + 2 frames"
                )
            }
            SettingsError::TurnBudget(d) => write!(f, "turn_budget {d:?} not in (0, 1s]"),
            SettingsError::WriteCap(n) => {
                write!(
                    f,
                    "write_cap {n} cannot hold one frame of max_frame_len, or is over 4 GiB"
                )
            }
            SettingsError::Watermarks(l, h) => {
                write!(
                    f,
                    "write watermarks (low {l}, high {h}) must be low < high <= write_cap"
                )
            }
            SettingsError::CommandCapacity => f.write_str("command_capacity must be at least 1"),
            SettingsError::EventsCapacity => f.write_str("events_capacity must be at least 1"),
            SettingsError::ConnectTimeout(d) => {
                write!(f, "connect_timeout {d:?} not in (0, {DURATION_LIMIT:?}]")
            }
            SettingsError::ConnectRate => f.write_str("connect_rate must be at least 1 per second"),
            SettingsError::HandshakeTimeout(d) => {
                write!(f, "handshake_timeout {d:?} not in (0, {DURATION_LIMIT:?}]")
            }
            SettingsError::Backoff(i, m) => {
                write!(
                    f,
                    "backoff ({i:?}, {m:?}): initial must be non-zero, both at most {DURATION_LIMIT:?}"
                )
            }
        }
    }
}

impl std::error::Error for SettingsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SettingsError::Heartbeat(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`ServerBuilder::start`](crate::ServerBuilder::start) or
/// [`PoolBuilder::start`](crate::PoolBuilder::start) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is out of range; nothing was started.
    Settings(SettingsError),
    /// Binding, or creating a poll or a thread, failed.
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Settings(e) => write!(f, "invalid setting: {e}"),
            StartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Settings(e) => Some(e),
            StartError::Io(e) => Some(e),
        }
    }
}

impl From<SettingsError> for StartError {
    fn from(e: SettingsError) -> Self {
        StartError::Settings(e)
    }
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// So that `start(..)?` keeps working in functions returning `io::Result`: a bad setting
/// becomes `InvalidInput` carrying the [`SettingsError`].
impl From<StartError> for io::Error {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Settings(s) => io::Error::new(io::ErrorKind::InvalidInput, s),
            StartError::Io(e) => e,
        }
    }
}

fn duration_ok(d: Duration) -> bool {
    !d.is_zero() && d <= DURATION_LIMIT
}

impl Options {
    /// Checks every setting; see [`SettingsError`] for the ranges.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.heartbeat
            .validate()
            .map_err(SettingsError::Heartbeat)?;
        if self.max_frame_len == 0 || self.max_frame_len > MAX_FRAME_LEN_LIMIT {
            return Err(SettingsError::MaxFrameLen(self.max_frame_len));
        }
        if self.read_budget == 0 {
            return Err(SettingsError::ReadBudget);
        }
        if self.turn_budget.is_zero() || self.turn_budget > Duration::from_secs(1) {
            return Err(SettingsError::TurnBudget(self.turn_budget));
        }
        // One frame of `max_frame_len`, its framing (at least room for a 4-byte prefix or a
        // newline; what a custom framing adds if more) and the queue's per-frame bookkeeping
        // must fit, or the largest legal frame could never be sent.
        let framed = (self.max_frame_len + 4).max(self.framing.encoded_len(self.max_frame_len));
        let one_frame = framed.saturating_add(wheelbeat_net::FRAME_OVERHEAD);
        if self.write_cap < one_frame || u32::try_from(self.write_cap).is_err() {
            return Err(SettingsError::WriteCap(self.write_cap));
        }
        if self.memory_budget < self.write_cap.saturating_add(2 * self.max_frame_len) {
            return Err(SettingsError::MemoryBudget(self.memory_budget));
        }
        let (low, high) = self.watermarks();
        if low >= high || high > self.write_cap {
            return Err(SettingsError::Watermarks(low, high));
        }
        if self.command_capacity == 0 {
            return Err(SettingsError::CommandCapacity);
        }
        if self.events_capacity == 0 {
            return Err(SettingsError::EventsCapacity);
        }
        if !duration_ok(self.connect_timeout) {
            return Err(SettingsError::ConnectTimeout(self.connect_timeout));
        }
        if !duration_ok(self.handshake_timeout) {
            return Err(SettingsError::HandshakeTimeout(self.handshake_timeout));
        }
        if self.connect_rate == Some(0) {
            return Err(SettingsError::ConnectRate);
        }
        if self.framing == Framing::WebSocket {
            let ws = &self.websocket;
            if ws.max_message_len == 0 || u32::try_from(ws.max_message_len).is_err() {
                return Err(SettingsError::WebSocket("max_message_len not in 1..4 GiB"));
            }
            if !duration_ok(ws.handshake_timeout) {
                return Err(SettingsError::WebSocket(
                    "handshake_timeout zero or over a day",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a pool's backoff settings.
pub(crate) fn validate_backoff(initial: Duration, max: Duration) -> Result<(), SettingsError> {
    if !duration_ok(initial) || max > DURATION_LIMIT {
        return Err(SettingsError::Backoff(initial, max));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards issue 8's "bad settings panic late, on the loop thread": each is refused up
    /// front, naming the setting.
    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let ok = Options::default();
        assert_eq!(ok.validate(), Ok(()));
        let mut o = ok.clone();
        o.max_frame_len = usize::MAX;
        assert_eq!(o.validate(), Err(SettingsError::MaxFrameLen(usize::MAX)));
        let mut o = ok.clone();
        o.handshake_timeout = Duration::ZERO;
        assert_eq!(
            o.validate(),
            Err(SettingsError::HandshakeTimeout(Duration::ZERO))
        );
        let mut o = ok.clone();
        o.connect_timeout = Duration::MAX;
        assert_eq!(
            o.validate(),
            Err(SettingsError::ConnectTimeout(Duration::MAX))
        );
        let mut o = ok.clone();
        o.write_cap = 10;
        assert_eq!(o.validate(), Err(SettingsError::WriteCap(10)));
        let mut o = ok.clone();
        o.heartbeat.max_missed = 0;
        assert_eq!(
            o.validate(),
            Err(SettingsError::Heartbeat(ConfigError::ZeroMaxMissed))
        );
        let mut o = ok;
        o.connect_rate = Some(0);
        assert_eq!(o.validate(), Err(SettingsError::ConnectRate));
        assert!(validate_backoff(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(validate_backoff(Duration::from_millis(1), Duration::MAX).is_err());
        // The default watermarks follow the write cap, so a smaller cap needs no more.
        let mut o = Options {
            write_cap: 256 * 1024,
            ..Options::default()
        };
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(o.watermarks(), (16 * 1024, 128 * 1024));
        o.write_high_watermark = Some(512 * 1024);
        assert_eq!(
            o.validate(),
            Err(SettingsError::Watermarks(16 * 1024, 512 * 1024))
        );
        let io: io::Error = StartError::from(SettingsError::ReadBudget).into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    }
}
