//! The public face: `ReliableGroup` (join, send, recv, stats, leave).

use crate::config::GroupConfig;
use crate::error::{JoinError, RecvError, SendError};
use crate::proto::{Event, SourceId};
use crate::stats::Stats;
use bytes::Bytes;
use std::time::Duration;

/// A membership of one multicast group: send whole messages to every member and receive
/// theirs, reliably and in order per source.
pub struct ReliableGroup {
    _private: (),
}

impl ReliableGroup {
    /// Joins the group described by `config` and starts its engine thread.
    pub fn join(config: GroupConfig) -> Result<ReliableGroup, JoinError> {
        let _ = config;
        todo!("driver helper")
    }

    /// This member's source id.
    #[must_use]
    pub fn id(&self) -> SourceId {
        todo!()
    }

    /// Sends a message to the group, blocking while the send queue is full.
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        let _ = message.into();
        todo!()
    }

    /// Sends without blocking; `Err(SendError::Full)` when the queue is full.
    pub fn try_send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        let _ = message.into();
        todo!()
    }

    /// Waits for the next event.
    pub fn recv(&self) -> Result<Event, RecvError> {
        todo!()
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvError> {
        let _ = timeout;
        todo!()
    }

    /// Returns the next event if one is waiting.
    pub fn try_recv(&self) -> Result<Event, RecvError> {
        todo!()
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        todo!()
    }

    /// Leaves the group: sends what is queued, keeps answering repairs for a linger, then
    /// stops the engine.
    pub fn leave(self) {
        todo!()
    }
}
