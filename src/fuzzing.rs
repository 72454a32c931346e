//! Fuzzing harness bodies, shared by the `fuzz/` targets and by `cargo test` corpus replay.
