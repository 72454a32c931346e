//! When the source answers a NAK with RDATA, and what it learns from other members' repairs.
//!
//! The NCF always goes at once; the RDATA waits, by [`RepairMode`]:
//! - `Immediate` (the PGM-like and NORM-like baselines, as the issue fixes them);
//! - `Aggregate` (rmcast, source-only repair): a short window of [`AGGREGATION_FRACTION`] of
//!   the requester's RTT, at most [`MAX_AGGREGATION`], so NAKs of one loss that arrive nearly
//!   together are answered by one RDATA — the linger after it (in `mod.rs`) then catches those
//!   that crossed it;
//! - `Timer` (peer repair on): the repair timer every holder uses, `[D1·d, (D1 + D2)·d]` with
//!   `d` half the RTT to the requester, never shorter than the aggregation window — but only
//!   while receivers are seen repairing (a PEER_RDATA heard within [`PEER_ACTIVITY`]); until
//!   then, or when they have fallen silent, the aggregation window alone, since nobody could
//!   cancel the RDATA and waiting would only add latency (the table's topologies, where the
//!   source is the nearest holder: +0.1 to +2.7 RTT of mean recovery with the timer always on).
//!   A receiver's repair heard meanwhile cancels the RDATA (`mod.rs`); one heard after the
//!   RDATA went is a duplicate and backs the timer off, and a repair that stood alone through
//!   its hold-down shortens it ([`RepairTimer`]).
//!
//! Invariant: at most [`MAX_OUTCOMES`] sent repairs are remembered for learning; the oldest is
//! forgotten first.

use crate::proto::receiver::BackoffStrategy;
use crate::proto::repair_timer::RepairTimer;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Share of the requester's RTT the source aggregates NAKs for before repairing.
pub(super) const AGGREGATION_FRACTION: f64 = 0.0625;
/// Longest aggregation window, whatever the RTT.
pub(super) const MAX_AGGREGATION: Duration = Duration::from_millis(5);
/// Most sent repairs remembered for learning.
pub(super) const MAX_OUTCOMES: usize = 4096;
/// How long after the last receiver's repair heard the source keeps waiting its repair timer.
pub(super) const PEER_ACTIVITY: Duration = Duration::from_secs(10);

/// How the source times its repairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RepairMode {
    /// RDATA at once.
    Immediate,
    /// RDATA after the aggregation window.
    Aggregate,
    /// RDATA after the distance-scaled repair timer (peer repair on).
    Timer,
}

impl RepairMode {
    /// The mode of a member with NAK strategy `strategy` and peer repair `peer_repair`.
    pub(super) fn of(strategy: BackoffStrategy, peer_repair: bool) -> RepairMode {
        match strategy {
            BackoffStrategy::PgmLike | BackoffStrategy::NormLike => RepairMode::Immediate,
            BackoffStrategy::Scaled | BackoffStrategy::Srm if peer_repair => RepairMode::Timer,
            BackoffStrategy::Scaled | BackoffStrategy::Srm => RepairMode::Aggregate,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Outcome {
    hold_until: Instant,
    duplicated: bool,
}

/// The source's repair delays and what it learned.
#[derive(Debug)]
pub(super) struct RepairTiming {
    mode: RepairMode,
    timer: RepairTimer,
    /// Repairs sent recently, by window index.
    outcomes: BTreeMap<u64, Outcome>,
    /// When a receiver's repair of this stream was last heard.
    peers_heard_at: Option<Instant>,
}

impl RepairTiming {
    /// Timing for `mode` with the repair timer `timer` (used in `Timer` mode only).
    pub(super) fn new(mode: RepairMode, timer: RepairTimer) -> RepairTiming {
        RepairTiming {
            mode,
            timer,
            outcomes: BTreeMap::new(),
            peers_heard_at: None,
        }
    }

    /// How long to hold, at `now`, the RDATA answering a requester `rtt` away.
    pub(super) fn delay(&self, rng: &mut impl Rng, rtt: Duration, now: Instant) -> Duration {
        let aggregate = rtt.mul_f64(AGGREGATION_FRACTION).min(MAX_AGGREGATION);
        let peers_active = self
            .peers_heard_at
            .is_some_and(|at| now.saturating_duration_since(at) < PEER_ACTIVITY);
        match self.mode {
            RepairMode::Immediate => Duration::ZERO,
            RepairMode::Timer if peers_active => self.timer.draw(rng, rtt / 2).max(aggregate),
            RepairMode::Aggregate | RepairMode::Timer => aggregate,
        }
    }

    /// The RDATA of `index` went at `now`; other repairs of it heard before `hold_until` are
    /// duplicates.
    pub(super) fn on_sent(&mut self, index: u64, now: Instant, hold_until: Instant) {
        if self.mode != RepairMode::Timer {
            return;
        }
        self.settle(now);
        if self.outcomes.len() >= MAX_OUTCOMES {
            self.outcomes.pop_first();
        }
        self.outcomes.insert(
            index,
            Outcome {
                hold_until,
                duplicated: false,
            },
        );
    }

    /// A receiver's repair of `index` was heard at `now`.
    pub(super) fn on_peer_repair(&mut self, index: u64, now: Instant) {
        self.peers_heard_at = Some(now);
        self.settle(now);
        if let Some(outcome) = self.outcomes.get_mut(&index)
            && !outcome.duplicated
        {
            outcome.duplicated = true;
            self.timer.on_duplicate();
        }
    }

    /// Ends the hold-downs that are over: repairs that met no duplicate stood alone.
    fn settle(&mut self, now: Instant) {
        let over: Vec<u64> = self
            .outcomes
            .iter()
            .filter(|(_, outcome)| outcome.hold_until <= now)
            .map(|(&index, _)| index)
            .collect();
        for index in over {
            if let Some(outcome) = self.outcomes.remove(&index)
                && !outcome.duplicated
            {
                self.timer.on_sole();
            }
        }
    }

    /// The learned factor of the repair timer.
    #[cfg(test)]
    pub(super) fn factor(&self) -> f64 {
        self.timer.factor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn modes_by_strategy_and_peer_repair() {
        assert_eq!(
            RepairMode::of(BackoffStrategy::PgmLike, true),
            RepairMode::Immediate
        );
        assert_eq!(
            RepairMode::of(BackoffStrategy::NormLike, false),
            RepairMode::Immediate
        );
        assert_eq!(
            RepairMode::of(BackoffStrategy::Scaled, false),
            RepairMode::Aggregate
        );
        assert_eq!(
            RepairMode::of(BackoffStrategy::Scaled, true),
            RepairMode::Timer
        );
    }

    #[test]
    fn delays_by_mode() {
        let mut rng = SmallRng::seed_from_u64(1);
        let timer = RepairTimer::new(2.0, 2.0, true);
        let t0 = super::super::test_support::base_instant();
        let immediate = RepairTiming::new(RepairMode::Immediate, timer);
        assert_eq!(immediate.delay(&mut rng, 8 * MS, t0), Duration::ZERO);
        let aggregate = RepairTiming::new(RepairMode::Aggregate, timer);
        assert_eq!(aggregate.delay(&mut rng, 16 * MS, t0), MS);
        assert_eq!(aggregate.delay(&mut rng, 400 * MS, t0), MAX_AGGREGATION);
        let mut timed = RepairTiming::new(RepairMode::Timer, timer);
        assert_eq!(
            timed.delay(&mut rng, 16 * MS, t0),
            MS,
            "no receiver repairs yet: the aggregation window alone"
        );
        timed.on_peer_repair(0, t0);
        for _ in 0..100 {
            let delay = timed.delay(&mut rng, 8 * MS, t0 + MS);
            assert!((8 * MS..=16 * MS).contains(&delay), "{delay:?}");
        }
        assert_eq!(
            timed.delay(&mut rng, 16 * MS, t0 + PEER_ACTIVITY),
            MS,
            "receivers silent again"
        );
        // The source's timer starts at its floor: D1/2..(D1+D2)/2 distances.
        let mut source = RepairTiming::new(
            RepairMode::Timer,
            timer.with_bounds(
                crate::proto::repair_timer::SOURCE_MIN_REPAIR_FACTOR,
                crate::proto::repair_timer::SOURCE_MAX_REPAIR_FACTOR,
            ),
        );
        source.on_peer_repair(0, t0);
        for _ in 0..100 {
            let delay = source.delay(&mut rng, 8 * MS, t0);
            assert!((4 * MS..=8 * MS).contains(&delay), "{delay:?}");
        }
    }

    #[test]
    fn learns_from_duplicates_and_sole_repairs() {
        let t0 = super::super::test_support::base_instant();
        let timer = RepairTimer::new(2.0, 2.0, true).with_bounds(
            crate::proto::repair_timer::SOURCE_MIN_REPAIR_FACTOR,
            crate::proto::repair_timer::SOURCE_MAX_REPAIR_FACTOR,
        );
        let mut timing = RepairTiming::new(RepairMode::Timer, timer);
        timing.on_sent(1, t0, t0 + 10 * MS);
        timing.on_peer_repair(1, t0 + MS);
        timing.on_peer_repair(1, t0 + 2 * MS);
        assert_eq!(timing.factor(), 1.0, "one duplicate per packet: doubled");
        timing.on_sent(2, t0 + 20 * MS, t0 + 30 * MS);
        timing.on_peer_repair(9, t0 + 40 * MS);
        assert_eq!(
            timing.factor(),
            crate::proto::repair_timer::SOURCE_MIN_REPAIR_FACTOR,
            "stood alone: down to the source's floor"
        );
        // Peer repairs heard for packets the source never sent teach nothing.
        timing.on_peer_repair(3, t0 + 41 * MS);
        assert_eq!(
            timing.factor(),
            crate::proto::repair_timer::SOURCE_MIN_REPAIR_FACTOR
        );
    }
}
