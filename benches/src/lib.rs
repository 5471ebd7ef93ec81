//! Shared workloads for wheelbeat's benchmarks and the `compare` binary.
