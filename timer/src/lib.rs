//! # wheelbeat-timer
//!
//! (crate docs: table of levels, cost of each operation, "coming from gtimer" — to be written)
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod wheel;

pub use clock::TickClock;
pub use wheel::{Advance, Expired, TimerKey, Wheel};
