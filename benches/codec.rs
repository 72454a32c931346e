//! Wire codec throughput: encode and decode of every sample packet in `tests/data/packets/`,
//! each next to a plain copy of the same bytes (`memcpy` baseline) measured in the same run.
//!
//! The codec is crate-private, so the bench compiles `src/wire/` into itself; the module
//! depends on nothing else in the crate, which is what makes that possible.

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../src/wire/mod.rs"]
// `cargo check --benches` sets cfg(test) without the test harness, so the codec's unit-test
// modules compile here with their `#[test]` functions stripped: their imports look unused.
#[allow(
    dead_code,
    unused_imports,
    reason = "the bench uses only the codec entry points, not its tests or helpers"
)]
mod wire;

/// The valid samples (malformed ones are skipped: they measure nothing useful).
fn samples() -> Vec<(String, Bytes)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/packets");
    let mut samples: Vec<(String, Bytes)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("list sample").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            if name.starts_with("malformed_") {
                return None;
            }
            let bytes = std::fs::read(&path).expect("read sample");
            Some((name, Bytes::from(bytes)))
        })
        .collect();
    samples.sort();
    assert!(!samples.is_empty(), "no samples in {}", dir.display());
    samples
}

fn codec(c: &mut Criterion) {
    for (name, datagram) in samples() {
        let packet = wire::decode(datagram.clone())
            .unwrap_or_else(|e| panic!("sample {name} does not decode: {e}"));
        let mut group = c.benchmark_group(format!("codec/{name}"));
        group.throughput(Throughput::Bytes(datagram.len() as u64));
        let mut buf: Vec<u8> = Vec::with_capacity(datagram.len());

        group.bench_function("baseline_memcpy", |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&datagram));
                black_box(buf.len())
            });
        });
        group.bench_function("encode", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&packet).encode(&mut buf);
                black_box(buf.len())
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| wire::decode(black_box(datagram.clone())));
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
