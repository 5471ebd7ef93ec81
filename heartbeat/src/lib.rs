//! # wheelbeat-heartbeat
//!
//! (to be written)
#![deny(missing_docs)]
#![forbid(unsafe_code)]
