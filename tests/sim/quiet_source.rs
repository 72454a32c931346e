//! Sources that go quiet: one pauses mid-stream for longer than the heartbeat's ambient
//! interval (and must not be declared lost), one crashes mid-stream (receivers keep what they
//! can, report what they know they lost, and declare it lost).

use crate::{HOP, link};
use rmcast::GroupConfig;
use rmcast::sim::{Action, Delivery, HostId, LinkModel, Pace, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

/// 60 messages, 3 s of silence after the 30th, 10 % loss on receiver links including the
/// messages just before the pause: everything is delivered, and nobody declares the
/// source lost.
#[test]
fn source_goes_quiet() {
    let plan = SendPlan::new(60, Sizes::Uniform { min: 24, max: 3000 })
        .pace(Pace::Every(Duration::from_millis(1)))
        .pause(30, Duration::from_secs(3));
    let scenario = Scenario::new(
        "source_goes_quiet",
        Topology::star(5, link(), link().bernoulli(0.1)),
    )
    .send(HostId(0), plan)
    .deadline(Duration::from_secs(6));
    scenario.sweep(60);
}

/// The source crashes 40 ms into a paced 100 ms stream with 10 % loss on receiver links:
/// every receiver delivers a prefix of the stream with every hole inside it reported
/// `Unrecoverable`, then declares the source lost after its timeout.
#[test]
fn source_crashes_mid_stream() {
    let plan = SendPlan::new(100, Sizes::Uniform { min: 24, max: 3000 })
        .pace(Pace::Every(Duration::from_millis(1)));
    let config = GroupConfig::on_loopback("239.255.0.1:7400".parse().expect("group address"))
        .source_timeout(Duration::from_secs(2));
    let scenario = Scenario::new(
        "source_crashes_mid_stream",
        Topology::star(5, link(), LinkModel::new(HOP).bernoulli(0.1)),
    )
    .config(config)
    .send(HostId(0), plan)
    .at(Duration::from_millis(40), Action::Crash(HostId(0)))
    .delivery(Delivery::CompleteOrReported)
    .deadline(Duration::from_secs(5));
    scenario.sweep_checked(60, |report| {
        let sent = report.hosts[0].messages_sent;
        if !(35..=45).contains(&sent) {
            return Err(format!(
                "the source sent {sent} messages before crashing, expected about 40"
            ));
        }
        Ok(())
    });
}

/// The source hands over its whole stream at once and leaves the group 0.5 ms later, while
/// most of it is still queued: leaving stops new messages only, so everything queued is still
/// sent and repaired despite 10 % loss on receiver links.
#[test]
fn source_leaves_with_data_queued() {
    let scenario = Scenario::new(
        "source_leaves_with_data_queued",
        Topology::star(5, link(), link().bernoulli(0.1)),
    )
    .send(HostId(0), crate::burst(150))
    .at(Duration::from_micros(1500), Action::Leave(HostId(0)))
    .deadline(Duration::from_secs(5));
    scenario.sweep(40);
}
