//! The application ↔ engine ring (`src/ring.rs`, compiled in here by path) against
//! `crossbeam_channel::bounded`, with raw `rtrb` (no locks, no parking: the other side is
//! polled with `yield_now`) as the reference.
//!
//! - `spsc`: one producer thread, one consumer thread, 100,000 `u64`s through a 4,096-slot
//!   ring, both sides blocking when full/empty (the send and event rings' normal load).
//! - `mpsc`: two producer threads, one consumer (several application threads sending).
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

use ring::Ring;

const ITEMS: u64 = 100_000;
const CAPACITY: usize = 4096;
const HOPS: u64 = 2_000;

fn rmcast_ring_transfer(producers: u64) {
    let ring = Arc::new(Ring::with_capacity(CAPACITY));
    thread::scope(|scope| {
        for p in 0..producers {
            let ring = Arc::clone(&ring);
            scope.spawn(move || {
                for i in 0..ITEMS / producers {
                    ring.push(p * ITEMS + i, None).expect("open ring");
                }
            });
        }
        let mut sum = 0u64;
        for _ in 0..(ITEMS / producers) * producers {
            sum = sum.wrapping_add(ring.pop(None).expect("open ring"));
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

fn rmcast_ring_ping_pong() {
    let ping = Arc::new(Ring::with_capacity(1));
    let pong = Arc::new(Ring::with_capacity(1));
    thread::scope(|scope| {
        let (ping2, pong2) = (Arc::clone(&ping), Arc::clone(&pong));
        scope.spawn(move || {
            for _ in 0..HOPS {
                let v: u64 = ping2.pop(None).expect("open");
                pong2.push(v + 1, None).expect("open");
            }
        });
        for i in 0..HOPS {
            ping.push(i, None).expect("open");
            black_box(pong.pop(None).expect("open"));
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

fn rings(c: &mut Criterion) {
    let mut spsc = c.benchmark_group("spsc");
    spsc.throughput(Throughput::Elements(ITEMS));
    spsc.bench_function("rmcast_ring", |b| b.iter(|| rmcast_ring_transfer(1)));
    spsc.bench_function("crossbeam_bounded", |b| b.iter(|| crossbeam_transfer(1)));
    spsc.bench_function("rtrb_yield", |b| b.iter(rtrb_yield_transfer));
    spsc.finish();

    let mut mpsc = c.benchmark_group("mpsc_2_producers");
    mpsc.throughput(Throughput::Elements(ITEMS));
    mpsc.bench_function("rmcast_ring", |b| b.iter(|| rmcast_ring_transfer(2)));
    mpsc.bench_function("crossbeam_bounded", |b| b.iter(|| crossbeam_transfer(2)));
    mpsc.finish();

    let mut ping_pong = c.benchmark_group("ping_pong");
    ping_pong.throughput(Throughput::Elements(HOPS));
    ping_pong.bench_function("rmcast_ring", |b| b.iter(rmcast_ring_ping_pong));
    ping_pong.bench_function("crossbeam_bounded", |b| b.iter(crossbeam_ping_pong));
    ping_pong.finish();
}

criterion_group! {
    name = benches;
    // Two shared cores: few, short samples keep the whole bench under a minute.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = rings
}
criterion_main!(benches);
