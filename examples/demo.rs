//! Demo: one sender and three receivers on loopback multicast, each receiver losing 5 % of
//! what it receives (injected), all repaired by NAKs. Prints a summary per receiver.
//!
//! ```text
//! cargo run --release --example demo [-- MESSAGES [MESSAGE_BYTES [RATE_MBIT_S]]]
//! ```
//!
//! Defaults: 20,000 messages of 4,000 bytes at the default rate limit (1 Gbit/s). Everything stays on this host: interface
//! 127.0.0.1, TTL 0, group 239.255.73.1:47300.

use bytes::Bytes;
use rmcast::{Event, GroupConfig, ReliableGroup, Stats};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

const GROUP: &str = "239.255.73.1:47300";
const LOSS: f64 = 0.05;
/// Give up on a receiver that hears nothing for this long.
const SILENCE: Duration = Duration::from_secs(10);

#[expect(
    clippy::disallowed_methods,
    reason = "the demo reports wall-clock goodput"
)]
fn now() -> Instant {
    Instant::now()
}

/// What one receiver saw.
struct Outcome {
    messages: u64,
    bytes: u64,
    lost_events: u64,
    elapsed: Duration,
    stats: Stats,
}

fn receive(group: &ReliableGroup, want: u64, start: Instant) -> Outcome {
    let (mut messages, mut bytes, mut lost_events) = (0, 0, 0);
    let mut last = now();
    while messages < want && last.elapsed() < SILENCE {
        match group.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Message { data, .. }) => {
                messages += 1;
                bytes += data.len() as u64;
                last = now();
            }
            Ok(Event::Unrecoverable { .. }) => lost_events += 1,
            Ok(_) | Err(_) => {}
        }
    }
    Outcome {
        messages,
        bytes,
        lost_events,
        elapsed: last - start,
        stats: group.stats(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(4_000), |a| a.parse())?;
    let rate_bps: Option<u64> = args
        .next()
        .map(|a| a.parse::<u64>())
        .transpose()?
        .map(|m| m * 1_000_000);
    let group: SocketAddr = GROUP.parse()?;

    let receivers = (0..3)
        .map(|_| ReliableGroup::join(GroupConfig::on_loopback(group).inject_loss(LOSS, 0.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sender_config = GroupConfig::on_loopback(group);
    if let Some(bps) = rate_bps {
        sender_config = sender_config.rate_limit(Some(bps));
    }
    let sender = ReliableGroup::join(sender_config)?;
    println!(
        "sending {messages} messages of {size} bytes to {group} (loopback, TTL 0), \
         {:.0} % receive loss injected at each of {} receivers",
        LOSS * 100.0,
        receivers.len()
    );

    let start = now();
    let outcomes = thread::scope(|scope| {
        let receiving: Vec<_> = receivers
            .iter()
            .map(|r| scope.spawn(move || receive(r, messages, start)))
            .collect();
        let payload = Bytes::from(vec![0x42u8; size]);
        for _ in 0..messages {
            sender.send(payload.clone())?;
        }
        let outcomes: Vec<Outcome> = receiving
            .into_iter()
            .map(|r| r.join().expect("receiver thread"))
            .collect();
        Ok::<_, rmcast::SendError>(outcomes)
    })?;
    let sent = sender.stats();

    println!(
        "\n{:<10} {:>9} {:>10} {:>9} {:>8} {:>9} {:>8} {:>8}",
        "receiver", "messages", "MB", "Mbit/s", "dropped", "NAKs", "repairs", "lost"
    );
    for (i, o) in outcomes.iter().enumerate() {
        let secs = o.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<10} {:>9} {:>10.1} {:>9.0} {:>8} {:>9} {:>8} {:>8}",
            i,
            o.messages,
            o.bytes as f64 / 1e6,
            o.bytes as f64 * 8.0 / secs / 1e6,
            o.stats.socket.injected_rx_drops,
            o.stats.recovery.naks_sent,
            o.stats.recovery.repairs_received,
            o.lost_events,
        );
    }
    println!(
        "\nsender: {} data datagrams, {} repairs sent for {} NAKs received ({} ignored in the \
         repair linger), {} NCFs; receive buffer granted {} KiB, GSO up to {} datagrams per send",
        sent.tx.odata.packets,
        sent.recovery.repairs_sent,
        sent.recovery.naks_received,
        sent.recovery.naks_ignored_linger,
        sent.recovery.ncfs_sent,
        sent.socket.recv_buffer >> 10,
        sent.socket.gso_segments,
    );
    let complete = outcomes.iter().all(|o| o.messages == messages);
    println!(
        "{}",
        if complete {
            "every receiver got every message"
        } else {
            "INCOMPLETE: some receiver missed messages"
        }
    );
    sender.leave();
    for r in receivers {
        r.leave();
    }
    if complete {
        Ok(())
    } else {
        Err("incomplete delivery".into())
    }
}
