//! rmcast: reliable multicast over UDP.
//!
//! One member sends whole messages; every member of the group receives them intact and in
//! order per source. Lost packets are found from sequence gaps and from the source's heartbeat
//! (SPM), asked for with NAKs after a randomized backoff scaled by the measured distance to the
//! source, suppressed when another receiver's NAK or the source's confirmation (NCF) is heard,
//! and repaired with RDATA. What cannot be repaired any more is reported as
//! [`Event::Unrecoverable`] — never a silent hole.
//!
//! # Quick start
//!
//! ```
//! use rmcast::{Event, GroupConfig, ReliableGroup};
//! use std::time::Duration;
//!
//! // Loopback only (interface 127.0.0.1, TTL 0): nothing leaves this host.
//! let group = "239.255.75.1:47500".parse()?;
//! let sender = ReliableGroup::join(GroupConfig::on_loopback(group))?;
//! let receiver = ReliableGroup::join(GroupConfig::on_loopback(group))?;
//!
//! // A message larger than one datagram is split and reassembled transparently.
//! let big = vec![7u8; 100_000];
//! sender.send(big.clone())?;
//!
//! let data = loop {
//!     match receiver.recv_timeout(Duration::from_secs(5))? {
//!         Event::Message { data, .. } => break data,
//!         Event::Unrecoverable { range, .. } => panic!("lost {} packets", range.len()),
//!         _ => {} // SourceJoined and friends
//!     }
//! };
//! assert_eq!(&data[..], &big[..]);
//! println!("NAKs sent so far: {}", receiver.stats().recovery.naks_sent);
//! sender.leave();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//!
//! - `wire`: the packet codec (explicit big-endian layout, `docs/wire.md`); decoding never panics.
//! - `proto`: the sans-IO protocol core — datagrams and `now` in; datagrams, the next timer
//!   deadline and [`Event`]s out. No sockets, threads, clocks or global randomness.
//! - [`sim`] (feature `sim`): a deterministic multicast network simulator driving the same core.
//! - `driver`: the engine thread and batched UDP sockets; [`ReliableGroup`] is its public face.
//!
//! See `ARCHITECTURE.md` for the map and invariants.
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod config;
mod driver;
mod error;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
mod group;
mod proto;
mod ring;
mod stats;
#[cfg(test)]
mod test_alloc;
pub(crate) mod wire;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use config::GroupConfig;
pub use error::{ConfigError, JoinError, RecvError, SendError};
pub use group::ReliableGroup;
pub use proto::receiver::BackoffStrategy;
pub use proto::{Event, LostRange, SourceId};
pub use stats::{
    Counter, DropCounters, PacketCounters, RecoveryStats, RttSummary, SocketStats, Stats,
};
