//! Loss on the source's shared uplink: every drop there cuts off all receivers at once, the
//! correlated loss NAK suppression exists for.

use crate::{burst, link};
use rmcast::sim::{Duplex, HostId, Scenario, Topology};
use std::time::Duration;

/// 5 % loss between the source and the first router, 20 receivers in a two-level tree: all
/// data arrives, and NAK suppression keeps NAKs to at most a quarter of the receivers per
/// loss (every receiver misses every such loss; 400 seeds measured at most 4 NAKs per loss).
#[test]
fn shared_uplink_5pct() {
    let uplink = Duplex {
        to_child: link(),
        to_parent: link().bernoulli(0.05),
    };
    let scenario = Scenario::new(
        "shared_uplink_5pct",
        Topology::tree(&[4, 5], uplink, link(), link()),
    )
    .send(HostId(0), burst(150))
    .deadline(Duration::from_secs(3));
    let summary = scenario.sweep_checked(80, |report| {
        let losses = report.odata_lost().max(1);
        // Without suppression each of the 20 receivers would NAK every loss.
        let naks_per_loss = report.naks() as f64 / losses as f64;
        if naks_per_loss > 5.0 {
            return Err(format!("{naks_per_loss:.1} NAKs per shared loss: suppression is not working ({} NAKs, {losses} losses)", report.naks()));
        }
        Ok(())
    });
    assert!(
        summary.odata_lost > 0,
        "the shared link must lose something over the sweep"
    );
}
