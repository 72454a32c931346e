//! The send side of one member: sequencing and fragmentation, the transmit window, pacing,
//! SPM heartbeats, and answering NAKs (NCF at once, then RDATA, then a linger).

use super::Context;
use crate::config::Settings;
use crate::error::SendError;
use crate::wire::{Nak, Report, SeqNum, StreamId};
use bytes::Bytes;
use std::time::Instant;

/// This member's outgoing stream.
pub(crate) struct SourceState {}

impl SourceState {
    pub(crate) fn new(
        settings: &Settings,
        stream: StreamId,
        first_seq: SeqNum,
        now: Instant,
    ) -> Self {
        let _ = (settings, stream, first_seq, now);
        todo!("source helper")
    }

    /// Queues a message (fragmented into packets).
    pub(crate) fn send(&mut self, ctx: &mut Context<'_>, message: Bytes) -> Result<(), SendError> {
        let _ = (ctx, message);
        todo!()
    }

    /// Whether the send queue has room for another message.
    pub(crate) fn can_send(&self) -> bool {
        todo!()
    }

    /// Stops accepting messages (leave).
    pub(crate) fn close(&mut self) {
        todo!()
    }

    /// Nothing queued and no repair pending.
    pub(crate) fn is_idle(&self) -> bool {
        todo!()
    }

    /// A NAK for this member's stream.
    pub(crate) fn handle_nak(&mut self, ctx: &mut Context<'_>, nak: &Nak) {
        let _ = (ctx, nak);
        todo!()
    }

    /// A receiver report about this member's stream.
    pub(crate) fn handle_report(&mut self, ctx: &mut Context<'_>, report: &Report) {
        let _ = (ctx, report);
        todo!()
    }

    /// Runs due timers (heartbeat, repairs, window age).
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
        todo!()
    }

    /// Next datagram due now (paced), for the group.
    pub(crate) fn poll_transmit(&mut self, ctx: &mut Context<'_>) -> Option<Bytes> {
        let _ = ctx;
        todo!()
    }

    /// Earliest instant with work (a timer or the pacer allowing the next datagram).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        todo!()
    }
}
