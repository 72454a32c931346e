//! Tail loss: the last datagrams of a stream are lost and no later data reveals the gap; only
//! the source's heartbeats (SPMs) can.

use crate::link;
use rmcast::sim::{HostId, LinkModel, LossModel, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

/// 100 single-datagram messages; ODATA 95..=99 are dropped on the shared uplink.
#[test]
fn tail_loss() {
    let mut topology = Topology::star(6, link(), link());
    topology.set_link(
        topology.host_uplink(HostId(0)),
        link().loss(LossModel::drop_odata(95..100)),
    );
    let scenario = Scenario::new("tail_loss", topology)
        .send(HostId(0), SendPlan::new(100, Sizes::Fixed(1000)))
        .deadline(Duration::from_millis(500));
    scenario.sweep_checked(100, |report| {
        if report.odata_lost() != 5 {
            return Err(format!(
                "expected exactly the 5 scripted drops, got {}",
                report.odata_lost()
            ));
        }
        Ok(())
    });
}

/// The tail is lost on one receiver's link only, with 5 % loss elsewhere on it.
#[test]
fn tail_loss_one_receiver() {
    let mut topology = Topology::star(4, link(), link());
    let tail = LossModel::scripted(|packet, occurrence| {
        packet.kind == rmcast::sim::PacketKind::Odata
            && occurrence == 0
            && packet.seq_offset.is_some_and(|s| s >= 90)
    });
    topology.set_link(
        topology.host_downlink(HostId(2)),
        LinkModel::new(crate::HOP).loss(tail),
    );
    topology.set_link(topology.host_uplink(HostId(2)), link().bernoulli(0.05));
    let scenario = Scenario::new("tail_loss_one_receiver", topology)
        .send(HostId(0), SendPlan::new(100, Sizes::Fixed(1000)))
        .deadline(Duration::from_millis(500));
    scenario.sweep(60);
}
