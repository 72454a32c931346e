//! The send side of one member: sequencing and fragmentation, the transmit window, pacing,
//! SPM heartbeats, and answering NAKs (NCF at once, then RDATA, then a linger).
//!
//! [`SourceState`] ties together one idea per module:
//! - [`fragment`]: the send queue, cut lazily into datagram-sized fragments;
//! - [`window`]: sent packets kept for repair, bounded by packets, bytes and age;
//! - [`pacer`]: the token bucket every ODATA, RDATA and SPM passes (NCFs are charged, never
//!   held);
//! - [`heartbeat`]: when SPMs are due and the RTT echoes they carry;
//! - [`repair`]: NAK classification, NCFs and the RDATA queue;
//! - [`repair_timing`]: when each RDATA is due (at once, after an aggregation window, or after
//!   the repair timer with peer repair) and what other members' repairs teach;
//! - [`rtt`]: the group RTT from receiver reports, which stretches the repair linger;
//! - [`fec_blocks`]: with `fec(k, p)`, blocks, proactive parity and parity-NAK answers.
//!
//! Transmit order: NCFs (small, unpaced: delaying them delays every receiver's suppression),
//! then — when the pacer allows — RDATA, a due SPM, ODATA. A due SPM goes before ODATA, not
//! after it: under a sustained backlog the ODATA queue never empties and an SPM placed last
//! would starve, taking RTT echoes and the ambient heartbeat with it (a heartbeat SPM is only
//! due after a pause in data anyway, so this costs nothing when idle).
//!
//! Invariants: sequence numbers are handed out contiguously from `first_seq`, one per fragment,
//! in send order; every ODATA, RDATA, NCF and SPM carries the window's current trail; SPMs
//! advertise `lead` = one past the newest *sent* packet; no structure grows with network input
//! beyond a fixed bound (see each module).
//!
//! Choices beyond the first design, each for a reason:
//! - SPM before ODATA (above), and an ambient SPM at least every `spm_interval_max` even while
//!   data flows ([`heartbeat`]): a backlogged source still delivers echoes and edges.
//! - The "last repaired at" of the linger lives in the window entry: bounded by the window,
//!   gone with the packet, nothing to prune.
//! - The RTT part of the linger is capped at [`MAX_RTT_LINGER`]: the linger silences repairs,
//!   so one slow or lying receiver must not silence them for long.
//! - `can_send` counts each waiting message's datagram overhead too: a loop sending empty
//!   messages while `can_send` holds must end.
//! - The packet just sent is never evicted by the byte bound, so an ODATA's trail never lies
//!   past the ODATA itself.
//! - NCFs are charged to the bucket but never wait for it, and the bucket's debt is floored:
//!   a NAK flood delays data by at most one burst.

mod fec_blocks;
mod fragment;
mod heartbeat;
mod pacer;
mod repair;
mod repair_timing;
mod rtt;
mod window;

use super::Context;
use crate::config::Settings;
use crate::error::SendError;
use crate::proto::repair_timer::RepairTimer;
use crate::wire::{
    Data, HEADER_LEN, Nak, Ncf, Packet, ParityNak, Report, SeqNum, SeqRange, Spm, StreamId,
};
use bytes::Bytes;
use fec_blocks::{FecParams, ParityAnswer};
pub(crate) use fec_blocks::{SOURCE_HEADER_LEN, read_source_symbol, write_source_symbol};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes of ODATA/RDATA fields after the common header (trail, seq, message length, offset).
pub(crate) const DATA_FIELDS_LEN: usize = 16;

/// Upper bound on the RTT-driven part of the repair linger: a linger ignores NAKs, so an
/// inflated estimate (a slow or lying receiver) must not silence repairs for long.
const MAX_RTT_LINGER: Duration = Duration::from_secs(1);

/// This member's outgoing stream.
pub(crate) struct SourceState {
    stream: StreamId,
    max_message_len: usize,
    send_queue_bytes: usize,
    repair_linger: Duration,
    /// The RTT assumed before any report measured one (the receivers' initial RTT too).
    initial_rtt: Duration,
    closed: bool,
    queue: fragment::SendQueue,
    window: window::TransmitWindow,
    pacer: pacer::Pacer,
    heartbeat: heartbeat::Heartbeat,
    rtt: rtt::GroupRtt,
    repairs: repair::RepairQueue,
    timing: repair_timing::RepairTiming,
    ncfs: VecDeque<Bytes>,
    /// FEC blocks and parity, when `fec(k, p)` is configured.
    fec: Option<fec_blocks::FecSender>,
}

impl SourceState {
    /// A source for `stream` whose first packet will be `first_seq`, with a full pacing
    /// bucket at `now`. It stays silent (no SPMs) until the first message is sent.
    pub(crate) fn new(
        settings: &Settings,
        stream: StreamId,
        first_seq: SeqNum,
        now: Instant,
    ) -> Self {
        // With FEC a payload must also fit a PARITY datagram, whose symbol frames it.
        let overhead = if settings.fec.is_some() {
            fec_blocks::PARITY_OVERHEAD
        } else {
            HEADER_LEN + DATA_FIELDS_LEN
        };
        let max_payload = settings.max_datagram.saturating_sub(overhead);
        // `message_len` is a u32 on the wire.
        let max_message_len = settings.max_message_len.min(u32::MAX as usize);
        SourceState {
            stream,
            max_message_len,
            send_queue_bytes: settings.send_queue_bytes,
            repair_linger: settings.repair_linger,
            initial_rtt: settings.initial_rtt,
            closed: false,
            queue: fragment::SendQueue::new(max_payload),
            window: window::TransmitWindow::new(
                first_seq,
                window::Limits {
                    packets: settings.window_packets,
                    bytes: settings.window_bytes,
                    age: settings.window_age,
                },
            ),
            pacer: pacer::Pacer::new(settings.rate_limit_bps, now),
            heartbeat: heartbeat::Heartbeat::new(
                settings.spm_interval_min,
                settings.spm_interval_max,
            ),
            // A receiver reports at most every `report_interval`, at least every
            // MAX_REPORT_INTERVAL (the session budget picks): three of the longest missed
            // make it stale.
            rtt: rtt::GroupRtt::new(
                crate::proto::receiver::MAX_REPORT_INTERVAL.saturating_mul(3),
                settings.report_interval,
            ),
            repairs: repair::RepairQueue::default(),
            timing: repair_timing::RepairTiming::new(
                repair_timing::RepairMode::of(settings.suppression.strategy, settings.peer_repair),
                RepairTimer::new(
                    settings.repair_d1,
                    settings.repair_d2,
                    settings.suppression.adaptive,
                )
                .with_bounds(
                    crate::proto::repair_timer::SOURCE_MIN_REPAIR_FACTOR,
                    crate::proto::repair_timer::SOURCE_MAX_REPAIR_FACTOR,
                ),
            ),
            ncfs: VecDeque::new(),
            // A shape the coder refuses (checked by `Settings::validate`) sends no parity.
            fec: settings.fec.and_then(|(k, p)| {
                let params = FecParams::new(k, p, settings.fec_flush);
                fec_blocks::FecSender::new(params, stream, max_payload).ok()
            }),
        }
    }

    /// Queues a message (fragmented into packets).
    pub(crate) fn send(&mut self, ctx: &mut Context<'_>, message: Bytes) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if message.len() > self.max_message_len {
            return Err(SendError::TooLarge {
                len: message.len(),
                max: self.max_message_len,
            });
        }
        self.queue.push(message);
        ctx.stats.messages_sent += 1;
        Ok(())
    }

    /// Whether the send queue has room for another message.
    pub(crate) fn can_send(&self) -> bool {
        // Admit while under the bound even if this message overshoots it: a message larger
        // than the bound must still be sendable. Each message also costs its datagram
        // overhead, so a loop sending empty messages while `can_send` still terminates.
        !self.closed && self.queue.backlog(HEADER_LEN + DATA_FIELDS_LEN) < self.send_queue_bytes
    }

    /// Stops accepting messages (leave).
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Nothing queued and no repair pending.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.repairs.is_empty()
            && self.ncfs.is_empty()
            && self
                .fec
                .as_ref()
                .is_none_or(|fec| !fec.has_queued() && fec.flush_at().is_none())
    }

    /// A NAK for this member's stream.
    pub(crate) fn handle_nak(&mut self, ctx: &mut Context<'_>, nak: &Nak) {
        ctx.stats.recovery.naks_received += 1;
        if nak.stream != self.stream {
            // An older incarnation's stream: nothing of it is held.
            ctx.stats.drops.count("out_of_window");
            return;
        }
        let trail = self.window.trail();
        let trail_index = self.window.trail_index();
        let split = repair::split_ranges(&nak.ranges, trail, self.window.len());
        if split.any_unsent {
            ctx.stats.drops.count("out_of_window");
        }
        let linger = self.linger();
        let rtt = self
            .rtt
            .member(nak.requester)
            .unwrap_or_else(|| self.group_rtt());
        let due = ctx
            .now
            .checked_add(self.timing.delay(ctx.rng, rtt, ctx.now))
            .unwrap_or(ctx.now);
        let mut lingered = false;
        let mut aggregated = false;
        let mut confirmed = Vec::with_capacity(split.held.len());
        for &(offset, count) in &split.held {
            let first = trail_index + offset;
            for index in first..first + u64::from(count) {
                let Some(entry) = self.window.get_mut(index) else {
                    continue;
                };
                if entry.repair_queued {
                    aggregated = true;
                    continue;
                }
                let just_repaired = entry
                    .repaired_at
                    .is_some_and(|at| ctx.now.saturating_duration_since(at) < linger);
                if just_repaired {
                    lingered = true;
                } else {
                    entry.repair_queued = true;
                    self.repairs.schedule(index, due);
                }
            }
            // Lingering packets are confirmed too: their RDATA crossed this NAK in flight.
            // Confirming moves the requester to waiting for data (the RDATA about to arrive);
            // leaving them out would make it repeat the NAK and spend its NCF retries, and
            // possibly declare data lost that is on its way.
            confirmed.push(SeqRange {
                first: self.window.seq_of(first),
                count,
            });
        }
        if lingered {
            ctx.stats.recovery.naks_ignored_linger += 1;
        }
        if aggregated {
            ctx.stats.recovery.naks_aggregated += 1;
        }
        if !confirmed.is_empty() {
            let template =
                repair::ncf_template(self.stream, false, nak.requester, nak.timestamp, trail);
            repair::queue_ncfs(&mut self.ncfs, &template, &confirmed);
        }
        if !split.gone.is_empty() {
            let template =
                repair::ncf_template(self.stream, true, nak.requester, nak.timestamp, trail);
            repair::queue_ncfs(&mut self.ncfs, &template, &split.gone);
        }
    }

    /// A parity NAK for this member's stream: NCF each known block at once, then queue the
    /// parity asked for (`fec_blocks`). Without FEC, or for a block it no longer knows, the
    /// requester falls back to selective NAKs after its parity rounds.
    pub(crate) fn handle_parity_nak(&mut self, ctx: &mut Context<'_>, nak: &ParityNak) {
        ctx.stats.recovery.naks_received += 1;
        ctx.stats.recovery.parity_naks_received += 1;
        let (now, round) = (ctx.now, self.linger());
        let Some(fec) = self.fec.as_mut().filter(|_| nak.stream == self.stream) else {
            ctx.stats.drops.count("out_of_window");
            return;
        };
        let (mut coming, mut exhausted) = (Vec::new(), Vec::new());
        for request in &nak.blocks {
            let (block, needed) = (request.first, request.count);
            match fec.on_parity_nak(&self.window, block, needed, now, round, ctx.stats) {
                Some(ParityAnswer::Coming(range)) => coming.push(range),
                Some(ParityAnswer::Exhausted(range)) => exhausted.push(range),
                None => ctx.stats.drops.count("out_of_window"),
            }
        }
        // One PARITY_NCF (a parity NAK carries at most MAX_RANGES blocks, as it does) saying
        // per block how much parity is coming: receivers needing more keep their NAKs; and
        // one with GONE for blocks with no parity left: their receivers go selective.
        for (gone, ranges) in [(false, coming), (true, exhausted)] {
            if ranges.is_empty() || self.ncfs.len() >= repair::MAX_PENDING_NCFS {
                continue;
            }
            let trail = self.window.trail();
            let template =
                repair::ncf_template(self.stream, gone, nak.requester, nak.timestamp, trail);
            let ncf = Ncf { ranges, ..template };
            self.ncfs.push_back(Packet::ParityNcf(ncf).to_bytes());
        }
    }

    /// A receiver report about this member's stream.
    pub(crate) fn handle_report(&mut self, ctx: &mut Context<'_>, report: &Report) {
        if report.stream != self.stream {
            ctx.stats.drops.count("out_of_window");
            return;
        }
        self.heartbeat
            .on_report(ctx.now, report.reporter, report.timestamp);
        // A zero echo means the reporter has not heard an SPM yet.
        if report.spm_timestamp_echo != 0 {
            let since = ctx.clock.since(ctx.now, report.spm_timestamp_echo);
            let hold = Duration::from_micros(u64::from(report.spm_hold_us));
            if let Some(rtt) = since.checked_sub(hold) {
                self.rtt.sample(ctx.now, report.reporter, rtt);
            }
        }
    }

    /// Runs due timers (heartbeat, repairs, window age).
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>) {
        self.window.evict_expired(ctx.now);
        self.repairs.forget_below(self.window.trail_index());
        if let Some(fec) = self.fec.as_mut() {
            fec.on_timeout(&self.window, ctx.now, ctx.stats);
            fec.forget_below(self.window.trail_index());
        }
        // Runs at least every `spm_interval_max` once data flowed: the ambient SPM timer.
        self.rtt.maintain(ctx.now);
        // A due SPM is emitted by the next `poll_transmit`, which the session calls right after.
    }

    /// Writes the next datagram due now (paced), for the group, to the end of `out` (the
    /// engine's send batch: no allocation per datagram). `false` when nothing is due.
    pub(crate) fn poll_transmit_into(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        let now = ctx.now;
        if let Some(ncf) = self.ncfs.pop_front() {
            self.pacer.charge(now, ncf.len());
            ctx.stats.recovery.ncfs_sent += 1;
            out.extend_from_slice(&ncf);
            return true;
        }
        let spm_due = self.heartbeat.is_due(now);
        let repair_due = self.repairs.next_due().is_some_and(|due| due <= now);
        let parity_queued = self.fec.as_ref().is_some_and(|fec| fec.has_queued());
        if !repair_due && !spm_due && self.queue.is_empty() && !parity_queued {
            return false;
        }
        if !self.pacer.is_ready(now) {
            return false;
        }
        let start = out.len();
        let written = self.next_rdata(ctx, out) || self.next_parity(ctx, out) || {
            if spm_due {
                self.spm(ctx, out);
                true
            } else {
                self.next_odata(ctx, out)
            }
        };
        if written {
            self.pacer.charge(now, out.len() - start);
        }
        written
    }

    /// [`SourceState::poll_transmit_into`] into a fresh buffer.
    #[cfg(test)]
    pub(crate) fn poll_transmit(&mut self, ctx: &mut Context<'_>) -> Option<Bytes> {
        let mut out = Vec::new();
        self.poll_transmit_into(ctx, &mut out)
            .then(|| Bytes::from(out))
    }

    /// Earliest instant with work (a timer or the pacer allowing the next datagram).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let fec = self.fec.as_ref();
        let paced_work = !self.queue.is_empty() || fec.is_some_and(|fec| fec.has_queued());
        let pacer = paced_work.then(|| self.pacer.ready_at());
        let spm = self
            .heartbeat
            .due()
            .map(|due| due.max(self.pacer.ready_at()));
        let repair = self
            .repairs
            .next_due()
            .map(|due| due.max(self.pacer.ready_at()));
        let flush = fec.and_then(|fec| fec.flush_at());
        [pacer, spm, repair, self.window.next_expiry(), flush]
            .into_iter()
            .flatten()
            .min()
    }

    /// How long after a repair NAKs for the same packet are ignored: the configured linger,
    /// stretched to the group RTT (NAKs sent before the repair arrived take up to one RTT), or
    /// to the initial RTT before any is measured.
    fn linger(&self) -> Duration {
        self.repair_linger.max(self.group_rtt().min(MAX_RTT_LINGER))
    }

    /// The group RTT, or before any is measured the RTT every receiver assumes: with the 2 ms
    /// linger floor alone, duplicate NAKs of the first losses (fired up to one distance apart,
    /// arriving up to an RTT after the repair) each drew another repair — 1.22 repairs per
    /// loss at 1,000 receivers instead of 1.00.
    fn group_rtt(&self) -> Duration {
        match self.rtt.group() {
            Duration::ZERO => self.initial_rtt,
            measured => measured,
        }
    }

    /// A receiver's repair (PEER_RDATA) of this member's stream: a pending RDATA of the same
    /// packet is cancelled (repair suppression), one sent just before is a duplicate to learn
    /// from, and NAKs that crossed the peer's repair are ignored for a linger as if the source
    /// had repaired.
    pub(crate) fn handle_peer_rdata(&mut self, ctx: &mut Context<'_>, data: &Data) {
        if data.stream != self.stream {
            ctx.stats.drops.count("out_of_window");
            return;
        }
        let asked = [SeqRange {
            first: data.seq,
            count: 1,
        }];
        let split = repair::split_ranges(&asked, self.window.trail(), self.window.len());
        let Some(&(offset, _)) = split.held.first() else {
            return;
        };
        let index = self.window.trail_index() + offset;
        if self.repairs.cancel(index) {
            ctx.stats.recovery.repairs_suppressed += 1;
        }
        // A duplicate if this source's RDATA of it went already; in any case, receivers repair.
        self.timing.on_peer_repair(index, ctx.now);
        if let Some(entry) = self.window.get_mut(index) {
            entry.repair_queued = false;
            entry.repaired_at = Some(ctx.now);
        }
    }

    fn next_rdata(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        let trail = self.window.trail();
        let hold_until = ctx.now.checked_add(self.linger()).unwrap_or(ctx.now);
        while let Some(index) = self.repairs.pop_due(ctx.now) {
            let seq = self.window.seq_of(index);
            let Some(entry) = self.window.get_mut(index) else {
                // Evicted since it was queued; a new NAK will get a `gone` NCF.
                continue;
            };
            entry.repaired_at = Some(ctx.now);
            entry.repair_queued = false;
            self.timing.on_sent(index, ctx.now, hold_until);
            let data = Data {
                stream: self.stream,
                repair: true,
                seq,
                trail,
                message_len: entry.message_len,
                fragment_offset: entry.fragment_offset,
                payload: entry.payload.clone(),
                fec_index: entry.fec_index,
            };
            ctx.stats.recovery.repairs_sent += 1;
            Packet::Data(data).encode(out);
            return true;
        }
        false
    }

    /// The next queued PARITY (after RDATA, before SPM and ODATA), if FEC has one.
    fn next_parity(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        let Some(parity) = self.fec.as_mut().and_then(|fec| fec.pop()) else {
            return false;
        };
        if parity.on_demand {
            ctx.stats.recovery.parity_sent_on_demand += 1;
        } else {
            ctx.stats.recovery.parity_sent_proactive += 1;
        }
        out.extend_from_slice(&parity.datagram);
        true
    }

    fn next_odata(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        let now = ctx.now;
        let Some(fragment) = self.queue.pop() else {
            return false;
        };
        let seq = self.window.lead();
        let index = self.window.trail_index() + self.window.len() as u64;
        self.window.push(window::Entry {
            sent_at: now,
            message_len: fragment.message_len,
            fragment_offset: fragment.fragment_offset,
            payload: fragment.payload.clone(),
            repaired_at: None,
            repair_queued: false,
            fec_index: None,
        });
        let fec_index = self.fec.as_mut().map(|fec| {
            let in_block = fec.on_odata(&self.window, index, now, ctx.stats);
            if let Some(entry) = self.window.get_mut(index) {
                entry.fec_index = Some(in_block);
            }
            in_block
        });
        self.repairs.forget_below(self.window.trail_index());
        self.heartbeat.on_data(now);
        let data = Data {
            stream: self.stream,
            repair: false,
            seq,
            trail: self.window.trail(),
            message_len: fragment.message_len,
            fragment_offset: fragment.fragment_offset,
            payload: fragment.payload,
            fec_index,
        };
        Packet::Data(data).encode(out);
        true
    }

    fn spm(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) {
        let beat = self.heartbeat.take_beat(ctx.now);
        let spm = Spm {
            stream: self.stream,
            spm_seq: beat.spm_seq,
            trail: self.window.trail(),
            lead: self.window.lead(),
            timestamp: ctx.clock.timestamp(ctx.now),
            echoes: beat.echoes,
        };
        Packet::Spm(spm).encode(out);
    }
}

#[cfg(test)]
pub(super) mod test_support {
    use std::time::Instant;

    /// The one clock read of the source tests: a base instant that tests advance with
    /// `Duration`s, never reading the clock again.
    #[expect(
        clippy::disallowed_methods,
        reason = "tests need one real Instant as the origin of virtual time"
    )]
    pub(crate) fn base_instant() -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests;
