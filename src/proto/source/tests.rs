//! Behaviour of [`SourceState`] as a whole, driven through its session-facing methods with
//! virtual time; every emitted datagram is decoded by the real codec.

use super::test_support::base_instant;
use super::*;
use crate::proto::Clock;
use crate::stats::Stats;
use crate::wire::{self, Echo, Ncf, Report};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

const STREAM: StreamId = StreamId {
    source: 0x5eed_0000_0000_0001,
    instance: 7,
};

/// A sequence number just before the wrap, so every test crosses it.
const FIRST: SeqNum = SeqNum(u32::MAX - 3);

/// Offset of the flag byte in the common header; FIRST = 0x01, LAST = 0x02 for data
/// (src/wire/header.rs).
const FLAGS_BYTE: usize = 2;

struct Harness {
    source: SourceState,
    clock: Clock,
    rng: SmallRng,
    stats: Stats,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new(settings: Settings) -> Harness {
        let t0 = base_instant();
        Harness {
            source: SourceState::new(&settings, STREAM, FIRST, t0),
            clock: Clock::new(t0),
            rng: SmallRng::seed_from_u64(1),
            stats: Stats::default(),
            t0,
            now: t0,
        }
    }

    /// A source paced at 8 Mbit/s (1 MB/s), so a 1,000-byte datagram leaves every millisecond
    /// once the burst is spent.
    fn paced() -> Harness {
        Harness::new(Settings {
            rate_limit_bps: Some(8_000_000),
            ..Settings::default()
        })
    }

    fn unpaced() -> Harness {
        Harness::new(Settings {
            rate_limit_bps: None,
            ..Settings::default()
        })
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut SourceState, &mut Context<'_>) -> R) -> R {
        let mut ctx = Context {
            now: self.now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        f(&mut self.source, &mut ctx)
    }

    fn send(&mut self, message: Bytes) -> Result<(), SendError> {
        self.with(|s, ctx| s.send(ctx, message))
    }

    fn send_len(&mut self, len: usize) {
        let message = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        self.send(message).expect("send accepted");
    }

    fn poll_raw(&mut self) -> Option<Bytes> {
        self.with(|s, ctx| s.poll_transmit(ctx))
    }

    /// Everything transmittable at `now`, decoded.
    fn drain(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        while let Some(datagram) = self.poll_raw() {
            out.push(wire::decode(datagram).expect("the source emits decodable packets"));
            assert!(out.len() < 1 << 20, "poll_transmit never returns None");
        }
        out
    }

    fn nak(&mut self, nak: &Nak) {
        self.with(|s, ctx| s.handle_nak(ctx, nak));
    }

    /// Everything transmittable now, then — after moving the clock to the end of the repairs'
    /// aggregation window — the repairs (and anything else due by then).
    fn drain_repairs(&mut self) -> Vec<Packet> {
        let mut out = self.drain();
        if let Some(due) = self.source.repairs.next_due() {
            self.set_time(due.max(self.now));
            out.extend(self.drain());
        }
        out
    }

    fn report(&mut self, report: &Report) {
        self.with(|s, ctx| s.handle_report(ctx, report));
    }

    /// Sets the clock to `at` and runs timers.
    fn set_time(&mut self, at: Instant) {
        assert!(at >= self.now, "time goes forward");
        self.now = at;
        self.with(|s, ctx| s.handle_timeout(ctx));
    }

    fn advance(&mut self, by: Duration) {
        self.set_time(self.now + by);
    }

    /// Runs the session loop until `end`: drain, sleep to the next deadline, handle timeouts.
    /// Returns every packet with its send time (offset from t0).
    fn run_until(&mut self, end: Instant) -> Vec<(Duration, Packet)> {
        let mut out = Vec::new();
        let mut wakes = 0u32;
        loop {
            for packet in self.drain() {
                out.push((self.now - self.t0, packet));
            }
            let Some(deadline) = self.source.next_deadline() else {
                break;
            };
            if deadline > end {
                break;
            }
            assert!(
                deadline > self.now,
                "deadline {deadline:?} not after now after a drain"
            );
            self.set_time(deadline);
            wakes += 1;
            assert!(wakes < 10_000_000, "run_until does not progress");
        }
        if self.now < end {
            self.set_time(end);
        }
        out
    }

    fn nak_for(&self, ranges: &[(u32, u16)]) -> Nak {
        Nak {
            stream: STREAM,
            requester: 99,
            timestamp: 0x1234_5678,
            ranges: ranges
                .iter()
                .map(|&(first, count)| SeqRange {
                    first: SeqNum(first),
                    count,
                })
                .collect(),
        }
    }
}

fn data(packet: &Packet) -> &Data {
    match packet {
        Packet::Data(data) => data,
        other => panic!("expected data, got {other:?}"),
    }
}

fn ncf(packet: &Packet) -> &Ncf {
    match packet {
        Packet::Ncf(ncf) => ncf,
        other => panic!("expected NCF, got {other:?}"),
    }
}

fn spm(packet: &Packet) -> &Spm {
    match packet {
        Packet::Spm(spm) => spm,
        other => panic!("expected SPM, got {other:?}"),
    }
}

/// The packets other than SPMs (whose timing other tests check).
fn without_spm(packets: Vec<Packet>) -> Vec<Packet> {
    packets
        .into_iter()
        .filter(|p| !matches!(p, Packet::Spm(_)))
        .collect()
}

fn seqs(packets: &[Packet]) -> Vec<u32> {
    packets.iter().map(|p| data(p).seq.0).collect()
}

fn max_payload() -> usize {
    Settings::default().max_datagram - HEADER_LEN - DATA_FIELDS_LEN
}

/// Sends one message of `len` bytes and checks every fragment emitted for it.
fn check_fragmentation(len: usize) {
    let mut h = Harness::unpaced();
    h.send_len(len);
    let mut raw = Vec::new();
    while let Some(datagram) = h.poll_raw() {
        raw.push(datagram);
    }
    let expected = len.div_ceil(max_payload()).max(1);
    assert_eq!(raw.len(), expected, "{len} B takes {expected} datagrams");
    let mut reassembled = Vec::with_capacity(len);
    for (i, datagram) in raw.iter().enumerate() {
        assert!(datagram.len() <= Settings::default().max_datagram);
        let flags = datagram[FLAGS_BYTE];
        let packet = wire::decode(datagram.clone()).expect("decodable");
        let d = data(&packet);
        assert!(!d.repair);
        assert_eq!(d.stream, STREAM);
        assert_eq!(d.seq, FIRST.add(i as u32), "consecutive sequence numbers");
        assert_eq!(d.message_len as usize, len);
        assert_eq!(d.fragment_offset as usize, reassembled.len());
        let first = i == 0;
        let last = i + 1 == raw.len();
        assert_eq!(flags & 0x01 != 0, first, "FIRST flag of fragment {i}");
        assert_eq!(flags & 0x02 != 0, last, "LAST flag of fragment {i}");
        if !last {
            assert_eq!(
                datagram.len(),
                Settings::default().max_datagram,
                "non-final fragments fill the datagram exactly"
            );
        }
        reassembled.extend_from_slice(&d.payload);
    }
    let expected: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    assert!(
        reassembled == expected,
        "fragments reassemble to the message"
    );
    assert_eq!(h.stats.messages_sent, 1);
}

#[test]
fn fragments_empty_message() {
    check_fragmentation(0);
}

#[test]
fn fragments_one_byte() {
    check_fragmentation(1);
}

#[test]
fn fragments_exactly_one_datagram() {
    check_fragmentation(max_payload());
}

#[test]
fn fragments_one_byte_over() {
    check_fragmentation(max_payload() + 1);
}

#[test]
fn fragments_sixteen_mib() {
    check_fragmentation(16 << 20);
}

#[test]
fn consecutive_messages_continue_the_sequence() {
    let mut h = Harness::unpaced();
    h.send_len(10);
    h.send_len(2 * max_payload());
    h.send_len(0);
    let packets = h.drain();
    let expected: Vec<u32> = (0..4).map(|i| FIRST.add(i).0).collect();
    assert_eq!(seqs(&packets), expected);
    let offsets: Vec<(u32, u32)> = packets
        .iter()
        .map(|p| (data(p).message_len, data(p).fragment_offset))
        .collect();
    let two = 2 * max_payload() as u32;
    assert_eq!(
        offsets,
        vec![(10, 0), (two, 0), (two, max_payload() as u32), (0, 0)]
    );
}

#[test]
fn send_rejects_too_large_and_after_close() {
    let mut h = Harness::new(Settings {
        max_message_len: 1000,
        ..Settings::default()
    });
    assert_eq!(
        h.send(Bytes::from(vec![0u8; 1001])),
        Err(SendError::TooLarge {
            len: 1001,
            max: 1000
        })
    );
    assert_eq!(h.send(Bytes::from(vec![0u8; 1000])), Ok(()));
    h.source.close();
    assert_eq!(h.send(Bytes::new()), Err(SendError::Closed));
    assert!(!h.source.can_send());
    assert_eq!(h.stats.messages_sent, 1);
    // Queued data still goes out after close.
    assert_eq!(h.drain().len(), 1);
    assert!(h.source.is_idle());
}

#[test]
fn can_send_admits_under_the_bound_even_if_overshooting() {
    let mut h = Harness::new(Settings {
        send_queue_bytes: 5000,
        rate_limit_bps: Some(8_000_000),
        ..Settings::default()
    });
    assert!(h.source.can_send());
    h.send_len(4967);
    assert!(
        h.source.can_send(),
        "4,967 queued bytes + 32 B overhead are under 5,000"
    );
    h.send_len(100_000);
    assert!(!h.source.can_send());
    // The pacer lets the first 64 KiB go; the rest waits.
    let sent = h.drain().len();
    assert!(sent > 0);
    assert!(!h.source.can_send());
    assert!(!h.source.is_idle());
    h.run_until(h.t0 + Duration::from_secs(1));
    assert!(h.source.can_send());
    assert!(h.source.is_idle());
}

#[test]
fn empty_messages_fill_the_send_queue() {
    let mut h = Harness::new(Settings {
        send_queue_bytes: 3200,
        rate_limit_bps: Some(8_000_000),
        ..Settings::default()
    });
    let mut accepted = 0;
    while h.source.can_send() {
        h.send(Bytes::new()).expect("accepted");
        accepted += 1;
        assert!(accepted <= 1000, "can_send never says no to empty messages");
    }
    assert_eq!(accepted, 100, "32 B of overhead each");
}

#[test]
fn pacing_releases_rate_times_time() {
    let mut h = Harness::paced();
    for _ in 0..2000 {
        h.send_len(1000);
    }
    let out = h.run_until(h.t0 + Duration::from_secs(1));
    let bytes: usize = out
        .iter()
        .map(|(_, p)| match p {
            Packet::Data(d) => d.payload.len() + HEADER_LEN + DATA_FIELDS_LEN,
            Packet::Spm(s) => Packet::Spm(s.clone()).encoded_len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    // 8 Mbit/s for 1 s = 1,000,000 B, plus the 64 KiB initial burst, ± one datagram.
    let expected = 1_000_000 + 64 * 1024;
    assert!(
        bytes.abs_diff(expected) <= 1032,
        "released {bytes} B in 1 s, expected {expected}"
    );
    // The last datagram left near the end of the second, not in an early burst.
    let (last_at, _) = out.last().expect("something sent");
    assert!(
        *last_at > Duration::from_millis(998),
        "last send at {last_at:?}"
    );
}

#[test]
fn pacer_deadline_is_the_exact_wake_instant() {
    let mut h = Harness::paced();
    for _ in 0..100 {
        h.send_len(968); // 1000-byte datagrams.
    }
    let burst = h.drain();
    // 65,536 B of tokens: 66 datagrams of 1000 B, ending 464 B in debt.
    assert_eq!(burst.len(), 66);
    let deadline = h.source.next_deadline().expect("paced work waits");
    // 464 B at 1 MB/s = 464 µs.
    assert_eq!(deadline, h.t0 + 464 * US);
    h.set_time(deadline - Duration::from_nanos(1));
    assert!(h.drain().is_empty(), "nothing before the deadline");
    h.set_time(deadline);
    assert_eq!(h.drain().len(), 1, "one datagram at the deadline");
    assert_eq!(h.source.next_deadline(), Some(deadline + 1000 * US));
}

#[test]
fn window_evicts_by_packets_and_trail_advances_in_odata_and_spm() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        window_packets: 4,
        ..Settings::default()
    });
    for _ in 0..10 {
        h.send_len(1);
    }
    let packets = h.drain();
    let trails: Vec<u32> = packets.iter().map(|p| data(p).trail.0).collect();
    // Seq i is sent with the window [max(first, i − 3), i].
    let expected: Vec<u32> = (0..10u32)
        .map(|i| FIRST.add(i.saturating_sub(3)).0)
        .collect();
    assert_eq!(trails, expected);
    let out = h.run_until(h.now + 2 * MS);
    assert_eq!(out.len(), 1);
    let s = spm(&out[0].1);
    assert_eq!(s.trail, FIRST.add(6));
    assert_eq!(s.lead, FIRST.add(10));
}

#[test]
fn window_evicts_by_bytes() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        window_bytes: 3 * max_payload(),
        max_message_len: 3 * max_payload(),
        ..Settings::default()
    });
    h.send_len(5 * max_payload() / 2 + 1); // 3 fragments
    h.send_len(max_payload()); // 1 more: the first fragment must go
    let packets = h.drain();
    assert_eq!(packets.len(), 4);
    assert_eq!(data(&packets[3]).trail, FIRST.add(1));
    // Only the 100-byte... the first fragment is gone: a NAK for it gets `gone`.
    h.nak(&h.nak_for(&[(FIRST.0, 1)]));
    let answer = h.drain();
    assert_eq!(answer.len(), 1);
    assert!(ncf(&answer[0]).gone);
}

#[test]
fn window_evicts_by_age_and_spm_shows_it_empty() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        window_age: Duration::from_millis(50),
        spm_interval_min: 10 * MS,
        spm_interval_max: 40 * MS,
        ..Settings::default()
    });
    h.send_len(1);
    h.send_len(1);
    h.drain();
    assert_eq!(h.source.next_deadline(), Some(h.t0 + 10 * MS));
    let out = h.run_until(h.t0 + 100 * MS);
    let spms: Vec<(Duration, SeqNum, SeqNum)> = out
        .iter()
        .map(|(at, p)| (*at, spm(p).trail, spm(p).lead))
        .collect();
    let lead = FIRST.add(2);
    assert_eq!(
        spms,
        vec![
            (10 * MS, FIRST, lead),
            (30 * MS, FIRST, lead),
            (70 * MS, lead, lead), // evicted at 50 ms
        ]
    );
    // After eviction the age timer is gone; only the SPM timer remains.
    assert_eq!(h.source.next_deadline(), Some(h.t0 + 110 * MS));
}

#[test]
fn no_spm_before_first_send() {
    let mut h = Harness::new(Settings::default());
    assert_eq!(h.source.next_deadline(), None);
    // A report from a confused receiver does not start heartbeats.
    h.report(&Report {
        stream: STREAM,
        reporter: 5,
        timestamp: 1,
        spm_timestamp_echo: 0,
        spm_hold_us: 0,
        delivered_until: FIRST,
        echoes: Vec::new(),
    });
    h.advance(Duration::from_secs(10));
    assert!(h.drain().is_empty());
    assert_eq!(h.source.next_deadline(), None);
    assert!(h.source.is_idle());
}

#[test]
fn spm_schedule_doubles_while_idle_and_resets_on_data() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        spm_interval_min: 2 * MS,
        spm_interval_max: 16 * MS,
        ..Settings::default()
    });
    h.send_len(1);
    assert_eq!(h.drain().len(), 1);
    let out = h.run_until(h.t0 + 60 * MS);
    let times: Vec<u128> = out.iter().map(|(at, _)| at.as_millis()).collect();
    // Gaps 2, 4, 8, 16, 16, 16.
    assert_eq!(times, vec![2, 6, 14, 30, 46]);
    let spm_seqs: Vec<u32> = out.iter().map(|(_, p)| spm(p).spm_seq).collect();
    assert_eq!(spm_seqs, vec![0, 1, 2, 3, 4]);
    for (_, p) in &out {
        let s = spm(p);
        assert_eq!((s.trail, s.lead), (FIRST, FIRST.add(1)));
    }
    // New data at 60 ms: the next SPM comes 2 ms later again.
    h.send_len(1);
    h.drain();
    let out = h.run_until(h.t0 + 70 * MS);
    let times: Vec<u128> = out.iter().map(|(at, _)| at.as_millis()).collect();
    assert_eq!(times, vec![62, 66]);
    assert_eq!(spm(&out[0].1).lead, FIRST.add(2));
    assert_eq!(
        spm(&out[0].1).timestamp,
        62_000,
        "timestamp is µs since the clock epoch"
    );
}

#[test]
fn ambient_spm_goes_out_under_a_backlog_with_lead_of_sent_data() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: Some(8_000_000),
        // Data leaves every 1 ms (1000 B at 1 MB/s), more often than the heartbeat.
        spm_interval_min: 2 * MS,
        spm_interval_max: 5 * MS,
        ..Settings::default()
    });
    for _ in 0..200 {
        h.send_len(968);
    }
    let burst = h.drain().len() as u32;
    assert_eq!(burst, 66);
    // ODATA keeps pushing the heartbeat back, but the ambient SPM is due 5 ms after the first
    // data and goes before the waiting ODATA.
    let out = h.run_until(h.t0 + 6 * MS);
    let spm_at: Vec<usize> = (0..out.len())
        .filter(|&i| matches!(out[i].1, Packet::Spm(_)))
        .collect();
    assert_eq!(spm_at.len(), 1, "one SPM in 6 ms of backlog");
    let i = spm_at[0];
    // Due at 5 ms; it leaves when the pacer next allows (the ODATA cadence is 0.464 + k ms).
    assert_eq!(out[i].0, 5464 * US);
    assert!(out.len() > i + 1, "ODATA continues after the SPM");
    // The lead counts what was sent (the burst and the ODATA before the SPM), not the queue.
    assert_eq!(spm(&out[i].1).lead, FIRST.add(burst + i as u32));
    assert_eq!(spm(&out[i].1).trail, FIRST);
}

#[test]
fn nak_gets_immediate_ncf_before_pending_odata_then_rdata_for_exactly_the_asked() {
    let mut h = Harness::paced();
    for _ in 0..100 {
        h.send_len(968);
    }
    let first_burst = h.drain();
    assert_eq!(first_burst.len(), 66);
    // The pacer is in debt and 34 ODATA wait. A NAK for seqs 3..=5 and 10.
    let nak = h.nak_for(&[(FIRST.add(3).0, 3), (FIRST.add(10).0, 1)]);
    h.nak(&nak);
    assert!(!h.source.is_idle());
    let now = h.drain();
    assert_eq!(now.len(), 1, "only the NCF goes while the pacer is empty");
    let n = ncf(&now[0]);
    assert!(!n.gone);
    assert_eq!(n.requester, 99);
    assert_eq!(n.timestamp_echo, 0x1234_5678);
    assert_eq!(n.trail, FIRST);
    assert_eq!(n.ranges, nak.ranges);
    assert_eq!(h.stats.recovery.naks_received, 1);
    assert_eq!(h.stats.recovery.ncfs_sent, 1);
    // Next: after the aggregation window (1/16 of the 10 ms initial RTT), the four RDATA in
    // seq order, one after the other, before the ODATA still waiting.
    let nak_at = h.now - h.t0;
    let out: Vec<(Duration, Packet)> = h
        .run_until(h.now + 10 * MS)
        .into_iter()
        .filter(|(_, p)| !matches!(p, Packet::Spm(_)))
        .collect();
    let first_repair = out
        .iter()
        .position(|(_, p)| data(p).repair)
        .expect("repairs sent");
    assert!(out[first_repair].0 >= nak_at + Duration::from_micros(625));
    let repairs: Vec<&Data> = out[first_repair..]
        .iter()
        .map(|(_, p)| data(p))
        .take(5)
        .collect();
    assert!(repairs[..4].iter().all(|d| d.repair));
    assert!(!repairs[4].repair);
    let repaired: Vec<u32> = repairs[..4].iter().map(|d| d.seq.0).collect();
    let expected: Vec<u32> = [3u32, 4, 5, 10].iter().map(|&i| FIRST.add(i).0).collect();
    assert_eq!(repaired, expected);
    for d in &repairs[..4] {
        let original = data(&first_burst[d.seq.distance_from(FIRST) as usize]);
        assert_eq!(d.payload, original.payload);
        assert_eq!(d.fragment_offset, original.fragment_offset);
        assert_eq!(d.message_len, original.message_len);
    }
    assert_eq!(h.stats.recovery.repairs_sent, 4);
    let rdata_total = out
        .iter()
        .filter(|(_, p)| matches!(p, Packet::Data(d) if d.repair))
        .count();
    assert_eq!(rdata_total, 4, "each asked packet repaired exactly once");
}

#[test]
fn duplicate_nak_within_linger_is_confirmed_but_not_repaired() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        repair_linger: 5 * MS,
        // Below the configured linger, so the linger is exactly 5 ms before any report.
        initial_rtt: MS,
        ..Settings::default()
    });
    for _ in 0..5 {
        h.send_len(1);
    }
    h.drain();
    let nak = h.nak_for(&[(FIRST.add(2).0, 2)]);
    h.nak(&nak);
    let first = h.drain_repairs();
    assert_eq!(first.len(), 3, "NCF + 2 RDATA: {first:?}");
    // The same NAK twice while the RDATA is still queued (dedup), then within the linger.
    h.nak(&nak);
    h.nak(&nak);
    // Both NAKs are confirmed and ignored for repair.
    let again = h.drain();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|p| ncf(p).ranges == nak.ranges));
    assert_eq!(h.stats.recovery.naks_ignored_linger, 2);
    h.advance(4 * MS);
    h.nak(&nak);
    assert_eq!(
        without_spm(h.drain()).len(),
        1,
        "still within the 5 ms linger"
    );
    assert_eq!(h.stats.recovery.naks_ignored_linger, 3);
    h.advance(MS);
    h.nak(&nak);
    let after = without_spm(h.drain_repairs());
    assert_eq!(after.len(), 3, "linger over: repaired again");
    assert_eq!(seqs(&after[1..]), vec![FIRST.add(2).0, FIRST.add(3).0]);
    assert_eq!(h.stats.recovery.repairs_sent, 4);
    assert_eq!(h.stats.recovery.naks_received, 5);
}

#[test]
fn before_any_report_the_linger_covers_the_initial_rtt() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        repair_linger: 2 * MS,
        initial_rtt: 10 * MS,
        ..Settings::default()
    });
    for _ in 0..3 {
        h.send_len(1);
    }
    h.drain();
    let nak = h.nak_for(&[(FIRST.add(1).0, 1)]);
    h.nak(&nak);
    assert_eq!(without_spm(h.drain_repairs()).len(), 2, "NCF + RDATA");
    // 9 ms later a duplicate (fired before the repair reached its sender) is still ignored.
    h.advance(9 * MS);
    h.nak(&nak);
    assert_eq!(without_spm(h.drain()).len(), 1, "NCF only");
    h.advance(2 * MS);
    h.nak(&nak);
    assert_eq!(
        without_spm(h.drain_repairs()).len(),
        2,
        "linger over: repaired again"
    );
}

#[test]
fn nak_while_rdata_queued_is_deduplicated() {
    let mut h = Harness::paced();
    for _ in 0..70 {
        h.send_len(968);
    }
    h.drain(); // 66 sent, pacer in debt
    let nak = h.nak_for(&[(FIRST.add(1).0, 1)]);
    h.nak(&nak);
    h.nak(&nak);
    assert_eq!(h.drain().len(), 2, "two NCFs, RDATA waits for the pacer");
    let out = h.run_until(h.now + 10 * MS);
    let rdata = out
        .iter()
        .filter(|(_, p)| matches!(p, Packet::Data(d) if d.repair))
        .count();
    assert_eq!(rdata, 1);
    assert_eq!(h.stats.recovery.naks_ignored_linger, 0);
}

#[test]
fn nak_below_trail_gets_gone_ncf() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        window_packets: 4,
        ..Settings::default()
    });
    for _ in 0..10 {
        h.send_len(1);
    }
    h.drain();
    // Window holds FIRST+6 ..= FIRST+9. Ask 4..=7: 4, 5 gone; 6, 7 held.
    h.nak(&h.nak_for(&[(FIRST.add(4).0, 4)]));
    let out = h.drain_repairs();
    assert_eq!(out.len(), 4, "NCF, gone NCF, 2 RDATA: {out:?}");
    let held = ncf(&out[0]);
    assert!(!held.gone);
    assert_eq!(
        held.ranges,
        vec![SeqRange {
            first: FIRST.add(6),
            count: 2
        }]
    );
    let gone = ncf(&out[1]);
    assert!(gone.gone);
    assert_eq!(gone.trail, FIRST.add(6));
    assert_eq!(
        gone.ranges,
        vec![SeqRange {
            first: FIRST.add(4),
            count: 2
        }]
    );
    assert_eq!(seqs(&out[2..]), vec![FIRST.add(6).0, FIRST.add(7).0]);
    assert_eq!(h.stats.recovery.ncfs_sent, 2);
}

#[test]
fn nak_for_unsent_data_is_ignored_and_counted() {
    let mut h = Harness::unpaced();
    h.send_len(1);
    h.drain();
    h.nak(&h.nak_for(&[(FIRST.add(1).0, 5)]));
    assert!(h.drain().is_empty());
    assert!(h.source.is_idle());
    assert_eq!(h.stats.drops.out_of_window, 1);
    assert_eq!(h.stats.recovery.ncfs_sent, 0);
}

#[test]
fn nak_from_another_instance_is_ignored() {
    let mut h = Harness::unpaced();
    h.send_len(1);
    h.drain();
    let mut nak = h.nak_for(&[(FIRST.0, 1)]);
    nak.stream.instance = 8;
    h.nak(&nak);
    assert!(h.drain().is_empty());
    assert_eq!(h.stats.drops.out_of_window, 1);
    assert_eq!(h.stats.recovery.naks_received, 1);
}

#[test]
fn huge_nak_range_is_clipped_to_the_window() {
    let mut h = Harness::unpaced();
    for _ in 0..3 {
        h.send_len(1);
    }
    h.drain();
    h.nak(&h.nak_for(&[(FIRST.0, u16::MAX)]));
    let out = h.drain_repairs();
    assert_eq!(out.len(), 4);
    assert_eq!(
        ncf(&out[0]).ranges,
        vec![SeqRange {
            first: FIRST,
            count: 3
        }]
    );
    assert_eq!(h.stats.drops.out_of_window, 1, "the unsent tail is counted");
}

#[test]
fn many_ranges_split_into_several_ncfs() {
    let mut h = Harness::unpaced();
    for _ in 0..200 {
        h.send_len(1);
    }
    h.drain();
    // 70 single-packet ranges (more than a decoded NAK can carry; the source copes anyway).
    let ranges: Vec<(u32, u16)> = (0..70u32).map(|i| (FIRST.add(2 * i).0, 1)).collect();
    h.nak(&h.nak_for(&ranges));
    let out = h.drain_repairs();
    let ncfs: Vec<&Ncf> = out
        .iter()
        .filter_map(|p| match p {
            Packet::Ncf(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(ncfs.len(), 2);
    assert_eq!(ncfs[0].ranges.len(), wire::MAX_RANGES);
    assert_eq!(ncfs[1].ranges.len(), 70 - wire::MAX_RANGES);
    assert_eq!(out.len() - 2, 70);
}

#[test]
fn queued_repair_of_evicted_packet_is_dropped() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: Some(8_000_000),
        window_age: 10 * MS,
        ..Settings::default()
    });
    for _ in 0..70 {
        h.send_len(968);
    }
    h.drain();
    h.nak(&h.nak_for(&[(FIRST.0, 1)]));
    assert_eq!(h.drain().len(), 1, "NCF only; RDATA waits for tokens");
    // All 66 sent packets age out before the pacer allows the repair.
    h.set_time(h.t0 + 10 * MS);
    let out = h.drain();
    assert!(
        out.iter()
            .all(|p| !matches!(p, Packet::Data(d) if d.repair))
    );
    assert_eq!(h.stats.recovery.repairs_sent, 0);
}

#[test]
fn report_is_echoed_in_next_spm_with_hold() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        spm_interval_min: 2 * MS,
        spm_interval_max: Duration::from_secs(1),
        ..Settings::default()
    });
    h.send_len(1);
    h.drain();
    // Let the heartbeat back off so that only the echo makes an SPM due soon.
    let out = h.run_until(h.t0 + 65 * MS);
    assert_eq!(out.len(), 5); // 2, 6, 14, 30, 62 ms; next at 126 ms
    let last_spm_ts = spm(&out[4].1).timestamp;
    h.set_time(h.t0 + 70 * MS);
    // The receiver heard the SPM of 62 ms and held it 3 ms; the report took 2.5 ms to come.
    h.report(&Report {
        stream: STREAM,
        reporter: 77,
        timestamp: 0xabcd,
        spm_timestamp_echo: last_spm_ts,
        spm_hold_us: 3000,
        delivered_until: FIRST.add(1),
        echoes: Vec::new(),
    });
    assert_eq!(h.source.next_deadline(), Some(h.t0 + 72 * MS));
    let out = h.run_until(h.t0 + 73 * MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 72 * MS);
    assert_eq!(
        spm(&out[0].1).echoes,
        vec![Echo {
            member: 77,
            timestamp: 0xabcd,
            hold_us: 2000
        }]
    );
    // RTT = (70 − 62) − 3 = 5 ms.
    assert_eq!(h.source.rtt.group(), 5 * MS);
}

#[test]
fn group_rtt_stretches_the_linger() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        repair_linger: MS,
        ..Settings::default()
    });
    for _ in 0..3 {
        h.send_len(1);
    }
    h.drain();
    let out = h.run_until(h.t0 + 2 * MS);
    let spm_ts = spm(&out[0].1).timestamp;
    h.set_time(h.t0 + 22 * MS);
    h.report(&Report {
        stream: STREAM,
        reporter: 5,
        timestamp: 1,
        spm_timestamp_echo: spm_ts,
        spm_hold_us: 0,
        delivered_until: FIRST,
        echoes: Vec::new(),
    });
    assert_eq!(h.source.linger(), 20 * MS);
    let nak = h.nak_for(&[(FIRST.0, 1)]);
    h.nak(&nak);
    assert_eq!(
        h.drain_repairs()
            .iter()
            .filter(|p| matches!(p, Packet::Data(_)))
            .count(),
        1
    );
    h.advance(10 * MS);
    h.nak(&nak);
    let out = h.drain();
    assert!(
        out.iter().all(|p| !matches!(p, Packet::Data(_))),
        "10 ms after the repair is within the 20 ms RTT linger"
    );
    assert_eq!(h.stats.recovery.naks_ignored_linger, 1);
    h.advance(10 * MS);
    h.nak(&nak);
    assert_eq!(
        h.drain_repairs()
            .iter()
            .filter(|p| matches!(p, Packet::Data(_)))
            .count(),
        1
    );
}

#[test]
fn pure_receiver_source_is_silent() {
    let mut h = Harness::new(Settings::default());
    h.nak(&h.nak_for(&[(FIRST.0, 10)]));
    assert!(h.drain().is_empty(), "nothing sent: nothing to confirm");
    assert_eq!(h.source.next_deadline(), None);
    assert!(h.source.is_idle());
}

#[test]
fn data_overhead_matches_the_codec() {
    let packet = Packet::Data(Data {
        stream: STREAM,
        repair: false,
        seq: FIRST,
        trail: FIRST,
        message_len: 0,
        fragment_offset: 0,
        payload: Bytes::new(),
        fec_index: None,
    });
    assert_eq!(packet.encoded_len(), HEADER_LEN + DATA_FIELDS_LEN);
}

/// Random operation streams against invariants the rest of the protocol relies on.
mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Clone, Debug)]
    enum Op {
        Send(usize),
        Advance(u64),
        /// Ranges as (offset from the current trail, count).
        Nak(Vec<(i32, u16)>),
        /// A report from `member` echoing the last SPM (if any) after `hold_us`.
        Report(u64, u32),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..5000).prop_map(Op::Send),
            3 => (0u64..20_000).prop_map(Op::Advance),
            2 => proptest::collection::vec((-40i32..120, 1u16..300), 1..6).prop_map(Op::Nak),
            1 => (0u64..6, 0u32..5000).prop_map(|(m, h)| Op::Report(m, h)),
            3 => Just(Op::Drain),
        ]
    }

    #[derive(Clone, Debug)]
    struct Knobs {
        rate: Option<u64>,
        window_packets: u32,
        window_bytes: usize,
        window_age_ms: u64,
        linger_ms: u64,
        max_datagram: usize,
    }

    fn knobs() -> impl Strategy<Value = Knobs> {
        (
            prop_oneof![Just(None), (1_000_000u64..200_000_000).prop_map(Some)],
            1u32..64,
            2000usize..100_000,
            1u64..300,
            0u64..20,
            512usize..2000,
        )
            .prop_map(
                |(rate, window_packets, window_bytes, window_age_ms, linger_ms, max_datagram)| {
                    Knobs {
                        rate,
                        window_packets,
                        window_bytes,
                        window_age_ms,
                        linger_ms,
                        max_datagram,
                    }
                },
            )
    }

    /// What the checker remembers of the stream so far.
    #[derive(Default)]
    struct Seen {
        /// ODATA by offset from FIRST: (message_len, fragment_offset, payload).
        odata: Vec<(u32, u32, Bytes)>,
        /// Offsets asked by NAKs while held.
        asked: BTreeSet<u32>,
        trail: u32,
        paced_bytes: u64,
        last_spm: Option<(u32, u32)>,
        /// Reassembly of the ODATA stream: completed messages and the one in progress.
        messages: Vec<Bytes>,
        partial: Vec<u8>,
    }

    fn offset(seq: SeqNum) -> u32 {
        seq.distance_from(FIRST)
    }

    fn check_packet(h: &Harness, seen: &mut Seen, knobs: &Knobs, datagram: &Bytes) {
        assert!(datagram.len() <= knobs.max_datagram, "datagram too large");
        let packet = wire::decode(datagram.clone()).expect("decodable");
        let lead = seen.odata.len() as u32;
        match &packet {
            Packet::Data(d) if !d.repair => {
                assert_eq!(offset(d.seq), lead, "ODATA in sequence");
                assert!(d.trail <= d.seq, "ODATA trail past its own seq");
                if d.fragment_offset == 0 {
                    assert!(
                        seen.partial.is_empty(),
                        "message started before the last ended"
                    );
                }
                assert_eq!(d.fragment_offset as usize, seen.partial.len());
                seen.partial.extend_from_slice(&d.payload);
                if seen.partial.len() == d.message_len as usize {
                    seen.messages
                        .push(Bytes::from(std::mem::take(&mut seen.partial)));
                }
                seen.odata
                    .push((d.message_len, d.fragment_offset, d.payload.clone()));
            }
            Packet::Data(d) => {
                let at = offset(d.seq);
                assert!(at < lead, "RDATA for unsent data");
                assert!(d.trail <= d.seq, "RDATA for data behind its trail");
                assert!(seen.asked.contains(&at), "RDATA nobody asked for");
                let (len, off, payload) = &seen.odata[at as usize];
                assert_eq!((d.message_len, d.fragment_offset), (*len, *off));
                assert_eq!(&d.payload, payload);
            }
            Packet::Ncf(n) => {
                assert!(!n.ranges.is_empty() && n.ranges.len() <= wire::MAX_RANGES);
                for r in &n.ranges {
                    let first = i64::from(r.first.0.wrapping_sub(n.trail.0) as i32);
                    let end = first + i64::from(r.count);
                    if n.gone {
                        assert!(end <= 0, "gone NCF for held data: {n:?}");
                    } else {
                        assert!(first >= 0, "NCF confirms evicted data: {n:?}");
                        assert!(
                            offset(n.trail) as i64 + end <= i64::from(lead),
                            "NCF confirms unsent data"
                        );
                    }
                }
            }
            Packet::Spm(s) => {
                assert_eq!(offset(s.lead), lead, "SPM lead = one past the newest sent");
                assert!(s.trail <= s.lead);
                if let Some((prev, _)) = seen.last_spm {
                    assert_eq!(s.spm_seq, prev.wrapping_add(1));
                }
                assert!(s.echoes.len() <= wire::MAX_ECHOES);
                seen.last_spm = Some((s.spm_seq, s.timestamp));
            }
            other => panic!("a source never sends {other:?}"),
        }
        let trail = match &packet {
            Packet::Data(d) => d.trail,
            Packet::Ncf(n) => n.trail,
            Packet::Spm(s) => s.trail,
            _ => unreachable!("checked above"),
        };
        assert!(offset(trail) >= seen.trail, "trail went backwards");
        assert!(offset(trail) <= seen.odata.len() as u32, "trail past lead");
        seen.trail = offset(trail);
        if !matches!(packet, Packet::Ncf(_)) {
            seen.paced_bytes += datagram.len() as u64;
        }
        let window = &h.source.window;
        assert!(window.len() <= knobs.window_packets as usize);
        assert!(window.len() <= 1 || window.bytes() <= knobs.window_bytes);
    }

    fn drain_checked(h: &mut Harness, seen: &mut Seen, knobs: &Knobs) {
        let mut count = 0;
        while let Some(datagram) = h.poll_raw() {
            check_packet(h, seen, knobs, &datagram);
            count += 1;
            assert!(count < 100_000, "poll_transmit never returns None");
        }
        if let Some(deadline) = h.source.next_deadline() {
            assert!(
                deadline > h.now,
                "deadline not in the future after a full drain"
            );
        }
        if let Some(rate) = knobs.rate {
            // Paced bytes never beat the rate by more than the burst plus one datagram.
            let elapsed = (h.now - h.t0).as_nanos() as u64;
            let allowed = u128::from(rate) * u128::from(elapsed) / 8_000_000_000
                + u128::from(65_536u64.max(rate / 4000))
                + knobs.max_datagram as u128;
            assert!(u128::from(seen.paced_bytes) <= allowed, "pacing exceeded");
        }
    }

    fn run(knobs: &Knobs, ops: &[Op]) {
        let mut h = Harness::new(Settings {
            rate_limit_bps: knobs.rate,
            window_packets: knobs.window_packets,
            window_bytes: knobs.window_bytes,
            window_age: Duration::from_millis(knobs.window_age_ms),
            repair_linger: Duration::from_millis(knobs.linger_ms),
            max_datagram: knobs.max_datagram,
            max_message_len: 5000,
            ..Settings::default()
        });
        let mut seen = Seen::default();
        let mut sent: Vec<Bytes> = Vec::new();
        for op in ops {
            match op {
                Op::Send(len) => {
                    let message = Bytes::from(vec![(sent.len() % 256) as u8; *len]);
                    h.send(message.clone()).expect("within max_message_len");
                    sent.push(message);
                }
                Op::Advance(us) => h.advance(Duration::from_micros(*us)),
                Op::Nak(ranges) => {
                    let trail = h.source.window.trail();
                    let held = h.source.window.len() as i64;
                    let ranges: Vec<(u32, u16)> = ranges
                        .iter()
                        .map(|&(off, count)| (trail.0.wrapping_add(off as u32), count))
                        .collect();
                    for &(first, count) in &ranges {
                        for i in 0..u32::from(count) {
                            let rel = i64::from(first.wrapping_add(i).wrapping_sub(trail.0) as i32);
                            if (0..held).contains(&rel) {
                                seen.asked.insert(offset(trail) + rel as u32);
                            }
                        }
                    }
                    h.nak(&h.nak_for(&ranges));
                }
                Op::Report(member, hold) => {
                    let echo = seen.last_spm.map_or(0, |(_, ts)| ts);
                    h.report(&Report {
                        stream: STREAM,
                        reporter: *member,
                        timestamp: 1,
                        spm_timestamp_echo: echo,
                        spm_hold_us: *hold,
                        delivered_until: FIRST,
                        echoes: Vec::new(),
                    });
                }
                Op::Drain => drain_checked(&mut h, &mut seen, knobs),
            }
        }
        // Let everything out: all messages go out in order, intact, and the source idles.
        let mut rounds = 0;
        loop {
            drain_checked(&mut h, &mut seen, knobs);
            if h.source.is_idle() {
                break;
            }
            let deadline = h
                .source
                .next_deadline()
                .expect("work pending has a deadline");
            h.set_time(deadline);
            rounds += 1;
            assert!(rounds < 1_000_000, "never idle");
        }
        assert_eq!(
            seen.messages, sent,
            "the ODATA stream reassembles to what was sent"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn invariants_hold_under_random_operations(
            knobs in knobs(),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            run(&knobs, &ops);
        }
    }
}

/// The aggregation window: NAKs of one loss arriving nearly together (from two requesters,
/// 200 µs apart) are each confirmed at once, and answered by one RDATA after the window — the
/// second merged into the queued repair, not ignored by the linger afterwards.
#[test]
fn near_simultaneous_naks_are_aggregated_into_one_rdata() {
    let mut h = Harness::unpaced();
    for _ in 0..3 {
        h.send_len(1);
    }
    h.drain();
    let nak_at = h.now;
    let first = h.nak_for(&[(FIRST.add(1).0, 1)]);
    h.nak(&first);
    assert_eq!(without_spm(h.drain()).len(), 1, "the NCF goes at once");
    h.advance(Duration::from_micros(200));
    let second = Nak {
        requester: 100,
        ..first
    };
    h.nak(&second);
    assert_eq!(
        without_spm(h.drain()).len(),
        1,
        "NCF; the RDATA still waits"
    );
    let out = h.run_until(h.now + 20 * MS);
    let repairs: Vec<&(Duration, Packet)> = out
        .iter()
        .filter(|(_, p)| matches!(p, Packet::Data(d) if d.repair))
        .collect();
    assert_eq!(repairs.len(), 1);
    // 1/16 of the initial 10 ms RTT after the first NAK.
    assert_eq!(repairs[0].0, nak_at - h.t0 + Duration::from_micros(625));
    assert_eq!(h.stats.recovery.repairs_sent, 1);
    assert_eq!(h.stats.recovery.naks_ignored_linger, 0);
    assert_eq!(h.stats.recovery.naks_aggregated, 1);
}

/// With peer repair on, the source waits its repair timer once receivers are seen repairing;
/// a receiver's repair heard meanwhile cancels its RDATA, and NAKs that crossed the peer's
/// repair are only confirmed.
#[test]
fn a_peer_repair_heard_in_time_cancels_the_sources_rdata() {
    let mut h = Harness::new(Settings {
        rate_limit_bps: None,
        peer_repair: true,
        ..Settings::default()
    });
    for _ in 0..3 {
        h.send_len(1);
    }
    let sent = h.drain();
    // No receiver has repaired anything yet: only the aggregation window (1/16 of 10 ms).
    h.nak(&h.nak_for(&[(FIRST.add(2).0, 1)]));
    let due = h.source.repairs.next_due().expect("RDATA scheduled");
    assert_eq!(due, h.now + Duration::from_micros(625));
    assert_eq!(without_spm(h.drain_repairs()).len(), 2, "NCF, RDATA");
    // A receiver's repair heard (of packet 0, not asked for): receivers repair here.
    let peer_zero = Data {
        repair: true,
        ..data(&sent[0]).clone()
    };
    h.with(|s, ctx| s.handle_peer_rdata(ctx, &peer_zero));
    let nak = h.nak_for(&[(FIRST.add(1).0, 1)]);
    h.nak(&nak);
    assert_eq!(without_spm(h.drain()).len(), 1, "NCF only");
    // Now the source's repair timer, which starts at half of D1..D1+D2 = 2..4 distances of
    // 5 ms (initial RTT 10 ms).
    let due = h.source.repairs.next_due().expect("RDATA scheduled");
    assert!((h.now + 5 * MS..=h.now + 10 * MS).contains(&due));
    h.advance(4 * MS);
    let peer_copy = Data {
        repair: true,
        ..data(&sent[1]).clone()
    };
    h.with(|s, ctx| s.handle_peer_rdata(ctx, &peer_copy));
    assert_eq!(h.stats.recovery.repairs_suppressed, 1);
    h.nak(&nak);
    let out = without_spm(h.drain());
    assert_eq!(out.len(), 1, "confirmed, not repaired: {out:?}");
    assert!(
        h.run_until(h.now + 50 * MS)
            .iter()
            .all(|(_, p)| !matches!(p, Packet::Data(d) if d.repair))
    );
    assert_eq!(h.stats.recovery.repairs_sent, 1, "only packet 2's");
}
