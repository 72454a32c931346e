//! Counters the protocol core and the driver keep, returned by `ReliableGroup::stats()` and
//! read by the simulator and benches. Plain `Copy` structs of `u64`s, `#[non_exhaustive]` so
//! new counters are not a breaking change.

use std::time::Duration;

/// Packets and bytes of one kind.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Datagrams.
    pub packets: u64,
    /// Bytes, headers included (UDP payload length).
    pub bytes: u64,
}

impl Counter {
    /// Counts one datagram of `len` bytes.
    pub fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// Datagrams by packet type, in one direction.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketCounters {
    /// Original data.
    pub odata: Counter,
    /// Repairs (retransmitted data): the source's RDATA and receivers' PEER_RDATA.
    pub rdata: Counter,
    /// Negative acknowledgements.
    pub nak: Counter,
    /// NAK confirmations.
    pub ncf: Counter,
    /// Source path messages (heartbeats).
    pub spm: Counter,
    /// Receiver reports.
    pub report: Counter,
    /// PARITY (FEC) packets.
    pub parity: Counter,
}

impl PacketCounters {
    /// Sum over all packet types.
    #[must_use]
    pub fn total(&self) -> Counter {
        let all = [
            self.odata,
            self.rdata,
            self.nak,
            self.ncf,
            self.spm,
            self.report,
            self.parity,
        ];
        Counter {
            packets: all.iter().map(|c| c.packets).sum(),
            bytes: all.iter().map(|c| c.bytes).sum(),
        }
    }
}

/// Loss recovery: what this member asked for, answered and repaired.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Sequence numbers found missing (gaps detected), counted once each.
    pub gaps_detected: u64,
    /// NAKs sent by this member as a receiver.
    pub naks_sent: u64,
    /// Pending NAKs cancelled because another receiver's NAK or the source's NCF was heard.
    pub naks_suppressed: u64,
    /// NAKs this member received as a source.
    pub naks_received: u64,
    /// NAKs received for data just repaired (ignored during the linger).
    pub naks_ignored_linger: u64,
    /// NAKs received for data whose RDATA was already waiting (merged by the aggregation
    /// window or the repair timer).
    pub naks_aggregated: u64,
    /// NCFs sent as a source.
    pub ncfs_sent: u64,
    /// NCFs heard as a receiver for a stream it follows.
    pub ncfs_received: u64,
    /// RDATA packets sent as a source.
    pub repairs_sent: u64,
    /// Missing packets filled by RDATA as a receiver.
    pub repairs_received: u64,
    /// Repairs sent as a receiver from its cache (peer repair; counted in `tx.rdata` too).
    pub peer_repairs_sent: u64,
    /// Pending repairs (source or peer) cancelled because another member's repair was heard.
    pub repairs_suppressed: u64,
    /// Pending peer repairs dropped because the source's NCF promised its own repair.
    pub repairs_deferred: u64,
    /// Data packets received that were already held or delivered.
    pub duplicates: u64,
    /// Sequence numbers given up on and reported as unrecoverable.
    pub unrecoverable_packets: u64,
    /// `Unrecoverable` events raised.
    pub unrecoverable_events: u64,
    /// FEC, source: PARITY packets sent proactively, with their block.
    pub parity_sent_proactive: u64,
    /// FEC, source: PARITY packets sent in answer to parity NAKs.
    pub parity_sent_on_demand: u64,
    /// FEC, source: parity NAKs received (also counted in `naks_received`).
    pub parity_naks_received: u64,
    /// FEC, receiver: parity NAKs sent (also counted in `naks_sent`).
    pub parity_naks_sent: u64,
    /// FEC, receiver: PARITY packets received for a stream it follows.
    pub parity_received: u64,
    /// FEC, receiver: parity symbols consumed by successful decodes (one per packet rebuilt).
    pub parity_used: u64,
    /// FEC, receiver: blocks in which at least one missing packet was rebuilt from parity.
    pub blocks_recovered: u64,
    /// FEC, receiver: packets rebuilt from parity (also counted in `repairs_received`).
    pub packets_recovered: u64,
    /// FEC, source: blocks closed (full, or short by the flush timer).
    pub blocks_sent: u64,
    /// FEC, receiver: blocks for which it sent at least one NAK (parity or selective).
    pub blocks_naked: u64,
    /// FEC, receiver: blocks passed by the delivery point with packets neither received nor
    /// rebuilt (their losses were reported as `Unrecoverable`).
    pub blocks_unrecovered: u64,
}

/// Datagrams dropped because they could not be decoded or did not belong here, by reason.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Shorter than the fields they announce.
    pub truncated: u64,
    /// Version byte not understood.
    pub unknown_version: u64,
    /// Type byte not understood.
    pub unknown_type: u64,
    /// Type reserved for a feature this build lacks.
    pub reserved_type: u64,
    /// A length or count disagreed with the datagram.
    pub length_mismatch: u64,
    /// A field held a forbidden value.
    pub malformed: u64,
    /// Valid packets that made no sense in the current state (e.g. data far outside any window).
    pub out_of_window: u64,
    /// Packets that echo this member's own id back (own multicast looped back).
    pub own: u64,
}

impl DropCounters {
    /// Counts one drop under the reason name `reason` (a `WireError::reason()` value or
    /// `"out_of_window"` / `"own"`); unknown names count as malformed.
    pub fn count(&mut self, reason: &str) {
        let slot = match reason {
            "truncated" => &mut self.truncated,
            "unknown_version" => &mut self.unknown_version,
            "unknown_type" => &mut self.unknown_type,
            "reserved_type" => &mut self.reserved_type,
            "length_mismatch" => &mut self.length_mismatch,
            "out_of_window" => &mut self.out_of_window,
            "own" => &mut self.own,
            _ => &mut self.malformed,
        };
        *slot += 1;
    }

    /// Datagrams that failed to decode (all reasons but `out_of_window` and `own`).
    #[must_use]
    pub fn malformed_total(&self) -> u64 {
        self.truncated
            + self.unknown_version
            + self.unknown_type
            + self.reserved_type
            + self.length_mismatch
            + self.malformed
    }
}

/// Round-trip-time estimates to the sources this member hears.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttSummary {
    /// Sources with at least one RTT sample.
    pub sources_measured: u64,
    /// Smallest smoothed RTT among them.
    pub min: Duration,
    /// Largest smoothed RTT among them.
    pub max: Duration,
    /// Total RTT samples taken.
    pub samples: u64,
}

/// What the socket layer was granted and did (filled by the driver; zero in the simulator).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Receive buffer size the kernel granted, in bytes, as read back with `getsockopt` (Linux
    /// reports twice the usable payload space, since it counts its own bookkeeping).
    pub recv_buffer: u64,
    /// Send buffer size the kernel granted, in bytes, as read back (doubled on Linux, as above).
    pub send_buffer: u64,
    /// Largest number of datagrams the send path may hand the kernel in one segmentation offload call (1 = no GSO).
    pub gso_segments: u64,
    /// Largest number of datagrams the kernel may coalesce in one receive (1 = no GRO).
    pub gro_segments: u64,
    /// Datagrams dropped on receive by `inject_loss` (testing only).
    pub injected_rx_drops: u64,
    /// Datagrams dropped on transmit by `inject_loss` (testing only).
    pub injected_tx_drops: u64,
    /// Send system calls that failed (the datagram was lost locally).
    pub send_errors: u64,
}

/// All counters of one group member.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent, by type.
    pub tx: PacketCounters,
    /// Datagrams received and decoded, by type.
    pub rx: PacketCounters,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages delivered to the application (from all sources).
    pub messages_delivered: u64,
    /// Bytes of message payload delivered to the application.
    pub bytes_delivered: u64,
    /// NAKs, NCFs, repairs and losses.
    pub recovery: RecoveryStats,
    /// Dropped datagrams by reason.
    pub drops: DropCounters,
    /// Current RTT estimates.
    pub rtt: RttSummary,
    /// Socket-level facts (driver only).
    pub socket: SocketStats,
}
