//! rmcast: reliable multicast over UDP.
#![warn(missing_docs)]

mod config;
mod driver;
mod error;
mod group;
mod proto;
mod ring;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
mod stats;
pub(crate) mod wire;

#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use config::GroupConfig;
pub use error::{ConfigError, JoinError, RecvError, SendError};
pub use group::ReliableGroup;
pub use proto::{Event, LostRange, SourceId};
pub use stats::{
    Counter, DropCounters, PacketCounters, RecoveryStats, RttSummary, SocketStats, Stats,
};
