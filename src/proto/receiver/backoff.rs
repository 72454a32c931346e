//! Pure timer arithmetic of the receiver: NAK backoff, the waits of the NAK cycle and the
//! jitter of receiver reports.
//!
//! Every function maps `(rng, rtt, params)` to a [`Duration`] and keeps no state, so each
//! distribution can be tested alone. Scaling follows SRM (Floyd et al. 1997): the request timer
//! is uniform on `[C1·d, (C1+C2)·d]`, where `d` is the one-way distance to the source, taken as
//! half the smoothed RTT.
//!
//! Invariant: every result is finite and non-negative; the NAK-cycle results are at most
//! [`MAX_NAK_TIMER`], and the waits that follow a NAK are strictly positive, so the NAK state
//! machine always moves forward in time.

use rand::Rng;
use std::time::Duration;

/// Smallest one-way distance used for scaling. Loopback RTTs of a few µs would otherwise
/// shrink the backoff spread below the time another receiver's NAK needs to arrive, and
/// suppression would never happen.
pub(crate) const MIN_DISTANCE: Duration = Duration::from_micros(100);

/// Added to the wait for repair data: the source paces RDATA behind its rate limit and may
/// aggregate NAKs briefly before repairing, so the repair can lag the NCF by more than an RTT.
pub(crate) const DATA_WAIT_MARGIN: Duration = Duration::from_millis(1);

/// Added to the wait for an NCF, for the same reason: the source's answer may queue behind
/// paced data, and a slow NCF must cost a repeated NAK, not a retry budget spent in a burst.
pub(crate) const NCF_WAIT_MARGIN: Duration = Duration::from_millis(1);

/// Ceiling of every NAK-cycle timer, whatever the settings say: a bogus C1/C2 must not park a
/// gap for hours.
pub(crate) const MAX_NAK_TIMER: Duration = Duration::from_secs(60);

/// The first report to a new source goes out within this time, so the RTT to it is measured
/// early instead of one whole report interval later. Not shorter: every member's first report
/// is multicast to the whole group, and a thousand of them within 2 ms put a million datagrams
/// in flight in the simulator (320 Mbit/s on every leaf link).
pub(crate) const FIRST_REPORT_MAX: Duration = Duration::from_millis(10);

/// Shortest report interval honoured, so a zero setting cannot turn reports into a busy loop.
const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(1);

/// Largest factor accepted for C1 or C2; beyond it every timer hits [`MAX_NAK_TIMER`] anyway.
const MAX_FACTOR: f64 = 1_000.0;

/// SRM request-timer constants, in one-way distances to the source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BackoffParams {
    /// Lower bound of the backoff (SRM C1).
    pub(crate) c1: f64,
    /// Spread of the backoff above the lower bound (SRM C2).
    pub(crate) c2: f64,
}

impl BackoffParams {
    /// Parameters from settings; negative or non-finite values become 0 and huge ones are
    /// capped, so the timer arithmetic never sees NaN or infinity.
    pub(crate) fn new(c1: f64, c2: f64) -> BackoffParams {
        fn sane(factor: f64) -> f64 {
            if factor.is_finite() && factor > 0.0 {
                factor.min(MAX_FACTOR)
            } else {
                0.0
            }
        }
        BackoffParams {
            c1: sane(c1),
            c2: sane(c2),
        }
    }
}

/// Backoff window of the PGM-like baseline: ZeroMQ's NAK_BO_IVL, whatever the distance.
pub(crate) const PGM_BACKOFF_WINDOW: Duration = Duration::from_millis(50);

/// NORM's backoff factor K: the window is `K·GRTT`.
pub(crate) const NORM_BACKOFF_FACTOR: f64 = 4.0;

/// NORM's default group size, fixed and never measured.
pub(crate) const NORM_GROUP_SIZE: f64 = 1000.0;

/// Window of the rmcast strategy in one-way distances per unit of `λ = ln(G) + 1`: the window
/// `T = SCALED_WINDOW_FACTOR · λ · d` keeps the density of timers at the first expiry, and so the
/// NAKs that go out before the first one is heard, about constant whatever the group size, while
/// the first expiry itself stays near `1.3·T/λ`, a constant number of distances (see
/// `docs/suppression.md`).
pub(crate) const SCALED_WINDOW_FACTOR: f64 = 3.0;

/// How a receiver draws the time to wait before NAKing a missing packet, set with
/// [`crate::GroupConfig::nak_backoff`]. Every variant runs the same NAK cycle (NCF, retries,
/// give-up floor); they differ only in this draw and in what they learn. `docs/suppression.md`
/// compares them in the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackoffStrategy {
    /// rmcast's default: RFC 5401's truncated exponential on `(0, T]`, with the window scaled
    /// by the one-way distance `d` to the source and by `λ = ln(G) + 1` of the group size `G`:
    /// `T = 3·λ·d·f`. With self-tuning, `f` makes the member that asks alone the group's
    /// requester (a window of one distance) and the others defer to it.
    #[default]
    Scaled,
    /// SRM: uniform on `[C1·d, (C1 + C2·f)·d]` (C1 = 1, C2 = 2), `f` a spread learned from
    /// duplicate NAKs when self-tuning.
    Srm,
    /// Baseline after PGM as deployed (ZeroMQ): uniform on `(0, 50 ms]`, no distance scaling,
    /// nothing learned.
    PgmLike,
    /// Baseline after NORM: truncated exponential on `(0, K·RTT]` with K = 4 and the group size
    /// fixed at 1000, nothing learned.
    NormLike,
}

/// RFC 5401's truncated exponential on `(0, window]` for a group of `group_size`: with
/// `λ = ln(G) + 1` and `u` uniform on `[0, 1)`, `t = (window/λ)·ln(1 + u·(e^λ − 1))`, the same
/// distribution as NORM's `ExponentialRand(window, gsize)` written without the offset form.
#[cfg(test)]
pub(crate) fn truncated_exponential(
    rng: &mut impl Rng,
    window: Duration,
    group_size: f64,
) -> Duration {
    truncated_exponential_at(rng.random(), window, group_size)
}

/// [`truncated_exponential`] for a given uniform draw `unit` in `[0, 1)`: the same quantile of
/// the distribution, so a draw can be re-timed when the window or the group size changes.
pub(crate) fn truncated_exponential_at(unit: f64, window: Duration, group_size: f64) -> Duration {
    let lambda = lambda(group_size);
    let fraction = (unit * lambda.exp_m1()).ln_1p() / lambda;
    scale(window, fraction.clamp(0.0, 1.0), MAX_NAK_TIMER)
}

/// `λ = ln(G) + 1`, with `G` at least 1 (and at most a billion, so `e^λ` stays finite).
pub(crate) fn lambda(group_size: f64) -> f64 {
    let group = if group_size.is_finite() {
        group_size.clamp(1.0, 1e9)
    } else {
        1.0
    };
    group.ln() + 1.0
}

/// One-way distance to the source: half the RTT, at least [`MIN_DISTANCE`].
pub(crate) fn one_way_distance(rtt: Duration) -> Duration {
    (rtt / 2).max(MIN_DISTANCE)
}

/// `base · factor`, saturating at `cap`.
pub(crate) fn scale(base: Duration, factor: f64, cap: Duration) -> Duration {
    Duration::try_from_secs_f64(base.as_secs_f64() * factor)
        .unwrap_or(cap)
        .min(cap)
}

/// Time to wait before NAKing a newly missing packet: uniform on `[C1·d, (C1+C2)·d]`.
#[cfg(test)]
pub(crate) fn nak_backoff(rng: &mut impl Rng, rtt: Duration, params: BackoffParams) -> Duration {
    nak_backoff_at(rng.random(), rtt, params)
}

/// [`nak_backoff`] for a given uniform draw `unit` in `[0, 1)`.
pub(crate) fn nak_backoff_at(unit: f64, rtt: Duration, params: BackoffParams) -> Duration {
    scale(
        one_way_distance(rtt),
        params.c1 + params.c2 * unit,
        MAX_NAK_TIMER,
    )
}

/// Time to wait for the source's NCF after sending a NAK: the round trip, twice over (the NAK
/// or the NCF may queue behind data), plus `span`, the backoff window within which other
/// receivers' NAKs for the same loss arrive and are answered, plus [`NCF_WAIT_MARGIN`].
pub(crate) fn ncf_wait(rtt: Duration, span: Duration) -> Duration {
    let distance = one_way_distance(rtt);
    (distance * 4 + span.min(MAX_NAK_TIMER) + NCF_WAIT_MARGIN).min(MAX_NAK_TIMER)
}

/// Time to wait for repair data after a suppressing NAK: three round trips (the NAK still has
/// to reach the source) plus [`DATA_WAIT_MARGIN`] for the source's pacing.
pub(crate) fn data_wait(rtt: Duration) -> Duration {
    (one_way_distance(rtt) * 6 + DATA_WAIT_MARGIN).min(MAX_NAK_TIMER)
}

/// Time to wait for repair data after an NCF: the source sends the RDATA right behind its NCF
/// (only pacing separates them), so two one-way distances plus [`DATA_WAIT_MARGIN`] cover a
/// queue of repairs. Waiting the full [`data_wait`] here made a lost repair — 1 % of them on a
/// 1 %-lossy source uplink — cost over 8 RTT, the p99 of the suppression table.
pub(crate) fn repair_wait(rtt: Duration) -> Duration {
    (one_way_distance(rtt) * 2 + DATA_WAIT_MARGIN).min(MAX_NAK_TIMER)
}

/// Time to the next receiver report: `interval` ± 10 %, as SRM jitters session messages so
/// that receivers started together do not report in lockstep.
pub(crate) fn report_delay(rng: &mut impl Rng, interval: Duration) -> Duration {
    let interval = interval.max(MIN_REPORT_INTERVAL);
    scale(interval, rng.random_range(0.9..=1.1), Duration::MAX)
}

/// Time from first contact with a source to the first report: half to all of
/// `min(interval, FIRST_REPORT_MAX)`, jittered like the later reports.
pub(crate) fn first_report_delay(rng: &mut impl Rng, interval: Duration) -> Duration {
    let cap = interval.max(MIN_REPORT_INTERVAL).min(FIRST_REPORT_MAX);
    scale(cap, rng.random_range(0.5..=1.0), cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn mean(samples: &[Duration]) -> Duration {
        samples.iter().sum::<Duration>() / samples.len() as u32
    }

    #[test]
    fn backoff_is_uniform_between_c1_d_and_c1_plus_c2_d() {
        let mut rng = SmallRng::seed_from_u64(1);
        let params = BackoffParams::new(1.0, 2.0);
        let rtt = Duration::from_millis(10); // d = 5 ms: range [5 ms, 15 ms], mean 10 ms
        let draws: Vec<Duration> = (0..10_000)
            .map(|_| nak_backoff(&mut rng, rtt, params))
            .collect();
        let low = Duration::from_millis(5);
        let high = Duration::from_millis(15);
        assert!(
            draws.iter().all(|d| (low..=high).contains(d)),
            "draw out of range"
        );
        let m = mean(&draws).as_secs_f64();
        assert!((m - 0.010).abs() < 0.000_15, "mean {m} is not 10 ms");
        // Uniform: each third of the range holds about a third of the draws.
        let lower_third = draws
            .iter()
            .filter(|d| **d < Duration::from_secs_f64(0.005 + 0.010 / 3.0))
            .count();
        assert!(
            (3_000..3_700).contains(&lower_third),
            "{lower_third} in the lower third"
        );
        // Both ends are reached, so the spread is really used.
        assert!(draws.iter().any(|d| *d < Duration::from_micros(5_100)));
        assert!(draws.iter().any(|d| *d > Duration::from_micros(14_900)));
    }

    #[test]
    fn backoff_scales_with_rtt_and_constants() {
        let mut rng = SmallRng::seed_from_u64(2);
        let params = BackoffParams::new(2.0, 2.0);
        let rtt = Duration::from_millis(40); // d = 20 ms: [40 ms, 80 ms], mean 60 ms
        let draws: Vec<Duration> = (0..10_000)
            .map(|_| nak_backoff(&mut rng, rtt, params))
            .collect();
        assert!(
            draws
                .iter()
                .all(|d| (Duration::from_millis(40)..=Duration::from_millis(80)).contains(d))
        );
        let m = mean(&draws).as_secs_f64();
        assert!((m - 0.060).abs() < 0.001, "mean {m} is not 60 ms");
    }

    #[test]
    fn tiny_rtt_uses_the_distance_floor() {
        let mut rng = SmallRng::seed_from_u64(3);
        let params = BackoffParams::new(1.0, 2.0);
        for _ in 0..1_000 {
            let d = nak_backoff(&mut rng, Duration::from_micros(4), params);
            assert!(d >= MIN_DISTANCE && d <= MIN_DISTANCE * 3, "{d:?}");
        }
        assert_eq!(one_way_distance(Duration::ZERO), MIN_DISTANCE);
        assert_eq!(
            one_way_distance(Duration::from_millis(8)),
            Duration::from_millis(4)
        );
    }

    #[test]
    fn bad_constants_are_sanitized() {
        let params = BackoffParams::new(f64::NAN, -3.0);
        assert_eq!(params, BackoffParams { c1: 0.0, c2: 0.0 });
        let mut rng = SmallRng::seed_from_u64(4);
        assert_eq!(
            nak_backoff(&mut rng, Duration::from_millis(5), params),
            Duration::ZERO
        );
        let huge = BackoffParams::new(f64::INFINITY, 1e300);
        assert_eq!(huge.c1, 0.0);
        let d = nak_backoff(&mut rng, Duration::from_secs(10), huge);
        assert!(d <= MAX_NAK_TIMER);
    }

    #[test]
    fn waits_follow_the_rtt() {
        let params = BackoffParams::new(1.0, 2.0);
        let rtt = Duration::from_millis(10);
        // 2·RTT + span + margin = 20 ms + 10 ms + 1 ms.
        let span = scale(one_way_distance(rtt), params.c2, MAX_NAK_TIMER);
        assert_eq!(ncf_wait(rtt, span), Duration::from_millis(31));
        // 3·RTT + margin.
        assert_eq!(data_wait(rtt), Duration::from_millis(31));
        // Floors keep the waits positive even for a zero RTT and zero constants.
        assert!(ncf_wait(Duration::ZERO, Duration::ZERO) > Duration::ZERO);
        assert!(data_wait(Duration::ZERO) > DATA_WAIT_MARGIN);
        // 1 RTT + margin after an NCF.
        assert_eq!(repair_wait(rtt), Duration::from_millis(11));
        assert!(repair_wait(rtt) < data_wait(rtt));
        assert_eq!(data_wait(Duration::from_secs(100)), MAX_NAK_TIMER);
    }

    #[test]
    fn truncated_exponential_matches_rfc_5401() {
        let mut rng = SmallRng::seed_from_u64(7);
        let window = Duration::from_millis(100);
        for group in [1.0, 10.0, 1000.0] {
            let lambda = lambda(group);
            let draws: Vec<f64> = (0..20_000)
                .map(|_| truncated_exponential(&mut rng, window, group).as_secs_f64() / 0.1)
                .collect();
            assert!(draws.iter().all(|x| (0.0..=1.0).contains(x)));
            // CDF F(x) = (e^{λx} − 1)/(e^λ − 1): check it at x = 1/2.
            let below_half = draws.iter().filter(|x| **x < 0.5).count() as f64 / 20_000.0;
            let expected = (lambda * 0.5).exp_m1() / lambda.exp_m1();
            assert!(
                (below_half - expected).abs() < 0.015,
                "G = {group}: {below_half} below half, expected {expected}"
            );
        }
        // Degenerate sizes are floored at one member, never NaN.
        assert_eq!(lambda(0.0), 1.0);
        assert_eq!(lambda(f64::NAN), 1.0);
        assert!(truncated_exponential(&mut rng, window, f64::INFINITY) <= window);
    }

    #[test]
    fn report_delay_jitters_ten_percent() {
        let mut rng = SmallRng::seed_from_u64(5);
        let interval = Duration::from_secs(1);
        let draws: Vec<Duration> = (0..10_000)
            .map(|_| report_delay(&mut rng, interval))
            .collect();
        assert!(
            draws
                .iter()
                .all(|d| (Duration::from_millis(900)..=Duration::from_millis(1100)).contains(d))
        );
        let m = mean(&draws).as_secs_f64();
        assert!((m - 1.0).abs() < 0.005, "mean {m}");
        assert!(draws.iter().any(|d| *d < Duration::from_millis(910)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(1090)));
        // A zero interval is floored, never a busy loop.
        assert!(report_delay(&mut rng, Duration::ZERO) >= MIN_REPORT_INTERVAL * 9 / 10);
    }

    #[test]
    fn first_report_is_soon() {
        let mut rng = SmallRng::seed_from_u64(6);
        for _ in 0..1_000 {
            let d = first_report_delay(&mut rng, Duration::from_secs(1));
            assert!(
                (FIRST_REPORT_MAX / 2..=FIRST_REPORT_MAX).contains(&d),
                "{d:?}"
            );
            let short = first_report_delay(&mut rng, Duration::from_millis(4));
            assert!(short <= Duration::from_millis(4));
        }
    }
}
