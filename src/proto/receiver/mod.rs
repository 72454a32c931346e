//! The receive side of one member: one state per source heard, gap detection, NAKs,
//! reassembly and in-order delivery.

use super::Context;
use crate::config::Settings;
use crate::proto::Event;
use crate::stats::RttSummary;
use crate::wire::{Data, Nak, Ncf, Spm};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

/// Every source this member hears.
pub(crate) struct ReceiverState {}

impl ReceiverState {
    pub(crate) fn new(settings: &Settings, member: u64) -> Self {
        let _ = (settings, member);
        todo!("receiver helper")
    }

    pub(crate) fn handle_data(&mut self, ctx: &mut Context<'_>, from: SocketAddr, data: Data) {
        let _ = (ctx, from, data);
        todo!()
    }

    pub(crate) fn handle_spm(&mut self, ctx: &mut Context<'_>, from: SocketAddr, spm: &Spm) {
        let _ = (ctx, from, spm);
        todo!()
    }

    pub(crate) fn handle_ncf(&mut self, ctx: &mut Context<'_>, ncf: &Ncf) {
        let _ = (ctx, ncf);
        todo!()
    }

    /// Another receiver's NAK (multicast): suppresses our own pending NAK for the same data.
    pub(crate) fn handle_foreign_nak(&mut self, ctx: &mut Context<'_>, nak: &Nak) {
        let _ = (ctx, nak);
        todo!()
    }

    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
        todo!()
    }

    /// Next NAK or report to send.
    pub(crate) fn poll_transmit(&mut self, ctx: &mut Context<'_>) -> Option<Bytes> {
        let _ = ctx;
        todo!()
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        todo!()
    }

    pub(crate) fn rtt_summary(&self) -> RttSummary {
        todo!()
    }
}
