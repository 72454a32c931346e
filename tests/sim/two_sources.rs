//! Two members send at once; everyone (the other source included) receives both streams
//! completely despite 5 % independent loss.

use crate::{burst, link};
use rmcast::sim::{HostId, Scenario, Topology};
use std::time::Duration;

#[test]
fn two_sources_at_once() {
    // Host 0 hangs off the root router; host 7 is a leaf under the third inner router.
    let topology = Topology::tree(&[3, 3], link(), link(), link().bernoulli(0.05));
    let scenario = Scenario::new("two_sources_at_once", topology)
        .send(HostId(0), burst(80))
        .send(HostId(7), burst(80))
        .deadline(Duration::from_secs(5));
    scenario.sweep(50);
}
