//! The one place in `src/` that reads the real clock.
//!
//! Invariant: every `Instant` handed to the protocol core comes from [`now`], and the engine
//! passes them in non-decreasing order (`Instant` is monotonic), as `Session` requires.

use std::time::Instant;

/// The current instant of the monotonic clock.
#[expect(
    clippy::disallowed_methods,
    reason = "the driver is the only layer allowed to read real time; it injects it into the core"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}
