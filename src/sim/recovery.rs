//! Recovery latency as the network saw it: for every packet a receiver got first as a repair,
//! how much later it arrived than its original would have.
//!
//! The original's arrival time is the send time plus the receiver's path delay, taken as the
//! smallest delay any original from that source showed on its way to that receiver (links
//! without jitter make it exact). Per (receiver, source) a bitset of the sequence offsets
//! received keeps only first arrivals.
//!
//! A packet delivered without any copy of it having arrived was rebuilt from FEC parity; its
//! delay counts from the delivery of its message (`on_delivered`).
//!
//! Invariant: memory is one bit per (receiver, source, packet sent) plus one entry per
//! recovered packet; nothing here touches members or the trace, so tracking cannot change a run.

use std::time::Duration;

/// What one receiver got from one source.
#[derive(Debug)]
struct Received {
    source: usize,
    /// Bit `offset` set: the packet arrived (original or repair).
    got: Vec<u64>,
    /// Smallest delay of an original from the source to here: the path delay.
    path_delay: Option<Duration>,
    /// Raw delays (arrival − original send) of packets whose first copy was a repair.
    repaired: Vec<Duration>,
}

/// First arrivals of every data packet at every receiver.
#[derive(Debug, Default)]
pub(crate) struct RecoveryTracker {
    /// `sent_at[source][offset]`: when the source sent the original.
    sent_at: Vec<Vec<Duration>>,
    /// `received[receiver]`: one entry per source heard.
    received: Vec<Vec<Received>>,
}

/// The summary a report carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecoverySummary {
    /// Per repaired packet and receiver: arrival of the repair minus when the original would
    /// have arrived.
    pub(crate) delays: Vec<Duration>,
    /// Largest path delay from a source to a receiver: half the farthest receiver's RTT.
    pub(crate) max_path_delay: Duration,
}

impl RecoveryTracker {
    /// A tracker for `hosts` hosts.
    pub(crate) fn new(hosts: usize) -> RecoveryTracker {
        RecoveryTracker {
            sent_at: vec![Vec::new(); hosts],
            received: (0..hosts).map(|_| Vec::new()).collect(),
        }
    }

    /// `source` sent the original of `offset` at `now`.
    pub(crate) fn on_sent(&mut self, source: usize, offset: u32, now: Duration) {
        let sent = &mut self.sent_at[source];
        let index = offset as usize;
        if index >= sent.len() {
            sent.resize(index + 1, Duration::MAX);
        }
        if sent[index] == Duration::MAX {
            sent[index] = now;
        }
    }

    /// A data packet of `source` at `offset` reached `receiver` at `now`.
    pub(crate) fn on_arrival(
        &mut self,
        receiver: usize,
        source: usize,
        offset: u32,
        repair: bool,
        now: Duration,
    ) {
        let Some(&sent) = self.sent_at[source].get(offset as usize) else {
            return;
        };
        if sent == Duration::MAX {
            return;
        }
        let streams = &mut self.received[receiver];
        let index = match streams.iter().position(|r| r.source == source) {
            Some(index) => index,
            None => {
                streams.push(Received {
                    source,
                    got: Vec::new(),
                    path_delay: None,
                    repaired: Vec::new(),
                });
                streams.len() - 1
            }
        };
        let record = &mut streams[index];
        let (word, bit) = (offset as usize / 64, offset % 64);
        if word >= record.got.len() {
            record.got.resize(word + 1, 0);
        }
        if record.got[word] & (1 << bit) != 0 {
            return;
        }
        record.got[word] |= 1 << bit;
        let delay = now.saturating_sub(sent);
        if repair {
            record.repaired.push(delay);
        } else {
            record.path_delay = Some(record.path_delay.map_or(delay, |d| d.min(delay)));
        }
    }

    /// `receiver` delivered a message of `source` made of the packets at `offsets`, at `now`:
    /// any of them that never arrived was rebuilt from parity, and counts as recovered now.
    pub(crate) fn on_delivered(
        &mut self,
        receiver: usize,
        source: usize,
        offsets: std::ops::Range<u32>,
        now: Duration,
    ) {
        let Some(record) = self.received[receiver]
            .iter_mut()
            .find(|r| r.source == source)
        else {
            return;
        };
        for offset in offsets {
            let Some(&sent) = self.sent_at[source].get(offset as usize) else {
                continue;
            };
            let (word, bit) = (offset as usize / 64, offset % 64);
            if word >= record.got.len() {
                record.got.resize(word + 1, 0);
            }
            if sent == Duration::MAX || record.got[word] & (1 << bit) != 0 {
                continue;
            }
            record.got[word] |= 1 << bit;
            record.repaired.push(now.saturating_sub(sent));
        }
    }

    /// Extra delays of every recovered packet and the largest path delay.
    pub(crate) fn summary(&self) -> RecoverySummary {
        let mut summary = RecoverySummary::default();
        for record in self.received.iter().flatten() {
            let path = record.path_delay.unwrap_or(Duration::ZERO);
            summary.max_path_delay = summary.max_path_delay.max(path);
            summary
                .delays
                .extend(record.repaired.iter().map(|d| d.saturating_sub(path)));
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_repair_counts_its_delay_beyond_the_path_and_duplicates_count_once() {
        let mut tracker = RecoveryTracker::new(3);
        for offset in 0..4 {
            tracker.on_sent(0, offset, MS * offset);
        }
        // Receiver 1 is 5 ms away: originals 0, 1, 3 arrive, 2 comes as a repair at 19 ms.
        tracker.on_arrival(1, 0, 0, false, 5 * MS);
        tracker.on_arrival(1, 0, 1, false, 6 * MS);
        tracker.on_arrival(1, 0, 3, false, 8 * MS);
        tracker.on_arrival(1, 0, 2, true, 19 * MS);
        tracker.on_arrival(1, 0, 2, true, 25 * MS);
        // Receiver 2 is 9 ms away and loses nothing.
        tracker.on_arrival(2, 0, 0, false, 9 * MS);
        tracker.on_arrival(2, 0, 2, true, 11 * MS);
        let summary = tracker.summary();
        assert_eq!(summary.max_path_delay, 9 * MS);
        // Receiver 1: 19 − 2 − 5 = 12 ms. Receiver 2 got 2 first as a repair too: 11 − 2 − 9 = 0.
        assert_eq!(summary.delays, vec![12 * MS, Duration::ZERO]);
    }

    #[test]
    fn a_packet_delivered_without_arriving_counts_from_its_delivery() {
        let mut tracker = RecoveryTracker::new(2);
        for offset in 0..3 {
            tracker.on_sent(0, offset, MS * offset);
        }
        tracker.on_arrival(1, 0, 0, false, 5 * MS);
        tracker.on_arrival(1, 0, 2, false, 7 * MS);
        // Offset 1 never arrives; parity rebuilds it and its message is delivered at 9 ms.
        tracker.on_delivered(1, 0, 0..3, 9 * MS);
        // Delivering again (or a late copy) counts nothing more.
        tracker.on_delivered(1, 0, 1..2, 20 * MS);
        tracker.on_arrival(1, 0, 1, true, 30 * MS);
        assert_eq!(tracker.summary().delays, vec![3 * MS]);
    }
}
