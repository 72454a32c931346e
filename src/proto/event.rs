//! What the protocol core hands out: application events and datagrams to transmit.

use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;

/// Identifies a sending member of a group: a random 64-bit id chosen when it joined.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u64);

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A run of lost packet sequence numbers of one source: `first ..= last` (wrapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LostRange {
    /// First lost sequence number.
    pub first: u32,
    /// Last lost sequence number (inclusive).
    pub last: u32,
}

impl LostRange {
    /// Number of sequence numbers in the range.
    #[must_use]
    pub fn len(&self) -> u64 {
        u64::from(self.last.wrapping_sub(self.first)) + 1
    }

    /// Always `false`: a range holds at least one sequence number.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Something the application must hear about. Delivered in order per source.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A whole message from `source`, in the order that source sent it.
    Message {
        /// Who sent it.
        source: SourceId,
        /// The message bytes.
        data: Bytes,
    },
    /// Packets of `source` that can no longer be recovered: the messages they carried are lost.
    /// Delivery continues after them; this is never a silent hole.
    Unrecoverable {
        /// Whose data was lost.
        source: SourceId,
        /// The lost sequence numbers.
        range: LostRange,
    },
    /// A source was heard for the first time.
    SourceJoined {
        /// The new source.
        source: SourceId,
    },
    /// A known source restarted (new instance): its old stream ended, a new one began.
    SourceRestarted {
        /// The restarted source.
        source: SourceId,
    },
    /// A source fell silent for longer than the source timeout; its state was released.
    SourceLost {
        /// The silent source.
        source: SourceId,
    },
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(any(test, feature = "sim")),
    expect(unreachable_pub, reason = "public only through the sim feature")
)]
pub enum Destination {
    /// The group's multicast address.
    Group,
    /// One member, by unicast (the simulator routes it; the core does not emit it yet —
    /// unicast repair to and from designated local repairers will).
    #[cfg_attr(
        not(any(test, feature = "sim")),
        expect(
            dead_code,
            reason = "unicast repair paths are not wired into the core yet"
        )
    )]
    Peer(SocketAddr),
}

/// A datagram the core wants sent (the simulator's form; the engine has the core write
/// datagrams straight into its send batch instead).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg(any(test, feature = "sim"))]
pub struct Transmit {
    /// Where to send it.
    pub destination: Destination,
    /// The encoded packet.
    pub payload: Bytes,
}
