//! `GroupSizeEstimator`: how many members receive a source, estimated from the member ids a
//! receiver happens to hear about — the reporters a source's SPMs echo, the requesters of
//! foreign NAKs and of NCFs — with a k-minimum-values sketch (Bar-Yossef et al. 2002).
//!
//! Each id is hashed to a uniform 64-bit value; the sketch keeps the [`SKETCH_SIZE`] smallest
//! distinct hashes. With fewer than that many ids heard the count is exact; beyond, the k-th
//! smallest hash `h_k` (as a fraction of 2^64) estimates the number of distinct ids as
//! `(k − 1)/h_k`, within about `1/√(k − 2)` (18 % for k = 32). Hearing an id again changes
//! nothing, so the estimate counts members, not messages, and costs no traffic: it is feedback
//! sampling on what the protocol sends anyway. The SPM echo list is bounded, so ids arrive over
//! several SPMs and the estimate grows towards the group size as reports rotate through it.
//!
//! Invariant: at most [`SKETCH_SIZE`] hashes are kept, sorted and distinct; memory and the cost
//! of an observation are bounded whatever the group size.

/// SplitMix64's output function: member ids are chosen by the network, so they are mixed
/// before their order is trusted to be uniform.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes kept: the estimate's relative error is about `1/√(SKETCH_SIZE − 2)`.
pub(crate) const SKETCH_SIZE: usize = 32;

/// Distinct members heard, estimated.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupSizeEstimator {
    /// The smallest hashes seen, ascending, distinct.
    smallest: Vec<u64>,
}

impl GroupSizeEstimator {
    /// Notes that `member` exists. Returns whether the estimate may have changed.
    pub(crate) fn observe(&mut self, member: u64) -> bool {
        let hash = mix64(member);
        match self.smallest.binary_search(&hash) {
            Ok(_) => false,
            Err(index) => {
                if index >= SKETCH_SIZE {
                    return false;
                }
                self.smallest.insert(index, hash);
                self.smallest.truncate(SKETCH_SIZE);
                true
            }
        }
    }

    /// Whether no member was heard yet.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.smallest.is_empty()
    }

    /// Estimated number of distinct members heard (0 when none).
    pub(crate) fn estimate(&self) -> f64 {
        if self.smallest.len() < SKETCH_SIZE {
            return self.smallest.len() as f64;
        }
        let kth = self.smallest[SKETCH_SIZE - 1];
        // The k-th smallest of n uniform values is about k/n of the range.
        let fraction = (kth as f64 + 1.0) / 18_446_744_073_709_551_616.0;
        (SKETCH_SIZE - 1) as f64 / fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_groups_are_counted_exactly_and_repeats_ignored() {
        let mut estimator = GroupSizeEstimator::default();
        assert!(estimator.is_empty());
        assert_eq!(estimator.estimate(), 0.0);
        for member in 1..=10u64 {
            assert!(estimator.observe(member));
            assert!(!estimator.observe(member), "a repeat changes nothing");
        }
        assert_eq!(estimator.estimate(), 10.0);
    }

    #[test]
    fn large_groups_are_estimated_within_the_sketch_error() {
        for &members in &[100u64, 1_000, 10_000, 100_000] {
            let mut estimator = GroupSizeEstimator::default();
            // Ids as the protocol draws them: arbitrary 64-bit values, here a mixed sequence.
            for i in 0..members {
                estimator.observe(mix64(i ^ 0x5eed));
                estimator.observe(mix64(i ^ 0x5eed));
            }
            let ratio = estimator.estimate() / members as f64;
            assert!(
                (0.5..2.0).contains(&ratio),
                "{members} members estimated as {:.0}",
                estimator.estimate()
            );
            assert!(estimator.smallest.len() <= SKETCH_SIZE);
            assert!(estimator.smallest.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
