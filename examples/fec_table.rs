//! Prints the FEC comparison table: selective repair, on-demand parity, proactive parity and
//! silent receivers on identical simulated networks, losses and seeds (`src/sim/fec_table.rs`).
//!
//! ```text
//! cargo run --release --features sim --example fec_table            # markdown
//! cargo run --release --features sim --example fec_table -- --csv   # CSV
//! ```
//!
//! Options: `--csv`; `--runs <n>` seeds per cell (default 2); `--sizes 100,1000`;
//! `--losses indep5,burst` and `--modes selective,ondemand` select rows. The checked-in copy
//! is `docs/fec_table.md`.

use rmcast::sim::fec_table::{CSV_HEADER, CellKey, Loss, MARKDOWN_HEADER, Mode, run_cell};

fn main() {
    let mut csv = false;
    let mut runs = 2;
    let mut sizes = vec![100, 1000];
    let mut losses = Loss::ALL.to_vec();
    let mut modes = Mode::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--csv" => csv = true,
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--runs <n>")
            }
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes 100,1000")
                    .split(',')
                    .map(|n| n.parse().expect("a number"))
                    .collect();
            }
            "--losses" => {
                let names = args.next().expect("--losses indep5,burst");
                losses.retain(|loss| names.split(',').any(|n| n == loss.name()));
            }
            "--modes" => {
                let names = args.next().expect("--modes selective,ondemand");
                modes.retain(|mode| names.split(',').any(|n| n == mode.name()));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    println!("{}", if csv { CSV_HEADER } else { MARKDOWN_HEADER });
    for &receivers in &sizes {
        for &loss in &losses {
            for &mode in &modes {
                let cell = run_cell(
                    CellKey {
                        receivers,
                        loss,
                        mode,
                    },
                    runs,
                );
                println!("{}", if csv { cell.csv() } else { cell.markdown() });
            }
        }
    }
}
