//! Source side of a block: collects up to k source payloads, then encodes the XOR parity and
//! the m Reed-Solomon parities once, and hands out any parity symbol by index.
//!
//! Invariant: `parity` holds `m + 1` symbols of `symbol_len` bytes each, valid exactly while
//! `finished` is set; buffers and the crate encoder are reused, so steady-state blocks allocate
//! nothing.

use super::{
    FecError, LEN_PREFIX, MAX_PAYLOAD, XOR_PARITY, check_shape, frame_into, symbol_len_for,
    xor_into,
};
use reed_solomon_simd::ReedSolomonEncoder;

/// Builds the parity of one block at a time.
///
/// Use: [`BlockEncoder::push_source`] for each source payload (at most `max_k`), then
/// [`BlockEncoder::finish`] — either when the block is full or when the flush timer closes a
/// shorter one — then [`BlockEncoder::parity`] for any index 0..=m, as often as wanted, then
/// [`BlockEncoder::reset`] before the next block.
pub(crate) struct BlockEncoder {
    max_k: usize,
    m: usize,
    max_payload: usize,
    /// Stride of one slot in `sources` and `parity`: the largest possible symbol.
    stride: usize,
    /// Source payloads of the open block, each in a slot of `stride` bytes, unframed.
    sources: Vec<u8>,
    source_lens: Vec<usize>,
    /// Parity symbols 0..=m of the finished block, each in a slot of `stride` bytes.
    parity: Vec<u8>,
    /// One framed symbol, reused while feeding the crate.
    scratch: Vec<u8>,
    symbol_len: usize,
    finished: bool,
    rs: ReedSolomonEncoder,
}

impl BlockEncoder {
    /// An encoder for blocks of up to `max_k` sources of at most `max_payload` bytes each,
    /// protected by the XOR parity and `m` Reed-Solomon parities.
    pub(crate) fn new(
        max_k: usize,
        m: usize,
        max_payload: usize,
    ) -> Result<BlockEncoder, FecError> {
        check_shape(max_k, m, max_payload)?;
        let stride = symbol_len_for(max_payload);
        let rs = ReedSolomonEncoder::new(max_k, m, stride)?;
        Ok(BlockEncoder {
            max_k,
            m,
            max_payload,
            stride,
            sources: vec![0; max_k * stride],
            source_lens: Vec::with_capacity(max_k),
            parity: vec![0; (m + 1) * stride],
            scratch: vec![0; stride],
            symbol_len: 0,
            finished: false,
            rs,
        })
    }

    /// Reed-Solomon parity symbols per block (parity indices run 0..=m).
    pub(crate) fn rs_parity_count(&self) -> usize {
        self.m
    }

    /// Sources pushed into the open block.
    pub(crate) fn source_count(&self) -> usize {
        self.source_lens.len()
    }

    /// Whether the open block holds `max_k` sources.
    pub(crate) fn is_full(&self) -> bool {
        self.source_lens.len() == self.max_k
    }

    /// Adds the next source payload of the block; returns its source index.
    pub(crate) fn push_source(&mut self, payload: &[u8]) -> Result<usize, FecError> {
        if self.finished || self.is_full() {
            return Err(FecError::BlockFull {
                k: self.source_lens.len(),
            });
        }
        if payload.len() > self.max_payload {
            return Err(FecError::PayloadTooLong {
                len: payload.len(),
                max: self.max_payload,
            });
        }
        let index = self.source_lens.len();
        let slot = index * self.stride;
        self.sources[slot..slot + payload.len()].copy_from_slice(payload);
        self.source_lens.push(payload.len());
        Ok(index)
    }

    /// Closes the block with the sources pushed so far (its k) and encodes all its parity.
    /// Returns the block's symbol length, which every parity symbol has.
    pub(crate) fn finish(&mut self) -> Result<usize, FecError> {
        let k = self.source_lens.len();
        if self.finished || k == 0 {
            return Err(FecError::NotFinished);
        }
        let longest = self.source_lens.iter().copied().max().unwrap_or(0);
        let symbol_len = symbol_len_for(longest);
        self.rs.reset(k, self.m, symbol_len)?;
        let xor_slot = XOR_PARITY * self.stride;
        self.parity[xor_slot..xor_slot + symbol_len].fill(0);
        for (index, &len) in self.source_lens.iter().enumerate() {
            let slot = index * self.stride;
            let symbol = &mut self.scratch[..symbol_len];
            frame_into(symbol, &self.sources[slot..slot + len]);
            xor_into(&mut self.parity[xor_slot..xor_slot + symbol_len], symbol);
            self.rs.add_original_shard(&*symbol)?;
        }
        let encoded = self.rs.encode()?;
        for (rs_index, shard) in encoded.recovery_iter().enumerate() {
            let slot = (rs_index + 1) * self.stride;
            self.parity[slot..slot + symbol_len].copy_from_slice(shard);
        }
        self.symbol_len = symbol_len;
        self.finished = true;
        Ok(symbol_len)
    }

    /// Parity symbol `index` (0 = XOR parity, 1..=m = Reed-Solomon) of the finished block.
    pub(crate) fn parity(&self, index: usize) -> Result<&[u8], FecError> {
        if !self.finished {
            return Err(FecError::NotFinished);
        }
        if index > self.m {
            return Err(FecError::ParityIndex { index, m: self.m });
        }
        let slot = index * self.stride;
        Ok(&self.parity[slot..slot + self.symbol_len])
    }

    /// Forgets the block (sources and parity) so the next one can start; keeps every buffer.
    pub(crate) fn reset(&mut self) {
        self.source_lens.clear();
        self.finished = false;
        self.symbol_len = 0;
    }
}

// The prefix must fit the u16 the framing writes.
const _: () = assert!(MAX_PAYLOAD + LEN_PREFIX < u16::MAX as usize);
