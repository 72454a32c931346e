//! The receiver: registers with a sender, writes each announced file to a temporary name,
//! verifies its SHA-256, renames it into place and confirms it.
//!
//! Invariant: a file is only ever visible under its final name after its SHA-256 matched;
//! nothing is written beyond an announced size or outside the output directory; the receiver
//! exits 0 only if every announced file was verified.

use crate::paths::{self, PathRefusal};
use crate::progress::Progress;
use crate::wire::{self, Announce, Body, Status};
use crate::{Common, cpu_seconds, json_string, now};
use bytes::Bytes;
use clap::Args;
use rmcast::{Event, ReliableGroup, SourceId, Stats};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Silence from the sender tolerated within a session when `--timeout` is not given.
const SESSION_SILENCE: Duration = Duration::from_secs(30);
/// After answering DONE, how long to wait for BYE before ending the session anyway.
const AFTER_DONE: Duration = Duration::from_secs(5);
/// A receiver acknowledges its position after processing this many bytes (and at each
/// file's end): the sender's flow control waits for these.
const ACK_EVERY: u64 = 2 << 20;
/// Least spacing of repeated summaries (the sender repeats DONE every 250 ms).
const SUMMARY_EVERY: Duration = Duration::from_millis(200);
/// With fsync on, writeback of each file is started every this many bytes while it is being
/// received, so the `fsync` before the rename finds little left to write.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// `filecast recv` options.
#[derive(Args, Clone, Debug)]
pub(crate) struct RecvArgs {
    /// Directory to receive into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Exit after one session.
    #[arg(long)]
    pub(crate) once: bool,
    /// Give up when no sender is heard for SECS (also while waiting for a session)
    /// [default: wait for a session indefinitely, give up after 30 s of silence in one].
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
    /// Name reported to the sender [default: hostname-pid].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Skip the fsync of each verified file (and of its directory) before and after it is
    /// renamed into place: faster, but a crash may then leave a renamed file with unwritten
    /// pages.
    #[arg(long)]
    pub(crate) no_fsync: bool,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// A file being received.
struct Incoming {
    index: u32,
    announce: Announce,
    target: paths::Target,
    temp: PathBuf,
    file: File,
    written: u64,
    /// Bytes whose writeback was started (`sync_file_range`), with fsync on.
    flushed: u64,
}

/// Work for the hashing thread, which runs beside the writer so that SHA-256 and the file
/// write of consecutive chunks overlap.
enum HashJob {
    /// More bytes of the current file.
    Update(Bytes),
    /// The file ended: reply with its digest and start over.
    Finish(mpsc::SyncSender<[u8; 32]>),
}

/// Handle on the hashing thread (one per receiver, for the file in progress).
struct Hashing {
    jobs: mpsc::SyncSender<HashJob>,
}

impl Hashing {
    fn start() -> Hashing {
        // 64 queued chunks at most: bounded memory (they are slices of received messages).
        let (jobs, queue) = mpsc::sync_channel::<HashJob>(64);
        thread::spawn(move || {
            let mut hasher = Sha256::new();
            for job in queue {
                match job {
                    HashJob::Update(data) => hasher.update(&data),
                    HashJob::Finish(reply) => {
                        let digest = std::mem::take(&mut hasher).finalize().into();
                        let _ = reply.send(digest);
                    }
                }
            }
        });
        Hashing { jobs }
    }

    fn update(&self, data: Bytes) {
        let _ = self.jobs.send(HashJob::Update(data));
    }

    /// Digest of everything since the last finish (`None` if the thread is gone).
    fn finish(&self) -> Option<[u8; 32]> {
        let (reply, digest) = mpsc::sync_channel(1);
        self.jobs.send(HashJob::Finish(reply)).ok()?;
        digest.recv().ok()
    }
}

/// One file's result.
#[derive(Clone, Debug)]
pub(crate) struct FileResult {
    pub(crate) path: String,
    pub(crate) status: Status,
}

/// State of one session with one sender.
struct Session {
    sender: SourceId,
    id: u64,
    announced_any: bool,
    current: Option<Incoming>,
    /// Outcome per file index (bounded by `wire::MAX_FILES`).
    results: BTreeMap<u32, FileResult>,
    done: Option<u32>,
    last_summary: Option<Instant>,
    done_at: Option<Instant>,
    bytes: u64,
    started: Instant,
    /// Bytes processed since the last acknowledgement.
    unacked: u64,
}

/// Why a session ended badly, and what it got until then (once it had begun).
struct SessionError(String, Option<Session>);

/// Outcome of a receiving run.
#[derive(Debug)]
pub(crate) struct RecvOutcome {
    pub(crate) ok: bool,
    pub(crate) files: Vec<FileResult>,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) unrecoverable: u64,
    pub(crate) stats: Stats,
    pub(crate) error: Option<String>,
}

struct Receiver<'a> {
    args: &'a RecvArgs,
    group: &'a ReliableGroup,
    name: String,
    progress: Progress,
    unrecoverable: u64,
    hashing: Hashing,
    /// Sessions already ended, whose late HELLOs must not start them again.
    finished: Vec<u64>,
    /// The last session ended with the sender's BYE (answered with FAREWELL).
    bye_heard: bool,
}

impl Receiver<'_> {
    fn send(&self, session: u64, body: &Body) {
        if let Err(e) = self.group.send(wire::encode(session, body)) {
            self.progress
                .println(&format!("error: sending to the group: {e}"));
        }
    }

    fn say(&self, line: &str) {
        if !self.args.common.quiet {
            self.progress.println(line);
        }
    }

    /// Records a file's outcome and confirms it to the sender.
    fn settle(&self, s: &mut Session, index: u32, path: &str, status: Status) {
        if s.results.contains_key(&index) {
            return;
        }
        match status {
            Status::Verified => self.say(&format!("verified {path}")),
            other => self
                .progress
                .println(&format!("FAILED {path}: {}", other.name())),
        }
        s.results.insert(
            index,
            FileResult {
                path: path.to_owned(),
                status,
            },
        );
        self.send(s.id, &Body::Confirm { index, status });
    }

    /// Ends the file in progress: an incomplete one is lost, its temporary file removed.
    fn abandon_current(&self, s: &mut Session) {
        if let Some(incoming) = s.current.take() {
            self.hashing.finish();
            let _ = fs::remove_file(&incoming.temp);
            self.settle(s, incoming.index, &incoming.announce.path, Status::Lost);
        }
    }

    fn on_announce(&mut self, s: &mut Session, announce: Announce) {
        self.abandon_current(s);
        s.announced_any = true;
        let index = announce.index;
        if s.results.contains_key(&index) || index >= wire::MAX_FILES {
            return;
        }
        let target = match paths::prepare(&self.args.out, &announce.path, self.args.overwrite) {
            Ok(target) => target,
            Err(refusal) => {
                self.progress
                    .println(&format!("refusing {:?}: {refusal}", announce.path));
                let status = match refusal {
                    PathRefusal::Exists(_) => Status::Exists,
                    PathRefusal::Io(_) => Status::Io,
                    _ => Status::Refused,
                };
                self.settle(s, index, &announce.path, status);
                return;
            }
        };
        let file_name = target
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = target
            .dir
            .join(format!(".{file_name}.filecast-{:016x}-{index}.part", s.id));
        let file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => file,
            Err(e) => {
                self.progress.println(&format!("{}: {e}", temp.display()));
                self.settle(s, index, &announce.path, Status::Io);
                return;
            }
        };
        self.progress.start_file(&announce.path, announce.size);
        s.current = Some(Incoming {
            index,
            announce,
            target,
            temp,
            file,
            written: 0,
            flushed: 0,
        });
    }

    fn on_chunk(&mut self, s: &mut Session, index: u32, offset: u64, data: Bytes) {
        let Some(incoming) = s.current.as_mut().filter(|c| c.index == index) else {
            // Data of a file whose announcement never arrived (lost), or of one settled.
            if !s.results.contains_key(&index) && index < wire::MAX_FILES {
                let path = format!("<file #{index}>");
                self.settle(s, index, &path, Status::Lost);
            }
            return;
        };
        let end = offset + data.len() as u64; // decode guarantees no overflow
        if offset != incoming.written || end > incoming.announce.size {
            // A hole (lost chunk) or data beyond the announced size: never written.
            if end > incoming.announce.size {
                self.progress.println(&format!(
                    "{}: data beyond the announced size {}",
                    incoming.announce.path, incoming.announce.size
                ));
            }
            self.abandon_current(s);
            return;
        }
        self.hashing.update(data.clone());
        if let Err(e) = incoming.file.write_all(&data) {
            let (idx, path) = (incoming.index, incoming.announce.path.clone());
            let temp = incoming.temp.clone();
            self.progress.println(&format!("{path}: {e}"));
            s.current = None;
            self.hashing.finish();
            let _ = fs::remove_file(temp);
            self.settle(s, idx, &path, Status::Io);
            return;
        }
        incoming.written = end;
        if !self.args.no_fsync && end - incoming.flushed >= WRITEBACK_EVERY {
            start_writeback(&incoming.file, incoming.flushed, end);
            incoming.flushed = end;
        }
        s.bytes += data.len() as u64;
        self.progress.advance(data.len() as u64);
    }

    /// The sender's SHA-256 of file `index`, which follows its last chunk: a complete file is
    /// verified against it, an incomplete one (a chunk lost for good) is lost.
    fn on_digest(&mut self, s: &mut Session, index: u32, sha256: [u8; 32]) {
        match s.current.as_ref() {
            Some(c) if c.index == index && c.written == c.announce.size => {
                self.finish_current(s, sha256);
            }
            Some(c) if c.index == index => self.abandon_current(s),
            _ => {
                // A file whose announcement never arrived (lost), or one already settled.
                if !s.results.contains_key(&index) && index < wire::MAX_FILES {
                    let path = format!("<file #{index}>");
                    self.settle(s, index, &path, Status::Lost);
                }
            }
        }
    }

    /// Verifies the complete file in progress against `sha256` and renames it into place.
    fn finish_current(&mut self, s: &mut Session, sha256: [u8; 32]) {
        let Some(incoming) = s.current.take() else {
            return;
        };
        let Incoming {
            index,
            announce,
            target,
            temp,
            file,
            ..
        } = incoming;
        let digest = self.hashing.finish();
        let status = if digest != Some(sha256) {
            Status::HashMismatch
        } else {
            match install(
                &file,
                &temp,
                &target.path,
                announce.mode,
                self.args.overwrite,
                !self.args.no_fsync,
            ) {
                Ok(()) => Status::Verified,
                Err(e) => {
                    self.progress
                        .println(&format!("{}: {e}", target.path.display()));
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Status::Exists
                    } else {
                        Status::Io
                    }
                }
            }
        };
        drop(file);
        if status != Status::Verified {
            let _ = fs::remove_file(&temp);
        }
        self.settle(s, index, &announce.path, status);
    }

    fn on_done(&mut self, s: &mut Session, file_count: u32) {
        self.abandon_current(s);
        if s.done.is_none() {
            for index in 0..file_count {
                if !s.results.contains_key(&index) {
                    let path = format!("<file #{index}>");
                    self.settle(s, index, &path, Status::Lost);
                }
            }
            s.done = Some(file_count);
        }
        let t = now();
        s.done_at = Some(t);
        if s.last_summary
            .is_none_or(|last| t.duration_since(last) >= SUMMARY_EVERY)
        {
            s.last_summary = Some(t);
            let statuses = (0..file_count)
                .map(|i| s.results.get(&i).map_or(Status::Lost, |r| r.status))
                .collect();
            self.send(s.id, &Body::Summary { statuses });
        }
    }

    /// Runs one session; returns its results, or an error when it could not complete (with
    /// what it got so far, once a session had begun).
    fn session(&mut self, deadline_idle: Option<Duration>) -> Result<Session, Box<SessionError>> {
        // Wait for a sender's HELLO.
        let waited = now();
        let (sender, id) = loop {
            if let Some(limit) = deadline_idle
                && now().duration_since(waited) >= limit
            {
                return Err(Box::new(SessionError(
                    format!("no sender heard within {}s", limit.as_secs()),
                    None,
                )));
            }
            match self.group.recv_timeout(Duration::from_millis(200)) {
                Ok(Event::Message { source, data }) => {
                    if let Ok(message) = wire::decode(data)
                        && message.body == Body::Hello
                        && !self.finished.contains(&message.session)
                    {
                        break (source, message.session);
                    }
                }
                Ok(_) => {}
                Err(rmcast::RecvError::Closed) => {
                    return Err(Box::new(SessionError("the group closed".to_owned(), None)));
                }
                Err(_) => {}
            }
        };
        self.say(&format!(
            "session {id:016x} from {sender}: registering as {}",
            self.name
        ));
        self.send(
            id,
            &Body::Register {
                name: self.name.clone(),
            },
        );
        let mut s = Session {
            sender,
            id,
            announced_any: false,
            current: None,
            results: BTreeMap::new(),
            done: None,
            last_summary: None,
            done_at: None,
            bytes: 0,
            started: now(),
            unacked: 0,
        };
        let silence = deadline_idle.unwrap_or(SESSION_SILENCE);
        let mut last_heard = now();
        loop {
            let t = now();
            if let Some(done_at) = s.done_at
                && t.duration_since(done_at) >= AFTER_DONE
            {
                return Ok(s);
            }
            if t.duration_since(last_heard) >= silence {
                self.abandon_current(&mut s);
                let message = format!("the sender fell silent for {}s", silence.as_secs());
                return Err(Box::new(SessionError(message, Some(s))));
            }
            let event = match self.group.recv_timeout(Duration::from_millis(200)) {
                Ok(event) => event,
                Err(rmcast::RecvError::Closed) => {
                    return Err(Box::new(SessionError(
                        "the group closed".to_owned(),
                        Some(s),
                    )));
                }
                Err(_) => continue,
            };
            match event {
                Event::Message { source, data } if source == s.sender => {
                    last_heard = now();
                    let Ok(message) = wire::decode(data) else {
                        self.progress
                            .println("ignoring a malformed message from the sender");
                        continue;
                    };
                    if message.session != s.id {
                        continue;
                    }
                    match message.body {
                        Body::Hello if !s.announced_any => {
                            self.send(
                                s.id,
                                &Body::Register {
                                    name: self.name.clone(),
                                },
                            );
                        }
                        Body::Announce(announce) if s.done.is_none() => {
                            self.on_announce(&mut s, announce);
                        }
                        Body::Chunk {
                            index,
                            offset,
                            data,
                        } if s.done.is_none() => {
                            let len = data.len() as u64;
                            self.on_chunk(&mut s, index, offset, data);
                            // Acknowledge processed data, whatever became of it, so the
                            // sender's flow control moves on.
                            s.unacked += len;
                            let end = offset + len;
                            let file_ended = s.results.contains_key(&index)
                                || s.current.as_ref().is_some_and(|c| {
                                    c.index == index && c.written == c.announce.size
                                });
                            if s.unacked >= ACK_EVERY || file_ended {
                                s.unacked = 0;
                                self.send(s.id, &Body::Ack { index, end });
                            }
                        }
                        Body::Digest { index, sha256 } if s.done.is_none() => {
                            self.on_digest(&mut s, index, sha256);
                        }
                        Body::Done { file_count, .. } => self.on_done(&mut s, file_count),
                        Body::Bye => {
                            self.send(s.id, &Body::Farewell);
                            self.bye_heard = true;
                            self.abandon_current(&mut s);
                            return if s.done.is_some() {
                                Ok(s)
                            } else {
                                Err(Box::new(SessionError(
                                    "the sender ended the session early".to_owned(),
                                    Some(s),
                                )))
                            };
                        }
                        _ => {}
                    }
                }
                Event::Unrecoverable { source, range } if source == s.sender => {
                    self.unrecoverable += range.len();
                    self.progress.println(&format!(
                        "lost {} packets of the sender for good",
                        range.len()
                    ));
                }
                Event::SourceLost { source } if source == s.sender => {
                    self.abandon_current(&mut s);
                    return Err(Box::new(SessionError(
                        "the sender was lost".to_owned(),
                        Some(s),
                    )));
                }
                _ => {}
            }
        }
    }
}

/// Sets the permissions and moves a verified temporary file to its final name: by rename
/// with `--overwrite`, else by hard link (which fails if the name was taken meanwhile). With
/// `durable`, the data is fsynced before the name appears and the directory after, so a
/// file under its final name survives a crash whole.
fn install(
    file: &File,
    temp: &std::path::Path,
    target: &std::path::Path,
    mode: u32,
    overwrite: bool,
    durable: bool,
) -> std::io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
    if durable {
        file.sync_all()?;
    }
    if overwrite {
        fs::rename(temp, target)?;
    } else {
        fs::hard_link(temp, target)?;
        fs::remove_file(temp)?;
    }
    if durable && let Some(dir) = target.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Starts writeback of bytes `from..to` of `file` without waiting for it (Linux
/// `sync_file_range`), so the final fsync has little left to do. Best effort: an error only
/// leaves the work to the fsync.
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    // SAFETY: the descriptor is open for the call; the kernel only reads the arguments.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

fn default_name() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Runs a receiver until one session ended (`--once`) or forever, session after session.
pub(crate) fn run(args: &RecvArgs) -> Result<RecvOutcome, String> {
    fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut name = args.name.clone().unwrap_or_else(default_name);
    if name.len() > wire::MAX_NAME {
        let mut cut = wire::MAX_NAME;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    let config = args.common.group_config()?;
    let group = ReliableGroup::join(config).map_err(|e| format!("joining the group: {e}"))?;
    let cpu_start = cpu_seconds();
    let mut receiver = Receiver {
        args,
        group: &group,
        name,
        progress: Progress::new("received", 0, args.common.quiet),
        unrecoverable: 0,
        hashing: Hashing::start(),
        finished: Vec::new(),
        bye_heard: false,
    };
    let idle = args.timeout.map(Duration::from_secs);
    let mut files = Vec::new();
    let mut bytes = 0;
    let mut seconds = 0.0;
    let mut error = None;
    loop {
        let result = receiver.session(idle);
        let session = match result {
            Ok(s) => Some(s),
            Err(failed) => {
                let SessionError(e, s) = *failed;
                receiver.progress.println(&format!("error: {e}"));
                error = Some(e);
                s
            }
        };
        if let Some(s) = session {
            receiver.finished.push(s.id);
            bytes += s.bytes;
            seconds += now().duration_since(s.started).as_secs_f64();
            files.extend(s.results.into_values());
        }
        if args.once || error.is_some() {
            break;
        }
    }
    receiver.progress.finish();
    let unrecoverable = receiver.unrecoverable;
    let bye_heard = receiver.bye_heard;
    let stats = group.stats();
    if bye_heard && args.once {
        // The sender had every confirmation before its BYE: nobody needs this member's
        // messages any more.
        group.leave_with_linger(Duration::ZERO);
    } else {
        group.leave();
    }
    let ok = error.is_none() && files.iter().all(|f| f.status == Status::Verified);
    Ok(RecvOutcome {
        ok,
        files,
        bytes,
        seconds,
        cpu_seconds: cpu_seconds() - cpu_start,
        unrecoverable,
        stats,
        error,
    })
}

/// Prints the receiver's report to stderr and, with `--json`, its summary to stdout.
pub(crate) fn report(outcome: &RecvOutcome, json: bool, quiet: bool) {
    let verified = outcome
        .files
        .iter()
        .filter(|f| f.status == Status::Verified)
        .count();
    let failed: Vec<&FileResult> = outcome
        .files
        .iter()
        .filter(|f| f.status != Status::Verified)
        .collect();
    if !quiet || !failed.is_empty() {
        eprintln!(
            "{verified} files verified, {} failed, {:.1} MB in {:.2} s; {} NAKs sent, {} repairs received ({} packets rebuilt from parity in {} FEC blocks), {} packets lost for good",
            failed.len(),
            outcome.bytes as f64 / 1e6,
            outcome.seconds,
            outcome.stats.recovery.naks_sent,
            outcome.stats.recovery.repairs_received,
            outcome.stats.recovery.packets_recovered,
            outcome.stats.recovery.blocks_recovered,
            outcome.unrecoverable
        );
    }
    for f in &failed {
        eprintln!("FAILED {}: {}", f.path, f.status.name());
    }
    if json {
        let failed_json: Vec<String> = failed
            .iter()
            .map(|f| {
                format!(
                    "{{\"path\":{},\"status\":\"{}\"}}",
                    json_string(&f.path),
                    f.status.name()
                )
            })
            .collect();
        println!(
            "{{\"role\":\"recv\",\"ok\":{},\"verified\":{verified},\"failed\":[{}],\"bytes\":{},\"seconds\":{:.4},\"cpu_seconds\":{:.3},\"max_rss_mib\":{:.1},\"naks_sent\":{},\"repairs_received\":{},\"fec_blocks_recovered\":{},\"fec_packets_recovered\":{},\"unrecoverable_packets\":{},\"error\":{}}}",
            outcome.ok,
            failed_json.join(","),
            outcome.bytes,
            outcome.seconds,
            outcome.cpu_seconds,
            crate::max_rss_mib(),
            outcome.stats.recovery.naks_sent,
            outcome.stats.recovery.repairs_received,
            outcome.stats.recovery.blocks_recovered,
            outcome.stats.recovery.packets_recovered,
            outcome.unrecoverable,
            outcome
                .error
                .as_deref()
                .map_or("null".to_owned(), json_string),
        );
    }
}

/// `filecast recv`: exit code 0 only if every announced file was verified.
pub(crate) fn main(args: RecvArgs) -> u8 {
    match run(&args) {
        Ok(outcome) => {
            report(&outcome, args.common.json, args.common.quiet);
            if outcome.ok { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
