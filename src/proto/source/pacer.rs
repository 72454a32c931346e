//! The source's rate limiter: a token bucket over UDP payload bytes.
//!
//! Invariant: over any interval `[a, b]`, the bytes charged are at most
//! `rate · (b − a) + burst + one datagram`; the bucket never holds more than `burst` and never
//! owes more than `burst` (the debt floor bounds how long an unpaced NCF storm can hold data
//! back).
//!
//! Arithmetic is exact integers in bit·nanoseconds (one byte is `8e9` units, one nanosecond at
//! `rate` bit/s earns `rate` units), so a run replays bit for bit and the wake-up instant is
//! exactly the first nanosecond at which the bucket is no longer in debt.
//!
//! A datagram may be sent whenever the bucket is not in debt; its whole length is charged,
//! possibly driving the bucket into debt. This "deficit" form (as in deficit round robin) lets
//! the pacer answer "when can I send next?" without knowing the size of the next datagram.

use std::time::{Duration, Instant};

/// Units per byte: 8 bits times 1e9 nanoseconds.
const UNITS_PER_BYTE: i128 = 8_000_000_000;

/// Smallest bucket: enough for a few dozen datagrams so that timer granularity on a real host
/// (tens of µs) does not lower the achieved rate.
const MIN_BURST_BYTES: u64 = 64 * 1024;

/// The burst also covers this much time at the configured rate, for the same reason at high
/// rates: 2 ms at 1 Gbit/s is 250 kB.
const BURST_TIME: Duration = Duration::from_millis(2);

/// Token bucket at a fixed rate; `None` rate means unpaced (always ready).
#[derive(Debug)]
pub(super) struct Pacer {
    rate_bps: Option<u64>,
    /// Tokens in bit·ns as of `updated`; negative while in debt.
    tokens: i128,
    capacity: i128,
    updated: Instant,
}

impl Pacer {
    /// A full bucket at `now`.
    pub(super) fn new(rate_bps: Option<u64>, now: Instant) -> Pacer {
        // A zero rate is rejected by config validation; treat it as unpaced rather than
        // dividing by zero should an unvalidated Settings ever reach here.
        let rate_bps = rate_bps.filter(|&r| r > 0);
        let capacity = rate_bps.map_or(0, |rate| {
            let burst_time_bytes =
                u128::from(rate) * BURST_TIME.as_nanos() / (UNITS_PER_BYTE as u128);
            let burst = u128::from(MIN_BURST_BYTES).max(burst_time_bytes);
            burst as i128 * UNITS_PER_BYTE
        });
        Pacer {
            rate_bps,
            tokens: capacity,
            capacity,
            updated: now,
        }
    }

    /// Bucket size in bytes (0 when unpaced).
    #[cfg(test)]
    pub(super) fn burst_bytes(&self) -> u64 {
        (self.capacity / UNITS_PER_BYTE) as u64
    }

    fn refill(&mut self, now: Instant) {
        let Some(rate) = self.rate_bps else { return };
        if now <= self.updated {
            return;
        }
        let elapsed = now.duration_since(self.updated).as_nanos();
        // Saturate: after a long pause the bucket is simply full.
        let earned = elapsed
            .saturating_mul(u128::from(rate))
            .min(i128::MAX as u128) as i128;
        self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
        self.updated = now;
    }

    /// Whether a datagram may be sent at `now`.
    pub(super) fn is_ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.rate_bps.is_none() || self.tokens >= 0
    }

    /// Charges a datagram of `len` bytes sent at `now`.
    pub(super) fn charge(&mut self, now: Instant, len: usize) {
        if self.rate_bps.is_none() {
            return;
        }
        self.refill(now);
        let cost = (len as i128).saturating_mul(UNITS_PER_BYTE);
        self.tokens = (self.tokens - cost).max(-self.capacity);
    }

    /// The first instant at which [`Pacer::is_ready`] holds (possibly in the past).
    pub(super) fn ready_at(&self) -> Instant {
        match self.rate_bps {
            Some(rate) if self.tokens < 0 => {
                let debt = (-self.tokens) as u128;
                let rate = u128::from(rate);
                let nanos = debt.div_ceil(rate);
                self.updated + Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
            }
            _ => self.updated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::source::test_support::base_instant;

    /// Sends `len`-byte datagrams as fast as the pacer allows (waking exactly at `ready_at`)
    /// for `span` of virtual time; returns bytes sent.
    fn drain_for(pacer: &mut Pacer, start: Instant, span: Duration, len: usize) -> u64 {
        let end = start + span;
        let mut now = start;
        let mut sent = 0u64;
        let mut steps = 0u32;
        while now <= end {
            steps += 1;
            assert!(steps < 10_000_000, "pacer loop did not progress");
            if pacer.is_ready(now) {
                pacer.charge(now, len);
                sent += len as u64;
            } else {
                let wake = pacer.ready_at();
                assert!(
                    wake > now,
                    "not ready but ready_at {wake:?} is not in the future"
                );
                now = wake;
            }
        }
        sent
    }

    #[test]
    fn releases_rate_times_time_plus_burst() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(Some(8_000_000), t0);
        let burst = pacer.burst_bytes();
        assert_eq!(
            burst,
            64 * 1024,
            "2 ms at 8 Mbit/s is below the 64 KiB floor"
        );
        let sent = drain_for(&mut pacer, t0, Duration::from_secs(1), 1400);
        let expected = 1_000_000 + burst;
        assert!(
            sent.abs_diff(expected) <= 1400,
            "sent {sent} bytes in 1 s, expected {expected} ± one datagram"
        );
    }

    #[test]
    fn steady_state_rate_is_exact_after_burst() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(Some(80_000_000), t0);
        // Drain the initial burst, then measure 10 s.
        let _ = drain_for(&mut pacer, t0, Duration::ZERO, 1000);
        let start = pacer.ready_at();
        let sent = drain_for(&mut pacer, start, Duration::from_secs(10), 1000);
        // 80 Mbit/s = 10 MB/s.
        assert!(sent.abs_diff(100_000_000) <= 1000, "sent {sent}");
    }

    #[test]
    fn ready_at_is_exact_wake_instant() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(Some(8_000_000), t0);
        // Empty the bucket: 64 KiB, then one more datagram puts it 1000 bytes in debt.
        pacer.charge(t0, 64 * 1024 + 1000);
        assert!(!pacer.is_ready(t0));
        // 1000 bytes at 1 MB/s take 1 ms.
        assert_eq!(pacer.ready_at(), t0 + Duration::from_millis(1));
        assert!(!pacer.is_ready(t0 + Duration::from_micros(999)));
        assert!(pacer.is_ready(t0 + Duration::from_millis(1)));
    }

    #[test]
    fn burst_scales_with_rate() {
        let t0 = base_instant();
        let pacer = Pacer::new(Some(1_000_000_000), t0);
        assert_eq!(pacer.burst_bytes(), 250_000);
    }

    #[test]
    fn unpaced_is_always_ready() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(None, t0);
        for _ in 0..1000 {
            assert!(pacer.is_ready(t0));
            pacer.charge(t0, 65_000);
        }
        assert_eq!(pacer.ready_at(), t0);
    }

    #[test]
    fn debt_is_floored_at_one_burst() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(Some(8_000_000), t0);
        for _ in 0..10_000 {
            pacer.charge(t0, 1400);
        }
        // Full bucket spent plus at most one burst of debt: 64 KiB at 1 MB/s ≈ 65.5 ms.
        let wait = pacer.ready_at().duration_since(t0);
        assert_eq!(wait, Duration::from_nanos(65_536_000));
    }

    #[test]
    fn idle_time_refills_no_more_than_burst() {
        let t0 = base_instant();
        let mut pacer = Pacer::new(Some(8_000_000), t0);
        let later = t0 + Duration::from_secs(100);
        let sent = drain_for(&mut pacer, later, Duration::ZERO, 1000);
        assert_eq!(
            sent, 66_000,
            "a full bucket (65,536 B) lets 66 datagrams of 1000 B go"
        );
    }
}
