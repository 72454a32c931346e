//! Receiver side of a block: takes source payloads and parity symbols by index in any order,
//! says when the missing sources are recoverable, and rebuilds them with their exact lengths.
//!
//! Invariant: a source slot marked present holds its framed symbol (prefix, payload, zeros up
//! to `stride`), so any symbol length the block turns out to have slices it correctly; the
//! block's symbol length, once set by the first parity, bounds every later source and parity.
//!
//! Memory is what a block can need, whatever m the network claims: k source slots, at most
//! min(m, k) + 1 parity slots (no block uses more: e losses take e RS parities, or the XOR
//! parity and e − 1), and the crate's decoder only once a block needs it (more than 32 losses).

use super::solver::{Block, LossSolver, MAX_SOLVED_LOSSES};
use super::{
    FecError, LEN_PREFIX, XOR_PARITY, check_shape, frame_into, symbol_len_for, unframe, xor_into,
};
use reed_solomon_simd::ReedSolomonDecoder;

/// Whether an input changed the decoder's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// The symbol was new and is now held.
    New,
    /// A symbol with this index was already held (or already recovered); nothing changed.
    Duplicate,
    /// A parity the block cannot use: it already holds one more parity than it has sources
    /// (or all m + 1); nothing changed.
    Surplus,
}

/// How [`BlockDecoder::recover`] rebuilt the block's missing sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecoveryPath {
    /// One loss, from the XOR parity: one XOR pass over the block.
    Xor,
    /// A few losses, from as many Reed-Solomon parities (or the XOR parity and one RS parity
    /// fewer): one re-encode plus an e × e solve.
    Solved,
    /// Many losses: the crate's full Reed-Solomon decode.
    Decoded,
}

/// Recovers the missing sources of one block at a time.
///
/// Use: [`BlockDecoder::reset`] with the block's k, then [`BlockDecoder::add_source`] /
/// [`BlockDecoder::add_parity`] as symbols arrive; once [`BlockDecoder::can_recover`],
/// [`BlockDecoder::recover`], then [`BlockDecoder::source`] for each index it reported.
pub(crate) struct BlockDecoder {
    max_k: usize,
    m: usize,
    max_payload: usize,
    stride: usize,
    k: usize,
    /// Framed source symbols, one slot of `stride` bytes each.
    sources: Vec<u8>,
    have_source: Vec<bool>,
    /// Sources rebuilt by `recover` since the last `reset` (not received).
    recovered: Vec<bool>,
    /// Parity symbols held, one slot of `stride` bytes each, in arrival order.
    parity: Vec<u8>,
    /// `parity_slot[i]`: the slot of parity index i (0..=m), if held.
    parity_slot: Vec<Option<usize>>,
    /// Parity slots in use (of `parity.len() / stride`): the XOR parity, if held, and the RS
    /// parities held.
    parity_held: usize,
    /// Longest source payload held, to check it against the symbol length.
    longest_source: usize,
    /// The block's symbol length, known from the first parity symbol.
    symbol_len: Option<usize>,
    sources_held: usize,
    /// Few losses: solves the e × e system left by the losses (no full transform).
    solver: LossSolver,
    /// Many losses: the crate's own decoder, built when a block first needs it.
    rs: Option<ReedSolomonDecoder>,
    /// How the last `recover` of this block rebuilt sources (`None` before, or if none missing).
    last_path: Option<RecoveryPath>,
}

impl BlockDecoder {
    /// A decoder for blocks of up to `max_k` sources of at most `max_payload` bytes, with the
    /// XOR parity and `m` Reed-Solomon parities (the encoder's shape). Starts on a block of
    /// `max_k`.
    pub(crate) fn new(
        max_k: usize,
        m: usize,
        max_payload: usize,
    ) -> Result<BlockDecoder, FecError> {
        check_shape(max_k, m, max_payload)?;
        let stride = symbol_len_for(max_payload);
        let solver = LossSolver::new(max_k, m, stride)?;
        let parity_slots = m.min(max_k) + 1;
        Ok(BlockDecoder {
            max_k,
            m,
            max_payload,
            stride,
            k: max_k,
            sources: vec![0; max_k * stride],
            have_source: vec![false; max_k],
            recovered: vec![false; max_k],
            parity: vec![0; parity_slots * stride],
            parity_slot: vec![None; m + 1],
            parity_held: 0,
            longest_source: 0,
            symbol_len: None,
            sources_held: 0,
            solver,
            rs: None,
            last_path: None,
        })
    }

    /// Starts a new block of `k` sources (k below the maximum for a block the flush timer
    /// closed early); forgets every symbol held, keeps every buffer.
    pub(crate) fn reset(&mut self, k: usize) -> Result<(), FecError> {
        if k == 0 || k > self.max_k {
            return Err(FecError::Shape {
                k,
                m: self.m,
                max_payload: self.max_payload,
            });
        }
        self.k = k;
        self.have_source.fill(false);
        self.recovered.fill(false);
        self.parity_slot.fill(None);
        self.parity_held = 0;
        self.longest_source = 0;
        self.symbol_len = None;
        self.sources_held = 0;
        self.last_path = None;
        Ok(())
    }

    /// Sources in the current block.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Sources neither received nor recovered.
    pub(crate) fn missing(&self) -> usize {
        self.k - self.sources_held
    }

    /// Holds source `index` of the block, whose payload is `payload`.
    pub(crate) fn add_source(&mut self, index: usize, payload: &[u8]) -> Result<Added, FecError> {
        if index >= self.k {
            return Err(FecError::SourceIndex { index, k: self.k });
        }
        let max = self
            .symbol_len
            .map_or(self.max_payload, |len| len - LEN_PREFIX);
        if payload.len() > max {
            return Err(FecError::PayloadTooLong {
                len: payload.len(),
                max,
            });
        }
        if self.have_source[index] {
            return Ok(Added::Duplicate);
        }
        let slot = index * self.stride;
        frame_into(&mut self.sources[slot..slot + self.stride], payload);
        self.have_source[index] = true;
        self.sources_held += 1;
        self.longest_source = self.longest_source.max(payload.len());
        Ok(Added::New)
    }

    /// Holds parity symbol `index` (0 = XOR parity, 1..=m = Reed-Solomon). The first parity
    /// sets the block's symbol length; every later one must match it.
    pub(crate) fn add_parity(&mut self, index: usize, symbol: &[u8]) -> Result<Added, FecError> {
        if index > self.m {
            return Err(FecError::ParityIndex { index, m: self.m });
        }
        let expected = self.symbol_len.unwrap_or(self.stride);
        let valid_len = match self.symbol_len {
            Some(len) => symbol.len() == len,
            // The first parity may be any even length that can hold every source held so far.
            None => {
                symbol.len().is_multiple_of(2)
                    && symbol.len() >= symbol_len_for(self.longest_source)
                    && symbol.len() <= self.stride
            }
        };
        if !valid_len {
            return Err(FecError::SymbolLen {
                len: symbol.len(),
                expected,
            });
        }
        if self.parity_slot[index].is_some() {
            return Ok(Added::Duplicate);
        }
        if self.parity_held > self.m.min(self.k) {
            return Ok(Added::Surplus);
        }
        let slot = self.parity_held;
        self.parity[slot * self.stride..][..symbol.len()].copy_from_slice(symbol);
        self.parity_slot[index] = Some(slot);
        self.parity_held += 1;
        self.symbol_len = Some(symbol.len());
        Ok(Added::New)
    }

    /// Whether the XOR parity is held.
    fn have_xor(&self) -> bool {
        self.parity_slot[XOR_PARITY].is_some()
    }

    /// Whether enough is held to try rebuilding the missing sources: none missing, or no more
    /// missing than parities held (Reed-Solomon plus the XOR parity). With fewer RS parities
    /// than losses the XOR parity must join them, and for some patterns that system is
    /// singular: [`BlockDecoder::recover`] then fails with [`FecError::Singular`] and one more
    /// RS parity will do.
    pub(crate) fn can_recover(&self) -> bool {
        self.missing() <= self.parity_held
    }

    /// Reed-Solomon parities held.
    fn rs_parity_held(&self) -> usize {
        self.parity_held - usize::from(self.have_xor())
    }

    /// Rebuilds every missing source; returns how many were rebuilt (0 when none was missing).
    /// A single loss with the XOR parity held costs one pass of XOR over the block; up to
    /// [`super::solver::MAX_SOLVED_LOSSES`] losses cost one re-encode of the block plus an
    /// e × e solve, and so does any number that needs the XOR parity; more run the crate's
    /// full Reed-Solomon decoder. Afterwards [`BlockDecoder::source`] serves every index.
    /// On [`FecError::Singular`] nothing changed: add one more RS parity and retry.
    pub(crate) fn recover(&mut self) -> Result<usize, FecError> {
        let missing = self.missing();
        if missing == 0 {
            return Ok(0);
        }
        if !self.can_recover() {
            return Err(FecError::NotRecoverable { missing });
        }
        // Some when missing > 0 and recoverable: at least one parity is held.
        let Some(symbol_len) = self.symbol_len else {
            return Err(FecError::NotRecoverable { missing });
        };
        let path = if missing == 1 && self.have_xor() {
            self.recover_by_xor(symbol_len)?;
            RecoveryPath::Xor
        } else if missing > self.rs_parity_held() {
            // The XOR parity must join: only the solver combines it.
            if !self.recover_by_solver(symbol_len)? {
                return Err(FecError::Singular { missing });
            }
            RecoveryPath::Solved
        } else if missing <= MAX_SOLVED_LOSSES && self.recover_by_solver(symbol_len)? {
            RecoveryPath::Solved
        } else {
            self.recover_by_rs(symbol_len)?;
            RecoveryPath::Decoded
        };
        self.last_path = Some(path);
        Ok(missing)
    }

    /// The payload of source `index` (received or recovered) with its exact length.
    pub(crate) fn source(&self, index: usize) -> Option<&[u8]> {
        if index >= self.k || !self.have_source[index] {
            return None;
        }
        let slot = index * self.stride;
        unframe(&self.sources[slot..slot + self.stride])
    }

    /// How the last successful [`BlockDecoder::recover`] of the current block rebuilt its
    /// sources; `None` before any, or when nothing was missing.
    pub(crate) fn last_recovery_path(&self) -> Option<RecoveryPath> {
        self.last_path
    }

    /// Whether source `index` was rebuilt (not received) in the current block.
    pub(crate) fn was_recovered(&self, index: usize) -> bool {
        self.recovered.get(index).copied().unwrap_or(false)
    }

    fn recover_by_xor(&mut self, symbol_len: usize) -> Result<(), FecError> {
        let Some(lost) = self.have_source[..self.k].iter().position(|held| !held) else {
            return Ok(());
        };
        let lost_slot = lost * self.stride;
        let (before, rest) = self.sources.split_at_mut(lost_slot);
        let (target, after) = rest.split_at_mut(self.stride);
        let Some(xor_slot) = self.parity_slot[XOR_PARITY] else {
            return Err(FecError::NotRecoverable { missing: 1 });
        };
        target[..symbol_len].copy_from_slice(&self.parity[xor_slot * self.stride..][..symbol_len]);
        target[symbol_len..].fill(0);
        let symbols_before = before.chunks_exact(self.stride);
        let symbols_after = after.chunks_exact(self.stride).take(self.k - lost - 1);
        for symbol in symbols_before.chain(symbols_after) {
            xor_into(&mut target[..symbol_len], &symbol[..symbol_len]);
        }
        if unframe(&target[..symbol_len]).is_none() {
            return Err(FecError::CorruptRecovery { index: lost });
        }
        self.have_source[lost] = true;
        self.recovered[lost] = true;
        self.sources_held += 1;
        Ok(())
    }

    /// Returns false, changing nothing, when the solver declined (then the crate decodes).
    fn recover_by_solver(&mut self, symbol_len: usize) -> Result<bool, FecError> {
        let solved = self.solver.solve(Block {
            k: self.k,
            symbol_len,
            stride: self.stride,
            sources: &mut self.sources,
            have_source: &self.have_source,
            parity: &self.parity,
            parity_slot: &self.parity_slot,
        })?;
        if !solved {
            return Ok(false);
        }
        for index in 0..self.k {
            if self.have_source[index] {
                continue;
            }
            let slot = index * self.stride;
            if unframe(&self.sources[slot..slot + symbol_len]).is_none() {
                return Err(FecError::CorruptRecovery { index });
            }
            self.have_source[index] = true;
            self.recovered[index] = true;
            self.sources_held += 1;
        }
        Ok(true)
    }

    fn recover_by_rs(&mut self, symbol_len: usize) -> Result<(), FecError> {
        let rs = match &mut self.rs {
            Some(rs) => rs,
            rs @ None => rs.insert(ReedSolomonDecoder::new(self.max_k, self.m, self.stride)?),
        };
        rs.reset(self.k, self.m, symbol_len)?;
        for index in (0..self.k).filter(|&index| self.have_source[index]) {
            let slot = index * self.stride;
            rs.add_original_shard(index, &self.sources[slot..slot + symbol_len])?;
        }
        for (index, slot) in self.parity_slot.iter().enumerate().skip(1) {
            if let Some(slot) = slot {
                rs.add_recovery_shard(index - 1, &self.parity[slot * self.stride..][..symbol_len])?;
            }
        }
        let result = rs.decode()?;
        for (index, shard) in result.restored_original_iter() {
            let slot = index * self.stride;
            let Some(target) = self.sources.get_mut(slot..slot + self.stride) else {
                return Err(FecError::Codec(format!(
                    "restored index {index} out of range"
                )));
            };
            if shard.len() != symbol_len {
                return Err(FecError::SymbolLen {
                    len: shard.len(),
                    expected: symbol_len,
                });
            }
            target[..symbol_len].copy_from_slice(shard);
            target[symbol_len..].fill(0);
            if unframe(&target[..symbol_len]).is_none() {
                return Err(FecError::CorruptRecovery { index });
            }
            self.have_source[index] = true;
            self.recovered[index] = true;
            self.sources_held += 1;
        }
        Ok(())
    }
}
