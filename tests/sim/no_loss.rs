//! A perfect network: everything arrives once, in order, with no recovery traffic at all.

use crate::{burst, link};
use rmcast::sim::{HostId, Pace, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

/// One source, ten receivers, a burst of mixed-size messages: delivered without a single NAK
/// or repair, well within 100 ms of virtual time.
#[test]
fn no_loss() {
    let scenario = Scenario::new("no_loss", Topology::star(10, link(), link()))
        .send(HostId(0), burst(120))
        .deadline(Duration::from_millis(100));
    scenario.sweep_checked(100, |report| {
        if report.naks() + report.rdata() + report.ncfs() > 0 {
            return Err(format!(
                "a lossless network needed {} NAKs, {} NCFs, {} RDATA",
                report.naks(),
                report.ncfs(),
                report.rdata()
            ));
        }
        Ok(())
    });
}

/// A two-level tree with a paced source: the same, over more hops and a longer stream.
#[test]
fn no_loss_tree() {
    let plan = SendPlan::new(200, Sizes::Uniform { min: 24, max: 3000 })
        .pace(Pace::Every(Duration::from_micros(250)));
    let scenario = Scenario::new(
        "no_loss_tree",
        Topology::tree(&[3, 4], link(), link(), link()),
    )
    .send(HostId(0), plan)
    .deadline(Duration::from_millis(100));
    scenario.sweep_checked(60, |report| {
        if report.naks() > 0 {
            return Err(format!("a lossless network needed {} NAKs", report.naks()));
        }
        Ok(())
    });
}
