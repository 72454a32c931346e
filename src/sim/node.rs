//! Simulated group members: the [`Member`] interface the simulator drives (implemented by
//! [`SessionMember`], the real protocol core), and the scripted application that feeds a
//! member messages ([`SendPlan`]).
//!
//! Invariant: every message the scripted application sends is self-describing — it starts with
//! a header naming its source host, its index in that source's plan, its length and a checksum
//! of those — so the oracles can identify any delivered message and compare it byte for byte
//! with what was sent.

use super::link::PacketKind;
use crate::config::GroupConfig;
use crate::error::{ConfigError, SendError};
use crate::proto::receiver::{BackoffStrategy, GROUP_SIZE_PRIOR, Suppression};
use crate::proto::{Event, Session, SourceId, Transmit};
use crate::stats::Stats;
use crate::wire::{self, Packet};
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A sans-IO group member the simulator can drive: the subset of the protocol core's contract
/// (see the `Session` docs) that the network and the scripted application need.
pub trait Member {
    /// This member's source id.
    fn id(&self) -> SourceId;
    /// A datagram arrived from `from`.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Bytes);
    /// The instant from [`Member::poll_timeout`] has passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The application sends a message.
    fn send(&mut self, now: Instant, message: Bytes) -> Result<(), SendError>;
    /// Whether [`Member::send`] has room.
    fn can_send(&self) -> bool;
    /// The application leaves the group.
    fn leave(&mut self, now: Instant);
    /// Next datagram to send now.
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;
    /// Next instant at which the member has timed work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Next application event.
    fn poll_event(&mut self) -> Option<Event>;
    /// Counters.
    fn stats(&self) -> Stats;
    /// Reads a datagram this kind of member sent, for links, scripts, traces and oracles.
    fn inspect(datagram: &Bytes) -> Inspected;
}

/// What [`Member::inspect`] reads from a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// Protocol role.
    pub kind: PacketKind,
    /// The stream (source) the packet is about.
    pub stream: Option<SourceId>,
    /// Sequence number (data), or the first sequence number asked about (NAK, NCF).
    pub seq: Option<u32>,
    /// For ODATA carrying the first fragment of a message: the fragment's bytes, which start
    /// with the message (so with the scripted application's header).
    pub message_start: Option<Bytes>,
}

impl Inspected {
    /// A datagram nothing is known about.
    #[must_use]
    pub fn other() -> Inspected {
        Inspected {
            kind: PacketKind::Other,
            stream: None,
            seq: None,
            message_start: None,
        }
    }
}

/// The real protocol core as a simulated member.
pub struct SessionMember {
    session: Session,
}

impl SessionMember {
    /// A member configured exactly as `ReliableGroup::join` would configure it, seeded with
    /// `seed` (the config's own `rng_seed` is ignored: the simulator owns every seed).
    pub fn new(
        config: &GroupConfig,
        seed: u64,
        now: Instant,
    ) -> Result<SessionMember, ConfigError> {
        SessionMember::with_strategy(config, Strategy::Rmcast, seed, now)
    }

    /// [`SessionMember::new`] with the NAK suppression of `strategy` instead of the default.
    pub fn with_strategy(
        config: &GroupConfig,
        strategy: Strategy,
        seed: u64,
        now: Instant,
    ) -> Result<SessionMember, ConfigError> {
        let mut settings = config.validate()?;
        settings.suppression = strategy.suppression();
        settings.peer_repair |= strategy == Strategy::RmcastPeer;
        Ok(SessionMember {
            session: Session::new(settings, seed, now),
        })
    }
}

/// The NAK suppression a [`SessionMember`] uses: rmcast's own, with or without its
/// self-tuning, or a baseline modelled on an established protocol. Every strategy runs the same
/// NAK cycle (NCF, retries, give-up floor) and the same source; only the backoff differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The default: truncated exponential over a window scaled by distance and by the log of
    /// the estimated group size, self-tuned by duplicate NAKs.
    Rmcast,
    /// [`Strategy::Rmcast`] with both self-tuning parts off: nothing learned from duplicates,
    /// group size fixed at the prior (100).
    RmcastStatic,
    /// SRM: uniform on `[C1·d, (C1 + C2·f)·d]`, the spread `f` learned from duplicates.
    Srm,
    /// After PGM as deployed: uniform over a fixed 50 ms, no distance scaling.
    PgmLike,
    /// After NORM: truncated exponential over `4·RTT` for a group size fixed at 1000.
    NormLike,
    /// [`Strategy::Rmcast`] with peer repair on: receivers answer NAKs from their caches and
    /// every holder, the source included, waits the distance-scaled repair timer.
    RmcastPeer,
}

impl Strategy {
    /// The strategies every table row compares.
    pub const COMPARED: [Strategy; 3] = [Strategy::Rmcast, Strategy::PgmLike, Strategy::NormLike];

    /// The name used in tables: `rmcast`, `rmcast-static`, `srm`, `pgm-like`, `norm-like`,
    /// `rmcast-peer`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Rmcast => "rmcast",
            Strategy::RmcastStatic => "rmcast-static",
            Strategy::Srm => "srm",
            Strategy::PgmLike => "pgm-like",
            Strategy::NormLike => "norm-like",
            Strategy::RmcastPeer => "rmcast-peer",
        }
    }

    fn suppression(self) -> Suppression {
        let (strategy, adaptive, group_size) = match self {
            Strategy::Rmcast | Strategy::RmcastPeer => (BackoffStrategy::Scaled, true, None),
            Strategy::RmcastStatic => (
                BackoffStrategy::Scaled,
                false,
                // The prior is a small whole number (100).
                Some(GROUP_SIZE_PRIOR as u32),
            ),
            Strategy::Srm => (BackoffStrategy::Srm, true, None),
            Strategy::PgmLike => (BackoffStrategy::PgmLike, false, None),
            Strategy::NormLike => (BackoffStrategy::NormLike, false, None),
        };
        Suppression {
            strategy,
            adaptive,
            group_size,
        }
    }
}

impl Member for SessionMember {
    fn id(&self) -> SourceId {
        self.session.id()
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        self.session.handle_datagram(now, from, datagram);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn send(&mut self, now: Instant, message: Bytes) -> Result<(), SendError> {
        self.session.send(now, message)
    }

    fn can_send(&self) -> bool {
        self.session.can_send()
    }

    fn leave(&mut self, now: Instant) {
        self.session.leave(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.session.poll_transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }

    fn stats(&self) -> Stats {
        self.session.stats()
    }

    fn inspect(datagram: &Bytes) -> Inspected {
        let Ok(packet) = wire::decode(datagram.clone()) else {
            return Inspected::other();
        };
        let stream = Some(SourceId(packet.stream().source));
        match packet {
            Packet::Data(data) => Inspected {
                kind: if data.repair {
                    PacketKind::Rdata
                } else {
                    PacketKind::Odata
                },
                stream,
                seq: Some(data.seq.0),
                message_start: (!data.repair && data.fragment_offset == 0).then_some(data.payload),
            },
            Packet::Nak(nak) => Inspected {
                kind: PacketKind::Nak,
                stream,
                seq: nak.ranges.first().map(|r| r.first.0),
                message_start: None,
            },
            Packet::Ncf(ncf) | Packet::ParityNcf(ncf) => Inspected {
                kind: PacketKind::Ncf,
                stream,
                seq: ncf.ranges.first().map(|r| r.first.0),
                message_start: None,
            },
            Packet::Spm(_) => Inspected {
                kind: PacketKind::Spm,
                stream,
                seq: None,
                message_start: None,
            },
            Packet::Report(_) => Inspected {
                kind: PacketKind::Report,
                stream,
                seq: None,
                message_start: None,
            },
            // A receiver's repair of the source's stream: a repair like the source's RDATA.
            Packet::PeerRdata(peer) => Inspected {
                kind: PacketKind::Rdata,
                stream,
                seq: Some(peer.data.seq.0),
                message_start: None,
            },
            Packet::Parity(parity) => Inspected {
                kind: PacketKind::Parity,
                stream,
                seq: Some(parity.block.0),
                message_start: None,
            },
            Packet::ParityNak(nak) => Inspected {
                kind: PacketKind::Nak,
                stream,
                seq: nak.blocks.first().map(|r| r.first.0),
                message_start: None,
            },
        }
    }
}

/// Message sizes a [`SendPlan`] draws from. Sizes below [`MESSAGE_HEADER_LEN`] are raised to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Every message this long.
    Fixed(usize),
    /// Uniform in `min..=max`.
    Uniform {
        /// Smallest size.
        min: usize,
        /// Largest size.
        max: usize,
    },
}

/// When a [`SendPlan`] hands its messages to the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// As fast as the member accepts them ([`Member::can_send`] back-pressure).
    Burst,
    /// Message `k` becomes due at `start + k * interval` (and is sent once `can_send` allows).
    Every(Duration),
}

/// A scripted application: what one member sends, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct SendPlan {
    /// Number of messages.
    pub messages: u32,
    /// Their sizes.
    pub sizes: Sizes,
    /// Virtual time of the first message.
    pub start: Duration,
    /// Their pacing.
    pub pace: Pace,
    /// `(n, quiet)`: after the first `n` messages the application falls silent for `quiet`
    /// before going on.
    pub pause: Option<(u32, Duration)>,
}

impl SendPlan {
    /// `messages` messages of `sizes`, starting at 1 ms virtual, in a burst.
    pub fn new(messages: u32, sizes: Sizes) -> SendPlan {
        SendPlan {
            messages,
            sizes,
            start: Duration::from_millis(1),
            pace: Pace::Burst,
            pause: None,
        }
    }

    /// Sets the start time.
    pub fn start(mut self, start: Duration) -> SendPlan {
        self.start = start;
        self
    }

    /// Sets the pacing.
    pub fn pace(mut self, pace: Pace) -> SendPlan {
        self.pace = pace;
        self
    }

    /// Falls silent for `quiet` after the first `after` messages.
    pub fn pause(mut self, after: u32, quiet: Duration) -> SendPlan {
        self.pause = Some((after, quiet));
        self
    }

    /// When message `index` is due.
    fn due(&self, index: u32) -> Duration {
        let paced = match self.pace {
            Pace::Burst => self.start,
            Pace::Every(interval) => self.start + interval * index,
        };
        match self.pause {
            Some((after, quiet)) if index >= after => paced + quiet,
            _ => paced,
        }
    }
}

/// Length of the self-describing header at the start of every scripted message.
pub const MESSAGE_HEADER_LEN: usize = 24;
const MESSAGE_MAGIC: u32 = 0x524d_534d; // "RMSM"

/// The header of a scripted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MessageHeader {
    pub(crate) source: u32,
    pub(crate) index: u32,
    pub(crate) len: u32,
}

impl MessageHeader {
    fn checksum(&self) -> u64 {
        super::mix64(
            u64::from(MESSAGE_MAGIC)
                ^ super::mix64(u64::from(self.source) << 32 | u64::from(self.index))
                ^ u64::from(self.len) << 17,
        )
    }

    /// Reads the header at the start of `bytes`; `None` if it is absent or does not check.
    pub(crate) fn parse(bytes: &[u8]) -> Option<MessageHeader> {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        if word(0)? != MESSAGE_MAGIC {
            return None;
        }
        let header = MessageHeader {
            source: word(4)?,
            index: word(8)?,
            len: word(12)?,
        };
        let sum = u64::from(word(16)?) << 32 | u64::from(word(20)?);
        (sum == header.checksum()).then_some(header)
    }
}

/// Size of the shared pool message bodies are cut from.
const BODY_POOL: usize = 1 << 16;

/// Builds self-describing messages cheaply: bodies are slices of one random pool at offsets
/// that depend on (source, index), so consecutive messages differ and no byte is generated per
/// message.
pub(crate) struct MessageFactory {
    pool: Vec<u8>,
}

impl MessageFactory {
    pub(crate) fn new(seed: u64) -> MessageFactory {
        let mut pool = vec![0u8; BODY_POOL];
        SmallRng::seed_from_u64(seed).fill_bytes(&mut pool);
        MessageFactory { pool }
    }

    /// Message `index` of `source`, `len` bytes long (at least the header).
    pub(crate) fn message(&self, source: u32, index: u32, len: usize) -> Bytes {
        let len = len.clamp(MESSAGE_HEADER_LEN, u32::MAX as usize);
        let header = MessageHeader {
            source,
            index,
            len: len as u32,
        };
        let sum = header.checksum();
        let mut out = Vec::with_capacity(len);
        for word in [
            MESSAGE_MAGIC,
            source,
            index,
            len as u32,
            (sum >> 32) as u32,
            sum as u32,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        let mut offset =
            (super::mix64(u64::from(source) << 32 | u64::from(index)) as usize) % BODY_POOL;
        while out.len() < len {
            let take = (len - out.len()).min(BODY_POOL - offset);
            out.extend_from_slice(&self.pool[offset..offset + take]);
            offset = 0;
        }
        Bytes::from(out)
    }
}

/// Runtime state of one member's scripted application.
pub(crate) struct App {
    plan: SendPlan,
    source: u32,
    rng: SmallRng,
    next_index: u32,
}

impl App {
    pub(crate) fn new(plan: SendPlan, source: u32, seed: u64) -> App {
        App {
            plan,
            source,
            rng: SmallRng::seed_from_u64(seed),
            next_index: 0,
        }
    }

    pub(crate) fn planned(&self) -> u32 {
        self.plan.messages
    }

    pub(crate) fn finished(&self) -> bool {
        self.next_index >= self.plan.messages
    }

    /// When the next message is due, if any is left.
    pub(crate) fn next_due(&self) -> Option<Duration> {
        (!self.finished()).then(|| self.plan.due(self.next_index))
    }

    /// The next message, consuming it.
    pub(crate) fn take(&mut self, factory: &MessageFactory) -> (u32, Bytes) {
        let len = match self.plan.sizes {
            Sizes::Fixed(len) => len,
            Sizes::Uniform { min, max } => self.rng.random_range(min..=max.max(min)),
        };
        let index = self.next_index;
        self.next_index += 1;
        (index, factory.message(self.source, index, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_describe_themselves() {
        let factory = MessageFactory::new(1);
        let message = factory.message(3, 17, 5000);
        assert_eq!(message.len(), 5000);
        assert_eq!(
            MessageHeader::parse(&message),
            Some(MessageHeader {
                source: 3,
                index: 17,
                len: 5000
            })
        );
        assert_ne!(message, factory.message(3, 18, 5000));
        assert_eq!(
            message,
            factory.message(3, 17, 5000),
            "a message is a function of its identity"
        );
        // Larger than the pool: wraps around it.
        assert_eq!(factory.message(0, 0, 3 * BODY_POOL).len(), 3 * BODY_POOL);
        // Tiny sizes are raised to the header.
        assert_eq!(factory.message(0, 0, 1).len(), MESSAGE_HEADER_LEN);
    }

    #[test]
    fn damaged_headers_are_rejected() {
        let factory = MessageFactory::new(1);
        let mut bytes = factory.message(1, 2, 100).to_vec();
        bytes[9] ^= 1;
        assert_eq!(MessageHeader::parse(&bytes), None);
        assert_eq!(MessageHeader::parse(&bytes[..10]), None);
    }

    #[test]
    fn plans_pace_and_size_messages() {
        let plan = SendPlan::new(3, Sizes::Uniform { min: 100, max: 200 })
            .start(Duration::from_millis(5))
            .pace(Pace::Every(Duration::from_millis(2)));
        let mut app = App::new(plan, 0, 9);
        let factory = MessageFactory::new(2);
        let mut dues = Vec::new();
        while let Some(due) = app.next_due() {
            dues.push(due.as_millis());
            let (_, message) = app.take(&factory);
            assert!((100..=200).contains(&message.len()));
        }
        assert_eq!(dues, [5, 7, 9]);
        assert!(app.finished());
        let paused = SendPlan::new(4, Sizes::Fixed(30)).pause(2, Duration::from_secs(1));
        let dues: Vec<u128> = (0..4).map(|i| paused.due(i).as_millis()).collect();
        assert_eq!(dues, [1, 1, 1001, 1001]);
    }
}
