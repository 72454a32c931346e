//! Reassembly and in-order delivery of one source's stream.
//!
//! Packets that arrive ahead of the delivery point wait in `held` (bounded by the peer's window,
//! see `gaps`). The cursor `next` consumes held packets in sequence order; a position declared
//! unrecoverable is held as a [`Slot::Lost`] run so the loss is reported *in order*, between
//! the messages before and after it.
//!
//! A message is the fragments `fragment_offset == 0 ..= message_len` carried by consecutive
//! sequence numbers, with one `message_len`, offsets that continue exactly where the previous
//! fragment ended, and no byte past `message_len`. Anything else is never delivered: the
//! partial message and the offending packet are reported as one `Unrecoverable` range, and
//! fragments are skipped until the next one with `fragment_offset == 0`. A lost packet does the
//! same to the message it belonged to. Single-fragment messages are delivered zero-copy; a
//! multi-fragment message is assembled into one allocation of `message_len` bytes.
//!
//! Fragments seen before the first message start of a stream (the receiver met the source
//! mid-message) are dropped without a report: that message began before this receiver's stream
//! did, so no hole in the stream is hidden.
//!
//! Invariant: every position before `next` was delivered, reported unrecoverable (or is the
//! in-progress partial message), or preceded the first message start; reported ranges are
//! disjoint, increasing and merged when adjacent within one drain.

use super::gaps::{Pos, seq_of};
use crate::proto::{Event, LostRange, SourceId};
use crate::stats::Stats;
use crate::wire::Data;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

/// A held position.
#[derive(Debug)]
enum Slot {
    /// A received packet waiting for the packets before it.
    Data(Data),
    /// Unrecoverable positions `key..end`.
    Lost { end: Pos },
}

/// A message being assembled.
#[derive(Debug)]
struct Partial {
    first: Pos,
    message_len: usize,
    buf: BytesMut,
}

#[derive(Debug)]
enum Assembly {
    /// Before the first message start of the stream: stray fragments are dropped silently.
    Joining,
    /// Between messages.
    Idle,
    /// Inside a message.
    Partial(Partial),
    /// After a loss or a bad fragment: skipping (and reporting) fragments until a message start.
    Skipping,
}

/// In-order delivery state of one source.
#[derive(Debug)]
pub(crate) struct Reassembler {
    source: SourceId,
    next: Pos,
    held: BTreeMap<Pos, Slot>,
    assembly: Assembly,
    pending_loss: Option<Range<Pos>>,
    max_message_len: usize,
}

/// What is known about a position at or after the delivery point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// A packet is held for it.
    Data,
    /// It was declared unrecoverable.
    Lost,
    /// Nothing.
    Nothing,
}

impl Reassembler {
    /// Delivery of `source` starting at `start`.
    pub(crate) fn new(source: SourceId, start: Pos, max_message_len: usize) -> Reassembler {
        Reassembler {
            source,
            next: start,
            held: BTreeMap::new(),
            assembly: Assembly::Joining,
            pending_loss: None,
            max_message_len,
        }
    }

    /// The next position to deliver.
    pub(crate) fn next(&self) -> Pos {
        self.next
    }

    /// Number of held slots (packets and lost runs).
    #[cfg(test)]
    pub(crate) fn held_len(&self) -> usize {
        self.held.len()
    }

    /// What is held for `pos`.
    pub(crate) fn held(&self, pos: Pos) -> Held {
        match self.held.range(..=pos).next_back() {
            Some((&key, Slot::Data(_))) if key == pos => Held::Data,
            Some((_, Slot::Lost { end })) if pos < *end => Held::Lost,
            _ => Held::Nothing,
        }
    }

    /// Holds a received packet. The caller guarantees `pos >= next` and that nothing is held
    /// for `pos` yet.
    pub(crate) fn insert(&mut self, pos: Pos, data: Data) {
        debug_assert!(pos >= self.next);
        self.held.insert(pos, Slot::Data(data));
    }

    /// Takes a received packet and delivers what it completes. The common case, the packet at
    /// the delivery point, is consumed at once without passing through the map. The caller
    /// guarantees `pos >= next` and that nothing is held for `pos` yet.
    pub(crate) fn accept(
        &mut self,
        pos: Pos,
        data: Data,
        stats: &mut Stats,
        events: &mut VecDeque<Event>,
    ) {
        if pos == self.next {
            self.next += 1;
            self.consume(pos, data, stats, events);
        } else {
            self.insert(pos, data);
        }
        self.drain(stats, events);
    }

    /// Declares `range` unrecoverable. The caller guarantees nothing is held in it; positions
    /// before `next` are ignored.
    pub(crate) fn mark_lost(&mut self, range: Range<Pos>) {
        let start = range.start.max(self.next);
        if start < range.end {
            self.held.insert(start, Slot::Lost { end: range.end });
        }
    }

    /// Delivers everything contiguous from the delivery point, then reports the losses met.
    pub(crate) fn drain(&mut self, stats: &mut Stats, events: &mut VecDeque<Event>) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            match entry.remove() {
                Slot::Data(data) => {
                    let pos = self.next;
                    self.next += 1;
                    self.consume(pos, data, stats, events);
                }
                Slot::Lost { end } => {
                    let start = self.next;
                    self.next = end;
                    self.abandon_partial(start, stats, events);
                    self.lose(start..end, stats, events);
                    self.assembly = Assembly::Skipping;
                }
            }
        }
        // Stalled on a missing packet: what is known lost is reported now, not later.
        self.flush_loss(stats, events);
    }

    /// Ends the stream: the caller has marked every missing position lost; this delivers what
    /// can be, and reports the unfinished message, if any, as unrecoverable.
    pub(crate) fn finish(&mut self, stats: &mut Stats, events: &mut VecDeque<Event>) {
        self.drain(stats, events);
        // Held packets after a gap cannot exist once every gap is marked lost; any leftovers
        // (a caller bug) are dropped rather than delivered out of order.
        debug_assert!(self.held.is_empty());
        self.held.clear();
        self.abandon_partial(self.next, stats, events);
        self.assembly = Assembly::Skipping;
        self.flush_loss(stats, events);
    }

    /// Consumes the packet at `pos` (already past the cursor).
    fn consume(&mut self, pos: Pos, data: Data, stats: &mut Stats, events: &mut VecDeque<Event>) {
        let starts_message = data.fragment_offset == 0;
        match std::mem::replace(&mut self.assembly, Assembly::Idle) {
            Assembly::Partial(mut partial) => {
                if starts_message {
                    // The previous message never completed: a source never does this.
                    stats.drops.count("malformed");
                    self.lose(partial.first..pos, stats, events);
                    self.start_message(pos, data, stats, events);
                } else if continues(&partial, &data) {
                    partial.buf.extend_from_slice(&data.payload);
                    if partial.buf.len() == partial.message_len {
                        self.deliver(partial.buf.freeze(), stats, events);
                    } else {
                        self.assembly = Assembly::Partial(partial);
                    }
                } else {
                    stats.drops.count("malformed");
                    self.lose(partial.first..pos + 1, stats, events);
                    self.assembly = Assembly::Skipping;
                }
            }
            Assembly::Joining if !starts_message => self.assembly = Assembly::Joining,
            Assembly::Skipping if !starts_message => {
                self.lose(pos..pos + 1, stats, events);
                self.assembly = Assembly::Skipping;
            }
            Assembly::Idle if !starts_message => {
                // A continuation with no message open.
                stats.drops.count("malformed");
                self.lose(pos..pos + 1, stats, events);
                self.assembly = Assembly::Skipping;
            }
            Assembly::Joining | Assembly::Idle | Assembly::Skipping => {
                self.start_message(pos, data, stats, events);
            }
        }
    }

    /// `data` (offset 0) at `pos` opens a message.
    fn start_message(
        &mut self,
        pos: Pos,
        data: Data,
        stats: &mut Stats,
        events: &mut VecDeque<Event>,
    ) {
        let message_len = data.message_len as usize;
        let len = data.payload.len();
        let consistent = message_len <= self.max_message_len
            && len <= message_len
            && (len > 0 || message_len == 0);
        if !consistent {
            stats.drops.count("malformed");
            self.lose(pos..pos + 1, stats, events);
            self.assembly = Assembly::Skipping;
            return;
        }
        if len == message_len {
            self.deliver(data.payload, stats, events);
            return;
        }
        // One allocation for the whole message, bounded by max_message_len above.
        let mut buf = BytesMut::with_capacity(message_len);
        buf.extend_from_slice(&data.payload);
        self.assembly = Assembly::Partial(Partial {
            first: pos,
            message_len,
            buf,
        });
    }

    fn deliver(&mut self, data: Bytes, stats: &mut Stats, events: &mut VecDeque<Event>) {
        self.flush_loss(stats, events);
        self.assembly = Assembly::Idle;
        events.push_back(Event::Message {
            source: self.source,
            data,
        });
    }

    /// Drops the partial message, if any, adding its positions (up to `end`) to the loss.
    fn abandon_partial(&mut self, end: Pos, stats: &mut Stats, events: &mut VecDeque<Event>) {
        if let Assembly::Partial(partial) = &self.assembly {
            let first = partial.first;
            self.assembly = Assembly::Skipping;
            self.lose(first..end, stats, events);
        }
    }

    /// Adds `range` to the pending loss report, merging it when adjacent.
    fn lose(&mut self, range: Range<Pos>, stats: &mut Stats, events: &mut VecDeque<Event>) {
        if range.is_empty() {
            return;
        }
        match &mut self.pending_loss {
            Some(pending) if pending.end == range.start => pending.end = range.end,
            Some(_) => {
                self.flush_loss(stats, events);
                self.pending_loss = Some(range);
            }
            None => self.pending_loss = Some(range),
        }
    }

    fn flush_loss(&mut self, stats: &mut Stats, events: &mut VecDeque<Event>) {
        let Some(range) = self.pending_loss.take() else {
            return;
        };
        stats.recovery.unrecoverable_packets += range.end - range.start;
        stats.recovery.unrecoverable_events += 1;
        events.push_back(Event::Unrecoverable {
            source: self.source,
            range: LostRange {
                first: seq_of(range.start).0,
                last: seq_of(range.end - 1).0,
            },
        });
    }
}

/// Whether `data` is the next fragment of `partial`.
fn continues(partial: &Partial, data: &Data) -> bool {
    data.message_len as usize == partial.message_len
        && data.fragment_offset as usize == partial.buf.len()
        && !data.payload.is_empty()
        && partial.buf.len() + data.payload.len() <= partial.message_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SeqNum, StreamId};

    const SOURCE: SourceId = SourceId(9);

    fn fragment(seq: u32, message: &[u8], offset: usize, len: usize) -> Data {
        Data {
            stream: StreamId {
                source: SOURCE.0,
                instance: 1,
            },
            repair: false,
            seq: SeqNum(seq),
            trail: SeqNum(0),
            message_len: message.len() as u32,
            fragment_offset: offset as u32,
            payload: Bytes::copy_from_slice(&message[offset..offset + len]),
            fec_index: None,
        }
    }

    fn run(r: &mut Reassembler, stats: &mut Stats) -> Vec<Event> {
        let mut events = VecDeque::new();
        r.drain(stats, &mut events);
        events.into()
    }

    fn message(data: &[u8]) -> Event {
        Event::Message {
            source: SOURCE,
            data: Bytes::copy_from_slice(data),
        }
    }

    fn lost(first: u32, last: u32) -> Event {
        Event::Unrecoverable {
            source: SOURCE,
            range: LostRange { first, last },
        }
    }

    #[test]
    fn three_fragments_out_of_order_make_one_message() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 100, 1 << 20);
        let msg = b"hello, fragmented world";
        r.insert(102, fragment(102, msg, 16, 7));
        assert!(run(&mut r, &mut stats).is_empty());
        r.insert(100, fragment(100, msg, 0, 8));
        assert!(run(&mut r, &mut stats).is_empty(), "101 still missing");
        assert_eq!(r.next(), 101);
        r.insert(101, fragment(101, msg, 8, 8));
        assert_eq!(run(&mut r, &mut stats), vec![message(msg)]);
        assert_eq!(r.next(), 103);
        assert_eq!(r.held_len(), 0);
    }

    #[test]
    fn single_fragment_is_zero_copy() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 0, 1 << 20);
        let data = fragment(0, b"abc", 0, 3);
        let payload_ptr = data.payload.as_ptr();
        r.insert(0, data);
        let events = run(&mut r, &mut stats);
        let Event::Message { data, .. } = &events[0] else {
            panic!("{events:?}");
        };
        assert_eq!(data.as_ptr(), payload_ptr);
    }

    #[test]
    fn loss_discards_its_message_and_resumes_at_next_start() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 10, 1 << 20);
        let a = b"aaaaaa";
        let b = b"bbbbbbbbb";
        let c = b"cc";
        // a = 10, b = 11..=13 (12 lost), c = 14.
        r.insert(10, fragment(10, a, 0, 6));
        r.insert(11, fragment(11, b, 0, 3));
        r.mark_lost(12..13);
        r.insert(13, fragment(13, b, 6, 3));
        r.insert(14, fragment(14, c, 0, 2));
        assert_eq!(
            run(&mut r, &mut stats),
            vec![message(a), lost(11, 13), message(c)]
        );
        assert_eq!(stats.recovery.unrecoverable_packets, 3);
        assert_eq!(stats.recovery.unrecoverable_events, 1);
    }

    #[test]
    fn inconsistent_fragment_is_never_delivered() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 0, 1 << 20);
        let m = b"0123456789";
        r.insert(0, fragment(0, m, 0, 4));
        let mut bad = fragment(1, m, 4, 4);
        bad.fragment_offset = 5; // overlaps nothing, skips a byte
        r.insert(1, bad);
        r.insert(2, fragment(2, m, 8, 2));
        r.insert(3, fragment(3, b"ok", 0, 2));
        assert_eq!(run(&mut r, &mut stats), vec![lost(0, 2), message(b"ok")]);
        assert_eq!(stats.drops.malformed, 1);
    }

    #[test]
    fn oversized_message_len_is_malformed() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 0, 8);
        let big = [7u8; 20];
        r.insert(0, fragment(0, &big, 0, 10));
        r.insert(1, fragment(1, &big, 10, 10));
        r.insert(2, fragment(2, b"fine", 0, 4));
        assert_eq!(run(&mut r, &mut stats), vec![lost(0, 1), message(b"fine")]);
        assert_eq!(stats.drops.malformed, 1);
    }

    #[test]
    fn mid_message_join_is_silent_but_later_loss_is_not() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 0, 1 << 20);
        let m = b"xxxxyyyy";
        r.insert(0, fragment(0, m, 4, 4)); // tail of a message begun before the stream
        r.insert(1, fragment(1, b"new", 0, 3));
        r.mark_lost(2..4);
        assert_eq!(run(&mut r, &mut stats), vec![message(b"new"), lost(2, 3)]);
        assert_eq!(r.next(), 4);
    }

    #[test]
    fn finish_reports_the_unfinished_message() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, u64::from(u32::MAX) - 1, 1 << 20);
        let m = b"abcdef";
        let start = u64::from(u32::MAX) - 1;
        r.insert(start, fragment(u32::MAX - 1, m, 0, 2));
        r.insert(start + 1, fragment(u32::MAX, m, 2, 2));
        let mut events = VecDeque::new();
        r.finish(&mut stats, &mut events);
        assert_eq!(Vec::from(events), vec![lost(u32::MAX - 1, u32::MAX)]);
    }

    #[test]
    fn zero_length_message_is_delivered() {
        let mut stats = Stats::default();
        let mut r = Reassembler::new(SOURCE, 0, 16);
        r.insert(0, fragment(0, b"", 0, 0));
        assert_eq!(run(&mut r, &mut stats), vec![message(b"")]);
        assert_eq!(r.held(0), Held::Nothing);
        r.mark_lost(3..6);
        assert_eq!(r.held(4), Held::Lost);
        assert_eq!(r.held(6), Held::Nothing);
    }
}
