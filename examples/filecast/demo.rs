//! `filecast demo`: the whole tool on loopback in one process — a random file, N receivers
//! (threads, each its own group member) with injected receive loss, one sender, then an
//! independent SHA-256 check of every copy and a summary table.
//!
//! Invariant: the demo exits 0 only if the sender and every receiver succeeded and every copy
//! hashes like the original.

use crate::recv::{self, RecvArgs};
use crate::send::{self, SendArgs, sha256_file};
use crate::{Common, Fec, Rate, hex, now};
use clap::Args;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;

/// `filecast demo` options.
#[derive(Args, Clone, Debug)]
pub(crate) struct DemoArgs {
    /// Receivers to start.
    #[arg(long, default_value_t = 3)]
    pub(crate) receivers: usize,
    /// Size of the random file, in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    pub(crate) size: u64,
    /// Receive loss injected at each receiver, in percent.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) loss: f64,
    /// Multicast group and port (loopback only).
    #[arg(long, default_value = "239.255.90.1:7400")]
    pub(crate) group: SocketAddr,
    /// Sending rate limit (bits per second, K/M/G suffix; 0 = unlimited).
    #[arg(long, default_value = "2G", value_parser = crate::parse_rate)]
    pub(crate) rate: Rate,
    /// The sender's FEC: blocks of K packets with P parity each (`off`: selective repair
    /// only). The default's 2 of 32 (6 %) covers the default 2 % loss without a NAK in most
    /// blocks, and the summary shows what parity rebuilt.
    #[arg(long, default_value = "32,2", value_name = "K,P", value_parser = crate::parse_fec)]
    pub(crate) fec: Fec,
}

/// Runs the demo; returns the exit code.
pub(crate) fn main(args: DemoArgs) -> u8 {
    match run(&args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run(args: &DemoArgs) -> Result<bool, String> {
    if args.receivers == 0 {
        return Err("--receivers must be at least 1".to_owned());
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let source = dir.path().join("demo.bin");
    eprintln!(
        "writing {:.1} MB of random data to {}",
        args.size as f64 / 1e6,
        source.display()
    );
    write_random(&source, args.size).map_err(|e| format!("{}: {e}", source.display()))?;
    let original = sha256_file(&source).map_err(|e| e.to_string())?;
    let common = |loss: f64| Common {
        group: args.group,
        interface: Ipv4Addr::LOCALHOST,
        ttl: Some(0),
        rate: args.rate,
        json: false,
        quiet: true,
        multicast_loop: false,
        inject_loss: loss,
    };
    let recv_args: Vec<RecvArgs> = (0..args.receivers)
        .map(|i| RecvArgs {
            out: dir.path().join(format!("r{i}")),
            overwrite: false,
            once: true,
            timeout: Some(60),
            name: Some(format!("r{i}")),
            no_fsync: false,
            common: common(args.loss),
        })
        .collect();
    let mut send_common = common(0.0);
    send_common.quiet = false;
    let send_args = SendArgs {
        paths: vec![source.clone()],
        receivers: Some(args.receivers),
        wait: 30,
        fec: args.fec,
        common: send_common,
    };
    eprintln!(
        "sending to {} receivers on {} (loopback, TTL 0) with {} % receive loss each",
        args.receivers, args.group, args.loss
    );
    let started = now();
    let (sent, received) = thread::scope(|scope| {
        let receiving: Vec<_> = recv_args
            .iter()
            .map(|a| scope.spawn(move || recv::run(a)))
            .collect();
        let sent = send::run(&send_args);
        let received: Vec<_> = receiving
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err("receiver thread panicked".to_owned()))
            })
            .collect();
        (sent, received)
    });
    let wall = now().duration_since(started).as_secs_f64();
    let sent = sent?;
    send::report(&sent, false);

    println!(
        "\n{:<9} {:>9} {:>10} {:>8} {:>9} {:>10} {:>8}  copy",
        "receiver", "MB", "MB/s", "NAKs", "repairs", "FEC blocks", "lost"
    );
    let mut all_ok = sent.ok;
    for (i, outcome) in received.iter().enumerate() {
        let copy = dir.path().join(format!("r{i}")).join("demo.bin");
        let identical = sha256_file(&copy).is_ok_and(|h| h == original);
        match outcome {
            Ok(o) => {
                all_ok &= o.ok && identical;
                println!(
                    "{:<9} {:>9.1} {:>10.1} {:>8} {:>9} {:>10} {:>8}  {}",
                    format!("r{i}"),
                    o.bytes as f64 / 1e6,
                    o.bytes as f64 / 1e6 / o.seconds.max(1e-9),
                    o.stats.recovery.naks_sent,
                    o.stats.recovery.repairs_received,
                    o.stats.recovery.blocks_recovered,
                    o.unrecoverable,
                    if identical { "identical" } else { "DIFFERENT" }
                );
            }
            Err(e) => {
                all_ok = false;
                println!("r{i}: error: {e}");
            }
        }
    }
    println!(
        "\nsender: {:.1} MB in {:.2} s = {:.1} MB/s goodput ({:.2} s wall including setup); \
         {} NAKs received, {} repairs sent, {} parity sent (FEC {}); {:.2} CPU s for the whole demo process; sha256 {}",
        sent.bytes as f64 / 1e6,
        sent.seconds,
        sent.bytes as f64 / 1e6 / sent.seconds.max(1e-9),
        wall,
        sent.stats.recovery.naks_received,
        sent.stats.recovery.repairs_sent,
        send::parity_sent(&sent.stats),
        match args.fec {
            Fec(Some((k, p))) => format!("{k},{p}"),
            Fec(None) => "off".to_owned(),
        },
        crate::cpu_seconds(),
        hex(&original)
    );
    println!(
        "{}",
        if all_ok {
            "every receiver has an identical copy"
        } else {
            "FAILED: some copy is missing or different"
        }
    );
    Ok(all_ok)
}

fn write_random(path: &std::path::Path, size: u64) -> std::io::Result<()> {
    let mut rng = SmallRng::from_os_rng();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()
}
