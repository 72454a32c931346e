//! Fifty receivers in a two-level tree: correlated loss upstream, independent loss at the
//! leaves, a thousand messages.

use crate::{HOP, link};
use rmcast::sim::{Duplex, HostId, LinkModel, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

#[test]
fn fifty_receivers() {
    let uplink = Duplex {
        to_child: link(),
        to_parent: link().bernoulli(0.01),
    };
    let topology = Topology::tree(
        &[5, 10],
        uplink,
        LinkModel::new(HOP),
        link().bernoulli(0.01),
    );
    assert_eq!(topology.hosts(), 51);
    let scenario = Scenario::new("fifty_receivers", topology)
        .send(
            HostId(0),
            SendPlan::new(1000, Sizes::Uniform { min: 24, max: 2000 }),
        )
        .deadline(Duration::from_secs(5));
    scenario.sweep(5);
}
