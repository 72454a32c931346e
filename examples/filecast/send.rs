//! The sender: registers receivers, announces and streams each file in chunks, collects
//! per-file confirmations and reports per receiver.
//!
//! Invariant: the sender exits 0 only when every expected receiver confirmed every file as
//! verified; memory stays bounded by the rmcast window and queues, whatever the file sizes
//! (files are read one chunk at a time, never whole).

use crate::progress::Progress;
use crate::wire::{self, Announce, Body, Status};
use crate::{Common, Fec, cpu_seconds, hex, json_string, now};
use bytes::Bytes;
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmcast::{Event, ReliableGroup, SourceId, Stats};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How often HELLO (while registering) and DONE (while confirming) are repeated.
const REPEAT_EVERY: Duration = Duration::from_millis(250);
/// Without `--receivers`, how long to keep registering after the first receiver came.
const REGISTER_GRACE: Duration = Duration::from_secs(1);
/// Flow control: the sender stays at most this many bytes ahead of the slowest receiver's
/// acknowledged position — well inside the rmcast repair window (`WINDOW_BYTES`), so a slow
/// receiver is waited for instead of falling out of the window and losing data for good.
const FLOW_WINDOW: u64 = (crate::WINDOW_BYTES / 2) as u64;
/// A receiver whose position did not move for this long while the sender waited on it is
/// left behind (it will be reported as failing), so one dead receiver cannot stall the rest.
const STALL: Duration = Duration::from_secs(5);

/// `filecast send` options.
#[derive(Args, Clone, Debug)]
pub(crate) struct SendArgs {
    /// Files and directories to send (directories recursively; names relative to the
    /// argument's parent are kept, so `send data` arrives as `DIR/data/...`).
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Wait until N receivers registered before sending, and until all of them confirmed
    /// every file before exiting [default: whoever registered within 1 s of the first].
    #[arg(long, value_name = "N")]
    pub(crate) receivers: Option<usize>,
    /// Bound, in seconds, on the wait for receivers to register and, after the last file, on
    /// the wait for their confirmations.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub(crate) wait: u64,
    /// Forward error correction: blocks of K packets, P parity packets sent with each (P may
    /// be 0), and receivers ask for more parity instead of single packets; one parity packet
    /// repairs different losses at different receivers. `off`: selective repair only. E.g.
    /// `32,2` for up to ~4 % independent loss per receiver without a NAK.
    #[arg(long, default_value = "off", value_name = "K,P", value_parser = crate::parse_fec)]
    pub(crate) fec: Fec,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// One file to send.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    /// Relative, `/`-separated name announced to receivers.
    pub(crate) name: String,
    /// Where it is here.
    pub(crate) path: PathBuf,
    /// Size when listed.
    pub(crate) size: u64,
    /// Permission bits.
    pub(crate) mode: u32,
}

/// Lists the regular files under the arguments, sorted by name. Symlinks are skipped with a
/// warning (following them could send files from outside what was named).
pub(crate) fn collect(inputs: &[PathBuf]) -> Result<Vec<SourceFile>, String> {
    let mut files = BTreeMap::new();
    for input in inputs {
        let meta =
            std::fs::symlink_metadata(input).map_err(|e| format!("{}: {e}", input.display()))?;
        let base = input
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: needs a UTF-8 file name", input.display()))?
            .to_owned();
        if meta.is_dir() {
            walk(input, &base, &mut files)?;
        } else if meta.is_file() {
            add(&mut files, base, input.clone(), &meta)?;
        } else {
            return Err(format!(
                "{}: not a regular file or directory",
                input.display()
            ));
        }
    }
    Ok(files.into_values().collect())
}

fn add(
    files: &mut BTreeMap<String, SourceFile>,
    name: String,
    path: PathBuf,
    meta: &std::fs::Metadata,
) -> Result<(), String> {
    if name.len() > wire::MAX_PATH {
        return Err(format!("{name}: path longer than {} bytes", wire::MAX_PATH));
    }
    let file = SourceFile {
        name: name.clone(),
        path,
        size: meta.len(),
        mode: meta.permissions().mode() & 0o777,
    };
    if files.insert(name.clone(), file).is_some() {
        return Err(format!("{name}: named twice by the arguments"));
    }
    Ok(())
}

fn walk(dir: &Path, prefix: &str, files: &mut BTreeMap<String, SourceFile>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(format!("{}: needs a UTF-8 file name", path.display()));
        };
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let relative = format!("{prefix}/{name}");
        if meta.is_dir() {
            walk(&path, &relative, files)?;
        } else if meta.is_file() {
            add(files, relative, path, &meta)?;
        } else {
            eprintln!("skipping {}: not a regular file", path.display());
        }
    }
    Ok(())
}

/// SHA-256 of a file, read in chunks.
pub(crate) fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; wire::MAX_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// What the sender knows of one receiver.
#[derive(Debug)]
struct Receiver {
    name: String,
    statuses: HashMap<u32, Status>,
    lost: bool,
    /// Position (bytes of the whole session) acknowledged.
    acked: u64,
    /// When `acked` last moved.
    moved: Instant,
    /// Left out of flow control after stalling.
    stalled: bool,
    /// Answered `BYE` with `FAREWELL`: it has the end of the session.
    farewell: bool,
}

/// Shared between the sending thread and the listener.
#[derive(Debug, Default)]
struct Registry {
    accepting: bool,
    receivers: BTreeMap<SourceId, Receiver>,
    late: Vec<String>,
    /// Session position where each file starts (prefix sums of sizes).
    starts: Vec<u64>,
}

/// The registry and the signal that an acknowledgement arrived.
#[derive(Debug, Default)]
struct Shared {
    registry: Mutex<Registry>,
    acked: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until every receiver answered `BYE` or `bound` passed; whether they all did.
    fn wait_for_farewells(&self, bound: Duration) -> bool {
        let deadline = now() + bound;
        let mut reg = self.lock();
        loop {
            if reg.all_farewelled() {
                return true;
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return false;
            }
            reg = self
                .acked
                .wait_timeout(reg, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Blocks until every live receiver acknowledged up to `position - FLOW_WINDOW`, leaving
    /// behind (with a message) any receiver that did not move for `STALL`.
    fn wait_for_credit(&self, position: u64, progress: &Progress) {
        let mut reg = self.lock();
        loop {
            let t = now();
            let mut behind = false;
            for (id, r) in reg.receivers.iter_mut() {
                if r.lost || r.stalled || position.saturating_sub(r.acked) <= FLOW_WINDOW {
                    continue;
                }
                if t.duration_since(r.moved) >= STALL {
                    r.stalled = true;
                    progress.println(&format!(
                        "receiver {} ({id}) made no progress for {}s: continuing without it",
                        r.name,
                        STALL.as_secs()
                    ));
                } else {
                    behind = true;
                }
            }
            if !behind {
                return;
            }
            reg = self
                .acked
                .wait_timeout(reg, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Registry {
    /// Every receiver still there answered `BYE`: nobody will ask for it again.
    fn all_farewelled(&self) -> bool {
        self.receivers.values().all(|r| r.lost || r.farewell)
    }

    fn complete(&self, files: u32) -> bool {
        self.receivers
            .values()
            .all(|r| r.lost || (0..files).all(|i| r.statuses.contains_key(&i)))
    }
}

/// Listens for registrations, acknowledgements and confirmations until `stop`.
fn listen(group: &ReliableGroup, session: u64, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        // Short: the sender's exit waits for this thread to see `stop`.
        let event = match group.recv_timeout(Duration::from_millis(5)) {
            Ok(event) => event,
            Err(rmcast::RecvError::Closed) => return,
            Err(_) => continue,
        };
        let mut reg = shared.lock();
        match event {
            Event::Message { source, data } => {
                let Ok(message) = wire::decode(data) else {
                    continue;
                };
                if message.session != session {
                    continue;
                }
                match message.body {
                    Body::Register { name } => {
                        if reg.receivers.contains_key(&source) {
                            continue;
                        }
                        if reg.accepting {
                            eprintln!("receiver {name} ({source}) registered");
                            reg.receivers.insert(
                                source,
                                Receiver {
                                    name,
                                    statuses: HashMap::new(),
                                    lost: false,
                                    acked: 0,
                                    moved: now(),
                                    stalled: false,
                                    farewell: false,
                                },
                            );
                        } else if !reg.late.contains(&name) {
                            eprintln!("receiver {name} ({source}) registered too late: ignored");
                            reg.late.push(name);
                        }
                    }
                    Body::Ack { index, end } => {
                        let position = reg
                            .starts
                            .get(index as usize)
                            .map(|start| start.saturating_add(end));
                        if let (Some(position), Some(r)) =
                            (position, reg.receivers.get_mut(&source))
                            && position > r.acked
                        {
                            r.acked = position;
                            r.moved = now();
                            shared.acked.notify_all();
                        }
                    }
                    Body::Confirm { index, status } => {
                        if let Some(r) = reg.receivers.get_mut(&source) {
                            r.statuses.insert(index, status);
                        }
                    }
                    Body::Summary { statuses } => {
                        if let Some(r) = reg.receivers.get_mut(&source) {
                            for (index, status) in (0u32..).zip(statuses) {
                                r.statuses.insert(index, status);
                            }
                        }
                    }
                    Body::Farewell => {
                        if let Some(r) = reg.receivers.get_mut(&source) {
                            r.farewell = true;
                            shared.acked.notify_all();
                        }
                    }
                    _ => {}
                }
            }
            Event::SourceLost { source } => {
                if let Some(r) = reg.receivers.get_mut(&source) {
                    eprintln!("receiver {} ({source}) fell silent", r.name);
                    r.lost = true;
                    shared.acked.notify_all();
                }
            }
            _ => {}
        }
    }
}

/// One chunk message: header and fields, then the file data read straight into it (into
/// the buffer's uninitialized capacity: `File` reads without zeroing it first).
fn chunk_message(
    session: u64,
    index: u32,
    offset: u64,
    len: usize,
    file: &mut File,
) -> io::Result<Bytes> {
    let head = wire::encode(
        session,
        &Body::Chunk {
            index,
            offset,
            data: Bytes::new(),
        },
    );
    let mut out = Vec::with_capacity(head.len() + len);
    out.extend_from_slice(&head);
    let read = file.take(len as u64).read_to_end(&mut out)?;
    if read != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(out))
}

/// Per-receiver outcome of a run.
#[derive(Debug)]
pub(crate) struct ReceiverOutcome {
    pub(crate) id: SourceId,
    pub(crate) name: String,
    pub(crate) verified: usize,
    /// (file name, status) of files not verified.
    pub(crate) failed: Vec<(String, Status)>,
    /// Files never confirmed.
    pub(crate) missing: Vec<String>,
}

/// Outcome of a sending run.
#[derive(Debug)]
pub(crate) struct SendOutcome {
    pub(crate) ok: bool,
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) expected: Option<usize>,
    pub(crate) receivers: Vec<ReceiverOutcome>,
    pub(crate) stats: Stats,
    pub(crate) error: Option<String>,
}

/// Runs a sender to completion.
pub(crate) fn run(args: &SendArgs) -> Result<SendOutcome, String> {
    let files = collect(&args.paths)?;
    if files.len() > wire::MAX_FILES as usize {
        return Err(format!("more than {} files", wire::MAX_FILES));
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut config = args.common.group_config()?;
    if let Fec(Some((k, p))) = args.fec {
        config = config.fec(k, p);
    }
    let group = ReliableGroup::join(config).map_err(|e| format!("joining the group: {e}"))?;
    let session: u64 = SmallRng::from_os_rng().random();
    let wait = Duration::from_secs(args.wait);
    let quiet = args.common.quiet;
    if !quiet {
        eprintln!(
            "session {session:016x}: {} files, {:.1} MB to {} via {}",
            files.len(),
            total as f64 / 1e6,
            args.common.group,
            args.common.interface
        );
    }
    let starts = files
        .iter()
        .scan(0u64, |start, f| {
            let this = *start;
            *start += f.size;
            Some(this)
        })
        .collect();
    let shared = Shared {
        registry: Mutex::new(Registry {
            accepting: true,
            starts,
            ..Registry::default()
        }),
        acked: Condvar::new(),
    };
    let stop = AtomicBool::new(false);
    let cpu_start = cpu_seconds();

    let result = thread::scope(|scope| {
        scope.spawn(|| listen(&group, session, &shared, &stop));
        let outcome = stream(args, &group, session, &files, total, &shared, wait);
        stop.store(true, Ordering::Relaxed);
        outcome
    });
    let (seconds, error) = match result {
        Ok(seconds) => (seconds, None),
        Err(e) => (0.0, Some(e)),
    };
    let stats = group.stats();
    let reg = shared
        .registry
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    if error.is_none() && !reg.receivers.is_empty() && reg.all_farewelled() {
        // Every receiver has the BYE: a linger would serve nobody.
        group.leave_with_linger(Duration::ZERO);
    } else {
        group.leave();
    }
    let receivers: Vec<ReceiverOutcome> = reg
        .receivers
        .iter()
        .map(|(id, r)| {
            let mut failed = Vec::new();
            let mut missing = Vec::new();
            let mut verified = 0;
            for (i, file) in (0u32..).zip(&files) {
                match r.statuses.get(&i) {
                    Some(Status::Verified) => verified += 1,
                    Some(status) => failed.push((file.name.clone(), *status)),
                    None => missing.push(file.name.clone()),
                }
            }
            ReceiverOutcome {
                id: *id,
                name: r.name.clone(),
                verified,
                failed,
                missing,
            }
        })
        .collect();
    let enough = args.receivers.is_none_or(|n| receivers.len() >= n) && !receivers.is_empty();
    let ok = error.is_none()
        && enough
        && receivers
            .iter()
            .all(|r| r.failed.is_empty() && r.missing.is_empty());
    Ok(SendOutcome {
        ok,
        files: files.len(),
        bytes: total,
        seconds,
        cpu_seconds: cpu_seconds() - cpu_start,
        expected: args.receivers,
        receivers,
        stats,
        error,
    })
}

/// Registration, streaming and confirmation; returns the transfer's wall time in seconds.
///
/// Each file is hashed as its chunks are read and sent, and its SHA-256 follows its data
/// (`DIGEST`): no pass over the file before sending, and the digest covers exactly the bytes
/// sent.
fn stream(
    args: &SendArgs,
    group: &ReliableGroup,
    session: u64,
    files: &[SourceFile],
    total: u64,
    shared: &Shared,
    wait: Duration,
) -> Result<f64, String> {
    let send = |body: &Body| {
        group
            .send(wire::encode(session, body))
            .map_err(|e| format!("sending: {e}"))
    };
    // 1. Registration.
    let deadline = now() + wait;
    let mut first_seen = None;
    let mut hello_at = now();
    loop {
        let t = now();
        if t >= hello_at {
            send(&Body::Hello)?;
            hello_at = t + REPEAT_EVERY;
        }
        thread::sleep(Duration::from_millis(2));
        let count = shared.lock().receivers.len();
        let t = now();
        match args.receivers {
            Some(n) if count >= n => break,
            None if count > 0 => {
                let first = *first_seen.get_or_insert(t);
                if t.duration_since(first) >= REGISTER_GRACE {
                    break;
                }
            }
            _ => {}
        }
        if t >= deadline {
            shared.lock().accepting = false;
            let names = registered_names(shared);
            let _ = send(&Body::Bye);
            return Err(match args.receivers {
                Some(n) => format!(
                    "expected {n} receivers, {} registered within {}s ({}); missing {}",
                    count,
                    wait.as_secs(),
                    names,
                    n - count
                ),
                None => format!("no receiver registered within {}s", wait.as_secs()),
            });
        }
    }
    {
        let mut reg = shared.lock();
        reg.accepting = false;
        let t = now();
        for r in reg.receivers.values_mut() {
            r.moved = t;
        }
    }
    if !args.common.quiet {
        eprintln!("sending to {}", registered_names(shared));
    }
    let mut position = 0u64;

    // 2. Streaming.
    let started = now();
    let mut progress = Progress::new("sent", total, args.common.quiet);
    for (index, file) in (0u32..).zip(files) {
        let mut handle =
            File::open(&file.path).map_err(|e| format!("{}: {e}", file.path.display()))?;
        let size = handle
            .metadata()
            .map_err(|e| format!("{}: {e}", file.path.display()))?
            .len();
        if size != file.size {
            return Err(format!(
                "{}: changed size while sending",
                file.path.display()
            ));
        }
        send(&Body::Announce(Announce {
            index,
            size,
            mode: file.mode,
            path: file.name.clone(),
        }))?;
        progress.start_file(&file.name, size);
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        while offset < size {
            let len = (size - offset).min(wire::MAX_CHUNK as u64) as usize;
            position += len as u64;
            shared.wait_for_credit(position, &progress);
            let message = chunk_message(session, index, offset, len, &mut handle)
                .map_err(|e| format!("{}: {e}", file.path.display()))?;
            hasher.update(&message[message.len() - len..]);
            group.send(message).map_err(|e| format!("sending: {e}"))?;
            offset += len as u64;
            progress.advance(len as u64);
        }
        let sha256: [u8; 32] = hasher.finalize().into();
        send(&Body::Digest { index, sha256 })?;
        if !args.common.quiet && !progress_is_bar() {
            eprintln!("sent {} ({size} bytes, sha256 {})", file.name, hex(&sha256));
        }
    }
    progress.finish();

    // 3. Confirmations.
    let file_count = files.len() as u32;
    let deadline = now() + wait;
    loop {
        send(&Body::Done {
            file_count,
            total_bytes: total,
        })?;
        // Poll finely between repeats so the measured time ends when the last confirmation
        // arrives, not at the next repeat.
        let repeat_at = now() + REPEAT_EVERY;
        let mut complete = false;
        while !complete && now() < repeat_at {
            thread::sleep(Duration::from_millis(2));
            complete = shared.lock().complete(file_count);
        }
        if complete || now() >= deadline {
            break;
        }
    }
    let seconds = now().duration_since(started).as_secs_f64();
    send(&Body::Bye)?;
    // Receivers answer within a round trip; one whose answer is lost costs this wait and
    // the leave linger, as before FAREWELL existed.
    shared.wait_for_farewells(crate::LEAVE_LINGER);
    Ok(seconds)
}

fn progress_is_bar() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

fn registered_names(shared: &Shared) -> String {
    let reg = shared.lock();
    if reg.receivers.is_empty() {
        return "none".to_owned();
    }
    reg.receivers
        .values()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the per-receiver report to stderr and, with `--json`, the summary to stdout.
/// PARITY packets this sender sent, with its blocks and in answer to parity NAKs.
pub(crate) fn parity_sent(stats: &Stats) -> u64 {
    stats.recovery.parity_sent_proactive + stats.recovery.parity_sent_on_demand
}

pub(crate) fn report(outcome: &SendOutcome, json: bool) {
    if let Some(error) = &outcome.error {
        eprintln!("error: {error}");
    }
    let secs = outcome.seconds.max(1e-9);
    eprintln!(
        "{} files, {:.1} MB in {:.2} s: {:.1} MB/s; {:.2} CPU s; {} NAKs received, {} repairs sent, {} parity sent",
        outcome.files,
        outcome.bytes as f64 / 1e6,
        outcome.seconds,
        outcome.bytes as f64 / 1e6 / secs,
        outcome.cpu_seconds,
        outcome.stats.recovery.naks_received,
        outcome.stats.recovery.repairs_sent,
        parity_sent(&outcome.stats)
    );
    eprintln!(
        "{:<20} {:<16} {:>9} {:>7} {:>8}  status",
        "receiver", "id", "verified", "failed", "missing"
    );
    for r in &outcome.receivers {
        let status = if r.failed.is_empty() && r.missing.is_empty() {
            "OK".to_owned()
        } else {
            let mut parts: Vec<String> = r
                .failed
                .iter()
                .map(|(name, status)| format!("{name}: {}", status.name()))
                .collect();
            parts.extend(
                r.missing
                    .iter()
                    .map(|name| format!("{name}: not confirmed")),
            );
            format!("FAILED ({})", parts.join(", "))
        };
        eprintln!(
            "{:<20} {:<16} {:>9} {:>7} {:>8}  {status}",
            r.name,
            r.id,
            r.verified,
            r.failed.len(),
            r.missing.len()
        );
    }
    if let Some(n) = outcome.expected
        && outcome.receivers.len() < n
    {
        eprintln!(
            "MISSING: {} of {n} expected receivers never registered",
            n - outcome.receivers.len()
        );
    }
    eprintln!(
        "{}",
        if outcome.ok {
            "all receivers verified all files"
        } else {
            "FAILED"
        }
    );
    if json {
        let receivers: Vec<String> = outcome
            .receivers
            .iter()
            .map(|r| {
                let failed: Vec<String> = r
                    .failed
                    .iter()
                    .map(|(n, s)| format!("{{\"path\":{},\"status\":\"{}\"}}", json_string(n), s.name()))
                    .collect();
                let missing: Vec<String> = r.missing.iter().map(|n| json_string(n)).collect();
                format!(
                    "{{\"name\":{},\"id\":\"{}\",\"verified\":{},\"failed\":[{}],\"missing\":[{}]}}",
                    json_string(&r.name),
                    r.id,
                    r.verified,
                    failed.join(","),
                    missing.join(",")
                )
            })
            .collect();
        println!(
            "{{\"role\":\"send\",\"ok\":{},\"files\":{},\"bytes\":{},\"seconds\":{:.4},\"goodput_mb_s\":{:.2},\"cpu_seconds\":{:.3},\"max_rss_mib\":{:.1},\"expected_receivers\":{},\"naks_received\":{},\"repairs_sent\":{},\"parity_sent\":{},\"receivers\":[{}],\"error\":{}}}",
            outcome.ok,
            outcome.files,
            outcome.bytes,
            outcome.seconds,
            outcome.bytes as f64 / 1e6 / secs,
            outcome.cpu_seconds,
            crate::max_rss_mib(),
            outcome
                .expected
                .map_or("null".to_owned(), |n| n.to_string()),
            outcome.stats.recovery.naks_received,
            outcome.stats.recovery.repairs_sent,
            parity_sent(&outcome.stats),
            receivers.join(","),
            outcome
                .error
                .as_deref()
                .map_or("null".to_owned(), json_string),
        );
    }
}

/// `filecast send`: exit code 0 only if every expected receiver verified every file.
pub(crate) fn main(args: SendArgs) -> u8 {
    match run(&args) {
        Ok(outcome) => {
            report(&outcome, args.common.json);
            if outcome.ok { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
