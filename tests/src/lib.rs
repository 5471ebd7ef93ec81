//! Whole-system and fault tests for wheelbeat live under `tests/tests/`.
