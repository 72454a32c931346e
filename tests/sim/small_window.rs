//! A transmit window deliberately too small for the loss: some data leaves the window before
//! it can be repaired. Losses are allowed, but only reported ones — never a silent hole.

use crate::link;
use rmcast::GroupConfig;
use rmcast::sim::{Delivery, HostId, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

#[test]
fn window_too_small() {
    let config = GroupConfig::on_loopback("239.255.0.1:7400".parse().expect("group address"))
        .max_message_len(4000)
        .window(32, 32 * 1400, Duration::from_secs(60));
    let scenario = Scenario::new(
        "window_too_small",
        Topology::star(6, link(), link().bernoulli(0.3)),
    )
    .config(config)
    .send(
        HostId(0),
        SendPlan::new(300, Sizes::Uniform { min: 24, max: 4000 }),
    )
    .delivery(Delivery::CompleteOrReported)
    .deadline(Duration::from_secs(10));
    let summary = scenario.sweep(50);
    assert!(
        summary.lost_messages > 0,
        "a 32-packet window under 30 % loss must lose something: {summary}"
    );
}
