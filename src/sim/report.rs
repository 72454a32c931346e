//! What a run produced: [`SimReport`] with per-host [`HostReport`]s, per-link counters, the
//! trace hash and the broken oracles.
//!
//! Invariant: a report holds only virtual times and counters, never wall-clock instants, so
//! two runs of the same seed give equal reports.

use super::check::Violation;
use super::link::LinkStats;
use super::topology::HostId;
use crate::stats::Stats;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// What one host did in a run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostReport {
    /// The host.
    pub host: HostId,
    /// Its address.
    pub addr: SocketAddr,
    /// Its member's counters at the end.
    pub stats: Stats,
    /// Messages its application handed to the member.
    pub messages_sent: u32,
    /// Messages it delivered (from all sources).
    pub delivered: u64,
    /// Messages it reported lost.
    pub lost_messages: u64,
    /// Packets it reported lost.
    pub lost_packets: u64,
    /// When it had accounted for every message of every source (`None`: never, or it
    /// receives from no source).
    pub completed_at: Option<Duration>,
    /// Whether it was crashed by a scripted action.
    pub crashed: bool,
}

/// The result of one run: counters, timing, the trace hash and any broken oracles.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimReport {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Virtual time when every receiver had accounted for every message.
    pub completed_at: Option<Duration>,
    /// Virtual time when the run stopped.
    pub ended_at: Duration,
    /// Events processed.
    pub steps: u64,
    /// Hash of every input, output and link decision, in order: equal for equal runs.
    pub trace_hash: u64,
    /// Per host.
    pub hosts: Vec<HostReport>,
    /// Per directed link: name (`r0->h3`) and counters.
    pub links: Vec<(String, LinkStats)>,
    /// Most datagrams in flight at once.
    pub peak_in_flight: usize,
    /// Unicast datagrams to addresses of no host.
    pub unroutable: u64,
    /// For every packet a receiver got first as a repair: how much later than its original
    /// would have arrived (one entry per receiver and packet).
    pub recovery_delays: Vec<Duration>,
    /// Largest path delay from a source to a receiver, half the farthest receiver's RTT.
    pub max_path_delay: Duration,
    /// Broken oracles (the first few).
    pub violations: Vec<Violation>,
    /// Number of broken oracles, including those not kept.
    pub violation_count: usize,
    /// The event trace, when it was recorded.
    pub trace: Option<Vec<String>>,
}

impl SimReport {
    /// No oracle broke.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }

    /// No oracle broke, the run completed, and no host lost a message.
    #[must_use]
    pub fn delivered_everything(&self) -> bool {
        self.passed()
            && self.completed_at.is_some()
            && self.hosts.iter().all(|host| host.lost_messages == 0)
    }

    /// Sum of one counter over all hosts.
    pub fn total(&self, counter: impl Fn(&Stats) -> u64) -> u64 {
        self.hosts.iter().map(|h| counter(&h.stats)).sum()
    }

    /// NAK datagrams sent by all members.
    #[must_use]
    pub fn naks(&self) -> u64 {
        self.total(|s| s.tx.nak.packets)
    }

    /// NCF datagrams sent by all members.
    #[must_use]
    pub fn ncfs(&self) -> u64 {
        self.total(|s| s.tx.ncf.packets)
    }

    /// RDATA datagrams sent by all members.
    #[must_use]
    pub fn rdata(&self) -> u64 {
        self.total(|s| s.tx.rdata.packets)
    }

    /// Bytes of control datagrams (NAK, NCF, SPM, REPORT) sent by all members.
    #[must_use]
    pub fn control_bytes(&self) -> u64 {
        self.control_bytes_by_kind().iter().sum()
    }

    /// [`SimReport::control_bytes`] by kind: NAK, NCF, SPM and REPORT bytes.
    #[must_use]
    pub fn control_bytes_by_kind(&self) -> [u64; 4] {
        [
            self.total(|s| s.tx.nak.bytes),
            self.total(|s| s.tx.ncf.bytes),
            self.total(|s| s.tx.spm.bytes),
            self.total(|s| s.tx.report.bytes),
        ]
    }

    /// Bytes of data datagrams (ODATA and RDATA) sent by all members.
    #[must_use]
    pub fn data_bytes(&self) -> u64 {
        self.total(|s| s.tx.odata.bytes + s.tx.rdata.bytes)
    }

    /// Recovery delays in round trips of the farthest receiver, sorted ascending.
    #[must_use]
    pub fn recovery_in_rtts(&self) -> Vec<f64> {
        let rtt = (self.max_path_delay * 2).as_secs_f64();
        if rtt <= 0.0 {
            return Vec::new();
        }
        let mut delays: Vec<f64> = self
            .recovery_delays
            .iter()
            .map(|d| d.as_secs_f64() / rtt)
            .collect();
        delays.sort_by(f64::total_cmp);
        delays
    }

    /// ODATA copies lost on links: the loss events the protocol had to repair (a loss on a
    /// shared link counts once, however many receivers it cut off).
    #[must_use]
    pub fn odata_lost(&self) -> u64 {
        self.links.iter().map(|(_, l)| l.lost_odata).sum()
    }

    /// RDATA copies lost on links: repairs that had to be asked for again (a loss on a shared
    /// link counts once).
    #[must_use]
    pub fn rdata_lost(&self) -> u64 {
        self.links.iter().map(|(_, l)| l.lost_rdata).sum()
    }
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} seed {}: {} after {} steps, ended at {:?}, completed at {:?}, trace hash {:016x}",
            self.scenario,
            self.seed,
            if self.passed() { "passed" } else { "FAILED" },
            self.steps,
            self.ended_at,
            self.completed_at,
            self.trace_hash
        )?;
        writeln!(
            f,
            "  network: {} ODATA lost on links, peak {} in flight; protocol: {} NAKs, {} NCFs, {} RDATA",
            self.odata_lost(),
            self.peak_in_flight,
            self.naks(),
            self.ncfs(),
            self.rdata()
        )?;
        for host in self.hosts.iter().take(12) {
            let s = &host.stats;
            writeln!(
                f,
                "  h{} {}: app sent {}, delivered {}, lost {} msgs/{} pkts, done {:?}{}; tx odata {} rdata {} nak {} ncf {} spm {}; rx dup {}",
                host.host.0,
                host.addr,
                host.messages_sent,
                host.delivered,
                host.lost_messages,
                host.lost_packets,
                host.completed_at,
                if host.crashed { " (crashed)" } else { "" },
                s.tx.odata.packets,
                s.tx.rdata.packets,
                s.tx.nak.packets,
                s.tx.ncf.packets,
                s.tx.spm.packets,
                s.recovery.duplicates
            )?;
        }
        if self.hosts.len() > 12 {
            writeln!(f, "  ... {} more hosts", self.hosts.len() - 12)?;
        }
        for violation in &self.violations {
            writeln!(f, "  VIOLATION {violation}")?;
        }
        if self.violation_count > self.violations.len() {
            writeln!(
                f,
                "  ... {} more violations",
                self.violation_count - self.violations.len()
            )?;
        }
        Ok(())
    }
}
