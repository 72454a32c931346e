//! Replayability: a run is a function of its seed.

use crate::{HOP, burst};
use rmcast::sim::{HostId, LinkModel, Scenario, Topology};
use std::time::Duration;

#[test]
fn same_seed_same_trace() {
    let leaf = LinkModel::new(HOP)
        .jitter(Duration::from_millis(1))
        .duplicate(0.02)
        .bernoulli(0.05);
    let scenario = Scenario::new(
        "same_seed_same_trace",
        Topology::star(5, LinkModel::new(HOP), leaf),
    )
    .send(HostId(0), burst(150))
    .deadline(Duration::from_secs(3));
    let first = scenario.run(42);
    let second = scenario.run(42);
    let other = scenario.run(43);
    assert!(first.passed(), "{first}");
    assert_eq!(
        first.trace_hash, second.trace_hash,
        "same seed, different trace:\n{first}\n{second}"
    );
    assert_eq!(first.completed_at, second.completed_at);
    assert_eq!(first.naks(), second.naks());
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "different seeds gave identical traces"
    );
}
