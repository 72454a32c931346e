//! Bounded rings between application threads and the engine.
