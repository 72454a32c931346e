//! The source's view of round-trip times to its receivers, measured from receiver reports that
//! echo an SPM timestamp, summarised as one "group RTT" (the largest smoothed RTT among
//! receivers heard recently), which stretches the repair linger.
//!
//! Invariants: at most [`MAX_MEMBERS`] receivers are tracked (reports from further receivers
//! are not sampled until stale ones are dropped); every sample is at most [`MAX_RTT_SAMPLE`]
//! (larger ones are echoes of garbage or of very old SPMs and are discarded).
//!
//! The group value rises at once with any larger smoothed RTT and is recomputed from scratch
//! (dropping receivers not heard for `stale_after`) at most once per `rescan_every`, so a
//! report costs O(log n) and the O(n) scan is periodic, like NORM's peak-then-decay GRTT. The
//! scan runs from the source's `handle_timeout`, which the ambient SPM timer wakes at least
//! every `spm_interval_max` once the stream has started; before that there is no linger to
//! stretch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most receivers whose RTT is tracked.
pub(super) const MAX_MEMBERS: usize = 4096;

/// Largest RTT sample believed.
pub(super) const MAX_RTT_SAMPLE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
struct MemberRtt {
    smoothed: Duration,
    heard_at: Instant,
}

/// Per-receiver smoothed RTTs and their maximum.
#[derive(Debug)]
pub(super) struct GroupRtt {
    // BTreeMap, not HashMap: member ids are chosen by the network, and a deterministic
    // iteration order keeps simulator runs replayable.
    members: BTreeMap<u64, MemberRtt>,
    group: Duration,
    stale_after: Duration,
    rescan_every: Duration,
    last_rescan: Option<Instant>,
}

impl GroupRtt {
    /// No receivers yet; group RTT zero.
    pub(super) fn new(stale_after: Duration, rescan_every: Duration) -> GroupRtt {
        GroupRtt {
            members: BTreeMap::new(),
            group: Duration::ZERO,
            stale_after,
            rescan_every,
            last_rescan: None,
        }
    }

    /// The largest smoothed RTT among receivers heard recently (zero before any sample).
    pub(super) fn group(&self) -> Duration {
        self.group
    }

    /// The smoothed RTT to `member`, if it was measured and is still tracked.
    pub(super) fn member(&self, member: u64) -> Option<Duration> {
        self.members.get(&member).map(|known| known.smoothed)
    }

    /// Receivers tracked.
    #[cfg(test)]
    pub(super) fn members(&self) -> usize {
        self.members.len()
    }

    /// One RTT sample for `member` at `now`. Returns whether it was taken.
    pub(super) fn sample(&mut self, now: Instant, member: u64, rtt: Duration) -> bool {
        if rtt > MAX_RTT_SAMPLE {
            return false;
        }
        let full = self.members.len() >= MAX_MEMBERS;
        let smoothed = match self.members.get_mut(&member) {
            Some(known) => {
                // EWMA, α = 1/8 (RFC 6298's SRTT gain).
                known.smoothed = (known.smoothed * 7 + rtt) / 8;
                known.heard_at = now;
                known.smoothed
            }
            None if full => return false,
            None => {
                self.members.insert(
                    member,
                    MemberRtt {
                        smoothed: rtt,
                        heard_at: now,
                    },
                );
                rtt
            }
        };
        self.group = self.group.max(smoothed);
        true
    }

    /// Drops receivers not heard for `stale_after` and recomputes the group RTT, at most once
    /// per `rescan_every`.
    pub(super) fn maintain(&mut self, now: Instant) {
        if self
            .last_rescan
            .is_some_and(|at| now.saturating_duration_since(at) < self.rescan_every)
        {
            return;
        }
        self.last_rescan = Some(now);
        let stale_after = self.stale_after;
        self.members
            .retain(|_, m| now.saturating_duration_since(m.heard_at) < stale_after);
        self.group = self
            .members
            .values()
            .map(|m| m.smoothed)
            .max()
            .unwrap_or(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::source::test_support::base_instant;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn smooths_per_member_and_tracks_max() {
        let t0 = base_instant();
        let mut rtt = GroupRtt::new(Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(rtt.group(), Duration::ZERO);
        assert!(rtt.sample(t0, 1, 8 * MS));
        assert!(rtt.sample(t0, 2, 2 * MS));
        assert_eq!(rtt.group(), 8 * MS);
        // Member 2: 2 ms then 18 ms → 2 + (18 − 2)/8 = 4 ms.
        assert!(rtt.sample(t0, 2, 18 * MS));
        assert_eq!(rtt.group(), 8 * MS);
        // Member 1 drops to 0: 8·7/8 = 7 ms; the group keeps its peak until the next rescan.
        assert!(rtt.sample(t0, 1, Duration::ZERO));
        assert_eq!(rtt.group(), 8 * MS);
        rtt.maintain(t0);
        assert_eq!(rtt.group(), 7 * MS);
    }

    #[test]
    fn stale_members_leave_the_group_value() {
        let t0 = base_instant();
        let mut rtt = GroupRtt::new(Duration::from_secs(3), Duration::from_secs(1));
        rtt.sample(t0, 1, 50 * MS);
        rtt.maintain(t0);
        rtt.sample(t0 + Duration::from_secs(2), 2, 5 * MS);
        rtt.maintain(t0 + Duration::from_millis(2500));
        assert_eq!(rtt.group(), 50 * MS);
        rtt.maintain(t0 + Duration::from_secs(4));
        assert_eq!(rtt.group(), 5 * MS, "member 1 not heard for 4 s is dropped");
        assert_eq!(rtt.members(), 1);
    }

    #[test]
    fn rejects_implausible_samples_and_bounds_members() {
        let t0 = base_instant();
        let mut rtt = GroupRtt::new(Duration::from_secs(3), Duration::from_secs(1));
        assert!(!rtt.sample(t0, 1, Duration::from_secs(11)));
        assert_eq!(rtt.group(), Duration::ZERO);
        for member in 0..MAX_MEMBERS as u64 + 100 {
            rtt.sample(t0, member, MS);
        }
        assert_eq!(rtt.members(), MAX_MEMBERS);
        // Known members still update.
        assert!(rtt.sample(t0, 0, 9 * MS));
        assert!(!rtt.sample(t0, u64::MAX, MS));
    }
}
