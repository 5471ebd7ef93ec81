//! The default timer and gtimer's package-level functions (`gtimer.Add`, `gtimer.SetTimeout`
//! ...), as a convenience for code ported from Go.
//!
//! Ground rules:
//! - The default timer is a [`Timer`] with the default [`Builder`](super::Builder) settings
//!   (system clock, 1 ms tick, the default worker pool), started lazily by the first call
//!   that needs it, and never closed: its threads live as long as the process. Prefer a
//!   `Timer` of your own where you can own it (tests, libraries, anything that must shut
//!   down cleanly or run in virtual time); the free functions exist so that a port from
//!   gtimer does not have to thread a timer through every call.
//! - Every function returns the [`Entry`], including `set_timeout`, `set_interval` and the
//!   `delay_add*` family, which return nothing in gtimer.
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! let (tx, rx) = mpsc::channel();
//! let tx = std::sync::Mutex::new(tx);
//! wheelbeat_timer::set_timeout(Duration::from_millis(5), move |_| {
//!     tx.lock().unwrap().send("fired").unwrap();
//! });
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("fired"));
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use super::{Entry, EntryOptions, JobContext, Timer};

static DEFAULT: OnceLock<Timer> = OnceLock::new();

/// The process-wide default timer, started on first use and never closed (gtimer's
/// package-level timer). See the [module docs](self) for when to prefer your own.
///
/// # Panics
/// If its threads cannot be spawned (as `std::thread::spawn` does).
pub fn default_timer() -> &'static Timer {
    DEFAULT.get_or_init(Timer::new)
}

/// Runs `job` once, `delay` from now, on the default timer (gtimer's `SetTimeout`; the same
/// as [`add_once`]).
pub fn set_timeout<F>(delay: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add_once(delay, job)
}

/// Runs `job` every `interval`, forever, on the default timer (gtimer's `SetInterval`; the
/// same as [`add`]).
pub fn set_interval<F>(interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add(interval, job)
}

/// [`Timer::add`] on the default timer (gtimer's `Add`).
pub fn add<F>(interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add(interval, job)
}

/// [`Timer::add_once`] on the default timer (gtimer's `AddOnce`).
pub fn add_once<F>(interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add_once(interval, job)
}

/// [`Timer::add_times`] on the default timer (gtimer's `AddTimes`).
pub fn add_times<F>(interval: Duration, times: u64, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add_times(interval, times, job)
}

/// [`Timer::add_singleton`] on the default timer (gtimer's `AddSingleton`).
pub fn add_singleton<F>(interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add_singleton(interval, job)
}

/// [`Timer::add_entry`] on the default timer (gtimer's `AddEntry`).
pub fn add_entry<F>(options: EntryOptions, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().add_entry(options, job)
}

/// [`Timer::delay_add`] on the default timer (gtimer's `DelayAdd`).
pub fn delay_add<F>(delay: Duration, interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().delay_add(delay, interval, job)
}

/// [`Timer::delay_add_once`] on the default timer (gtimer's `DelayAddOnce`).
pub fn delay_add_once<F>(delay: Duration, interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().delay_add_once(delay, interval, job)
}

/// [`Timer::delay_add_times`] on the default timer (gtimer's `DelayAddTimes`).
pub fn delay_add_times<F>(delay: Duration, interval: Duration, times: u64, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().delay_add_times(delay, interval, times, job)
}

/// [`Timer::delay_add_singleton`] on the default timer (gtimer's `DelayAddSingleton`).
pub fn delay_add_singleton<F>(delay: Duration, interval: Duration, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().delay_add_singleton(delay, interval, job)
}

/// [`Timer::delay_add_entry`] on the default timer (gtimer's `DelayAddEntry`).
pub fn delay_add_entry<F>(delay: Duration, options: EntryOptions, job: F) -> Entry
where
    F: Fn(&JobContext<'_>) + Send + Sync + 'static,
{
    default_timer().delay_add_entry(delay, options, job)
}
