//! Positions in one source's stream and missing-sequence detection.
//!
//! Sequence numbers wrap at 2^32 and compare by serial arithmetic, which is only an order for
//! numbers less than 2^31 apart. Inside a peer every sequence number is therefore *unwrapped*
//! once, relative to the delivery point, into a [`Pos`]: a `u64` whose low 32 bits are the
//! sequence number. Positions are totally ordered, so maps keyed by them (held packets, NAK
//! state) never meet the wrap; [`seq_of`] converts back for the wire.
//!
//! [`LeadingEdge`] tracks `lead`, one past the newest position known to exist, and turns
//! sequence jumps in data and the SPM's leading edge into missing ranges.
//!
//! Invariant: `lead - next <= limit` for the peer's delivery point `next`, where `limit` is the
//! window in packets (at most [`MAX_TRACKED`]): a forged sequence number far ahead is refused
//! rather than turned into billions of gaps.

use crate::wire::SeqNum;
use std::ops::Range;

/// A sequence number unwrapped into a position of one stream (low 32 bits = the sequence
/// number).
pub(crate) type Pos = u64;

/// Most positions ever tracked ahead of the delivery point, whatever the window setting: it
/// keeps every tracked pair well inside the 2^31 range where serial comparison is an order.
pub(crate) const MAX_TRACKED: u32 = 1 << 30;

/// The position given to the first sequence number of a stream. Starting at 2^32 leaves room
/// to unwrap numbers behind it without going below zero.
pub(crate) fn first_pos(seq: SeqNum) -> Pos {
    (1 << 32) | u64::from(seq.0)
}

/// The sequence number at a position.
pub(crate) fn seq_of(pos: Pos) -> SeqNum {
    // Truncation is the point: the low 32 bits are the sequence number.
    SeqNum(pos as u32)
}

/// The position of `seq` nearest to `reference` (within 2^31 either way).
pub(crate) fn unwrap(reference: Pos, seq: SeqNum) -> Pos {
    // Reinterpreting the wrapped difference as signed picks the nearest position.
    let delta = seq.0.wrapping_sub(reference as u32) as i32;
    reference.saturating_add_signed(i64::from(delta))
}

/// Whether `older <= newer` in serial order, i.e. the pair is a sane (trail, edge) pair.
pub(crate) fn is_ordered(older: SeqNum, newer: SeqNum) -> bool {
    older <= newer
}

/// Where to start a stream first heard through a data packet.
///
/// Starting at `seq` would lose, silently, everything the source sent before it: a receiver
/// that joined before the source started, and lost the source's very first packet, would never
/// know it existed. So when the source's window still holds the packets before `seq` (its
/// `trail`) and they are few (`backfill`), the stream starts at `trail` and they are NAKed like
/// any other gap (late-join backfill); a receiver meeting a long-running stream starts at `seq`.
pub(crate) fn start_from_data(seq: SeqNum, trail: SeqNum, backfill: u32) -> SeqNum {
    if seq.distance_from(trail) <= backfill {
        trail
    } else {
        seq
    }
}

/// Where to start a stream first heard through an SPM: at `lead` (only new data), unless the
/// window `trail..lead` is at most `backfill` packets, which are then fetched as for
/// [`start_from_data`].
pub(crate) fn start_from_spm(trail: SeqNum, lead: SeqNum, backfill: u32) -> SeqNum {
    if lead.distance_from(trail) <= backfill {
        trail
    } else {
        lead
    }
}

/// How a data packet's position relates to what is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Before the delivery point: delivered or given up already.
    Behind,
    /// Further ahead of the delivery point than the window allows.
    OutOfWindow,
    /// Within the known range (a repair, a reordered or duplicate packet).
    Known,
    /// Beyond the newest known position; `gap` (possibly empty) lies between them.
    New {
        /// Positions newly found missing.
        gap: Range<Pos>,
    },
}

/// The leading edge of one source's stream as this receiver knows it.
#[derive(Clone, Debug)]
pub(crate) struct LeadingEdge {
    lead: Pos,
    limit: u64,
}

impl LeadingEdge {
    /// An edge at `start` (nothing known yet) that tracks at most `limit` positions ahead of
    /// the delivery point.
    pub(crate) fn new(start: Pos, limit: u32) -> LeadingEdge {
        LeadingEdge {
            lead: start,
            limit: u64::from(limit.clamp(1, MAX_TRACKED)),
        }
    }

    /// One past the newest known position.
    pub(crate) fn lead(&self) -> Pos {
        self.lead
    }

    /// Classifies data at `pos` given the delivery point `next`, advancing the edge for new
    /// data.
    pub(crate) fn on_data(&mut self, next: Pos, pos: Pos) -> Arrival {
        if pos < next {
            return Arrival::Behind;
        }
        if pos - next >= self.limit {
            return Arrival::OutOfWindow;
        }
        if pos < self.lead {
            return Arrival::Known;
        }
        let gap = self.lead..pos;
        self.lead = pos + 1;
        Arrival::New { gap }
    }

    /// The source says its next sequence number is `source_lead`: everything before it that
    /// was not seen is missing (tail loss). `Err` when that would exceed the window.
    pub(crate) fn on_source_lead(
        &mut self,
        next: Pos,
        source_lead: Pos,
    ) -> Result<Range<Pos>, OutOfWindow> {
        if source_lead <= self.lead {
            return Ok(self.lead..self.lead);
        }
        if source_lead - next > self.limit {
            return Err(OutOfWindow);
        }
        let gap = self.lead..source_lead;
        self.lead = source_lead;
        Ok(gap)
    }

    /// The source can no longer repair anything before `trail`. Returns the positions before
    /// it that were never seen nor detected missing (lost outright), and moves the edge to
    /// `trail` if it was behind.
    pub(crate) fn on_trail(&mut self, trail: Pos) -> Range<Pos> {
        if trail <= self.lead {
            return self.lead..self.lead;
        }
        let unseen = self.lead..trail;
        self.lead = trail;
        unseen
    }
}

/// A leading edge too far ahead of the delivery point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutOfWindow;

/// Merges sorted, distinct positions into runs of consecutive positions.
pub(crate) fn runs(sorted: &[Pos]) -> Vec<Range<Pos>> {
    let mut out: Vec<Range<Pos>> = Vec::new();
    for &pos in sorted {
        match out.last_mut() {
            Some(run) if run.end == pos => run.end = pos + 1,
            _ => out.push(pos..pos + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_is_nearest_and_crosses_the_wrap() {
        let base = first_pos(SeqNum(u32::MAX - 2));
        assert_eq!(unwrap(base, SeqNum(u32::MAX - 2)), base);
        assert_eq!(unwrap(base, SeqNum(1)), base + 4, "after the wrap");
        assert_eq!(unwrap(base, SeqNum(u32::MAX - 10)), base - 8, "behind");
        assert_eq!(seq_of(base + 4), SeqNum(1));
        assert_eq!(seq_of(unwrap(base + 4, SeqNum(7))), SeqNum(7));
        assert!(unwrap(base, SeqNum(1)) > unwrap(base, SeqNum(u32::MAX)));
    }

    #[test]
    fn start_point_prefers_trail_within_backfill() {
        assert_eq!(start_from_data(SeqNum(105), SeqNum(100), 10), SeqNum(100));
        assert_eq!(start_from_data(SeqNum(500), SeqNum(100), 10), SeqNum(500));
        assert_eq!(start_from_data(SeqNum(500), SeqNum(100), 0), SeqNum(500));
        assert_eq!(
            start_from_data(SeqNum(3), SeqNum(u32::MAX), 4),
            SeqNum(u32::MAX)
        );
        assert_eq!(start_from_spm(SeqNum(100), SeqNum(108), 8), SeqNum(100));
        assert_eq!(start_from_spm(SeqNum(100), SeqNum(109), 8), SeqNum(109));
        assert_eq!(start_from_spm(SeqNum(7), SeqNum(7), 0), SeqNum(7));
        assert!(is_ordered(SeqNum(u32::MAX), SeqNum(2)));
        assert!(!is_ordered(SeqNum(2), SeqNum(u32::MAX)));
    }

    #[test]
    fn jumps_make_gaps_across_the_wrap() {
        let start = first_pos(SeqNum(u32::MAX - 1));
        let mut edge = LeadingEdge::new(start, 100);
        assert_eq!(
            edge.on_data(start, start),
            Arrival::New { gap: start..start }
        );
        let after_wrap = unwrap(start, SeqNum(2)); // skips MAX, 0 and 1
        assert_eq!(
            edge.on_data(start, after_wrap),
            Arrival::New {
                gap: start + 1..start + 4
            }
        );
        assert_eq!(edge.lead(), start + 5);
        assert_eq!(edge.on_data(start, start + 2), Arrival::Known);
        assert_eq!(edge.on_data(start + 1, start), Arrival::Behind);
    }

    #[test]
    fn source_lead_reveals_tail_loss() {
        let start = first_pos(SeqNum(10));
        let mut edge = LeadingEdge::new(start, 100);
        edge.on_data(start, start);
        assert_eq!(
            edge.on_source_lead(start, start + 4),
            Ok(start + 1..start + 4)
        );
        assert_eq!(
            edge.on_source_lead(start, start + 2),
            Ok(start + 4..start + 4)
        );
        assert_eq!(edge.on_source_lead(start, start + 101), Err(OutOfWindow));
        assert_eq!(edge.lead(), start + 4, "a refused lead changes nothing");
    }

    #[test]
    fn forged_far_ahead_seq_is_refused() {
        let start = first_pos(SeqNum(0));
        let mut edge = LeadingEdge::new(start, 1 << 18);
        let forged = unwrap(start, SeqNum(0x7fff_0000));
        assert_eq!(edge.on_data(start, forged), Arrival::OutOfWindow);
        assert_eq!(edge.lead(), start);
        assert_eq!(
            edge.on_data(start, start + (1 << 18) - 1),
            Arrival::New {
                gap: start..start + (1 << 18) - 1
            },
            "the last position inside the window is accepted"
        );
    }

    #[test]
    fn trail_beyond_lead_is_lost_unseen() {
        let start = first_pos(SeqNum(50));
        let mut edge = LeadingEdge::new(start, 100);
        assert_eq!(edge.on_trail(start + 30), start..start + 30);
        assert_eq!(edge.lead(), start + 30);
        assert!(edge.on_trail(start + 10).is_empty());
    }

    #[test]
    fn runs_merge_consecutive_positions() {
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), vec![1..4, 7..8, 9..11]);
        assert!(runs(&[]).is_empty());
    }
}
