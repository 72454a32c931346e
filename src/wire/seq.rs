//! `SeqNum`: 32-bit packet sequence numbers compared with serial-number arithmetic
//! (RFC 1982), so ordering stays correct across the wrap at `u32::MAX`.
//!
//! Invariant: two sequence numbers are comparable only when they are less than 2^31 apart;
//! the transmit window is far smaller than that, so every live pair is.

use std::cmp::Ordering;
use std::fmt;

/// A packet sequence number of one source. Wraps at `u32::MAX`; compare with `Ord`,
/// which implements RFC 1982 serial-number ordering.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct SeqNum(pub u32);

impl SeqNum {
    /// The sequence number `n` after this one (wrapping).
    #[must_use]
    pub(crate) fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// The next sequence number.
    #[must_use]
    pub(crate) fn next(self) -> SeqNum {
        self.add(1)
    }

    /// How far `self` is ahead of `earlier` (`self - earlier`, wrapping). Only meaningful
    /// when `earlier <= self`.
    #[must_use]
    pub(crate) fn distance_from(self, earlier: SeqNum) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }
}

impl Ord for SeqNum {
    fn cmp(&self, other: &Self) -> Ordering {
        // RFC 1982 §3.2 with SERIAL_BITS = 32: i1 < i2 iff (i2 - i1) mod 2^32 lies in (0, 2^31).
        // The one ambiguous distance, exactly 2^31, is ordered by raw value so that `Ord` stays total.
        let diff = other.0.wrapping_sub(self.0);
        match diff {
            0 => Ordering::Equal,
            d if d < 0x8000_0000 => Ordering::Less,
            0x8000_0000 => self.0.cmp(&other.0),
            _ => Ordering::Greater,
        }
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_straddles_wrap() {
        let max = SeqNum(u32::MAX);
        let zero = SeqNum(0);
        assert!(max < zero, "u32::MAX precedes 0 after the wrap");
        assert!(zero > max);
        assert!(SeqNum(u32::MAX - 5) < SeqNum(3));
        assert_eq!(max.next(), zero);
        assert_eq!(zero.add(u32::MAX), max);
        assert_eq!(SeqNum(3).distance_from(SeqNum(u32::MAX - 5)), 9);
    }

    #[test]
    fn ordering_is_plain_within_half_range() {
        assert!(SeqNum(1) < SeqNum(2));
        assert!(SeqNum(0x7fff_ffff) > SeqNum(0));
        assert!(
            SeqNum(0x8000_0001) < SeqNum(0),
            "more than 2^31 ahead reads as behind"
        );
    }

    #[test]
    fn sorting_across_wrap_keeps_window_order() {
        let mut v: Vec<SeqNum> = (0..10u32).map(|i| SeqNum(u32::MAX - 4).add(i)).collect();
        v.reverse();
        v.sort();
        let expect: Vec<SeqNum> = (0..10u32).map(|i| SeqNum(u32::MAX - 4).add(i)).collect();
        assert_eq!(v, expect);
    }
}
