//! Reordering (jitter far larger than the gap between datagrams) and duplication, with a
//! little loss: delivery stays in order and exactly once.

use crate::{HOP, burst};
use rmcast::sim::{HostId, LinkModel, Scenario, Topology};
use std::time::Duration;

#[test]
fn reorder_and_duplication() {
    let leaf = LinkModel::new(HOP)
        .jitter(Duration::from_millis(2))
        .duplicate(0.05)
        .bernoulli(0.01);
    let source = LinkModel::new(HOP)
        .jitter(Duration::from_micros(500))
        .duplicate(0.02);
    let scenario = Scenario::new("reorder_and_duplication", Topology::star(6, source, leaf))
        .send(HostId(0), burst(150))
        .deadline(Duration::from_secs(3));
    scenario.sweep_checked(100, |report| {
        if report.total(|s| s.recovery.duplicates) == 0 {
            return Err("duplicated links produced no duplicate at any receiver".into());
        }
        Ok(())
    });
}
