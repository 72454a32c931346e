//! `PeerDistances`: this member's round-trip times to *other receivers* (not sources), for
//! scaling its repair timers by the distance to each requester (peer repair).
//!
//! Samples come from two timestamp echoes, both in the send-timestamp + hold-time form that is
//! immune to clock offset:
//! - REPORT echoes: every member remembers the newest report timestamp heard from each other
//!   member and echoes up to [`MAX_REPORT_ECHOES`] of them (each once) in its own next report,
//!   with how long it held them, like SRM's session messages; a member finding its own
//!   timestamp echoed measures `now − timestamp − hold` to the echoing member;
//! - PEER_RDATA: a repairer echoes the answered NAK's timestamp and its hold time, so the
//!   requester measures its RTT to the repairer.
//!
//! Robustness: the one-way distance is half the *round trip*, so an asymmetric path yields the
//! mean of its two directions, never a value skewed by clock offset; samples above
//! [`MAX_RTT`] (wrapped or forged echoes) are discarded, and the EWMA (α = 1/4, as for sources)
//! damps single outliers. Until a member has a sample the caller falls back to its own distance
//! to the source.
//!
//! Invariant: at most [`MAX_PEERS`] members are tracked in each table; when a table is full the
//! entry not refreshed for longest is replaced. Tables are `BTreeMap`s so iteration (which
//! member to echo) is deterministic.

use super::rtt::{MAX_RTT, MIN_RTT};
use crate::wire::{Echo, MAX_REPORT_ECHOES};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most other members whose distance, or whose report timestamp to echo, is kept.
pub(crate) const MAX_PEERS: usize = 256;

/// A report timestamp older than this is not echoed (its hold time would dominate the sample).
pub(crate) const MAX_ECHO_HOLD: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
struct Smoothed {
    rtt: Duration,
    updated: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Heard {
    timestamp: u32,
    at: Instant,
    echoed: bool,
}

/// RTTs to other members and the report timestamps waiting to be echoed.
#[derive(Debug, Default)]
pub(crate) struct PeerDistances {
    rtts: BTreeMap<u64, Smoothed>,
    heard: BTreeMap<u64, Heard>,
    samples: u64,
}

impl PeerDistances {
    /// One measured round trip to `member`. Returns whether it was used.
    pub(crate) fn sample(&mut self, now: Instant, member: u64, rtt: Duration) -> bool {
        if rtt > MAX_RTT {
            return false;
        }
        let rtt = rtt.max(MIN_RTT);
        match self.rtts.get_mut(&member) {
            Some(known) => {
                known.rtt = known.rtt * 3 / 4 + rtt / 4;
                known.updated = now;
            }
            None => {
                if self.rtts.len() >= MAX_PEERS {
                    evict_stalest(&mut self.rtts, |entry| entry.updated);
                }
                self.rtts.insert(member, Smoothed { rtt, updated: now });
            }
        }
        self.samples += 1;
        true
    }

    /// The one-way distance to `member` (half the smoothed RTT), if measured.
    pub(crate) fn distance(&self, member: u64) -> Option<Duration> {
        self.rtts.get(&member).map(|known| known.rtt / 2)
    }

    /// Samples taken so far.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }

    /// Another member's report was heard at `now`: remember its timestamp to echo, and take a
    /// sample if it echoes one of ours (`own` is this member's id, `since` the wire clock's
    /// time since a timestamp of ours).
    pub(crate) fn on_report(
        &mut self,
        now: Instant,
        reporter: u64,
        timestamp: u32,
        echoes: &[Echo],
        own: u64,
        since: impl Fn(u32) -> Duration,
    ) {
        if let Some(echo) = echoes.iter().find(|echo| echo.member == own) {
            let rtt = since(echo.timestamp)
                .saturating_sub(Duration::from_micros(u64::from(echo.hold_us)));
            self.sample(now, reporter, rtt);
        }
        let fresh = Heard {
            timestamp,
            at: now,
            echoed: false,
        };
        if !self.heard.contains_key(&reporter) && self.heard.len() >= MAX_PEERS {
            evict_stalest(&mut self.heard, |entry| entry.at);
        }
        self.heard.insert(reporter, fresh);
    }

    /// Echoes for this member's next report: up to [`MAX_REPORT_ECHOES`] timestamps not echoed
    /// yet, newest first, each with the time it was held.
    pub(crate) fn take_echoes(&mut self, now: Instant) -> Vec<Echo> {
        let mut waiting: Vec<(Instant, u64)> = self
            .heard
            .iter()
            .filter(|(_, heard)| {
                !heard.echoed && now.saturating_duration_since(heard.at) <= MAX_ECHO_HOLD
            })
            .map(|(&member, heard)| (heard.at, member))
            .collect();
        waiting.sort_unstable_by(|a, b| b.cmp(a));
        waiting.truncate(MAX_REPORT_ECHOES);
        waiting
            .into_iter()
            .filter_map(|(_, member)| {
                let heard = self.heard.get_mut(&member)?;
                heard.echoed = true;
                let hold = now.saturating_duration_since(heard.at).as_micros();
                Some(Echo {
                    member,
                    timestamp: heard.timestamp,
                    hold_us: u32::try_from(hold).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }
}

/// Removes the entry whose `age_key` is oldest (O(n) over at most [`MAX_PEERS`] entries, only
/// when a new member arrives at a full table).
fn evict_stalest<T>(map: &mut BTreeMap<u64, T>, age_key: impl Fn(&T) -> Instant) {
    let stalest = map
        .iter()
        .min_by_key(|(_, entry)| age_key(entry))
        .map(|(&member, _)| member);
    if let Some(member) = stalest {
        map.remove(&member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn t0() -> Instant {
        crate::proto::source::test_support::base_instant()
    }

    #[test]
    fn report_echoes_measure_the_round_trip_without_clock_agreement() {
        let t0 = t0();
        let mut a = PeerDistances::default();
        // B heard A's report (A's timestamp 1000 µs) 3 ms before B's own report echoes it.
        let echo = Echo {
            member: 1,
            timestamp: 1_000,
            hold_us: 3_000,
        };
        // A's clock says 8 ms passed since its timestamp: RTT = 8 − 3 = 5 ms.
        a.on_report(t0, 2, 777, &[echo], 1, |ts| {
            assert_eq!(ts, 1_000);
            8 * MS
        });
        assert_eq!(a.distance(2), Some(Duration::from_micros(2_500)));
        assert_eq!(a.distance(3), None);
        // An echo for someone else is no sample.
        a.on_report(t0, 3, 5, &[echo], 9, |_| MS);
        assert_eq!(a.distance(3), None);
        assert_eq!(a.samples(), 1);
    }

    #[test]
    fn echoes_each_heard_timestamp_once_newest_first_with_hold() {
        let t0 = t0();
        let mut d = PeerDistances::default();
        for member in 0..20u64 {
            d.on_report(
                t0 + MS * member as u32,
                member + 10,
                member as u32,
                &[],
                1,
                |_| MS,
            );
        }
        let now = t0 + 30 * MS;
        let first = d.take_echoes(now);
        assert_eq!(first.len(), MAX_REPORT_ECHOES);
        assert_eq!(first[0].member, 29, "newest first");
        assert_eq!(first[0].hold_us, 11_000);
        let second = d.take_echoes(now);
        assert!(
            second
                .iter()
                .all(|e| !first.iter().any(|f| f.member == e.member))
        );
        // Stale timestamps are not echoed.
        assert!(d.take_echoes(now + MAX_ECHO_HOLD).is_empty());
    }

    #[test]
    fn tables_are_bounded_and_absurd_samples_dropped() {
        let t0 = t0();
        let mut d = PeerDistances::default();
        for member in 0..(MAX_PEERS as u64 + 50) {
            d.sample(t0 + MS * member as u32, member, 4 * MS);
            d.on_report(t0 + MS * member as u32, member, 0, &[], 999_999, |_| MS);
        }
        assert_eq!(d.rtts.len(), MAX_PEERS);
        assert_eq!(d.heard.len(), MAX_PEERS);
        assert_eq!(d.distance(0), None, "the stalest went first");
        assert!(!d.sample(t0, 5, MAX_RTT + MS));
        // EWMA.
        let last = MAX_PEERS as u64 + 49;
        d.sample(t0, last, 8 * MS);
        assert_eq!(d.distance(last), Some(Duration::from_micros(2_500)));
    }
}
