//! Tests of the simulator itself, driving a deliberately simple member ([`FloodMember`]: no
//! repair, one datagram per message) whose faults can be switched on, so that every oracle is
//! shown to pass good runs and to catch the fault it exists for.

use super::*;
use crate::error::SendError;
use crate::proto::{Event, LostRange, SourceId};
use crate::stats::Stats;
use std::collections::{HashMap, VecDeque};

/// Behaviour switches of [`FloodMember`].
#[derive(Clone, Copy, Debug, Default)]
struct Knobs {
    /// Report gaps (and a tail announced by heartbeats) as unrecoverable; otherwise skip them
    /// silently.
    report_gaps: bool,
    /// Drop datagrams already delivered; otherwise deliver them again.
    dedup: bool,
    /// Damage every 7th delivered message.
    tamper: bool,
    /// Answer every delivered message with a unicast datagram to host 0.
    ack_to_host0: bool,
    /// `poll_timeout` always returns the epoch and `handle_timeout` does nothing.
    spin: bool,
    /// `poll_transmit` never returns `None`.
    endless: bool,
    /// Declare a source lost after this much silence (zero: never).
    source_timeout: Duration,
}

const KIND_DATA: u8 = 1;
const KIND_HEARTBEAT: u8 = 5;
const KIND_ACK: u8 = 6;
const HEADER: usize = 18;
const PACE: Duration = Duration::from_micros(20);
const HEARTBEAT: Duration = Duration::from_millis(2);

/// Per-source receive state.
struct Heard {
    next: u32,
    last_heard: Instant,
    lost: bool,
}

/// A member that multicasts each message as one datagram `[kind, 0, source u64, seq u32,
/// first seq u32]` + message, paced, with heartbeats announcing the next sequence number, and
/// delivers what arrives as it arrives.
struct FloodMember {
    knobs: Knobs,
    id: SourceId,
    epoch: Instant,
    queue: VecDeque<Bytes>,
    first_seq: u32,
    next_seq: u32,
    next_slot: Instant,
    next_heartbeat: Option<Instant>,
    acks: VecDeque<Bytes>,
    heard: HashMap<u64, Heard>,
    events: VecDeque<Event>,
    delivered: u64,
    stats: Stats,
}

impl FloodMember {
    fn new(knobs: Knobs, seed: u64, epoch: Instant) -> FloodMember {
        FloodMember {
            knobs,
            id: SourceId(seed | 1),
            epoch,
            queue: VecDeque::new(),
            first_seq: (seed >> 40) as u32, // arbitrary start, to exercise offset mapping
            next_seq: (seed >> 40) as u32,
            next_slot: epoch,
            next_heartbeat: None,
            acks: VecDeque::new(),
            heard: HashMap::new(),
            events: VecDeque::new(),
            delivered: 0,
            stats: Stats::default(),
        }
    }

    fn datagram(&self, kind: u8, seq: u32, body: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(&[kind, 0]);
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// `(kind, source, seq, first seq of the stream)`.
    fn parse(datagram: &Bytes) -> Option<(u8, u64, u32, u32)> {
        if datagram.len() < HEADER {
            return None;
        }
        let source = u64::from_be_bytes(datagram[2..10].try_into().ok()?);
        let seq = u32::from_be_bytes(datagram[10..14].try_into().ok()?);
        let first = u32::from_be_bytes(datagram[14..18].try_into().ok()?);
        Some((datagram[0], source, seq, first))
    }

    fn report_gap(&mut self, source: u64, from: u32, to: u32) {
        if from == to {
            return;
        }
        if self.knobs.report_gaps {
            self.events.push_back(Event::Unrecoverable {
                source: SourceId(source),
                range: LostRange {
                    first: from,
                    last: to.wrapping_sub(1),
                },
            });
        }
    }
}

impl Member for FloodMember {
    fn id(&self) -> SourceId {
        self.id
    }

    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, datagram: Bytes) {
        let Some((kind, source, seq, first)) = FloodMember::parse(&datagram) else {
            self.stats.drops.count("truncated");
            return;
        };
        if kind == KIND_ACK {
            self.stats.rx.report.add(datagram.len());
            return;
        }
        let heard = self.heard.entry(source).or_insert_with(|| {
            self.events.push_back(Event::SourceJoined {
                source: SourceId(source),
            });
            // Start at the stream's first packet, so a lost head is a gap like any other.
            Heard {
                next: first,
                last_heard: now,
                lost: false,
            }
        });
        heard.last_heard = now;
        let next = heard.next;
        let ahead = seq.wrapping_sub(next);
        let behind = ahead >= 1 << 31;
        if kind == KIND_HEARTBEAT {
            // The heartbeat's seq is the source's next sequence number: a tail gap if ahead.
            if !behind && ahead > 0 {
                heard.next = seq;
                self.report_gap(source, next, seq);
            }
            return;
        }
        self.stats.rx.odata.add(datagram.len());
        if behind && self.knobs.dedup {
            self.stats.recovery.duplicates += 1;
            return;
        }
        if !behind {
            heard.next = seq.wrapping_add(1);
            self.report_gap(source, next, seq);
        }
        let mut message = datagram.slice(HEADER..);
        self.delivered += 1;
        if self.knobs.tamper && self.delivered.is_multiple_of(7) {
            let mut damaged = message.to_vec();
            let last = damaged.len() - 1;
            damaged[last] ^= 0x55;
            message = Bytes::from(damaged);
        }
        self.events.push_back(Event::Message {
            source: SourceId(source),
            data: message,
        });
        if self.knobs.ack_to_host0 {
            self.acks.push_back(self.datagram(KIND_ACK, seq, &[]));
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.knobs.spin {
            return;
        }
        if self.knobs.source_timeout > Duration::ZERO {
            for (source, heard) in &mut self.heard {
                if !heard.lost && now >= heard.last_heard + self.knobs.source_timeout {
                    heard.lost = true;
                    self.events.push_back(Event::SourceLost {
                        source: SourceId(*source),
                    });
                }
            }
        }
    }

    fn send(&mut self, _now: Instant, message: Bytes) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Full);
        }
        self.queue.push_back(message);
        Ok(())
    }

    fn can_send(&self) -> bool {
        self.queue.len() < 16
    }

    fn leave(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.knobs.endless {
            return Some(Transmit {
                destination: Destination::Group,
                payload: self.datagram(KIND_HEARTBEAT, 0, &[]),
            });
        }
        if let Some(ack) = self.acks.pop_front() {
            return Some(Transmit {
                destination: Destination::Peer(host_addr(0)),
                payload: ack,
            });
        }
        if now >= self.next_slot
            && let Some(message) = self.queue.pop_front()
        {
            let payload = self.datagram(KIND_DATA, self.next_seq, &message);
            self.next_seq = self.next_seq.wrapping_add(1);
            self.next_slot = now + PACE;
            self.next_heartbeat = Some(now + HEARTBEAT);
            self.stats.tx.odata.add(payload.len());
            self.stats.messages_sent += 1;
            return Some(Transmit {
                destination: Destination::Group,
                payload,
            });
        }
        if let Some(at) = self.next_heartbeat.filter(|at| now >= *at) {
            self.next_heartbeat = Some(at + HEARTBEAT);
            self.stats.tx.spm.add(HEADER);
            return Some(Transmit {
                destination: Destination::Group,
                payload: self.datagram(KIND_HEARTBEAT, self.next_seq, &[]),
            });
        }
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.knobs.spin {
            return Some(self.epoch);
        }
        let sending = (!self.queue.is_empty()).then_some(self.next_slot);
        let silence = (self.knobs.source_timeout > Duration::ZERO)
            .then(|| {
                self.heard
                    .values()
                    .filter(|h| !h.lost)
                    .map(|h| h.last_heard + self.knobs.source_timeout)
                    .min()
            })
            .flatten();
        [sending, self.next_heartbeat, silence]
            .into_iter()
            .flatten()
            .min()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn inspect(datagram: &Bytes) -> Inspected {
        let Some((kind, source, seq, _)) = FloodMember::parse(datagram) else {
            return Inspected::other();
        };
        let kind = match kind {
            KIND_DATA => PacketKind::Odata,
            KIND_HEARTBEAT => PacketKind::Spm,
            KIND_ACK => PacketKind::Report,
            _ => PacketKind::Other,
        };
        Inspected {
            kind,
            stream: Some(SourceId(source)),
            seq: (kind == PacketKind::Odata).then_some(seq),
            message_start: (kind == PacketKind::Odata).then(|| datagram.slice(HEADER..)),
        }
    }
}

fn flood(knobs: Knobs) -> impl Fn(HostId, &crate::GroupConfig, u64, Instant) -> FloodMember {
    move |_, _, seed, epoch| FloodMember::new(knobs, seed, epoch)
}

fn reliable_enough() -> Knobs {
    Knobs {
        report_gaps: true,
        dedup: true,
        ..Knobs::default()
    }
}

fn star_scenario(
    name: &str,
    receivers: usize,
    source_link: LinkModel,
    leaf_link: LinkModel,
    messages: u32,
) -> Scenario {
    Scenario::new(name, Topology::star(receivers, source_link, leaf_link))
        .send(
            HostId(0),
            SendPlan::new(messages, Sizes::Uniform { min: 24, max: 600 }),
        )
        .deadline(Duration::from_secs(2))
}

fn violations(report: &SimReport) -> String {
    report
        .violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lossless_flood_passes_every_oracle() {
    let scenario = star_scenario(
        "lossless_flood",
        5,
        LinkModel::default(),
        LinkModel::default(),
        200,
    );
    let summary = scenario.sweep_with(20, flood(Knobs::default()), |_| Ok(()));
    assert_eq!(summary.runs, 20);
    let report = scenario.run_with(1, false, flood(Knobs::default()));
    assert!(report.passed(), "{report}");
    for host in &report.hosts[1..] {
        assert_eq!(host.delivered, 200);
        assert_eq!(host.lost_messages, 0);
        assert!(host.completed_at.is_some());
    }
    assert_eq!(report.hosts[0].messages_sent, 200);
    // 200 messages at 20 µs each plus two 1 ms hops: done in about 6 ms, then 50 ms settling.
    let done = report.completed_at.expect("completed");
    assert!(
        done > Duration::from_millis(5) && done < Duration::from_millis(8),
        "{done:?}"
    );
    assert!(report.ended_at <= done + Duration::from_millis(50));
}

#[test]
fn reported_losses_pass_where_loss_is_allowed() {
    let scenario = star_scenario(
        "reported_losses",
        6,
        LinkModel::default(),
        LinkModel::default().bernoulli(0.1),
        300,
    )
    .delivery(Delivery::CompleteOrReported);
    let summary = scenario.sweep_with(10, flood(reliable_enough()), |_| Ok(()));
    assert!(
        summary.lost_messages > 0,
        "10% loss must lose something: {summary}"
    );
}

#[test]
fn reported_losses_fail_where_everything_must_arrive() {
    let scenario = star_scenario(
        "reported_losses_strict",
        6,
        LinkModel::default(),
        LinkModel::default().bernoulli(0.1),
        300,
    );
    let report = scenario.run_with(3, false, flood(reliable_enough()));
    assert!(!report.passed());
    assert!(
        violations(&report).contains("keeps all data repairable"),
        "{report}"
    );
}

#[test]
fn silent_holes_are_caught() {
    let scenario = star_scenario(
        "silent_holes",
        6,
        LinkModel::default(),
        LinkModel::default().bernoulli(0.1),
        300,
    )
    .delivery(Delivery::CompleteOrReported);
    let knobs = Knobs {
        dedup: true,
        ..Knobs::default()
    };
    let report = scenario.run_with(3, false, flood(knobs));
    assert!(!report.passed());
    assert!(violations(&report).contains("silent hole"), "{report}");
}

#[test]
fn duplicates_are_caught() {
    let link = LinkModel::default().duplicate(0.2);
    let scenario = star_scenario("duplicates", 3, LinkModel::default(), link, 100);
    let report = scenario.run_with(3, false, flood(Knobs::default()));
    assert!(
        violations(&report).contains("again or out of order"),
        "{report}"
    );
    let deduplicated = scenario.run_with(3, false, flood(reliable_enough()));
    assert!(deduplicated.passed(), "{deduplicated}");
    assert!(deduplicated.total(|s| s.recovery.duplicates) > 0);
}

#[test]
fn reordering_shows_up_as_holes_without_a_reorder_buffer() {
    // 1 ms of jitter against 20 µs pacing: arrivals overtake each other constantly.
    let link = LinkModel::default().jitter(Duration::from_millis(1));
    let scenario = star_scenario("reordering", 3, LinkModel::default(), link, 100);
    let report = scenario.run_with(5, false, flood(Knobs::default()));
    assert!(!report.passed(), "{report}");
}

#[test]
fn corrupted_content_is_caught() {
    let scenario = star_scenario(
        "tampering",
        2,
        LinkModel::default(),
        LinkModel::default(),
        50,
    );
    let knobs = Knobs {
        tamper: true,
        ..Knobs::default()
    };
    let report = scenario.run_with(1, false, flood(knobs));
    assert!(
        violations(&report).contains("different content"),
        "{report}"
    );
}

#[test]
fn shared_link_loss_hits_the_whole_subtree() {
    let uplink = Duplex {
        to_child: LinkModel::default(),
        to_parent: LinkModel::default().bernoulli(0.2),
    };
    let topology = Topology::star(8, uplink, LinkModel::default());
    let scenario = Scenario::new("shared_loss", topology)
        .send(HostId(0), SendPlan::new(300, Sizes::Fixed(100)))
        .delivery(Delivery::CompleteOrReported);
    let report = scenario.run_with(11, false, flood(reliable_enough()));
    assert!(report.passed(), "{report}");
    let lost_upstream = report.links[scenario.topology().host_uplink(HostId(0)).0]
        .1
        .lost_odata;
    assert!(lost_upstream > 20, "{report}");
    assert_eq!(
        report.odata_lost(),
        lost_upstream,
        "only the shared link loses"
    );
    for host in &report.hosts[1..] {
        assert_eq!(
            host.lost_messages, lost_upstream,
            "every receiver misses exactly the shared losses"
        );
    }
}

#[test]
fn leaf_loss_is_independent_per_receiver() {
    let scenario = star_scenario(
        "leaf_loss",
        8,
        LinkModel::default(),
        LinkModel::default().bernoulli(0.2),
        300,
    )
    .delivery(Delivery::CompleteOrReported);
    let report = scenario.run_with(11, false, flood(reliable_enough()));
    assert!(report.passed(), "{report}");
    let losses: std::collections::HashSet<u64> =
        report.hosts[1..].iter().map(|h| h.lost_messages).collect();
    assert!(
        losses.len() > 1,
        "independent links should not all lose the same count: {losses:?}"
    );
}

#[test]
fn scripted_drops_hit_exactly_the_named_packets() {
    let mut topology = Topology::star(4, LinkModel::default(), LinkModel::default());
    let uplink = topology.host_uplink(HostId(0));
    topology.set_link(
        uplink,
        LinkModel::default().loss(LossModel::drop_odata([3, 17])),
    );
    let scenario = Scenario::new("scripted", topology)
        .send(HostId(0), SendPlan::new(40, Sizes::Fixed(64)))
        .delivery(Delivery::CompleteOrReported);
    let report = scenario.run_with(2, false, flood(reliable_enough()));
    assert!(report.passed(), "{report}");
    for host in &report.hosts[1..] {
        assert_eq!(
            (host.delivered, host.lost_messages, host.lost_packets),
            (38, 2, 2)
        );
    }
}

#[test]
fn unicast_reaches_only_its_destination() {
    let topology = Topology::tree(
        &[3, 3],
        LinkModel::default(),
        LinkModel::default(),
        LinkModel::default(),
    );
    let scenario =
        Scenario::new("unicast", topology).send(HostId(0), SendPlan::new(30, Sizes::Fixed(64)));
    let knobs = Knobs {
        ack_to_host0: true,
        ..Knobs::default()
    };
    let report = scenario.run_with(4, false, flood(knobs));
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.hosts[0].stats.rx.report.packets,
        9 * 30,
        "every receiver acked every message"
    );
    assert!(
        report.hosts[1..]
            .iter()
            .all(|h| h.stats.rx.report.packets == 0)
    );
    assert_eq!(report.unroutable, 0);
}

#[test]
fn crashed_source_needs_only_a_reported_prefix_and_a_loss_declaration() {
    let plan = SendPlan::new(200, Sizes::Fixed(64)).pace(Pace::Every(Duration::from_micros(100)));
    let scenario = Scenario::new(
        "crash",
        Topology::star(
            4,
            LinkModel::default(),
            LinkModel::default().bernoulli(0.05),
        ),
    )
    .send(HostId(0), plan)
    .at(Duration::from_millis(8), Action::Crash(HostId(0)))
    .delivery(Delivery::CompleteOrReported);
    let knobs = Knobs {
        source_timeout: Duration::from_millis(20),
        ..reliable_enough()
    };
    let report = scenario.run_with(9, false, flood(knobs));
    assert!(report.passed(), "{report}");
    assert!(report.hosts[0].crashed);
    let sent = report.hosts[0].messages_sent;
    assert!((70..90).contains(&sent), "sent {sent} before the crash");
    // Without a loss declaration, the receivers never finish.
    let silent = scenario.run_with(9, false, flood(reliable_enough()));
    assert!(
        violations(&silent).contains("never declared lost"),
        "{silent}"
    );
}

#[test]
fn missing_the_deadline_is_a_violation() {
    let scenario = star_scenario(
        "deadline",
        3,
        LinkModel::default(),
        LinkModel::default(),
        100,
    )
    .at(
        Duration::from_micros(1500),
        Action::SetLink(LinkId(1), LinkModel::default().bernoulli(1.0 - 1e-12)),
    );
    let report = scenario.run_with(1, false, flood(Knobs::default()));
    assert!(violations(&report).contains("has not finished"), "{report}");
    assert!(report.completed_at.is_none());
    assert!(report.ended_at <= Duration::from_secs(2));
}

#[test]
fn timer_spins_and_endless_output_are_stopped() {
    let scenario = star_scenario("spin", 2, LinkModel::default(), LinkModel::default(), 10);
    let spin = Knobs {
        spin: true,
        ..Knobs::default()
    };
    let report = scenario.run_with(1, false, flood(spin));
    assert!(violations(&report).contains("timer spins"), "{report}");
    let endless = Knobs {
        endless: true,
        ..Knobs::default()
    };
    let report = scenario.run_with(1, false, flood(endless));
    assert!(violations(&report).contains("in one drain"), "{report}");
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let link = LinkModel::default()
        .bernoulli(0.05)
        .jitter(Duration::from_micros(300))
        .duplicate(0.05);
    let scenario = star_scenario("determinism", 6, LinkModel::default(), link, 200)
        .delivery(Delivery::CompleteOrReported);
    let a = scenario.run_with(77, false, flood(reliable_enough()));
    let b = scenario.run_with(77, true, flood(reliable_enough()));
    let c = scenario.run_with(78, false, flood(reliable_enough()));
    assert_eq!(
        a.trace_hash, b.trace_hash,
        "tracing must not change the run"
    );
    assert_ne!(a.trace_hash, c.trace_hash);
    let lines = b.trace.expect("trace recorded");
    assert!(
        lines.iter().any(|l| l.contains("drops"))
            && lines.iter().any(|l| l.contains("event: message"))
    );
}

#[test]
fn failing_sweep_names_the_seed_and_the_replay_command() {
    let scenario = star_scenario(
        "failing_sweep",
        3,
        LinkModel::default(),
        LinkModel::default().bernoulli(0.3),
        50,
    );
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenario.sweep_with(5, flood(Knobs::default()), |_| Ok(()))
    }));
    let panic = outcome.expect_err("silent holes must fail the sweep");
    let message = panic
        .downcast_ref::<String>()
        .expect("formatted panic message");
    let seed = scenario.seed_for(0);
    assert!(
        message.contains(&format!(
            "RMCAST_SIM_SEED={seed} cargo test --features sim --test sim failing_sweep"
        )),
        "{message}"
    );
    assert!(message.contains("silent hole"), "{message}");
}

#[test]
fn fifty_receivers_times_a_thousand_messages() {
    let topology = Topology::tree(
        &[5, 10],
        LinkModel::default(),
        LinkModel::default(),
        LinkModel::default().bernoulli(0.01),
    );
    let scenario = Scenario::new("fifty", topology)
        .send(
            HostId(0),
            SendPlan::new(1000, Sizes::Uniform { min: 24, max: 1200 }),
        )
        .delivery(Delivery::CompleteOrReported);
    let report = scenario.run_with(5, false, flood(reliable_enough()));
    assert!(report.passed(), "{report}");
    assert_eq!(report.hosts.len(), 51);
    let accounted: u64 = report
        .hosts
        .iter()
        .map(|h| h.delivered + h.lost_messages)
        .sum();
    assert_eq!(accounted, 50 * 1000);
}
