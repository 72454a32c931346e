//! Distance-to-source estimator: one [`RttEstimator`] per source a receiver hears.
//!
//! Samples come from two timestamp echoes: an NCF answering this receiver's own NAK (the NAK's
//! timestamp comes back) and an SPM echo of this receiver's report (the report's timestamp comes
//! back with the time the source held it). They are smoothed with SRM's EWMA, α = 1/4.
//!
//! Invariant: [`RttEstimator::rtt`] is the configured initial RTT until the first sample, and
//! afterwards always within [`MIN_RTT`, `MAX_RTT`].

use crate::stats::RttSummary;
use std::time::Duration;

/// Smallest RTT kept: below it, timer granularity is all that is measured.
pub(crate) const MIN_RTT: Duration = Duration::from_micros(50);

/// Largest RTT believed. A longer sample is discarded rather than clamped: the wire clock wraps
/// and echoes can be stale (an NCF answering a NAK of a previous incarnation) or forged, and one
/// such sample would otherwise inflate every backoff for a long time.
pub(crate) const MAX_RTT: Duration = Duration::from_secs(10);

/// Smoothed round-trip time to one source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    initial: Duration,
    smoothed: Option<Duration>,
    samples: u64,
}

impl RttEstimator {
    /// An estimator that reports `initial` until its first sample.
    pub(crate) fn new(initial: Duration) -> RttEstimator {
        RttEstimator {
            initial,
            smoothed: None,
            samples: 0,
        }
    }

    /// Feeds one measured round trip. Returns whether the sample was used.
    pub(crate) fn sample(&mut self, rtt: Duration) -> bool {
        if rtt > MAX_RTT {
            return false;
        }
        let rtt = rtt.max(MIN_RTT);
        self.smoothed = Some(match self.smoothed {
            None => rtt,
            // srtt ← 3/4 · srtt + 1/4 · sample (SRM's α = 0.25).
            Some(old) => old * 3 / 4 + rtt / 4,
        });
        self.samples += 1;
        true
    }

    /// The RTT to use now: smoothed, or the initial guess before any sample.
    pub(crate) fn rtt(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    /// The smoothed RTT, if at least one sample was taken.
    #[cfg(test)]
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// Samples taken so far.
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }
}

/// The RTT from an SPM echo: time since the echoed report was sent, minus the time the source
/// held it before sending the SPM.
pub(crate) fn echo_rtt(since_report: Duration, hold_us: u32) -> Duration {
    since_report.saturating_sub(Duration::from_micros(u64::from(hold_us)))
}

/// Summary over several estimators; `released_samples` adds samples of sources already gone.
pub(crate) fn summarize<'a>(
    estimators: impl Iterator<Item = &'a RttEstimator>,
    released_samples: u64,
) -> RttSummary {
    let mut summary = RttSummary {
        samples: released_samples,
        ..RttSummary::default()
    };
    for estimator in estimators {
        summary.samples += estimator.samples;
        let Some(rtt) = estimator.smoothed else {
            continue;
        };
        if summary.sources_measured == 0 {
            summary.min = rtt;
            summary.max = rtt;
        } else {
            summary.min = summary.min.min(rtt);
            summary.max = summary.max.max(rtt);
        }
        summary.sources_measured += 1;
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn initial_until_first_sample_then_ewma() {
        let mut est = RttEstimator::new(10 * MS);
        assert_eq!(est.rtt(), 10 * MS);
        assert_eq!(est.smoothed(), None);
        assert!(est.sample(2 * MS));
        assert_eq!(est.rtt(), 2 * MS, "the first sample replaces the guess");
        assert!(est.sample(6 * MS));
        assert_eq!(est.rtt(), 3 * MS, "3/4·2 + 1/4·6");
        assert_eq!(est.samples(), 2);
    }

    #[test]
    fn converges_to_a_steady_rtt() {
        let mut est = RttEstimator::new(100 * MS);
        for _ in 0..40 {
            est.sample(4 * MS);
        }
        let diff = est.rtt().abs_diff(4 * MS);
        assert!(diff < Duration::from_micros(5), "{:?}", est.rtt());
    }

    #[test]
    fn clamps_small_and_discards_absurd_samples() {
        let mut est = RttEstimator::new(10 * MS);
        assert!(
            !est.sample(Duration::from_secs(4000)),
            "a wrapped clock difference"
        );
        assert_eq!(est.samples(), 0);
        assert_eq!(est.rtt(), 10 * MS);
        assert!(est.sample(Duration::ZERO));
        assert_eq!(est.rtt(), MIN_RTT);
        assert!(est.sample(MAX_RTT));
    }

    #[test]
    fn echo_subtracts_hold_time() {
        assert_eq!(echo_rtt(5 * MS, 1_000), 4 * MS);
        assert_eq!(echo_rtt(MS, 5_000), Duration::ZERO);
    }

    #[test]
    fn summary_covers_measured_sources_only() {
        let mut a = RttEstimator::new(10 * MS);
        let mut b = RttEstimator::new(10 * MS);
        let c = RttEstimator::new(10 * MS);
        a.sample(2 * MS);
        b.sample(7 * MS);
        b.sample(7 * MS);
        let summary = summarize([a, b, c].iter(), 5);
        assert_eq!(summary.sources_measured, 2);
        assert_eq!(summary.min, 2 * MS);
        assert_eq!(summary.max, 7 * MS);
        assert_eq!(summary.samples, 8);
        assert_eq!(summarize(std::iter::empty(), 0), RttSummary::default());
    }
}
