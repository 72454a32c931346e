//! `GroupConfig`: the one public configuration, with documented defaults, validated once in
//! `ReliableGroup::join` (or by the simulator) into an internal [`Settings`] that cannot be invalid.
//!
//! Defaults are tuned for a LAN or a single host: sub-millisecond to ~10 ms RTT, 1,500-byte MTU,
//! tens to thousands of receivers, and a fast default rate (NORM's 64 kbit/s and ZeroMQ-PGM's
//! 100 kbit/s defaults are a standing complaint; rmcast starts at 1 Gbit/s).

use crate::error::ConfigError;
use crate::proto::receiver::BackoffStrategy;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Configuration of one group membership.
///
/// ```
/// use rmcast::GroupConfig;
/// use std::time::Duration;
///
/// let config = GroupConfig::on_loopback("239.255.10.1:7400".parse().unwrap())
///     .rate_limit(Some(200_000_000))
///     .initial_rtt(Duration::from_millis(2))
///     .rng_seed(Some(7));
/// assert_eq!(config.group_addr().port(), 7400);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct GroupConfig {
    pub(crate) group: SocketAddr,
    pub(crate) interface: IpAddr,
    pub(crate) ttl: Option<u32>,
    pub(crate) loopback: bool,
    pub(crate) recv_buffer: usize,
    pub(crate) send_buffer: usize,
    pub(crate) inject_loss_rx: f64,
    pub(crate) inject_loss_tx: f64,
    pub(crate) send_queue_messages: usize,
    pub(crate) recv_queue_events: usize,
    pub(crate) leave_linger: Duration,
    pub(crate) settings: Settings,
}

impl GroupConfig {
    /// A configuration for `group` (an IPv4 multicast address and port) with every default.
    ///
    /// The interface defaults to 127.0.0.1 (loopback) so that nothing leaves the host unless
    /// you name an interface with [`GroupConfig::interface`].
    pub fn new(group: SocketAddr) -> Self {
        GroupConfig {
            group,
            interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ttl: None,
            loopback: true,
            recv_buffer: 32 << 20,
            send_buffer: 8 << 20,
            inject_loss_rx: 0.0,
            inject_loss_tx: 0.0,
            send_queue_messages: 4096,
            recv_queue_events: 65536,
            leave_linger: Duration::from_millis(200),
            settings: Settings::default(),
        }
    }

    /// Loopback-only membership for tests, examples and demos: interface 127.0.0.1, TTL 0,
    /// multicast loop on, so every member on this host hears every other and nothing leaves it.
    pub fn on_loopback(group: SocketAddr) -> Self {
        GroupConfig::new(group)
            .interface(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .ttl(0)
            .loopback(true)
    }

    /// The group address and port.
    #[must_use]
    pub fn group_addr(&self) -> SocketAddr {
        self.group
    }

    /// Local interface (its IPv4 address) to join the group on and send from
    /// (IP_MULTICAST_IF). Default 127.0.0.1.
    pub fn interface(mut self, interface: IpAddr) -> Self {
        self.interface = interface;
        self
    }

    /// Multicast TTL. Default: 0 on the loopback interface (the host only), 1 elsewhere
    /// (the local link).
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Whether this host's own members hear each other's multicast (IP_MULTICAST_LOOP).
    /// Default `true`.
    pub fn loopback(mut self, on: bool) -> Self {
        self.loopback = on;
        self
    }

    /// Socket receive buffer to ask for, in bytes. Default 32 MiB: the kernel's 208 KiB default
    /// loses datagrams at speed. The driver tries SO_RCVBUFFORCE when permitted, else is capped
    /// by `net.core.rmem_max`; [`crate::Stats`] reports what was granted.
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes;
        self
    }

    /// Socket send buffer to ask for, in bytes. Default 8 MiB.
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = bytes;
        self
    }

    /// Testing only: drop this share of received datagrams (`rx`) and of datagrams to send
    /// (`tx`), chosen by the seeded RNG, so recovery can be exercised on real sockets (like
    /// NORM's rx/tx loss). Both in `0.0..1.0`; default 0.
    pub fn inject_loss(mut self, rx: f64, tx: f64) -> Self {
        self.inject_loss_rx = rx;
        self.inject_loss_tx = tx;
        self
    }

    /// Bound of the application → engine message ring. `send` blocks and `try_send` fails with
    /// `Full` when it is full. Default 4096 messages.
    pub fn send_queue(mut self, messages: usize) -> Self {
        self.send_queue_messages = messages;
        self
    }

    /// Bound of the engine → application event ring. When the application does not keep up,
    /// the engine stops reading the socket rather than dropping delivered messages. Default
    /// 65,536 events.
    pub fn recv_queue(mut self, events: usize) -> Self {
        self.recv_queue_events = events;
        self
    }

    /// Seed for every random choice (member id, backoff timers, injected loss). `None` (the
    /// default) seeds from the operating system; a fixed seed makes a run replayable. Within
    /// one process the seed is mixed with the number of earlier joins, so members joined with
    /// the same seed still get distinct ids; members in *different* processes must not share a
    /// fixed seed, or they get the same id and ignore each other's packets as their own.
    pub fn rng_seed(mut self, seed: Option<u64>) -> Self {
        self.settings.rng_seed = seed;
        self
    }

    /// Sending rate limit in bits per second of UDP payload, repairs and control included;
    /// `None` sends as fast as the socket takes. Default 1 Gbit/s.
    pub fn rate_limit(mut self, bits_per_second: Option<u64>) -> Self {
        self.settings.rate_limit_bps = bits_per_second;
        self
    }

    /// Largest datagram (UDP payload) to send, header included. Default 1400 bytes, which fits
    /// a 1500-byte Ethernet MTU with IP/UDP headers and room for tunnels. Range 512..=65000.
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.settings.max_datagram = bytes;
        self
    }

    /// Largest message `send` accepts; larger messages are split into many datagrams.
    /// Default 16 MiB.
    pub fn max_message_len(mut self, bytes: usize) -> Self {
        self.settings.max_message_len = bytes;
        self
    }

    /// Transmit (repair) window bounds: the source keeps at most `packets` datagrams,
    /// `bytes` of payload, and nothing older than `age` for repair. Defaults: 262,144 packets,
    /// 256 MiB, 60 s. Receivers further behind than the window get an `Unrecoverable` event.
    pub fn window(mut self, packets: u32, bytes: usize, age: Duration) -> Self {
        self.settings.window_packets = packets;
        self.settings.window_bytes = bytes;
        self.settings.window_age = age;
        self
    }

    /// RTT assumed for a source until the first measurement. Default 10 ms.
    pub fn initial_rtt(mut self, rtt: Duration) -> Self {
        self.settings.initial_rtt = rtt;
        self
    }

    /// How long a source may stay silent before its state is released and `SourceLost` is
    /// raised. Default 30 s.
    pub fn source_timeout(mut self, timeout: Duration) -> Self {
        self.settings.source_timeout = timeout;
        self
    }

    /// Least time a receiver keeps asking for a missing packet before reporting it
    /// `Unrecoverable`, even when its NAK retries run out sooner. Default 1 s. Data the source
    /// reports gone (left its window) is reported at once.
    pub fn give_up_after(mut self, duration: Duration) -> Self {
        self.settings.nak_give_up_after = duration;
        self
    }

    /// After `leave` (or drop) has sent everything, how long the member keeps answering NAKs
    /// once none arrives: it ends when no NAK came for this long. Default 200 ms. An
    /// application that knows every receiver already has everything (its own end-to-end
    /// confirmation) can shorten it; a receiver that lost the last packets then reports them
    /// `Unrecoverable` instead of getting them repaired.
    pub fn leave_linger(mut self, quiet: Duration) -> Self {
        self.leave_linger = quiet;
        self
    }

    /// How receivers time their NAKs. Default [`BackoffStrategy::Scaled`], the one the
    /// simulator's comparison (`docs/suppression.md`) shows sending the fewest NAKs per shared
    /// loss.
    ///
    /// ```
    /// use rmcast::{BackoffStrategy, GroupConfig};
    ///
    /// // Plain SRM timers, not self-tuned, for a group known to have about 40 receivers, whose
    /// // receivers' reports may use 2 % of the data rate.
    /// let config = GroupConfig::on_loopback("239.255.10.2:7400".parse().unwrap())
    ///     .nak_backoff(BackoffStrategy::Srm)
    ///     .self_tuning(false)
    ///     .group_size(Some(40))
    ///     .session_traffic_share(0.02);
    /// # let _ = config;
    /// ```
    pub fn nak_backoff(mut self, strategy: BackoffStrategy) -> Self {
        self.settings.suppression.strategy = strategy;
        self
    }

    /// Whether the NAK backoff learns from the NAKs it hears (the member that asks alone
    /// becomes the group's requester, duplicates widen the window). Default `true`; without
    /// it the window depends on distance and group size only.
    pub fn self_tuning(mut self, on: bool) -> Self {
        self.settings.suppression.adaptive = on;
        self
    }

    /// The number of receivers the NAK backoff assumes. `None` (the default) estimates it from
    /// the members heard (reports, NAKs, the source's echoes); `Some(n)` fixes it, e.g. for a
    /// group whose size is known. Must not be `Some(0)`.
    pub fn group_size(mut self, receivers: Option<u32>) -> Self {
        self.settings.suppression.group_size = receivers;
        self
    }

    /// Share of a source's data rate that session traffic (receiver reports and the SPM echoes
    /// that measure each receiver's RTT) may use, in `(0, 1]`. Default 0.05. Receivers report
    /// every second at most and stretch the interval with the group size and for slow data
    /// (at most a minute), so that the group's reports stay within half the share (the rest is
    /// left for the source's heartbeats, NAKs and the members' first reports).
    pub fn session_traffic_share(mut self, share: f64) -> Self {
        self.settings.session_share = share;
        self
    }

    /// Peer repair: whether this member, as a receiver, answers other receivers' NAKs from a
    /// cache of the data it received (SRM-style local recovery), and the source waits a
    /// distance-scaled repair timer so that a nearer peer's repair can suppress its own.
    /// Default `false`: in every topology of the suppression table the source is the nearest
    /// holder of a lost packet, so peers never answer first and the source's longer timer only
    /// adds latency (`docs/suppression.md` §4). Turn it on when receivers sit close together
    /// and far from the source (a remote site behind a WAN link). Every member of a group
    /// should use the same setting.
    pub fn peer_repair(mut self, on: bool) -> Self {
        self.settings.peer_repair = on;
        self
    }

    /// Bytes of recently received data kept per source to serve peer repairs (payload plus a
    /// small per-packet overhead; the oldest packets go first). Default 4 MiB; used only with
    /// [`GroupConfig::peer_repair`] on. The bound is per source followed, so a member may hold
    /// up to this times the number of sources it hears (at most 1,024).
    pub fn repair_cache(mut self, bytes: usize) -> Self {
        self.settings.repair_cache_bytes = bytes;
        self
    }

    /// Forward error correction (FEC, `docs/fec.md`): the source groups its packets into
    /// blocks of `k` (1..=255) and sends `p` parity packets with each block (proactive; `p`
    /// may be 0): with `p` = 1 that one is the XOR parity (the byte-wise XOR of the block,
    /// which rebuilds any single loss), with `p` ≥ 2 Reed-Solomon parities 1..=p (any `p`
    /// losses). Receivers ask for more parity instead of single packets (on demand), drawn
    /// from the max(p, k/2, 1) Reed-Solomon parities the source defines per block. Receivers
    /// need no setting: they follow whatever each source sends. Default off (selective repair
    /// only).
    pub fn fec(mut self, k: u8, p: u8) -> Self {
        self.settings.fec = Some((k, p));
        self
    }

    /// Silent receiver: send no NAKs and no reports at all, rely on the sources' proactive
    /// parity, and report what it cannot rebuild as `Unrecoverable` after `give_up_after`
    /// (NORM's and PGM's passive receivers). Default `false`.
    pub fn silent(mut self, on: bool) -> Self {
        self.settings.silent = on;
        self
    }

    /// Validates the protocol part of the configuration.
    pub(crate) fn validate(&self) -> Result<Settings, ConfigError> {
        if !(0.0..1.0).contains(&self.inject_loss_rx) {
            return Err(ConfigError::LossOutOfRange(self.inject_loss_rx));
        }
        if !(0.0..1.0).contains(&self.inject_loss_tx) {
            return Err(ConfigError::LossOutOfRange(self.inject_loss_tx));
        }
        if self.send_queue_messages == 0 {
            return Err(ConfigError::Zero("send_queue"));
        }
        if self.recv_queue_events == 0 {
            return Err(ConfigError::Zero("recv_queue"));
        }
        self.settings.validate()?;
        Ok(self.settings.clone())
    }

    /// Validates the whole configuration, network part included.
    pub(crate) fn validate_network(&self) -> Result<Settings, ConfigError> {
        match self.group {
            SocketAddr::V6(_) => return Err(ConfigError::Ipv6Unsupported(self.group)),
            SocketAddr::V4(v4) if !v4.ip().is_multicast() => {
                return Err(ConfigError::NotMulticast(self.group));
            }
            _ => {}
        }
        if self.group.port() == 0 {
            return Err(ConfigError::ZeroPort);
        }
        if !self.interface.is_ipv4() {
            return Err(ConfigError::InterfaceFamily(self.interface));
        }
        self.validate()
    }

    /// TTL to use: the configured one, else 0 on loopback and 1 elsewhere.
    pub(crate) fn effective_ttl(&self) -> u32 {
        self.ttl
            .unwrap_or(if self.interface.is_loopback() { 0 } else { 1 })
    }
}

/// Validated protocol parameters handed to the sans-IO core.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) rng_seed: Option<u64>,
    pub(crate) rate_limit_bps: Option<u64>,
    pub(crate) max_datagram: usize,
    pub(crate) max_message_len: usize,
    pub(crate) window_packets: u32,
    pub(crate) window_bytes: usize,
    pub(crate) window_age: Duration,
    pub(crate) initial_rtt: Duration,
    pub(crate) source_timeout: Duration,
    // Source side.
    /// Bytes of messages queued for pacing before `can_send` says no (back-pressure).
    pub(crate) send_queue_bytes: usize,
    /// First heartbeat SPM this long after data; the interval doubles while idle...
    pub(crate) spm_interval_min: Duration,
    /// ...up to this ambient interval.
    pub(crate) spm_interval_max: Duration,
    /// After a repair, NAKs for the same packet are ignored this long (at least; the source may
    /// stretch it to one measured RTT).
    pub(crate) repair_linger: Duration,
    // Receiver side.
    /// Shortest interval of receiver reports to each source (jittered); the session budget
    /// stretches it in large groups or at low data rates.
    pub(crate) report_interval: Duration,
    /// Share of a source's data rate that session traffic (reports and their SPM echoes) may
    /// use, in `(0, 1]`.
    pub(crate) session_share: f64,
    /// NAK backoff lower bound, in one-way distances to the source (SRM C1).
    pub(crate) nak_backoff_c1: f64,
    /// NAK backoff spread, in one-way distances to the source (SRM C2).
    pub(crate) nak_backoff_c2: f64,
    /// How NAK backoffs are drawn, whether they self-tune, and the group size they assume.
    pub(crate) suppression: crate::proto::receiver::Suppression,
    /// NAK repeats without hearing an NCF before giving up on a packet. Default 10: at 30 %
    /// loss on a leaf uplink, 3 gave up on repairable data in ~1.7 % of packets (NORM and UFTP
    /// use a robustness factor of 20).
    pub(crate) nak_ncf_retries: u32,
    /// Times an NCF'd packet may fail to arrive (NAK cycle restarted) before giving up.
    pub(crate) nak_data_retries: u32,
    /// Least time from finding a packet missing to giving it up when retries run out (the
    /// source saying the data is gone ends recovery sooner).
    pub(crate) nak_give_up_after: Duration,
    /// Receivers answer each other's NAKs from a cache; the source waits a repair timer.
    pub(crate) peer_repair: bool,
    /// Bytes of received data cached per source for peer repair.
    pub(crate) repair_cache_bytes: usize,
    /// Repair delay lower bound, in one-way distances to the requester (SRM D1).
    pub(crate) repair_d1: f64,
    /// Repair delay spread, in one-way distances to the requester (SRM D2).
    pub(crate) repair_d2: f64,
    /// Most sources tracked at once; further sources are ignored (counted as out of window).
    pub(crate) max_sources: usize,
    /// A receiver meeting a source mid-stream asks for up to this many older packets still in
    /// the source's window (late-join backfill); 0 starts at the first packet heard.
    pub(crate) join_backfill_packets: u32,
    /// FEC `(k, p)` for this member's stream; `None` sends no parity.
    pub(crate) fec: Option<(u8, u8)>,
    /// A block still open this long after its last packet is closed with a smaller k.
    pub(crate) fec_flush: Duration,
    /// Receive side sends no NAKs and no reports.
    pub(crate) silent: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rng_seed: None,
            rate_limit_bps: Some(1_000_000_000),
            max_datagram: 1400,
            max_message_len: 16 << 20,
            window_packets: 1 << 18,
            window_bytes: 256 << 20,
            window_age: Duration::from_secs(60),
            initial_rtt: Duration::from_millis(10),
            source_timeout: Duration::from_secs(30),
            send_queue_bytes: 16 << 20,
            spm_interval_min: Duration::from_millis(2),
            spm_interval_max: Duration::from_secs(1),
            repair_linger: Duration::from_millis(2),
            report_interval: Duration::from_secs(1),
            session_share: crate::proto::receiver::DEFAULT_SESSION_SHARE,
            nak_backoff_c1: 1.0,
            nak_backoff_c2: 2.0,
            suppression: crate::proto::receiver::Suppression::default(),
            nak_ncf_retries: 10,
            nak_data_retries: 10,
            nak_give_up_after: Duration::from_secs(1),
            peer_repair: false,
            repair_cache_bytes: 4 << 20,
            repair_d1: crate::proto::repair_timer::DEFAULT_D1,
            repair_d2: crate::proto::repair_timer::DEFAULT_D2,
            max_sources: 1024,
            join_backfill_packets: 1024,
            fec: None,
            fec_flush: Duration::from_millis(5),
            silent: false,
        }
    }
}

impl Settings {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(512..=65000).contains(&self.max_datagram) {
            return Err(ConfigError::DatagramSize(self.max_datagram));
        }
        if self.window_packets == 0 {
            return Err(ConfigError::Zero("window packets"));
        }
        if self.window_bytes == 0 {
            return Err(ConfigError::Zero("window bytes"));
        }
        if self.max_message_len > self.window_bytes {
            return Err(ConfigError::MessageExceedsWindow {
                max_message_len: self.max_message_len,
                window_bytes: self.window_bytes,
            });
        }
        if self.rate_limit_bps == Some(0) {
            return Err(ConfigError::Zero("rate_limit"));
        }
        if self.initial_rtt.is_zero() {
            return Err(ConfigError::Zero("initial_rtt"));
        }
        if self.suppression.group_size == Some(0) {
            return Err(ConfigError::Zero("group_size"));
        }
        if !(self.session_share > 0.0 && self.session_share <= 1.0) {
            return Err(ConfigError::OutOfRange {
                name: "session_traffic_share",
                value: self.session_share.to_string(),
                hint: "a share of the data rate in (0, 1], such as 0.05",
            });
        }
        if let Some((k, _)) = self.fec
            && k == 0
        {
            return Err(ConfigError::Zero("fec k"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GroupConfig {
        GroupConfig::on_loopback("239.255.10.3:7400".parse().unwrap())
    }

    #[test]
    fn suppression_setters_reach_the_settings() {
        let defaults = config().validate().unwrap();
        assert_eq!(defaults.suppression.strategy, BackoffStrategy::Scaled);
        assert!(defaults.suppression.adaptive);
        assert_eq!(defaults.suppression.group_size, None);
        assert_eq!(defaults.session_share, 0.05);
        let settings = config()
            .nak_backoff(BackoffStrategy::NormLike)
            .self_tuning(false)
            .group_size(Some(250))
            .session_traffic_share(0.01)
            .validate()
            .unwrap();
        assert_eq!(settings.suppression.strategy, BackoffStrategy::NormLike);
        assert!(!settings.suppression.adaptive);
        assert_eq!(settings.suppression.group_size, Some(250));
        assert_eq!(settings.session_share, 0.01);
    }

    #[test]
    fn out_of_range_suppression_settings_are_rejected() {
        assert!(matches!(
            config().group_size(Some(0)).validate(),
            Err(ConfigError::Zero("group_size"))
        ));
        for share in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(
                matches!(
                    config().session_traffic_share(share).validate(),
                    Err(ConfigError::OutOfRange {
                        name: "session_traffic_share",
                        ..
                    })
                ),
                "{share}"
            );
        }
        assert!(config().session_traffic_share(1.0).validate().is_ok());
    }
}
