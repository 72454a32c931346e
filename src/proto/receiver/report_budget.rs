//! `ReportBudget`: how often a receiver reports to one source, so that the session traffic the
//! group's reports cause stays within a configured share of the source's data rate (RTCP's rule,
//! RFC 3550 §6.2, applied to PGM-style reports).
//!
//! Every report costs the group its own datagram and, once the source echoes it, one echo entry
//! in an SPM. With `G` members each reporting every `I`, that is `G·c/I` bytes per second for a
//! per-report cost `c`; keeping it at most `share·R` of the data rate `R` gives
//!
//! ```text
//! I = clamp(G·c / (RECEIVER_PART · share · R), floor, ceiling)
//! ```
//!
//! - `G`: the group size the NAK backoff uses (the estimate with this member, or the fixed
//!   setting), so the interval grows with the group as it is learned;
//! - `c`: the encoded length of the report just sent plus one SPM echo entry;
//! - `R`: the bytes of data (ODATA and RDATA) this receiver got from the source since its previous
//!   report, over the time since then: every member sees about the same rate, so all compute
//!   about the same interval and their reports add up to the budget. A window shorter than half
//!   the floor is not a measurement: the first report, a few milliseconds after first contact, is
//!   followed by one a floor later, and the rate is measured from first contact to that one;
//! - `RECEIVER_PART` (1/2): the other half of the share is left for what the interval does not
//!   govern — the source's heartbeat SPMs (PGM's schedule: 2, 6, 14 ms… after each data packet,
//!   so up to three 36-byte SPMs per packet when packets are tens of milliseconds apart), NAKs
//!   and NCFs, and the first two reports of each member, which go out within
//!   `FIRST_REPORT_MAX` of joining and one floor later whatever the budget (they measure the
//!   RTT, announce the member and measure the rate: a join cost of `2·G·c` bytes, amortized
//!   over the transfer);
//! - `floor`: the configured `report_interval` (default 1 s), the most often a member reports;
//!   `ceiling`: [`MAX_REPORT_INTERVAL`]. Below a data rate of `G·c / (RECEIVER_PART · share ·
//!   ceiling)` (about 37 kB/s for 1,000 members at 5 %), and for an idle source, the ceiling wins
//!   and the share is exceeded: RTT and membership stay known at least once a minute.
//!
//! Invariant: [`ReportBudget::interval`] is always within `[floor, MAX_REPORT_INTERVAL]`, and
//! finite whatever the inputs (a zero rate or share gives the ceiling).

use std::time::{Duration, Instant};

/// Longest interval between two reports of one member to one source, whatever the budget says.
pub(crate) const MAX_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Part of the session share the receivers' reports (and their echoes) may use.
pub(crate) const RECEIVER_PART: f64 = 0.5;

/// Default share of the data rate for session traffic.
pub(crate) const DEFAULT_SESSION_SHARE: f64 = 0.05;

/// Data rate measurement and report interval of one receiver for one source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReportBudget {
    /// Share of the data rate allowed for session traffic, in `(0, 1]`.
    share: f64,
    /// Shortest interval (the configured report interval).
    floor: Duration,
    /// Data bytes received from the source since `since`.
    data_bytes: u64,
    /// Start of the current measurement: the previous report, or first contact.
    since: Instant,
}

impl ReportBudget {
    /// A budget measuring from `now` (first contact with the source).
    pub(crate) fn new(share: f64, floor: Duration, now: Instant) -> ReportBudget {
        ReportBudget {
            share: if share.is_finite() {
                share.clamp(0.0, 1.0)
            } else {
                0.0
            },
            floor: floor.min(MAX_REPORT_INTERVAL),
            data_bytes: 0,
            since: now,
        }
    }

    /// `bytes` of data (ODATA or RDATA) arrived from the source.
    pub(crate) fn on_data(&mut self, bytes: usize) {
        self.data_bytes = self.data_bytes.saturating_add(bytes as u64);
    }

    /// A report costing the group `report_cost` bytes goes out at `now` in a group of
    /// `group_size`: returns the interval to the next one (before jitter) and starts a new rate
    /// measurement.
    pub(crate) fn interval(
        &mut self,
        now: Instant,
        group_size: f64,
        report_cost: usize,
    ) -> Duration {
        let elapsed = now.saturating_duration_since(self.since);
        // Half the floor: the report a (jittered) floor after the first must count.
        if elapsed < self.floor / 2 {
            // Too short to measure a rate (the first report, a few milliseconds after first
            // contact, saw a handful of packets): measure on, and look again after the floor.
            return self.floor;
        }
        let rate = self.data_bytes as f64 / elapsed.as_secs_f64();
        self.data_bytes = 0;
        self.since = now;
        let budget = RECEIVER_PART * self.share * rate;
        let group = if group_size.is_finite() {
            group_size.max(1.0)
        } else {
            1.0
        };
        let seconds = group * report_cost as f64 / budget;
        let interval = Duration::try_from_secs_f64(seconds).unwrap_or(MAX_REPORT_INTERVAL);
        interval.clamp(self.floor, MAX_REPORT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(
        clippy::disallowed_methods,
        reason = "one real base instant per test; every later time is base + a Duration"
    )]
    fn base() -> Instant {
        Instant::now()
    }

    const SECOND: Duration = Duration::from_secs(1);

    /// The interval after one second at `rate` bytes/s.
    fn after_one_second(share: f64, rate: usize, group: f64, cost: usize) -> Duration {
        let t0 = base();
        let mut budget = ReportBudget::new(share, SECOND, t0);
        budget.on_data(rate);
        budget.interval(t0 + SECOND, group, cost)
    }

    #[test]
    fn the_interval_keeps_reports_within_the_share() {
        // 1,000 members, 60-byte reports, 1 MB/s, 5 %: 60 kB per round over 25 kB/s.
        let interval = after_one_second(0.05, 1_000_000, 1000.0, 60);
        assert!((interval.as_secs_f64() - 2.4).abs() < 1e-9, "{interval:?}");
        // Ten times the members or a tenth of the rate: ten times the interval.
        let wider = after_one_second(0.05, 100_000, 1000.0, 60);
        assert!((wider.as_secs_f64() - 24.0).abs() < 1e-9, "{wider:?}");
        // Whatever the interval, the group's reports stay within the receivers' part.
        for (rate, group) in [(1_000_000, 1000.0), (300_000, 5000.0), (10_000_000, 10.0)] {
            let interval = after_one_second(0.05, rate, group, 60);
            let per_second = group * 60.0 / interval.as_secs_f64();
            let floor_wins = interval == SECOND;
            assert!(floor_wins || per_second <= RECEIVER_PART * 0.05 * rate as f64 + 1e-6);
        }
    }

    #[test]
    fn floor_and_ceiling_bound_it() {
        // A small group at a high rate reports at the configured interval, no more often.
        assert_eq!(after_one_second(0.05, 10_000_000, 10.0, 60), SECOND);
        // An idle source, a zero share or a huge group: the ceiling.
        assert_eq!(after_one_second(0.05, 0, 10.0, 60), MAX_REPORT_INTERVAL);
        assert_eq!(
            after_one_second(0.0, 1_000_000, 10.0, 60),
            MAX_REPORT_INTERVAL
        );
        assert_eq!(after_one_second(0.05, 1_000, 1e9, 60), MAX_REPORT_INTERVAL);
        assert_eq!(
            after_one_second(f64::NAN, 1_000, f64::INFINITY, 60),
            MAX_REPORT_INTERVAL
        );
    }

    #[test]
    fn each_report_starts_a_new_measurement() {
        let t0 = base();
        let mut budget = ReportBudget::new(0.05, SECOND, t0);
        // The first report, 5 ms in, has seen one small packet: no rate yet, the floor.
        budget.on_data(20);
        assert_eq!(
            budget.interval(t0 + Duration::from_millis(5), 1000.0, 60),
            SECOND
        );
        // ...and the measurement goes on from first contact.
        budget.on_data(1_000_000 - 20);
        let busy = budget.interval(t0 + SECOND, 1000.0, 60);
        assert!((busy.as_secs_f64() - 2.4).abs() < 1e-9, "{busy:?}");
        // The next two seconds bring a tenth of the rate: the interval follows.
        budget.on_data(200_000);
        let quiet = budget.interval(t0 + 3 * SECOND, 1000.0, 60);
        assert!((quiet.as_secs_f64() / busy.as_secs_f64() - 10.0).abs() < 1e-9);
    }
}
