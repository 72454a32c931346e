//! Simulated-network scenarios: the real protocol core (`rmcast::sim::SessionMember`) on a
//! simulated multicast tree, one module per kind of trouble. Every `#[test]` sweeps many seeds
//! through `Scenario::sweep`; a failure prints its seed and the command that replays it
//! (`RMCAST_SIM_SEED=<n> cargo test --features sim --test sim <test>`). `RMCAST_SIM_RUNS=<n>`
//! changes the number of seeds per test; the defaults add up to more than 1,000 runs.

mod aggregation;
mod burst_loss;
mod determinism;
mod fec;
mod independent_loss;
mod many_receivers;
mod no_loss;
mod peer_repair;
mod quiet_source;
mod reorder_dup;
mod session_budget;
mod shared_loss;
mod small_window;
mod suppression;
mod tail_loss;
mod two_sources;

use rmcast::sim::{LinkModel, SendPlan, Sizes};
use std::time::Duration;

/// One-way delay of every simulated link: a LAN-like 1 ms, so a receiver two hops from the
/// source sees a 4 ms round trip.
pub(crate) const HOP: Duration = Duration::from_millis(1);

/// A lossless 1 ms link.
pub(crate) fn link() -> LinkModel {
    LinkModel::new(HOP)
}

/// Message sizes from tiny to several datagrams (the default datagram is 1,400 bytes), so
/// every run exercises fragmentation and reassembly.
pub(crate) const MIXED_SIZES: Sizes = Sizes::Uniform { min: 24, max: 5000 };

/// `messages` mixed-size messages sent as fast as the source accepts them.
pub(crate) fn burst(messages: u32) -> SendPlan {
    SendPlan::new(messages, MIXED_SIZES)
}
