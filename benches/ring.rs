//! The application ↔ engine ring (`src/ring.rs`, compiled in here by path: an
//! `ArrayQueue` with a closed/pushers state word) against `crossbeam_channel::bounded` and
//! against the previous ring (an `rtrb` SPSC ring with each end behind a `parking_lot` mutex,
//! copied below as `mutex_ring`), with raw `rtrb` (no locks, no parking: the other side is polled
//! with `yield_now`) as the reference.
//!
//! - `spsc`: one producer thread, one consumer thread, 100,000 `u64`s through a 4,096-slot
//!   ring, both sides blocking when full/empty (the send and event rings' normal load).
//! - `mpsc_2_producers`: two producer threads, one consumer (several application threads
//!   sending).
//! - `ping_pong`: one item bounced between two threads through two 1-slot rings: every hop
//!   waits for the other side, so this is the wake-up latency.
//!
//! Run: `cargo bench --bench ring`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[path = "../src/ring.rs"]
#[allow(dead_code, reason = "the bench uses only part of the ring's API")]
mod ring;

/// Baseline: the ring `src/ring.rs` had before it became lock-free, with the same `Notify`.
#[allow(dead_code, reason = "the bench uses only part of the ring's API")]
mod mutex_ring {
    use super::ring::{Notify, PopError, PushError};
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

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
    /// The previous ring, unchanged but for this doc line.
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
}

const ITEMS: u64 = 100_000;
const CAPACITY: usize = 4096;
const HOPS: u64 = 2_000;

/// The blocking operations the benches drive, for both of our rings.
trait BlockingRing: Send + Sync + 'static {
    fn with_capacity(capacity: usize) -> Self;
    fn push(&self, item: u64);
    fn pop(&self) -> u64;
}

impl BlockingRing for ring::Ring<u64> {
    fn with_capacity(capacity: usize) -> Self {
        ring::Ring::with_capacity(capacity)
    }
    fn push(&self, item: u64) {
        self.push(item, None).expect("open ring");
    }
    fn pop(&self) -> u64 {
        self.pop(None).expect("open ring")
    }
}

impl BlockingRing for mutex_ring::Ring<u64> {
    fn with_capacity(capacity: usize) -> Self {
        mutex_ring::Ring::with_capacity(capacity)
    }
    fn push(&self, item: u64) {
        self.push(item, None).expect("open ring");
    }
    fn pop(&self) -> u64 {
        self.pop(None).expect("open ring")
    }
}

fn ring_transfer<R: BlockingRing>(producers: u64) {
    let ring = Arc::new(R::with_capacity(CAPACITY));
    thread::scope(|scope| {
        for p in 0..producers {
            let ring = Arc::clone(&ring);
            scope.spawn(move || {
                for i in 0..ITEMS / producers {
                    ring.push(p * ITEMS + i);
                }
            });
        }
        let mut sum = 0u64;
        for _ in 0..(ITEMS / producers) * producers {
            sum = sum.wrapping_add(ring.pop());
        }
        black_box(sum);
    });
}

fn crossbeam_transfer(producers: u64) {
    let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
    thread::scope(|scope| {
        for p in 0..producers {
            let tx = tx.clone();
            scope.spawn(move || {
                for i in 0..ITEMS / producers {
                    tx.send(p * ITEMS + i).expect("open channel");
                }
            });
        }
        let mut sum = 0u64;
        for _ in 0..(ITEMS / producers) * producers {
            sum = sum.wrapping_add(rx.recv().expect("open channel"));
        }
        black_box(sum);
    });
}

fn rtrb_yield_transfer() {
    let (mut tx, mut rx) = rtrb::RingBuffer::new(CAPACITY);
    thread::scope(|scope| {
        scope.spawn(move || {
            for i in 0..ITEMS {
                let mut item = i;
                loop {
                    match tx.push(item) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            item = back;
                            thread::yield_now();
                        }
                    }
                }
            }
        });
        let mut sum = 0u64;
        let mut got = 0;
        while got < ITEMS {
            match rx.pop() {
                Ok(v) => {
                    sum = sum.wrapping_add(v);
                    got += 1;
                }
                Err(_) => thread::yield_now(),
            }
        }
        black_box(sum);
    });
}

fn ring_ping_pong<R: BlockingRing>() {
    let ping = Arc::new(R::with_capacity(1));
    let pong = Arc::new(R::with_capacity(1));
    thread::scope(|scope| {
        let (ping2, pong2) = (Arc::clone(&ping), Arc::clone(&pong));
        scope.spawn(move || {
            for _ in 0..HOPS {
                let v = ping2.pop();
                pong2.push(v + 1);
            }
        });
        for i in 0..HOPS {
            ping.push(i);
            black_box(pong.pop());
        }
    });
}

fn crossbeam_ping_pong() {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(1);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(1);
    thread::scope(|scope| {
        scope.spawn(move || {
            for _ in 0..HOPS {
                let v = ping_rx.recv().expect("open");
                pong_tx.send(v + 1).expect("open");
            }
        });
        for i in 0..HOPS {
            ping_tx.send(i).expect("open");
            black_box(pong_rx.recv().expect("open"));
        }
    });
}

type LockFree = ring::Ring<u64>;
type Mutexed = mutex_ring::Ring<u64>;

fn rings(c: &mut Criterion) {
    let mut spsc = c.benchmark_group("spsc");
    spsc.throughput(Throughput::Elements(ITEMS));
    spsc.bench_function("rmcast_ring", |b| b.iter(|| ring_transfer::<LockFree>(1)));
    spsc.bench_function("mutex_rtrb_ring", |b| {
        b.iter(|| ring_transfer::<Mutexed>(1))
    });
    spsc.bench_function("crossbeam_bounded", |b| b.iter(|| crossbeam_transfer(1)));
    spsc.bench_function("rtrb_yield", |b| b.iter(rtrb_yield_transfer));
    spsc.finish();

    let mut mpsc = c.benchmark_group("mpsc_2_producers");
    mpsc.throughput(Throughput::Elements(ITEMS));
    mpsc.bench_function("rmcast_ring", |b| b.iter(|| ring_transfer::<LockFree>(2)));
    mpsc.bench_function("mutex_rtrb_ring", |b| {
        b.iter(|| ring_transfer::<Mutexed>(2))
    });
    mpsc.bench_function("crossbeam_bounded", |b| b.iter(|| crossbeam_transfer(2)));
    mpsc.finish();

    let mut ping_pong = c.benchmark_group("ping_pong");
    ping_pong.throughput(Throughput::Elements(HOPS));
    ping_pong.bench_function("rmcast_ring", |b| b.iter(ring_ping_pong::<LockFree>));
    ping_pong.bench_function("mutex_rtrb_ring", |b| b.iter(ring_ping_pong::<Mutexed>));
    ping_pong.bench_function("crossbeam_bounded", |b| b.iter(crossbeam_ping_pong));
    ping_pong.finish();
}

criterion_group! {
    name = benches;
    // Two shared cores: few, short samples keep the whole bench around a minute.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = rings
}
criterion_main!(benches);
