//! The repair timer every member that holds data uses before answering a NAK (the source, and
//! receivers when peer repair is on): SRM's uniform draw on `[D1·d, (D1 + D2)·d]`, `d` the
//! one-way distance from the repairer to the requester, times a learned factor.
//!
//! Self-tuning (SRM adaptive, made decisive as the NAK side's designated requester): a repair
//! this member sent that stood alone (no other repair heard within its hold-down) drops the
//! factor to the floor, so this member fires first next time — the designated repairer for the
//! losses near it, whose repair reaches every other holder before their timers (which start at
//! `D1 ≥ 2` distances) end. A duplicate doubles the factor: another member's repair of data
//! this member repaired too, or a second repair heard after the one that suppressed this
//! member's pending repair (the caller decides which). Being beaten to a repair while below 1
//! also doubles it: of two designated repairers the slower steps down at once. Both directions are bounded
//! ([`MIN_REPAIR_FACTOR`] or the timer's floor, [`MAX_REPAIR_FACTOR`]) and nothing moves with
//! `adaptive` off. Plain halving per sole repair (tried first) left several holders near the
//! floor at once, colliding: 1.38 repairs per loss against 1.1 in `tests/sim/peer_repair.rs`.
//!
//! Invariant: a draw lies within `[D1·d·f, (D1 + D2)·d·f]`, `f` within the timer's floor
//! (at least [`MIN_REPAIR_FACTOR`]) and [`MAX_REPAIR_FACTOR`], and never exceeds
//! [`MAX_REPAIR_DELAY`].

use rand::Rng;
use std::time::Duration;

/// Default D1: the fixed part of the repair delay, in distances to the requester. At least 1
/// so that a repairer as far as the requester's nearest neighbour cannot fire before that
/// neighbour's repair reached it (see `docs/suppression.md` §4).
pub(crate) const DEFAULT_D1: f64 = 2.0;
/// Default D2: the random spread of the repair delay, in distances to the requester.
pub(crate) const DEFAULT_D2: f64 = 2.0;
/// Smallest learned factor of a receiver: a designated repairer answers within a quarter to
/// half a distance.
pub(crate) const MIN_REPAIR_FACTOR: f64 = 0.125;
/// Smallest learned factor of the source (with peer repair on), and where it starts: it never
/// answers sooner than `D1/2` distances, so that a near peer's repair, which reaches the source
/// about one distance after the peer fired, can still cancel the source's (its RDATA would
/// otherwise duplicate every near peer's repair).
pub(crate) const SOURCE_MIN_REPAIR_FACTOR: f64 = 0.5;
/// Largest learned factor of the source: its RDATA leaves within `D1 + D2` distances, which
/// receivers waiting for it after the NCF allow for (`receiver::PeerState::wait_rtt`).
pub(crate) const SOURCE_MAX_REPAIR_FACTOR: f64 = 1.0;
/// Largest learned factor.
pub(crate) const MAX_REPAIR_FACTOR: f64 = 8.0;
/// Factor a receiver's timer starts at: wide, because every holder near a requester gets its
/// first distance samples in the same report round and would otherwise answer the same NAK
/// together (seven receivers within 4 ms in `tests/sim/peer_repair.rs` at factor 1); the first
/// repair that stands alone then makes its sender the designated repairer.
pub(crate) const RECEIVER_INITIAL_FACTOR: f64 = 2.0;
/// Longest repair delay drawn, whatever the distance estimate says.
pub(crate) const MAX_REPAIR_DELAY: Duration = Duration::from_secs(2);

/// One repairer's timer constants and learned factor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RepairTimer {
    d1: f64,
    d2: f64,
    adaptive: bool,
    factor: f64,
    min_factor: f64,
    max_factor: f64,
}

impl RepairTimer {
    /// A timer with constants `d1`, `d2` (negative values count as 0); learns only if
    /// `adaptive`.
    pub(crate) fn new(d1: f64, d2: f64, adaptive: bool) -> RepairTimer {
        RepairTimer {
            d1: d1.max(0.0),
            d2: d2.max(0.0),
            adaptive,
            factor: 1.0,
            min_factor: MIN_REPAIR_FACTOR,
            max_factor: MAX_REPAIR_FACTOR,
        }
    }

    /// The same timer learning within `min_factor..=max_factor` (clamped to the global bounds)
    /// and starting at `min_factor`.
    pub(crate) fn with_bounds(mut self, min_factor: f64, max_factor: f64) -> RepairTimer {
        self.min_factor = min_factor.clamp(MIN_REPAIR_FACTOR, MAX_REPAIR_FACTOR);
        self.max_factor = max_factor.clamp(self.min_factor, MAX_REPAIR_FACTOR);
        self.factor = self.min_factor;
        self
    }

    /// Delay before answering a requester `distance` away.
    pub(crate) fn draw(&self, rng: &mut impl Rng, distance: Duration) -> Duration {
        let unit: f64 = rng.random();
        let distances = (self.d1 + self.d2 * unit) * self.factor;
        let secs = distance.as_secs_f64() * distances;
        if secs.is_finite() && secs < MAX_REPAIR_DELAY.as_secs_f64() {
            Duration::from_secs_f64(secs.max(0.0))
        } else {
            MAX_REPAIR_DELAY
        }
    }

    /// A duplicate repair of data this member repaired or was about to repair: back off.
    pub(crate) fn on_duplicate(&mut self) {
        if self.adaptive {
            self.factor = (self.factor * 2.0).min(self.max_factor);
        }
    }

    /// One of this member's repairs stood alone through its hold-down: answer first.
    pub(crate) fn on_sole(&mut self) {
        if self.adaptive {
            self.factor = self.min_factor;
        }
    }

    /// Another member's repair came before this member's pending one: if this member thought
    /// itself the designated repairer (factor below 1), it steps down.
    pub(crate) fn on_beaten(&mut self) {
        if self.adaptive && self.factor < 1.0 {
            self.factor = (self.factor * 2.0).min(1.0).min(self.max_factor);
        }
    }

    /// The same timer starting at `factor` (within its bounds).
    pub(crate) fn starting_at(mut self, factor: f64) -> RepairTimer {
        self.factor = factor.clamp(self.min_factor, self.max_factor);
        self
    }

    /// The shortest delay this timer can learn to draw, in distances to the requester
    /// (`D1·f` at the floor): how fast this member answers once it is the designated repairer.
    pub(crate) fn earliest(&self) -> f64 {
        self.d1 * self.min_factor
    }

    /// The learned factor on the window.
    #[cfg(test)]
    pub(crate) fn factor(&self) -> f64 {
        self.factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn draws_lie_in_the_scaled_window() {
        let mut rng = SmallRng::seed_from_u64(1);
        let timer = RepairTimer::new(2.0, 2.0, true);
        let draws: Vec<Duration> = (0..1000).map(|_| timer.draw(&mut rng, 3 * MS)).collect();
        assert!(draws.iter().all(|d| (6 * MS..=12 * MS).contains(d)));
        // Uniform: both halves of the window are used.
        assert!(draws.iter().any(|d| *d < 7 * MS) && draws.iter().any(|d| *d > 11 * MS));
        assert_eq!(
            timer.draw(&mut rng, Duration::from_secs(3600)),
            MAX_REPAIR_DELAY
        );
    }

    #[test]
    fn duplicates_lengthen_and_sole_repairs_shorten_within_bounds() {
        let mut timer = RepairTimer::new(2.0, 2.0, true);
        timer.on_sole();
        assert_eq!(timer.factor(), MIN_REPAIR_FACTOR);
        let mut rng = SmallRng::seed_from_u64(2);
        // The designated repairer answers within half a distance.
        assert!(timer.draw(&mut rng, 8 * MS) <= 4 * MS);
        timer.on_beaten();
        assert_eq!(
            timer.factor(),
            2.0 * MIN_REPAIR_FACTOR,
            "beaten: steps down"
        );
        for _ in 0..10 {
            timer.on_beaten();
        }
        assert_eq!(timer.factor(), 1.0, "being beaten never backs off past 1");
        for _ in 0..10 {
            timer.on_duplicate();
        }
        assert_eq!(timer.factor(), MAX_REPAIR_FACTOR);
    }

    #[test]
    fn the_source_bounds_hold() {
        let mut timer = RepairTimer::new(2.0, 2.0, true)
            .with_bounds(SOURCE_MIN_REPAIR_FACTOR, SOURCE_MAX_REPAIR_FACTOR);
        assert_eq!(
            timer.factor(),
            SOURCE_MIN_REPAIR_FACTOR,
            "starts at its floor"
        );
        for _ in 0..10 {
            timer.on_duplicate();
        }
        assert_eq!(timer.factor(), SOURCE_MAX_REPAIR_FACTOR);
        timer.on_sole();
        assert_eq!(timer.factor(), SOURCE_MIN_REPAIR_FACTOR);
    }

    #[test]
    fn without_adaptation_nothing_is_learned() {
        let mut timer = RepairTimer::new(1.0, 1.0, false);
        timer.on_sole();
        timer.on_duplicate();
        timer.on_beaten();
        assert_eq!(timer.factor(), 1.0);
    }
}
