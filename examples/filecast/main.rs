//! filecast: distributes files from one sender to many receivers over rmcast, verified by
//! SHA-256, confirmed per file and per receiver.
//!
//! ```text
//! cargo run --release --example filecast -- demo                     # loopback, 3 receivers, 2 % loss
//! cargo run --release --example filecast -- recv --out /tmp/in --once
//! cargo run --release --example filecast -- send --receivers 3 ./dataset
//! ```
//!
//! Modules: `wire` (the versioned message layout), `paths` (untrusted path checks), `send`,
//! `recv`, `demo`, `progress`. The protocol and the exit codes are documented in
//! `docs/filecast.md`. Invariant: exit status 0 means every expected receiver verified every
//! file (sender) or every announced file was verified (receiver); anything else is non-zero.

mod demo;
mod paths;
mod progress;
mod recv;
mod send;
mod wire;

use clap::{Args, Parser, Subcommand};
use rmcast::GroupConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Bytes of the sender's repair window: enough for ~0.13 s at 2 Gbit/s, small enough that
/// memory stays bounded whatever the file size.
const WINDOW_BYTES: usize = 32 << 20;
/// Events (mostly 1 MiB chunks) queued between a receiver's engine and the writer.
const RECV_QUEUE: usize = 16;
/// Messages queued between the sender's reader and its engine.
const SEND_QUEUE: usize = 8;
/// After leaving, how long a member keeps answering NAKs once none comes. Everyone leaves
/// only after the session's end-to-end confirmations, so this only covers a lost BYE (which
/// receivers also survive, by leaving 5 s after DONE); on a LAN a NAK comes within a few ms.
/// rmcast's 200 ms default was a quarter of the wall time of a 256 MiB transfer. A sender
/// that got every receiver's FAREWELL, and a receiver that got the BYE, leave without it:
/// nobody is left to ask them for anything (50 ms was 13 % of a 256 MiB transfer on netlab).
pub(crate) const LEAVE_LINGER: Duration = Duration::from_millis(50);

#[expect(
    clippy::disallowed_methods,
    reason = "filecast reports wall-clock progress and bounds its waits"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Distribute files to many receivers over reliable multicast, verified by SHA-256.
#[derive(Parser, Debug)]
#[command(name = "filecast", version, about = "Distribute files to many receivers over reliable multicast, verified by SHA-256", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send files and directories (recursively, relative names kept) to the receivers.
    Send(send::SendArgs),
    /// Receive files into a directory.
    Recv(recv::RecvArgs),
    /// Loopback demo in one command: random file, N receivers with injected loss, summary.
    Demo(demo::DemoArgs),
}

/// Options of every subcommand.
#[derive(Args, Clone, Debug)]
pub(crate) struct Common {
    /// Multicast group and port.
    #[arg(long, default_value = "239.255.90.1:7400")]
    pub(crate) group: SocketAddr,
    /// Local interface (its IPv4 address) to join and send on.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) interface: Ipv4Addr,
    /// Multicast TTL [default: 0 on loopback, else 1].
    #[arg(long)]
    pub(crate) ttl: Option<u32>,
    /// Sending rate limit in bits per second of UDP payload, with an optional K/M/G suffix
    /// (e.g. 800M); `0` or `unlimited` sends as fast as the socket takes.
    #[arg(long, default_value = "2G", value_parser = parse_rate)]
    pub(crate) rate: Rate,
    /// Print a machine-readable JSON summary on stdout (human output goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress output.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Also deliver to receivers on this host when sending on a non-loopback interface
    /// (IP_MULTICAST_LOOP; always on with a loopback interface). Off, the sender's socket does
    /// not receive a copy of everything it sends.
    #[arg(long)]
    pub(crate) multicast_loop: bool,
    /// Testing only: drop this percentage of received datagrams (injected loss).
    #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
    pub(crate) inject_loss: f64,
}

/// A rate limit in bits per second; `None` is unlimited.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate(pub Option<u64>);

fn parse_rate(text: &str) -> Result<Rate, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Rate(None));
    }
    let (digits, scale) = match text.chars().last() {
        Some('k' | 'K') => (&text[..text.len() - 1], 1e3),
        Some('m' | 'M') => (&text[..text.len() - 1], 1e6),
        Some('g' | 'G') => (&text[..text.len() - 1], 1e9),
        _ => (text, 1.0),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("not a rate: {text:?} (try 800M or 2G)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("not a rate: {text:?}"));
    }
    let bits = (value * scale) as u64;
    Ok(Rate(if bits == 0 { None } else { Some(bits) }))
}

/// FEC setting of a sender: `Some((k, p))`, or `None` for selective repair only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fec(pub Option<(u8, u8)>);

fn parse_fec(text: &str) -> Result<Fec, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Fec(None));
    }
    let bad =
        || format!("not an FEC setting: {text:?} (try 32,2: blocks of 32, 2 parity each; or off)");
    let (k, p) = text.split_once(',').ok_or_else(bad)?;
    let k: u8 = k.trim().parse().map_err(|_| bad())?;
    let p: u8 = p.trim().parse().map_err(|_| bad())?;
    if k == 0 {
        return Err(format!("--fec {text}: K must be 1..=255"));
    }
    Ok(Fec(Some((k, p))))
}

impl Common {
    /// The rmcast configuration every filecast member uses.
    pub(crate) fn group_config(&self) -> Result<GroupConfig, String> {
        if !(0.0..100.0).contains(&self.inject_loss) {
            return Err(format!(
                "--inject-loss must be in 0..100, not {}",
                self.inject_loss
            ));
        }
        let interface = IpAddr::V4(self.interface);
        let ttl = self
            .ttl
            .unwrap_or(if self.interface.is_loopback() { 0 } else { 1 });
        Ok(GroupConfig::new(self.group)
            .interface(interface)
            .ttl(ttl)
            .loopback(self.interface.is_loopback() || self.multicast_loop)
            .leave_linger(LEAVE_LINGER)
            .rate_limit(self.rate.0)
            .max_message_len(wire::MAX_MESSAGE)
            .window(1 << 18, WINDOW_BYTES, Duration::from_secs(60))
            .recv_queue(RECV_QUEUE)
            .send_queue(SEND_QUEUE)
            .initial_rtt(Duration::from_millis(2))
            // A file transfer would rather wait for a repair than lose data: keep asking for
            // 10 s (flow control keeps the sender well inside its window meanwhile).
            .give_up_after(Duration::from_secs(10))
            .inject_loss(self.inject_loss / 100.0, 0.0))
    }
}

/// CPU seconds (user + system) this process used so far.
pub(crate) fn cpu_seconds() -> f64 {
    let usage = own_usage();
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Peak resident memory of this process so far, in MiB (the `--json` summaries report it, so
/// the bound on memory is checked end to end).
pub(crate) fn max_rss_mib() -> f64 {
    // Linux reports ru_maxrss in KiB.
    own_usage().ru_maxrss as f64 / 1024.0
}

fn own_usage() -> libc::rusage {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// Minimal JSON string escaping for the `--json` summaries.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Keeps glibc from returning each freed 1 MiB message buffer to the kernel: by default a
/// buffer that size is an `mmap` of its own (or trimmed off the heap once freed), so every
/// chunk message cost a fresh mapping, a page fault per 4 KiB and the kernel zeroing each
/// page. Allocations up to 4 MiB now come from the heap, and up to 16 MiB of freed heap top
/// is kept for reuse.
fn keep_freed_buffers() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

fn main() -> ExitCode {
    keep_freed_buffers();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Send(args) => send::main(args),
        Command::Recv(args) => recv::main(args),
        Command::Demo(args) => demo::main(args),
    };
    ExitCode::from(code)
}
