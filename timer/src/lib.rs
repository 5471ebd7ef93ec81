//! # wheelbeat-timer
//!
//! (crate docs: table of levels, cost of each operation — to be written)
//!
#![doc = include_str!("../docs/coming-from-gtimer.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod service;
pub mod wheel;

pub use clock::TickClock;
pub use wheel::{Advance, Expired, TimerKey, Wheel};
