//! The send queue: messages accepted by `send` whose fragments are not all transmitted yet,
//! cut into datagram-sized fragments lazily, one per transmit.
//!
//! Invariants:
//! - `queued_bytes` is exactly the number of message bytes not yet handed out as fragments.
//! - Every message yields `max(1, ceil(len / max_payload))` fragments, in order, each a
//!   zero-copy [`Bytes::slice`] of the message; an empty message yields one empty fragment.
//!
//! Cutting lazily keeps a 16 MiB message one queue entry instead of ~12,000.

use bytes::Bytes;
use std::collections::VecDeque;

/// One fragment ready to go out as ODATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fragment {
    /// Length of the whole message.
    pub(super) message_len: u32,
    /// Offset of `payload` within the message.
    pub(super) fragment_offset: u32,
    /// The fragment bytes.
    pub(super) payload: Bytes,
}

#[derive(Debug)]
struct Pending {
    message: Bytes,
    /// Offset of the next fragment to hand out.
    next_offset: usize,
}

/// Messages waiting for (the rest of) their first transmission.
#[derive(Debug)]
pub(super) struct SendQueue {
    messages: VecDeque<Pending>,
    queued_bytes: usize,
    max_payload: usize,
}

/// Number of fragments (and so sequence numbers) a message of `len` bytes takes.
#[cfg(test)]
pub(super) fn fragment_count(len: usize, max_payload: usize) -> usize {
    len.div_ceil(max_payload).max(1)
}

impl SendQueue {
    /// An empty queue cutting fragments of at most `max_payload` bytes (at least 1).
    pub(super) fn new(max_payload: usize) -> SendQueue {
        SendQueue {
            messages: VecDeque::new(),
            queued_bytes: 0,
            max_payload: max_payload.max(1),
        }
    }

    /// Queues a message. The caller has checked that its length fits a `u32`.
    pub(super) fn push(&mut self, message: Bytes) {
        debug_assert!(u32::try_from(message.len()).is_ok());
        self.queued_bytes += message.len();
        self.messages.push_back(Pending {
            message,
            next_offset: 0,
        });
    }

    /// Message bytes not yet handed out.
    #[cfg(test)]
    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// What the queue costs against the send-queue bound: the bytes not yet handed out plus
    /// `per_message` for every message waiting, so that even empty messages fill the queue.
    pub(super) fn backlog(&self, per_message: usize) -> usize {
        self.queued_bytes
            .saturating_add(self.messages.len().saturating_mul(per_message))
    }

    /// Whether no fragment is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The next fragment to transmit, in send order.
    pub(super) fn pop(&mut self) -> Option<Fragment> {
        let pending = self.messages.front_mut()?;
        let len = pending.message.len();
        let start = pending.next_offset;
        let end = len.min(start + self.max_payload);
        let fragment = Fragment {
            // Lengths fit u32: `push` is only called with such messages.
            message_len: len as u32,
            fragment_offset: start as u32,
            payload: pending.message.slice(start..end),
        };
        pending.next_offset = end;
        self.queued_bytes -= end - start;
        if end == len {
            self.messages.pop_front();
        }
        Some(fragment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut SendQueue) -> Vec<Fragment> {
        let mut out = Vec::new();
        while let Some(fragment) = queue.pop() {
            out.push(fragment);
            assert!(out.len() <= 1 << 20, "queue never empties");
        }
        out
    }

    #[test]
    fn counts_fragments() {
        assert_eq!(fragment_count(0, 100), 1);
        assert_eq!(fragment_count(1, 100), 1);
        assert_eq!(fragment_count(100, 100), 1);
        assert_eq!(fragment_count(101, 100), 2);
        // 16 MiB / 1368 B = 12,264.04.
        assert_eq!(fragment_count(16 << 20, 1368), 12_265);
    }

    #[test]
    fn empty_message_is_one_empty_fragment() {
        let mut queue = SendQueue::new(100);
        queue.push(Bytes::new());
        assert!(!queue.is_empty());
        let fragments = drain(&mut queue);
        assert_eq!(
            fragments,
            vec![Fragment {
                message_len: 0,
                fragment_offset: 0,
                payload: Bytes::new()
            }]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn fragments_cover_message_in_order_without_copying() {
        let message = Bytes::from((0..250u32).map(|i| i as u8).collect::<Vec<_>>());
        let mut queue = SendQueue::new(100);
        queue.push(message.clone());
        queue.push(Bytes::from_static(b"x"));
        assert_eq!(queue.queued_bytes(), 251);
        assert_eq!(queue.backlog(32), 251 + 2 * 32);
        let first = queue.pop().expect("fragment");
        assert_eq!(queue.queued_bytes(), 151);
        assert_eq!(
            queue.backlog(32),
            151 + 2 * 32,
            "a partly sent message still counts"
        );
        let rest = drain(&mut queue);
        assert_eq!(queue.queued_bytes(), 0);
        let all: Vec<Fragment> = std::iter::once(first).chain(rest).collect();
        let shape: Vec<(u32, u32, usize)> = all
            .iter()
            .map(|f| (f.message_len, f.fragment_offset, f.payload.len()))
            .collect();
        assert_eq!(
            shape,
            vec![(250, 0, 100), (250, 100, 100), (250, 200, 50), (1, 0, 1)]
        );
        // Zero-copy: fragments point into the message's buffer.
        assert_eq!(all[1].payload.as_ptr(), message[100..].as_ptr());
        assert_eq!(&all[2].payload[..], &message[200..]);
    }
}
