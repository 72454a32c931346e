//! FEC at a receiver, per source: collects each block's source packets and parity symbols,
//! rebuilds the missing packets as soon as the block is decodable, and turns the NAK cycle's
//! missing packets into parity requests ("block b, n symbols needed") where parity can help.
//!
//! A block is named by the position of its first packet (`seq − index` of any of its ODATA);
//! its k is learnt from a PARITY packet, or from the next block's first position. Rebuilt
//! packets go back through the ordinary data path (`PeerState::on_data`), so they cancel
//! pending NAKs and are delivered in order like any repair.
//!
//! Parity or selective: a missing packet is asked for by parity NAK when its block spans at
//! least [`MIN_PARITY_BLOCK`] packets (a block of unknown k — still open at the source, which
//! closes it on the request — spans to the leading edge), needs no more parity than the source
//! can still send for it, and fewer than [`MAX_PARITY_ROUNDS`] parity NAKs went out for it;
//! otherwise selectively (a small block gains nothing from parity, one needing more than is
//! left can never be rebuilt from it, and after many rounds the block may be gone from the
//! source's window). What is left is known from the PARITY headers: the source sends its m RS
//! indices in order and each once, plus the XOR parity, so after RS index h at most m − h RS
//! parities remain, plus the XOR parity if not seen. The source also says so: a PARITY_NCF
//! answering this receiver's own request with fewer than it needs, or any GONE PARITY_NCF,
//! means the block's parity is exhausted.
//! Another receiver's parity NAK, or the source's PARITY_NCF, for at least as many symbols as
//! this receiver needs puts its NAKs for the block on hold ([`FecReceiver::covered_by`]).
//!
//! Invariants: at most [`MAX_BLOCKS`] blocks are held (oldest dropped first) and none ends
//! before the caller's delivery point once `prune` ran; a block marked `done` holds no payload.

use super::gaps::{Pos, seq_of};
use crate::proto::fec::{
    BlockDecoder, FecError, MAX_SOURCES, XOR_PARITY, shape_supported, symbol_len_for,
};
use crate::proto::source::{SOURCE_HEADER_LEN, read_source_symbol, write_source_symbol};
use crate::stats::Stats;
use crate::wire::{Data, SeqNum, StreamId};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Range;

/// Most blocks tracked per source: bounds memory whatever the network sends.
pub(super) const MAX_BLOCKS: usize = 1024;
/// Parity NAK rounds per block before falling back to selective NAKs.
pub(super) const MAX_PARITY_ROUNDS: u8 = 8;
/// Smallest block asked for by parity; smaller ones are repaired selectively.
pub(super) const MIN_PARITY_BLOCK: u8 = 4;

/// Counts the block's first NAK.
fn mark_naked(block: &mut Block, stats: &mut Stats) {
    if !block.naked {
        block.naked = true;
        stats.recovery.blocks_naked += 1;
    }
}

/// One received source packet's protected fields.
#[derive(Clone, Debug)]
struct Source {
    message_len: u32,
    fragment_offset: u32,
    payload: Bytes,
}

#[derive(Debug, Default)]
struct Block {
    k: Option<u8>,
    m: u8,
    /// The source's trail when the newest parity was sent: rebuilt packets carry it.
    trail: Option<SeqNum>,
    sources: BTreeMap<u8, Source>,
    parity: BTreeMap<u8, Bytes>,
    parity_rounds: u8,
    /// The XOR parity with the RS parities held made a singular system: it counts for
    /// nothing, so the block asks for one more RS parity instead.
    xor_singular: bool,
    /// Highest RS parity index received (0: none), and whether the XOR parity was: bound
    /// what the source can still send.
    highest_rs: u8,
    xor_seen: bool,
    /// The source said it has no parity left for the block.
    exhausted: bool,
    /// A NAK (parity or selective) went out for this block.
    naked: bool,
    done: bool,
}

impl Block {
    fn rs_held(&self) -> usize {
        self.parity
            .keys()
            .filter(|&&i| usize::from(i) != XOR_PARITY)
            .count()
    }

    /// Most parity symbols the source can still send for this block, whose source defines `m`
    /// RS parities (0 once it said it has none left).
    fn parity_left(&self, m: u8) -> usize {
        if self.exhausted {
            return 0;
        }
        usize::from(m.saturating_sub(self.highest_rs)) + usize::from(!self.xor_seen)
    }

    /// Whether a PARITY for (k, m) with a `symbol_len`-byte symbol can belong to this block.
    fn fits_parity(&self, k: u8, m: u8, symbol_len: usize) -> bool {
        let same_shape = self
            .parity
            .values()
            .next()
            .is_none_or(|held| (self.k, self.m, held.len()) == (Some(k), m, symbol_len));
        let sources_fit = self
            .sources
            .last_key_value()
            .is_none_or(|(&last, _)| last < k)
            && self.sources.values().all(|source| {
                symbol_len_for(SOURCE_HEADER_LEN + source.payload.len()) <= symbol_len
            });
        same_shape && sources_fit
    }

    fn missing(&self) -> Option<usize> {
        self.k
            .map(|k| usize::from(k).saturating_sub(self.sources.len()))
    }

    /// Parity symbols still needed to rebuild the block (0 when decodable or complete): any
    /// e parities rebuild e losses, the XOR parity included, unless it already proved
    /// singular with these losses.
    fn need(&self) -> usize {
        let xor = self.parity.contains_key(&(XOR_PARITY as u8)) && !self.xor_singular;
        self.missing().map_or(0, |missing| {
            missing.saturating_sub(self.rs_held() + usize::from(xor))
        })
    }
}

/// The decoder and the shape it was built for.
struct Decoder {
    max_k: usize,
    m: u8,
    max_payload: usize,
    coder: BlockDecoder,
}

/// FEC receive state of one source.
#[derive(Default)]
pub(super) struct FecReceiver {
    blocks: BTreeMap<Pos, Block>,
    decoder: Option<Decoder>,
    scratch: Vec<u8>,
    /// Reed-Solomon parities per block the source defines (from its newest PARITY): a block
    /// missing more than this can only be repaired selectively.
    rs_per_block: Option<u8>,
}

impl std::fmt::Debug for FecReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FecReceiver")
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

impl FecReceiver {
    /// Holds source packet `data` at `pos`, index `index` of its block; returns the block to
    /// try decoding, or `None` if the block is already complete.
    pub(super) fn on_source(&mut self, pos: Pos, index: u8, data: &Data) -> Option<Pos> {
        let first = pos.checked_sub(u64::from(index))?;
        self.learn_previous_k(first);
        let block = self.block(first)?;
        if block.done {
            return None;
        }
        block.sources.entry(index).or_insert_with(|| Source {
            message_len: data.message_len,
            fragment_offset: data.fragment_offset,
            payload: data.payload.clone(),
        });
        Some(first)
    }

    /// Holds parity symbol `index` of the block at `first` (k sources, m Reed-Solomon
    /// parities, sent when the source's trail was `trail`); returns the block to try decoding.
    /// A PARITY inconsistent with the block (an unsupported shape, another k, m or symbol
    /// length than the block's earlier PARITY, a symbol too short for a source held, a
    /// source index beyond k) is counted as `malformed` and dropped. Beyond one parity more
    /// than the block misses (all a decode can use) parity is not kept.
    pub(super) fn on_parity(
        &mut self,
        first: Pos,
        (k, m, index): (u8, u8, u8),
        trail: SeqNum,
        symbol: Bytes,
        stats: &mut Stats,
    ) -> Option<Pos> {
        if !shape_supported(usize::from(k), usize::from(m)) {
            stats.drops.count("malformed");
            return None;
        }
        let block = self.block(first)?;
        if block.done {
            return None;
        }
        if !block.fits_parity(k, m, symbol.len()) {
            stats.drops.count("malformed");
            return None;
        }
        block.k = Some(k);
        block.m = m;
        block.trail = Some(trail);
        if usize::from(index) == XOR_PARITY {
            block.xor_seen = true;
        } else {
            block.highest_rs = block.highest_rs.max(index);
        }
        if block.parity.len() <= usize::from(k).saturating_sub(block.sources.len()) {
            block.parity.entry(index).or_insert(symbol);
        }
        self.rs_per_block = Some(m);
        Some(first)
    }

    /// Rebuilds the block's missing packets if it is decodable; returns them as repairs of
    /// `stream`. A complete block is marked done and its payloads released.
    pub(super) fn try_decode(
        &mut self,
        first: Pos,
        stream: StreamId,
        stats: &mut Stats,
    ) -> Vec<Data> {
        let Some(block) = self.blocks.get_mut(&first) else {
            return Vec::new();
        };
        let (Some(k), Some(missing)) = (block.k, block.missing()) else {
            return Vec::new();
        };
        if block.done || (missing > 0 && (block.need() > 0 || block.trail.is_none())) {
            return Vec::new();
        }
        let done = Block {
            k: Some(k),
            done: true,
            ..Block::default()
        };
        let held = std::mem::replace(block, done);
        if missing == 0 {
            return Vec::new();
        }
        match self.decode(&held, k, first, stream) {
            Ok(rebuilt) => {
                stats.recovery.blocks_recovered += 1;
                stats.recovery.parity_used += rebuilt.len() as u64;
                stats.recovery.packets_recovered += rebuilt.len() as u64;
                rebuilt
            }
            Err(Undecodable::Singular) => {
                // Not a bad packet: the XOR parity adds nothing to these RS parities for
                // this pattern. Keep the block; it now needs one more RS parity.
                if let Some(block) = self.blocks.get_mut(&first) {
                    *block = Block {
                        xor_singular: true,
                        ..held
                    };
                }
                Vec::new()
            }
            Err(Undecodable::Inconsistent) => {
                // Parity that cannot have come from these sources (forged, or of another
                // block): counted and dropped; the block's packets are asked for selectively.
                stats.drops.count("malformed");
                Vec::new()
            }
        }
    }

    /// Splits the positions the NAK cycle wants to NAK into those to ask for selectively and
    /// `(block first position, symbols needed)` parity requests.
    pub(super) fn split_nak(
        &mut self,
        missing: &[Pos],
        lead: Pos,
        stats: &mut Stats,
    ) -> (Vec<Pos>, Vec<(Pos, u16)>) {
        let mut selective = Vec::new();
        let mut parity: Vec<(Pos, u16)> = Vec::new();
        for &pos in missing {
            let Some((&first, block)) = self.blocks.range_mut(..=pos).next_back() else {
                selective.push(pos);
                continue;
            };
            // With k unknown the block may still be open at the source: it spans at most to
            // the leading edge (the source closes it when the parity NAK arrives).
            let end = block.k.map_or(lead.min(first + MAX_SOURCES as u64), |k| {
                first + u64::from(k)
            });
            if pos >= end || block.done {
                selective.push(pos);
                continue;
            }
            if parity.last().is_some_and(|&(b, _)| b == first) {
                continue;
            }
            mark_naked(block, stats);
            let span = end - first;
            let missing = (span as usize).saturating_sub(block.sources.len());
            let need = match block.k {
                Some(_) => block.need(),
                None => missing,
            };
            // More needed than the source can still send: no amount of parity rebuilds the
            // block, so ask for its packets.
            let parity_can_do_it = !block.exhausted
                && self.rs_per_block.is_none_or(|m| {
                    need <= block.parity_left(if block.m > 0 { block.m } else { m })
                });
            if span >= u64::from(MIN_PARITY_BLOCK)
                && block.parity_rounds < MAX_PARITY_ROUNDS
                && need > 0
                && parity_can_do_it
            {
                block.parity_rounds += 1;
                parity.push((first, u16::try_from(need).unwrap_or(u16::MAX)));
            } else {
                selective.push(pos);
            }
        }
        (selective, parity)
    }

    /// `needed` symbols of the block at `first` were asked for by another receiver, or are
    /// coming (a PARITY_NCF): the positions this receiver misses there if that many would
    /// rebuild its copy too (its own NAK is then redundant), else none. A block of unknown k
    /// spans to the end of `tracked` (the leading edge), as in [`FecReceiver::split_nak`].
    pub(super) fn covered_by(
        &self,
        first: Pos,
        needed: u16,
        tracked: Range<Pos>,
    ) -> Vec<Range<Pos>> {
        let Some(block) = self.blocks.get(&first) else {
            return Vec::new();
        };
        let end = block
            .k
            .map_or(tracked.end.min(first + MAX_SOURCES as u64), |k| {
                first + u64::from(k)
            });
        let missing: Vec<Pos> = (first..end)
            .filter(|pos| {
                u8::try_from(pos - first).is_ok_and(|index| !block.sources.contains_key(&index))
            })
            .collect();
        let need = match block.k {
            Some(_) => block.need(),
            None => missing.len(),
        };
        // Waiting is pointless for parity the source no longer has.
        if block.done || need == 0 || need > usize::from(needed) || block.exhausted {
            return Vec::new();
        }
        missing
            .into_iter()
            .filter(|pos| tracked.contains(pos))
            .map(|pos| pos..pos + 1)
            .collect()
    }

    /// The source answered a parity request for the block at `first` with `coming` symbols,
    /// GONE if `gone`, and `own` says the request was this receiver's. Marks the block's
    /// parity exhausted when the source has none left, or promised this receiver less than it
    /// asked for (the source answers at least what was asked unless it ran out); returns
    /// whether it did, so the caller leaves the block's NAKs running, now selective.
    pub(super) fn on_parity_answer(
        &mut self,
        first: Pos,
        coming: u16,
        gone: bool,
        own: bool,
    ) -> bool {
        let Some(block) = self.blocks.get_mut(&first) else {
            return gone;
        };
        let short = own && block.k.is_some() && block.need() > usize::from(coming);
        if gone || short {
            block.exhausted = true;
        }
        block.exhausted
    }

    /// Forgets blocks that end before `delivered` (the delivery point).
    pub(super) fn prune(&mut self, delivered: Pos, stats: &mut Stats) {
        while let Some((&first, block)) = self.blocks.first_key_value() {
            let span = block.k.map_or(MAX_SOURCES as u64, u64::from);
            if first + span > delivered {
                break;
            }
            if !block.done && block.missing().is_some_and(|missing| missing > 0) {
                stats.recovery.blocks_unrecovered += 1;
            }
            self.blocks.remove(&first);
        }
    }

    /// The block at `first`, created if new (dropping the oldest beyond [`MAX_BLOCKS`]).
    fn block(&mut self, first: Pos) -> Option<&mut Block> {
        if !self.blocks.contains_key(&first) && self.blocks.len() >= MAX_BLOCKS {
            let oldest = *self.blocks.keys().next()?;
            if oldest > first {
                return None;
            }
            self.blocks.remove(&oldest);
        }
        Some(self.blocks.entry(first).or_default())
    }

    /// A block starting at `first` ends the block before it: its k is the distance.
    fn learn_previous_k(&mut self, first: Pos) {
        if let Some((&previous, block)) = self.blocks.range_mut(..first).next_back()
            && block.k.is_none()
            && let Ok(k) = u8::try_from(first - previous)
        {
            block.k = Some(k);
        }
    }

    /// Runs the decoder over `block`; returns the rebuilt packets, all of the block's missing
    /// ones (on failure the NAK cycle repairs them: selectively, or by more parity when the
    /// system was singular).
    fn decode(
        &mut self,
        block: &Block,
        k: u8,
        first: Pos,
        stream: StreamId,
    ) -> Result<Vec<Data>, Undecodable> {
        use Undecodable::Inconsistent;
        let Some(symbol_len) = block.parity.values().next().map(Bytes::len) else {
            return Err(Inconsistent);
        };
        let Some(trail) = block.trail else {
            return Err(Inconsistent);
        };
        let (k, max_payload) = (usize::from(k), symbol_len.saturating_sub(2));
        let fits = self
            .decoder
            .as_ref()
            .is_some_and(|d| d.max_k >= k && d.m == block.m && d.max_payload >= max_payload);
        if !fits {
            let max_k = self.decoder.as_ref().map_or(k, |d| d.max_k.max(k));
            let Ok(coder) = BlockDecoder::new(max_k, usize::from(block.m), max_payload) else {
                return Err(Inconsistent);
            };
            self.decoder = Some(Decoder {
                max_k,
                m: block.m,
                max_payload,
                coder,
            });
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return Err(Inconsistent);
        };
        let coder = &mut decoder.coder;
        coder.reset(k).map_err(|_| Inconsistent)?;
        for (&index, source) in &block.sources {
            let (len, offset) = (source.message_len, source.fragment_offset);
            write_source_symbol(&mut self.scratch, len, offset, &source.payload);
            coder
                .add_source(usize::from(index), &self.scratch)
                .map_err(|_| Inconsistent)?;
        }
        for (&index, symbol) in &block.parity {
            coder
                .add_parity(usize::from(index), symbol)
                .map_err(|_| Inconsistent)?;
        }
        match coder.recover() {
            Ok(_) => {}
            Err(FecError::Singular { .. }) => return Err(Undecodable::Singular),
            Err(_) => return Err(Inconsistent),
        }
        let mut rebuilt = Vec::new();
        for index in 0..k {
            if !coder.was_recovered(index) {
                continue;
            }
            // A rebuilt packet that cannot be one means the parity was not of these sources:
            // none of this block's rebuilt packets can be trusted.
            let symbol = coder.source(index).ok_or(Inconsistent)?;
            let (message_len, fragment_offset, payload) =
                read_source_symbol(symbol).ok_or(Inconsistent)?;
            if u64::from(fragment_offset) + payload.len() as u64 > u64::from(message_len) {
                return Err(Inconsistent);
            }
            rebuilt.push(Data {
                stream,
                repair: true,
                seq: seq_of(first + index as u64),
                trail,
                message_len,
                fragment_offset,
                payload: Bytes::copy_from_slice(payload),
                fec_index: u8::try_from(index).ok(),
            });
        }
        Ok(rebuilt)
    }
}

/// Why a decodable-looking block did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undecodable {
    /// The XOR parity and the RS parities held are dependent for this loss pattern.
    Singular,
    /// The parity (or a source) does not fit the block: a bad packet.
    Inconsistent,
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: StreamId = StreamId {
        source: 9,
        instance: 1,
    };

    fn data(pos: Pos, index: u8) -> Data {
        Data {
            stream: STREAM,
            repair: false,
            seq: seq_of(pos),
            trail: SeqNum(0),
            message_len: 3,
            fragment_offset: 0,
            payload: Bytes::from_static(b"abc"),
            fec_index: Some(index),
        }
    }

    /// A block of 8 at position 100 holding every source but `missing`, k known from the next
    /// block's first packet.
    fn block_missing(missing: &[u8]) -> FecReceiver {
        let mut fec = FecReceiver::default();
        for index in (0..8).filter(|i| !missing.contains(i)) {
            fec.on_source(
                100 + u64::from(index),
                index,
                &data(100 + u64::from(index), index),
            );
        }
        fec.on_source(108, 0, &data(108, 0));
        fec
    }

    #[test]
    fn missing_packets_of_a_known_block_become_one_parity_request() {
        let mut fec = block_missing(&[2, 5, 6]);
        let mut stats = Stats::default();
        let (selective, parity) = fec.split_nak(&[102, 105, 106], 109, &mut stats);
        assert!(selective.is_empty());
        assert_eq!(parity, vec![(100, 3)]);
        assert_eq!(stats.recovery.blocks_naked, 1);
    }

    #[test]
    fn a_block_asked_too_often_falls_back_to_selective() {
        let mut fec = block_missing(&[2]);
        let mut stats = Stats::default();
        for _ in 0..MAX_PARITY_ROUNDS {
            assert_eq!(fec.split_nak(&[102], 109, &mut stats).1.len(), 1);
        }
        assert_eq!(fec.split_nak(&[102], 109, &mut stats), (vec![102], vec![]));
    }

    #[test]
    fn a_block_needing_more_parity_than_the_source_has_left_is_repaired_selectively() {
        let mut stats = Stats::default();
        let symbol = || Bytes::from(vec![0; 14]);
        // m = 2: RS parity 2 seen, so at most the XOR parity is left; one held, 3 missing:
        // 2 needed, more than can come.
        let mut fec = block_missing(&[1, 2, 3]);
        fec.on_parity(100, (8, 2, 2), SeqNum(0), symbol(), &mut stats);
        let (selective, parity) = fec.split_nak(&[101, 102, 103], 109, &mut stats);
        assert_eq!((selective, parity), (vec![101, 102, 103], vec![]));
        // RS parity 1 seen instead: RS 2 and the XOR parity may still come, and 2 would do.
        let mut fec = block_missing(&[1, 2, 3]);
        fec.on_parity(100, (8, 2, 1), SeqNum(0), symbol(), &mut stats);
        assert_eq!(
            fec.split_nak(&[101, 102, 103], 109, &mut stats).1,
            vec![(100, 2)]
        );
        // The source says it has none left (a GONE PARITY_NCF): selective, and another
        // receiver's request no longer puts this one on hold.
        assert!(fec.on_parity_answer(100, 2, true, false));
        assert!(fec.covered_by(100, 2, 100..109).is_empty());
        let (selective, parity) = fec.split_nak(&[101, 102, 103], 109, &mut stats);
        assert_eq!((selective, parity), (vec![101, 102, 103], vec![]));
    }

    #[test]
    fn a_promise_short_of_this_receivers_own_request_means_parity_ran_out() {
        let mut fec = block_missing(&[1, 2, 3]);
        // Someone else's request promised 2: no conclusion for this receiver's need of 3.
        assert!(!fec.on_parity_answer(100, 2, false, false));
        // Its own request for 3 answered with 2: the source had no more.
        assert!(fec.on_parity_answer(100, 2, false, true));
        let mut stats = Stats::default();
        assert!(fec.split_nak(&[101], 109, &mut stats).1.is_empty());
    }

    #[test]
    fn an_open_block_is_asked_up_to_the_leading_edge_and_a_tiny_one_selectively() {
        let mut fec = FecReceiver::default();
        for index in [0u8, 1, 3, 4] {
            fec.on_source(
                200 + u64::from(index),
                index,
                &data(200 + u64::from(index), index),
            );
        }
        let mut stats = Stats::default();
        // k unknown: the block spans to the leading edge (205), one packet missing.
        assert_eq!(fec.split_nak(&[202], 205, &mut stats).1, vec![(200, 1)]);
        // Only 3 positions known so far: too small for parity.
        let mut small = FecReceiver::default();
        small.on_source(300, 0, &data(300, 0));
        assert_eq!(
            small.split_nak(&[301], 303, &mut stats),
            (vec![301], vec![])
        );
    }

    #[test]
    fn a_foreign_request_covers_this_receiver_only_if_it_asks_enough() {
        let fec = block_missing(&[1, 4]);
        assert!(fec.covered_by(100, 1, 100..109).is_empty());
        assert_eq!(fec.covered_by(100, 2, 100..109), vec![101..102, 104..105]);
    }

    #[test]
    fn pruning_counts_blocks_passed_with_holes_and_the_store_is_bounded() {
        let mut fec = block_missing(&[3]);
        let mut stats = Stats::default();
        fec.prune(108, &mut stats);
        assert_eq!(stats.recovery.blocks_unrecovered, 1);
        let mut many = FecReceiver::default();
        for block in 0..(MAX_BLOCKS as u64 + 10) {
            many.on_source(block * 300, 0, &data(block * 300, 0));
        }
        assert_eq!(many.blocks.len(), MAX_BLOCKS);
        // Older than everything held once full: refused rather than evicting newer blocks.
        assert!(many.on_source(5, 0, &data(5, 0)).is_none());
    }

    #[test]
    fn the_xor_parity_counts_toward_the_need() {
        // Three missing, the XOR parity and one RS parity held: one more parity rebuilds it.
        let mut fec = block_missing(&[1, 2, 3]);
        let mut stats = Stats::default();
        let symbol = || Bytes::from(vec![0; 14]);
        fec.on_parity(100, (8, 4, 0), SeqNum(0), symbol(), &mut stats);
        fec.on_parity(100, (8, 4, 1), SeqNum(0), symbol(), &mut stats);
        let (selective, parity) = fec.split_nak(&[101, 102, 103], 109, &mut stats);
        assert_eq!((selective, parity), (vec![], vec![(100, 1)]));
        // Another receiver asking for one covers this one too.
        assert_eq!(fec.covered_by(100, 1, 100..109).len(), 3);
    }

    /// The PARITY symbols 0..=m of a block of `k` copies of [`data`]'s packet.
    fn encoded_parity(k: usize, m: usize) -> Vec<Bytes> {
        let mut encoder = crate::proto::fec::BlockEncoder::new(k, m, 11).expect("shape");
        let mut symbol = Vec::new();
        for _ in 0..k {
            write_source_symbol(&mut symbol, 3, 0, b"abc");
            encoder.push_source(&symbol).expect("fits");
        }
        encoder.finish().expect("encodes");
        (0..=m)
            .map(|index| Bytes::copy_from_slice(encoder.parity(index).expect("parity")))
            .collect()
    }

    #[test]
    fn a_singular_xor_combination_asks_for_one_more_reed_solomon_parity() {
        // At (k, m) = (6, 3), sources 0 and 4 have equal coefficients in RS parity 2, so with
        // the XOR parity the 2 × 2 system is singular (`fec::tests` pins the pattern).
        let parity = encoded_parity(6, 3);
        let mut fec = FecReceiver::default();
        for index in [1u8, 2, 3, 5] {
            let pos = 200 + u64::from(index);
            fec.on_source(pos, index, &data(pos, index));
        }
        let mut stats = Stats::default();
        for index in [0u8, 2] {
            let symbol = parity[usize::from(index)].clone();
            let block = fec.on_parity(200, (6, 3, index), SeqNum(0), symbol, &mut stats);
            assert_eq!(block, Some(200));
        }
        assert!(fec.try_decode(200, STREAM, &mut stats).is_empty());
        assert_eq!(
            stats.drops.malformed, 0,
            "a singular system is no bad packet"
        );
        // The XOR parity now counts for nothing: one more RS parity is asked for, and rebuilds.
        assert_eq!(
            fec.split_nak(&[200, 204], 206, &mut stats).1,
            vec![(200, 1)]
        );
        fec.on_parity(200, (6, 3, 1), SeqNum(0), parity[1].clone(), &mut stats);
        let rebuilt = fec.try_decode(200, STREAM, &mut stats);
        let got: Vec<(u32, &[u8])> = rebuilt.iter().map(|d| (d.seq.0, &d.payload[..])).collect();
        assert_eq!(got, vec![(200, &b"abc"[..]), (204, &b"abc"[..])]);
        assert_eq!(stats.recovery.blocks_recovered, 1);
    }

    #[test]
    fn a_forged_block_shape_costs_what_the_block_can_need_not_what_m_claims() {
        // k = 1, m = 254, 65,534-byte symbols: a decoder sized for m took ~66 MB (parity slots
        // for 255 indices, the crate's decoder and a re-encoder for m = 254). A block of one
        // source needs two parity slots and no crate coder.
        use crate::proto::fec::{BlockEncoder, MAX_PAYLOAD};
        let payload: Vec<u8> = (0..MAX_PAYLOAD - 8).map(|i| (i * 13) as u8).collect();
        let len = payload.len() as u32;
        let mut symbol = Vec::new();
        write_source_symbol(&mut symbol, len, 0, &payload);
        let mut encoder = BlockEncoder::new(1, 254, MAX_PAYLOAD).expect("shape");
        encoder.push_source(&symbol).expect("fits");
        encoder.finish().expect("encodes");
        let parity = Bytes::copy_from_slice(encoder.parity(200).expect("parity"));
        // The crate's static tables, built once per process, are not the block's cost.
        drop(BlockDecoder::new(2, 2, 10));
        let mut fec = FecReceiver::default();
        let mut stats = Stats::default();
        let mut rebuilt = Vec::new();
        let bytes = crate::test_alloc::bytes_during(|| {
            let block = fec.on_parity(500, (1, 254, 200), SeqNum(0), parity, &mut stats);
            assert_eq!(block, Some(500));
            rebuilt = fec.try_decode(500, STREAM, &mut stats);
        });
        assert_eq!(rebuilt.len(), 1);
        assert_eq!(rebuilt[0].payload, payload);
        assert!(bytes < 2 << 20, "{bytes} bytes allocated");
    }

    #[test]
    fn parity_inconsistent_with_its_block_is_counted_and_dropped() {
        let mut fec = block_missing(&[2]);
        let mut stats = Stats::default();
        let symbol = |len: usize| Bytes::from(vec![0; len]);
        let mut offer = |fec: &mut FecReceiver, shape, len| {
            fec.on_parity(100, shape, SeqNum(0), symbol(len), &mut stats)
        };
        // m = 255 (the wire allows it, no code has it), and a symbol too short for the
        // 11-byte protected sources held ("abc" plus 8 header bytes need 14).
        assert_eq!(offer(&mut fec, (8, 255, 0), 14), None);
        assert_eq!(offer(&mut fec, (8, 4, 0), 12), None);
        // A k below a source index held.
        assert_eq!(offer(&mut fec, (2, 4, 0), 14), None);
        assert_eq!(offer(&mut fec, (8, 4, 1), 14), Some(100));
        // Once a PARITY set the shape, another k, m or symbol length is inconsistent.
        assert_eq!(offer(&mut fec, (8, 4, 2), 16), None);
        assert_eq!(offer(&mut fec, (8, 5, 2), 14), None);
        assert_eq!(offer(&mut fec, (9, 4, 2), 14), None);
        assert_eq!(stats.drops.malformed, 6);
        // Nothing inconsistent was kept: the block holds the one good parity.
        assert_eq!(fec.blocks[&100].parity.len(), 1);
    }

    #[test]
    fn a_block_keeps_no_more_parity_than_it_can_use() {
        let mut fec = block_missing(&[2, 5]);
        let mut stats = Stats::default();
        for index in 0..8 {
            fec.on_parity(
                100,
                (8, 8, index),
                SeqNum(0),
                Bytes::from(vec![0; 14]),
                &mut stats,
            );
        }
        // Two missing: two parities rebuild them, a third covers a singular XOR combination.
        assert_eq!(fec.blocks[&100].parity.len(), 3);
        assert_eq!(stats.drops.malformed, 0);
    }

    #[test]
    fn garbage_parity_never_panics_and_rebuilds_nothing() {
        let mut fec = block_missing(&[0]);
        let mut stats = Stats::default();
        let symbol = Bytes::from(vec![0xff; 14]);
        fec.on_parity(100, (8, 4, 1), SeqNum(0), symbol, &mut stats);
        // The prefix claims 65,535 bytes: the decoder refuses it; nothing is made up.
        assert!(fec.try_decode(100, STREAM, &mut stats).is_empty());
        assert_eq!(stats.recovery.packets_recovered, 0);
        assert_eq!(stats.drops.malformed, 1, "the bad parity is counted");
    }
}
