//! The transmit (retransmit) window: every ODATA packet sent and not yet evicted, by sequence
//! number, so it can be repaired.
//!
//! Invariants:
//! - The window holds a contiguous run of sequence numbers `[trail, lead)`: `lead` is the next
//!   sequence number to be sent, `trail` the oldest one still held (`trail == lead` when empty).
//! - After a push it holds at most `max_packets` entries and at most `max_bytes` payload bytes
//!   (or just the newest packet, should that alone exceed `max_bytes`); after
//!   [`TransmitWindow::evict_expired`] nothing sent `max_age` or longer ago.
//! - Besides the wrapping [`SeqNum`], every entry has a 64-bit *index* that never wraps
//!   (`trail_index` counts every packet ever evicted), so ordered structures elsewhere (the
//!   repair queue) can key by index without serial-arithmetic pitfalls.
//!
//! The per-packet "last repaired at" used by the repair linger lives in the entry itself, so it
//! is bounded by the window and disappears with the packet: no separate map to prune.

use crate::wire::SeqNum;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most packets the window holds whatever the configuration says: keeps every live pair of
/// sequence numbers far closer than 2^31, where serial-number comparison stays meaningful.
pub(super) const MAX_WINDOW_PACKETS: u32 = 1 << 30;

/// One sent ODATA packet kept for repair.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// When its ODATA was sent (for age eviction).
    pub(super) sent_at: Instant,
    /// Length of the whole message this fragment belongs to.
    pub(super) message_len: u32,
    /// Offset of this fragment within its message.
    pub(super) fragment_offset: u32,
    /// The fragment bytes (a slice of the message, shared, never copied).
    pub(super) payload: Bytes,
    /// When it was last sent as RDATA, for the repair linger.
    pub(super) repaired_at: Option<Instant>,
    /// Whether it waits in the repair queue: an O(1) duplicate check, so a NAK flood costs a
    /// flag test per asked packet rather than a tree lookup.
    pub(super) repair_queued: bool,
    /// Index in its FEC block (with FEC on), repeated in the packet's RDATA.
    pub(super) fec_index: Option<u8>,
}

/// Where a sequence number lies relative to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Position {
    /// Older than the trail: evicted, can never be repaired.
    Gone,
    /// Held; the value is its index.
    Held(u64),
    /// At or after the lead: never sent.
    Unsent,
}

/// Bounds of the window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Most packets held.
    pub(super) packets: u32,
    /// Most payload bytes held.
    pub(super) bytes: usize,
    /// Oldest packet age held.
    pub(super) age: Duration,
}

/// Sent packets by sequence number, see the module doc.
#[derive(Debug)]
pub(super) struct TransmitWindow {
    entries: VecDeque<Entry>,
    trail: SeqNum,
    trail_index: u64,
    bytes: usize,
    limits: Limits,
}

impl TransmitWindow {
    /// An empty window whose first packet will be `first_seq`.
    pub(super) fn new(first_seq: SeqNum, limits: Limits) -> TransmitWindow {
        let limits = Limits {
            packets: limits.packets.clamp(1, MAX_WINDOW_PACKETS),
            ..limits
        };
        TransmitWindow {
            entries: VecDeque::new(),
            trail: first_seq,
            trail_index: 0,
            bytes: 0,
            limits,
        }
    }

    /// Oldest sequence number held (or the next to be sent when empty).
    pub(super) fn trail(&self) -> SeqNum {
        self.trail
    }

    /// Next sequence number to be sent.
    pub(super) fn lead(&self) -> SeqNum {
        self.trail.add(self.entries.len() as u32)
    }

    /// Index of the trail (every index below it was evicted).
    pub(super) fn trail_index(&self) -> u64 {
        self.trail_index
    }

    /// Packets held.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Payload bytes held.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Where `seq` lies.
    pub(super) fn position(&self, seq: SeqNum) -> Position {
        // Signed serial distance from the trail: exact within 2^31 either side.
        let offset = i64::from(seq.0.wrapping_sub(self.trail.0) as i32);
        if offset < 0 {
            Position::Gone
        } else if offset >= self.entries.len() as i64 {
            Position::Unsent
        } else {
            Position::Held(self.trail_index + offset as u64)
        }
    }

    /// The entry at `index`, if still held.
    pub(super) fn get(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.trail_index)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// The entry at `index`, if still held.
    pub(super) fn get_mut(&mut self, index: u64) -> Option<&mut Entry> {
        let offset = index.checked_sub(self.trail_index)?;
        self.entries.get_mut(usize::try_from(offset).ok()?)
    }

    /// The sequence number of `index` (which must not be below the trail).
    pub(super) fn seq_of(&self, index: u64) -> SeqNum {
        // Truncation is the wrap: indices and sequence numbers advance together.
        self.trail.add(index.wrapping_sub(self.trail_index) as u32)
    }

    /// Appends the packet just sent as `lead()`, then evicts the oldest packets while over the
    /// packet or byte bound. The packet just pushed is never evicted here: its ODATA carries
    /// the trail, and a trail past the packet itself would tell receivers to give it up.
    pub(super) fn push(&mut self, entry: Entry) {
        self.bytes += entry.payload.len();
        self.entries.push_back(entry);
        while self.entries.len() > 1
            && (self.entries.len() > self.limits.packets as usize || self.bytes > self.limits.bytes)
        {
            self.evict_oldest();
        }
    }

    /// Evicts every packet sent `max_age` or longer before `now`.
    pub(super) fn evict_expired(&mut self, now: Instant) {
        while let Some(front) = self.entries.front() {
            if now.saturating_duration_since(front.sent_at) < self.limits.age {
                break;
            }
            self.evict_oldest();
        }
    }

    /// When the oldest packet will expire by age.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .front()
            // An age too large to add to an instant never expires.
            .and_then(|front| front.sent_at.checked_add(self.limits.age))
    }

    fn evict_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.payload.len();
            self.trail = self.trail.next();
            self.trail_index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::source::test_support::base_instant;

    fn entry(at: Instant, len: usize) -> Entry {
        Entry {
            sent_at: at,
            message_len: len as u32,
            fragment_offset: 0,
            payload: Bytes::from(vec![7u8; len]),
            repaired_at: None,
            repair_queued: false,
            fec_index: None,
        }
    }

    fn limits(packets: u32, bytes: usize, age: Duration) -> Limits {
        Limits {
            packets,
            bytes,
            age,
        }
    }

    #[test]
    fn evicts_by_packet_count_and_advances_trail_across_wrap() {
        let t0 = base_instant();
        let first = SeqNum(u32::MAX - 2);
        let mut window = TransmitWindow::new(first, limits(4, 1 << 20, Duration::from_secs(60)));
        assert_eq!(window.trail(), first);
        assert_eq!(window.lead(), first);
        for _ in 0..10 {
            window.push(entry(t0, 10));
        }
        assert_eq!(window.len(), 4);
        assert_eq!(window.lead(), first.add(10));
        assert_eq!(window.trail(), first.add(6));
        assert_eq!(window.trail(), SeqNum(3), "trail wrapped past u32::MAX");
        assert_eq!(window.trail_index(), 6);
        assert_eq!(window.bytes(), 40);
    }

    #[test]
    fn evicts_by_bytes() {
        let t0 = base_instant();
        let mut window = TransmitWindow::new(SeqNum(100), limits(1000, 250, Duration::MAX));
        for _ in 0..5 {
            window.push(entry(t0, 100));
        }
        assert_eq!(window.len(), 2, "250 bytes hold two 100-byte packets");
        assert_eq!(window.bytes(), 200);
        assert_eq!(window.trail(), SeqNum(103));
    }

    #[test]
    fn evicts_by_age() {
        let t0 = base_instant();
        let age = Duration::from_millis(100);
        let mut window = TransmitWindow::new(SeqNum(0), limits(1000, 1 << 20, age));
        for i in 0..5u64 {
            window.push(entry(t0 + Duration::from_millis(10 * i), 1));
        }
        assert_eq!(window.next_expiry(), Some(t0 + age));
        window.evict_expired(t0 + Duration::from_millis(99));
        assert_eq!(window.len(), 5);
        window.evict_expired(t0 + Duration::from_millis(120));
        assert_eq!(
            window.len(),
            2,
            "packets sent at 0, 10, 20 ms are 100 ms old at 120 ms"
        );
        assert_eq!(window.trail(), SeqNum(3));
        assert_eq!(window.next_expiry(), Some(t0 + Duration::from_millis(130)));
        window.evict_expired(t0 + Duration::from_secs(1));
        assert_eq!(window.len(), 0);
        assert_eq!(window.trail(), window.lead());
        assert_eq!(window.next_expiry(), None);
    }

    #[test]
    fn positions_and_indices() {
        let t0 = base_instant();
        let first = SeqNum(u32::MAX);
        let mut window = TransmitWindow::new(first, limits(3, 1 << 20, Duration::MAX));
        for _ in 0..5 {
            window.push(entry(t0, 1));
        }
        // Held: first+2 ..= first+4, i.e. 1, 2, 3; indices 2, 3, 4.
        assert_eq!(window.position(SeqNum(0)), Position::Gone);
        assert_eq!(window.position(SeqNum(u32::MAX - 100)), Position::Gone);
        assert_eq!(window.position(SeqNum(1)), Position::Held(2));
        assert_eq!(window.position(SeqNum(3)), Position::Held(4));
        assert_eq!(window.position(SeqNum(4)), Position::Unsent);
        assert_eq!(window.seq_of(3), SeqNum(2));
        assert!(window.get(1).is_none());
        assert!(window.get(2).is_some());
        assert!(window.get(5).is_none());
    }

    #[test]
    fn newest_packet_survives_a_tiny_byte_bound() {
        let t0 = base_instant();
        let mut window = TransmitWindow::new(SeqNum(0), limits(1000, 50, Duration::MAX));
        window.push(entry(t0, 10));
        window.push(entry(t0, 100));
        assert_eq!(window.len(), 1);
        assert_eq!(
            window.trail(),
            SeqNum(1),
            "the trail never passes the newest packet"
        );
        assert_eq!(
            window.next_expiry(),
            None,
            "an age of Duration::MAX never expires"
        );
        window.evict_expired(t0 + Duration::from_secs(1 << 40));
        assert_eq!(window.len(), 1);
    }

    #[test]
    fn packet_bound_is_clamped() {
        let window = TransmitWindow::new(SeqNum(0), limits(u32::MAX, 1, Duration::MAX));
        assert_eq!(window.limits.packets, MAX_WINDOW_PACKETS);
        let window = TransmitWindow::new(SeqNum(0), limits(0, 1, Duration::MAX));
        assert_eq!(window.limits.packets, 1);
    }
}
