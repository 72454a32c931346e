//! Wall time of a fixed-seed simulated transfer: one source, ten receivers, about 2 MB of
//! mixed-size messages, with 1 % independent loss on every receiver link, against the same
//! transfer on a lossless network (the baseline, in the same run). The simulation is
//! deterministic, so the only noise is the machine's: a regression here is a regression in
//! the protocol core's or the simulator's CPU cost.
//!
//! Run: `cargo bench --features sim --bench sim_transfer`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmcast::sim::{HostId, LinkModel, Scenario, SendPlan, Sizes, Topology};
use std::hint::black_box;
use std::time::Duration;

const SEED: u64 = 0x5eed_2026;
const MESSAGES: u32 = 2000;
const RECEIVERS: usize = 10;

fn transfer(name: &str, leaf_loss: f64) -> Scenario {
    let hop = LinkModel::new(Duration::from_millis(1));
    Scenario::new(
        name,
        Topology::star(RECEIVERS, hop.clone(), hop.bernoulli(leaf_loss)),
    )
    .send(
        HostId(0),
        SendPlan::new(MESSAGES, Sizes::Uniform { min: 24, max: 2000 }),
    )
    .deadline(Duration::from_secs(10))
}

fn bench(c: &mut Criterion) {
    let scenarios = [
        transfer("no_loss_baseline", 0.0),
        transfer("loss_1pct", 0.01),
    ];
    let mut group = c.benchmark_group("sim_transfer");
    group.sample_size(10);
    for scenario in &scenarios {
        // One checked run first: the bench measures a transfer that works, and says what it is.
        let report = scenario.run(SEED);
        assert!(
            report.passed(),
            "the benchmarked transfer must pass its oracles:\n{report}"
        );
        let bytes: u64 = report.hosts[1..]
            .iter()
            .map(|h| h.stats.bytes_delivered)
            .sum();
        eprintln!(
            "{}: {} bytes delivered to {RECEIVERS} receivers, complete at {:?} virtual, {} steps, {} NAKs, {} RDATA",
            scenario.name(),
            bytes,
            report.completed_at.unwrap_or(report.ended_at),
            report.steps,
            report.naks(),
            report.rdata()
        );
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(scenario.name(), |b| {
            b.iter(|| black_box(scenario.run(black_box(SEED))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
