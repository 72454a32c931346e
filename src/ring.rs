//! Bounded FIFO rings between application threads and the engine thread, and [`Notify`], the
//! wake-up hook for application threads blocked on them.
//!
//! A [`Ring`] is a `crossbeam_queue::ArrayQueue` (Vyukov's bounded multi-producer
//! multi-consumer array queue: no locks, one compare-and-swap per push or pop), a closed flag,
//! a count of pushes in progress, and two [`Notify`]s for threads that block. No push or pop
//! takes a lock unless a thread is about to sleep or must be woken.
//!
//! Decision. The previous ring was an `rtrb` single-producer single-consumer ring whose two
//! ends each sat behind a `parking_lot` mutex: not lock-free (a producer preempted while holding
//! the producer lock stalled every other producer). The candidates were this ring and
//! `crossbeam_channel::bounded`, which is lock-free on its fast path but cannot be closed from
//! the receiving side while senders still hold it and has no "closed but still draining" state
//! seen by both ends; the engine needs both (it stops accepting messages at `leave`, yet sends
//! those queued), and both directions use the one type. `benches/ring.rs` compares the three
//! (the previous ring is kept there as `mutex_rtrb_ring`). On this 2-core VM shared with other
//! jobs the spread between runs is wide; two consecutive runs of
//! `CARGO_TARGET_DIR=/work/target-ring cargo bench --bench ring` (load average 7.9 falling to
//! 3.9), criterion's middle estimate, 100,000 `u64`s through 4,096 slots, or 2,000 round trips
//! through two 1-slot rings:
//!
//! ```text
//!                                 run 1 (load 7.9)     run 2 (load 4.1)
//! spsc/rmcast_ring                18.470 Melem/s       12.241 Melem/s
//! spsc/mutex_rtrb_ring            10.846 Melem/s        8.6925 Melem/s
//! spsc/crossbeam_bounded          18.255 Melem/s       35.075 Melem/s
//! spsc/rtrb_yield (no blocking)  103.48 Melem/s        47.212 Melem/s
//! mpsc_2_producers/rmcast_ring     7.0957 Melem/s      38.661 Melem/s
//! mpsc_2_producers/mutex_rtrb_ring 9.8957 Melem/s      45.345 Melem/s
//! mpsc_2_producers/crossbeam       8.5615 Melem/s      39.290 Melem/s
//! ping_pong/rmcast_ring          139.24 Kelem/s       220.33 Kelem/s  (4.5 µs per round trip)
//! ping_pong/mutex_rtrb_ring      225.92 Kelem/s       283.87 Kelem/s  (3.5 µs)
//! ping_pong/crossbeam_bounded    109.53 Kelem/s       100.51 Kelem/s  (9.9 µs)
//! ```
//!
//! Reading: between runs, throughput moves more than it differs between the rings (spsc: this
//! ring 12-18 M items/s, `crossbeam_channel` 18-35, the previous ring 9-11; all far above what
//! the engine moves); the hand-off to a blocked thread is 1.3-2.2 times as fast as
//! `crossbeam_channel`'s (both our rings share [`Notify`], which spins and yields briefly before
//! parking) and 1.3-1.6 times as slow as the previous ring's, a cost taken for lock-freedom.
//! A first version kept the closed flag and the pusher count in one word, so
//! a consumer spinning on an empty ring read the line every push writes twice; the flag now sits
//! alone on a read-mostly line. (Filtered runs, `-- rmcast_ring`, gave spsc 26.8 ms per 100,000
//! for that version at load 7.3 and 2.0 ms with the count removed, unsafely, at load 3.8: too
//! noisy to credit the layout with the difference.) Progress: a producer preempted
//! between its compare-and-swap and its slot write delays only the pop of that slot (pops spin
//! on it), never other producers; that is the queue's, not a lock's, window.
//!
//! Close and the race with pushes in progress. A push announces itself (`pushers += 1`), then
//! reads `closed`; if set it is refused, otherwise it enqueues; either way it then withdraws
//! (`pushers -= 1`). [`Ring::close`] stores `closed`. A pop reports `Closed` only if it reads
//! `closed` set, then `pushers == 0`, then finds the queue empty. All these accesses are
//! `SeqCst`, so in their single total order either the push's read of `closed` comes before the
//! close's store, and then its announcement comes before the pop's read of `pushers` too (the
//! pop sees it, or its withdrawal, which follows the enqueue: the item is in the queue), or
//! after, and the push is refused and hands its item back. Linearization: an accepted push takes
//! effect at its enqueue, before the close; a refused one after it; a pop that reports `Closed`
//! after every accepted item was popped. A pop that finds the queue empty while closed pushes are
//! still in progress reports `Empty` (blocking, it waits: the last of them notifies).
//!
//! Invariants:
//! - Bounded: a ring never holds more than the capacity given at creation; a full ring refuses
//!   (`try_push`) or blocks (`push`), it never grows and never drops.
//! - FIFO per producer: items come out in the order their enqueues completed, so the items of
//!   one producer thread keep its order (the queue is linearizable).
//! - No lock on the push and pop paths: `try_push` and `try_pop` take a lock only to wake a
//!   sleeping thread; a stalled producer never blocks another producer.
//! - No lost wake-up: a thread blocked in `pop` is woken by the first push or close; one
//!   blocked in `push` by the pop that frees half of the ring, or by close ([`Notify`] documents
//!   the protocol).
//! - The fast path makes no system call: when nobody is blocked, a push is the queue's own
//!   atomics, two read-modify-writes of `pushers`, a load of `closed` and one fenced
//!   load of a waiter count; a pop is the queue's atomics and one fenced load.
//! - After [`Ring::close`] (by either end, any number of times) pushes fail and pops drain what
//!   was accepted, then report `Closed`; once closed, [`Ring::len`] counts pushes in progress, so
//!   `len() == 0` on a closed ring means it stays empty.

use crossbeam_queue::ArrayQueue;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::time::Instant;

/// Busy-wait rounds before a blocked thread parks: a parked thread takes tens of microseconds
/// to wake, far longer than the engine usually needs to refill or drain a ring.
const SPIN_ROUNDS: u32 = 16;
/// `yield_now` rounds after spinning, before parking.
const YIELD_ROUNDS: u32 = 32;

/// A condition that threads can block on until it holds, woken by [`Notify::notify_all`].
///
/// Protocol (no lost wake-up): a waiter takes `lock`, registers in `sleepers`, issues a
/// `SeqCst` fence, then re-checks its condition before sleeping on `cond` (which releases `lock`
/// atomically). A notifier first makes the condition true (e.g. pushes an item), issues a
/// `SeqCst` fence, then reads `sleepers`: either it sees the registration, and then takes
/// `lock` (so the waiter is already asleep or has not re-checked yet) and wakes it, or the
/// waiter's re-check sees the new state.
///
/// Cost: when nobody sleeps, notifying is one fence and one load. A notification consumes every
/// registration (it zeroes `sleepers` and bumps the epoch under `lock`), so the pushes that
/// follow while the woken thread is still getting up do not take the lock again; a waiter that
/// wakes without a notification (timeout, spurious) withdraws its own registration, which it
/// can tell by the unchanged epoch.
#[derive(Default)]
pub(crate) struct Notify {
    sleepers: AtomicUsize,
    /// Guards the epoch: the number of notifications that consumed registrations.
    lock: Mutex<u64>,
    cond: Condvar,
}

impl Notify {
    /// Blocks until `ready()` returns `true` or `deadline` (if any) passes. Returns the last
    /// answer of `ready()`. `ready` must read state that notifiers change before notifying.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        for _ in 0..SPIN_ROUNDS {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        for _ in 0..YIELD_ROUNDS {
            if ready() {
                return true;
            }
            std::thread::yield_now();
        }
        let mut epoch = self.lock.lock();
        loop {
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if ready() {
                // Still under the lock: no notifier can have consumed the registration.
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let seen = *epoch;
            let timed_out = match deadline {
                None => {
                    self.cond.wait(&mut epoch);
                    false
                }
                Some(deadline) => self.cond.wait_until(&mut epoch, deadline).timed_out(),
            };
            if *epoch == seen {
                // Not notified: withdraw the registration ourselves.
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
            if timed_out {
                return ready();
            }
        }
    }

    /// Wakes every thread blocked in [`Notify::wait_until`]; one fence and one load when none is.
    pub(crate) fn notify_all(&self) {
        self.notify_all_if(|| true);
    }

    /// Like [`Notify::notify_all`], but only if `worth_waking()` (asked only when a thread
    /// sleeps, so an expensive question costs nothing on the fast path). Correct when every
    /// change that can make the waiters' condition true is followed by such a call: the call
    /// after the change that completes the condition sees it.
    pub(crate) fn notify_all_if(&self, worth_waking: impl FnOnce() -> bool) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 && worth_waking() {
            let mut epoch = self.lock.lock();
            if self.sleepers.swap(0, Ordering::SeqCst) > 0 {
                *epoch = epoch.wrapping_add(1);
                self.cond.notify_all();
            }
        }
    }
}

/// Why a push did not happen; the item is handed back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError<T> {
    /// The ring was full (`try_push`) or stayed full until the deadline (`push`).
    Full(T),
    /// The ring was closed.
    Closed(T),
}

/// Why a pop returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopError {
    /// The ring was empty (`try_pop`) or stayed empty until the deadline (`pop`).
    Empty,
    /// The ring is closed and drained: nothing will ever come out again.
    Closed,
}

/// Keeps its content on cache lines of its own (128 bytes: adjacent-line prefetch pairs 64-byte
/// lines), so that words written by producers do not share a line with words the consumer polls.
#[repr(align(128))]
struct CacheLines<T>(T);

impl<T> std::ops::Deref for CacheLines<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A bounded multi-producer multi-consumer FIFO ring (see the module doc).
pub(crate) struct Ring<T> {
    /// Head and tail sit on cache lines of their own inside the queue.
    queue: ArrayQueue<T>,
    /// Set once by [`Ring::close`]; read-mostly, so on a line of its own that pushes never write.
    closed: CacheLines<AtomicBool>,
    /// Pushes between their announcement and their withdrawal (see the module doc).
    pushers: CacheLines<AtomicUsize>,
    /// Threads blocked in `pop`, waiting for an item or for the ring to be drained for good.
    readable: CacheLines<Notify>,
    /// Threads blocked in `push`, waiting for room.
    writable: CacheLines<Notify>,
}

impl<T> Ring<T> {
    /// A ring holding at most `capacity` items (at least 1).
    pub(crate) fn with_capacity(capacity: usize) -> Ring<T> {
        Ring {
            queue: ArrayQueue::new(capacity.max(1)),
            closed: CacheLines(AtomicBool::new(false)),
            pushers: CacheLines(AtomicUsize::new(0)),
            readable: CacheLines(Notify::default()),
            writable: CacheLines(Notify::default()),
        }
    }

    /// Most items the ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Items waiting now, counting pushes in progress, even those about to be refused (a snapshot;
    /// other threads may change it at once). On a closed ring, 0 means empty for good (see the
    /// module doc); a closed, drained ring may still show a refused push for an instant.
    pub(crate) fn len(&self) -> usize {
        // Pushers first: if none is pushing, every accepted item is already in the queue.
        let pushing = self.pushers.load(Ordering::SeqCst);
        (self.queue.len() + pushing).min(self.capacity())
    }

    /// Whether [`Ring::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closed with no push in progress: what the queue holds now is all it will ever hold.
    fn is_sealed(&self) -> bool {
        // `closed` first, then `pushers`: the reverse of a push's order (see the module doc).
        self.is_closed() && self.pushers.load(Ordering::SeqCst) == 0
    }

    /// Pushes `item` if there is room, without blocking.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let accepted = self.announce_push();
        self.finish_push(accepted, item)
    }

    /// First half of a push: announces it in `pushers`. `false` when the ring was already closed,
    /// so the push must be refused; it must be finished with [`Ring::finish_push`] either way.
    fn announce_push(&self) -> bool {
        self.pushers.fetch_add(1, Ordering::SeqCst);
        !self.is_closed()
    }

    /// Second half of a push: enqueues `item` if `accepted`, withdraws the announcement, then
    /// wakes poppers for the new item or, if this was the last push in progress on a closed
    /// ring, for the ring now being drained for good.
    fn finish_push(&self, accepted: bool, item: T) -> Result<(), PushError<T>> {
        let pushed = if accepted {
            self.queue.push(item).map_err(PushError::Full)
        } else {
            Err(PushError::Closed(item))
        };
        let pushing_before = self.pushers.fetch_sub(1, Ordering::SeqCst);
        if pushed.is_ok() || (pushing_before == 1 && self.is_closed()) {
            self.readable.notify_all();
        }
        pushed
    }

    /// Free slots a blocked `push` waits for: half the ring. The hysteresis keeps a consumer
    /// that drains a full ring from waking the producer on every pop (and the producer from
    /// blocking again after every push).
    fn resume_room(&self) -> usize {
        (self.capacity() / 2).max(1)
    }

    /// Pushes `item`, blocking while the ring is full (once full, until half of it is free),
    /// until `deadline` if one is given.
    pub(crate) fn push(&self, item: T, deadline: Option<Instant>) -> Result<(), PushError<T>> {
        let mut item = match self.try_push(item) {
            Err(PushError::Full(item)) => item,
            done => return done,
        };
        loop {
            let ready = self.writable.wait_until(deadline, || {
                self.is_closed() || self.capacity() - self.queue.len() >= self.resume_room()
            });
            match self.try_push(item) {
                // Another producer took the freed slot first: wait again.
                Err(PushError::Full(back)) if ready => item = back,
                done => return done,
            }
        }
    }

    /// Pops the oldest item if there is one, without blocking.
    pub(crate) fn try_pop(&self) -> Result<T, PopError> {
        if let Some(item) = self.queue.pop() {
            // The room is asked only of a ring with a blocked pusher: `len` reads the
            // producers' cache line, which a pop should not pull over on every call.
            self.writable
                .notify_all_if(|| self.capacity() - self.queue.len() >= self.resume_room());
            return Ok(item);
        }
        if !self.is_sealed() {
            return Err(PopError::Empty);
        }
        // Closed is reported only once drained: an accepted push may have enqueued between the
        // first pop and the sealed check.
        self.queue.pop().ok_or(PopError::Closed)
    }

    /// Pops the oldest item, blocking while the ring is empty, until `deadline` if one is given.
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<T, PopError> {
        loop {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                done => return done,
            }
            let ready = self
                .readable
                .wait_until(deadline, || !self.queue.is_empty() || self.is_sealed());
            if !ready {
                return self.try_pop();
            }
        }
    }

    /// Closes the ring: later pushes fail, pops drain what is left, blocked threads wake.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.readable.notify_all();
        self.writable.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    // Paths below are spelled out instead of imported: `benches/ring.rs` compiles this file with
    // `cfg(test)` but without the test harness, where the `#[test]` functions vanish and
    // imports only they use would be unused.

    #[expect(
        clippy::disallowed_methods,
        reason = "wall-clock deadlines of a threaded test"
    )]
    fn now() -> Instant {
        Instant::now()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Pop,
        Close,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => any::<u32>().prop_map(Op::Push),
            8 => Just(Op::Pop),
            1 => Just(Op::Close),
        ]
    }

    proptest! {
        /// The ring behaves exactly like a bounded `VecDeque` (plus a closed flag) under any
        /// single-threaded sequence, closes included.
        #[test]
        fn matches_bounded_deque_model(capacity in 1usize..8, ops in proptest::collection::vec(op(), 0..200)) {
            let ring = Ring::with_capacity(capacity);
            let mut model = std::collections::VecDeque::new();
            let mut closed = false;
            for op in ops {
                match op {
                    Op::Push(v) => {
                        let got = ring.try_push(v);
                        if closed {
                            prop_assert_eq!(got, Err(PushError::Closed(v)));
                        } else if model.len() < capacity {
                            model.push_back(v);
                            prop_assert_eq!(got, Ok(()));
                        } else {
                            prop_assert_eq!(got, Err(PushError::Full(v)));
                        }
                    }
                    Op::Pop => {
                        let empty = if closed { PopError::Closed } else { PopError::Empty };
                        let want = model.pop_front().ok_or(empty);
                        prop_assert_eq!(ring.try_pop(), want);
                    }
                    Op::Close => {
                        ring.close();
                        closed = true;
                    }
                }
                prop_assert_eq!(ring.len(), model.len());
                prop_assert_eq!(ring.is_closed(), closed);
            }
        }
    }

    #[test]
    fn close_refuses_pushes_and_drains_before_reporting_closed() {
        let ring = Ring::with_capacity(4);
        ring.try_push(1).unwrap();
        ring.try_push(2).unwrap();
        ring.close();
        assert_eq!(ring.try_push(3), Err(PushError::Closed(3)));
        assert_eq!(ring.try_pop(), Ok(1));
        assert_eq!(ring.pop(None), Ok(2));
        assert_eq!(ring.try_pop(), Err(PopError::Closed));
        assert_eq!(ring.pop(None), Err(PopError::Closed));
    }

    #[test]
    fn blocking_pop_times_out_on_an_empty_ring() {
        let ring: Ring<u8> = Ring::with_capacity(1);
        let deadline = now() + std::time::Duration::from_millis(20);
        assert_eq!(ring.pop(Some(deadline)), Err(PopError::Empty));
        assert!(now() >= deadline);
    }

    #[test]
    fn blocking_push_times_out_on_a_full_ring() {
        let ring = Ring::with_capacity(1);
        ring.try_push(1u8).unwrap();
        let deadline = now() + std::time::Duration::from_millis(20);
        assert_eq!(ring.push(2, Some(deadline)), Err(PushError::Full(2)));
    }

    #[test]
    fn blocked_consumers_and_producers_are_woken() {
        // A tiny ring forces both sides to block many times; the test finishes only if no
        // wake-up is lost (bounded by the join timeout below).
        let ring = std::sync::Arc::new(Ring::with_capacity(2));
        let total: u64 = 20_000;
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let ring = std::sync::Arc::clone(&ring);
                std::thread::spawn(move || {
                    for i in 0..total / 2 {
                        ring.push(p * total + i, None).unwrap();
                    }
                })
            })
            .collect();
        let consumer = {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || {
                let mut last = [None::<u64>; 2];
                let mut count = 0;
                let deadline = now() + std::time::Duration::from_secs(30);
                while count < total {
                    let v = ring.pop(Some(deadline)).expect("item within the deadline");
                    let p = usize::from(v >= total);
                    // Per producer, FIFO order holds.
                    assert!(last[p].is_none_or(|prev| prev < v), "reordered: {v}");
                    last[p] = Some(v);
                    count += 1;
                }
                count
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), total);
        ring.close();
        assert_eq!(ring.try_pop(), Err(PopError::Closed));
    }

    /// Producers racing a close: every accepted item comes out exactly once, in its producer's
    /// order, before `Closed`; every refused one never does.
    fn close_mid_stream(closer_is_consumer: bool, round: u64) {
        const PRODUCERS: u64 = 3;
        // Far more than fit, so that the close always lands while producers are still pushing.
        const PER_PRODUCER: u64 = 1 << 40;
        let ring = std::sync::Arc::new(Ring::with_capacity(4));
        let close_after = 2_000 + round * 97;
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = std::sync::Arc::clone(&ring);
                std::thread::spawn(move || {
                    // Even producers block in `push`; odd ones retry `try_push`, so pushes that
                    // find the ring full race the close too.
                    let mut accepted = 0;
                    for i in 0..PER_PRODUCER {
                        let mut item = p * PER_PRODUCER + i;
                        let pushed = loop {
                            let result = if p % 2 == 0 {
                                ring.push(item, None)
                            } else {
                                ring.try_push(item)
                            };
                            match result {
                                Err(PushError::Full(back)) => {
                                    item = back;
                                    std::thread::yield_now();
                                }
                                other => break other,
                            }
                        };
                        match pushed {
                            Ok(()) => accepted += 1,
                            Err(PushError::Closed(back)) => {
                                assert_eq!(back, item, "the refused item is handed back");
                                break;
                            }
                            Err(PushError::Full(_)) => unreachable!("retried above"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        let deadline = now() + std::time::Duration::from_secs(30);
        let mut received: Vec<Vec<u64>> = vec![Vec::new(); PRODUCERS as usize];
        let mut count = 0;
        loop {
            match ring.pop(Some(deadline)) {
                Ok(v) => {
                    received[(v / PER_PRODUCER) as usize].push(v % PER_PRODUCER);
                    count += 1;
                    if count == close_after {
                        if closer_is_consumer {
                            ring.close();
                        } else {
                            // A producer-side close: a thread that holds the ring to push.
                            let ring = std::sync::Arc::clone(&ring);
                            std::thread::spawn(move || ring.close()).join().unwrap();
                        }
                    }
                }
                Err(PopError::Closed) => break,
                Err(PopError::Empty) => panic!("no item nor close within the deadline"),
            }
        }
        // Closed and drained stays so, while and after producers finish. (`len` may still count
        // pushes being refused here, so it is checked only once the producers are gone.)
        assert_eq!(ring.try_pop(), Err(PopError::Closed));
        for (p, producer) in producers.into_iter().enumerate() {
            let accepted = producer.join().unwrap();
            let want: Vec<u64> = (0..accepted).collect();
            assert_eq!(
                received[p], want,
                "producer {p}: lost, duplicated or reordered"
            );
        }
        assert_eq!(ring.try_pop(), Err(PopError::Closed));
        assert_eq!(ring.len(), 0);
        assert!(count >= close_after);
    }

    #[test]
    fn producers_racing_a_consumer_side_close_lose_nothing() {
        for round in 0..20 {
            close_mid_stream(true, round);
        }
    }

    #[test]
    fn producers_racing_a_producer_side_close_lose_nothing() {
        for round in 0..20 {
            close_mid_stream(false, round);
        }
    }

    #[test]
    fn a_push_in_progress_at_close_is_drained_and_one_announced_after_is_refused() {
        let ring = std::sync::Arc::new(Ring::with_capacity(2));
        // A push that announced itself, then stalled before enqueuing, while the ring closes.
        assert!(ring.announce_push());
        ring.close();
        // Not drained yet: the accepted item is still to come, and `len` counts it.
        assert_eq!(ring.try_pop(), Err(PopError::Empty));
        assert_eq!(ring.len(), 1);
        // Deadlines far beyond the 20 ms sleeps bound the test if a wake-up is lost; returning
        // well before them proves the wake-up came.
        let started = now();
        let deadline = started + std::time::Duration::from_secs(10);
        let waiter = {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || (ring.pop(Some(deadline)), ring.pop(Some(deadline))))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(ring.finish_push(true, 7), Ok(()));
        assert_eq!(waiter.join().unwrap(), (Ok(7), Err(PopError::Closed)));
        assert!(
            now() < started + std::time::Duration::from_secs(5),
            "wake-up lost"
        );

        // A push announced after the close is refused; its withdrawal wakes a popper that
        // waited for it to finish.
        let ring: std::sync::Arc<Ring<u8>> = std::sync::Arc::new(Ring::with_capacity(2));
        ring.close();
        assert!(!ring.announce_push());
        assert_eq!(ring.try_pop(), Err(PopError::Empty));
        let started = now();
        let deadline = started + std::time::Duration::from_secs(10);
        let waiter = {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || ring.pop(Some(deadline)))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(ring.finish_push(false, 9), Err(PushError::Closed(9)));
        assert_eq!(waiter.join().unwrap(), Err(PopError::Closed));
        assert!(
            now() < started + std::time::Duration::from_secs(5),
            "wake-up lost"
        );
        assert_eq!(ring.len(), 0);
    }

    #[test]
    fn close_wakes_a_blocked_consumer() {
        let ring: std::sync::Arc<Ring<u8>> = std::sync::Arc::new(Ring::with_capacity(1));
        let waiter = {
            let ring = std::sync::Arc::clone(&ring);
            std::thread::spawn(move || ring.pop(None))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring.close();
        assert_eq!(waiter.join().unwrap(), Err(PopError::Closed));
    }
}
