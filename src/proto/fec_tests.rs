//! FEC end to end through whole [`Session`]s: one source and some receivers on a lossless,
//! zero-delay in-memory group where each test drops the datagrams it names, so every assertion
//! is about the protocol (blocks, PARITY, parity NAKs, silent receivers), not about chance.

use super::source::test_support::base_instant;
use super::{Event, Session};
use crate::config::Settings;
use crate::wire::{self, Data, Packet, ParityNak, SeqRange};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Who gets a datagram: `Some(receiver index)`, or `None` for the source.
type Dropper = Box<dyn FnMut(Option<usize>, &Packet) -> bool>;

struct Group {
    source: Session,
    receivers: Vec<Session>,
    now: Instant,
    /// Every datagram sent: sender (None = source) and the decoded packet.
    sent: Vec<(Option<usize>, Packet)>,
    events: Vec<Vec<Event>>,
    drop: Dropper,
}

fn addr() -> SocketAddr {
    "127.0.0.1:4000".parse().expect("address")
}

impl Group {
    fn new(source: Settings, receivers: Vec<Settings>, drop: Dropper) -> Group {
        let now = base_instant();
        let count = receivers.len();
        Group {
            source: Session::new(source, 1, now),
            receivers: receivers
                .into_iter()
                .enumerate()
                .map(|(i, settings)| Session::new(settings, 100 + i as u64, now))
                .collect(),
            now,
            sent: Vec::new(),
            events: vec![Vec::new(); count],
            drop,
        }
    }

    fn send(&mut self, messages: u32) {
        for i in 0..messages {
            let data = Bytes::from(format!("message {i:04} ").repeat(1 + i as usize % 7));
            self.source.send(self.now, data).expect("send accepted");
        }
    }

    /// Runs until `end`: every datagram reaches every other member at once unless dropped.
    fn run_until(&mut self, end: Instant) {
        for _ in 0..1_000_000 {
            let mut moved = false;
            for sender in std::iter::once(None).chain((0..self.receivers.len()).map(Some)) {
                let member = match sender {
                    None => &mut self.source,
                    Some(i) => &mut self.receivers[i],
                };
                // One datagram per member per pass, so members interleave as on a network.
                if let Some(transmit) = member.poll_transmit(self.now) {
                    moved = true;
                    let packet = wire::decode(transmit.payload.clone()).expect("decodable");
                    self.sent.push((sender, packet.clone()));
                    if sender.is_some() && !(self.drop)(None, &packet) {
                        self.source
                            .handle_datagram(self.now, addr(), transmit.payload.clone());
                    }
                    for to in 0..self.receivers.len() {
                        if Some(to) != sender && !(self.drop)(Some(to), &packet) {
                            self.receivers[to].handle_datagram(
                                self.now,
                                addr(),
                                transmit.payload.clone(),
                            );
                        }
                    }
                }
            }
            for (i, receiver) in self.receivers.iter_mut().enumerate() {
                while let Some(event) = receiver.poll_event() {
                    self.events[i].push(event);
                }
            }
            if moved {
                continue;
            }
            let next = std::iter::once(self.source.poll_timeout())
                .chain(self.receivers.iter().map(Session::poll_timeout))
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.source.handle_timeout(self.now);
                    for receiver in &mut self.receivers {
                        receiver.handle_timeout(self.now);
                    }
                }
                _ => return,
            }
        }
        panic!("the group never went quiet");
    }

    fn messages(&self, receiver: usize) -> usize {
        let events = &self.events[receiver];
        events
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count()
    }

    fn lost(&self, receiver: usize) -> u64 {
        self.events[receiver]
            .iter()
            .map(|e| match e {
                Event::Unrecoverable { range, .. } => range.len(),
                _ => 0,
            })
            .sum()
    }

    /// Every datagram sent that `pick` selects, in order.
    fn sent_of<'a, T>(&'a self, pick: impl Fn(&'a Packet) -> Option<&'a T>) -> Vec<&'a T> {
        self.sent.iter().filter_map(|(_, p)| pick(p)).collect()
    }

    fn parity_sent(&self) -> Vec<(u32, u8, u8)> {
        self.sent
            .iter()
            .filter_map(|(_, p)| match p {
                Packet::Parity(parity) => Some((parity.block.0, parity.k, parity.index)),
                _ => None,
            })
            .collect()
    }
}

fn fec(k: u8, p: u8) -> Settings {
    Settings {
        fec: Some((k, p)),
        rate_limit_bps: None,
        ..Settings::default()
    }
}

fn plain() -> Settings {
    Settings {
        rate_limit_bps: None,
        ..Settings::default()
    }
}

/// Drops ODATA at stream offsets `lost` (counted from the first ODATA) to every receiver.
fn drop_odata(lost: &'static [u32]) -> Dropper {
    let mut first = None;
    Box::new(move |to, packet| match packet {
        Packet::Data(data) if !data.repair && to.is_some() => {
            let first = *first.get_or_insert(data.seq.0);
            lost.contains(&data.seq.0.wrapping_sub(first))
        }
        _ => false,
    })
}

#[test]
fn proactive_parity_rebuilds_losses_without_any_nak() {
    // Blocks of 8 with 2 Reed-Solomon parities: two losses in block 0, one in block 1.
    let mut group = Group::new(fec(8, 2), vec![plain()], drop_odata(&[2, 5, 9]));
    group.send(16);
    group.run_until(group.now + 200 * MS);
    assert_eq!(group.messages(0), 16);
    let rx = group.receivers[0].stats().recovery;
    assert_eq!(
        (rx.blocks_recovered, rx.packets_recovered, rx.parity_used),
        (2, 3, 3)
    );
    assert_eq!(rx.naks_sent, 0, "{rx:?}");
    let tx = group.source.stats().recovery;
    assert_eq!(
        (tx.repairs_sent, tx.parity_sent_proactive, tx.blocks_sent),
        (0, 4, 2)
    );
    // p = 2: Reed-Solomon parities 1 and 2 (any two losses), never the XOR parity alone.
    let indices: Vec<u8> = group.parity_sent().iter().map(|p| p.2).collect();
    assert_eq!(indices, vec![1, 2, 1, 2]);
}

#[test]
fn a_parity_nak_draws_exactly_the_missing_count_of_new_parity() {
    // No proactive parity: three losses in block 0 cost one parity NAK and three parities.
    let mut group = Group::new(fec(8, 0), vec![plain()], drop_odata(&[1, 3, 4]));
    group.send(16);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!(group.messages(0), 16);
    let rx = group.receivers[0].stats().recovery;
    assert_eq!(rx.parity_naks_sent, 1, "{rx:?}");
    assert_eq!((rx.blocks_recovered, rx.packets_recovered), (1, 3));
    let tx = group.source.stats().recovery;
    assert_eq!(
        (tx.parity_sent_on_demand, tx.repairs_sent),
        (3, 0),
        "{tx:?}"
    );
    let naks: Vec<&ParityNak> = group.sent_of(|p| match p {
        Packet::ParityNak(nak) => Some(nak),
        _ => None,
    });
    assert_eq!(naks[0].blocks.len(), 1);
    assert_eq!(naks[0].blocks[0].count, 3);
    // The PARITY_NCF ("3 coming for this block") leaves before any parity.
    let ncf_at = group.sent.iter().position(|(_, p)| match p {
        Packet::ParityNcf(ncf) => ncf.ranges[0].count == 3,
        _ => false,
    });
    let parity_at = group
        .sent
        .iter()
        .position(|(_, p)| matches!(p, Packet::Parity(_)));
    assert!(ncf_at.is_some() && ncf_at < parity_at, "PARITY_NCF first");
}

#[test]
fn a_single_loss_is_repaired_by_the_xor_parity_and_more_by_new_reed_solomon_indices() {
    // Receiver 0 misses one packet of block 0, receiver 1 two others: the one-loss request is
    // answered with the XOR parity, the two-loss one with Reed-Solomon parities never sent.
    let mut first = None;
    let drop: Dropper = Box::new(move |to, packet| match (to, packet) {
        (Some(to), Packet::Data(data)) if !data.repair => {
            let offset = data.seq.0.wrapping_sub(*first.get_or_insert(data.seq.0));
            (to == 0 && offset == 2) || (to == 1 && (offset == 4 || offset == 6))
        }
        _ => false,
    });
    let mut group = Group::new(fec(8, 0), vec![plain(), plain()], drop);
    group.send(8);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!((group.messages(0), group.messages(1)), (8, 8));
    let mut indices: Vec<u8> = group.parity_sent().iter().map(|p| p.2).collect();
    indices.sort_unstable();
    indices.dedup();
    let sent = group.parity_sent().len();
    assert_eq!(sent, indices.len(), "no parity index sent twice");
    assert!(
        sent <= 3,
        "at most the XOR parity and two Reed-Solomon ones: {indices:?}"
    );
    assert_eq!(group.source.stats().recovery.repairs_sent, 0);
}

#[test]
fn the_flush_timer_closes_a_short_block_and_parity_advertises_its_k() {
    let mut group = Group::new(fec(8, 1), vec![plain()], drop_odata(&[10]));
    group.send(11);
    group.run_until(group.now + 200 * MS);
    assert_eq!(group.messages(0), 11);
    let parity = group.parity_sent();
    // Block 0 full (k = 8), block 1 closed by the flush with the 3 packets it had; p = 1 sends
    // the XOR parity (index 0), which rebuilt the one loss of the short block.
    assert_eq!(
        parity.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(),
        vec![(8, 0), (3, 0)]
    );
    assert_eq!(
        parity[1].0.wrapping_sub(parity[0].0),
        8,
        "block 1 starts 8 after block 0"
    );
    let rx = group.receivers[0].stats().recovery;
    assert_eq!((rx.blocks_recovered, rx.naks_sent), (1, 0));
}

#[test]
fn a_silent_receiver_sends_nothing_and_reports_what_parity_could_not_rebuild() {
    let silent = Settings {
        silent: true,
        nak_give_up_after: 50 * MS,
        ..plain()
    };
    // Block 0 loses two packets (one XOR parity cannot rebuild them), block 1 loses one.
    let mut group = Group::new(fec(8, 1), vec![silent], drop_odata(&[1, 2, 12]));
    group.send(16);
    group.run_until(group.now + 2_000 * MS);
    let stats = group.receivers[0].stats();
    assert_eq!(
        stats.tx.total().packets,
        0,
        "a silent receiver sends nothing: {stats:?}"
    );
    assert_eq!(stats.recovery.blocks_recovered, 1);
    assert_eq!(
        group.lost(0),
        2,
        "the two packets of block 0 are reported, not skipped"
    );
    assert_eq!(group.messages(0), 14);
}

#[test]
fn a_parity_nak_asking_enough_suppresses_the_same_request_elsewhere() {
    // Both receivers miss the same two packets; one parity NAK (for 2) serves both.
    let mut group = Group::new(fec(8, 0), vec![plain(), plain()], drop_odata(&[3, 5]));
    group.send(8);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!((group.messages(0), group.messages(1)), (8, 8));
    let parity_naks: u64 = group
        .receivers
        .iter()
        .map(|r| r.stats().recovery.parity_naks_sent)
        .sum();
    assert_eq!(
        parity_naks, 1,
        "the second receiver heard the first's parity NAK"
    );
    assert_eq!(group.source.stats().recovery.parity_sent_on_demand, 2);
}

#[test]
fn datagrams_with_fec_fit_max_datagram() {
    let settings = Settings {
        max_datagram: 600,
        ..fec(4, 2)
    };
    let mut group = Group::new(settings, vec![plain()], drop_odata(&[]));
    group
        .source
        .send(group.now, Bytes::from(vec![7u8; 5_000]))
        .expect("send accepted");
    group.run_until(group.now + 200 * MS);
    assert_eq!(group.messages(0), 1);
    let largest = group
        .sent
        .iter()
        .map(|(_, p)| p.encoded_len())
        .max()
        .unwrap_or(0);
    assert!(
        largest <= 600,
        "a {largest}-byte datagram exceeds max_datagram"
    );
    assert!(group.parity_sent().len() >= 2);
}

#[test]
fn a_parity_nak_for_a_block_the_source_no_longer_knows_is_ignored() {
    let mut group = Group::new(fec(8, 0), vec![plain()], drop_odata(&[]));
    group.send(8);
    group.run_until(group.now + 200 * MS);
    let stream = group
        .sent
        .iter()
        .find_map(|(_, p)| match p {
            Packet::Data(data) => Some(data.stream),
            _ => None,
        })
        .expect("data sent");
    let bogus = Packet::ParityNak(ParityNak {
        stream,
        requester: 77,
        timestamp: 0,
        blocks: vec![SeqRange {
            first: wire::SeqNum(12345),
            count: 200,
        }],
    });
    let now = group.now;
    group.source.handle_datagram(now, addr(), bogus.to_bytes());
    assert!(
        group.source.poll_transmit(now).is_none(),
        "no NCF, no parity"
    );
    assert_eq!(group.source.stats().drops.out_of_window, 1);
}

/// Messages of one receiver, in delivery order.
fn delivered(group: &Group, receiver: usize) -> Vec<Bytes> {
    group.events[receiver]
        .iter()
        .filter_map(|e| match e {
            Event::Message { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Parity indices the source sent, sorted.
fn sorted_parity_indices(group: &Group) -> Vec<u8> {
    let mut indices: Vec<u8> = group.parity_sent().iter().map(|p| p.2).collect();
    indices.sort_unstable();
    indices
}

/// The messages [`Group::send`] sends, in order.
fn sent_messages(count: u32) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(format!("message {i:04} ").repeat(1 + i as usize % 7)))
        .collect()
}

/// `fec(8, 0)` (m = 4 RS parities plus the XOR parity: 5 symbols) with block 0 losing `lost`
/// at the receiver: everything is delivered in order, each parity goes out once after one
/// parity NAK, and some packets come back as RDATA.
fn falls_back_to_rdata(lost: &'static [u32]) {
    let mut group = Group::new(fec(8, 0), vec![plain()], drop_odata(lost));
    group.send(16);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!(delivered(&group, 0), sent_messages(16));
    let (tx, rx) = (
        group.source.stats().recovery,
        group.receivers[0].stats().recovery,
    );
    assert!(tx.repairs_sent > 0, "{tx:?}");
    assert_eq!(
        (tx.parity_sent_on_demand, rx.parity_naks_sent),
        (5, 1),
        "{rx:?}"
    );
    assert_eq!(sorted_parity_indices(&group), vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_block_missing_more_than_parity_can_rebuild_falls_back_to_rdata() {
    // Six losses are beyond any parity. The receiver, which has seen no PARITY yet and so
    // does not know m, asks for 6; the PARITY_NCF promises the 5 that exist, which tells it
    // the parity is exhausted, and it asks for packets selectively.
    falls_back_to_rdata(&[0, 1, 2, 4, 5, 7]);
}

#[test]
fn five_losses_with_a_singular_xor_combination_fall_back_to_rdata() {
    // Five losses, one more than m: parity 0..=4 would rebuild them were the system not
    // singular — for this pattern the XOR parity depends on the four RS ones. The receiver
    // then needs one more parity, knows from the PARITY headers that none is left (RS index
    // 4 = m seen, the XOR parity held), and asks for packets selectively.
    falls_back_to_rdata(&[0, 2, 3, 5, 6]);
}

#[test]
fn parity_running_out_falls_back_to_rdata_without_resending_parity() {
    // Three losses in block 0, and the receiver also loses the first three on-demand
    // PARITY. A later request for 3 finds 2 left: the PARITY_NCF promises 2 (not 3, and
    // nothing already sent is sent again), so the receiver knows the parity is exhausted and
    // asks for packets selectively.
    let mut first = None;
    let mut parity_seen = 0;
    let drop: Dropper = Box::new(move |to, packet| match packet {
        Packet::Data(data) if !data.repair && to.is_some() => {
            let offset = data.seq.0.wrapping_sub(*first.get_or_insert(data.seq.0));
            [1, 3, 6].contains(&offset)
        }
        Packet::Parity(_) if to.is_some() => {
            parity_seen += 1;
            parity_seen <= 3
        }
        _ => false,
    });
    let mut group = Group::new(fec(8, 0), vec![plain()], drop);
    group.send(8);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!(delivered(&group, 0), sent_messages(8));
    assert_eq!(sorted_parity_indices(&group), vec![0, 1, 2, 3, 4]);
    let promised: Vec<u16> = group
        .sent_of(|p| match p {
            Packet::ParityNcf(ncf) => Some(ncf),
            _ => None,
        })
        .iter()
        .map(|ncf| ncf.ranges[0].count)
        .collect();
    assert_eq!(promised.last(), Some(&2), "{promised:?}");
    assert!(group.source.stats().recovery.repairs_sent > 0);
    // The NAK after the short promise is selective.
    let last_nak = group.sent.iter().rev().find_map(|(who, p)| match p {
        Packet::Nak(_) if who.is_some() => Some("selective"),
        Packet::ParityNak(_) => Some("parity"),
        _ => None,
    });
    assert_eq!(last_nak, Some("selective"));
}

#[test]
fn a_small_flush_closed_block_is_repaired_selectively() {
    // Block 1 holds the 3 packets the flush timer closed it with; its one loss is asked for
    // as a packet (a block under 4 gains nothing from parity), and delivery stays in order.
    let mut group = Group::new(fec(8, 0), vec![plain()], drop_odata(&[9]));
    group.send(11);
    group.run_until(group.now + 2_000 * MS);
    assert_eq!(delivered(&group, 0), sent_messages(11));
    let tx = group.source.stats().recovery;
    assert_eq!(
        (tx.repairs_sent, tx.parity_sent_on_demand),
        (1, 0),
        "{tx:?}"
    );
    assert_eq!(group.receivers[0].stats().recovery.parity_naks_sent, 0);
}

#[test]
fn malformed_and_inconsistent_parity_is_counted_dropped_and_the_stream_still_completes() {
    // Block 0 of fec(8, 0) loses one packet at the receiver; before its NAK goes out, the
    // receiver is fed a PARITY the wire rejects (index above m), PARITY the wire accepts but
    // the block cannot have (m = 255, a symbol too short for its packets), and one of the
    // right shape with garbage contents, which decodes to an impossible packet.
    let mut group = Group::new(fec(8, 0), vec![plain()], drop_odata(&[3]));
    group.send(8);
    group.run_until(group.now);
    let data: Vec<&Data> = group.sent_of(|p| match p {
        Packet::Data(data) => Some(data),
        _ => None,
    });
    assert_eq!(data.len(), 8, "every ODATA sent, no repair yet");
    let (stream, block, trail) = (data[0].stream, data[0].seq, data[0].trail);
    let longest = data.iter().map(|d| d.payload.len()).max().unwrap_or(0);
    let symbol_len = crate::proto::fec::symbol_len_for(8 + longest);
    let forged = |m: u8, len: usize| {
        Packet::Parity(wire::Parity {
            stream,
            block,
            trail,
            k: 8,
            m,
            index: 0,
            symbol: Bytes::from(vec![0xFF; len]),
        })
        .to_bytes()
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/packets");
    let index_above_m = std::fs::read(dir.join("malformed_parity_index.bin")).expect("sample");
    let now = group.now;
    let receiver = &mut group.receivers[0];
    let mut malformed = Vec::new();
    for datagram in [
        Bytes::from(index_above_m),
        forged(255, symbol_len),
        forged(4, 2),
        forged(4, symbol_len),
    ] {
        receiver.handle_datagram(now, addr(), datagram);
        malformed.push(receiver.stats().drops.malformed);
    }
    assert_eq!(malformed, vec![1, 2, 3, 4], "each bad PARITY counted once");
    assert_eq!(
        receiver.stats().recovery.packets_recovered,
        0,
        "nothing made up"
    );
    group.run_until(group.now + 2_000 * MS);
    assert_eq!(group.messages(0), 8);
    assert_eq!(group.lost(0), 0);
    // The block was given up for parity: its packet came back selectively.
    assert!(group.source.stats().recovery.repairs_sent > 0);
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever FEC shape and loss: every message arrives intact and in order (rebuilt
        /// fragments included), nothing is reported lost, and no datagram exceeds
        /// `max_datagram`.
        #[test]
        fn fec_delivers_every_message_whole_under_random_loss(
            k in 2u8..20,
            p in 0u8..4,
            loss_pct in 0u32..25,
            seed in any::<u64>(),
            sizes in proptest::collection::vec(0usize..2_500, 1..40),
        ) {
            let source = Settings { max_datagram: 600, ..fec(k, p) };
            let mut rng = SmallRng::seed_from_u64(seed);
            // Receivers lose ODATA and PARITY; NAKs, NCFs and repairs get through, so the
            // stream must complete.
            let drop: Dropper = Box::new(move |to, packet| {
                to.is_some()
                    && matches!(packet, Packet::Parity(_) | Packet::Data(Data { repair: false, .. }))
                    && rng.random_range(0..100) < loss_pct
            });
            let mut group = Group::new(source, vec![plain(), plain()], drop);
            let sent: Vec<Bytes> = sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| Bytes::from((0..len).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>()))
                .collect();
            for message in &sent {
                group.source.send(group.now, message.clone()).expect("send accepted");
            }
            group.run_until(group.now + 5_000 * MS);
            for receiver in 0..2 {
                let got: Vec<&Bytes> = group.events[receiver]
                    .iter()
                    .filter_map(|e| match e {
                        Event::Message { data, .. } => Some(data),
                        _ => None,
                    })
                    .collect();
                prop_assert_eq!(got, sent.iter().collect::<Vec<_>>());
                prop_assert_eq!(group.lost(receiver), 0);
            }
            let largest = group.sent.iter().map(|(_, p)| p.encoded_len()).max().unwrap_or(0);
            prop_assert!(largest <= 600);
        }
    }
}
