//! Tests of the receive side through `ReceiverState`, without a `Session`: a fixed base
//! instant advanced by durations, a seeded RNG, and the codec only to read what was sent.

use super::*;
use crate::proto::{Clock, LostRange};
use crate::stats::Stats;
use crate::wire::{self, Echo, SeqRange};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const ME: u64 = 0xAAAA;
const SRC: u64 = 0x5555;
const OTHER: u64 = 0xBBBB;
const STREAM: StreamId = StreamId {
    source: SRC,
    instance: 1,
};
const MS: Duration = Duration::from_millis(1);

#[expect(
    clippy::disallowed_methods,
    reason = "one real base instant per test; every later time is base + a Duration"
)]
fn base_instant() -> Instant {
    Instant::now()
}

fn test_settings() -> Settings {
    Settings {
        initial_rtt: 10 * MS,
        report_interval: Duration::from_secs(1),
        source_timeout: Duration::from_secs(30),
        nak_backoff_c1: 1.0,
        nak_backoff_c2: 2.0,
        nak_ncf_retries: 3,
        nak_data_retries: 5,
        ..Settings::default()
    }
}

/// A receiver with its clock, RNG and counters, driven like `Session` drives it.
struct Harness {
    base: Instant,
    now: Instant,
    clock: Clock,
    rng: SmallRng,
    stats: Stats,
    rx: ReceiverState,
    /// Every packet sent so far (decoded from the bytes), with the time it was polled.
    sent: Vec<(Instant, Packet)>,
    events: Vec<Event>,
}

fn from() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7400))
}

impl Harness {
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(edit: impl FnOnce(&mut Settings)) -> Harness {
        let mut settings = test_settings();
        edit(&mut settings);
        let base = base_instant();
        let mut rx = ReceiverState::new(&settings, ME);
        // The plain SRM timer, so tests can state exact backoff bounds; the learned spread
        // has its own tests.
        rx.config.nak.initial_spread = 1.0;
        rx.config.nak.strategy = BackoffStrategy::Srm;
        Harness {
            base,
            now: base,
            clock: Clock::new(base),
            rng: SmallRng::seed_from_u64(7),
            stats: Stats::default(),
            rx,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Runs `f` with a context at the current time, then drains outputs as `Session` does.
    fn run<R>(&mut self, f: impl FnOnce(&mut ReceiverState, &mut Context<'_>) -> R) -> R {
        let mut ctx = Context {
            now: self.now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        let result = f(&mut self.rx, &mut ctx);
        while let Some(bytes) = self.rx.poll_transmit(&mut ctx) {
            let packet = wire::decode(bytes).expect("the receiver sends only valid packets");
            self.sent.push((self.now, packet));
        }
        while let Some(event) = self.rx.poll_event() {
            self.events.push(event);
        }
        result
    }

    fn deliver(&mut self, data: Data) {
        self.run(|rx, ctx| rx.handle_data(ctx, from(), data));
    }

    /// A whole one-packet message at `seq` whose bytes are the sequence number.
    fn data(&mut self, seq: u32, trail: u32) {
        self.deliver(single(STREAM, seq, trail, false));
    }

    fn rdata(&mut self, seq: u32, trail: u32) {
        self.deliver(single(STREAM, seq, trail, true));
    }

    fn spm(&mut self, spm_seq: u32, trail: u32, lead: u32, echoes: Vec<Echo>) {
        let spm = Spm {
            stream: STREAM,
            spm_seq,
            trail: SeqNum(trail),
            lead: SeqNum(lead),
            timestamp: 1000 + spm_seq,
            echoes,
        };
        self.run(|rx, ctx| rx.handle_spm(ctx, from(), &spm));
    }

    fn ncf(&mut self, requester: u64, echo: u32, gone: bool, trail: u32, ranges: &[(u32, u16)]) {
        let ncf = Ncf {
            stream: STREAM,
            gone,
            requester,
            timestamp_echo: echo,
            trail: SeqNum(trail),
            ranges: seq_ranges(ranges),
        };
        self.run(|rx, ctx| rx.handle_ncf(ctx, &ncf));
    }

    fn foreign_nak(&mut self, ranges: &[(u32, u16)]) {
        let nak = Nak {
            stream: STREAM,
            requester: OTHER,
            timestamp: 1,
            ranges: seq_ranges(ranges),
        };
        self.run(|rx, ctx| rx.handle_foreign_nak(ctx, &nak));
    }

    /// Moves time forward by `by`, running every timer when it falls due (bounded).
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..100_000 {
            match self.rx.next_deadline() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.run(|rx, ctx| rx.handle_timeout(ctx));
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Moves time forward by `by` with a single, late timer call.
    fn jump(&mut self, by: Duration) {
        self.now += by;
        self.run(|rx, ctx| rx.handle_timeout(ctx));
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn naks(&self) -> Vec<Nak> {
        self.sent
            .iter()
            .filter_map(|(_, packet)| match packet {
                Packet::Nak(nak) => Some(nak.clone()),
                _ => None,
            })
            .collect()
    }

    fn reports(&self) -> Vec<(Instant, Report)> {
        self.sent
            .iter()
            .filter_map(|(at, packet)| match packet {
                Packet::Report(report) => Some((*at, report.clone())),
                _ => None,
            })
            .collect()
    }

    fn elapsed(&self) -> Duration {
        self.now - self.base
    }
}

fn single(stream: StreamId, seq: u32, trail: u32, repair: bool) -> Data {
    Data {
        stream,
        repair,
        seq: SeqNum(seq),
        trail: SeqNum(trail),
        message_len: 4,
        fragment_offset: 0,
        payload: Bytes::copy_from_slice(&seq.to_be_bytes()),
        fec_index: None,
    }
}

fn fragment(seq: u32, trail: u32, message: &'static [u8], offset: usize, len: usize) -> Data {
    Data {
        stream: STREAM,
        repair: false,
        seq: SeqNum(seq),
        trail: SeqNum(trail),
        message_len: message.len() as u32,
        fragment_offset: offset as u32,
        payload: Bytes::from_static(&message[offset..offset + len]),
        fec_index: None,
    }
}

fn seq_ranges(ranges: &[(u32, u16)]) -> Vec<SeqRange> {
    ranges
        .iter()
        .map(|&(first, count)| SeqRange {
            first: SeqNum(first),
            count,
        })
        .collect()
}

fn msg(seq: u32) -> Event {
    Event::Message {
        source: SourceId(SRC),
        data: Bytes::copy_from_slice(&seq.to_be_bytes()),
    }
}

fn lost(first: u32, last: u32) -> Event {
    Event::Unrecoverable {
        source: SourceId(SRC),
        range: LostRange { first, last },
    }
}

fn joined() -> Event {
    Event::SourceJoined {
        source: SourceId(SRC),
    }
}

fn nak_ranges(nak: &Nak) -> Vec<(u32, u16)> {
    nak.ranges.iter().map(|r| (r.first.0, r.count)).collect()
}

#[test]
fn in_order_data_is_delivered_once_and_duplicates_dropped() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(11, 10);
    h.data(11, 10); // delivered already
    h.data(9, 9); // before the stream start
    h.data(13, 10); // 12 missing
    h.data(13, 10); // held already
    assert_eq!(h.take_events(), vec![joined(), msg(10), msg(11)]);
    h.rdata(12, 10);
    assert_eq!(h.take_events(), vec![msg(12), msg(13)]);
    assert_eq!(h.stats.recovery.duplicates, 3);
    assert_eq!(h.stats.recovery.gaps_detected, 1);
    assert_eq!(h.stats.recovery.repairs_received, 1);
    h.rdata(12, 10);
    assert_eq!(
        h.stats.recovery.duplicates, 4,
        "a late repair is a duplicate"
    );
    assert!(h.take_events().is_empty());
}

#[test]
fn jumps_become_naks_after_backoff_with_merged_ranges_oldest_first() {
    let mut h = Harness::new();
    for seq in [100, 103, 104, 107] {
        h.data(seq, 100);
    }
    assert_eq!(h.stats.recovery.gaps_detected, 4);
    // Backoff is [C1·d, (C1+C2)·d] = [5 ms, 15 ms] with the initial 10 ms RTT.
    h.advance(Duration::from_micros(4_900));
    assert!(h.naks().is_empty(), "no NAK before C1·d");
    h.jump(15 * MS);
    let naks = h.naks();
    assert_eq!(naks.len(), 1, "{naks:?}");
    assert_eq!(nak_ranges(&naks[0]), vec![(101, 2), (105, 2)]);
    assert_eq!(naks[0].requester, ME);
    assert_eq!(naks[0].stream, STREAM);
    assert_eq!(naks[0].timestamp, h.clock.timestamp(h.now));
    assert_eq!(h.stats.recovery.naks_sent, 1);
}

#[test]
fn a_new_source_starts_with_a_wide_spread_that_decays_when_alone() {
    let mut h = Harness::new();
    h.rx.config.nak.initial_spread = nak::INITIAL_SPREAD;
    // Backoff [C1·d, (C1 + C2·4)·d] = [5 ms, 45 ms]: the first NAK may come late.
    let mut first_waits = Vec::new();
    let mut last_waits = Vec::new();
    let mut seq = 100;
    h.data(seq, seq);
    for round in 0..30 {
        let detected = h.now;
        let sent_before = h.sent.len();
        h.data(seq + 2, 100); // seq + 1 missing
        h.advance(50 * MS);
        let nak_at = h.sent[sent_before..]
            .iter()
            .find(|(_, p)| matches!(p, Packet::Nak(_)))
            .unwrap()
            .0;
        if round < 5 {
            first_waits.push(nak_at - detected);
        } else if round >= 25 {
            last_waits.push(nak_at - detected);
        }
        h.rdata(seq + 1, 100);
        seq += 2;
    }
    assert!(first_waits.iter().any(|w| *w > 15 * MS), "{first_waits:?}");
    assert!(first_waits.iter().all(|w| *w <= 45 * MS), "{first_waits:?}");
    assert!(
        last_waits.iter().all(|w| *w <= 15 * MS),
        "decayed: {last_waits:?}"
    );
    assert!(h.stats.recovery.naks_sent >= 30);
}

#[test]
fn each_detection_naks_on_its_own_backoff() {
    let mut h = Harness::new();
    h.data(100, 100);
    h.data(102, 100);
    let first_detected = h.now;
    h.advance(2 * MS);
    h.data(104, 100);
    let second_detected = h.now;
    h.advance(18 * MS);
    let naks: Vec<(Instant, Vec<(u32, u16)>)> = h
        .sent
        .iter()
        .filter_map(|(at, packet)| match packet {
            Packet::Nak(nak) => Some((*at, nak_ranges(nak))),
            _ => None,
        })
        .collect();
    assert_eq!(naks.len(), 2, "{naks:?}");
    for (at, ranges) in naks {
        let detected = if ranges == vec![(101, 1)] {
            first_detected
        } else {
            assert_eq!(ranges, vec![(103, 1)]);
            second_detected
        };
        let waited = at - detected;
        assert!(waited >= 5 * MS && waited <= 15 * MS, "{waited:?}");
    }
}

#[test]
fn gaps_from_jumps_and_spm_lead_across_the_wrap() {
    let mut h = Harness::new();
    let start = u32::MAX - 1;
    h.data(start, start);
    h.data(2, start); // u32::MAX, 0 and 1 missing
    assert_eq!(h.stats.recovery.gaps_detected, 3);
    h.spm(1, start, 5, Vec::new()); // 3 and 4 sent but never seen: tail loss
    assert_eq!(h.stats.recovery.gaps_detected, 5);
    h.jump(20 * MS);
    let naks = h.naks();
    assert_eq!(naks.len(), 1);
    assert_eq!(nak_ranges(&naks[0]), vec![(u32::MAX, 3), (3, 2)]);
    for seq in [u32::MAX, 0, 1, 3, 4] {
        h.rdata(seq, start);
    }
    let delivered: Vec<Event> = h.take_events().into_iter().skip(1).collect();
    let expected: Vec<Event> = [u32::MAX - 1, u32::MAX, 0, 1, 2, 3, 4]
        .into_iter()
        .map(msg)
        .collect();
    assert_eq!(delivered, expected);
    assert_eq!(h.stats.recovery.repairs_received, 5);
}

#[test]
fn foreign_nak_and_ncf_suppress_our_nak() {
    let mut h = Harness::new();
    h.data(100, 100);
    h.data(103, 100); // 101 and 102 missing
    h.foreign_nak(&[(101, 1)]);
    h.ncf(OTHER, 0, false, 100, &[(102, 1)]);
    assert_eq!(h.stats.recovery.naks_suppressed, 2);
    assert_eq!(h.stats.recovery.ncfs_received, 1);
    h.advance(20 * MS);
    assert!(h.naks().is_empty(), "suppressed: {:?}", h.naks());
    assert_eq!(h.stats.recovery.naks_sent, 0);
    h.rdata(101, 100);
    h.rdata(102, 100);
    assert_eq!(
        h.take_events(),
        vec![joined(), msg(100), msg(101), msg(102), msg(103)]
    );
    h.advance(Duration::from_secs(1));
    assert!(h.naks().is_empty());
}

#[test]
fn suppressed_nak_is_sent_when_the_repair_never_comes() {
    let mut h = Harness::new();
    h.data(100, 100);
    h.data(102, 100);
    h.foreign_nak(&[(101, 1)]);
    h.advance(20 * MS);
    assert!(h.naks().is_empty());
    // Data wait (3·RTT + margin = 31 ms) expires, then a fresh backoff, then our own NAK.
    h.advance(50 * MS);
    let naks = h.naks();
    assert_eq!(naks.len(), 1);
    assert_eq!(nak_ranges(&naks[0]), vec![(101, 1)]);
}

#[test]
fn retries_exhausted_report_the_message_and_delivery_resumes() {
    let mut h = Harness::with(|s| {
        s.nak_ncf_retries = 1;
        s.nak_data_retries = 1;
        s.nak_give_up_after = Duration::ZERO;
    });
    static B: &[u8] = b"bbbbbbbbbbbb";
    h.data(10, 10);
    h.deliver(fragment(11, 10, B, 0, 4));
    h.deliver(fragment(13, 10, B, 8, 4)); // 12 is lost for good
    h.data(14, 10);
    assert_eq!(h.take_events(), vec![joined(), msg(10)]);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.naks().len(), 2, "one NAK and one retry");
    assert_eq!(h.take_events(), vec![lost(11, 13), msg(14)]);
    assert_eq!(h.stats.recovery.unrecoverable_packets, 3);
    assert_eq!(h.stats.recovery.unrecoverable_events, 1);
    // The stream goes on.
    h.data(15, 10);
    assert_eq!(h.take_events(), vec![msg(15)]);
}

#[test]
fn data_retries_are_bounded_too() {
    let mut h = Harness::with(|s| {
        s.nak_ncf_retries = 0;
        s.nak_data_retries = 2;
        s.nak_give_up_after = Duration::ZERO;
    });
    h.data(10, 10);
    h.data(12, 10);
    // The source confirms every NAK at once, but the repair never arrives.
    let mut answered = 0;
    for _ in 0..4_000 {
        h.advance(Duration::from_micros(100));
        let naks = h.naks();
        if naks.len() > answered {
            answered = naks.len();
            h.ncf(ME, naks[answered - 1].timestamp, false, 10, &[(11, 1)]);
        }
    }
    assert_eq!(h.naks().len(), 3, "first NAK and two data retries");
    let events = h.take_events();
    assert_eq!(events[events.len() - 2..], [lost(11, 11), msg(12)]);
}

#[test]
fn ncf_gone_is_unrecoverable_at_once() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(14, 10); // 11..=13 missing
    h.ncf(OTHER, 0, true, 10, &[(11, 2)]);
    assert_eq!(h.take_events(), vec![joined(), msg(10), lost(11, 12)]);
    assert_eq!(h.stats.recovery.unrecoverable_packets, 2);
    h.rdata(13, 10);
    assert_eq!(h.take_events(), vec![msg(13), msg(14)]);
    assert!(h.naks().is_empty());
}

#[test]
fn trailing_edge_passing_a_gap_makes_it_unrecoverable() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(13, 10);
    h.spm(1, 12, 14, Vec::new()); // 11 left the window, 12 may still be repaired
    assert_eq!(h.take_events(), vec![joined(), msg(10), lost(11, 11)]);
    h.data(15, 13); // the data trail passes 12 too (14 now missing)
    assert_eq!(h.take_events(), vec![lost(12, 12), msg(13)]);
    h.rdata(14, 13);
    assert_eq!(h.take_events(), vec![msg(14), msg(15)]);
}

#[test]
fn trail_far_ahead_reports_unseen_range_in_one_event() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.spm(1, 1_000_000, 1_000_000, Vec::new());
    assert_eq!(h.take_events(), vec![joined(), msg(10), lost(11, 999_999)]);
    assert_eq!(h.stats.recovery.unrecoverable_packets, 999_989);
    h.data(1_000_000, 1_000_000);
    assert_eq!(h.take_events(), vec![msg(1_000_000)]);
}

#[test]
fn three_fragments_out_of_order_are_reassembled() {
    let mut h = Harness::new();
    static M: &[u8] = b"one message, three fragments";
    h.deliver(fragment(22, 20, M, 20, 8));
    h.deliver(fragment(20, 20, M, 0, 10));
    assert_eq!(h.take_events(), vec![joined()]);
    h.deliver(fragment(21, 20, M, 10, 10));
    assert_eq!(
        h.take_events(),
        vec![Event::Message {
            source: SourceId(SRC),
            data: Bytes::from_static(M),
        }]
    );
    assert_eq!(
        h.stats.recovery.gaps_detected, 2,
        "20 and 21 were backfilled"
    );
}

#[test]
fn late_join_backfills_a_lost_first_packet() {
    // The receiver was there before the source started; packet 100 (the first) was lost.
    let mut h = Harness::new();
    h.data(101, 100);
    assert_eq!(h.take_events(), vec![joined()]);
    h.jump(20 * MS);
    assert_eq!(nak_ranges(&h.naks()[0]), vec![(100, 1)]);
    h.rdata(100, 100);
    assert_eq!(h.take_events(), vec![msg(100), msg(101)]);
}

#[test]
fn join_far_into_a_stream_starts_at_new_data() {
    let mut h = Harness::with(|s| s.join_backfill_packets = 16);
    h.data(5_000, 100);
    h.spm(1, 100, 5_001, Vec::new());
    h.advance(50 * MS);
    assert!(h.naks().is_empty());
    assert_eq!(h.take_events(), vec![joined(), msg(5_000)]);
    assert_eq!(h.stats.recovery.gaps_detected, 0);

    let mut h = Harness::with(|s| s.join_backfill_packets = 16);
    h.spm(1, 100, 110, Vec::new()); // small window: fetch it all
    assert_eq!(h.stats.recovery.gaps_detected, 10);
    h.jump(20 * MS);
    assert_eq!(nak_ranges(&h.naks()[0]), vec![(100, 10)]);

    let mut h = Harness::with(|s| s.join_backfill_packets = 16);
    h.spm(1, 100, 5_000, Vec::new()); // long window: only new data
    h.data(5_000, 100);
    assert_eq!(h.take_events(), vec![joined(), msg(5_000)]);
    assert_eq!(h.stats.recovery.gaps_detected, 0);
}

#[test]
fn restart_is_reported_and_old_state_dropped() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(12, 10); // 11 missing
    let restarted = StreamId {
        source: SRC,
        instance: 2,
    };
    h.deliver(single(restarted, 500, 500, false));
    assert_eq!(
        h.take_events(),
        vec![
            joined(),
            msg(10),
            lost(11, 11),
            msg(12),
            Event::SourceRestarted {
                source: SourceId(SRC)
            },
            msg(500),
        ]
    );
    // Stragglers of the old incarnation change nothing.
    let out_of_window = h.stats.drops.out_of_window;
    h.deliver(single(STREAM, 13, 10, false));
    h.ncf(ME, 0, true, 10, &[(501, 1)]);
    assert!(h.take_events().is_empty());
    assert_eq!(h.stats.drops.out_of_window, out_of_window + 1);
    h.deliver(single(restarted, 501, 500, false));
    assert_eq!(h.take_events(), vec![msg(501)]);
}

#[test]
fn silent_source_is_released_after_reporting_its_losses() {
    let mut h = Harness::with(|s| {
        s.source_timeout = Duration::from_secs(1);
        s.nak_ncf_retries = 1_000;
    });
    h.data(10, 10);
    h.data(12, 10);
    h.advance(Duration::from_millis(990));
    assert_eq!(h.take_events(), vec![joined(), msg(10)]);
    h.advance(20 * MS);
    assert_eq!(
        h.take_events(),
        vec![
            lost(11, 11),
            msg(12),
            Event::SourceLost {
                source: SourceId(SRC)
            }
        ]
    );
    assert_eq!(h.rx.next_deadline(), None, "nothing left to time");
    assert!(h.rx.peers.is_empty());
    // Heard again: a new stream, which reports what went by while it was gone.
    h.data(40, 40);
    assert_eq!(h.take_events(), vec![joined(), lost(13, 39), msg(40)]);
}

#[test]
fn source_heard_again_resumes_where_it_stopped() {
    let mut h = Harness::with(|s| s.source_timeout = Duration::from_secs(1));
    h.data(10, 10);
    h.data(11, 10);
    h.advance(Duration::from_millis(1_100));
    let lost_event = Event::SourceLost {
        source: SourceId(SRC),
    };
    assert_eq!(
        h.take_events(),
        vec![joined(), msg(10), msg(11), lost_event]
    );
    // Back after a partition, its window still reaching back to 10: 10 and 11 are not
    // delivered again; 12 and 13, sent meanwhile, are fetched.
    h.data(14, 10);
    assert_eq!(h.take_events(), vec![joined()]);
    h.jump(20 * MS);
    assert_eq!(nak_ranges(h.naks().last().unwrap()), vec![(12, 2)]);
    h.rdata(12, 10);
    h.rdata(13, 10);
    h.rdata(10, 10);
    assert_eq!(h.take_events(), vec![msg(12), msg(13), msg(14)]);
    // Another instance under the same id is a new stream from its own start.
    h.advance(Duration::from_millis(1_100));
    h.take_events();
    let other = StreamId {
        source: SRC,
        instance: 9,
    };
    h.deliver(single(other, 3, 2, false));
    h.jump(20 * MS);
    assert_eq!(nak_ranges(h.naks().last().unwrap()), vec![(2, 1)]);
}

#[test]
fn heard_source_is_not_lost() {
    let mut h = Harness::with(|s| s.source_timeout = Duration::from_secs(1));
    h.data(10, 10);
    for spm_seq in 1..=6 {
        h.advance(Duration::from_millis(500));
        h.spm(spm_seq, 10, 11, Vec::new());
    }
    assert_eq!(h.take_events(), vec![joined(), msg(10)]);
    assert_eq!(h.elapsed(), Duration::from_secs(3));
    h.advance(Duration::from_millis(1_001));
    assert_eq!(
        h.take_events(),
        vec![Event::SourceLost {
            source: SourceId(SRC)
        }]
    );
}

#[test]
fn rtt_from_ncf_echo_and_spm_echo() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(12, 10);
    h.jump(20 * MS);
    let nak = h.naks()[0].clone();
    h.advance(3 * MS);
    h.ncf(OTHER, nak.timestamp, false, 10, &[(11, 1)]);
    assert_eq!(
        h.rx.rtt_summary().samples,
        0,
        "an NCF for another receiver is no sample"
    );
    h.ncf(ME, nak.timestamp, false, 10, &[(11, 1)]);
    let summary = h.rx.rtt_summary();
    assert_eq!(summary.sources_measured, 1);
    assert_eq!(summary.samples, 1);
    assert_eq!(summary.min, 3 * MS);
    assert_eq!(summary.max, 3 * MS);

    // A report goes out; the source echoes it in an SPM after holding it 1 ms.
    let (sent_at, report) = h.reports()[0].clone();
    let arrive = 8 * MS;
    h.now = sent_at + arrive;
    let echo = Echo {
        member: ME,
        timestamp: report.timestamp,
        hold_us: 1_000,
    };
    let other = Echo {
        member: OTHER,
        timestamp: 0,
        hold_us: 0,
    };
    h.spm(1, 10, 13, vec![other, echo]);
    let summary = h.rx.rtt_summary();
    assert_eq!(summary.samples, 2);
    // 7 ms sample: 3/4 · 3 ms + 1/4 · 7 ms = 4 ms.
    assert_eq!(summary.min, 4 * MS);
}

#[test]
fn measured_rtt_scales_the_backoff() {
    let mut h = Harness::with(|s| s.initial_rtt = Duration::from_millis(100));
    h.data(10, 10);
    // A fast source: 2 ms RTT measured from an NCF echo.
    h.data(12, 10);
    h.jump(200 * MS);
    let nak = h.naks()[0].clone();
    h.advance(2 * MS);
    h.ncf(ME, nak.timestamp, false, 10, &[(11, 1)]);
    h.rdata(11, 10);
    let before = h.naks().len();
    let detected_at = h.now;
    h.data(14, 10);
    h.advance(10 * MS);
    let naks = h.naks();
    assert_eq!(naks.len(), before + 1, "backoff now within [1 ms, 3 ms]");
    let at = h
        .sent
        .iter()
        .rev()
        .find(|(_, p)| matches!(p, Packet::Nak(_)))
        .unwrap()
        .0;
    assert!(at - detected_at <= 3 * MS, "{:?}", at - detected_at);
}

#[test]
fn reports_carry_position_and_echo_on_a_jittered_cadence() {
    // Alone, with the whole data rate as budget: the configured 1 s interval applies.
    let mut h = Harness::with(|s| {
        s.suppression.group_size = Some(1);
        s.session_share = 1.0;
    });
    h.data(10, 10);
    h.advance(10 * MS);
    let reports = h.reports();
    assert_eq!(
        reports.len(),
        1,
        "the first report comes soon after first contact"
    );
    let (at, first) = &reports[0];
    assert!(*at - h.base >= 5 * MS && *at - h.base <= 10 * MS);
    assert_eq!(first.stream, STREAM);
    assert_eq!(first.reporter, ME);
    assert_eq!(first.timestamp, h.clock.timestamp(*at));
    assert_eq!(first.spm_timestamp_echo, 0);
    assert_eq!(first.delivered_until, SeqNum(11));

    h.spm(4, 10, 11, Vec::new()); // timestamp 1004
    let spm_at = h.now;
    // A packet every 100 ms: about 200 B/s, enough for one 40-byte report a second.
    for seq in 11..111 {
        h.advance(100 * MS);
        h.data(seq, 10);
    }
    let reports = h.reports();
    assert!(
        (10..=12).contains(&reports.len()),
        "{} reports in 10 s",
        reports.len()
    );
    for pair in reports.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(900) && gap <= Duration::from_millis(1100));
    }
    let gaps: Vec<Duration> = reports.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(gaps.iter().any(|g| *g != gaps[0]), "jittered, not lockstep");
    let (at, last) = reports.last().unwrap().clone();
    assert_eq!(last.spm_timestamp_echo, 1004);
    assert_eq!(u128::from(last.spm_hold_us), (at - spm_at).as_micros());
}

/// The session budget: reports stretch with the group and shrink with the data rate.
#[test]
fn reports_stay_within_the_session_share() {
    // 1,000 members, 5 %, 1 kB every 10 ms (100 kB/s): 1,000 reports of 40 bytes plus their
    // 16-byte echoes are 56 kB, over 2.5 kB/s (half of 5 %): one every ~22 s.
    let mut h = Harness::with(|s| s.suppression.group_size = Some(1000));
    h.data(0, 0);
    let chunk = Bytes::from(vec![7u8; 1_000 - wire::HEADER_LEN]);
    for seq in 1..9_000u32 {
        h.advance(10 * MS);
        h.deliver(Data {
            payload: chunk.clone(),
            message_len: chunk.len() as u32,
            ..single(STREAM, seq, 0, false)
        });
    }
    let reports = h.reports();
    let gaps: Vec<Duration> = reports.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(gaps.len() >= 3, "{} reports in 90 s", reports.len());
    // The first report measured no rate yet: the second follows one floor (1 s ± 10 %) later.
    assert!(
        (0.9..=1.1).contains(&gaps[0].as_secs_f64()),
        "{:?}",
        gaps[0]
    );
    for gap in &gaps[1..] {
        let seconds = gap.as_secs_f64();
        assert!((20.1..=24.7).contains(&seconds), "{gap:?} between reports");
    }
    // The source goes idle (SPMs only): nothing to take a share of, reports slow down to the
    // ceiling.
    for spm_seq in 1..=24 {
        h.advance(Duration::from_secs(10));
        h.spm(spm_seq, 0, 6_000, Vec::new());
    }
    let idle = h.reports();
    let gaps: Vec<Duration> = idle.windows(2).map(|p| p[1].0 - p[0].0).collect();
    let last_gap = *gaps.last().unwrap();
    assert!(last_gap >= MAX_REPORT_INTERVAL * 9 / 10, "{last_gap:?}");
    assert!(gaps.iter().all(|gap| *gap <= MAX_REPORT_INTERVAL * 11 / 10));
}

#[test]
fn forged_far_ahead_sequence_does_not_grow_state() {
    let mut h = Harness::with(|s| s.window_packets = 1_000);
    h.data(10, 10);
    h.data(10 + (1 << 30), 10);
    h.data(11 + 1_000, 10); // the window is 11..=1010
    h.spm(1, 10, 10 + 5_000, Vec::new());
    assert_eq!(h.stats.drops.out_of_window, 3);
    assert_eq!(h.stats.recovery.gaps_detected, 0);
    let peer = &h.rx.peers[&SRC];
    assert_eq!(peer.naks.len(), 0);
    assert_eq!(peer.reorder.held_len(), 0);
    // The last position inside the window is accepted.
    h.data(10 + 1_000, 10);
    assert_eq!(h.stats.recovery.gaps_detected, 999);
    h.data(11, 10);
    assert_eq!(h.take_events(), vec![joined(), msg(10), msg(11)]);
}

#[test]
fn many_gaps_stay_cheap_to_schedule() {
    let mut h = Harness::new();
    h.data(0, 0);
    h.data(50_001, 0);
    assert_eq!(h.stats.recovery.gaps_detected, 50_000);
    let deadline = h.rx.next_deadline().unwrap();
    assert!(deadline - h.now <= 15 * MS);
    h.jump(20 * MS);
    let naks = h.naks();
    assert_eq!(naks.len(), 1);
    assert_eq!(nak_ranges(&naks[0]), vec![(1, 50_000)]);
    h.ncf(OTHER, 0, true, 0, &[(1, 50_000)]);
    assert_eq!(h.take_events()[2..], [lost(1, 50_000), msg(50_001)]);
    assert_eq!(h.rx.peers[&SRC].naks.len(), 0);
}

#[test]
fn source_limit_is_enforced() {
    let mut h = Harness::with(|s| s.max_sources = 2);
    for source in [1, 2, 3] {
        let stream = StreamId {
            source,
            instance: 1,
        };
        h.deliver(single(stream, 5, 5, false));
    }
    let joined: Vec<Event> = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::SourceJoined { .. }))
        .collect();
    assert_eq!(joined.len(), 2);
    assert_eq!(h.stats.drops.out_of_window, 1);
    assert_eq!(h.rx.peers.len(), 2);
}

#[test]
fn malformed_edges_are_dropped() {
    let mut h = Harness::new();
    h.data(10, 20); // trail after the packet itself
    h.spm(1, 30, 20, Vec::new()); // trail after lead
    assert_eq!(h.stats.drops.malformed, 2);
    assert!(h.take_events().is_empty());
    assert!(h.rx.peers.is_empty());
}

#[test]
fn ncf_and_nak_for_unknown_streams_are_ignored() {
    let mut h = Harness::new();
    h.ncf(ME, 0, true, 10, &[(5, 1)]);
    h.foreign_nak(&[(5, 1)]);
    assert!(h.rx.peers.is_empty());
    assert!(h.take_events().is_empty());
    assert_eq!(h.rx.next_deadline(), None);
}

#[test]
fn deadline_covers_pending_transmits_and_timers() {
    let mut h = Harness::new();
    h.data(10, 10);
    h.data(12, 10);
    let deadline = h.rx.next_deadline().unwrap();
    let peer = &h.rx.peers[&SRC];
    assert_eq!(deadline, peer.deadline());
    assert_eq!(
        Some(deadline),
        peer.naks.next_deadline().map(|d| d.min(peer.report_at))
    );
    // A timer call queues a NAK; until it is polled the deadline is "now".
    h.now += 20 * MS;
    let now = h.now;
    let mut ctx = Context {
        now,
        clock: &h.clock,
        rng: &mut h.rng,
        stats: &mut h.stats,
    };
    h.rx.handle_timeout(&mut ctx);
    assert_eq!(h.rx.next_deadline(), Some(now));
    while h.rx.poll_transmit(&mut ctx).is_some() {}
    assert!(h.rx.next_deadline().unwrap() > now);
}

/// Property: whatever arrives, in whatever order and however often, the events of a source
/// walk its stream exactly once, in order, each packet either inside a delivered message or
/// inside an `Unrecoverable` range, and every message whose packets all arrived is delivered.
/// Other receivers' reports (multicast) name members of the source's group: the backoff's
/// group size counts them, but not below the prior while first reports are still due.
#[test]
fn foreign_reports_size_the_group_after_the_first_report_round() {
    let mut h = Harness::new();
    h.data(0, 0);
    let report = |reporter: u64, stream: StreamId| Report {
        stream,
        reporter,
        timestamp: 0,
        spm_timestamp_echo: 0,
        spm_hold_us: 0,
        delivered_until: SeqNum(0),
        echoes: Vec::new(),
    };
    let group_size = |h: &Harness| h.rx.peers[&SRC].naks.group_size();
    for reporter in 1..=9u64 {
        h.run(|rx, ctx| rx.handle_foreign_report(ctx, &report(reporter, STREAM)));
    }
    // A report about another stream, or another instance of this one, names nobody here.
    let other_instance = StreamId {
        instance: 2,
        ..STREAM
    };
    h.run(|rx, ctx| rx.handle_foreign_report(ctx, &report(99, other_instance)));
    assert_eq!(group_size(&h), GROUP_SIZE_PRIOR, "first reports still due");
    // Past the first report round, the next packet brings the estimate in: 9 others and me.
    h.advance(backoff::FIRST_REPORT_MAX + test_settings().initial_rtt);
    h.data(1, 0);
    assert_eq!(group_size(&h), 10.0);
}

mod stream_property {
    use super::*;
    use proptest::prelude::*;

    /// One message: its first sequence offset and its fragments' data.
    struct Message {
        first: u32,
        packets: Vec<Data>,
    }

    fn build(base: u32, sizes: &[u8]) -> Vec<Message> {
        let mut messages = Vec::new();
        let mut offset = 0u32;
        for (index, &fragments) in sizes.iter().enumerate() {
            let fragments = u32::from(fragments);
            let len = fragments * 3;
            let bytes: Vec<u8> = (0..len).map(|i| (index as u32 * 7 + i) as u8).collect();
            let bytes = Bytes::from(bytes);
            let packets = (0..fragments)
                .map(|k| Data {
                    stream: STREAM,
                    repair: false,
                    seq: SeqNum(base.wrapping_add(offset + k)),
                    trail: SeqNum(base),
                    message_len: len,
                    fragment_offset: k * 3,
                    payload: bytes.slice((k * 3) as usize..(k * 3 + 3) as usize),
                    fec_index: None,
                })
                .collect();
            messages.push(Message {
                first: offset,
                packets,
            });
            offset += fragments;
        }
        messages
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn events_cover_the_stream_once_in_order(
            base in prop_oneof![Just(u32::MAX - 20), any::<u32>()],
            sizes in proptest::collection::vec(1u8..4, 1..25),
            picks in proptest::collection::vec((any::<u16>(), 0u64..600), 0..120),
            repair_every in 0usize..4,
        ) {
            let messages = build(base, &sizes);
            let all: Vec<&Data> = messages.iter().flat_map(|m| m.packets.iter()).collect();
            let total = all.len() as u32;
            let mut h = Harness::new();
            let mut arrived = vec![false; all.len()];
            // The first packet always arrives first, so the stream starts at `base`.
            h.deliver(all[0].clone());
            arrived[0] = true;
            // Arrivals span at most 72 ms, less than the four NAK rounds (over 140 ms) it takes to
            // give up on a packet, so "arrived" below means "arrived in time".
            for (i, &(pick, wait_us)) in picks.iter().enumerate() {
                let k = usize::from(pick) % all.len();
                let mut data = all[k].clone();
                data.repair = repair_every > 0 && i % (repair_every + 1) == 0;
                h.deliver(data);
                arrived[k] = true;
                h.advance(Duration::from_micros(wait_us));
            }
            // Tail loss is revealed by the source's leading edge; then no more repairs come.
            h.spm(1, base, base.wrapping_add(total), Vec::new());
            h.advance(Duration::from_secs(20));

            let mut cursor = 0u32;
            let mut delivered = Vec::new();
            for event in h.take_events() {
                match event {
                    Event::SourceJoined { .. } => {}
                    Event::Message { data, .. } => {
                        let message = messages.iter().find(|m| m.first == cursor);
                        let message = message.expect("a delivered message starts at the cursor");
                        let expected: Vec<u8> = message
                            .packets
                            .iter()
                            .flat_map(|p| p.payload.iter().copied())
                            .collect();
                        prop_assert_eq!(&data[..], &expected[..]);
                        delivered.push(message.first);
                        cursor += message.packets.len() as u32;
                    }
                    Event::Unrecoverable { range, .. } => {
                        prop_assert_eq!(range.first, base.wrapping_add(cursor), "loss starts at the cursor");
                        cursor += range.len() as u32;
                        prop_assert!(cursor <= total);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(cursor, total, "every packet accounted for");
            // A message whose packets all arrived is never reported lost.
            let mut index = 0;
            for message in &messages {
                let complete = (0..message.packets.len()).all(|k| arrived[index + k]);
                if complete {
                    prop_assert!(
                        delivered.contains(&message.first),
                        "message at offset {} arrived whole but was not delivered",
                        message.first
                    );
                }
                index += message.packets.len();
            }
        }
    }
}

/// Property: arbitrary, even hostile, packets never panic the receiver (its internal
/// `debug_assert`s included), never grow its state past the window, and never leave it
/// without a deadline while it follows a source.
mod chaos_property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Data {
            instance: u32,
            seq: i32,
            trail_back: u16,
            message_len: u16,
            offset: u16,
            len: u8,
            repair: bool,
        },
        Spm {
            spm_seq: u8,
            trail: i32,
            lead_ahead: u16,
            echo: bool,
        },
        Ncf {
            gone: bool,
            mine: bool,
            trail: i32,
            ranges: Vec<(i32, u16)>,
        },
        Nak {
            ranges: Vec<(i32, u16)>,
        },
        Wait {
            micros: u32,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let ranges = || proptest::collection::vec((-50i32..300, 1u16..400), 1..4);
        prop_oneof![
            4 => (1u32..3, -50i32..300, 0u16..40, 0u16..40, 0u16..40, 0u8..20, any::<bool>())
                .prop_map(|(instance, seq, trail_back, message_len, offset, len, repair)| {
                    Op::Data { instance, seq, trail_back, message_len, offset, len, repair }
                }),
            1 => (any::<u8>(), -50i32..300, 0u16..500, any::<bool>())
                .prop_map(|(spm_seq, trail, lead_ahead, echo)| Op::Spm { spm_seq, trail, lead_ahead, echo }),
            1 => (any::<bool>(), any::<bool>(), -50i32..300, ranges())
                .prop_map(|(gone, mine, trail, ranges)| Op::Ncf { gone, mine, trail, ranges }),
            1 => ranges().prop_map(|ranges| Op::Nak { ranges }),
            2 => (0u32..200_000).prop_map(|micros| Op::Wait { micros }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn hostile_input_keeps_state_bounded(
            base in prop_oneof![Just(u32::MAX - 100), any::<u32>()],
            ops in proptest::collection::vec(op(), 1..150),
        ) {
            let window = 256;
            let mut h = Harness::with(|s| {
                s.window_packets = window;
                s.max_message_len = 64;
                s.source_timeout = Duration::from_secs(2);
            });
            let at = |delta: i32| SeqNum(base.wrapping_add_signed(delta));
            for op in ops {
                match op {
                    Op::Data { instance, seq, trail_back, message_len, offset, len, repair } => {
                        let stream = StreamId { source: SRC, instance };
                        h.deliver(Data {
                            stream,
                            repair,
                            seq: at(seq),
                            trail: at(seq - i32::from(trail_back)),
                            message_len: u32::from(message_len),
                            fragment_offset: u32::from(offset),
                            payload: Bytes::from(vec![7u8; usize::from(len)]),
                            fec_index: None,
                        });
                    }
                    Op::Spm { spm_seq, trail, lead_ahead, echo } => {
                        let echoes = if echo {
                            vec![Echo { member: ME, timestamp: 5, hold_us: 3 }]
                        } else {
                            Vec::new()
                        };
                        let lead = trail + i32::from(lead_ahead);
                        h.spm(u32::from(spm_seq), at(trail).0, at(lead).0, echoes);
                    }
                    Op::Ncf { gone, mine, trail, ranges } => {
                        let ranges: Vec<(u32, u16)> =
                            ranges.iter().map(|&(first, count)| (at(first).0, count)).collect();
                        let requester = if mine { ME } else { OTHER };
                        h.ncf(requester, 17, gone, at(trail).0, &ranges);
                    }
                    Op::Nak { ranges } => {
                        let ranges: Vec<(u32, u16)> =
                            ranges.iter().map(|&(first, count)| (at(first).0, count)).collect();
                        h.foreign_nak(&ranges);
                    }
                    Op::Wait { micros } => h.advance(Duration::from_micros(u64::from(micros))),
                }
                for peer in h.rx.peers.values() {
                    let tracked = peer.edge.lead() - peer.reorder.next();
                    prop_assert!(tracked <= u64::from(window), "{tracked} positions tracked");
                    prop_assert!(peer.naks.len() as u64 <= tracked);
                    prop_assert!(peer.reorder.held_len() as u64 <= tracked);
                }
                prop_assert_eq!(h.rx.next_deadline().is_some(), !h.rx.peers.is_empty());
            }
            // Left alone, every source is eventually released and every timer stops.
            h.advance(Duration::from_secs(5));
            prop_assert!(h.rx.peers.is_empty());
            prop_assert_eq!(h.rx.next_deadline(), None);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Peer repair

const REPAIRER: u64 = 0xCCCC;

impl Harness {
    fn peer_repairs(&self) -> Vec<(Instant, PeerRdata)> {
        self.sent
            .iter()
            .filter_map(|(at, packet)| match packet {
                Packet::PeerRdata(peer) => Some((*at, peer.clone())),
                _ => None,
            })
            .collect()
    }

    fn peer_rdata(&mut self, stream: StreamId, seq: u32, requester: u64, echo: u32, hold_us: u32) {
        let peer = PeerRdata {
            repairer: REPAIRER,
            requester,
            timestamp_echo: echo,
            hold_us,
            data: single(stream, seq, 1, true),
        };
        self.run(|rx, ctx| rx.handle_peer_rdata(ctx, peer));
    }

    fn heard_report(&mut self, reporter: u64, timestamp: u32, echoes: Vec<Echo>) {
        let report = Report {
            stream: STREAM,
            reporter,
            timestamp,
            spm_timestamp_echo: 0,
            spm_hold_us: 0,
            delivered_until: SeqNum(1),
            echoes,
        };
        self.run(|rx, ctx| rx.handle_report_heard(ctx, &report));
    }
}

#[test]
fn a_cached_packet_answers_a_foreign_nak_after_the_repair_timer() {
    let mut h = Harness::with(|s| s.peer_repair = true);
    for seq in 1..=5 {
        h.data(seq, 1);
    }
    // No distance to OTHER yet: the repair is left to the source.
    h.foreign_nak(&[(3, 1), (9, 1)]);
    h.advance(50 * MS);
    assert!(h.peer_repairs().is_empty());
    // OTHER 1 ms away, the source 5 ms (initial RTT 10 ms): surely faster, so this receiver
    // answers, after D1..D1+D2 = 2..4 distances times the starting factor 2.
    let nak_at = h.now;
    h.rx.distances.sample(h.now, OTHER, 2 * MS);
    h.foreign_nak(&[(3, 1), (9, 1)]);
    h.advance(3 * MS);
    assert!(h.peer_repairs().is_empty());
    h.advance(6 * MS);
    let repairs = h.peer_repairs();
    assert_eq!(repairs.len(), 1, "only the cached packet 3: {repairs:?}");
    let (at, peer) = &repairs[0];
    let waited = *at - nak_at;
    assert!((4 * MS..=8 * MS).contains(&waited), "{waited:?}");
    assert_eq!((peer.repairer, peer.requester), (ME, OTHER));
    assert_eq!(peer.timestamp_echo, 1, "the NAK's timestamp");
    assert_eq!(u128::from(peer.hold_us), waited.as_micros());
    assert_eq!(peer.data, single(STREAM, 3, 1, true));
    assert_eq!(h.stats.recovery.peer_repairs_sent, 1);
    // The same NAK again, within the hold-down: not answered twice.
    h.foreign_nak(&[(3, 1)]);
    h.advance(30 * MS);
    assert_eq!(h.peer_repairs().len(), 1);
}

#[test]
fn the_sources_ncf_defers_and_a_heard_repair_suppresses_a_peer_repair() {
    let mut h = Harness::with(|s| s.peer_repair = true);
    for seq in 1..=5 {
        h.data(seq, 1);
    }
    h.rx.distances.sample(h.now, OTHER, 2 * MS);
    h.foreign_nak(&[(3, 2)]);
    h.ncf(OTHER, 1, false, 1, &[(3, 1)]);
    h.rdata(4, 1);
    h.advance(50 * MS);
    assert!(h.peer_repairs().is_empty());
    assert_eq!(h.stats.recovery.repairs_deferred, 1);
    assert_eq!(h.stats.recovery.repairs_suppressed, 1);
}

#[test]
fn a_peer_repair_fills_a_gap_measures_the_repairer_and_starts_no_stream() {
    let mut h = Harness::with(|s| s.peer_repair = true);
    let unknown = StreamId {
        source: 0x7777,
        instance: 1,
    };
    h.peer_rdata(unknown, 1, ME, 0, 0);
    assert!(h.take_events().is_empty(), "a peer's copy starts no stream");
    assert_eq!(h.stats.drops.out_of_window, 1);
    h.data(1, 1);
    h.data(3, 1);
    h.advance(60 * MS);
    let nak = h.naks().pop().expect("the gap is NAKed");
    assert_eq!(nak_ranges(&nak), vec![(2, 1)]);
    h.take_events();
    // The repair comes back 5 ms after the NAK left, the repairer having held it 1 ms.
    let nak_at = h.base + Duration::from_micros(u64::from(nak.timestamp));
    assert!(nak_at <= h.now);
    h.now = nak_at.max(h.now) + 5 * MS;
    let since = h.now - nak_at;
    let heard_source = h.rx.peers[&SRC].last_heard;
    h.peer_rdata(STREAM, 2, ME, nak.timestamp, 1_000);
    assert_eq!(h.take_events(), vec![msg(2), msg(3)]);
    assert_eq!(
        h.rx.peers[&SRC].last_heard, heard_source,
        "a peer's copy does not prove the source alive"
    );
    assert_eq!(
        h.rx.distances.distance(REPAIRER),
        Some((since - MS) / 2),
        "half of the round trip less the hold"
    );
}

#[test]
fn reports_echo_other_members_reports_only_with_peer_repair() {
    for peer_repair in [false, true] {
        let mut h = Harness::with(|s| s.peer_repair = peer_repair);
        h.data(1, 1);
        h.heard_report(42, 777, Vec::new());
        h.advance(3 * MS);
        h.advance(Duration::from_secs(2));
        let reports = h.reports();
        let echoed: Vec<Echo> = reports.iter().flat_map(|(_, r)| r.echoes.clone()).collect();
        if peer_repair {
            assert_eq!(echoed.len(), 1, "echoed once: {reports:?}");
            assert_eq!((echoed[0].member, echoed[0].timestamp), (42, 777));
            let (at, _) = reports.iter().find(|(_, r)| !r.echoes.is_empty()).unwrap();
            assert_eq!(u128::from(echoed[0].hold_us), (*at - h.base).as_micros());
        } else {
            assert!(echoed.is_empty());
            assert!(h.rx.distances.distance(42).is_none());
        }
        // Peer repair off: a foreign NAK is never answered.
        h.foreign_nak(&[(1, 1)]);
        h.advance(100 * MS);
        assert!(h.peer_repairs().is_empty() || peer_repair);
    }
}
