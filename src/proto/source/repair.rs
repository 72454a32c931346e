//! Answering NAKs: classifying the asked ranges against the window, the NCFs that confirm them,
//! and the queue of RDATA to send.
//!
//! Flow (PGM §5.3, RFC 3208): a NAK for data in the window is confirmed at once by a multicast
//! NCF (so every other receiver missing the same data suppresses its NAK), then each asked
//! packet is queued for RDATA, once however many NAKs ask. A packet repaired less than a linger
//! ago is not queued again (the NAKs that crossed the repair in flight would otherwise each
//! trigger one more RDATA, as in Aeron's `RetransmitHandler` linger and NORM's repair
//! hold-off). A NAK for data older than the trail gets an NCF marked `gone`, so the receiver
//! reports the loss at once instead of retrying until its NAK retries run out.
//!
//! Each queued packet is due at a time the caller chose: at once for the PGM- and NORM-like
//! baselines, after a short RTT-scaled aggregation window for rmcast (NAKs arriving meanwhile
//! are merged into the one RDATA), or after the distance-scaled repair timer when peer repair
//! is on (a receiver's repair heard meanwhile cancels it).
//!
//! Invariants: the RDATA queue holds window indices only (never more entries than the window
//! holds packets; ranges are clipped to the window before anything is queued), each at most
//! once, and `due` holds exactly one entry per queued index; at most [`MAX_PENDING_NCFS`]
//! encoded NCFs wait.

use crate::wire::{MAX_RANGES, Ncf, Packet, SeqNum, SeqRange, StreamId};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

/// Most NCFs waiting to be sent. NCFs leave on the next `poll_transmit`, so this only fills
/// under a NAK flood between two drains; beyond it NCFs are dropped (the requesters repeat
/// their NAKs).
pub(super) const MAX_PENDING_NCFS: usize = 256;

/// A NAK's ranges split against the window `[trail, lead)`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct NakSplit {
    /// Parts inside the window, as offsets from the trail: `(first_offset, count)`, ascending
    /// and disjoint (overlaps in the NAK are cut away), so the work they cause is bounded by
    /// the window, however the NAK repeats itself.
    pub(super) held: Vec<(u64, u16)>,
    /// Parts older than the trail (gone for good).
    pub(super) gone: Vec<SeqRange>,
    /// Whether any part asked for never-sent data (at or after the lead).
    pub(super) any_unsent: bool,
}

/// Splits `ranges` against a window starting at `trail` and holding `held` packets.
///
/// Each range is cut into at most three parts: before the trail, inside the window, at or
/// after the lead. Offsets are computed in signed serial arithmetic relative to the trail, so
/// ranges straddling the `u32` wrap or either edge split exactly. Ranges of count 0 (forbidden
/// on the wire) are skipped.
pub(super) fn split_ranges(ranges: &[SeqRange], trail: SeqNum, held: usize) -> NakSplit {
    let mut split = NakSplit::default();
    let held = held as i64;
    for range in ranges {
        if range.count == 0 {
            continue;
        }
        let start = i64::from(range.first.0.wrapping_sub(trail.0) as i32);
        let end = start + i64::from(range.count);
        if start < 0 {
            let gone_end = end.min(0);
            split.gone.push(SeqRange {
                first: range.first,
                // At most `count`, so it fits.
                count: (gone_end - start) as u16,
            });
        }
        let held_start = start.max(0);
        let held_end = end.min(held);
        if held_start < held_end {
            split
                .held
                .push((held_start as u64, (held_end - held_start) as u16));
        }
        if end > held {
            split.any_unsent = true;
        }
    }
    split.held = disjoint(split.held);
    split
}

/// Sorts `parts` and cuts each to what the earlier ones do not cover yet. Each part only
/// shrinks, so counts still fit a `u16`.
fn disjoint(mut parts: Vec<(u64, u16)>) -> Vec<(u64, u16)> {
    parts.sort_unstable();
    let mut covered_end = 0u64;
    let mut out = Vec::with_capacity(parts.len());
    for (start, count) in parts {
        let end = start + u64::from(count);
        let start = start.max(covered_end);
        if start < end {
            out.push((start, (end - start) as u16));
        }
        covered_end = covered_end.max(end);
    }
    out
}

/// Encodes NCFs confirming `ranges` (at most [`MAX_RANGES`] per NCF) onto `out`, within
/// [`MAX_PENDING_NCFS`]. Returns how many were queued.
pub(super) fn queue_ncfs(out: &mut VecDeque<Bytes>, template: &Ncf, ranges: &[SeqRange]) -> usize {
    let mut queued = 0;
    for chunk in ranges.chunks(MAX_RANGES) {
        if out.len() >= MAX_PENDING_NCFS {
            break;
        }
        let ncf = Ncf {
            ranges: chunk.to_vec(),
            ..template.clone()
        };
        out.push_back(Packet::Ncf(ncf).to_bytes());
        queued += 1;
    }
    queued
}

/// The header fields of an NCF answering one NAK.
pub(super) fn ncf_template(
    stream: StreamId,
    gone: bool,
    requester: u64,
    timestamp_echo: u32,
    trail: SeqNum,
) -> Ncf {
    Ncf {
        stream,
        gone,
        requester,
        timestamp_echo,
        trail,
        ranges: Vec::new(),
    }
}

/// Window indices waiting to go out as RDATA, each with the time it is due; among those due,
/// the earliest deadline (then the lowest index) goes first.
#[derive(Debug, Default)]
pub(super) struct RepairQueue {
    indices: BTreeMap<u64, Instant>,
    due: BTreeSet<(Instant, u64)>,
}

impl RepairQueue {
    /// Queues `index`, due at `due`, unless already queued. Returns whether it was new.
    pub(super) fn schedule(&mut self, index: u64, due: Instant) -> bool {
        if self.indices.contains_key(&index) {
            return false;
        }
        self.indices.insert(index, due);
        self.due.insert((due, index));
        true
    }

    /// Whether `index` is waiting.
    #[cfg(test)]
    pub(super) fn contains(&self, index: u64) -> bool {
        self.indices.contains_key(&index)
    }

    /// Drops `index` if it waits (another member repaired it). Returns whether it did.
    pub(super) fn cancel(&mut self, index: u64) -> bool {
        match self.indices.remove(&index) {
            Some(due) => {
                self.due.remove(&(due, index));
                true
            }
            None => false,
        }
    }

    /// The next index due at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let &(due, index) = self.due.first()?;
        if due > now {
            return None;
        }
        self.due.pop_first();
        self.indices.remove(&index);
        Some(index)
    }

    /// When the next index is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|&(due, _)| due)
    }

    /// Forgets indices below `trail_index` (evicted from the window).
    pub(super) fn forget_below(&mut self, trail_index: u64) {
        if self
            .indices
            .first_key_value()
            .is_some_and(|(&first, _)| first < trail_index)
        {
            let kept = self.indices.split_off(&trail_index);
            for (index, due) in std::mem::replace(&mut self.indices, kept) {
                self.due.remove(&(due, index));
            }
        }
    }

    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Packets waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.indices.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u32, count: u16) -> SeqRange {
        SeqRange {
            first: SeqNum(first),
            count,
        }
    }

    #[test]
    fn splits_across_both_edges() {
        // Window [100, 110).
        let split = split_ranges(&[range(95, 20)], SeqNum(100), 10);
        assert_eq!(split.gone, vec![range(95, 5)]);
        assert_eq!(split.held, vec![(0, 10)]);
        assert!(split.any_unsent);
    }

    #[test]
    fn splits_each_kind_alone() {
        let split = split_ranges(
            &[range(90, 3), range(103, 2), range(110, 5), range(0, 0)],
            SeqNum(100),
            10,
        );
        assert_eq!(split.gone, vec![range(90, 3)]);
        assert_eq!(split.held, vec![(3, 2)]);
        assert!(split.any_unsent);
        let split = split_ranges(&[range(109, 1)], SeqNum(100), 10);
        assert_eq!(split.held, vec![(9, 1)]);
        assert!(!split.any_unsent);
        assert!(split.gone.is_empty());
    }

    #[test]
    fn splits_across_the_wrap() {
        // Window [u32::MAX - 1, 3): five packets.
        let trail = SeqNum(u32::MAX - 1);
        let split = split_ranges(&[range(u32::MAX - 3, 100)], trail, 5);
        assert_eq!(split.gone, vec![range(u32::MAX - 3, 2)]);
        assert_eq!(split.held, vec![(0, 5)]);
        assert!(split.any_unsent);
    }

    #[test]
    fn empty_window_has_only_gone_and_unsent() {
        let split = split_ranges(&[range(5, 10)], SeqNum(10), 0);
        assert_eq!(split.gone, vec![range(5, 5)]);
        assert!(split.held.is_empty());
        assert!(split.any_unsent);
    }

    #[test]
    fn huge_range_is_clipped_to_window() {
        let split = split_ranges(&[range(0, u16::MAX)], SeqNum(0), 3);
        assert_eq!(split.held, vec![(0, 3)]);
    }

    #[test]
    fn overlapping_ranges_become_disjoint_and_sorted() {
        let split = split_ranges(
            &[
                range(50, 10),
                range(0, 100),
                range(40, 5),
                range(95, 10),
                range(98, 1),
            ],
            SeqNum(0),
            1000,
        );
        assert_eq!(split.held, vec![(0, 100), (100, 5)]);
        // 64 copies of the largest range cost one window's worth of work, not 64.
        let flood = vec![range(0, u16::MAX); 64];
        let split = split_ranges(&flood, SeqNum(0), 100_000);
        assert_eq!(split.held, vec![(0, u16::MAX)]);
    }

    #[test]
    fn repair_queue_dedups_orders_and_forgets() {
        let t0 = super::super::test_support::base_instant();
        let ms = std::time::Duration::from_millis(1);
        let mut queue = RepairQueue::default();
        assert!(queue.schedule(7, t0));
        assert!(queue.schedule(3, t0));
        assert!(
            !queue.schedule(7, t0 + ms),
            "already queued: keeps its time"
        );
        assert!(queue.schedule(9, t0));
        assert!(queue.schedule(8, t0 + 5 * ms));
        assert_eq!(queue.len(), 4);
        queue.forget_below(4);
        assert!(!queue.contains(3));
        assert_eq!(queue.next_due(), Some(t0));
        assert_eq!(queue.pop_due(t0), Some(7));
        assert_eq!(queue.pop_due(t0), Some(9));
        assert_eq!(queue.pop_due(t0), None, "8 is not due yet");
        assert!(queue.cancel(8));
        assert!(!queue.cancel(8));
        assert_eq!(queue.pop_due(t0 + 10 * ms), None);
        assert!(queue.is_empty());
        assert_eq!(queue.next_due(), None);
    }
}
