//! The NAK-suppression comparison: one cell per (topology, group size, loss pattern, strategy),
//! each the pooled result of several seeded runs on identical networks, so that rmcast and the
//! PGM-like and NORM-like baselines meet the same losses (links draw from their own seeded
//! RNGs, so the first losses of a run coincide across strategies until feedback differs).
//!
//! Used by `examples/suppression_table.rs` (the full table, `docs/suppression_table.md`) and by
//! `tests/sim/suppression.rs` (a reduced sweep pinning the bounds). Topologies:
//!
//! - `star`: the source behind one shared 2 ms link to a hub, every receiver 2 ms from the hub
//!   (RTT 8 ms for all);
//! - `tree`: depth 3, fan-out 10 (10 receivers: one level; 100: two), 1 ms per link (RTT 8 ms
//!   at 1,000 receivers);
//! - `mixed`: 90 % of the receivers 1.5–5.5 ms one-way from the source, 10 % behind a far
//!   router 10–50 ms away, spread evenly.
//!
//! Loss patterns: `shared1` 1 % on the source's uplink (every receiver misses the packet);
//! `indep1` 1 % on every receiver's own downlink; `subtree5` 5 % on the link into one subtree
//! (tree: the first of the root's ten; mixed: the far router; star, which has no subtree: the
//! downlinks of the first tenth of the receivers).
//!
//! Strategies: every row compares [`Strategy::COMPARED`] (`rmcast`, `pgm-like`, `norm-like`);
//! `rmcast-peer` ([`Strategy::RmcastPeer`], rmcast with peer repair on) is run on request
//! (`--peer-repair` in the example), on the same networks and seeds.
//!
//! Invariant: a cell is a pure function of its key and seed count; every run also passes the
//! simulator's oracles, and a run that breaks one marks the cell incomplete.

use super::node::{Pace, SendPlan, SessionMember, Sizes, Strategy};
use super::scenario::Scenario;
use super::topology::{HostId, RouterId, Topology};
use super::{LinkModel, SimReport};
use std::fmt;
use std::time::Duration;

/// Shape of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// All receivers behind one shared link from the source, equally far.
    Star,
    /// Depth-3, fan-out-10 tree.
    Tree,
    /// Receivers at 1.5–50 ms, a tenth of them ten times farther than the rest.
    Mixed,
}

impl Shape {
    /// Every shape, in table order.
    pub const ALL: [Shape; 3] = [Shape::Star, Shape::Tree, Shape::Mixed];

    /// Name in the table: `star`, `tree`, `mixed`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Shape::Star => "star",
            Shape::Tree => "tree",
            Shape::Mixed => "mixed",
        }
    }
}

/// Where packets are lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// 1 % on the source's uplink: every receiver misses the same packets.
    Shared1,
    /// 1 % on every receiver's downlink, independently.
    Indep1,
    /// 5 % on the link into one subtree.
    Subtree5,
}

impl Loss {
    /// Every pattern, in table order.
    pub const ALL: [Loss; 3] = [Loss::Shared1, Loss::Indep1, Loss::Subtree5];

    /// Name in the table: `shared1`, `indep1`, `subtree5`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Loss::Shared1 => "shared1",
            Loss::Indep1 => "indep1",
            Loss::Subtree5 => "subtree5",
        }
    }
}

/// One cell of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellKey {
    /// Network shape.
    pub shape: Shape,
    /// Number of receivers (the source comes on top).
    pub receivers: usize,
    /// Loss pattern.
    pub loss: Loss,
    /// NAK suppression strategy of every member.
    pub strategy: Strategy,
}

/// Pooled figures of one cell.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Cell {
    /// What was run.
    pub key: CellKey,
    /// Seeds run.
    pub runs: u32,
    /// ODATA copies lost on links (loss events), over all runs.
    pub losses: u64,
    /// NAK datagrams sent per loss event.
    pub naks_per_loss: f64,
    /// RDATA datagrams sent per loss event.
    pub repairs_per_loss: f64,
    /// Mean recovery delay (repair arrival minus when the original would have arrived), in
    /// round trips of the farthest receiver.
    pub recovery_mean_rtt: f64,
    /// 99th percentile of the same.
    pub recovery_p99_rtt: f64,
    /// NAK, NCF, SPM and REPORT bytes as a percentage of ODATA and RDATA bytes.
    pub control_pct: f64,
    /// `control_pct` split by kind: NAK, NCF, SPM and REPORT bytes, each as a percentage of
    /// ODATA and RDATA bytes.
    pub control_split_pct: [f64; 4],
    /// RDATA copies lost on links per loss event: with shared loss, each lost repair is a
    /// second NAK round for every receiver, and once they reach 1 % of the loss events the
    /// p99 column is that round's latency.
    pub repairs_lost_per_loss: f64,
    /// Every run passed its oracles and every receiver got every message.
    pub complete: bool,
}

/// Messages per run: one datagram each.
pub const MESSAGES: u32 = 2_000;
/// Message size: fits one datagram with room to spare.
pub const MESSAGE_LEN: usize = 1_000;
/// One message every this long: 10,000 packets/s, 80 Mbit/s of payload.
pub const MESSAGE_INTERVAL: Duration = Duration::from_micros(100);

/// The network of a cell.
#[must_use]
pub fn topology(shape: Shape, receivers: usize, loss: Loss) -> Topology {
    let ms = |m: f64| LinkModel::new(Duration::from_secs_f64(m / 1e3));
    let mut topology = match shape {
        Shape::Star => Topology::star(receivers, ms(2.0), ms(2.0)),
        Shape::Tree => {
            let fanouts: &[usize] = match receivers {
                0..=10 => &[10],
                11..=100 => &[10, 10],
                _ => &[10, 10, 10],
            };
            let leaves: usize = fanouts.iter().product();
            let mut fanouts = fanouts.to_vec();
            // Other sizes keep the shape and trim the last level.
            if let Some(last) = fanouts.last_mut() {
                *last = (*last * receivers).div_ceil(leaves).max(1);
            }
            Topology::tree(&fanouts, ms(1.0), ms(1.0), ms(1.0))
        }
        Shape::Mixed => {
            let mut topology = Topology::new();
            topology.add_host(RouterId(0), ms(0.5));
            let near = topology.add_router(RouterId(0), ms(0.5));
            let far = topology.add_router(RouterId(0), ms(9.0));
            let far_count = (receivers / 10).max(1);
            let near_count = receivers - far_count;
            for i in 0..near_count {
                let spread = i as f64 / near_count.max(2).saturating_sub(1) as f64;
                topology.add_host(near, ms(0.5 + 4.0 * spread));
            }
            for i in 0..far_count {
                let spread = i as f64 / far_count.max(2).saturating_sub(1) as f64;
                topology.add_host(far, ms(0.5 + 40.0 * spread));
            }
            topology
        }
    };
    apply_loss(&mut topology, shape, receivers, loss);
    topology
}

fn apply_loss(topology: &mut Topology, shape: Shape, receivers: usize, loss: Loss) {
    let lossy = |link: &LinkModel, p: f64| link.clone().bernoulli(p);
    match loss {
        Loss::Shared1 => {
            let up = topology.host_uplink(HostId(0));
            let model = lossy(topology.link(up), 0.01);
            topology.set_link(up, model);
        }
        Loss::Indep1 => {
            for host in 1..topology.hosts() {
                let down = topology.host_downlink(HostId(host));
                let model = lossy(topology.link(down), 0.01);
                topology.set_link(down, model);
            }
        }
        Loss::Subtree5 => match shape {
            Shape::Tree | Shape::Mixed => {
                // Tree: the root's first child; mixed: the far router (router 2).
                let router = if shape == Shape::Tree {
                    RouterId(1)
                } else {
                    RouterId(2)
                };
                let inner = (router.0 < topology.routers())
                    .then(|| topology.router_downlink(router))
                    .flatten();
                if let Some(down) = inner {
                    let model = lossy(topology.link(down), 0.05);
                    topology.set_link(down, model);
                } else {
                    // A one-level tree has no inner router: its first receiver is the subtree.
                    let down = topology.host_downlink(HostId(1));
                    let model = lossy(topology.link(down), 0.05);
                    topology.set_link(down, model);
                }
            }
            Shape::Star => {
                for host in 1..=(receivers / 10).max(1) {
                    let down = topology.host_downlink(HostId(host));
                    let model = lossy(topology.link(down), 0.05);
                    topology.set_link(down, model);
                }
            }
        },
    }
}

/// The scenario of a cell (named after it, so each cell sweeps its own seeds).
pub fn scenario(key: CellKey) -> Scenario {
    scenario_with(key, MESSAGES)
}

/// The scenario of a cell with `messages` messages instead of [`MESSAGES`] (longer runs
/// amortize what the first round trips cost: the join reports, the losses found before any
/// RTT is measured). The seeds are the same as [`scenario`]'s.
pub fn scenario_with(key: CellKey, messages: u32) -> Scenario {
    let name = format!(
        "suppression_{}_{}_{}",
        key.shape.name(),
        key.receivers,
        key.loss.name()
    );
    let plan =
        SendPlan::new(messages, Sizes::Fixed(MESSAGE_LEN)).pace(Pace::Every(MESSAGE_INTERVAL));
    // 20 s covers the default run a hundred times over; longer runs get as much again, and a
    // step budget that grows with them (1,000 receivers at 1 % loss take ~55,000 steps a
    // message: the default budget ends a 20,000-message run at 0.9 s).
    let scenario = Scenario::new(&name, topology(key.shape, key.receivers, key.loss))
        .send(HostId(0), plan)
        .deadline(Duration::from_secs(20) + MESSAGE_INTERVAL * messages);
    let mut expect = scenario.expect;
    let scale = u64::from(messages.div_ceil(MESSAGES).max(1));
    expect.limits.max_steps = expect.limits.max_steps.saturating_mul(scale);
    scenario.expect(expect)
}

/// Runs `runs` seeds of a cell and pools them. The seeds depend on the topology and loss only,
/// so every strategy of a row meets the same networks.
#[must_use]
pub fn run_cell(key: CellKey, runs: u32) -> Cell {
    run_cell_with(key, runs, MESSAGES)
}

/// [`run_cell`] with `messages` messages per run (see [`scenario_with`]).
#[must_use]
pub fn run_cell_with(key: CellKey, runs: u32, messages: u32) -> Cell {
    let scenario = scenario_with(key, messages);
    let reports: Vec<SimReport> = (0..runs)
        .map(|index| {
            scenario.run_with(
                scenario.seed_for(index),
                false,
                |host, config, seed, now| {
                    SessionMember::with_strategy(config, key.strategy, seed, now).unwrap_or_else(
                        |err| panic!("host h{} has an invalid configuration: {err}", host.0),
                    )
                },
            )
        })
        .collect();
    // `RMCAST_TABLE_DEBUG=1` prints the report of every run that broke an oracle.
    if std::env::var_os("RMCAST_TABLE_DEBUG").is_some() {
        for report in reports.iter().filter(|r| !r.passed()) {
            eprintln!("{report}");
        }
    }
    pool(key, &reports)
}

/// Pools the reports of one cell's runs.
#[must_use]
pub fn pool(key: CellKey, reports: &[SimReport]) -> Cell {
    let losses: u64 = reports.iter().map(SimReport::odata_lost).sum();
    let naks: u64 = reports.iter().map(SimReport::naks).sum();
    let rdata: u64 = reports.iter().map(SimReport::rdata).sum();
    let repairs_lost: u64 = reports.iter().map(SimReport::rdata_lost).sum();
    let split = reports.iter().map(SimReport::control_bytes_by_kind).fold(
        [0; 4],
        |mut sum: [u64; 4], kinds| {
            sum.iter_mut()
                .zip(kinds)
                .for_each(|(total, bytes)| *total += bytes);
            sum
        },
    );
    let control: u64 = split.iter().sum();
    let data: u64 = reports.iter().map(SimReport::data_bytes).sum();
    let mut delays: Vec<f64> = reports
        .iter()
        .flat_map(SimReport::recovery_in_rtts)
        .collect();
    delays.sort_by(f64::total_cmp);
    let per_loss = |count: u64| count as f64 / losses.max(1) as f64;
    let complete = reports.iter().all(SimReport::delivered_everything);
    Cell {
        key,
        runs: reports.len() as u32,
        losses,
        naks_per_loss: per_loss(naks),
        repairs_per_loss: per_loss(rdata),
        recovery_mean_rtt: mean(&delays),
        recovery_p99_rtt: percentile(&delays, 0.99),
        control_pct: 100.0 * control as f64 / data.max(1) as f64,
        control_split_pct: split.map(|bytes| 100.0 * bytes as f64 / data.max(1) as f64),
        repairs_lost_per_loss: per_loss(repairs_lost),
        complete,
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The `q` quantile of sorted values (nearest rank), 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The CSV header, the columns of [`Cell`]'s `Display`... as CSV.
pub const CSV_HEADER: &str = "topology,receivers,loss,strategy,naks_per_loss,repairs_per_loss,recovery_mean_rtt,recovery_p99_rtt,control_pct,complete";

impl Cell {
    /// One CSV row in the columns of [`CSV_HEADER`].
    #[must_use]
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{}",
            self.key.shape.name(),
            self.key.receivers,
            self.key.loss.name(),
            self.key.strategy.name(),
            self.naks_per_loss,
            self.repairs_per_loss,
            self.recovery_mean_rtt,
            self.recovery_p99_rtt,
            self.control_pct,
            self.complete
        )
    }
}

impl fmt::Display for Cell {
    /// One markdown table row.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            self.key.shape.name(),
            self.key.receivers,
            self.key.loss.name(),
            self.key.strategy.name(),
            self.naks_per_loss,
            self.repairs_per_loss,
            self.recovery_mean_rtt,
            self.recovery_p99_rtt,
            self.control_pct,
            if self.complete { "yes" } else { "NO" }
        )
    }
}

/// The markdown header matching [`Cell::control_split_row`].
pub const CONTROL_SPLIT_HEADER: &str = "| topology | receivers | loss | strategy | control % | NAK % | NCF % | SPM % | REPORT % | repairs lost/loss |\n|---|---:|---|---|---:|---:|---:|---:|---:|---:|";

impl Cell {
    /// One markdown row of the control column split by kind, and the repairs lost per loss
    /// ([`CONTROL_SPLIT_HEADER`]).
    #[must_use]
    pub fn control_split_row(&self) -> String {
        let [nak, ncf, spm, report] = self.control_split_pct;
        format!(
            "| {} | {} | {} | {} | {:.2} | {nak:.2} | {ncf:.2} | {spm:.2} | {report:.2} | {:.4} |",
            self.key.shape.name(),
            self.key.receivers,
            self.key.loss.name(),
            self.key.strategy.name(),
            self.control_pct,
            self.repairs_lost_per_loss,
        )
    }
}

/// The markdown header matching [`Cell`]'s `Display`.
pub const MARKDOWN_HEADER: &str = "| topology | receivers | loss | strategy | NAKs/loss | repairs/loss | recovery mean (RTT) | recovery p99 (RTT) | control % | complete |\n|---|---:|---|---|---:|---:|---:|---:|---:|---|";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_have_the_promised_sizes_and_distances() {
        for receivers in [10, 100, 1000] {
            for shape in Shape::ALL {
                let topology = topology(shape, receivers, Loss::Shared1);
                assert_eq!(topology.hosts(), receivers + 1, "{shape:?} {receivers}");
            }
        }
        let tree = topology(Shape::Tree, 1000, Loss::Subtree5);
        // Root, 10, 100 routers.
        assert_eq!(tree.routers(), 111);
    }

    #[test]
    fn longer_scenarios_get_a_longer_deadline_and_step_budget() {
        let key = CellKey {
            shape: Shape::Star,
            receivers: 10,
            loss: Loss::Shared1,
            strategy: Strategy::Rmcast,
        };
        let default = scenario(key).expect;
        assert_eq!(default, scenario_with(key, MESSAGES).expect);
        let long = scenario_with(key, 10 * MESSAGES).expect;
        assert_eq!(long.limits.max_steps, 10 * default.limits.max_steps);
        assert_eq!(
            long.deadline,
            default.deadline + MESSAGE_INTERVAL * (9 * MESSAGES)
        );
        assert_eq!(scenario(key).seed_for(0), scenario_with(key, 5).seed_for(0));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(mean(&[1.0, 3.0]), 2.0);
    }
}
