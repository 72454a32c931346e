//! Bounded FIFO rings between application threads and the engine thread, and [`Notify`], the
//! wake-up hook for application threads blocked on them.
//!
//! A [`Ring`] is an `rtrb` single-producer single-consumer ring whose two ends each sit behind a
//! `parking_lot` mutex (on cache lines of their own), so that any number of threads may push or
//! pop. Why this and not `crossbeam_channel::bounded`, by `benches/ring.rs` (2-core VM shared
//! with other jobs, load average 4-7; 100,000 `u64`s, 4,096 slots): one producer and one
//! consumer moved ~30 M items/s with either; two producers ~25 M/s against ~28 M/s; but a hand-off
//! to a blocked thread (ping-pong through 1-slot rings) took ~4.8 µs per round trip against
//! ~9.7 µs (a blocked thread spins and yields briefly before it parks). Two properties decide
//! the rest: either end can close the ring while the other
//! still holds it, and a closed ring still drains (the engine stops accepting messages at
//! `leave` yet sends those queued); and the same type serves both directions. Without the cache
//! line padding the same bench gave ~3.5 M items/s: the two lock words shared a line.
//!
//! Invariants:
//! - Bounded: a ring never holds more than the capacity given at creation; a full ring refuses
//!   (`try_push`) or blocks (`push`), it never grows and never drops.
//! - FIFO: items come out in the order their pushes completed.
//! - No lost wake-up: a thread blocked in `pop` is woken by the first push or close; one
//!   blocked in `push` by the pop that frees half of the ring, or by close ([`Notify`] documents
//!   the protocol).
//! - The fast path makes no system call: when nobody is blocked, `push`/`pop` are one
//!   uncontended lock, the ring's own atomics and one fenced load of a waiter count.
//! - After [`Ring::close`], pushes fail and pops drain what is left, then report `Closed`.

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
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
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
/// lines), so that the producer's and the consumer's lock words do not bounce one line between
/// cores on every operation.
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
    producer: CacheLines<Mutex<rtrb::Producer<T>>>,
    consumer: CacheLines<Mutex<rtrb::Consumer<T>>>,
    /// Threads blocked in `pop`, waiting for an item.
    readable: CacheLines<Notify>,
    /// Threads blocked in `push`, waiting for room.
    writable: CacheLines<Notify>,
    capacity: usize,
    closed: AtomicBool,
}

impl<T> Ring<T> {
    /// A ring holding at most `capacity` items (at least 1).
    pub(crate) fn with_capacity(capacity: usize) -> Ring<T> {
        let capacity = capacity.max(1);
        let (producer, consumer) = rtrb::RingBuffer::new(capacity);
        Ring {
            producer: CacheLines(Mutex::new(producer)),
            consumer: CacheLines(Mutex::new(consumer)),
            readable: CacheLines(Notify::default()),
            writable: CacheLines(Notify::default()),
            capacity,
            closed: AtomicBool::new(false),
        }
    }

    /// Most items the ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items waiting now (a snapshot; other threads may change it at once).
    pub(crate) fn len(&self) -> usize {
        self.capacity - self.producer.lock().slots()
    }

    /// Whether [`Ring::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Pushes `item` if there is room, without blocking.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        if self.is_closed() {
            return Err(PushError::Closed(item));
        }
        let pushed = self.producer.lock().push(item);
        match pushed {
            Ok(()) => {
                self.readable.notify_all();
                Ok(())
            }
            Err(rtrb::PushError::Full(item)) => Err(PushError::Full(item)),
        }
    }

    /// Free slots a blocked `push` waits for: half the ring. The hysteresis keeps a consumer
    /// that drains a full ring from waking the producer on every pop (and the producer from
    /// blocking again after every push).
    fn resume_room(&self) -> usize {
        (self.capacity / 2).max(1)
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
                self.is_closed() || self.producer.lock().slots() >= self.resume_room()
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
        let (popped, free) = {
            let mut consumer = self.consumer.lock();
            let popped = consumer.pop();
            (popped, self.capacity - consumer.slots())
        };
        match popped {
            Ok(item) => {
                if free >= self.resume_room() {
                    self.writable.notify_all();
                }
                Ok(item)
            }
            // Closed is reported only once drained: items pushed before close still come out.
            Err(rtrb::PopError::Empty) if self.is_closed() => {
                // A push may have completed between the pop and the closed check.
                match self.consumer.lock().pop() {
                    Ok(item) => Ok(item),
                    Err(_) => Err(PopError::Closed),
                }
            }
            Err(rtrb::PopError::Empty) => Err(PopError::Empty),
        }
    }

    /// Pops the oldest item, blocking while the ring is empty, until `deadline` if one is given.
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<T, PopError> {
        loop {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                done => return done,
            }
            let ready = self.readable.wait_until(deadline, || {
                self.is_closed() || !self.consumer.lock().is_empty()
            });
            if !ready {
                return self.try_pop();
            }
        }
    }

    /// Closes the ring: later pushes fail, pops drain what is left, blocked threads wake.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
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
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![any::<u32>().prop_map(Op::Push), Just(Op::Pop)]
    }

    proptest! {
        /// The ring behaves exactly like a bounded `VecDeque` under any single-threaded sequence.
        #[test]
        fn matches_bounded_deque_model(capacity in 1usize..8, ops in proptest::collection::vec(op(), 0..200)) {
            let ring = Ring::with_capacity(capacity);
            let mut model = std::collections::VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(v) => {
                        let got = ring.try_push(v);
                        if model.len() < capacity {
                            model.push_back(v);
                            prop_assert_eq!(got, Ok(()));
                        } else {
                            prop_assert_eq!(got, Err(PushError::Full(v)));
                        }
                    }
                    Op::Pop => {
                        let want = model.pop_front().ok_or(PopError::Empty);
                        prop_assert_eq!(ring.try_pop(), want);
                    }
                }
                prop_assert_eq!(ring.len(), model.len());
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
