//! Prints the NAK-suppression comparison table: rmcast's default against PGM-like and
//! NORM-like backoff on identical simulated networks, losses and seeds.
//!
//! ```text
//! cargo run --release --features sim --example suppression_table            # markdown
//! cargo run --release --features sim --example suppression_table -- --csv   # CSV
//! ```
//!
//! Options: `--csv`; `--runs <n>` seeds per cell (default 3); `--sizes 10,100,1000` group sizes;
//! `--strategies rmcast,pgm-like,norm-like` (also `rmcast-static`, `srm`, and `rmcast-peer`:
//! rmcast with peer repair on); `--peer-repair` adds the `rmcast-peer` row to every cell;
//! `--losses` and
//! `--topologies` (comma-separated names) select rows; `--messages <n>` messages per run
//! (default 2,000: 0.2 s at 10,000 packets/s; longer runs amortize the join and the first
//! round trips); `--control-split` prints, after the table, the control column split into
//! NAK, NCF, SPM and REPORT bytes and the repairs lost on links per loss event (not with
//! `--csv`, whose columns are fixed). The checked-in
//! copy is `docs/suppression_table.md`; see `docs/suppression.md` for what the columns mean.

use rmcast::sim::Strategy;
use rmcast::sim::table::{
    CONTROL_SPLIT_HEADER, CSV_HEADER, Cell, CellKey, Loss, MARKDOWN_HEADER, MESSAGES, Shape,
    run_cell_with,
};
use std::time::Instant;

fn strategy_named(name: &str) -> Strategy {
    [
        Strategy::Rmcast,
        Strategy::RmcastStatic,
        Strategy::Srm,
        Strategy::PgmLike,
        Strategy::NormLike,
        Strategy::RmcastPeer,
    ]
    .into_iter()
    .find(|s| s.name() == name)
    .unwrap_or_else(|| panic!("unknown strategy {name}"))
}

fn main() {
    let mut csv = false;
    let mut control_split = false;
    let mut messages = MESSAGES;
    let mut runs = 3;
    let mut sizes = vec![10, 100, 1000];
    let mut strategies = Strategy::COMPARED.to_vec();
    let mut losses = Loss::ALL.to_vec();
    let mut shapes = Shape::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--csv" => csv = true,
            "--control-split" => control_split = true,
            "--messages" => {
                messages = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--messages <n>")
            }
            "--peer-repair" => {
                if !strategies.contains(&Strategy::RmcastPeer) {
                    strategies.push(Strategy::RmcastPeer);
                }
            }
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--runs <n>")
            }
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes 10,100")
                    .split(',')
                    .map(|n| n.parse().expect("a number"))
                    .collect();
            }
            "--strategies" => {
                strategies = args
                    .next()
                    .expect("--strategies rmcast,pgm-like")
                    .split(',')
                    .map(strategy_named)
                    .collect();
            }
            "--losses" => {
                let names = args.next().expect("--losses shared1,indep1");
                losses.retain(|loss| names.split(',').any(|n| n == loss.name()));
            }
            "--topologies" => {
                let names = args.next().expect("--topologies star,tree");
                shapes.retain(|shape| names.split(',').any(|n| n == shape.name()));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if csv {
        println!("{CSV_HEADER}");
    } else {
        println!("{MARKDOWN_HEADER}");
    }
    #[expect(
        clippy::disallowed_methods,
        reason = "wall-clock progress on stderr only"
    )]
    let started = Instant::now();
    let mut cells: Vec<Cell> = Vec::new();
    for &shape in &shapes {
        for &receivers in &sizes {
            for &loss in &losses {
                for &strategy in &strategies {
                    let key = CellKey {
                        shape,
                        receivers,
                        loss,
                        strategy,
                    };
                    let cell = run_cell_with(key, runs, messages);
                    if csv {
                        println!("{}", cell.csv());
                    } else {
                        println!("{cell}");
                    }
                    eprintln!(
                        "  {:>7.1}s {} {} {} {}: {} losses",
                        started.elapsed().as_secs_f64(),
                        shape.name(),
                        receivers,
                        loss.name(),
                        strategy.name(),
                        cell.losses
                    );
                    cells.push(cell);
                }
            }
        }
    }
    if control_split && !csv {
        println!();
        println!("{CONTROL_SPLIT_HEADER}");
        for cell in &cells {
            println!("{}", cell.control_split_row());
        }
    }
}
