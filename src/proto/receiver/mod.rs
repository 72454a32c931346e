//! The receive side of one member: one [`PeerState`] per source heard, keyed by source id and
//! tied to one instance (incarnation) of it.
//!
//! - `gaps`: positions (unwrapped sequence numbers) and missing-packet detection from sequence
//!   jumps and the SPM leading edge.
//! - `nak`: [`nak::NakScheduler`], the per-packet NAK cycle with suppression and retries.
//! - `backoff`: the pure timer functions the cycle uses, and the [`BackoffStrategy`] choices.
//! - `group_size`: how many members receive a source, estimated from the member ids heard
//!   (SPM echoes, foreign NAKs, NCFs); it sizes the default backoff window.
//! - `rtt`: the distance-to-source estimator that scales them.
//! - `report_budget`: how often to report, so that the group's reports stay within a share of
//!   the source's data rate.
//! - `reorder`: reassembly and in-order delivery, losses reported in order.
//! - `repair_cache`, `peer_repair`, `peer_rtt` (peer repair, off by default): recently received
//!   packets kept per source, the timers that answer other receivers' NAKs from them with
//!   repair suppression, and the distances to other receivers that scale those timers.
//! - `fec_blocks`: FEC blocks, decoding, and the parity-or-selective choice for NAKs.
//!
//! A datagram from a source is handled in three steps: its trailing edge makes everything
//! before it that is still missing unrecoverable; its own position is classified (duplicate,
//! repair, new data with a gap before it, or out of window); then the delivery cursor drains.
//!
//! Timers are cheap to query: each peer has one deadline (the earliest of its NAK timers, its
//! report timer and its silence check), and the receiver keeps those in one ordered set, so
//! [`ReceiverState::next_deadline`] is O(log n) with any number of sources and gaps. The
//! silence check is lazy: it is rescheduled from the last time the source was heard only when
//! it fires, so hearing a packet costs no timer update.
//!
//! Choices beyond the plain design, each explained where it lives:
//! - sequence numbers are unwrapped into `u64` positions per peer (`gaps`), so no ordered map
//!   ever compares across the 2^32 wrap;
//! - an `Unrecoverable` range covers every packet whose content is dropped — the lost ones and
//!   the received fragments of the messages they broke — so delivered messages and reported
//!   ranges tile the stream exactly (`reorder`);
//! - the NAK retry budget is spent only by waits during which the source did not answer this
//!   receiver, and the backoff spread adapts to duplicate NAKs heard (`nak`);
//! - an RTT sample above 10 s is discarded, not clamped (`rtt`);
//! - a source released for silence and heard again resumes where its stream stopped instead
//!   of backfilling from its trail, which would deliver messages twice (`Released`).
//!
//! Invariants: for every peer, each position between its delivery point and its leading edge is
//! exactly one of held, declared lost, or in the NAK scheduler — so every loss ends in delivery
//! or in an `Unrecoverable` event, never in a silent hole; at most `max_sources` peers exist.

mod backoff;
mod fec_blocks;
mod gaps;
mod group_size;
mod nak;
mod peer_repair;
mod peer_rtt;
mod reorder;
mod repair_cache;
mod report_budget;
mod rtt;

use super::Context;
use crate::config::Settings;
use crate::proto::repair_timer::RepairTimer;
use crate::proto::{Event, SourceId};
use crate::stats::RttSummary;
use crate::wire::{
    self, Data, Echo, MAX_RANGES, Nak, Ncf, Packet, Parity, ParityNak, PeerRdata, Report, SeqNum,
    SeqRange, Spm, StreamId,
};
use backoff::BackoffParams;
pub use backoff::BackoffStrategy;
#[cfg(test)]
use bytes::Bytes;
use gaps::{Arrival, LeadingEdge, Pos};
use group_size::GroupSizeEstimator;
pub(crate) use nak::GROUP_SIZE_PRIOR;
use nak::{Answers, NakParams, NakScheduler, later};
use peer_repair::PeerRepairs;
use peer_rtt::PeerDistances;
use reorder::Reassembler;
use repair_cache::RepairCache;
use report_budget::ReportBudget;
pub(crate) use report_budget::{DEFAULT_SESSION_SHARE, MAX_REPORT_INTERVAL};
use rtt::RttEstimator;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

/// How this member's NAKs are timed: the backoff strategy, whether it self-tunes, and the group
/// size it assumes (see `docs/suppression.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Suppression {
    /// How backoffs are drawn.
    pub(crate) strategy: BackoffStrategy,
    /// Whether the backoff window learns from duplicate NAKs (adaptive SRM's idea).
    pub(crate) adaptive: bool,
    /// `None`: estimate the group size from the members heard; `Some(n)`: assume `n`.
    pub(crate) group_size: Option<u32>,
}

impl Default for Suppression {
    fn default() -> Self {
        Suppression {
            strategy: BackoffStrategy::Scaled,
            adaptive: true,
            group_size: None,
        }
    }
}

/// Largest group size believed from the estimate: ids are chosen by members, so a forger could
/// inflate it, and past this every timer would only grow (λ is ln 10⁶ + 1 ≈ 15 here).
const MAX_GROUP_ESTIMATE: f64 = 1e6;

/// The settings the receive side uses, fixed at creation.
#[derive(Clone, Debug)]
struct ReceiverConfig {
    /// This member's id: the requester of its NAKs, the reporter of its reports.
    member: u64,
    initial_rtt: Duration,
    source_timeout: Duration,
    /// Shortest interval between reports; the budget may stretch it.
    report_interval: Duration,
    /// Share of a source's data rate the group's reports may use.
    session_share: f64,
    /// Bytes one report costs the group besides its own datagram: its echo in an SPM.
    echo_len: usize,
    nak: NakParams,
    /// Fixed group size, or `None` to estimate it.
    group_size: Option<u32>,
    max_sources: usize,
    /// Late-join backfill, capped below `window` so the start point is always in the window.
    backfill: u32,
    /// Most positions tracked ahead of a peer's delivery point.
    window: u32,
    max_message_len: usize,
    /// Peer repair on: cache received data, answer others' NAKs, echo reports.
    peer_repair: bool,
    /// Cache budget per source (0 with peer repair off).
    repair_cache_bytes: usize,
    /// The repair timer every source's peer repairs start from.
    repair_timer: RepairTimer,
    /// Latest a source's RDATA follows its NCF with peer repair on, in distances.
    source_repair_spread: f64,
    /// Send no NAKs and no reports (silent receiver).
    silent: bool,
}

/// What the receive side hands out.
#[derive(Debug, Default)]
struct Outbox {
    events: VecDeque<Event>,
    packets: VecDeque<Packet>,
}

/// Whether a peer survived its timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Liveness {
    Alive,
    Silent,
}

/// The newest SPM heard from a source, echoed in reports.
#[derive(Clone, Copy, Debug)]
struct SpmHeard {
    spm_seq: u32,
    timestamp: u32,
    at: Instant,
}

/// Receive state of one source instance.
#[derive(Debug)]
struct PeerState {
    stream: StreamId,
    /// The instance this one replaced: its late packets are dropped, not taken for a restart.
    retired_instance: Option<u32>,
    edge: LeadingEdge,
    naks: NakScheduler,
    reorder: Reassembler,
    rtt: RttEstimator,
    last_heard: Instant,
    silence_check_at: Instant,
    report_at: Instant,
    newest_spm: Option<SpmHeard>,
    /// When the source last answered this receiver (NCF to its NAK, repair of its gap): NAK
    /// waits that saw an answer do not use up the retry budget.
    answers: Answers,
    /// The deadline under which this peer is filed in `ReceiverState::deadlines`.
    indexed: Option<Instant>,
    /// Other members heard receiving this source, for the backoff's group size.
    members: GroupSizeEstimator,
    /// When to report next, from the data rate measured since the last report.
    budget: ReportBudget,
    /// Until then the estimate is believed only above the prior: members' first reports are
    /// still arriving, so a small count means "not heard yet" as much as "a small group".
    /// `None` once past, or with a fixed group size.
    prior_until: Option<Instant>,
    /// Recently received packets, to answer other receivers' NAKs (peer repair).
    cache: RepairCache,
    /// Peer repairs waiting for their timers.
    repairs: PeerRepairs,
    /// FEC blocks of this source (empty unless it sends with FEC).
    fec: fec_blocks::FecReceiver,
}

impl PeerState {
    fn new(
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        stream: StreamId,
        start: SeqNum,
        retired_instance: Option<u32>,
    ) -> PeerState {
        let start = gaps::first_pos(start);
        let now = ctx.now;
        PeerState {
            stream,
            retired_instance,
            edge: LeadingEdge::new(start, config.window),
            naks: NakScheduler::new(config.nak),
            reorder: Reassembler::new(SourceId(stream.source), start, config.max_message_len),
            rtt: RttEstimator::new(config.initial_rtt),
            last_heard: now,
            silence_check_at: later(now, config.source_timeout),
            report_at: later(
                now,
                backoff::first_report_delay(ctx.rng, config.report_interval),
            ),
            newest_spm: None,
            answers: Answers::default(),
            indexed: None,
            members: GroupSizeEstimator::default(),
            budget: ReportBudget::new(config.session_share, config.report_interval, now),
            prior_until: config.group_size.is_none().then(|| {
                later(
                    now,
                    backoff::FIRST_REPORT_MAX.saturating_add(config.initial_rtt),
                )
            }),
            cache: RepairCache::new(config.repair_cache_bytes),
            repairs: PeerRepairs::new(config.repair_timer),
            fec: fec_blocks::FecReceiver::default(),
        }
        .with_group_size(config.group_size)
    }

    /// Applies a fixed group size, if configured.
    fn with_group_size(mut self, fixed: Option<u32>) -> PeerState {
        if let Some(size) = fixed {
            self.naks.set_group_size(f64::from(size));
        }
        self
    }

    /// Notes another member receiving this source; with an estimated group size, the backoff
    /// follows the estimate (this member included), pending backoffs too.
    fn heard_member(&mut self, config: &ReceiverConfig, now: Instant, member: u64) {
        if member == config.member || config.group_size.is_some() {
            return;
        }
        if self.members.observe(member) {
            self.refresh_group_size(now);
        }
    }

    /// Sets the backoff's group size from the estimate (this member included), floored at the
    /// prior while first reports are still due, and re-times pending backoffs if it changed.
    fn refresh_group_size(&mut self, now: Instant) {
        let heard = self.members.estimate();
        let mut size = (heard + 1.0).min(MAX_GROUP_ESTIMATE);
        match self.prior_until {
            Some(until) if now < until => size = size.max(GROUP_SIZE_PRIOR),
            Some(_) => self.prior_until = None,
            None => {}
        }
        if heard > 0.0 && size != self.naks.group_size() {
            self.naks.set_group_size(size);
            self.naks.retime(now, self.rtt.rtt());
        }
    }

    /// Feeds one RTT sample; pending backoffs follow the new distance.
    fn rtt_sample(&mut self, now: Instant, rtt: Duration) {
        if self.rtt.sample(rtt) {
            self.naks.retime(now, self.rtt.rtt());
        }
    }

    /// Earliest of this peer's timers.
    fn deadline(&self) -> Instant {
        let timers = self.report_at.min(self.silence_check_at);
        [self.naks.next_deadline(), self.repairs.next_deadline()]
            .into_iter()
            .flatten()
            .fold(timers, Instant::min)
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, out: &mut Outbox, data: Data) {
        self.last_heard = ctx.now;
        self.budget.on_data(wire::HEADER_LEN + data.payload.len());
        if self.prior_until.is_some_and(|until| ctx.now >= until) {
            self.refresh_group_size(ctx.now);
        }
        self.apply_trail(data.trail);
        self.reorder.drain(ctx.stats, &mut out.events);
        let next = self.reorder.next();
        let pos = gaps::unwrap(next, data.seq);
        if data.repair {
            let cancelled = self.repairs.on_repair_heard(pos, ctx.now);
            ctx.stats.recovery.repairs_suppressed += cancelled.suppressed;
        }
        if self.cache.enabled() && pos >= next {
            self.cache.insert(pos, data.clone());
        }
        // Only packets not yet delivered: a late copy must not revive a pruned block.
        let block = data
            .fec_index
            .filter(|_| pos >= next)
            .and_then(|index| self.fec.on_source(pos, index, &data));
        match self.edge.on_data(next, pos) {
            Arrival::Behind => ctx.stats.recovery.duplicates += 1,
            Arrival::OutOfWindow => ctx.stats.drops.count("out_of_window"),
            Arrival::Known => {
                if self.naks.remove(pos) {
                    self.naks.retime_if_learned(ctx.now, self.rtt.rtt());
                    ctx.stats.recovery.repairs_received += 1;
                    if data.repair {
                        self.answers.repair_at = Some(ctx.now);
                    }
                    self.reorder.accept(pos, data, ctx.stats, &mut out.events);
                } else {
                    // Known and not missing: held already, or given up on (a late repair).
                    debug_assert_ne!(self.reorder.held(pos), reorder::Held::Nothing);
                    ctx.stats.recovery.duplicates += 1;
                }
            }
            Arrival::New { gap } => {
                self.detect(gap, ctx);
                if data.repair {
                    // A repair another receiver asked for, filling a gap not yet seen here.
                    ctx.stats.recovery.repairs_received += 1;
                }
                self.reorder.accept(pos, data, ctx.stats, &mut out.events);
            }
        }
        if let Some(block) = block {
            self.try_decode(ctx, out, block);
        }
    }

    /// A PARITY packet: its trail, the block's end as a leading edge, then decoding.
    fn on_parity(&mut self, ctx: &mut Context<'_>, out: &mut Outbox, parity: Parity) {
        self.last_heard = ctx.now;
        ctx.stats.recovery.parity_received += 1;
        self.apply_trail(parity.trail);
        self.reorder.drain(ctx.stats, &mut out.events);
        let next = self.reorder.next();
        let first = gaps::unwrap(next, parity.block);
        let end = first + u64::from(parity.k);
        if end <= next {
            return;
        }
        // The block's last packet was sent: a loss at its tail is a gap now, not at the next SPM.
        match self.edge.on_source_lead(next, end) {
            Ok(gap) => self.detect(gap, ctx),
            Err(gaps::OutOfWindow) => {
                ctx.stats.drops.count("out_of_window");
                return;
            }
        }
        let shape = (parity.k, parity.m, parity.index);
        let symbol = parity.symbol;
        if let Some(block) = self
            .fec
            .on_parity(first, shape, parity.trail, symbol, ctx.stats)
        {
            self.try_decode(ctx, out, block);
        }
    }

    /// Rebuilds what the block allows and feeds it back as repairs.
    fn try_decode(&mut self, ctx: &mut Context<'_>, out: &mut Outbox, block: Pos) {
        for data in self.fec.try_decode(block, self.stream, ctx.stats) {
            self.on_data(ctx, out, data);
        }
        self.fec.prune(self.reorder.next(), ctx.stats);
    }

    /// The source's PARITY_NCF: like an NCF, but each range is (block, parity coming); only the
    /// packets of blocks that parity will rebuild here wait for it, the rest keep their NAKs.
    fn on_parity_ncf(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
        ncf: &Ncf,
    ) {
        let now = ctx.now;
        ctx.stats.recovery.ncfs_received += 1;
        self.last_heard = now;
        if ncf.requester == config.member {
            self.rtt_sample(now, ctx.clock.since(now, ncf.timestamp_echo));
            self.answers.ncf_at = Some(now);
        } else {
            self.heard_member(config, now, ncf.requester);
        }
        self.apply_trail(ncf.trail);
        let (next, rtt) = (self.reorder.next(), self.wait_rtt(config));
        let tracked = next..self.edge.lead();
        let own = ncf.requester == config.member;
        for block in &ncf.ranges {
            let first = gaps::unwrap(next, block.first);
            // No parity left: the block's NAKs keep running and go out selectively.
            if self.fec.on_parity_answer(first, block.count, ncf.gone, own) {
                continue;
            }
            for positions in self.fec.covered_by(first, block.count, tracked.clone()) {
                ctx.stats.recovery.naks_suppressed += self.naks.on_ncf(positions, now, rtt);
            }
        }
        self.reorder.drain(ctx.stats, &mut out.events);
    }

    /// Another receiver's parity NAK: suppresses ours for a block it asks enough parity for.
    fn on_foreign_parity_nak(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        nak: &ParityNak,
    ) {
        self.heard_member(config, ctx.now, nak.requester);
        let next = self.reorder.next();
        let tracked = next..self.edge.lead();
        let ranges: Vec<Range<Pos>> = nak
            .blocks
            .iter()
            .flat_map(|request| {
                let first = gaps::unwrap(next, request.first);
                self.fec.covered_by(first, request.count, tracked.clone())
            })
            .collect();
        if !ranges.is_empty() {
            ctx.stats.recovery.naks_suppressed += self.naks.on_foreign_nak_from(
                &ranges,
                ctx.now,
                self.wait_rtt(config),
                nak.requester < config.member,
            );
            self.naks.retime_if_learned(ctx.now, self.rtt.rtt());
        }
    }

    /// Sends the NAKs the cycle wants: parity requests where FEC helps, selective otherwise.
    fn send_naks(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
        due: &[Pos],
    ) {
        let timestamp = ctx.clock.timestamp(ctx.now);
        let (selective, parity) = self.fec.split_nak(due, self.edge.lead(), ctx.stats);
        for ranges in nak::nak_range_lists(&selective) {
            out.packets.push_back(Packet::Nak(Nak {
                stream: self.stream,
                requester: config.member,
                timestamp,
                ranges,
            }));
            ctx.stats.recovery.naks_sent += 1;
        }
        for chunk in parity.chunks(MAX_RANGES) {
            let blocks = chunk
                .iter()
                .map(|&(first, needed)| SeqRange {
                    first: gaps::seq_of(first),
                    count: needed,
                })
                .collect();
            out.packets.push_back(Packet::ParityNak(ParityNak {
                stream: self.stream,
                requester: config.member,
                timestamp,
                blocks,
            }));
            ctx.stats.recovery.naks_sent += 1;
            ctx.stats.recovery.parity_naks_sent += 1;
        }
    }

    fn on_spm(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
        spm: &Spm,
    ) {
        let now = ctx.now;
        self.last_heard = now;
        if let Some(heard) = self.newest_spm
            && spm.spm_seq.wrapping_sub(heard.spm_seq) as i32 <= 0
        {
            // A duplicate or reordered older SPM: its edges are stale.
            return;
        }
        self.newest_spm = Some(SpmHeard {
            spm_seq: spm.spm_seq,
            timestamp: spm.timestamp,
            at: now,
        });
        for echo in &spm.echoes {
            self.heard_member(config, now, echo.member);
        }
        if let Some(echo) = spm.echoes.iter().find(|echo| echo.member == config.member) {
            let since = ctx.clock.since(now, echo.timestamp);
            self.rtt_sample(now, rtt::echo_rtt(since, echo.hold_us));
            // The source heard this receiver's report, so the path to it works: NAKs that went
            // unanswered meanwhile were lost, not sent into a void.
            self.answers.ncf_at = Some(now);
        }
        self.apply_trail(spm.trail);
        self.reorder.drain(ctx.stats, &mut out.events);
        let next = self.reorder.next();
        match self.edge.on_source_lead(next, gaps::unwrap(next, spm.lead)) {
            Ok(gap) => self.detect(gap, ctx),
            Err(gaps::OutOfWindow) => ctx.stats.drops.count("out_of_window"),
        }
    }

    fn on_ncf(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
        ncf: &Ncf,
    ) {
        let now = ctx.now;
        ctx.stats.recovery.ncfs_received += 1;
        self.last_heard = now;
        if ncf.requester == config.member {
            self.rtt_sample(now, ctx.clock.since(now, ncf.timestamp_echo));
            self.answers.ncf_at = Some(now);
        } else {
            self.heard_member(config, now, ncf.requester);
        }
        self.apply_trail(ncf.trail);
        let rtt = self.wait_rtt(config);
        for range in &ncf.ranges {
            let positions = self.tracked(nak::positions_of(self.reorder.next(), *range));
            if ncf.gone {
                let lost = self.naks.take_range(positions);
                self.mark_lost(&lost);
            } else {
                let asked = nak::positions_of(self.reorder.next(), *range);
                ctx.stats.recovery.repairs_deferred += self.repairs.on_ncf(asked, now).deferred;
                ctx.stats.recovery.naks_suppressed += self.naks.on_ncf(positions, now, rtt);
            }
        }
        self.reorder.drain(ctx.stats, &mut out.events);
    }

    fn on_foreign_nak(&mut self, config: &ReceiverConfig, ctx: &mut Context<'_>, nak: &Nak) {
        self.heard_member(config, ctx.now, nak.requester);
        let next = self.reorder.next();
        let ranges: Vec<Range<Pos>> = nak
            .ranges
            .iter()
            .map(|range| self.tracked(nak::positions_of(next, *range)))
            .collect();
        ctx.stats.recovery.naks_suppressed += self.naks.on_foreign_nak_from(
            &ranges,
            ctx.now,
            self.wait_rtt(config),
            nak.requester < config.member,
        );
        self.naks.retime_if_learned(ctx.now, self.rtt.rtt());
    }

    /// The RTT the waits for a promised repair are sized by. With peer repair on, the source
    /// holds its RDATA up to `(D1 + D2)·SOURCE_MAX_REPAIR_FACTOR` distances after the NCF (so a
    /// nearer peer's repair can cancel it), and a wait sized by the plain RTT ended first: the
    /// receiver NAKed again, 1.9–2.5 NAKs per shared loss instead of 1.1–1.7 in the table.
    fn wait_rtt(&self, config: &ReceiverConfig) -> Duration {
        let rtt = self.rtt.rtt();
        if config.peer_repair {
            rtt.mul_f64(1.0 + config.source_repair_spread / 2.0)
        } else {
            rtt
        }
    }

    /// Schedules peer repairs of the cached packets another receiver's NAK asks for, timed by
    /// the distance to that receiver — only if that distance is measured and this receiver's
    /// repair surely beats the source's (`peer_repair`); else the source repairs.
    fn answer_foreign_nak(&mut self, ctx: &mut Context<'_>, distances: &PeerDistances, nak: &Nak) {
        if !self.cache.enabled() {
            return;
        }
        let Some(distance) = distances.distance(nak.requester) else {
            return;
        };
        let distance = distance.max(backoff::MIN_DISTANCE);
        if !self
            .repairs
            .beats_source(distance, backoff::one_way_distance(self.rtt.rtt()))
        {
            return;
        }
        let next = self.reorder.next();
        let heard = peer_repair::NakHeard {
            requester: nak.requester,
            timestamp: nak.timestamp,
            distance,
        };
        for range in &nak.ranges {
            let asked = nak::positions_of(next, *range);
            self.repairs
                .on_nak(asked, &self.cache, heard, ctx.now, ctx.rng);
        }
    }

    /// Peer repairs whose timers ended: sent from the cache, echoing the NAK's timestamp.
    fn send_peer_repairs(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
    ) {
        let now = ctx.now;
        for (pos, pending) in self.repairs.expire(now) {
            let Some(data) = self.cache.get(pos) else {
                continue;
            };
            let held = now.saturating_duration_since(pending.heard_at).as_micros();
            out.packets.push_back(Packet::PeerRdata(PeerRdata {
                repairer: config.member,
                requester: pending.requester,
                timestamp_echo: pending.nak_timestamp,
                hold_us: u32::try_from(held).unwrap_or(u32::MAX),
                data: Data {
                    repair: true,
                    ..data.clone()
                },
            }));
            ctx.stats.recovery.peer_repairs_sent += 1;
        }
    }

    /// A receiver's repair of this source's packet: handled as RDATA, except that it says
    /// nothing about whether the source itself is alive.
    fn on_peer_rdata(&mut self, ctx: &mut Context<'_>, out: &mut Outbox, data: Data) {
        let last_heard = self.last_heard;
        self.on_data(ctx, out, data);
        self.last_heard = last_heard;
    }

    fn on_timeout(
        &mut self,
        config: &ReceiverConfig,
        ctx: &mut Context<'_>,
        out: &mut Outbox,
    ) -> Liveness {
        let now = ctx.now;
        self.send_peer_repairs(config, ctx, out);
        let expired = self.naks.expire(now, ctx.rng, self.rtt.rtt(), self.answers);
        if !expired.lost.is_empty() {
            self.mark_lost(&expired.lost);
            self.reorder.drain(ctx.stats, &mut out.events);
            self.fec.prune(self.reorder.next(), ctx.stats);
        }
        // A silent receiver lets the cycle run (its retries and give-up report the losses
        // parity did not rebuild) but sends nothing.
        if !expired.nak.is_empty() && !config.silent {
            self.send_naks(config, ctx, out, &expired.nak);
        }
        if self.report_at <= now {
            let report = Packet::Report(self.report(config, ctx));
            // Peer echoes are added only when the report goes out: budget the most they add.
            let echoes = if config.peer_repair {
                wire::MAX_REPORT_ECHO_BYTES
            } else {
                0
            };
            let cost = report.encoded_len() + echoes + config.echo_len;
            let interval = self.budget.interval(now, self.naks.group_size(), cost);
            if !config.silent {
                out.packets.push_back(report);
            }
            self.report_at = later(now, backoff::report_delay(ctx.rng, interval));
        }
        if self.silence_check_at <= now {
            let silent_at = later(self.last_heard, config.source_timeout);
            if silent_at <= now {
                return Liveness::Silent;
            }
            self.silence_check_at = silent_at;
        }
        Liveness::Alive
    }

    fn report(&self, config: &ReceiverConfig, ctx: &Context<'_>) -> Report {
        let now = ctx.now;
        let (spm_timestamp_echo, spm_hold_us) = match self.newest_spm {
            Some(heard) => {
                let held = now.saturating_duration_since(heard.at).as_micros();
                (heard.timestamp, u32::try_from(held).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        Report {
            stream: self.stream,
            reporter: config.member,
            timestamp: ctx.clock.timestamp(now),
            spm_timestamp_echo,
            spm_hold_us,
            delivered_until: gaps::seq_of(self.reorder.next()),
            echoes: Vec::new(),
        }
    }

    /// Ends this stream: every missing packet is reported unrecoverable, then what can be
    /// delivered is, and an unfinished message is reported too.
    fn finish(&mut self, ctx: &mut Context<'_>, out: &mut Outbox) {
        let lost = self.naks.take_all();
        self.mark_lost(&lost);
        self.reorder.finish(ctx.stats, &mut out.events);
    }

    /// The source can no longer repair anything before `trail`: what is still missing there
    /// is lost. The caller drains afterwards.
    fn apply_trail(&mut self, trail: SeqNum) {
        let next = self.reorder.next();
        let trail = gaps::unwrap(next, trail);
        if trail <= next {
            return;
        }
        let lost = self.naks.take_below(trail);
        self.mark_lost(&lost);
        // Requesters give up on data behind the trail, so repairing it would help nobody.
        self.repairs.forget_below(trail);
        let unseen = self.edge.on_trail(trail);
        self.reorder.mark_lost(unseen);
    }

    /// Starts the NAK cycle for newly missing positions.
    fn detect(&mut self, gap: Range<Pos>, ctx: &mut Context<'_>) {
        if gap.is_empty() {
            return;
        }
        ctx.stats.recovery.gaps_detected += gap.end - gap.start;
        self.naks.add_missing(gap, ctx.now, ctx.rng, self.rtt.rtt());
    }

    /// Declares sorted positions unrecoverable.
    fn mark_lost(&mut self, sorted: &[Pos]) {
        for run in gaps::runs(sorted) {
            self.reorder.mark_lost(run);
        }
    }

    /// The part of `range` between the delivery point and the leading edge (maybe empty, never
    /// reversed).
    fn tracked(&self, range: Range<Pos>) -> Range<Pos> {
        let start = range.start.max(self.reorder.next());
        let end = range.end.min(self.edge.lead()).max(start);
        start..end
    }
}

/// Bytes one echo adds to an SPM.
fn echo_len() -> usize {
    let spm = |echoes| {
        Packet::Spm(Spm {
            stream: StreamId {
                source: 0,
                instance: 0,
            },
            spm_seq: 0,
            trail: SeqNum(0),
            lead: SeqNum(0),
            timestamp: 0,
            echoes,
        })
        .encoded_len()
    };
    let one = Echo {
        member: 0,
        timestamp: 0,
        hold_us: 0,
    };
    spm(vec![one]) - spm(Vec::new())
}

/// Every source this member hears.
pub(crate) struct ReceiverState {
    config: ReceiverConfig,
    /// Looked up for every datagram, so hashed with Fx (a multiply) rather than SipHash. Keys
    /// are member-chosen ids, so a forger could make them collide; with at most `max_sources`
    /// entries that bounds a lookup at `max_sources` probes, never more.
    peers: FxHashMap<u64, PeerState>,
    /// `(deadline, source)` of every peer: the earliest is the receiver's next deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    out: Outbox,
    /// RTT samples of peers already released, so the total never goes backwards.
    released_rtt_samples: u64,
    /// The latest `now` seen, the deadline to report while packets wait in the outbox.
    last_now: Option<Instant>,
    /// Where the streams of sources released for silence stopped, oldest first (at most
    /// `max_sources`), so a source heard again after a partition resumes where it stopped
    /// instead of being backfilled from its trail, which would deliver messages twice.
    released: VecDeque<Released>,
    /// Distances to other receivers and report timestamps to echo (peer repair).
    distances: PeerDistances,
}

/// The peer of `stream` if it is the instance followed (packets that only answer or complement
/// data never start a stream or reveal a restart). The caller reindexes it.
fn followed(peers: &mut FxHashMap<u64, PeerState>, stream: StreamId) -> Option<&mut PeerState> {
    peers
        .get_mut(&stream.source)
        .filter(|peer| peer.stream.instance == stream.instance)
}

/// Where a stream released for silence stopped.
#[derive(Clone, Copy, Debug)]
struct Released {
    stream: StreamId,
    /// The next sequence number it would have delivered.
    resume_at: SeqNum,
}

impl ReceiverState {
    /// The receive side of member `member`, following no source yet.
    pub(crate) fn new(settings: &Settings, member: u64) -> Self {
        let window = settings.window_packets.clamp(1, gaps::MAX_TRACKED);
        ReceiverState {
            config: ReceiverConfig {
                member,
                initial_rtt: settings.initial_rtt,
                source_timeout: settings.source_timeout,
                report_interval: settings.report_interval,
                session_share: settings.session_share,
                echo_len: echo_len(),
                nak: NakParams {
                    backoff: BackoffParams::new(settings.nak_backoff_c1, settings.nak_backoff_c2),
                    ncf_retries: settings.nak_ncf_retries,
                    data_retries: settings.nak_data_retries,
                    initial_spread: nak::INITIAL_SPREAD,
                    give_up_after: settings.nak_give_up_after,
                    strategy: settings.suppression.strategy,
                    adaptive: settings.suppression.adaptive,
                },
                group_size: settings.suppression.group_size,
                max_sources: settings.max_sources,
                backfill: settings.join_backfill_packets.min(window - 1),
                window,
                max_message_len: settings.max_message_len,
                peer_repair: settings.peer_repair,
                // A silent receiver sends nothing, peer repairs included.
                repair_cache_bytes: if settings.peer_repair && !settings.silent {
                    settings.repair_cache_bytes
                } else {
                    0
                },
                repair_timer: RepairTimer::new(
                    settings.repair_d1,
                    settings.repair_d2,
                    settings.suppression.adaptive,
                )
                .starting_at(crate::proto::repair_timer::RECEIVER_INITIAL_FACTOR),
                source_repair_spread: (settings.repair_d1.max(0.0) + settings.repair_d2.max(0.0))
                    * crate::proto::repair_timer::SOURCE_MAX_REPAIR_FACTOR,
                silent: settings.silent,
            },
            peers: FxHashMap::default(),
            deadlines: BTreeSet::new(),
            out: Outbox::default(),
            released_rtt_samples: 0,
            last_now: None,
            released: VecDeque::new(),
            distances: PeerDistances::default(),
        }
    }

    /// ODATA or RDATA from a source: first contact or restart, gaps, repairs, delivery.
    pub(crate) fn handle_data(&mut self, ctx: &mut Context<'_>, _from: SocketAddr, data: Data) {
        self.last_now = Some(ctx.now);
        if !gaps::is_ordered(data.trail, data.seq) {
            // The source can always repair the packet it is sending.
            ctx.stats.drops.count("malformed");
            return;
        }
        let source = data.stream.source;
        let start = gaps::start_from_data(data.seq, data.trail, self.config.backfill);
        if !self.admit(ctx, data.stream, start, data.seq) {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.on_data(ctx, &mut self.out, data);
        }
        self.reindex(source);
    }

    /// A source's heartbeat: its window edges (tail loss, unrecoverable data) and RTT echoes.
    pub(crate) fn handle_spm(&mut self, ctx: &mut Context<'_>, _from: SocketAddr, spm: &Spm) {
        self.last_now = Some(ctx.now);
        if !gaps::is_ordered(spm.trail, spm.lead) {
            ctx.stats.drops.count("malformed");
            return;
        }
        let source = spm.stream.source;
        let start = gaps::start_from_spm(spm.trail, spm.lead, self.config.backfill);
        if !self.admit(ctx, spm.stream, start, spm.lead) {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&source) {
            peer.on_spm(&self.config, ctx, &mut self.out, spm);
        }
        self.reindex(source);
    }

    /// A source's NCF: suppresses or completes NAK cycles, or (gone) ends them as lost.
    pub(crate) fn handle_ncf(&mut self, ctx: &mut Context<'_>, ncf: &Ncf) {
        self.last_now = Some(ctx.now);
        let source = ncf.stream.source;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        // An NCF neither starts a stream nor reveals a restart: it only answers NAKs.
        if peer.stream.instance != ncf.stream.instance {
            return;
        }
        peer.on_ncf(&self.config, ctx, &mut self.out, ncf);
        self.reindex(source);
    }

    /// Another receiver's NAK (multicast): suppresses our own pending NAK for the same data.
    pub(crate) fn handle_foreign_nak(&mut self, ctx: &mut Context<'_>, nak: &Nak) {
        self.last_now = Some(ctx.now);
        let source = nak.stream.source;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        if peer.stream.instance != nak.stream.instance {
            return;
        }
        peer.on_foreign_nak(&self.config, ctx, nak);
        peer.answer_foreign_nak(ctx, &self.distances, nak);
        self.reindex(source);
    }

    /// Another receiver's report to a source this member follows (reports are multicast): its
    /// reporter is a member of that source's group, heard a few milliseconds after the stream
    /// starts instead of only once the source's SPMs echo it.
    pub(crate) fn handle_foreign_report(&mut self, ctx: &mut Context<'_>, report: &Report) {
        self.last_now = Some(ctx.now);
        let source = report.stream.source;
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        if peer.stream != report.stream {
            return;
        }
        peer.heard_member(&self.config, ctx.now, report.reporter);
        self.reindex(source);
    }

    /// A receiver's repair (PEER_RDATA) of a source this member follows: filed under that
    /// source's stream (never starting or restarting one), and, if it answers this member's
    /// NAK, an RTT sample to the repairer.
    pub(crate) fn handle_peer_rdata(&mut self, ctx: &mut Context<'_>, peer_rdata: PeerRdata) {
        self.last_now = Some(ctx.now);
        let data = peer_rdata.data;
        if !gaps::is_ordered(data.trail, data.seq) {
            ctx.stats.drops.count("malformed");
            return;
        }
        let source = data.stream.source;
        let Some(peer) = self.peers.get_mut(&source) else {
            ctx.stats.drops.count("out_of_window");
            return;
        };
        if peer.stream.instance != data.stream.instance {
            ctx.stats.drops.count("out_of_window");
            return;
        }
        if peer_rdata.requester == self.config.member {
            let since = ctx.clock.since(ctx.now, peer_rdata.timestamp_echo);
            let rtt = rtt::echo_rtt(since, peer_rdata.hold_us);
            self.distances.sample(ctx.now, peer_rdata.repairer, rtt);
        }
        peer.on_peer_rdata(ctx, &mut self.out, data);
        self.reindex(source);
    }

    /// Any other member's report (about any source): with peer repair on, its timestamp is
    /// kept to echo and an echo of one of ours is a distance sample.
    pub(crate) fn handle_report_heard(&mut self, ctx: &mut Context<'_>, report: &Report) {
        if !self.config.peer_repair {
            return;
        }
        let (now, clock) = (ctx.now, ctx.clock);
        self.distances.on_report(
            now,
            report.reporter,
            report.timestamp,
            &report.echoes,
            self.config.member,
            |timestamp| clock.since(now, timestamp),
        );
    }

    /// A PARITY packet from a source followed (it never starts a stream).
    pub(crate) fn handle_parity(&mut self, ctx: &mut Context<'_>, parity: Parity) {
        self.last_now = Some(ctx.now);
        let stream = parity.stream;
        if let Some(peer) = followed(&mut self.peers, stream) {
            peer.on_parity(ctx, &mut self.out, parity);
            self.reindex(stream.source);
        }
    }

    /// The source's PARITY_NCF for a stream followed.
    pub(crate) fn handle_parity_ncf(&mut self, ctx: &mut Context<'_>, ncf: &Ncf) {
        self.last_now = Some(ctx.now);
        if let Some(peer) = followed(&mut self.peers, ncf.stream) {
            peer.on_parity_ncf(&self.config, ctx, &mut self.out, ncf);
            self.reindex(ncf.stream.source);
        }
    }

    /// Another receiver's parity NAK: suppression input, like [`Self::handle_foreign_nak`].
    pub(crate) fn handle_foreign_parity_nak(&mut self, ctx: &mut Context<'_>, nak: &ParityNak) {
        self.last_now = Some(ctx.now);
        if let Some(peer) = followed(&mut self.peers, nak.stream) {
            peer.on_foreign_parity_nak(&self.config, ctx, nak);
            self.reindex(nak.stream.source);
        }
    }

    /// Runs every peer timer due at `ctx.now`: NAKs, give-ups, reports, silence.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now;
        self.last_now = Some(now);
        // Collected first so that each due peer runs once per call, whatever it reschedules.
        let due: Vec<u64> = self
            .deadlines
            .range(..=(now, u64::MAX))
            .map(|&(_, source)| source)
            .collect();
        for source in due {
            let Some(peer) = self.peers.get_mut(&source) else {
                continue;
            };
            match peer.on_timeout(&self.config, ctx, &mut self.out) {
                Liveness::Alive => self.reindex(source),
                Liveness::Silent => {
                    if let Some(peer) = self.peers.get(&source) {
                        let released = Released {
                            stream: peer.stream,
                            resume_at: gaps::seq_of(peer.edge.lead()),
                        };
                        self.remember(released);
                    }
                    self.release(ctx, source);
                    self.out.events.push_back(Event::SourceLost {
                        source: SourceId(source),
                    });
                }
            }
        }
    }

    /// Writes the next NAK or report to the end of `out`; `false` when none waits.
    pub(crate) fn poll_transmit_into(&mut self, ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        self.last_now = Some(ctx.now);
        let Some(mut packet) = self.out.packets.pop_front() else {
            return false;
        };
        if let Packet::Report(report) = &mut packet
            && self.config.peer_repair
        {
            // Echoed at send time, so the hold times are exact.
            report.echoes = self.distances.take_echoes(ctx.now);
        }
        packet.encode(out);
        true
    }

    /// [`ReceiverState::poll_transmit_into`] into a fresh buffer.
    #[cfg(test)]
    pub(crate) fn poll_transmit(&mut self, ctx: &mut Context<'_>) -> Option<Bytes> {
        let mut out = Vec::new();
        self.poll_transmit_into(ctx, &mut out)
            .then(|| Bytes::from(out))
    }

    /// The next event, in order per source.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When `handle_timeout` (or `poll_transmit`) next has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if !self.out.packets.is_empty() {
            return self.last_now;
        }
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// RTT estimates over the sources followed (and samples of those released).
    pub(crate) fn rtt_summary(&self) -> RttSummary {
        rtt::summarize(
            self.peers.values().map(|peer| &peer.rtt),
            self.released_rtt_samples,
        )
    }

    /// Makes sure a peer for `stream` exists, handling first contact and restarts. `start` is
    /// where a new stream would start and `edge` the packet's own position (data: its sequence
    /// number, SPM: its lead). Returns whether the packet should be processed.
    fn admit(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        start: SeqNum,
        edge: SeqNum,
    ) -> bool {
        let source = stream.source;
        let retired = match self.peers.get(&source) {
            Some(peer) if peer.stream.instance == stream.instance => return true,
            Some(peer) if peer.retired_instance == Some(stream.instance) => {
                // A straggler of the incarnation that was replaced.
                ctx.stats.drops.count("out_of_window");
                return false;
            }
            Some(peer) => Some(peer.stream.instance),
            None => None,
        };
        match retired {
            Some(old_instance) => {
                self.release(ctx, source);
                self.out.events.push_back(Event::SourceRestarted {
                    source: SourceId(source),
                });
                let peer = PeerState::new(&self.config, ctx, stream, start, Some(old_instance));
                self.peers.insert(source, peer);
            }
            None => {
                if self.peers.len() >= self.config.max_sources {
                    ctx.stats.drops.count("out_of_window");
                    return false;
                }
                self.out.events.push_back(Event::SourceJoined {
                    source: SourceId(source),
                });
                let start = self.resume_point(stream, edge).unwrap_or(start);
                let peer = PeerState::new(&self.config, ctx, stream, start, None);
                self.peers.insert(source, peer);
            }
        }
        true
    }

    /// Where a stream heard again after being released for silence resumes: where it stopped,
    /// if that is within the window of `edge` (else the stream starts afresh: a point that far
    /// away cannot be tracked).
    fn resume_point(&mut self, stream: StreamId, edge: SeqNum) -> Option<SeqNum> {
        let index = self
            .released
            .iter()
            .position(|released| released.stream.source == stream.source)?;
        let released = self.released.remove(index)?;
        if released.stream.instance != stream.instance {
            return None;
        }
        let resume_at = released.resume_at;
        let window = self.config.window;
        let near = edge.distance_from(resume_at) < window || resume_at.distance_from(edge) < window;
        near.then_some(resume_at)
    }

    /// Remembers where a stream released for silence stopped.
    fn remember(&mut self, released: Released) {
        if self.released.len() >= self.config.max_sources {
            self.released.pop_front();
        }
        self.released.push_back(released);
    }

    /// Ends a peer's stream (reporting what it lost) and forgets it.
    fn release(&mut self, ctx: &mut Context<'_>, source: u64) {
        let Some(mut peer) = self.peers.remove(&source) else {
            return;
        };
        if let Some(indexed) = peer.indexed {
            self.deadlines.remove(&(indexed, source));
        }
        peer.finish(ctx, &mut self.out);
        self.released_rtt_samples += peer.rtt.samples();
    }

    /// Files a peer under its current deadline.
    fn reindex(&mut self, source: u64) {
        let Some(peer) = self.peers.get_mut(&source) else {
            return;
        };
        let deadline = peer.deadline();
        if peer.indexed == Some(deadline) {
            return;
        }
        if let Some(old) = peer.indexed {
            self.deadlines.remove(&(old, source));
        }
        self.deadlines.insert((deadline, source));
        peer.indexed = Some(deadline);
    }
}

#[cfg(test)]
mod tests;
