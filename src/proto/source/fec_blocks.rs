//! FEC at the source: cuts the ODATA stream into blocks of up to k packets, encodes each block
//! when it closes (full, by the flush timer, or on a parity NAK about it — the last two with a
//! smaller k), queues its p proactive PARITY packets, and answers parity NAKs with parity not
//! sent before for that block, confirmed by a PARITY_NCF saying how many are coming.
//!
//! Blocks are runs of consecutive sequence numbers, independent of message boundaries; a block
//! is named by its first sequence number and every ODATA in it carries its index (the BLOCK
//! word), so receivers learn boundaries without alignment and a flushed short block needs no
//! padding. Parity is never stored: the window still holds the block's sources, and one
//! [`BlockEncoder`] re-encodes a block when a NAK asks for it (the last block encoded is kept,
//! so the NAKs of one round cost one encode). Memory is thus tied to the transmit window:
//! block metadata for the blocks whose first packet is still in it, plus at most
//! [`MAX_QUEUED_PARITY`] encoded PARITY packets waiting for the pacer.
//!
//! Parity order per block: with p = 1 the proactive parity is the XOR parity (index 0, the
//! cheap single-loss repair); with p ≥ 2 it is Reed-Solomon 1..=p (any p losses). On demand, a
//! request for one symbol of a block with nothing sent yet gets the XOR parity, anything else
//! the next Reed-Solomon indices not sent before, then the XOR parity if still unsent (it
//! combines with them). No index is sent twice: once a block's parity runs out, a request is
//! answered with what remains (the PARITY_NCF says how many), and one that finds nothing left
//! with a GONE PARITY_NCF, on which receivers ask for the block's packets selectively — resent
//! parity would mostly repeat symbols the askers already hold. NAKs crossing in one round (the
//! repair linger) are answered by their maximum, and parity still queued counts against a
//! request. Receivers also fall back to selective NAKs for small blocks, blocks needing more
//! parity than can be left, and after many rounds (see `receiver/fec_blocks.rs`).
//!
//! Invariants: `blocks` is ordered by first index, disjoint, and every block starts at or
//! after the window's trail index once `forget_below` ran; the open block's sources are the
//! window indices `open.first .. open.first + open.count`.

use super::window::{Position, TransmitWindow};
use crate::proto::fec::{BlockEncoder, FecError, XOR_PARITY};
use crate::stats::Stats;
use crate::wire::{HEADER_LEN, Packet, Parity, SeqNum, SeqRange, StreamId};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most encoded PARITY packets waiting to be sent; beyond it on-demand requests are dropped
/// (the receivers ask again) so a NAK flood cannot grow memory.
pub(super) const MAX_QUEUED_PARITY: usize = 4096;

/// Bytes of `message_len` and `fragment_offset` protected with each payload, so a recovered
/// packet is rebuilt whole.
pub(crate) const SOURCE_HEADER_LEN: usize = 8;

/// Writes what FEC protects of one source packet into `out` (cleared first): its
/// `message_len` and `fragment_offset`, then its payload. The receiver reads it back with
/// [`read_source_symbol`].
pub(crate) fn write_source_symbol(
    out: &mut Vec<u8>,
    message_len: u32,
    fragment_offset: u32,
    payload: &[u8],
) {
    out.clear();
    out.extend_from_slice(&message_len.to_be_bytes());
    out.extend_from_slice(&fragment_offset.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `(message_len, fragment_offset, payload)` of a rebuilt source symbol, or `None` when it is
/// too short to hold them.
pub(crate) fn read_source_symbol(symbol: &[u8]) -> Option<(u32, u32, &[u8])> {
    let (header, payload) = symbol.split_at_checked(SOURCE_HEADER_LEN)?;
    let message_len = u32::from_be_bytes(header[..4].try_into().ok()?);
    let fragment_offset = u32::from_be_bytes(header[4..].try_into().ok()?);
    Some((message_len, fragment_offset, payload))
}

/// Datagram bytes around the largest payload in a PARITY packet: common header, PARITY fields,
/// the symbol's length prefix, the protected source header and one byte of even-length
/// padding. It exceeds an ODATA's overhead with the BLOCK word (36), so a source with FEC cuts
/// its payloads to `max_datagram - PARITY_OVERHEAD` and every datagram fits.
pub(super) const PARITY_OVERHEAD: usize =
    HEADER_LEN + 16 + crate::proto::fec::LEN_PREFIX + SOURCE_HEADER_LEN + 1;

/// The FEC shape of a session: blocks of up to `k` sources, `p` proactive parity per block,
/// `m` Reed-Solomon parity encoded per block, blocks closed `flush` after their last packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FecParams {
    /// Sources per block (1..=255).
    pub(crate) k: u8,
    /// Proactive parity packets sent with each block (0..=m).
    pub(crate) p: u8,
    /// Reed-Solomon parities encoded per block; on-demand parity draws from these.
    pub(crate) m: u8,
    /// A block still open this long after its last packet is closed with a smaller k.
    pub(crate) flush: Duration,
}

impl FecParams {
    /// The shape for `fec(k, p)`: m = max(p, k/2, 1), so on-demand parity can repair up to
    /// half a block (and p of them go out proactively).
    pub(crate) fn new(k: u8, p: u8, flush: Duration) -> FecParams {
        let p = p.min(crate::proto::fec::MAX_RS_PARITY as u8);
        let m = p.max(k / 2).max(1);
        FecParams { k, p, m, flush }
    }
}

/// The source's answer to one block of a parity NAK, for the PARITY_NCF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParityAnswer {
    /// `(block, parity coming this round)`.
    Coming(SeqRange),
    /// `(block, parity asked)`: every parity of the block was sent; none is coming. Confirmed
    /// with a GONE PARITY_NCF, so the receivers ask for its packets selectively.
    Exhausted(SeqRange),
}

/// A closed block.
#[derive(Clone, Copy, Debug)]
struct Block {
    first: u64,
    k: u8,
    xor_sent: bool,
    /// Reed-Solomon parities sent so far (indices 1..=rs_sent went out; at most m).
    rs_sent: u8,
    /// The largest request answered in the current round, and when that round began: NAKs
    /// crossing in one round are answered by their maximum, not their sum (PGM §9.6).
    answered: u16,
    round_at: Option<Instant>,
    /// Parity of this block queued and not sent yet: a request they already cover (a NAK
    /// repeated while the pacer held them back) adds nothing.
    queued: u16,
}

/// The block being filled.
#[derive(Clone, Copy, Debug)]
struct OpenBlock {
    first: u64,
    count: u8,
    last_at: Instant,
}

/// A PARITY packet ready to send.
pub(super) struct QueuedParity {
    pub(super) datagram: Bytes,
    pub(super) on_demand: bool,
    /// Window index of the block's first packet.
    block: u64,
}

/// The source's FEC state (present only with `fec(k, p)` configured).
pub(super) struct FecSender {
    params: FecParams,
    stream: StreamId,
    encoder: BlockEncoder,
    /// The block whose parity the encoder currently holds.
    encoded: Option<u64>,
    scratch: Vec<u8>,
    open: Option<OpenBlock>,
    blocks: VecDeque<Block>,
    queue: VecDeque<QueuedParity>,
}

impl FecSender {
    /// FEC for `stream`, whose packets carry at most `max_payload` bytes.
    pub(super) fn new(
        params: FecParams,
        stream: StreamId,
        max_payload: usize,
    ) -> Result<FecSender, FecError> {
        let encoder = BlockEncoder::new(
            usize::from(params.k),
            usize::from(params.m),
            max_payload + SOURCE_HEADER_LEN,
        )?;
        Ok(FecSender {
            params,
            stream,
            encoder,
            encoded: None,
            scratch: Vec::with_capacity(max_payload + SOURCE_HEADER_LEN),
            open: None,
            blocks: VecDeque::new(),
            queue: VecDeque::new(),
        })
    }

    /// Files the ODATA at window `index` into the open block (starting one if needed);
    /// returns its index in the block. A block reaching k closes and queues its proactive
    /// parity.
    pub(super) fn on_odata(
        &mut self,
        window: &TransmitWindow,
        index: u64,
        now: Instant,
        stats: &mut Stats,
    ) -> u8 {
        let open = self.open.get_or_insert(OpenBlock {
            first: index,
            count: 0,
            last_at: now,
        });
        let in_block = open.count;
        open.count += 1;
        open.last_at = now;
        if open.count >= self.params.k {
            self.close(window, stats);
        }
        in_block
    }

    /// When the flush timer closes the open block.
    pub(super) fn flush_at(&self) -> Option<Instant> {
        self.open.map(|open| open.last_at + self.params.flush)
    }

    /// Closes the open block if its flush time has come.
    pub(super) fn on_timeout(&mut self, window: &TransmitWindow, now: Instant, stats: &mut Stats) {
        if self.flush_at().is_some_and(|at| at <= now) {
            self.close(window, stats);
        }
    }

    /// Drops the metadata of blocks whose first packet left the window.
    pub(super) fn forget_below(&mut self, trail_index: u64) {
        while self.blocks.front().is_some_and(|b| b.first < trail_index) {
            self.blocks.pop_front();
        }
    }

    /// The next PARITY packet to send.
    pub(super) fn pop(&mut self) -> Option<QueuedParity> {
        let parity = self.queue.pop_front()?;
        if let Ok(at) = self.blocks.binary_search_by_key(&parity.block, |b| b.first) {
            let block = &mut self.blocks[at];
            block.queued = block.queued.saturating_sub(1);
        }
        Some(parity)
    }

    /// Whether PARITY packets wait.
    pub(super) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// A parity NAK for the block starting at `block` asking for `needed` symbols. Queues that
    /// many parities not sent before (less what this round or the queue already covers, and
    /// no more than remain) and returns what the PARITY_NCF confirms: `(block, parity coming
    /// this round)`, or [`ParityAnswer::Exhausted`] when none is coming or left; `None` when
    /// the block is unknown (not a block start, or gone from the window).
    pub(super) fn on_parity_nak(
        &mut self,
        window: &TransmitWindow,
        block: SeqNum,
        needed: u16,
        now: Instant,
        round: Duration,
        stats: &mut Stats,
    ) -> Option<ParityAnswer> {
        let Position::Held(first) = window.position(block) else {
            return None;
        };
        // A receiver asking about the open block: close it now (with a smaller k) rather than
        // make it wait for the rest of the block.
        if self.open.is_some_and(|open| open.first == first) {
            self.close(window, stats);
        }
        let at = self.blocks.binary_search_by_key(&first, |b| b.first).ok()?;
        if !self.encode(window, at) {
            return None;
        }
        let m = self.params.m;
        let asked = needed;
        let entry = &mut self.blocks[at];
        let same_round = entry
            .round_at
            .is_some_and(|at| now.saturating_duration_since(at) < round);
        let needed = if same_round {
            let extra = needed.saturating_sub(entry.answered);
            entry.answered = entry.answered.max(needed);
            extra
        } else {
            entry.round_at = Some(now);
            entry.answered = needed;
            needed.saturating_sub(entry.queued)
        };
        let mut indices = Vec::with_capacity(usize::from(needed.min(u16::from(m) + 1)));
        if needed == 1 && !entry.xor_sent && entry.rs_sent == 0 {
            entry.xor_sent = true;
            indices.push(XOR_PARITY as u8);
        } else {
            let rs = needed.min(u16::from(m - entry.rs_sent)) as u8;
            indices.extend(entry.rs_sent + 1..=entry.rs_sent + rs);
            entry.rs_sent += rs;
            // Out of RS parity: the XOR parity, if unsent, is one more symbol that combines.
            if u16::from(rs) < needed && !entry.xor_sent {
                entry.xor_sent = true;
                indices.push(XOR_PARITY as u8);
            }
        }
        // What could not be sent is not coming: the NCF must not promise it.
        let short = needed - indices.len() as u16;
        entry.answered -= short.min(entry.answered);
        let (k, first_index, coming) = (entry.k, entry.first, entry.answered);
        for index in indices {
            self.queue_parity(window, first_index, k, index, true);
        }
        let range = SeqRange {
            first: block,
            count: coming.max(1),
        };
        Some(if coming == 0 {
            ParityAnswer::Exhausted(SeqRange {
                count: asked.max(1),
                ..range
            })
        } else {
            ParityAnswer::Coming(range)
        })
    }

    /// Closes the open block: records it and queues its proactive parity.
    fn close(&mut self, window: &TransmitWindow, stats: &mut Stats) {
        let Some(open) = self.open.take() else {
            return;
        };
        stats.recovery.blocks_sent += 1;
        self.blocks.push_back(Block {
            first: open.first,
            k: open.count,
            xor_sent: false,
            rs_sent: 0,
            answered: 0,
            round_at: None,
            queued: 0,
        });
        let p = self.params.p;
        if p == 0 {
            return;
        }
        let at = self.blocks.len() - 1;
        if !self.encode(window, at) {
            return;
        }
        let block = &mut self.blocks[at];
        let indices: Vec<u8> = if p == 1 {
            block.xor_sent = true;
            vec![XOR_PARITY as u8]
        } else {
            block.rs_sent = p;
            (1..=p).collect()
        };
        for index in indices {
            self.queue_parity(window, open.first, open.count, index, false);
        }
    }

    /// Makes the encoder hold block `blocks[at]`'s parity; false if a source left the window.
    fn encode(&mut self, window: &TransmitWindow, at: usize) -> bool {
        let block = self.blocks[at];
        if self.encoded == Some(block.first) {
            return true;
        }
        self.encoded = None;
        self.encoder.reset();
        for index in block.first..block.first + u64::from(block.k) {
            let Some(entry) = window.get(index) else {
                return false;
            };
            let (len, offset) = (entry.message_len, entry.fragment_offset);
            write_source_symbol(&mut self.scratch, len, offset, &entry.payload);
            if self.encoder.push_source(&self.scratch).is_err() {
                return false;
            }
        }
        if self.encoder.finish().is_err() {
            return false;
        }
        self.encoded = Some(block.first);
        true
    }

    /// Queues PARITY `index` of the block the encoder holds.
    fn queue_parity(
        &mut self,
        window: &TransmitWindow,
        first: u64,
        k: u8,
        index: u8,
        on_demand: bool,
    ) {
        if self.queue.len() >= MAX_QUEUED_PARITY {
            return;
        }
        let Ok(symbol) = self.encoder.parity(usize::from(index)) else {
            return;
        };
        let parity = Parity {
            stream: self.stream,
            block: window.seq_of(first),
            trail: window.trail(),
            k,
            m: self.params.m,
            index,
            symbol: Bytes::copy_from_slice(symbol),
        };
        self.queue.push_back(QueuedParity {
            datagram: Packet::Parity(parity).to_bytes(),
            on_demand,
            block: first,
        });
        if let Ok(at) = self.blocks.binary_search_by_key(&first, |b| b.first) {
            self.blocks[at].queued += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::base_instant;
    use super::super::window::{Entry, Limits};
    use super::*;
    use crate::wire;

    const MS: Duration = Duration::from_millis(1);
    const STREAM: StreamId = StreamId {
        source: 3,
        instance: 4,
    };

    /// A window holding `packets` sent packets, each filed into `fec` as it is pushed.
    fn sent(fec: &mut FecSender, packets: u64, now: Instant, stats: &mut Stats) -> TransmitWindow {
        let limits = Limits {
            packets: 1_000,
            bytes: 1 << 20,
            age: Duration::from_secs(60),
        };
        let mut window = TransmitWindow::new(SeqNum(u32::MAX - 2), limits);
        for index in 0..packets {
            window.push(Entry {
                sent_at: now,
                message_len: 100,
                fragment_offset: 0,
                payload: Bytes::from(vec![index as u8; 100]),
                repaired_at: None,
                repair_queued: false,
                fec_index: None,
            });
            fec.on_odata(&window, index, now, stats);
        }
        window
    }

    /// `fec(8, 0)` (m = 4) after `packets` sent: the instant, stats, FEC state and window.
    fn fec_8_0_after(packets: u64) -> (Instant, Stats, FecSender, TransmitWindow) {
        let now = base_instant();
        let mut stats = Stats::default();
        let mut fec = FecSender::new(FecParams::new(8, 0, 5 * MS), STREAM, 100).expect("shape");
        let window = sent(&mut fec, packets, now, &mut stats);
        (now, stats, fec, window)
    }

    /// The answer promising `count` parities for `block`.
    fn coming(block: SeqNum, count: u16) -> Option<ParityAnswer> {
        Some(ParityAnswer::Coming(SeqRange {
            first: block,
            count,
        }))
    }

    fn indices(fec: &mut FecSender) -> Vec<u8> {
        std::iter::from_fn(|| fec.pop())
            .map(|queued| match wire::decode(queued.datagram) {
                Ok(Packet::Parity(parity)) => parity.index,
                other => panic!("not a PARITY: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn requests_in_one_round_are_answered_by_their_maximum_and_later_ones_by_new_indices() {
        let (now, mut stats, mut fec, window) = fec_8_0_after(8);
        let block = window.seq_of(0);
        let answer = fec.on_parity_nak(&window, block, 2, now, 10 * MS, &mut stats);
        assert_eq!(answer, coming(block, 2), "the PARITY_NCF says 2 are coming");
        // Crossing requests: 3 needs one more than the 2 already answered, 1 needs none.
        fec.on_parity_nak(&window, block, 3, now + MS, 10 * MS, &mut stats);
        fec.on_parity_nak(&window, block, 1, now + MS, 10 * MS, &mut stats);
        assert_eq!(indices(&mut fec), vec![1, 2, 3]);
        // A later round gets indices never sent: the last RS parity, then the XOR parity.
        fec.on_parity_nak(&window, block, 2, now + 20 * MS, 10 * MS, &mut stats);
        assert_eq!(indices(&mut fec), vec![4, 0]);
    }

    #[test]
    fn exhausted_parity_is_not_resent_and_the_ncf_promises_only_what_remains() {
        // k = 8, m = 4: five parities in all (RS 1..=4 and the XOR parity).
        let (now, mut stats, mut fec, window) = fec_8_0_after(8);
        let block = window.seq_of(0);
        let ask = |fec: &mut FecSender, needed, at: u32, stats: &mut Stats| {
            fec.on_parity_nak(&window, block, needed, now + at * 20 * MS, 10 * MS, stats)
        };
        assert_eq!(ask(&mut fec, 3, 0, &mut stats), coming(block, 3));
        assert_eq!(indices(&mut fec), vec![1, 2, 3]);
        // 5 asked, 2 left: the NCF says 2, not 5.
        assert_eq!(ask(&mut fec, 5, 1, &mut stats), coming(block, 2));
        assert_eq!(indices(&mut fec), vec![4, 0]);
        // Nothing left: no parity, a GONE answer for the asked count.
        let gone = Some(ParityAnswer::Exhausted(SeqRange {
            first: block,
            count: 2,
        }));
        assert_eq!(ask(&mut fec, 2, 2, &mut stats), gone);
        assert!(indices(&mut fec).is_empty());
    }

    #[test]
    fn a_first_single_loss_gets_the_xor_parity_and_queued_parity_counts() {
        let (now, mut stats, mut fec, window) = fec_8_0_after(8);
        let block = window.seq_of(0);
        fec.on_parity_nak(&window, block, 1, now, 10 * MS, &mut stats);
        // A repeat in a later round while the XOR parity still waits for the pacer adds nothing.
        fec.on_parity_nak(&window, block, 1, now + 20 * MS, 10 * MS, &mut stats);
        assert_eq!(indices(&mut fec), vec![0]);
    }

    #[test]
    fn a_request_for_the_open_block_closes_it_with_the_packets_sent_so_far() {
        let (now, mut stats, mut fec, window) = fec_8_0_after(5);
        assert!(fec.flush_at().is_some());
        let block = window.seq_of(0);
        let answer = fec.on_parity_nak(&window, block, 1, now, 10 * MS, &mut stats);
        assert_eq!(answer, coming(block, 1));
        assert_eq!((fec.flush_at(), stats.recovery.blocks_sent), (None, 1));
        assert_eq!(
            indices(&mut fec),
            vec![0],
            "k = 5 and one needed: the XOR parity"
        );
        // Not a block start, and a block gone from the window: unknown.
        assert!(
            fec.on_parity_nak(&window, window.seq_of(2), 1, now, MS, &mut stats)
                .is_none()
        );
        assert!(
            fec.on_parity_nak(&window, SeqNum(7), 1, now, MS, &mut stats)
                .is_none()
        );
    }
}
