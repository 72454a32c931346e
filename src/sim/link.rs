//! One directed simulated link: what it does to each datagram that crosses it.
//!
//! A [`LinkModel`] is data (delay, jitter, loss, duplication, rate and queue, MTU); a
//! [`LinkState`] is that model plus the link's own seeded RNG, burst-loss state, transmit queue
//! and counters. Invariant: every decision a link makes comes from its own RNG, consumed in the
//! order packets reach it, so a link's behaviour is a pure function of the master seed and the
//! sequence of packets offered to it.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The protocol role of a datagram, as read by the member's [`super::Member::inspect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// Original data.
    Odata,
    /// Repair data.
    Rdata,
    /// Negative acknowledgement.
    Nak,
    /// NAK confirmation.
    Ncf,
    /// Source path message (heartbeat).
    Spm,
    /// Receiver report.
    Report,
    /// FEC parity.
    Parity,
    /// Anything the member's codec does not recognise.
    Other,
}

/// What links, scripts and oracles know about a datagram. Read once, when the datagram leaves
/// its sender, and carried with every copy of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Protocol role.
    pub kind: PacketKind,
    /// Host index of the member whose data stream the packet is about (the source for data,
    /// NCF and SPM; the asked-about source for NAKs and reports), if known.
    pub stream_host: Option<usize>,
    /// Sequence number relative to the first ODATA that stream sent (0 = its first packet),
    /// for data, NAKs (first range) and NCFs (first range).
    pub seq_offset: Option<u32>,
    /// Host index of the member that transmitted this datagram.
    pub sender: usize,
    /// Datagram length in bytes.
    pub len: usize,
}

/// A scripted drop rule: `(packet, occurrence) -> drop?`, where `occurrence` counts earlier
/// packets with the same kind, stream and sequence offset that reached this link (0 for the
/// first). Pure, so links stay cloneable and runs replayable.
#[derive(Clone)]
pub struct Script(Arc<Rule>);

/// The predicate inside a [`Script`].
type Rule = dyn Fn(&PacketInfo, u32) -> bool + Send + Sync;

impl Script {
    /// A rule from a predicate.
    pub fn new(rule: impl Fn(&PacketInfo, u32) -> bool + Send + Sync + 'static) -> Script {
        Script(Arc::new(rule))
    }

    fn drops(&self, packet: &PacketInfo, occurrence: u32) -> bool {
        (self.0)(packet, occurrence)
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Script(..)")
    }
}

/// How a link loses datagrams.
#[derive(Clone, Debug, Default)]
pub enum LossModel {
    /// Never loses.
    #[default]
    None,
    /// Loses each datagram independently with this probability.
    Bernoulli(f64),
    /// Two-state burst loss, per datagram: the link moves between a good and a bad state
    /// before each datagram and loses it with the loss probability of the state it is in. The
    /// chain advances only when datagrams cross, so on a link that falls quiet the state
    /// persists across the silence — right for a saturated link, too harsh for sparse repair
    /// traffic; see [`LossModel::TimedBursts`].
    GilbertElliott {
        /// Chance of moving from good to bad before a datagram.
        p_good_to_bad: f64,
        /// Chance of moving from bad to good before a datagram.
        p_bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
    /// Two-state burst loss in time: good and bad periods last exponentially distributed
    /// times with the given means, and datagrams crossing in a bad period are lost with
    /// probability `loss_bad` (none in a good one). Bursts last the same whether the link is
    /// busy or quiet, as with fading or a congested queue.
    TimedBursts {
        /// Mean length of a good period.
        mean_good: Duration,
        /// Mean length of a bad period.
        mean_bad: Duration,
        /// Loss probability in a bad period.
        loss_bad: f64,
    },
    /// Loses exactly the datagrams a rule picks.
    Scripted(Script),
}

impl LossModel {
    /// Burst loss with a long-run loss rate `loss` (0..1) in bursts of `mean_burst` datagrams on
    /// average: a Gilbert–Elliott chain whose bad state loses everything and whose good state
    /// loses nothing.
    #[must_use]
    pub fn bursts(loss: f64, mean_burst: f64) -> LossModel {
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        // Stationary share of the bad state is p_gb / (p_gb + p_bg); solve it for `loss`.
        let p_good_to_bad = loss * p_bad_to_good / (1.0 - loss);
        LossModel::GilbertElliott {
            p_good_to_bad: p_good_to_bad.clamp(0.0, 1.0),
            p_bad_to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// Timed burst loss losing everything in bad periods of `mean_burst` on average, for a
    /// long-run loss rate (share of time in bad periods) of `loss`.
    #[must_use]
    pub fn timed_bursts(loss: f64, mean_burst: Duration) -> LossModel {
        let loss = loss.clamp(1e-9, 1.0 - 1e-9);
        LossModel::TimedBursts {
            mean_good: mean_burst.mul_f64((1.0 - loss) / loss),
            mean_bad: mean_burst,
            loss_bad: 1.0,
        }
    }

    /// A scripted model from a rule (see [`Script`]).
    #[must_use]
    pub fn scripted(rule: impl Fn(&PacketInfo, u32) -> bool + Send + Sync + 'static) -> LossModel {
        LossModel::Scripted(Script::new(rule))
    }

    /// Drops the first copy of each ODATA whose sequence offset is in `offsets`, whatever its
    /// source: "drop ODATA 17 on this link", exactly once.
    #[must_use]
    pub fn drop_odata(offsets: impl IntoIterator<Item = u32>) -> LossModel {
        let offsets: Vec<u32> = offsets.into_iter().collect();
        LossModel::scripted(move |packet, occurrence| {
            packet.kind == PacketKind::Odata
                && occurrence == 0
                && packet.seq_offset.is_some_and(|s| offsets.contains(&s))
        })
    }
}

/// Everything a directed link does to a datagram. Build with [`LinkModel::new`] and the
/// chained setters.
#[derive(Clone, Debug)]
#[must_use]
pub struct LinkModel {
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram; datagrams may overtake each
    /// other, which is how the simulator reorders.
    pub jitter: Duration,
    /// Loss.
    pub loss: LossModel,
    /// Chance that a datagram that was not lost arrives twice (the copy has its own jitter).
    pub duplicate: f64,
    /// Serialisation rate in bytes per second; `None` is infinitely fast.
    pub rate_bytes_per_s: Option<u64>,
    /// Drop-tail queue size in bytes in front of a rate-limited link.
    pub queue_bytes: usize,
    /// Datagrams longer than this are dropped.
    pub mtu: Option<usize>,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel::new(Duration::from_millis(1))
    }
}

impl LinkModel {
    /// A perfect link with one-way `delay`.
    pub fn new(delay: Duration) -> LinkModel {
        LinkModel {
            delay,
            jitter: Duration::ZERO,
            loss: LossModel::None,
            duplicate: 0.0,
            rate_bytes_per_s: None,
            queue_bytes: usize::MAX,
            mtu: None,
        }
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Duration) -> LinkModel {
        self.jitter = jitter;
        self
    }

    /// Sets the loss model.
    pub fn loss(mut self, loss: LossModel) -> LinkModel {
        self.loss = loss;
        self
    }

    /// Sets independent (Bernoulli) loss with probability `p`.
    pub fn bernoulli(self, p: f64) -> LinkModel {
        self.loss(LossModel::Bernoulli(p))
    }

    /// Sets the duplication probability.
    pub fn duplicate(mut self, p: f64) -> LinkModel {
        self.duplicate = p;
        self
    }

    /// Limits the link to `bytes_per_s` with a drop-tail queue of `queue_bytes`.
    pub fn rate(mut self, bytes_per_s: u64, queue_bytes: usize) -> LinkModel {
        self.rate_bytes_per_s = Some(bytes_per_s.max(1));
        self.queue_bytes = queue_bytes;
        self
    }

    /// Drops datagrams longer than `mtu` bytes.
    pub fn mtu(mut self, mtu: usize) -> LinkModel {
        self.mtu = Some(mtu);
        self
    }
}

/// Counters of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Datagrams offered to the link.
    pub offered: u64,
    /// Datagrams delivered at the far end (duplicates included).
    pub delivered: u64,
    /// Datagrams lost by the loss model.
    pub lost: u64,
    /// ODATA datagrams among `lost`: loss events the protocol has to repair.
    pub lost_odata: u64,
    /// RDATA datagrams among `lost`: repairs that must be sent again.
    pub lost_rdata: u64,
    /// Datagrams dropped because the queue was full.
    pub queue_drops: u64,
    /// Datagrams dropped for exceeding the MTU.
    pub mtu_drops: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
}

/// What a link did with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transit {
    /// Gone; the reason is for the trace.
    Dropped(&'static str),
    /// Arrives after `first`, and a second time after `duplicate` if duplicated.
    Arrives {
        first: Duration,
        duplicate: Option<Duration>,
    },
}

/// A link's model plus everything it remembers between datagrams.
pub(crate) struct LinkState {
    pub(crate) model: LinkModel,
    rng: SmallRng,
    in_bad_state: bool,
    /// When a timed-burst link next changes state.
    next_switch: Option<Duration>,
    /// Virtual time at which the transmitter finishes the datagrams already queued.
    busy_until: Duration,
    /// Per (kind, stream, offset) arrivals, kept only for scripted links.
    occurrences: HashMap<(PacketKind, Option<usize>, Option<u32>), u32>,
    pub(crate) stats: LinkStats,
}

impl LinkState {
    pub(crate) fn new(model: LinkModel, seed: u64) -> LinkState {
        LinkState {
            model,
            rng: SmallRng::seed_from_u64(seed),
            in_bad_state: false,
            next_switch: None,
            busy_until: Duration::ZERO,
            occurrences: HashMap::new(),
            stats: LinkStats::default(),
        }
    }

    /// Replaces the model mid-run (blackholes, partitions); the RNG and queue carry on.
    pub(crate) fn set_model(&mut self, model: LinkModel) {
        self.model = model;
        self.in_bad_state = false;
        self.next_switch = None;
    }

    /// Offers a datagram at virtual time `now`; returns when (and whether) it arrives, as
    /// virtual times.
    pub(crate) fn transit(&mut self, now: Duration, packet: &PacketInfo) -> Transit {
        self.stats.offered += 1;
        if self.model.mtu.is_some_and(|mtu| packet.len > mtu) {
            self.stats.mtu_drops += 1;
            return Transit::Dropped("mtu");
        }
        let mut sent_at = now;
        if let Some(rate) = self.model.rate_bytes_per_s {
            let start = self.busy_until.max(now);
            let backlog = bytes_in(start - now, rate);
            if backlog.saturating_add(packet.len as u64) > self.model.queue_bytes as u64 {
                self.stats.queue_drops += 1;
                return Transit::Dropped("queue");
            }
            self.busy_until = start + serialisation(packet.len, rate);
            sent_at = self.busy_until;
        }
        if self.loses(sent_at, packet) {
            self.stats.lost += 1;
            match packet.kind {
                PacketKind::Odata => self.stats.lost_odata += 1,
                PacketKind::Rdata => self.stats.lost_rdata += 1,
                _ => {}
            }
            return Transit::Dropped("loss");
        }
        let first = sent_at + self.delay();
        let duplicate = if self.model.duplicate > 0.0 && self.rng.random_bool(self.model.duplicate)
        {
            self.stats.duplicated += 1;
            self.stats.delivered += 1;
            Some(sent_at + self.delay())
        } else {
            None
        };
        self.stats.delivered += 1;
        Transit::Arrives { first, duplicate }
    }

    fn delay(&mut self) -> Duration {
        let jitter = self.model.jitter.as_nanos() as u64;
        if jitter == 0 {
            return self.model.delay;
        }
        self.model.delay + Duration::from_nanos(self.rng.random_range(0..=jitter))
    }

    fn loses(&mut self, now: Duration, packet: &PacketInfo) -> bool {
        match &self.model.loss {
            LossModel::TimedBursts {
                mean_good,
                mean_bad,
                loss_bad,
            } => {
                let (good, bad, loss_bad) = (*mean_good, *mean_bad, *loss_bad);
                self.advance_bursts(now, good, bad);
                self.in_bad_state && self.rng.random_bool(loss_bad.clamp(0.0, 1.0))
            }
            LossModel::None => false,
            LossModel::Bernoulli(p) => *p > 0.0 && self.rng.random_bool(p.clamp(0.0, 1.0)),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if self.in_bad_state {
                    *p_bad_to_good
                } else {
                    *p_good_to_bad
                };
                if self.rng.random_bool(flip.clamp(0.0, 1.0)) {
                    self.in_bad_state = !self.in_bad_state;
                }
                let loss = if self.in_bad_state {
                    *loss_bad
                } else {
                    *loss_good
                };
                self.rng.random_bool(loss.clamp(0.0, 1.0))
            }
            LossModel::Scripted(script) => {
                let key = (packet.kind, packet.stream_host, packet.seq_offset);
                let seen = self.occurrences.entry(key).or_insert(0);
                let occurrence = *seen;
                *seen += 1;
                script.drops(packet, occurrence)
            }
        }
    }
}

impl LinkState {
    /// Moves the timed-burst state machine on to `now`.
    fn advance_bursts(&mut self, now: Duration, good: Duration, bad: Duration) {
        let cycle = good + bad;
        let next = match self.next_switch {
            // After a silence of many cycles the state is independent of the past: draw it
            // from the stationary distribution instead of stepping through every period.
            Some(next) if now.saturating_sub(next) <= cycle * 64 => next,
            _ => {
                let bad_share = bad.as_secs_f64() / cycle.as_secs_f64().max(f64::MIN_POSITIVE);
                self.in_bad_state = self.rng.random_bool(bad_share.clamp(0.0, 1.0));
                now + self.holding_time(good, bad)
            }
        };
        let mut next = next;
        while next <= now {
            self.in_bad_state = !self.in_bad_state;
            next += self.holding_time(good, bad);
        }
        self.next_switch = Some(next);
    }

    /// An exponentially distributed stay in the current state (at least 1 ns, so time moves).
    fn holding_time(&mut self, good: Duration, bad: Duration) -> Duration {
        let mean = if self.in_bad_state { bad } else { good };
        let uniform: f64 = self.rng.random();
        mean.mul_f64(-(1.0 - uniform).ln())
            .max(Duration::from_nanos(1))
    }
}

/// Bytes a link of `rate` bytes/s sends in `time`.
fn bytes_in(time: Duration, rate: u64) -> u64 {
    (time.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}

/// Time a link of `rate` bytes/s takes to send `len` bytes.
fn serialisation(len: usize, rate: u64) -> Duration {
    Duration::from_nanos((len as u128 * 1_000_000_000 / u128::from(rate)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn odata(offset: u32) -> PacketInfo {
        PacketInfo {
            kind: PacketKind::Odata,
            stream_host: Some(0),
            seq_offset: Some(offset),
            sender: 0,
            len: 1000,
        }
    }

    fn loss_rate(model: LinkModel, n: u32) -> f64 {
        let mut link = LinkState::new(model, 42);
        let lost = (0..n)
            .filter(|i| {
                matches!(
                    link.transit(Duration::ZERO, &odata(*i)),
                    Transit::Dropped(_)
                )
            })
            .count();
        lost as f64 / f64::from(n)
    }

    #[test]
    fn bernoulli_loses_about_its_rate() {
        let rate = loss_rate(LinkModel::default().bernoulli(0.1), 20_000);
        assert!((0.09..0.11).contains(&rate), "measured {rate}");
        assert_eq!(loss_rate(LinkModel::default(), 1000), 0.0);
    }

    #[test]
    fn bursts_keep_the_long_run_rate_and_cluster() {
        let mut link = LinkState::new(LinkModel::default().loss(LossModel::bursts(0.05, 8.0)), 7);
        let lost: Vec<bool> = (0..100_000)
            .map(|i| matches!(link.transit(Duration::ZERO, &odata(i)), Transit::Dropped(_)))
            .collect();
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((0.04..0.06).contains(&rate), "long-run loss {rate}");
        let bursts = lost.windows(2).filter(|w| w[1] && !w[0]).count();
        let mean_burst = lost.iter().filter(|l| **l).count() as f64 / bursts as f64;
        assert!((6.0..10.0).contains(&mean_burst), "mean burst {mean_burst}");
    }

    #[test]
    fn timed_bursts_keep_their_rate_in_time_not_packets() {
        // 5 % of the time bad, bursts of 100 µs on average.
        let model =
            LinkModel::default().loss(LossModel::timed_bursts(0.05, Duration::from_micros(100)));
        // Busy link: one datagram every 10 µs.
        let mut busy = LinkState::new(model.clone(), 5);
        let lost: Vec<bool> = (0..200_000u32)
            .map(|i| {
                let now = Duration::from_micros(10 * u64::from(i));
                matches!(busy.transit(now, &odata(i)), Transit::Dropped(_))
            })
            .collect();
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((0.04..0.06).contains(&rate), "busy-link loss {rate}");
        let bursts = lost.windows(2).filter(|w| w[1] && !w[0]).count();
        let mean_burst = lost.iter().filter(|l| **l).count() as f64 / bursts as f64;
        assert!(
            (7.0..14.0).contains(&mean_burst),
            "mean burst {mean_burst} datagrams"
        );
        // Sparse link: one datagram every 50 ms. Bursts are far shorter than the gaps, so
        // losses are independent at the long-run rate.
        let mut sparse = LinkState::new(model, 6);
        let lost: Vec<bool> = (0..20_000u32)
            .map(|i| {
                let now = Duration::from_millis(50 * u64::from(i));
                matches!(sparse.transit(now, &odata(i)), Transit::Dropped(_))
            })
            .collect();
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((0.04..0.06).contains(&rate), "sparse-link loss {rate}");
        let pairs = lost.windows(2).filter(|w| w[0] && w[1]).count() as f64 / lost.len() as f64;
        assert!(pairs < 0.006, "sparse losses should not cluster: {pairs}");
    }

    #[test]
    fn scripted_drop_hits_only_the_first_copy() {
        let mut link = LinkState::new(LinkModel::default().loss(LossModel::drop_odata([3])), 1);
        let outcomes: Vec<bool> = [0, 3, 3, 4]
            .iter()
            .map(|o| {
                matches!(
                    link.transit(Duration::ZERO, &odata(*o)),
                    Transit::Dropped(_)
                )
            })
            .collect();
        assert_eq!(outcomes, [false, true, false, false]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let model = LinkModel::new(Duration::from_millis(5)).jitter(Duration::from_millis(2));
        let mut link = LinkState::new(model, 3);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let Transit::Arrives { first, duplicate } = link.transit(Duration::ZERO, &odata(i))
            else {
                panic!("lossless link dropped a datagram");
            };
            assert!(duplicate.is_none());
            assert!(first >= Duration::from_millis(5) && first <= Duration::from_millis(7));
            seen.insert(first);
        }
        assert!(seen.len() > 900, "jitter should spread arrivals");
    }

    #[test]
    fn duplication_adds_copies() {
        let mut link = LinkState::new(LinkModel::default().duplicate(0.25), 9);
        for i in 0..10_000 {
            link.transit(Duration::ZERO, &odata(i));
        }
        let dup = link.stats.duplicated as f64 / 10_000.0;
        assert!((0.22..0.28).contains(&dup), "duplicated share {dup}");
        assert_eq!(link.stats.delivered, 10_000 + link.stats.duplicated);
    }

    #[test]
    fn rate_limit_serialises_and_drops_at_the_queue() {
        // 1 MB/s: a 1000-byte datagram takes 1 ms; the queue holds 3 of them.
        let model = LinkModel::new(Duration::ZERO).rate(1_000_000, 3000);
        let mut link = LinkState::new(model, 0);
        let arrivals: Vec<Transit> = (0..5)
            .map(|i| link.transit(Duration::ZERO, &odata(i)))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            arrivals[0],
            Transit::Arrives {
                first: ms(1),
                duplicate: None
            }
        );
        assert_eq!(
            arrivals[1],
            Transit::Arrives {
                first: ms(2),
                duplicate: None
            }
        );
        assert_eq!(
            arrivals[2],
            Transit::Arrives {
                first: ms(3),
                duplicate: None
            }
        );
        assert_eq!(arrivals[3], Transit::Dropped("queue"));
        // Once the queue drains, the link accepts again.
        assert_eq!(
            link.transit(ms(3), &odata(9)),
            Transit::Arrives {
                first: ms(4),
                duplicate: None
            }
        );
    }

    #[test]
    fn mtu_drops_large_datagrams() {
        let mut link = LinkState::new(LinkModel::default().mtu(500), 0);
        assert_eq!(
            link.transit(Duration::ZERO, &odata(0)),
            Transit::Dropped("mtu")
        );
        assert_eq!(link.stats.mtu_drops, 1);
    }
}
