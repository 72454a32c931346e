//! End-to-end tests on real sockets: loopback multicast only (interface 127.0.0.1, TTL 0, loop
//! on, groups in 239.255.0.0/16), one group address and port per test so tests can run in
//! parallel. Every wait is bounded by a deadline; a failure prints what each receiver got.
//!
//! Receivers always join before the sender starts, so every message is expected, complete and
//! in order per source; any `Unrecoverable` event fails the test.

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmcast::{Event, GroupConfig, ReliableGroup, SourceId, Stats};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Bound on any single transfer test.
const TEST_BOUND: Duration = Duration::from_secs(180);

#[expect(
    clippy::disallowed_methods,
    reason = "wall-clock deadlines of a socket test"
)]
fn now() -> Instant {
    Instant::now()
}

/// Ends the whole test process if a test outlives [`TEST_BOUND`] by a minute: the last resort
/// that keeps a blocked `send`, `leave` or child-process wait from hanging CI. Dropping it
/// disarms it.
struct Watchdog {
    _disarm_on_drop: mpsc::Sender<()>,
}

impl Watchdog {
    fn arm(test: &'static str) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let bound = TEST_BOUND + Duration::from_secs(60);
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(bound) {
                eprintln!("{test} still runs after {bound:?}: aborting the test process");
                std::process::exit(101);
            }
        });
        Watchdog {
            _disarm_on_drop: disarm,
        }
    }
}

fn config(group: &str, seed: u64) -> GroupConfig {
    GroupConfig::on_loopback(group.parse().expect("group address"))
        .rng_seed(Some(seed))
        // Well within what unoptimized receivers on a loaded machine keep up with.
        .rate_limit(Some(200_000_000))
        // A short assumed RTT: loopback RTTs are microseconds, so repairs need not wait 10 ms.
        .initial_rtt(Duration::from_millis(1))
}

fn join(config: GroupConfig) -> ReliableGroup {
    ReliableGroup::join(config).expect("join a loopback group")
}

/// Message `index` of the stream tagged `tag`: its index and tag, then a pattern depending on
/// both, so a misplaced, duplicated or corrupted message cannot pass for the right one.
fn message(tag: u8, index: u32, len: usize) -> Bytes {
    let mut data = Vec::with_capacity(len);
    let head = [&index.to_le_bytes()[..], &[tag]].concat();
    data.extend(head.iter().take(len));
    let mut x = u32::from(tag).wrapping_mul(0x9e37_79b9) ^ index.wrapping_mul(0x85eb_ca6b);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    Bytes::from(data)
}

/// `count` sizes from 0 B to 64 KiB: the edges (0, 1, around one datagram, 64 KiB), then nine
/// in ten log-uniform up to one datagram and one in ten log-uniform up to 64 KiB, so empty,
/// small, one-datagram and many-datagram messages all occur while the mean stays near 1 KB
/// (the tests run unoptimized on a shared two-core machine).
fn sizes(count: usize, seed: u64) -> Vec<usize> {
    let edges = [0, 1, 2, 8, 1300, 1350, 1400, 2800, 65_535, 65_536];
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut log_uniform =
        |max: f64| ((rng.random::<f64>() * (max + 1.0).ln()).exp() as usize).saturating_sub(1);
    (0..count)
        .map(|i| match edges.get(i) {
            Some(&edge) => edge,
            None if i % 10 == 0 => log_uniform(65_536.0),
            None => log_uniform(1_400.0),
        })
        .map(|len| len.min(65_536))
        .collect()
}

/// What a receiver expects from one source.
#[derive(Clone)]
struct Stream {
    tag: u8,
    sizes: Vec<usize>,
}

/// What one receiver got.
#[derive(Debug)]
struct Received {
    /// Messages verified, per source.
    counts: HashMap<SourceId, usize>,
    stats: Stats,
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Receives until every stream in `expected` is complete, checking each message as it comes.
fn receive_streams(
    group: &ReliableGroup,
    expected: &HashMap<SourceId, Stream>,
    deadline: Instant,
) -> Result<Received, String> {
    let mut counts: HashMap<SourceId, usize> = expected.keys().map(|&id| (id, 0)).collect();
    let complete = |counts: &HashMap<SourceId, usize>| {
        expected
            .iter()
            .all(|(id, stream)| counts[id] == stream.sizes.len())
    };
    while !complete(&counts) {
        let left = deadline.saturating_duration_since(now());
        let event = group.recv_timeout(left).map_err(|err| {
            format!(
                "{err} with {counts:?} of {:?}; stats {:#?}",
                expected
                    .iter()
                    .map(|(id, s)| (*id, s.sizes.len()))
                    .collect::<Vec<_>>(),
                group.stats()
            )
        })?;
        match event {
            Event::Message { source, data } => {
                let Some(stream) = expected.get(&source) else {
                    return Err(format!("message from unexpected source {source}"));
                };
                let index = counts[&source];
                let Some(&len) = stream.sizes.get(index) else {
                    return Err(format!("extra message {index} from {source}"));
                };
                let want = message(stream.tag, index as u32, len);
                if data != want {
                    return Err(format!(
                        "message {index} from {source}: got {} bytes, want {len} (head {:?})",
                        data.len(),
                        &data[..data.len().min(8)]
                    ));
                }
                *counts.get_mut(&source).expect("known source") += 1;
            }
            Event::Unrecoverable { source, range } => {
                return Err(format!(
                    "unrecoverable loss from {source}: {range:?} after {counts:?}; stats {:#?}",
                    group.stats()
                ));
            }
            _ => {}
        }
    }
    Ok(Received {
        counts,
        stats: group.stats(),
    })
}

/// Sends the stream `tag` (all of `sizes`) on `group`.
fn send_stream(group: &ReliableGroup, tag: u8, sizes: &[usize]) {
    for (index, &len) in sizes.iter().enumerate() {
        group
            .send(message(tag, index as u32, len))
            .expect("send accepted");
    }
}

/// Joins `receivers` members, then runs `senders` (config, tag, sizes) while `during` runs, and
/// checks that every receiver gets every stream complete and in order. Then waits (bounded)
/// until `settled` holds for every receiver's stats, and returns each receiver's result with
/// those stats.
fn transfer(
    group: &str,
    receiver_configs: Vec<GroupConfig>,
    senders: Vec<(GroupConfig, u8, Vec<usize>)>,
    during: impl FnOnce(),
    settled: impl Fn(&Stats) -> bool,
) -> Vec<Received> {
    let deadline = now() + TEST_BOUND;
    let receivers: Vec<ReliableGroup> = receiver_configs.into_iter().map(join).collect();
    let senders: Vec<(ReliableGroup, u8, Vec<usize>)> = senders
        .into_iter()
        .map(|(config, tag, sizes)| (join(config), tag, sizes))
        .collect();
    let expected: HashMap<SourceId, Stream> = senders
        .iter()
        .map(|(group, tag, sizes)| {
            (
                group.id(),
                Stream {
                    tag: *tag,
                    sizes: sizes.clone(),
                },
            )
        })
        .collect();
    let results = thread::scope(|scope| {
        let receiving: Vec<_> = receivers
            .iter()
            .map(|receiver| scope.spawn(|| receive_streams(receiver, &expected, deadline)))
            .collect();
        let sending: Vec<_> = senders
            .iter()
            .map(|(group, tag, sizes)| scope.spawn(move || send_stream(group, *tag, sizes)))
            .collect();
        during();
        for sender in sending {
            sender.join().expect("sender thread");
        }
        receiving
            .into_iter()
            .map(|r| r.join().expect("receiver thread"))
            .collect::<Vec<_>>()
    });
    let mut received = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(r) => received.push(r),
            Err(err) => {
                let senders: Vec<Stats> = senders.iter().map(|(g, _, _)| g.stats()).collect();
                panic!("{group}: receiver {i} failed: {err}\nsender stats: {senders:#?}")
            }
        }
    }
    let settle_deadline = now() + Duration::from_secs(10);
    for (receiver, r) in receivers.iter().zip(&mut received) {
        while !settled(&r.stats) && now() < settle_deadline {
            thread::sleep(Duration::from_millis(10));
            r.stats = receiver.stats();
        }
    }
    for (sender, _, _) in senders {
        sender.leave();
    }
    for receiver in receivers {
        receiver.leave();
    }
    received
}

fn assert_no_loss_reported(received: &[Received]) {
    for r in received {
        assert_eq!(r.stats.recovery.unrecoverable_events, 0, "{:#?}", r.stats);
    }
}

#[test]
fn ten_thousand_messages_of_0_to_64k_reach_three_receivers_complete_and_in_order() {
    let _watchdog = Watchdog::arm(
        "ten_thousand_messages_of_0_to_64k_reach_three_receivers_complete_and_in_order",
    );
    let group = "239.255.71.1:47101";
    let sizes = sizes(10_000, 1);
    let received = transfer(
        group,
        (0..3).map(|i| config(group, 100 + i)).collect(),
        vec![(config(group, 1), 1, sizes.clone())],
        || {},
        |_| true,
    );
    assert_no_loss_reported(&received);
    let bytes: usize = sizes.iter().sum();
    for r in &received {
        assert_eq!(r.counts.values().sum::<usize>(), 10_000);
        assert!(r.stats.bytes_delivered >= bytes as u64, "{:#?}", r.stats);
        // The receive buffer asked for (32 MiB) was granted, or at least the plain cap.
        assert!(
            r.stats.socket.recv_buffer >= 200 << 10,
            "{:#?}",
            r.stats.socket
        );
    }
}

#[test]
fn five_percent_receive_loss_is_repaired_completely() {
    let _watchdog = Watchdog::arm("five_percent_receive_loss_is_repaired_completely");
    let group = "239.255.71.2:47102";
    let sizes = sizes(10_000, 2);
    let received = transfer(
        group,
        (0..3)
            .map(|i| config(group, 200 + i).inject_loss(0.05, 0.0))
            .collect(),
        vec![(config(group, 2), 2, sizes)],
        || {},
        |_| true,
    );
    assert_no_loss_reported(&received);
    for r in &received {
        let s = &r.stats;
        assert_eq!(r.counts.values().sum::<usize>(), 10_000);
        // Loss really happened and was really repaired, by NAKs, not by luck.
        let heard = s.rx.total().packets + s.socket.injected_rx_drops;
        let share = s.socket.injected_rx_drops as f64 / heard as f64;
        assert!((0.03..0.07).contains(&share), "{share} {s:#?}");
        assert!(s.recovery.naks_sent > 0, "{:#?}", s);
        assert!(s.recovery.repairs_received > 0, "{:#?}", s);
    }
}

/// Peer repair on for every member, 5 % receive loss: everything still arrives complete and in
/// order over real sockets, with report echoes and (where a peer volunteers) PEER_RDATA on the
/// wire; each member drops its own looped-back repairs.
#[test]
fn peer_repair_on_real_sockets_delivers_everything() {
    let _watchdog = Watchdog::arm("peer_repair_on_real_sockets_delivers_everything");
    let group = "239.255.71.40:47140";
    let sizes = sizes(3_000, 40);
    let received = transfer(
        group,
        (0..3)
            .map(|i| {
                config(group, 4000 + i)
                    .inject_loss(0.05, 0.0)
                    .peer_repair(true)
            })
            .collect(),
        vec![(config(group, 40).peer_repair(true), 40, sizes)],
        || {},
        |_| true,
    );
    assert_no_loss_reported(&received);
    for r in &received {
        assert_eq!(r.counts.values().sum::<usize>(), 3_000);
        assert!(r.stats.recovery.repairs_received > 0, "{:#?}", r.stats);
    }
}

#[test]
fn four_mebibyte_messages_arrive_whole_despite_transmit_loss() {
    let _watchdog = Watchdog::arm("four_mebibyte_messages_arrive_whole_despite_transmit_loss");
    let group = "239.255.71.3:47103";
    // The sender drops 2 % of what it transmits (injected), so each 4 MiB message (3,000
    // datagrams) needs repairs at every receiver.
    let received = transfer(
        group,
        (0..3).map(|i| config(group, 300 + i)).collect(),
        vec![(
            config(group, 3).inject_loss(0.0, 0.02),
            3,
            vec![4 << 20, 0, 4 << 20],
        )],
        || {},
        |_| true,
    );
    assert_no_loss_reported(&received);
    for r in &received {
        assert_eq!(r.stats.bytes_delivered, 8 << 20);
        assert!(r.stats.recovery.repairs_received > 0, "{:#?}", r.stats);
    }
}

#[test]
fn groups_on_the_same_port_do_not_see_each_other() {
    let _watchdog = Watchdog::arm("groups_on_the_same_port_do_not_see_each_other");
    let port = 47104;
    let a = format!("239.255.71.4:{port}");
    let b = format!("239.255.71.5:{port}");
    let deadline = now() + TEST_BOUND;
    let receiver_a = join(config(&a, 400));
    let receiver_b = join(config(&b, 401));
    let sender_a = join(config(&a, 402));
    let sender_b = join(config(&b, 403));
    let sizes_a = sizes(500, 4);
    let sizes_b = sizes(500, 5);
    let expect = |sender: &ReliableGroup, tag, sizes: &Vec<usize>| {
        HashMap::from([(
            sender.id(),
            Stream {
                tag,
                sizes: sizes.clone(),
            },
        )])
    };
    let (expect_a, expect_b) = (
        expect(&sender_a, 4, &sizes_a),
        expect(&sender_b, 5, &sizes_b),
    );
    thread::scope(|scope| {
        let got_a = scope.spawn(|| receive_streams(&receiver_a, &expect_a, deadline));
        let got_b = scope.spawn(|| receive_streams(&receiver_b, &expect_b, deadline));
        scope.spawn(|| send_stream(&sender_a, 4, &sizes_a));
        scope.spawn(|| send_stream(&sender_b, 5, &sizes_b));
        // receive_streams fails on any message from a source it does not expect.
        got_a
            .join()
            .unwrap()
            .expect("group A complete, nothing from B");
        got_b
            .join()
            .unwrap()
            .expect("group B complete, nothing from A");
    });
    // Nothing more arrives from the other group after completion either.
    thread::sleep(Duration::from_millis(100));
    for (receiver, foreign) in [(&receiver_a, sender_b.id()), (&receiver_b, sender_a.id())] {
        while let Ok(event) = receiver.try_recv() {
            if let Event::Message { source, .. } | Event::SourceJoined { source } = event {
                assert_ne!(source, foreign, "heard the other group");
            }
        }
    }
    for g in [sender_a, sender_b, receiver_a, receiver_b] {
        g.leave();
    }
}

#[test]
fn two_senders_in_one_group_are_both_delivered_in_order() {
    let _watchdog = Watchdog::arm("two_senders_in_one_group_are_both_delivered_in_order");
    let group = "239.255.71.6:47106";
    let received = transfer(
        group,
        (0..3).map(|i| config(group, 600 + i)).collect(),
        vec![
            (config(group, 6), 6, sizes(3000, 6)),
            (config(group, 7), 7, sizes(3000, 7)),
        ],
        || {},
        |_| true,
    );
    assert_no_loss_reported(&received);
    for r in &received {
        assert_eq!(r.counts.len(), 2);
        assert!(r.counts.values().all(|&c| c == 3000), "{:?}", r.counts);
    }
}

/// Sends `count` random datagrams (0 to 1,500 bytes) to `group` from a plain socket on the
/// loopback interface, a thousand at a time with a short pause so receivers can keep up.
fn spray(group: SocketAddr, count: usize, seed: u64) {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket
        .set_multicast_if_v4(&std::net::Ipv4Addr::LOCALHOST)
        .unwrap();
    socket.set_multicast_ttl_v4(0).unwrap();
    socket.set_multicast_loop_v4(true).unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut datagram = vec![0u8; 1500];
    let to = group.into();
    for i in 0..count {
        let len = rng.random_range(0..=datagram.len());
        rng.fill(&mut datagram[..len]);
        socket.send_to(&datagram[..len], &to).expect("spray send");
        if i % 1000 == 999 {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn random_datagrams_sprayed_during_a_transfer_are_counted_and_do_no_harm() {
    let _watchdog =
        Watchdog::arm("random_datagrams_sprayed_during_a_transfer_are_counted_and_do_no_harm");
    let group = "239.255.71.7:47107";
    let sprayed = 100_000;
    let received = transfer(
        group,
        (0..3).map(|i| config(group, 700 + i)).collect(),
        vec![(config(group, 7), 7, sizes(10_000, 7))],
        || spray(group.parse().unwrap(), sprayed, 77),
        |stats| {
            stats.drops.malformed_total() + stats.drops.out_of_window >= sprayed as u64 * 9 / 10
        },
    );
    assert_no_loss_reported(&received);
    for r in &received {
        let drops = &r.stats.drops;
        let rejected = drops.malformed_total() + drops.out_of_window;
        // Nearly every sprayed datagram reached the core and was rejected (the kernel may drop
        // a few under the burst); none was taken for data.
        assert!(rejected >= sprayed as u64 * 9 / 10, "{drops:#?}");
        assert!(drops.malformed_total() > 0, "{drops:#?}");
    }
}

/// Environment of a receiver child process.
const CHILD_GROUP: &str = "RMCAST_TEST_CHILD_GROUP";
const CHILD_SEED: &str = "RMCAST_TEST_CHILD_SEED";
const CHILD_COUNT: &str = "RMCAST_TEST_CHILD_COUNT";

/// The receiver side of `receivers_in_separate_processes_get_the_same_digest`: run by that test
/// in a child process (the test binary re-executed), reporting on stdout. Run directly, it has
/// no group to join and only says so.
#[test]
#[ignore = "a child process of receivers_in_separate_processes_get_the_same_digest"]
fn child_receiver() {
    let _watchdog = Watchdog::arm("child_receiver");
    let Ok(group) = std::env::var(CHILD_GROUP) else {
        eprintln!("child_receiver runs only as a child of the separate-process test");
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let count: usize = std::env::var(CHILD_COUNT).unwrap().parse().unwrap();
    let receiver = join(config(&group, seed));
    println!("READY");
    let deadline = now() + TEST_BOUND;
    let mut digest = FNV_OFFSET;
    let mut got = 0;
    while got < count {
        let left = deadline.saturating_duration_since(now());
        match receiver.recv_timeout(left) {
            Ok(Event::Message { data, .. }) => {
                digest = digest_of_next(digest, &data);
                got += 1;
            }
            Ok(Event::Unrecoverable { range, .. }) => {
                println!("LOST {range:?}");
                break;
            }
            Ok(_) => {}
            Err(err) => {
                println!("ERROR {err} after {got}");
                break;
            }
        }
    }
    println!("DIGEST {got} {digest:016x}");
    receiver.leave();
}

/// Folds one more message into a running stream digest.
fn digest_of_next(digest: u64, data: &[u8]) -> u64 {
    fnv1a(fnv1a(digest, &(data.len() as u64).to_le_bytes()), data)
}

#[test]
fn receivers_in_separate_processes_get_the_same_digest() {
    let _watchdog = Watchdog::arm("receivers_in_separate_processes_get_the_same_digest");
    let group = "239.255.71.8:47108";
    let count = 10_000;
    let sizes = sizes(count, 8);
    let exe = std::env::current_exe().expect("test binary path");
    let (lines_tx, lines_rx) = mpsc::channel::<(usize, String)>();
    let mut children: Vec<Child> = (0..3)
        .map(|i| {
            let mut child = Command::new(&exe)
                .args(["--exact", "child_receiver", "--ignored", "--nocapture"])
                .env(CHILD_GROUP, group)
                .env(CHILD_SEED, (800 + i).to_string())
                .env(CHILD_COUNT, count.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a receiver process");
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = lines_tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send((i, line)).is_err() {
                        break;
                    }
                }
            });
            child
        })
        .collect();
    let deadline = now() + TEST_BOUND;
    let wait_for = |prefix: &str| -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; 3];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(now());
            match lines_rx.recv_timeout(left) {
                Ok((i, line)) if line.starts_with(prefix) => found[i] = Some(line),
                Ok((i, line)) if line.starts_with("LOST") || line.starts_with("ERROR") => {
                    panic!("receiver process {i}: {line}")
                }
                Ok(_) => {}
                Err(_) => panic!("receiver processes did not all print {prefix}: {found:?}"),
            }
        }
        found.into_iter().flatten().collect()
    };
    wait_for("READY");
    let sender = join(config(group, 8));
    send_stream(&sender, 8, &sizes);
    let digests = wait_for("DIGEST");
    let want = sizes
        .iter()
        .enumerate()
        .fold(FNV_OFFSET, |digest, (index, &len)| {
            digest_of_next(digest, &message(8, index as u32, len))
        });
    for line in &digests {
        assert_eq!(line, &format!("DIGEST {count} {want:016x}"));
    }
    sender.leave();
    for child in &mut children {
        let exit_deadline = now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("child status") {
                assert!(status.success(), "receiver process failed: {status}");
                break;
            }
            if now() > exit_deadline {
                let _ = child.kill();
                panic!("receiver process did not exit");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn leave_right_after_sending_still_delivers_everything() {
    let _watchdog = Watchdog::arm("leave_right_after_sending_still_delivers_everything");
    let group = "239.255.71.9:47109";
    let deadline = now() + TEST_BOUND;
    let receivers: Vec<ReliableGroup> = (0..2).map(|i| join(config(group, 900 + i))).collect();
    let sender = join(config(group, 9));
    let sizes = sizes(2000, 9);
    let expected = HashMap::from([(
        sender.id(),
        Stream {
            tag: 9,
            sizes: sizes.clone(),
        },
    )]);
    send_stream(&sender, 9, &sizes);
    // Most of the stream is still queued in the rings and the core when leave starts.
    let left = now();
    sender.leave();
    let leave_took = left.elapsed();
    for receiver in &receivers {
        receive_streams(receiver, &expected, deadline).expect("everything sent before leave");
    }
    assert!(leave_took < Duration::from_secs(30), "{leave_took:?}");
    for receiver in receivers {
        receiver.leave();
    }
}

#[test]
fn leave_lingers_for_the_configured_quiet_time() {
    let _watchdog = Watchdog::arm("leave_lingers_for_the_configured_quiet_time");
    let group = "239.255.71.13:47113";
    let mut took = Vec::new();
    for (seed, linger) in [(13, None), (14, Some(Duration::from_millis(10)))] {
        let mut cfg = config(group, seed);
        if let Some(linger) = linger {
            cfg = cfg.leave_linger(linger);
        }
        let member = join(cfg);
        // A member that sent data lingers to answer NAKs for it.
        member
            .send(Bytes::from_static(b"one message"))
            .expect("send");
        thread::sleep(Duration::from_millis(50));
        let left = now();
        member.leave();
        took.push(left.elapsed());
    }
    // The default waits 200 ms of silence; 10 ms of silence leaves well before that.
    assert!(took[0] >= Duration::from_millis(200), "{took:?}");
    assert!(took[1] < Duration::from_millis(150), "{took:?}");
}

#[test]
fn leave_with_linger_overrides_the_configured_quiet_time() {
    let _watchdog = Watchdog::arm("leave_with_linger_overrides_the_configured_quiet_time");
    let group = "239.255.71.14:47114";
    let mut took = Vec::new();
    for (seed, linger) in [(15, Duration::from_millis(300)), (16, Duration::ZERO)] {
        // Configured for a long linger; the call decides.
        let member = join(config(group, seed).leave_linger(Duration::from_secs(2)));
        member
            .send(Bytes::from_static(b"one message"))
            .expect("send");
        thread::sleep(Duration::from_millis(50));
        let left = now();
        member.leave_with_linger(linger);
        took.push(left.elapsed());
    }
    assert!(
        took[0] >= Duration::from_millis(300) && took[0] < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(took[1] < Duration::from_millis(100), "{took:?}");
}

#[test]
fn try_send_reports_full_and_drop_is_bounded() {
    let _watchdog = Watchdog::arm("try_send_reports_full_and_drop_is_bounded");
    // 1 Mbit/s and a 2-message ring: the core's own queue (16 MiB) and the ring fill at once.
    let group = "239.255.71.10:47110";
    let sender = join(config(group, 10).rate_limit(Some(1_000_000)).send_queue(2));
    let big = Bytes::from(vec![7u8; 8 << 20]);
    let mut full = false;
    for _ in 0..16 {
        match sender.try_send(big.clone()) {
            Ok(()) => {}
            Err(rmcast::SendError::Full) => {
                full = true;
                break;
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert!(full, "the queue never filled");
    let too_large = sender.try_send(Bytes::from(vec![0u8; (16 << 20) + 1]));
    assert!(
        matches!(too_large, Err(rmcast::SendError::TooLarge { .. })),
        "{too_large:?}"
    );
    // Dropping with ~16 MiB queued at 1 Mbit/s gives up after its bound instead of draining.
    let dropped = now();
    drop(sender);
    let took = dropped.elapsed();
    assert!(took < Duration::from_secs(10), "drop took {took:?}");
}

#[test]
fn join_errors_say_what_to_fix() {
    let _watchdog = Watchdog::arm("join_errors_say_what_to_fix");
    let not_multicast =
        ReliableGroup::join(GroupConfig::on_loopback("127.0.0.1:47111".parse().unwrap()))
            .expect_err("a unicast group must be refused");
    assert!(
        not_multicast
            .to_string()
            .contains("not a multicast address"),
        "{not_multicast}"
    );
    let foreign_interface = ReliableGroup::join(
        GroupConfig::on_loopback("239.255.71.11:47111".parse().unwrap())
            .interface("203.0.113.9".parse().unwrap()),
    )
    .expect_err("an interface that is not local must be refused");
    let text = foreign_interface.to_string();
    assert!(
        text.contains("203.0.113.9") && text.contains("interface"),
        "{text}"
    );
}

#[test]
fn many_threads_share_one_group_to_send_and_to_receive() {
    let _watchdog = Watchdog::arm("many_threads_share_one_group_to_send_and_to_receive");
    let group = "239.255.71.12:47112";
    let receiver = join(config(group, 1200));
    let sender = join(config(group, 12));
    let (threads, per_thread) = (4u8, 500u32);
    let total = usize::from(threads) * per_thread as usize;
    // At least 5 bytes, so every message carries its index and tag.
    let len = |index: u32| 5 + (index as usize * 97) % 3000;
    let delivered = std::sync::atomic::AtomicUsize::new(0);
    let deadline = now() + TEST_BOUND;
    let per_receiving_thread: Vec<Vec<(u8, u32)>> = thread::scope(|scope| {
        for tag in 0..threads {
            let sender = &sender;
            scope.spawn(move || {
                for index in 0..per_thread {
                    sender.send(message(tag, index, len(index))).expect("send");
                }
            });
        }
        let receiving: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut got = Vec::new();
                    while delivered.load(std::sync::atomic::Ordering::SeqCst) < total
                        && now() < deadline
                    {
                        let Ok(Event::Message { data, .. }) =
                            receiver.recv_timeout(Duration::from_millis(50))
                        else {
                            continue;
                        };
                        let index = u32::from_le_bytes(data[..4].try_into().unwrap());
                        let tag = data[4];
                        assert_eq!(data, message(tag, index, len(index)), "corrupted");
                        got.push((tag, index));
                        delivered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    got
                })
            })
            .collect();
        receiving.into_iter().map(|r| r.join().unwrap()).collect()
    });
    // Every message exactly once, whichever thread received it...
    let mut all: Vec<(u8, u32)> = per_receiving_thread.iter().flatten().copied().collect();
    all.sort_unstable();
    let want: Vec<(u8, u32)> = (0..threads)
        .flat_map(|tag| (0..per_thread).map(move |index| (tag, index)))
        .collect();
    assert_eq!(all, want);
    // ...and each receiving thread saw each sending thread's messages in the order they were sent.
    for got in &per_receiving_thread {
        for tag in 0..threads {
            let order: Vec<u32> = got.iter().filter(|m| m.0 == tag).map(|m| m.1).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{tag}: {order:?}");
        }
    }
    sender.leave();
    receiver.leave();
}

/// RDATA and PARITY packets a receiver heard per ODATA it heard.
fn repairs_heard_per_odata(received: &[Received]) -> f64 {
    let repairs: u64 = received
        .iter()
        .map(|r| r.stats.rx.rdata.packets + r.stats.rx.parity.packets)
        .sum();
    let odata: u64 = received.iter().map(|r| r.stats.rx.odata.packets).sum();
    repairs as f64 / odata.max(1) as f64
}

#[test]
fn fec_parity_repairs_ten_percent_loss_with_fewer_repair_packets_than_selective() {
    let _watchdog = Watchdog::arm(
        "fec_parity_repairs_ten_percent_loss_with_fewer_repair_packets_than_selective",
    );
    let sizes = vec![1_000; 3_000];
    let mut repairs = Vec::new();
    for (fec, group, seed) in [
        (false, "239.255.71.20:47120", 2000),
        (true, "239.255.71.21:47121", 2100),
    ] {
        let source = if fec {
            config(group, seed).fec(30, 0)
        } else {
            config(group, seed)
        };
        let received = transfer(
            group,
            (0..3)
                .map(|i| config(group, seed + 1 + i).inject_loss(0.10, 0.0))
                .collect(),
            vec![(source, 20, sizes.clone())],
            || {},
            |_| true,
        );
        assert_no_loss_reported(&received);
        for r in &received {
            assert_eq!(
                r.counts.values().sum::<usize>(),
                sizes.len(),
                "{:#?}",
                r.stats
            );
            let s = &r.stats.recovery;
            if fec {
                // Parity really rebuilt packets, and was asked for by parity NAKs.
                assert!(s.packets_recovered > 0 && s.blocks_recovered > 0, "{s:#?}");
                assert!(r.stats.rx.parity.packets > 0, "{s:#?}");
            } else {
                assert_eq!(r.stats.rx.parity.packets, 0, "{s:#?}");
            }
        }
        repairs.push(repairs_heard_per_odata(&received));
    }
    let (selective, parity) = (repairs[0], repairs[1]);
    assert!(
        parity < selective,
        "repair packets heard per ODATA: FEC {parity:.3} vs selective {selective:.3}"
    );
    eprintln!("repair packets heard per ODATA: selective {selective:.3}, FEC {parity:.3}");
}
