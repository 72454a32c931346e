//! The FEC comparison (issue 4): selective repair against on-demand parity, proactive parity
//! and silent receivers, on identical simulated networks, losses and seeds.
//!
//! Network: a star, the source 2 ms from a hub and every receiver 2 ms from it (RTT 8 ms).
//! Losses: `indep1`/`indep2`/`indep5`/`indep10` Bernoulli on every receiver's own downlink;
//! `burst` Gilbert–Elliott on every downlink (2 % on average, mean burst 3 datagrams);
//! `shared1` 1 % on the source's uplink (every receiver misses the same packets).
//! Modes: `selective` (FEC off), `ondemand` (`fec(K, 0)`), `proactive` (`fec(K, p)` with
//! p = max(2, ⌈3 · loss · K⌉), so p/K ≥ 1.5 × the loss rate), `silent` (receivers send nothing,
//! p = max(3, ⌈3 · loss · K⌉): p/K = 0.1 at 2 %).
//!
//! Metrics: repair datagrams (RDATA + PARITY) per source packet; the share of (receiver,
//! block) pairs for which the receiver sent no NAK; the share of (receiver, block) pairs
//! delivered whole (blocks the delivery point passed with packets missing count as lost);
//! the mean recovery delay in RTTs of every packet a receiver missed (repair arrival, or the
//! delivery of a packet rebuilt from parity, minus when its original would have arrived);
//! whether every run passed its oracles and delivered everything. Block figures need blocks, so
//! they are empty for `selective`.
//!
//! Invariant: a cell is a pure function of its key and seed count; the seeds depend on the
//! loss and group size only, so every mode of a row meets the same networks.

use super::node::{Pace, SendPlan, SessionMember, Sizes};
use super::scenario::Scenario;
use super::topology::{HostId, Topology};
use super::{LinkModel, LossModel, SimReport};
use std::time::Duration;

/// Source packets per block.
pub const K: u8 = 30;
/// Messages per run, one datagram each.
pub const MESSAGES: u32 = 600;
/// Message size (one datagram).
pub const MESSAGE_LEN: usize = 1_000;
/// One message every this long.
pub const MESSAGE_INTERVAL: Duration = Duration::from_micros(100);

/// Where and how packets are lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Independent Bernoulli loss on every receiver's downlink, in percent.
    Indep(u8),
    /// Gilbert–Elliott bursts on every downlink, 2 % on average.
    Burst,
    /// 1 % on the source's uplink.
    Shared1,
}

impl Loss {
    /// Every pattern, in table order.
    pub const ALL: [Loss; 6] = [
        Loss::Indep(1),
        Loss::Indep(2),
        Loss::Indep(5),
        Loss::Indep(10),
        Loss::Burst,
        Loss::Shared1,
    ];

    /// Name in the table.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Loss::Indep(pct) => format!("indep{pct}"),
            Loss::Burst => "burst".into(),
            Loss::Shared1 => "shared1".into(),
        }
    }

    /// Average loss rate.
    #[must_use]
    pub fn rate(self) -> f64 {
        match self {
            Loss::Indep(pct) => f64::from(pct) / 100.0,
            Loss::Burst => 0.02,
            Loss::Shared1 => 0.01,
        }
    }
}

/// How the group repairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// FEC off: NAKs and RDATA only.
    Selective,
    /// FEC on, no proactive parity: parity NAKs and on-demand parity.
    OnDemand,
    /// FEC on with proactive parity (and on-demand beyond it).
    Proactive,
    /// Proactive parity, receivers send nothing.
    Silent,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 4] = [
        Mode::Selective,
        Mode::OnDemand,
        Mode::Proactive,
        Mode::Silent,
    ];

    /// Name in the table.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mode::Selective => "selective",
            Mode::OnDemand => "ondemand",
            Mode::Proactive => "proactive",
            Mode::Silent => "silent",
        }
    }

    /// `(k, p)` of the source, `None` for FEC off.
    #[must_use]
    pub fn fec(self, loss: Loss) -> Option<(u8, u8)> {
        let scaled = (3.0 * loss.rate() * f64::from(K)).ceil() as u8;
        match self {
            Mode::Selective => None,
            Mode::OnDemand => Some((K, 0)),
            Mode::Proactive => Some((K, scaled.max(2))),
            Mode::Silent => Some((K, scaled.max(3))),
        }
    }
}

/// One cell of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellKey {
    /// Receivers (the source comes on top).
    pub receivers: usize,
    /// Loss pattern.
    pub loss: Loss,
    /// Repair mode.
    pub mode: Mode,
}

/// Pooled figures of one cell.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Cell {
    /// What was run.
    pub key: CellKey,
    /// RDATA + PARITY datagrams sent per ODATA datagram.
    pub repairs_per_source_packet: f64,
    /// Percentage of (receiver, block) pairs with no NAK from that receiver (`None`: no blocks).
    pub blocks_without_nak_pct: Option<f64>,
    /// Percentage of (receiver, block) pairs delivered whole.
    pub blocks_recovered_pct: Option<f64>,
    /// Mean recovery delay (RDATA or parity rebuild) in RTTs of the farthest receiver.
    pub recovery_mean_rtt: f64,
    /// Every run passed its oracles and every receiver got every message.
    pub complete: bool,
    /// NAKs (selective and parity) sent by all receivers, over all runs.
    pub receiver_naks: u64,
}

/// The network of a cell.
#[must_use]
pub fn topology(receivers: usize, loss: Loss) -> Topology {
    let link = LinkModel::new(Duration::from_millis(2));
    let mut topology = Topology::star(receivers, link.clone(), link);
    let model = match loss {
        Loss::Indep(_) => LossModel::Bernoulli(loss.rate()),
        Loss::Burst => LossModel::bursts(loss.rate(), 3.0),
        Loss::Shared1 => {
            let up = topology.host_uplink(HostId(0));
            let model = topology.link(up).clone().bernoulli(loss.rate());
            topology.set_link(up, model);
            return topology;
        }
    };
    for host in 1..topology.hosts() {
        let down = topology.host_downlink(HostId(host));
        let lossy = topology.link(down).clone().loss(model.clone());
        topology.set_link(down, lossy);
    }
    topology
}

/// Runs `runs` seeds of a cell and pools them.
#[must_use]
pub fn run_cell(key: CellKey, runs: u32) -> Cell {
    let name = format!("fec_{}_{}", key.receivers, key.loss.name());
    let plan =
        SendPlan::new(MESSAGES, Sizes::Fixed(MESSAGE_LEN)).pace(Pace::Every(MESSAGE_INTERVAL));
    let scenario = Scenario::new(&name, topology(key.receivers, key.loss))
        .send(HostId(0), plan)
        .deadline(Duration::from_secs(20));
    let fec = key.mode.fec(key.loss);
    let reports: Vec<SimReport> = (0..runs)
        .map(|index| {
            scenario.run_with(
                scenario.seed_for(index),
                false,
                |host, config, seed, now| {
                    let mut config = config.clone();
                    if host == HostId(0) {
                        if let Some((k, p)) = fec {
                            config = config.fec(k, p);
                        }
                    } else if key.mode == Mode::Silent {
                        config = config.silent(true);
                    }
                    SessionMember::new(&config, seed, now)
                        .unwrap_or_else(|err| panic!("host h{} config: {err}", host.0))
                },
            )
        })
        .collect();
    // `RMCAST_TABLE_DEBUG=1` prints the report of every run that did not deliver everything.
    if std::env::var_os("RMCAST_TABLE_DEBUG").is_some() {
        for report in reports.iter().filter(|r| !r.delivered_everything()) {
            eprintln!("{report}");
        }
    }
    pool(key, &reports)
}

fn pool(key: CellKey, reports: &[SimReport]) -> Cell {
    let source = |report: &SimReport| report.hosts[0].stats;
    let odata: u64 = reports.iter().map(|r| source(r).tx.odata.packets).sum();
    let repairs: u64 = reports
        .iter()
        .map(|r| source(r).tx.rdata.packets + source(r).tx.parity.packets)
        .sum();
    let blocks: u64 = reports
        .iter()
        .map(|r| source(r).recovery.blocks_sent * (r.hosts.len() as u64 - 1))
        .sum();
    let receivers_total = |counter: fn(&crate::Stats) -> u64| -> u64 {
        reports
            .iter()
            .map(|r| r.hosts[1..].iter().map(|h| counter(&h.stats)).sum::<u64>())
            .sum()
    };
    let naked = receivers_total(|s| s.recovery.blocks_naked);
    let unrecovered = receivers_total(|s| s.recovery.blocks_unrecovered);
    let pct = |bad: u64| 100.0 * (1.0 - bad.min(blocks) as f64 / blocks as f64);
    let delays: Vec<f64> = reports
        .iter()
        .flat_map(SimReport::recovery_in_rtts)
        .collect();
    let recovery_mean_rtt = if delays.is_empty() {
        0.0
    } else {
        delays.iter().sum::<f64>() / delays.len() as f64
    };
    let complete = reports.iter().all(SimReport::delivered_everything);
    Cell {
        key,
        repairs_per_source_packet: repairs as f64 / odata.max(1) as f64,
        blocks_without_nak_pct: (blocks > 0).then(|| pct(naked)),
        blocks_recovered_pct: (blocks > 0).then(|| pct(unrecovered)),
        recovery_mean_rtt,
        complete,
        receiver_naks: receivers_total(|s| s.recovery.naks_sent),
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "receivers,loss,mode,repairs_per_source_packet,blocks_without_nak_pct,blocks_recovered_pct,recovery_mean_rtt,complete";

/// The markdown header matching [`Cell::markdown`].
pub const MARKDOWN_HEADER: &str = "| receivers | loss | mode | (k, p) | repairs / source packet | blocks without NAK % | blocks recovered % | recovery mean (RTT) | complete |\n|---:|---|---|---|---:|---:|---:|---:|---|";

fn optional(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v:.2}"))
}

impl Cell {
    /// One CSV row in the columns of [`CSV_HEADER`]; block columns empty without FEC.
    #[must_use]
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{:.4},{},{},{:.3},{}",
            self.key.receivers,
            self.key.loss.name(),
            self.key.mode.name(),
            self.repairs_per_source_packet,
            optional(self.blocks_without_nak_pct),
            optional(self.blocks_recovered_pct),
            self.recovery_mean_rtt,
            self.complete
        )
    }

    /// One markdown row.
    #[must_use]
    pub fn markdown(&self) -> String {
        let shape = self
            .key
            .mode
            .fec(self.key.loss)
            .map_or("off".to_string(), |(k, p)| format!("({k}, {p})"));
        format!(
            "| {} | {} | {} | {} | {:.3} | {} | {} | {:.2} | {} |",
            self.key.receivers,
            self.key.loss.name(),
            self.key.mode.name(),
            shape,
            self.repairs_per_source_packet,
            optional(self.blocks_without_nak_pct),
            optional(self.blocks_recovered_pct),
            self.recovery_mean_rtt,
            if self.complete { "yes" } else { "NO" }
        )
    }
}
