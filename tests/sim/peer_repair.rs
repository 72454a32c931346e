//! Peer repair (`GroupConfig::peer_repair`): receivers that hold a packet answer another
//! receiver's NAK from their caches, with distance-scaled repair timers and repair suppression,
//! and the source defers to them when they are nearer.
//!
//! The network is the one peer repair is for: a source 20 ms away (a WAN link) in front of a
//! LAN tree of 20 receivers (four routers of five, 1 ms links), and 5 % loss on the link into
//! the root's first subtree — the table's `subtree5` pattern on a tree — so that the nearest
//! holders of a packet the subtree lost are the neighbouring subtrees' receivers 4 ms away, not
//! the source 22 ms away. (In the table's own topologies the source, 1 ms above the root, is
//! always the nearest holder of what a subtree lost; see `docs/suppression.md` §4.) Both
//! strategies run the same seeds.

use rmcast::sim::{
    Duplex, HostId, LinkModel, Pace, RouterId, Scenario, SendPlan, SessionMember, SimReport, Sizes,
    Strategy, Topology,
};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// Receivers 1..=5 sit under router 1, the lossy subtree.
const LOSSY_SUBTREE: std::ops::RangeInclusive<usize> = 1..=5;

fn scenario() -> Scenario {
    let wan = Duplex::symmetric(LinkModel::new(20 * MS));
    let lan = LinkModel::new(MS);
    let mut topology = Topology::tree(&[4, 5], wan, lan.clone(), lan);
    let into_subtree = topology
        .router_downlink(RouterId(1))
        .expect("router 1 has a parent");
    let lossy = topology.link(into_subtree).clone().bernoulli(0.05);
    topology.set_link(into_subtree, lossy);
    // 4 s of data: reports (every second) spread the peer distances within the first two.
    let plan = SendPlan::new(800, Sizes::Fixed(1000)).pace(Pace::Every(5 * MS));
    Scenario::new("far_source_subtree_loss", topology)
        .send(HostId(0), plan)
        .deadline(Duration::from_secs(10))
}

fn run(scenario: &Scenario, seed: u64, strategy: Strategy) -> SimReport {
    scenario.run_with(seed, false, |_, config, seed, now| {
        SessionMember::with_strategy(config, strategy, seed, now).expect("valid configuration")
    })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Pooled over three seeds: with peer repair the subtree's losses are repaired mostly by its
/// neighbours, about once per loss, and sooner than by the source alone on the same networks;
/// every run passes the oracles (no silent hole, bounded buffers) and delivers everything.
#[test]
fn near_receivers_repair_a_subtree_faster_than_the_far_source() {
    let scenario = scenario();
    let (mut source_only, mut peer) = (Vec::new(), Vec::new());
    for index in 0..3 {
        let seed = scenario.seed_for(index);
        source_only.push(run(&scenario, seed, Strategy::Rmcast));
        peer.push(run(&scenario, seed, Strategy::RmcastPeer));
    }
    for report in source_only.iter().chain(&peer) {
        assert!(report.passed(), "{report}");
        assert!(report.completed_at.is_some(), "{report}");
        assert!(
            report.hosts.iter().all(|host| host.lost_messages == 0),
            "{report}"
        );
    }
    let losses: u64 = peer.iter().map(SimReport::odata_lost).sum();
    let repairs: u64 = peer.iter().map(SimReport::rdata).sum();
    let peer_sent: u64 = peer
        .iter()
        .map(|r| r.total(|s| s.recovery.peer_repairs_sent))
        .sum();
    // Repairs sent by receivers outside the lossy subtree (its neighbours, 4 ms away).
    let from_neighbours: u64 = peer
        .iter()
        .flat_map(|r| r.hosts.iter())
        .filter(|host| host.host.0 != 0 && !LOSSY_SUBTREE.contains(&host.host.0))
        .map(|host| host.stats.recovery.peer_repairs_sent)
        .sum();
    let source_only_losses: u64 = source_only.iter().map(SimReport::odata_lost).sum();
    let source_only_repairs: u64 = source_only.iter().map(SimReport::rdata).sum();
    let peer_delays: Vec<f64> = peer.iter().flat_map(SimReport::recovery_in_rtts).collect();
    let source_delays: Vec<f64> = source_only
        .iter()
        .flat_map(SimReport::recovery_in_rtts)
        .collect();
    let (peer_mean, source_mean) = (mean(&peer_delays), mean(&source_delays));
    let repairs_per_loss = repairs as f64 / losses.max(1) as f64;
    println!(
        "peer repair: {losses} losses, {repairs} repairs ({peer_sent} by receivers, \
         {from_neighbours} by neighbours of the subtree), {repairs_per_loss:.2} per loss, \
         recovery mean {peer_mean:.3} RTT; source only: {source_only_losses} losses, \
         {source_only_repairs} repairs, recovery mean {source_mean:.3} RTT"
    );
    assert!(losses >= 60, "too few losses to judge: {losses}");
    assert!(
        peer_sent * 2 >= repairs,
        "most repairs should come from receivers: {peer_sent} of {repairs}"
    );
    assert_eq!(
        from_neighbours, peer_sent,
        "only holders outside the lossy subtree hold what it lost first"
    );
    assert!(
        repairs_per_loss <= 1.25,
        "repair suppression: {repairs_per_loss:.2} repairs per loss"
    );
    assert!(
        peer_mean < source_mean * 0.85,
        "peer repair must recover faster: {peer_mean:.3} against {source_mean:.3} RTT"
    );
}

/// Without peer repair nothing changes hands between receivers: the source repairs alone.
/// With it, a run still replays exactly from its seed (peer timers draw from the seeded RNG).
#[test]
fn without_peer_repair_only_the_source_repairs_and_peer_runs_replay() {
    let scenario = scenario();
    let seed = scenario.seed_for(0);
    let report = run(&scenario, seed, Strategy::Rmcast);
    assert!(report.passed(), "{report}");
    assert_eq!(report.total(|s| s.recovery.peer_repairs_sent), 0);
    assert_eq!(report.rdata(), report.hosts[0].stats.tx.rdata.packets);
    let first = run(&scenario, seed, Strategy::RmcastPeer);
    let again = run(&scenario, seed, Strategy::RmcastPeer);
    assert!(first.total(|s| s.recovery.peer_repairs_sent) > 0);
    assert_eq!(first.trace_hash, again.trace_hash, "same seed, same run");
}
