//! End-to-end tests of the `filecast` example as separate processes on loopback multicast
//! (interface 127.0.0.1, TTL 0, one group and port per test), plus its message codec and path
//! checks in-process.
//!
//! The example binary is built once per test process with the same cargo, profile and target
//! directory as this test (`cargo build --example filecast`, located next to this test's own
//! executable): cargo offers no `CARGO_BIN_EXE_` for examples, and this works the same under
//! `cargo test`, `cargo test --test filecast` and any `CARGO_TARGET_DIR`. Every child process
//! runs under a deadline and is killed when the test ends.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's codec, partly used here"
)]
#[path = "../examples/filecast/wire.rs"]
mod wire;

mod support;

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's path checks, partly used here"
)]
#[path = "../examples/filecast/paths.rs"]
mod paths;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rmcast::{Event, GroupConfig, ReliableGroup};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use wire::{Announce, Body, Status};

#[expect(
    clippy::disallowed_methods,
    reason = "wall-clock deadlines of a process test"
)]
fn now() -> Instant {
    Instant::now()
}

/// The example binary, built on first use.
fn filecast() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| support::build_example("filecast").0)
}

/// A child process whose stderr is collected, killed if still running when dropped.
struct Proc {
    name: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

fn collect(reader: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().expect("output lock");
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl Proc {
    fn spawn(name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(filecast())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start filecast");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        Proc {
            name: name.to_owned(),
            child,
            stderr,
            stdout,
        }
    }

    /// Waits at most until `deadline`; a process still running then fails the test.
    fn wait(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the output threads drain the pipes.
                thread::sleep(Duration::from_millis(50));
                return status;
            }
            if now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "{} still running at the deadline; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("output lock").clone()
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("output lock").clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_random(path: &Path, len: usize, seed: u64) {
    let mut data = vec![0u8; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut data);
    std::fs::write(path, data).expect("write test file");
}

/// Every regular file under `root`: relative path → (content, permission bits).
fn tree(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                walk(root, &path, out);
            } else if meta.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                let content = std::fs::read(&path).expect("read");
                out.insert(relative, (content, meta.permissions().mode() & 0o777));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn receiver(group: &str, out: &Path, name: &str, loss: &str) -> Proc {
    Proc::spawn(
        name,
        &[
            "recv",
            "--group",
            group,
            "--out",
            out.to_str().expect("utf-8 path"),
            "--once",
            "--timeout",
            "60",
            "--inject-loss",
            loss,
            "--name",
            name,
            "--json",
        ],
    )
}

fn sender(group: &str, receivers: &str, wait: &str, rate: &str, src: &Path) -> Proc {
    Proc::spawn(
        "sender",
        &[
            "send",
            "--group",
            group,
            "--receivers",
            receivers,
            "--wait",
            wait,
            "--rate",
            rate,
            "--json",
            src.to_str().expect("utf-8 path"),
        ],
    )
}

#[test]
fn a_tree_of_empty_small_and_64_mib_files_reaches_three_receivers_intact_despite_5_percent_loss() {
    let group = "239.255.91.1:47501";
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src").join("tree");
    std::fs::create_dir_all(src.join("sub").join("deeper")).expect("mkdir");
    std::fs::write(src.join("empty"), b"").expect("write");
    std::fs::write(src.join("small.txt"), b"hello, rack\n").expect("write");
    std::fs::set_permissions(
        src.join("small.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    write_random(&src.join("sub").join("mid.bin"), 300_001, 1);
    std::fs::write(src.join("sub").join("deeper").join("empty2"), b"").expect("write");
    write_random(&src.join("sub").join("deeper").join("big.bin"), 64 << 20, 2);
    std::fs::set_permissions(
        src.join("sub").join("deeper").join("big.bin"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");

    let deadline = now() + Duration::from_secs(120);
    let outs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("out{i}"))).collect();
    let mut receivers: Vec<Proc> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| receiver(group, out, &format!("r{i}"), "5"))
        .collect();
    let mut sender = sender(group, "3", "30", "100M", &src);
    let status = sender.wait(deadline);
    let sender_log = sender.stderr();
    assert!(status.success(), "sender failed: {status}\n{sender_log}");
    assert!(
        sender.stdout().contains("\"ok\":true"),
        "sender JSON: {}",
        sender.stdout()
    );
    let expected = tree(src.parent().expect("src"));
    assert_eq!(expected.len(), 5);
    for (r, out) in receivers.iter_mut().zip(&outs) {
        let status = r.wait(deadline);
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            r.name,
            r.stderr()
        );
        let got = tree(out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{}: file list (no temporary file may remain)",
            r.name
        );
        for (name, (content, mode)) in &expected {
            let (got_content, got_mode) = &got[name];
            assert!(got_content == content, "{}: {name} differs", r.name);
            assert_eq!(got_mode, mode, "{}: {name} mode", r.name);
        }
        assert!(
            r.stdout().contains("\"ok\":true"),
            "{}: {}",
            r.name,
            r.stdout()
        );
    }
    // The loss was real and repaired.
    assert!(
        !sender.stdout().contains("\"repairs_sent\":0,"),
        "no repairs under 5 % loss: {}",
        sender.stdout()
    );
}

/// The number after `"key":` in a `--json` summary.
fn json_number(json: &str, key: &str) -> f64 {
    let field = format!("\"{key}\":");
    let start = json
        .find(&field)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + field.len();
    let end = json[start..]
        .find([',', '}'])
        .map_or(json.len(), |i| start + i);
    json[start..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {json}"))
}

/// `--fec K,P`: the sender adds parity, receivers rebuild lost packets from it (counted in
/// their JSON summaries) and still verify identical copies; the sender reports the parity it
/// sent. Run at an unlimited rate, the GSO batching of ODATA shorter than PARITY is exercised
/// too.
#[test]
fn fec_parity_rebuilds_losses_and_every_copy_is_identical() {
    let group = "239.255.91.6:47506";
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("data.bin");
    write_random(&src, 8 << 20, 61);
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("out{i}"))).collect();
    let deadline = now() + Duration::from_secs(120);
    let mut receivers: Vec<Proc> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| receiver(group, out, &format!("r{i}"), "3"))
        .collect();
    let mut sender = Proc::spawn(
        "sender",
        &[
            "send",
            "--group",
            group,
            "--receivers",
            "2",
            "--wait",
            "30",
            "--rate",
            "unlimited",
            "--fec",
            "16,2",
            "--json",
            src.to_str().expect("utf-8 path"),
        ],
    );
    let status = sender.wait(deadline);
    assert!(
        status.success(),
        "sender failed: {status}\n{}",
        sender.stderr()
    );
    let parity = json_number(&sender.stdout(), "parity_sent");
    assert!(
        // Two per block of 16 datagrams of at most 9,000 bytes, at least.
        parity >= 2.0 * (8 << 20) as f64 / 9000.0 / 16.0,
        "{}",
        sender.stdout()
    );
    let original = std::fs::read(&src).expect("source");
    for (receiver, out) in receivers.iter_mut().zip(&outs) {
        let status = receiver.wait(deadline);
        assert!(
            status.success(),
            "receiver failed: {status}\n{}",
            receiver.stderr()
        );
        let json = receiver.stdout();
        let blocks = json_number(&json, "fec_blocks_recovered");
        let rebuilt = json_number(&json, "fec_packets_recovered");
        println!("parity sent {parity}; receiver: {blocks} blocks, {rebuilt} packets rebuilt");
        assert!(blocks >= 10.0 && rebuilt >= blocks, "{json}");
        assert!(std::fs::read(out.join("data.bin")).expect("copy") == original);
    }
}

/// `filecast demo` in one command: receivers with injected loss, FEC on by default, and a
/// summary with goodput, NAKs, repairs, the blocks each receiver rebuilt from parity and the
/// wall time; it exits 0 only when every copy is identical.
#[test]
fn the_demo_summarizes_goodput_repairs_and_fec_recoveries() {
    let mut demo = Proc::spawn(
        "demo",
        &[
            "demo",
            "--group",
            "239.255.91.7:47507",
            "--receivers",
            "2",
            "--size",
            "8388608",
            "--loss",
            "3",
        ],
    );
    let status = demo.wait(now() + Duration::from_secs(120));
    let stdout = demo.stdout();
    assert!(
        status.success(),
        "demo failed: {status}\n{stdout}\n{}",
        demo.stderr()
    );
    assert!(
        stdout.contains("every receiver has an identical copy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("MB/s goodput") && stdout.contains("s wall"),
        "{stdout}"
    );
    let header = stdout
        .lines()
        .find(|line| line.starts_with("receiver "))
        .unwrap_or_else(|| panic!("no receiver table: {stdout}"));
    assert!(header.contains("FEC blocks"), "{header}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|line| line.starts_with('r') && line.ends_with("identical"))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in rows {
        // receiver, MB, MB/s, NAKs, repairs, FEC blocks, lost, copy
        let fec_blocks: u64 = row[5].parse().expect("FEC blocks column");
        assert!(
            fec_blocks > 0,
            "no block rebuilt from parity at 3 % loss: {row:?}"
        );
        assert_eq!(row[6], "0", "{row:?}");
    }
}

/// Memory stays bounded by the windows and queues, not by the file: a 1 GiB file (sparse, so
/// the test costs no disk reads) passes through a sender and a receiver that each peak at a
/// small fraction of it. Measured in release: about 48 MiB each; the bound leaves room for
/// the debug build's allocator patterns while staying an order of magnitude below the file.
#[test]
fn a_one_gib_file_needs_only_tens_of_mib_on_either_side() {
    let group = "239.255.91.4:47504";
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("big.img");
    let file = std::fs::File::create(&src).expect("create");
    file.set_len(1 << 30).expect("set_len");
    drop(file);
    let out = dir.path().join("out");
    let deadline = now() + Duration::from_secs(240);
    let mut receiver = receiver(group, &out, "r0", "1");
    let mut sender = sender(group, "1", "30", "unlimited", &src);
    let status = sender.wait(deadline);
    assert!(
        status.success(),
        "sender failed: {status}\n{}",
        sender.stderr()
    );
    let status = receiver.wait(deadline);
    assert!(
        status.success(),
        "receiver failed: {status}\n{}",
        receiver.stderr()
    );
    let received = std::fs::metadata(out.join("big.img")).expect("received file");
    assert_eq!(received.len(), 1 << 30);
    for (who, json) in [("sender", sender.stdout()), ("receiver", receiver.stdout())] {
        let rss = json_number(&json, "max_rss_mib");
        println!("{who}: max RSS {rss:.1} MiB for a 1,024 MiB file");
        assert!(rss > 1.0 && rss <= 96.0, "{who}: max RSS {rss} MiB: {json}");
    }
}

#[test]
fn a_receiver_killed_midway_makes_the_sender_fail_and_name_it() {
    let group = "239.255.91.2:47502";
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("payload.bin");
    write_random(&src, 24 << 20, 3);
    let deadline = now() + Duration::from_secs(90);
    let outs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("out{i}"))).collect();
    let mut receivers: Vec<Proc> = outs
        .iter()
        .enumerate()
        .map(|(i, out)| receiver(group, out, &format!("r{i}"), "0"))
        .collect();
    // 24 MiB at 80 Mbit/s takes about 2.5 s: time to kill r2 in the middle.
    let mut sender = sender(group, "3", "3", "80M", &src);
    while !sender.stderr().contains("sending to") {
        assert!(
            now() < deadline,
            "sender never started:\n{}",
            sender.stderr()
        );
        assert!(
            sender.child.try_wait().expect("try_wait").is_none(),
            "sender exited early:\n{}",
            sender.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(1000));
    receivers[2].child.kill().expect("kill r2");
    let status = sender.wait(deadline);
    let log = sender.stderr();
    assert!(!status.success(), "sender succeeded without r2:\n{log}");
    let r2_line = log
        .lines()
        .find(|l| l.starts_with("r2 "))
        .unwrap_or_else(|| panic!("r2 not reported:\n{log}"));
    assert!(
        r2_line.contains("FAILED") && r2_line.contains("payload.bin: not confirmed"),
        "r2 line: {r2_line}\n{log}"
    );
    for r in receivers.iter_mut().take(2) {
        let status = r.wait(deadline);
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            r.name,
            r.stderr()
        );
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("{} ", r.name)))
            .unwrap_or_else(|| panic!("{} not reported:\n{log}", r.name));
        assert!(line.ends_with("OK"), "{line}");
    }
}

#[test]
fn a_sender_expecting_three_receivers_when_two_come_fails_after_wait_naming_the_gap() {
    let group = "239.255.91.3:47503";
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("f.bin");
    write_random(&src, 1000, 4);
    let started = now();
    let deadline = started + Duration::from_secs(60);
    let mut receivers: Vec<Proc> = (0..2)
        .map(|i| {
            receiver(
                group,
                &dir.path().join(format!("out{i}")),
                &format!("r{i}"),
                "0",
            )
        })
        .collect();
    let mut sender = sender(group, "3", "2", "2G", &src);
    let status = sender.wait(deadline);
    let log = sender.stderr();
    assert!(!status.success(), "sender succeeded with 2 of 3:\n{log}");
    assert!(
        now() - started >= Duration::from_secs(2),
        "gave up before --wait"
    );
    assert!(
        log.contains("expected 3 receivers, 2 registered") && log.contains("missing 1"),
        "{log}"
    );
    assert!(log.contains("r0") && log.contains("r1"), "{log}");
    for r in &mut receivers {
        let status = r.wait(deadline);
        assert!(
            !status.success(),
            "{} reported success of an aborted session",
            r.name
        );
        assert!(
            !dir.path()
                .join(format!("out{}", &r.name[1..]))
                .join("f.bin")
                .exists()
        );
    }
}

/// A forging sender speaking the filecast protocol directly: HELLO until the receiver
/// registers, then hostile announcements, a valid file and DONE; returns the receiver's
/// summary.
fn forge_session(
    group: &ReliableGroup,
    session: u64,
    files: &[(Announce, Vec<Bytes>, [u8; 32])],
) -> Vec<Status> {
    let send = |body: &Body| group.send(wire::encode(session, body)).expect("send");
    let deadline = now() + Duration::from_secs(30);
    let mut registered = false;
    while !registered {
        assert!(now() < deadline, "the receiver never registered");
        send(&Body::Hello);
        let until = now() + Duration::from_millis(200);
        while now() < until {
            if let Ok(Event::Message { data, .. }) = group.recv_timeout(Duration::from_millis(20))
                && let Ok(m) = wire::decode(data)
                && m.session == session
                && matches!(m.body, Body::Register { .. })
            {
                registered = true;
            }
        }
    }
    for (announce, chunks, sha256) in files {
        send(&Body::Announce(announce.clone()));
        let mut offset = 0;
        for data in chunks {
            send(&Body::Chunk {
                index: announce.index,
                offset,
                data: data.clone(),
            });
            offset += data.len() as u64;
        }
        send(&Body::Digest {
            index: announce.index,
            sha256: *sha256,
        });
    }
    loop {
        assert!(now() < deadline, "no summary from the receiver");
        send(&Body::Done {
            file_count: files.len() as u32,
            total_bytes: 0,
        });
        let until = now() + Duration::from_millis(250);
        while now() < until {
            if let Ok(Event::Message { data, .. }) = group.recv_timeout(Duration::from_millis(20))
                && let Ok(m) = wire::decode(data)
                && m.session == session
                && let Body::Summary { statuses } = m.body
            {
                send(&Body::Bye);
                // The receiver answers BYE with FAREWELL, which lets a sender leave
                // without lingering.
                let until = now() + Duration::from_secs(5);
                loop {
                    assert!(now() < until, "no FAREWELL in answer to BYE");
                    if let Ok(Event::Message { data, .. }) =
                        group.recv_timeout(Duration::from_millis(20))
                        && let Ok(m) = wire::decode(data)
                        && m.session == session
                        && m.body == Body::Farewell
                    {
                        return statuses;
                    }
                }
            }
        }
    }
}

fn announce(index: u32, path: &str, content: &[u8]) -> Announce {
    Announce {
        index,
        size: content.len() as u64,
        mode: 0o644,
        path: path.to_owned(),
    }
}

fn sha256(content: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(content).into()
}

#[test]
fn hostile_announcements_are_refused_and_write_nothing_outside_or_beyond() {
    let group_addr = "239.255.91.4:47504";
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, out.join("link")).expect("symlink");
    std::fs::write(out.join("existing.txt"), b"keep me").expect("write");
    let deadline = now() + Duration::from_secs(60);
    let mut rx = receiver(group_addr, &out, "victim", "0");

    let evil = b"evil".to_vec();
    let good = b"good content".to_vec();
    let one = |data: &[u8]| vec![Bytes::copy_from_slice(data)];
    let mut oversize = announce(5, "short.txt", b"0123456789");
    oversize.size = 10;
    let files = vec![
        (
            announce(0, "../escape.txt", &evil),
            one(&evil),
            sha256(&evil),
        ),
        (
            announce(1, &format!("{}/abs.txt", outside.display()), &evil),
            one(&evil),
            sha256(&evil),
        ),
        (
            announce(2, "a/../../escape2.txt", &evil),
            one(&evil),
            sha256(&evil),
        ),
        (
            announce(3, "link/through-symlink.txt", &evil),
            one(&evil),
            sha256(&evil),
        ),
        (
            announce(4, "existing.txt", &evil),
            one(&evil),
            sha256(&evil),
        ),
        // Announces 10 bytes, sends 20: nothing beyond the announced size may be written.
        (oversize, one(&[7u8; 20]), sha256(&[7u8; 20])),
        // Sends the announced bytes, then another digest.
        (announce(6, "forged-hash.txt", &good), one(&good), [0u8; 32]),
        (
            announce(7, "dir/good.txt", &good),
            one(&good),
            sha256(&good),
        ),
        // Announces 10 bytes, sends 5, then the digest of all 10: incomplete, lost.
        (
            announce(8, "truncated.txt", b"0123456789"),
            one(b"01234"),
            sha256(b"0123456789"),
        ),
    ];
    let group = ReliableGroup::join(
        GroupConfig::on_loopback(group_addr.parse().expect("group"))
            .max_message_len(wire::MAX_MESSAGE),
    )
    .expect("join");
    let statuses = forge_session(&group, 0xF0F0, &files);
    group.leave();
    assert_eq!(
        statuses,
        vec![
            Status::Refused,
            Status::Refused,
            Status::Refused,
            Status::Refused,
            Status::Exists,
            Status::Lost,
            Status::HashMismatch,
            Status::Verified,
            Status::Lost,
        ]
    );
    let status = rx.wait(deadline);
    let log = rx.stderr();
    assert!(
        !status.success(),
        "receiver succeeded despite refusals:\n{log}"
    );
    assert!(
        log.contains("refusing \"../escape.txt\": '..' path component"),
        "{log}"
    );
    assert!(log.contains("absolute path"), "{log}");
    assert!(log.contains("is a symlink"), "{log}");
    assert!(log.contains("use --overwrite"), "{log}");
    assert!(
        std::fs::read_dir(&outside)
            .expect("outside")
            .next()
            .is_none(),
        "wrote outside"
    );
    assert!(!dir.path().join("escape.txt").exists());
    assert!(!dir.path().join("escape2.txt").exists());
    assert_eq!(
        std::fs::read(out.join("existing.txt")).expect("read"),
        b"keep me"
    );
    assert!(!out.join("short.txt").exists());
    assert!(!out.join("forged-hash.txt").exists());
    assert!(!out.join("truncated.txt").exists());
    assert_eq!(std::fs::read(out.join("dir/good.txt")).expect("read"), good);
    let names: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(
        names,
        ["dir/good.txt", "existing.txt"],
        "leftover temporary files"
    );
}

#[test]
fn path_checks_accept_plain_relative_names_only() {
    for ok in [
        "a",
        "a/b/c.txt",
        "dir with spaces/f",
        "..hidden",
        "a/.b",
        "...",
    ] {
        assert!(paths::check_relative(ok).is_ok(), "{ok} refused");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../b",
        "a/./b",
        "./a",
        "a//b",
        "a/",
        "a\0b",
        "\\x",
        "..",
    ] {
        assert!(paths::check_relative(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn the_codec_round_trips_and_rejects_truncated_or_oversized_messages() {
    let ann = Body::Announce(announce(3, "a/b.bin", b"xyz"));
    let bodies = [
        Body::Hello,
        Body::Register { name: "r1".into() },
        ann.clone(),
        Body::Chunk {
            index: 3,
            offset: 1 << 40,
            data: Bytes::from_static(b"data"),
        },
        Body::Digest {
            index: 3,
            sha256: sha256(b"xyz"),
        },
        Body::Done {
            file_count: 2,
            total_bytes: 9,
        },
        Body::Confirm {
            index: 1,
            status: Status::HashMismatch,
        },
        Body::Summary {
            statuses: vec![Status::Verified, Status::Lost],
        },
        Body::Bye,
        Body::Farewell,
    ];
    for body in &bodies {
        let encoded = wire::encode(0x1234, body);
        let decoded = wire::decode(encoded.clone()).expect("decode");
        assert_eq!((decoded.session, &decoded.body), (0x1234, body));
        // Every strict prefix of a fixed-layout message is rejected, never misread.
        if !matches!(body, Body::Chunk { .. }) {
            for cut in 0..encoded.len() {
                assert!(
                    wire::decode(encoded.slice(..cut)).is_err(),
                    "{body:?} cut at {cut}"
                );
            }
        }
    }
    // A path length beyond the bound is refused before anything is read or allocated.
    let mut long = wire::encode(1, &ann).to_vec();
    let path_len_at = wire::HEADER_LEN + 16;
    long[path_len_at..path_len_at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(
        wire::decode(Bytes::from(long)),
        Err(wire::DecodeError::Field("path"))
    );
    // A summary claiming more statuses than it carries is refused.
    let mut summary = wire::encode(1, &Body::Summary { statuses: vec![] }).to_vec();
    summary[wire::HEADER_LEN..wire::HEADER_LEN + 4].copy_from_slice(&1000u32.to_be_bytes());
    assert!(wire::decode(Bytes::from(summary)).is_err());
    // A chunk larger than MAX_CHUNK is refused.
    let big = wire::encode(
        1,
        &Body::Chunk {
            index: 0,
            offset: 0,
            data: Bytes::from(vec![0u8; wire::MAX_CHUNK + 1]),
        },
    );
    assert_eq!(
        wire::decode(big),
        Err(wire::DecodeError::Field("chunk length"))
    );
    // Wrong version (version 1 carried the SHA-256 in ANNOUNCE) and magic.
    let mut v1 = wire::encode(1, &Body::Hello).to_vec();
    v1[2] = 1;
    assert_eq!(
        wire::decode(Bytes::from(v1)),
        Err(wire::DecodeError::Version(1))
    );
    assert_eq!(
        wire::decode(Bytes::from_static(b"XX")),
        Err(wire::DecodeError::Magic)
    );
}

proptest::proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), kind in 0u8..12) {
        let mut message = b"FC\x02".to_vec();
        message.push(kind);
        message.extend_from_slice(&raw);
        let _ = wire::decode(Bytes::from(message));
        let _ = wire::decode(Bytes::from(raw));
    }
}
