//! Independent (Bernoulli) loss on every receiver's own link, both directions — so data,
//! NAKs, NCFs and repairs are all lost at the given rate — and every message must still be
//! delivered to every receiver.

use crate::{burst, link};
use rmcast::sim::{HostId, Scenario, Topology};
use std::time::Duration;

fn leaf_loss(name: &str, loss: f64, deadline: Duration) -> Scenario {
    Scenario::new(name, Topology::star(8, link(), link().bernoulli(loss)))
        .send(HostId(0), burst(150))
        .deadline(deadline)
}

/// 1 % loss: a few repairs per run, done quickly.
#[test]
fn leaf_loss_1pct() {
    leaf_loss("leaf_loss_1pct", 0.01, Duration::from_secs(2)).sweep(100);
}

/// 10 % loss.
#[test]
fn leaf_loss_10pct() {
    leaf_loss("leaf_loss_10pct", 0.10, Duration::from_secs(5)).sweep(80);
}

/// 30 % loss: NAKs and repairs are lost too, so recovery needs several rounds.
#[test]
fn leaf_loss_30pct() {
    leaf_loss("leaf_loss_30pct", 0.30, Duration::from_secs(10)).sweep(60);
}
