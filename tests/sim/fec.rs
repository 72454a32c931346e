//! FEC targets of issue 4 on a reduced sweep (100 receivers, one seed per cell, the same
//! networks for every mode): each assertion can fail if parity stops doing its job.

use rmcast::sim::fec_table::{CellKey, Loss, Mode, run_cell};

fn cell(loss: Loss, mode: Mode) -> rmcast::sim::fec_table::Cell {
    run_cell(
        CellKey {
            receivers: 100,
            loss,
            mode,
        },
        1,
    )
}

#[test]
fn on_demand_parity_sends_at_most_a_quarter_of_selective_repairs() {
    let selective = cell(Loss::Indep(5), Mode::Selective);
    let on_demand = cell(Loss::Indep(5), Mode::OnDemand);
    assert!(
        selective.complete && on_demand.complete,
        "{selective:?} {on_demand:?}"
    );
    assert!(
        on_demand.repairs_per_source_packet <= selective.repairs_per_source_packet / 4.0,
        "on-demand {} vs selective {} repairs per source packet",
        on_demand.repairs_per_source_packet,
        selective.repairs_per_source_packet
    );
}

#[test]
fn proactive_parity_completes_nine_blocks_in_ten_without_a_nak() {
    let proactive = cell(Loss::Indep(5), Mode::Proactive);
    assert!(proactive.complete, "{proactive:?}");
    let without_nak = proactive
        .blocks_without_nak_pct
        .expect("FEC cell has blocks");
    assert!(without_nak >= 90.0, "{proactive:?}");
}

#[test]
fn silent_receivers_recover_ninety_nine_percent_of_blocks_at_two_percent_loss() {
    let silent = cell(Loss::Indep(2), Mode::Silent);
    assert_eq!(Mode::Silent.fec(Loss::Indep(2)), Some((30, 3)), "p/k = 0.1");
    let recovered = silent.blocks_recovered_pct.expect("FEC cell has blocks");
    assert!(recovered >= 99.0, "{silent:?}");
    assert_eq!(
        silent.receiver_naks, 0,
        "silent receivers send no NAK: {silent:?}"
    );
}

#[test]
fn csv_header_loss_and_mode_names_are_the_promised_ones() {
    use rmcast::sim::fec_table::CSV_HEADER;
    assert_eq!(
        CSV_HEADER,
        "receivers,loss,mode,repairs_per_source_packet,blocks_without_nak_pct,blocks_recovered_pct,recovery_mean_rtt,complete"
    );
    let losses: Vec<String> = Loss::ALL.iter().map(|loss| loss.name()).collect();
    assert_eq!(
        losses,
        ["indep1", "indep2", "indep5", "indep10", "burst", "shared1"]
    );
    let modes: Vec<&str> = Mode::ALL.iter().map(|mode| mode.name()).collect();
    assert_eq!(modes, ["selective", "ondemand", "proactive", "silent"]);
    // Two receivers keep the runs short; a selective row leaves its block columns empty, a
    // FEC row fills them: both must still have one field per header column.
    for mode in [Mode::Selective, Mode::OnDemand] {
        let row = run_cell(
            CellKey {
                receivers: 2,
                loss: Loss::Indep(5),
                mode,
            },
            1,
        )
        .csv();
        assert_eq!(
            row.split(',').count(),
            CSV_HEADER.split(',').count(),
            "{row}"
        );
        assert!(
            row.starts_with(&format!("2,indep5,{},", mode.name())),
            "{row}"
        );
    }
}
