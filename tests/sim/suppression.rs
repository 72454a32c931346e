//! NAK suppression against the baselines, on a reduced sweep of the comparison table
//! (`rmcast::sim::table`; the full table is `docs/suppression_table.md`, printed by
//! `cargo run --release --features sim --example suppression_table`).
//!
//! The live test runs one row at 100 receivers (the full table's 1,000-receiver rows take
//! seconds each in release, minutes in debug); the snapshot test pins the bounds the
//! checked-in table must show, so a table regenerated after a regression fails here.

use rmcast::sim::Strategy;
use rmcast::sim::table::{
    CSV_HEADER, Cell, CellKey, Loss, MESSAGES, Shape, run_cell, run_cell_with,
};

fn cell(shape: Shape, receivers: usize, loss: Loss, strategy: Strategy) -> Cell {
    run_cell(
        CellKey {
            shape,
            receivers,
            loss,
            strategy,
        },
        1,
    )
}

/// Star, 100 receivers, 1 % loss on the shared uplink: rmcast sends fewer NAKs per loss than
/// both baselines on the same network and seed, recovers within the targets and no slower at
/// p99 than NORM-like, and every receiver gets everything. (PGM-like's p99 is lower: its
/// fixed 50 ms window fires the first of a hundred timers within a millisecond, at about
/// nine NAKs per loss.)
#[test]
fn star_100_shared_loss_beats_both_baselines() {
    let rmcast = cell(Shape::Star, 100, Loss::Shared1, Strategy::Rmcast);
    let pgm = cell(Shape::Star, 100, Loss::Shared1, Strategy::PgmLike);
    let norm = cell(Shape::Star, 100, Loss::Shared1, Strategy::NormLike);
    for cell in [&rmcast, &pgm, &norm] {
        println!("{}", cell.csv());
        assert!(cell.complete, "{cell}");
        assert!(cell.losses >= 5, "too few losses to compare: {cell}");
    }
    // 1.18 with this seed since the pending backoffs follow what is learned and the others
    // defer to a lone requester (2.0 allowed before; 1.52 pooled over the table's 3 seeds).
    assert!(rmcast.naks_per_loss <= 1.5, "{rmcast}");
    assert!(rmcast.repairs_per_loss <= 1.5, "{rmcast}");
    assert!(rmcast.recovery_mean_rtt <= 4.0, "{rmcast}");
    assert!(rmcast.recovery_p99_rtt <= 8.0, "{rmcast}");
    assert!(rmcast.control_pct <= 5.0, "{rmcast}");
    assert!(rmcast.naks_per_loss < pgm.naks_per_loss, "{rmcast}\n{pgm}");
    assert!(
        rmcast.naks_per_loss < norm.naks_per_loss,
        "{rmcast}\n{norm}"
    );
    assert!(
        rmcast.recovery_p99_rtt <= norm.recovery_p99_rtt,
        "{rmcast}\n{norm}"
    );
}

/// Independent loss at every leaf: nobody shares a loss, so there is nothing to suppress and
/// nothing to wait for — each loss costs about one NAK and one repair, and the self-tuned
/// window shrinks to the floor so recovery stays within a few round trips.
#[test]
fn independent_loss_costs_one_nak_and_recovers_fast() {
    let rmcast = cell(Shape::Star, 10, Loss::Indep1, Strategy::Rmcast);
    println!("{}", rmcast.csv());
    assert!(rmcast.complete, "{rmcast}");
    assert!(rmcast.losses >= 50, "{rmcast}");
    assert!((0.8..=1.2).contains(&rmcast.naks_per_loss), "{rmcast}");
    assert!(rmcast.repairs_per_loss <= 1.2, "{rmcast}");
    assert!(rmcast.recovery_mean_rtt <= 4.0, "{rmcast}");
}

/// A run three times the table's length (`--messages`) completes on the same seeds, sees about
/// three times the losses, and its control column is the sum of its NAK, NCF, SPM and REPORT
/// parts (`--control-split`), with the loss-driven parts present and the per-member join
/// reports amortized over more data.
#[test]
fn longer_runs_complete_and_split_their_control_bytes() {
    let key = CellKey {
        shape: Shape::Star,
        receivers: 10,
        loss: Loss::Indep1,
        strategy: Strategy::Rmcast,
    };
    let short = run_cell(key, 1);
    let long = run_cell_with(key, 1, 3 * MESSAGES);
    println!(
        "{}\n{}\n{}",
        short.csv(),
        long.csv(),
        long.control_split_row()
    );
    assert!(long.complete, "{long}");
    let ratio = long.losses as f64 / short.losses.max(1) as f64;
    assert!((2.0..=4.0).contains(&ratio), "{short}\n{long}");
    for cell in [&short, &long] {
        let sum: f64 = cell.control_split_pct.iter().sum();
        assert!((sum - cell.control_pct).abs() < 1e-9, "{cell:?}");
        let [nak, ncf, _spm, report] = cell.control_split_pct;
        assert!(nak > 0.0 && ncf > 0.0 && report > 0.0, "{cell:?}");
    }
    assert!(
        long.control_split_pct[3] < short.control_split_pct[3],
        "reports amortize: {short:?}\n{long:?}"
    );
}

/// One parsed row of the checked-in table.
struct Row {
    topology: String,
    receivers: usize,
    loss: String,
    strategy: String,
    naks: f64,
    repairs: f64,
    mean: f64,
    p99: f64,
    control: f64,
    complete: bool,
}

fn checked_in_rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/suppression_table.md");
    let text = std::fs::read_to_string(path).expect("docs/suppression_table.md");
    text.lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| topology"))
        .map(|line| {
            let cols: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cols.len(), 10, "malformed row {line}");
            let num = |i: usize| -> f64 { cols[i].parse().unwrap_or_else(|_| panic!("{line}")) };
            Row {
                topology: cols[0].to_string(),
                receivers: cols[1].parse().expect("receivers"),
                loss: cols[2].to_string(),
                strategy: cols[3].to_string(),
                naks: num(4),
                repairs: num(5),
                mean: num(6),
                p99: num(7),
                control: num(8),
                complete: cols[9] == "yes",
            }
        })
        .collect()
}

/// The checked-in table holds every cell and shows the targets: star, 1,000 receivers, 1 %
/// shared loss — at most 1.5 NAKs and 1.2 repairs per loss, recovery within 4 RTT on average
/// and 8 RTT at p99 (and no worse than either baseline's p99 there), control at most 5 % of
/// data in every 1,000-receiver shared-loss cell; and in every shared-loss cell rmcast sends
/// fewer NAKs per loss than both baselines.
#[test]
fn checked_in_table_meets_the_targets() {
    let rows = checked_in_rows();
    for topology in ["star", "tree", "mixed"] {
        for receivers in [10, 100, 1000] {
            for loss in ["shared1", "indep1", "subtree5"] {
                for strategy in ["rmcast", "pgm-like", "norm-like"] {
                    let found = rows.iter().any(|r| {
                        r.topology == topology
                            && r.receivers == receivers
                            && r.loss == loss
                            && r.strategy == strategy
                    });
                    assert!(
                        found,
                        "missing cell {topology} {receivers} {loss} {strategy}"
                    );
                }
            }
        }
    }
    let find = |topology: &str, receivers: usize, loss: &str, strategy: &str| {
        rows.iter()
            .find(|r| {
                r.topology == topology
                    && r.receivers == receivers
                    && r.loss == loss
                    && r.strategy == strategy
            })
            .expect("cell present")
    };
    let target = find("star", 1000, "shared1", "rmcast");
    assert!(target.naks <= 1.5, "NAKs per loss {}", target.naks);
    assert!(target.repairs <= 1.2, "repairs per loss {}", target.repairs);
    assert!(target.mean <= 4.0, "mean recovery {} RTT", target.mean);
    assert!(target.p99 <= 8.0, "p99 recovery {} RTT", target.p99);
    assert!(target.control <= 5.0, "control {} %", target.control);
    for baseline in ["pgm-like", "norm-like"] {
        let other = find("star", 1000, "shared1", baseline);
        assert!(
            target.p99 <= other.p99,
            "star 1000 shared1: rmcast p99 {} RTT, {baseline} {}",
            target.p99,
            other.p99
        );
    }
    for row in rows.iter().filter(|r| r.strategy == "rmcast") {
        assert!(
            row.complete,
            "{} {} {}: incomplete",
            row.topology, row.receivers, row.loss
        );
        if row.loss != "shared1" {
            continue;
        }
        if row.receivers == 1000 {
            assert!(
                row.control <= 5.0,
                "{} 1000 shared1: control {} %",
                row.topology,
                row.control
            );
        }
        for baseline in ["pgm-like", "norm-like"] {
            let other = find(&row.topology, row.receivers, "shared1", baseline);
            assert!(
                row.naks < other.naks,
                "{} {} shared1: rmcast {} NAKs/loss, {baseline} {}",
                row.topology,
                row.receivers,
                row.naks,
                other.naks
            );
        }
    }
}

#[test]
fn csv_header_has_the_promised_columns() {
    assert_eq!(
        CSV_HEADER,
        "topology,receivers,loss,strategy,naks_per_loss,repairs_per_loss,recovery_mean_rtt,recovery_p99_rtt,control_pct,complete"
    );
}
