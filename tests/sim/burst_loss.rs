//! Bursty loss: runs of consecutive datagrams vanish, on the shared uplink and on one
//! receiver's link. Bursts are timed (`LossModel::timed_bursts`), so a repair sent long after a
//! burst is not lost to the same burst.

use crate::{burst, link};
use rmcast::sim::{Duplex, HostId, LossModel, Scenario, Topology};
use std::time::Duration;

/// 3 % loss in bursts of 100 µs (about nine back-to-back datagrams at the default 1 Gbit/s)
/// on the uplink, 5 % in bursts of 50 µs on receiver 1's link.
#[test]
fn burst_loss() {
    let uplink = Duplex {
        to_child: link(),
        to_parent: link().loss(LossModel::timed_bursts(0.03, Duration::from_micros(100))),
    };
    let mut topology = Topology::star(6, uplink, link());
    topology.set_link(
        topology.host_downlink(HostId(1)),
        link().loss(LossModel::timed_bursts(0.05, Duration::from_micros(50))),
    );
    let scenario = Scenario::new("burst_loss", topology)
        .send(HostId(0), burst(200))
        .deadline(Duration::from_secs(5));
    let summary = scenario.sweep(100);
    assert!(
        summary.odata_lost > 0,
        "bursts must lose data over the sweep: {summary}"
    );
}
