//! Whole-system and fault tests for wheelbeat live under `tests/tests/`.
//!
//! This library is empty but for one thing: it compiles the code blocks of the workspace's
//! top-level `README.md` as doctests, so the README's examples cannot rot.

/// The top-level `README.md`, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
