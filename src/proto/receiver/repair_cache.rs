//! `RepairCache`: the packets of one source a receiver recently received, kept so it can answer
//! other receivers' NAKs (peer repair).
//!
//! Packets are kept by position; when the byte budget is exceeded the oldest positions go
//! first (the newest data is what neighbours are still missing). The cost of an entry is its
//! payload plus a fixed overhead for the map node and the fields, so a stream of tiny packets
//! is bounded too.
//!
//! Invariant: the accounted bytes are the sum of the entries' costs and never exceed the budget
//! after an insertion returns; a budget of 0 keeps nothing.

use super::gaps::Pos;
use crate::wire::Data;
use std::collections::BTreeMap;

/// Bytes charged per cached packet beyond its payload (map node, fields, `Bytes` handle).
pub(crate) const ENTRY_OVERHEAD: usize = 96;

/// Recently received packets of one source, bounded in bytes.
#[derive(Debug)]
pub(crate) struct RepairCache {
    packets: BTreeMap<Pos, Data>,
    bytes: usize,
    max_bytes: usize,
}

impl RepairCache {
    /// An empty cache holding at most `max_bytes` (0: peer repair off, nothing kept).
    pub(crate) fn new(max_bytes: usize) -> RepairCache {
        RepairCache {
            packets: BTreeMap::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Whether anything can be kept at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    fn cost(data: &Data) -> usize {
        data.payload.len() + ENTRY_OVERHEAD
    }

    /// Keeps `data` (at `pos`), evicting the oldest positions to stay within the budget. A
    /// packet older than everything kept when the cache is full is not kept.
    pub(crate) fn insert(&mut self, pos: Pos, data: Data) {
        let cost = Self::cost(&data);
        if cost > self.max_bytes {
            return;
        }
        if let Some(old) = self.packets.insert(pos, data) {
            self.bytes -= Self::cost(&old);
        }
        self.bytes += cost;
        while self.bytes > self.max_bytes {
            let Some((_, evicted)) = self.packets.pop_first() else {
                break;
            };
            self.bytes -= Self::cost(&evicted);
        }
    }

    /// The packet at `pos`, if kept.
    pub(crate) fn get(&self, pos: Pos) -> Option<&Data> {
        self.packets.get(&pos)
    }

    /// Whether the packet at `pos` is kept.
    pub(crate) fn holds(&self, pos: Pos) -> bool {
        self.packets.contains_key(&pos)
    }

    /// Accounted bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SeqNum, StreamId};
    use bytes::Bytes;

    fn data(seq: u32, len: usize) -> Data {
        Data {
            stream: StreamId {
                source: 1,
                instance: 1,
            },
            repair: false,
            seq: SeqNum(seq),
            trail: SeqNum(0),
            message_len: len as u32,
            fragment_offset: 0,
            payload: Bytes::from(vec![7; len]),
            fec_index: None,
        }
    }

    #[test]
    fn keeps_the_newest_packets_within_the_budget() {
        let per = 1000 + ENTRY_OVERHEAD;
        let mut cache = RepairCache::new(3 * per);
        for seq in 0..10 {
            cache.insert(u64::from(seq), data(seq, 1000));
            assert!(cache.bytes() <= 3 * per);
        }
        assert_eq!(cache.len(), 3);
        assert!(!cache.holds(6));
        assert_eq!(cache.get(9).map(|d| d.seq), Some(SeqNum(9)));
        // Re-inserting a kept position does not count it twice.
        cache.insert(9, data(9, 1000));
        assert_eq!(cache.bytes(), 3 * per);
        // An old packet does not push out newer ones.
        cache.insert(2, data(2, 1000));
        assert!(!cache.holds(2));
        assert!(cache.holds(7) && cache.holds(8) && cache.holds(9));
    }

    #[test]
    fn zero_budget_or_oversized_packets_keep_nothing() {
        let mut off = RepairCache::new(0);
        assert!(!off.enabled());
        off.insert(1, data(1, 10));
        assert_eq!(off.len(), 0);
        let mut small = RepairCache::new(500);
        small.insert(1, data(1, 1000));
        assert_eq!((small.len(), small.bytes()), (0, 0));
    }
}
