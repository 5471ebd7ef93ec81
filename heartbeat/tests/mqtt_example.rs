//! The MQTT example's unit tests (its packets, broker and format), run by `cargo test`.
//!
//! The example is built as a plain binary, which `examples.rs` starts as a process; an example
//! built as a test harness instead (`test = true`) would not be there for it. So its modules are
//! compiled here a second time, as a test, and their `#[cfg(test)]` tests run.

#[allow(dead_code)]
#[path = "../examples/mqtt/main.rs"]
mod mqtt;
