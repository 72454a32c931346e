//! The source's aggregation window: NAKs of one loss that reach the source nearly together are
//! confirmed at once and answered by one RDATA after a short, RTT-scaled window.
//!
//! A star of 40 receivers 4 ms from the source (RTT 8 ms, window 0.5 ms) with 2 % loss on the
//! shared uplink: every receiver misses every lost packet, and the first losses of a stream —
//! before any receiver became the designated requester — draw several NAKs each.

use rmcast::sim::{
    HostId, LinkModel, Pace, Scenario, SendPlan, SessionMember, Sizes, Strategy, Topology,
};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn near_simultaneous_naks_are_answered_by_one_rdata() {
    let mut topology = Topology::star(40, LinkModel::new(2 * MS), LinkModel::new(2 * MS));
    let up = topology.host_uplink(HostId(0));
    let lossy = topology.link(up).clone().bernoulli(0.02);
    topology.set_link(up, lossy);
    let plan = SendPlan::new(1000, Sizes::Fixed(500)).pace(Pace::Every(Duration::from_micros(200)));
    let scenario = Scenario::new("aggregation_window", topology)
        .send(HostId(0), plan)
        .deadline(Duration::from_secs(5));
    let (mut losses, mut naks, mut aggregated, mut lingered, mut repairs) = (0, 0, 0, 0, 0);
    let mut repairs_lost = 0;
    for index in 0..3 {
        let seed = scenario.seed_for(index);
        let report = scenario.run_with(seed, false, |_, config, seed, now| {
            SessionMember::with_strategy(config, Strategy::Rmcast, seed, now)
                .expect("valid configuration")
        });
        assert!(report.passed(), "{report}");
        assert!(report.completed_at.is_some(), "{report}");
        let source = &report.hosts[0].stats.recovery;
        losses += report.odata_lost();
        // Only the uplink loses: a repair lost there reached nobody and is sent again.
        repairs_lost += report.links.iter().map(|(_, l)| l.lost_rdata).sum::<u64>();
        naks += source.naks_received;
        aggregated += source.naks_aggregated;
        lingered += source.naks_ignored_linger;
        repairs += source.repairs_sent;
    }
    println!(
        "{losses} losses, {naks} NAKs at the source: {aggregated} merged in the window, \
         {lingered} ignored in the linger; {repairs} RDATA, {repairs_lost} of them lost"
    );
    assert!(losses >= 30, "too few losses: {losses}");
    assert!(naks > losses, "the shared losses must draw duplicate NAKs");
    assert!(aggregated > 0, "no NAK was merged into a waiting RDATA");
    // One RDATA per lost packet however many NAKs asked, plus one per lost RDATA.
    assert!(
        repairs as f64 <= (losses + repairs_lost) as f64 * 1.03,
        "{repairs} RDATA for {losses} losses and {repairs_lost} lost repairs"
    );
}
