//! # wheelbeat-net
//!
//! (to be written)
#![deny(missing_docs)]
