//! Session traffic within its share of the data rate at 1,000 receivers: receiver reports (and
//! the SPM echoes they cause) are spaced by the group size and the data rate, so a slow stream
//! to a large group does not drown in reports (`src/proto/receiver/report_budget.rs`).

use rmcast::GroupConfig;
use rmcast::sim::{HostId, LinkModel, Pace, Scenario, SendPlan, Sizes, Topology};
use std::time::Duration;

const RECEIVERS: usize = 1000;
/// 8 kB messages every 20 ms: 400 kB/s, slow enough that one report a second from every
/// receiver (56 kB/s with echoes) would be 14 % of the data.
const MESSAGE_LEN: usize = 8_000;
const MESSAGE_INTERVAL: Duration = Duration::from_millis(20);
const MESSAGES: u32 = 1_500;
const SHARE: f64 = 0.05;

#[test]
fn session_traffic_stays_within_its_share_at_1000_receivers() {
    let ms = |m: u64| LinkModel::new(Duration::from_millis(m));
    let topology = Topology::star(RECEIVERS, ms(2).bernoulli(0.01), ms(2));
    let config = GroupConfig::on_loopback("239.255.31.1:7400".parse().unwrap())
        .max_datagram(MESSAGE_LEN + 200)
        .session_traffic_share(SHARE);
    let plan =
        SendPlan::new(MESSAGES, Sizes::Fixed(MESSAGE_LEN)).pace(Pace::Every(MESSAGE_INTERVAL));
    let scenario = Scenario::new("session_budget_1000", topology)
        .config(config)
        .send(HostId(0), plan)
        .deadline(Duration::from_secs(60));
    let report = scenario.run(scenario.seed_for(0));
    assert!(report.passed(), "{report}");
    let data = report.data_bytes() as f64;
    let session = report.total(|s| s.tx.spm.bytes + s.tx.report.bytes) as f64;
    let control = report.control_bytes() as f64;
    let reports = report.total(|s| s.tx.report.packets) as f64 / RECEIVERS as f64;
    let seconds = MESSAGE_INTERVAL.as_secs_f64() * f64::from(MESSAGES);
    println!(
        "session {:.2} % control {:.2} % of data; {reports:.1} reports per receiver in {seconds} s",
        100.0 * session / data,
        100.0 * control / data
    );
    assert!(
        control <= SHARE * data,
        "control {:.2} % of data",
        100.0 * control / data
    );
    // The budget, not luck: a report a second would be 30 per receiver.
    assert!(reports < seconds / 2.0, "{reports:.1} reports per receiver");
}
