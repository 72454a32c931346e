//! The sans-IO protocol core. No sockets, threads, clock reads or global randomness: time
//! comes in as `now`, randomness from a seed, datagrams in and out as bytes.
//!
//! [`Session`] is one group member. It dispatches decoded packets to its two roles:
//! [`source::SourceState`] (what this member sends: sequencing, window, pacing, SPM, NAK → NCF →
//! RDATA) and [`receiver::ReceiverState`] (every other source it hears: gaps, NAKs, delivery).

pub(crate) mod event;
pub(crate) mod fec;
#[cfg(test)]
mod fec_tests;
pub(crate) mod receiver;
pub(crate) mod repair_timer;
pub(crate) mod source;

use crate::config::Settings;
use crate::error::SendError;
use crate::stats::Stats;
use crate::wire::{self, Packet, SeqNum, StreamId};
use bytes::Bytes;
// Transmit and Destination are public only through the simulator's API.
#[cfg_attr(
    not(any(test, feature = "sim")),
    expect(unreachable_pub, reason = "public only through the sim feature")
)]
pub use event::Destination;
#[cfg(any(test, feature = "sim"))]
pub use event::Transmit;
pub use event::{Event, LostRange, SourceId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The session's wire clock: microseconds since the session epoch, wrapping at 2^32
/// (~71 minutes). Only differences of timestamps are ever used, for RTT.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new(epoch: Instant) -> Clock {
        Clock { epoch }
    }

    /// The wire timestamp of `now`.
    pub(crate) fn timestamp(&self, now: Instant) -> u32 {
        // Truncation is the wrap: timestamps are compared only by wrapping difference.
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }

    /// Time from wire timestamp `then` (taken by this same clock) to `now`.
    pub(crate) fn since(&self, now: Instant, then: u32) -> Duration {
        Duration::from_micros(u64::from(self.timestamp(now).wrapping_sub(then)))
    }
}

/// One group member's protocol state: a source for what it sends, a receiver for every other
/// source it hears.
///
/// # Contract
///
/// `Session` never reads a clock, a socket or global randomness. Its methods are of four kinds:
///
/// - **(A) getters**: [`Session::id`], [`Session::stats`], [`Session::can_send`],
///   [`Session::is_idle`]. Pure reads.
/// - **(B) inputs from the network and time**: [`Session::handle_datagram`] for every datagram
///   received on the group socket, and [`Session::handle_timeout`] whenever the instant from
///   [`Session::poll_timeout`] has passed. Spurious `handle_timeout` calls are harmless.
/// - **(C) application commands**: [`Session::send`] and [`Session::leave`].
/// - **(D) outputs**, drained after every (B) or (C) call, in this order:
///   [`Session::poll_transmit`] until `None` (datagrams to send now; pacing may hold some
///   back), then [`Session::poll_event`] until `None`, then [`Session::poll_timeout`] for the
///   instant to call `handle_timeout` next.
///
/// Every `now` passed in must be non-decreasing. All randomness (member id, instance, first
/// sequence number, backoff timers) comes from the `seed` given to [`Session::new`], so a run in
/// the simulator replays exactly from its seed.
pub(crate) struct Session {
    id: SourceId,
    clock: Clock,
    rng: SmallRng,
    stats: Stats,
    source: source::SourceState,
    receiver: receiver::ReceiverState,
    events: std::collections::VecDeque<Event>,
}

impl Session {
    /// Creates a member. `seed` drives every random choice; `now` is the epoch of the wire clock.
    pub(crate) fn new(settings: Settings, seed: u64, now: Instant) -> Session {
        let mut rng = SmallRng::seed_from_u64(seed);
        // Id 0 is avoided so that "no member" can never collide with a real one.
        let id = rng.random_range(1..=u64::MAX);
        let stream = StreamId {
            source: id,
            instance: rng.random(),
        };
        let first_seq = SeqNum(rng.random());
        let clock = Clock::new(now);
        Session {
            id: SourceId(id),
            clock,
            source: source::SourceState::new(&settings, stream, first_seq, now),
            receiver: receiver::ReceiverState::new(&settings, id),
            rng,
            stats: Stats::default(),
            events: std::collections::VecDeque::new(),
        }
    }

    /// This member's id, also its source id.
    pub(crate) fn id(&self) -> SourceId {
        self.id
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.rtt = self.receiver.rtt_summary();
        stats
    }

    /// Feeds one received datagram. Undecodable datagrams are counted by reason and dropped.
    pub(crate) fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let len = datagram.len();
        let packet = match wire::decode(datagram) {
            Ok(packet) => packet,
            Err(err) => {
                self.stats.drops.count(err.reason());
                return;
            }
        };
        let own = self.id.0;
        let ctx = &mut Context {
            now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        match packet {
            Packet::Data(data) => {
                if data.repair {
                    ctx.stats.rx.rdata.add(len);
                } else {
                    ctx.stats.rx.odata.add(len);
                }
                if data.stream.source == own {
                    ctx.stats.drops.count("own");
                } else {
                    self.receiver.handle_data(ctx, from, data);
                }
            }
            Packet::Spm(spm) => {
                ctx.stats.rx.spm.add(len);
                if spm.stream.source == own {
                    ctx.stats.drops.count("own");
                } else {
                    self.receiver.handle_spm(ctx, from, &spm);
                }
            }
            Packet::Ncf(ncf) => {
                ctx.stats.rx.ncf.add(len);
                if ncf.stream.source == own {
                    ctx.stats.drops.count("own");
                } else {
                    self.receiver.handle_ncf(ctx, &ncf);
                }
            }
            Packet::Nak(nak) => {
                ctx.stats.rx.nak.add(len);
                if nak.requester == own {
                    ctx.stats.drops.count("own");
                } else if nak.stream.source == own {
                    self.source.handle_nak(ctx, &nak);
                } else {
                    // Another receiver's NAK for a source we may also follow: suppression input.
                    self.receiver.handle_foreign_nak(ctx, &nak);
                }
            }
            Packet::Parity(parity) => {
                ctx.stats.rx.parity.add(len);
                if parity.stream.source == own {
                    ctx.stats.drops.count("own");
                } else {
                    self.receiver.handle_parity(ctx, parity);
                }
            }
            Packet::ParityNcf(ncf) => {
                ctx.stats.rx.ncf.add(len);
                if ncf.stream.source == own {
                    ctx.stats.drops.count("own");
                } else {
                    self.receiver.handle_parity_ncf(ctx, &ncf);
                }
            }
            Packet::ParityNak(nak) => {
                ctx.stats.rx.nak.add(len);
                if nak.requester == own {
                    ctx.stats.drops.count("own");
                } else if nak.stream.source == own {
                    self.source.handle_parity_nak(ctx, &nak);
                } else {
                    self.receiver.handle_foreign_parity_nak(ctx, &nak);
                }
            }
            Packet::Report(report) => {
                ctx.stats.rx.report.add(len);
                if report.reporter == own {
                    ctx.stats.drops.count("own");
                } else {
                    // Every member's report feeds peer distances (its echoes, its timestamp).
                    self.receiver.handle_report_heard(ctx, &report);
                    if report.stream.source == own {
                        self.source.handle_report(ctx, &report);
                    } else {
                        // Another receiver's report: group-size input for the source it names.
                        self.receiver.handle_foreign_report(ctx, &report);
                    }
                }
            }
            Packet::PeerRdata(peer) => {
                ctx.stats.rx.rdata.add(len);
                if peer.repairer == own {
                    ctx.stats.drops.count("own");
                } else if peer.data.stream.source == own {
                    // A receiver repaired our data: our own pending repair of it is redundant.
                    self.source.handle_peer_rdata(ctx, &peer.data);
                } else {
                    self.receiver.handle_peer_rdata(ctx, peer);
                }
            }
        }
        self.collect_events();
    }

    /// Runs every timer due at or before `now`. Spurious calls are harmless.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let ctx = &mut Context {
            now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        self.source.handle_timeout(ctx);
        self.receiver.handle_timeout(ctx);
        self.collect_events();
    }

    /// Queues a message for sending. Fails only if it is too large or the session left; check
    /// [`Session::can_send`] first for back-pressure.
    pub(crate) fn send(&mut self, now: Instant, message: Bytes) -> Result<(), SendError> {
        let ctx = &mut Context {
            now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        self.source.send(ctx, message)
    }

    /// Whether the send queue has room for another message.
    pub(crate) fn can_send(&self) -> bool {
        self.source.can_send()
    }

    /// Stops accepting messages; queued data is still sent and repaired. See
    /// [`Session::is_idle`].
    pub(crate) fn leave(&mut self, now: Instant) {
        let _ = now;
        self.source.close();
    }

    /// Nothing queued to send and no repair pending.
    pub(crate) fn is_idle(&self) -> bool {
        self.source.is_idle()
    }

    /// The next datagram to send, if one is due at `now`. Receiver feedback (NAKs, reports) goes
    /// first: it is small and delaying it delays every repair.
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let mut payload = Vec::new();
        let destination = self.poll_transmit_into(now, &mut payload)?;
        Some(Transmit {
            destination,
            payload: Bytes::from(payload),
        })
    }

    /// [`Session::poll_transmit`] without an allocation: appends the datagram to `out` (the
    /// engine's GSO batch) and returns where it goes; `out` is unchanged when `None`.
    pub(crate) fn poll_transmit_into(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<Destination> {
        let ctx = &mut Context {
            now,
            clock: &self.clock,
            rng: &mut self.rng,
            stats: &mut self.stats,
        };
        let start = out.len();
        if !self.receiver.poll_transmit_into(ctx, out) && !self.source.poll_transmit_into(ctx, out)
        {
            return None;
        }
        count_transmit(&mut self.stats, &out[start..]);
        Some(Destination::Group)
    }

    /// Earliest instant at which [`Session::handle_timeout`] or [`Session::poll_transmit`] has
    /// work.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match (self.source.next_deadline(), self.receiver.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next application event.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.receiver.poll_event() {
            if let Event::Message { data, .. } = &event {
                self.stats.messages_delivered += 1;
                self.stats.bytes_delivered += data.len() as u64;
            }
            self.events.push_back(event);
        }
    }
}

/// What every role handler gets: the time, the wire clock, the session RNG and the counters.
pub(crate) struct Context<'a> {
    pub(crate) now: Instant,
    pub(crate) clock: &'a Clock,
    pub(crate) rng: &'a mut SmallRng,
    pub(crate) stats: &'a mut Stats,
}

/// Counts an outgoing datagram by its type byte (the second byte of the common header).
fn count_transmit(stats: &mut Stats, payload: &[u8]) {
    let len = payload.len();
    let counter = match payload.get(1).copied().map(wire::PacketType::from_code) {
        Some(Some(wire::PacketType::Odata)) => &mut stats.tx.odata,
        Some(Some(wire::PacketType::Rdata | wire::PacketType::PeerRdata)) => &mut stats.tx.rdata,
        Some(Some(wire::PacketType::Nak)) => &mut stats.tx.nak,
        Some(Some(wire::PacketType::Ncf | wire::PacketType::ParityNcf)) => &mut stats.tx.ncf,
        Some(Some(wire::PacketType::Spm)) => &mut stats.tx.spm,
        Some(Some(wire::PacketType::Report)) => &mut stats.tx.report,
        Some(Some(wire::PacketType::Parity)) => &mut stats.tx.parity,
        _ => return,
    };
    counter.add(len);
}
