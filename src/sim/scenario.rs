//! Scenarios — a topology, member configurations, send plans, scripted actions and goals —
//! and the seed sweeps that run them.
//!
//! Invariant: a scenario is plain data and a run is a function of (scenario, seed); a sweep's
//! seeds are derived from the scenario name, so every failure is reproduced by the
//! `RMCAST_SIM_SEED=<n>` line printed with it.

use super::check::Delivery;
use super::link::LinkModel;
use super::node::{Member, SendPlan, SessionMember};
use super::topology::{HostId, LinkId, Topology};
use super::{Limits, Sim, SimReport, mix64};
use crate::GroupConfig;
use std::fmt;
use std::time::{Duration, Instant};

/// Something that happens at a scripted virtual time.
#[derive(Clone, Debug)]
pub enum Action {
    /// The host stops dead: no more input, output or timers (its datagrams already on the
    /// wire still arrive).
    Crash(HostId),
    /// The host's application leaves the group (`leave`).
    Leave(HostId),
    /// A link's model changes (blackholes, partitions, loss that starts or stops).
    SetLink(LinkId, LinkModel),
}

/// The goals and bounds of a scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct Expect {
    /// How much loss is tolerated from sources that stay up.
    pub delivery: Delivery,
    /// Virtual time by which every receiver must have accounted for every message.
    pub deadline: Duration,
    /// Virtual time the run continues after completion, to catch late duplicates.
    pub settle: Duration,
    /// Safety bounds.
    pub limits: Limits,
    /// In a sweep, every this many runs (and always the first) are run twice to check that
    /// the trace hash repeats.
    pub determinism_every: u32,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            delivery: Delivery::Complete,
            deadline: Duration::from_secs(10),
            settle: Duration::from_millis(50),
            limits: Limits::default(),
            determinism_every: 25,
        }
    }
}

/// A topology, how its members are configured, what they send, what happens to them, and what
/// must hold. Members are configured with the same [`GroupConfig`] applications use.
#[derive(Clone, Debug)]
#[must_use]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) topology: Topology,
    config: GroupConfig,
    host_configs: Vec<(HostId, GroupConfig)>,
    plans: Vec<(HostId, SendPlan)>,
    pub(crate) actions: Vec<(Duration, Action)>,
    pub(crate) expect: Expect,
}

impl Scenario {
    /// A scenario named `name` — use the test function's name, so that the printed replay
    /// command selects that test — on `topology`, with default configuration, no traffic and
    /// [`Expect::default`].
    pub fn new(name: &str, topology: Topology) -> Scenario {
        Scenario {
            name: name.to_string(),
            topology,
            config: GroupConfig::on_loopback(std::net::SocketAddr::from(([239, 255, 0, 1], 7400))),
            host_configs: Vec::new(),
            plans: Vec::new(),
            actions: Vec::new(),
            expect: Expect::default(),
        }
    }

    /// The configuration of every host without its own.
    pub fn config(mut self, config: GroupConfig) -> Scenario {
        self.config = config;
        self
    }

    /// A configuration for one host.
    pub fn host_config(mut self, host: HostId, config: GroupConfig) -> Scenario {
        self.host_configs.retain(|(h, _)| *h != host);
        self.host_configs.push((host, config));
        self
    }

    /// What `host`'s application sends.
    pub fn send(mut self, host: HostId, plan: SendPlan) -> Scenario {
        self.plans.retain(|(h, _)| *h != host);
        self.plans.push((host, plan));
        self
    }

    /// A scripted action at virtual time `at`.
    pub fn at(mut self, at: Duration, action: Action) -> Scenario {
        self.actions.push((at, action));
        self
    }

    /// The goals.
    pub fn expect(mut self, expect: Expect) -> Scenario {
        self.expect = expect;
        self
    }

    /// Sets the delivery goal.
    pub fn delivery(mut self, delivery: Delivery) -> Scenario {
        self.expect.delivery = delivery;
        self
    }

    /// Sets the completion deadline (virtual).
    pub fn deadline(mut self, deadline: Duration) -> Scenario {
        self.expect.deadline = deadline;
        self
    }

    /// The topology (for link ids).
    #[must_use]
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The scenario's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn config_of(&self, host: HostId) -> &GroupConfig {
        self.host_configs
            .iter()
            .find(|(h, _)| *h == host)
            .map_or(&self.config, |(_, c)| c)
    }

    pub(crate) fn plan_of(&self, host: HostId) -> Option<SendPlan> {
        self.plans.iter().find(|(h, _)| *h == host).map(|(_, p)| *p)
    }

    /// Runs once with the protocol core.
    ///
    /// # Panics
    /// If a host's configuration is invalid (a mistake in the scenario, not in a run).
    pub fn run(&self, seed: u64) -> SimReport {
        self.run_with(seed, false, session_member)
    }

    /// Runs once with members made by `make(host, config, member_seed, epoch)`, recording the
    /// readable event trace if `trace`.
    pub fn run_with<M: Member>(
        &self,
        seed: u64,
        trace: bool,
        make: impl FnMut(HostId, &GroupConfig, u64, Instant) -> M,
    ) -> SimReport {
        Sim::new(self, seed, trace, make).run()
    }

    /// The seed of run `index` of a sweep.
    #[must_use]
    pub fn seed_for(&self, index: u32) -> u64 {
        // FNV-1a of the name, so each scenario sweeps its own seeds.
        let name_hash = self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        mix64(name_hash ^ mix64(u64::from(index)))
    }

    /// Runs `default_runs` seeds with the protocol core (or `RMCAST_SIM_RUNS` seeds, or only
    /// `RMCAST_SIM_SEED`) and panics with the seed and replay command at the first failure.
    pub fn sweep(&self, default_runs: u32) -> SweepSummary {
        self.sweep_checked(default_runs, |_| Ok(()))
    }

    /// [`Scenario::sweep`] with an extra scenario-specific check of each report.
    pub fn sweep_checked(
        &self,
        default_runs: u32,
        extra: impl Fn(&SimReport) -> Result<(), String>,
    ) -> SweepSummary {
        self.sweep_with(default_runs, session_member, extra)
    }

    /// [`Scenario::sweep_checked`] with members made by `make`.
    ///
    /// # Panics
    /// At the first seed whose run breaks an oracle or `extra`, or does not repeat its trace
    /// hash; the message holds the report and the replay command.
    pub fn sweep_with<M: Member>(
        &self,
        default_runs: u32,
        make: impl Fn(HostId, &GroupConfig, u64, Instant) -> M,
        extra: impl Fn(&SimReport) -> Result<(), String>,
    ) -> SweepSummary {
        let replay = env_u64("RMCAST_SIM_SEED");
        let runs =
            env_u64("RMCAST_SIM_RUNS").map_or(default_runs, |n| n.min(u64::from(u32::MAX)) as u32);
        let seeds: Vec<u64> = match replay {
            Some(seed) => vec![seed],
            None => (0..runs).map(|i| self.seed_for(i)).collect(),
        };
        let every = self.expect.determinism_every.max(1) as usize;
        let mut summary = SweepSummary {
            name: self.name.clone(),
            ..SweepSummary::default()
        };
        for (index, &seed) in seeds.iter().enumerate() {
            let report = self.run_with(seed, false, &make);
            let mut problems = Vec::new();
            if let Err(problem) = extra(&report) {
                problems.push(problem);
            }
            if report.passed() && (replay.is_some() || index % every == 0) {
                let again = self.run_with(seed, false, &make);
                if again.trace_hash != report.trace_hash {
                    problems.push(format!(
                        "not deterministic: the same seed gave trace hashes {:016x} and {:016x}",
                        report.trace_hash, again.trace_hash
                    ));
                }
            }
            if replay.is_some() {
                println!("{report}");
            }
            if !report.passed() || !problems.is_empty() {
                self.fail(seed, index, seeds.len(), &report, &problems, &make);
            }
            summary.add(&report);
        }
        println!("{summary}");
        summary
    }

    fn fail<M: Member>(
        &self,
        seed: u64,
        index: usize,
        runs: usize,
        report: &SimReport,
        problems: &[String],
        make: &impl Fn(HostId, &GroupConfig, u64, Instant) -> M,
    ) -> ! {
        if std::env::var_os("RMCAST_SIM_TRACE").is_some_and(|v| v != "0") {
            let traced = self.run_with(seed, true, make);
            let lines = traced.trace.unwrap_or_default();
            let skip = lines.len().saturating_sub(MAX_TRACE_LINES);
            eprintln!(
                "--- event trace of {} seed {seed} ({} lines, last {} shown) ---",
                self.name,
                lines.len(),
                lines.len() - skip
            );
            for line in &lines[skip..] {
                eprintln!("{line}");
            }
            eprintln!("--- end of trace ---");
        }
        let mut message = format!(
            "simulated scenario `{}` failed with seed {seed} (run {} of {runs}):\n{report}",
            self.name,
            index + 1
        );
        for problem in problems {
            message.push_str(&format!("  PROBLEM {problem}\n"));
        }
        message.push_str(&format!(
            "replay: RMCAST_SIM_SEED={seed} cargo test --features sim --test sim {} (add RMCAST_SIM_TRACE=1 for the event trace)",
            self.name
        ));
        panic!("{message}");
    }
}

/// Most trace lines printed for a failing run (the last ones).
const MAX_TRACE_LINES: usize = 20_000;

fn session_member(host: HostId, config: &GroupConfig, seed: u64, now: Instant) -> SessionMember {
    SessionMember::new(config, seed, now)
        .unwrap_or_else(|err| panic!("host h{} has an invalid configuration: {err}", host.0))
}

/// Reads a number from the environment (decimal, or hex with `0x`).
fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    match parsed {
        Ok(value) => Some(value),
        Err(err) => panic!("{name}={text} is not a number: {err}"),
    }
}

/// Aggregate figures of a sweep.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SweepSummary {
    /// Scenario name.
    pub name: String,
    /// Runs that passed.
    pub runs: u32,
    /// Events processed over all runs.
    pub steps: u64,
    /// Latest completion time over all runs.
    pub max_completion: Duration,
    /// Sum of completion times (for the mean).
    pub total_completion: Duration,
    /// ODATA lost on links, over all runs.
    pub odata_lost: u64,
    /// NAKs sent, over all runs.
    pub naks: u64,
    /// RDATA sent, over all runs.
    pub rdata: u64,
    /// Messages reported lost, over all runs and receivers.
    pub lost_messages: u64,
}

impl SweepSummary {
    fn add(&mut self, report: &SimReport) {
        self.runs += 1;
        self.steps += report.steps;
        let completion = report.completed_at.unwrap_or(report.ended_at);
        self.max_completion = self.max_completion.max(completion);
        self.total_completion += completion;
        self.odata_lost += report.odata_lost();
        self.naks += report.naks();
        self.rdata += report.rdata();
        self.lost_messages += report.hosts.iter().map(|h| h.lost_messages).sum::<u64>();
    }
}

impl fmt::Display for SweepSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean = self.total_completion / self.runs.max(1);
        write!(
            f,
            "sim {}: {} runs passed, {} steps; completion mean {:?} max {:?}; ODATA lost {}, NAKs {}, RDATA {}, messages reported lost {}",
            self.name,
            self.runs,
            self.steps,
            mean,
            self.max_completion,
            self.odata_lost,
            self.naks,
            self.rdata,
            self.lost_messages
        )
    }
}
