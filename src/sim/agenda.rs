//! The simulator's event queue.
//!
//! Invariant: events come out in the order of their `(time, insertion order)` stamp, which is
//! unique, so equal-time events keep the order they were queued in and runs are deterministic.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// Bits of a key holding the slot (general heap, lanes) or lane (heap of heads) index.
const INDEX_BITS: u32 = 24;
/// Bits of a key holding the insertion order.
const ORDER_BITS: u32 = 40;
/// Most events pending at once (16.7 M, far above `Limits::max_in_flight`'s default 1 M).
pub(crate) const MAX_PENDING: usize = 1 << INDEX_BITS;

/// The event queue, ordered by a unique stamp `(time, insertion order)`: ties in time are
/// broken by insertion order, which keeps runs deterministic.
///
/// Events sit in a slab; the queues hold only `u128` keys packing `time (64 bits) | insertion
/// order (40) | index (24)`, so that queue operations move and compare single integers rather
/// than whole packets. The index never decides an order: the stamp above it is unique.
/// Arrivals over one link nearly always come in time order (constant delay), so each link has
/// a FIFO lane and only each lane's head sits in a small heap of heads; anything that would
/// break a lane's order (jitter, a changed delay), and every timer, goes to the general heap.
/// Popping takes the smaller stamp of the two heaps, so the order is exactly that of a single
/// heap, only cheaper.
pub(crate) struct Agenda<T> {
    /// Keys indexing `slots`.
    heap: BinaryHeap<Reverse<u128>>,
    /// Per link, keys indexing `slots`, in increasing order.
    lanes: Vec<VecDeque<u128>>,
    /// The front key of every non-empty lane, with the lane number as index.
    heads: BinaryHeap<Reverse<u128>>,
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    order: u64,
}

/// Splits a key into its stamp part and index.
fn split(key: u128) -> (u128, usize) {
    let mask = (1u128 << INDEX_BITS) - 1;
    (key & !mask, (key & mask) as usize)
}

impl<T> Agenda<T> {
    /// An empty agenda with `lanes` FIFO lanes (one per link).
    ///
    /// # Panics
    /// With more than [`MAX_PENDING`] lanes.
    pub(crate) fn new(lanes: usize) -> Agenda<T> {
        assert!(
            lanes <= MAX_PENDING,
            "{lanes} links: at most {MAX_PENDING} are supported"
        );
        Agenda {
            heap: BinaryHeap::new(),
            lanes: vec![VecDeque::new(); lanes],
            heads: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            order: 0,
        }
    }

    /// Queues `what` at `at`; `lane` names the link an arrival travels over.
    ///
    /// # Panics
    /// With [`MAX_PENDING`] events already pending, or after 2^40 insertions; the simulator's
    /// `Limits` stop a run long before either.
    pub(crate) fn push(&mut self, at: Duration, what: T, lane: Option<usize>) {
        self.order += 1;
        assert!(
            self.order < 1 << ORDER_BITS,
            "more than 2^40 events in one run"
        );
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(what);
                slot
            }
            None => {
                assert!(
                    self.slots.len() < MAX_PENDING,
                    "more than {MAX_PENDING} events pending"
                );
                self.slots.push(Some(what));
                (self.slots.len() - 1) as u32
            }
        };
        let stamp = (at.as_nanos() << 64) | (u128::from(self.order) << INDEX_BITS);
        let key = stamp | u128::from(slot);
        if let Some(lane) = lane {
            let queue = &mut self.lanes[lane];
            match queue.back() {
                None => {
                    self.heads.push(Reverse(stamp | lane as u128));
                    queue.push_back(key);
                    return;
                }
                Some(&last) if last < key => {
                    queue.push_back(key);
                    return;
                }
                Some(_) => {} // Would overtake: keep the lane sorted, use the heap.
            }
        }
        self.heap.push(Reverse(key));
    }

    /// The earliest event, removed.
    pub(crate) fn pop(&mut self) -> Option<(Duration, T)> {
        let from_lane = match (self.heap.peek(), self.heads.peek()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(Reverse(general)), Some(Reverse(head))) => split(*head).0 < split(*general).0,
        };
        let key = if from_lane {
            // Replacing the top in place costs one sift instead of a pop and a push.
            let mut head = self.heads.peek_mut()?;
            let lane = split(head.0).1;
            let queue = &mut self.lanes[lane];
            let key = queue.pop_front()?;
            match queue.front() {
                Some(&next) => head.0 = split(next).0 | lane as u128,
                None => {
                    PeekMut::pop(head);
                }
            }
            key
        } else {
            self.heap.pop()?.0
        };
        let (stamp, slot) = split(key);
        let what = self.slots[slot].take()?;
        self.free.push(slot as u32);
        Some((Duration::from_nanos((stamp >> 64) as u64), what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order_across_lanes_and_heap() {
        let ms = Duration::from_millis;
        let mut agenda = Agenda::new(2);
        agenda.push(ms(5), "lane0 a", Some(0));
        agenda.push(ms(3), "timer", None);
        agenda.push(ms(5), "lane1 a", Some(1));
        agenda.push(ms(7), "lane0 b", Some(0));
        // Earlier than lane 0's tail: must not be queued behind it.
        agenda.push(ms(6), "lane0 overtakes", Some(0));
        agenda.push(ms(5), "timer tie", None);
        let order: Vec<(u128, &str)> = std::iter::from_fn(|| agenda.pop())
            .map(|(at, what)| (at.as_millis(), what))
            .collect();
        assert_eq!(
            order,
            [
                (3, "timer"),
                (5, "lane0 a"),
                (5, "lane1 a"),
                (5, "timer tie"),
                (6, "lane0 overtakes"),
                (7, "lane0 b"),
            ]
        );
    }

    #[test]
    fn slots_are_reused() {
        let mut agenda = Agenda::new(1);
        for round in 0..100u64 {
            agenda.push(Duration::from_nanos(round), round, Some(0));
            assert_eq!(agenda.pop(), Some((Duration::from_nanos(round), round)));
        }
        assert_eq!(agenda.slots.len(), 1);
        assert_eq!(agenda.free.len(), 1);
        assert_eq!(agenda.pop(), None);
    }
}
