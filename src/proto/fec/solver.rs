//! Recovery of lost sources without the crate's full decode: solves only the e × e system the
//! e losses leave, with `reed-solomon-simd`'s own encoder and field arithmetic. It is also the
//! only path that combines the XOR parity with Reed-Solomon parities.
//!
//! Why: a `reed-solomon-simd` decode pays a fixed 2^16-point transform (`eval_poly`) plus
//! transforms over every shard, whatever is lost (~0.3 ms at k = 64). Its code is linear over
//! GF(2^16), element by element: RS parity r of a block is `p_r = Σ_j c_rj · s_j`. The XOR
//! parity is the same kind of row with every coefficient the field's one: addition in
//! GF(2^16) is XOR, and it is taken over the same framed symbols (length prefix, payload, zero
//! padding to the block's symbol length) as the RS parities, so `p_0 = Σ_j s_j`. With the
//! sources `L` lost and parities `P` (|P| = |L| = e) in hand:
//!
//! 1. *Syndromes*: `Δ_r = p_r + Σ_{j∉L} c_rj · s_j = Σ_{j∈L} c_rj · s_j` for r ∈ P. For RS rows
//!    the sum is one re-encode of the block with the lost sources set to zero (the crate's
//!    encoder, as fast as sending); for the XOR row it is an XOR pass. When the crate's encoder
//!    would be much larger than the block (m > 2 · k, only forged or odd shapes), the RS sums
//!    are instead region multiply-adds, so the memory stays that of the block.
//! 2. *Coefficients* `c_rj`: one encode of tiny probe shards in which source j holds the field's
//!    one at element j, so parity r's element j is `c_rj`; kept until the block's k changes.
//! 3. *Solve*: invert the e × e matrix `(c_rj)`, r ∈ P, j ∈ L (Gauss–Jordan on scalars), then
//!    `s_L = C⁻¹ · Δ` as e² region multiply-adds.
//!
//! Rows: e RS parities when that many are held (the RS code is MDS, so the matrix is always
//! invertible); otherwise the XOR parity and e − 1 RS parities. That extended code is not MDS:
//! for some loss patterns the matrix is singular, and `solve` says so without touching a slot
//! (the receiver then asks for one more RS parity, which makes an RS-only system).
//!
//! Field arithmetic all comes from the crate: scalar products are `engine::tables::mul` over
//! its exp/log tables, region products are `Engine::mul` of its SIMD `DefaultEngine`, region
//! sums are `engine::utils::xor`. Only the elimination order is written here. The parity values
//! are the crate's own, so this decodes exactly what `BlockEncoder` sent.
//!
//! Layout: the crate reads a shard as 64-byte chunks of 32 elements (low bytes, then high
//! bytes); a final partial chunk of t bytes holds t/2 elements the same way (t/2 low bytes,
//! then t/2 high bytes). Region products run on that chunk layout; [`load`] and [`store`]
//! convert the final partial chunk. A byte-wise XOR is the same in either layout.
//!
//! Invariant: every buffer is sized at construction for the decoder's largest block (the
//! re-encoder on first use), so solving allocates nothing after the first block.

use super::{XOR_PARITY, xor_into};
use reed_solomon_simd::ReedSolomonEncoder;
use reed_solomon_simd::engine::tables::{self, ExpLog};
use reed_solomon_simd::engine::{DefaultEngine, Engine, GF_MODULUS, GfElement, utils};

/// Most lost sources the solver takes on from Reed-Solomon parities alone; a block missing
/// more goes to the crate's decoder. The solver's cost grows as e² region products plus e³
/// scalar steps, the crate decoder's is flat: measured faster up to e = 32 at every shape
/// tried, slower from e = 40 at (k, m) = (150, 96) (figures in `docs/fec.md`). A system that
/// needs the XOR parity is solved here whatever e (the crate's decoder cannot use it).
pub(super) const MAX_SOLVED_LOSSES: usize = 32;

/// Bytes in one chunk of the crate's shard layout.
const CHUNK: usize = 64;
/// Elements in one chunk: low bytes in the first half, high bytes in the second.
const HALF: usize = CHUNK / 2;

/// The block a [`LossSolver`] works on, borrowed from the decoder.
pub(super) struct Block<'a> {
    /// Sources in the block.
    pub(super) k: usize,
    /// The block's symbol length (even, ≥ 2).
    pub(super) symbol_len: usize,
    /// Bytes between consecutive slots in `sources` and `parity`.
    pub(super) stride: usize,
    /// Framed source symbols, one slot each; lost slots are overwritten with the recovery.
    pub(super) sources: &'a mut [u8],
    /// Which source slots hold a received (or earlier recovered) symbol.
    pub(super) have_source: &'a [bool],
    /// Parity symbols held, one slot each, in arrival order.
    pub(super) parity: &'a [u8],
    /// `parity_slot[i]`: the slot in `parity` of parity index i (0 = XOR, 1..=m RS), if held.
    pub(super) parity_slot: &'a [Option<usize>],
}

impl Block<'_> {
    /// Parity symbol `index`, if held.
    fn parity(&self, index: usize) -> Option<&[u8]> {
        let slot = (*self.parity_slot.get(index)?)?;
        self.parity
            .get(slot * self.stride..)?
            .get(..self.symbol_len)
    }
}

/// Rebuilds lost sources from as many parities (RS, or the XOR parity and RS).
pub(super) struct LossSolver {
    max_k: usize,
    m: usize,
    stride: usize,
    /// Most losses one solve takes on: no more than the block's sources or the parities.
    max_e: usize,
    engine: DefaultEngine,
    field: &'static ExpLog,
    /// The multiplicative identity in the crate's representation.
    one: GfElement,
    /// Re-encodes the received sources (lost ones as zeros) to get the RS syndromes; built on
    /// first use, and never when `m > 2 · max_k` (see the module doc).
    reencoder: Option<ReedSolomonEncoder>,
    /// Encodes the unit probes that reveal the code's coefficients.
    probe: ReedSolomonEncoder,
    probe_shard: Vec<u8>,
    /// `coefficients[r * max_k + j]`: coefficient of source j in RS parity r (0-based) of a
    /// block of `coefficients_k` sources (0: none computed yet).
    coefficients: Vec<GfElement>,
    coefficients_k: usize,
    /// A zero symbol standing in for each lost source during the re-encode.
    zeros: Vec<u8>,
    /// The XOR row's syndrome in byte layout, before it is loaded into chunk layout.
    scratch: Vec<u8>,
    /// Gauss–Jordan work space: e rows of [matrix | identity], 2 · max_e wide.
    matrix: Vec<GfElement>,
    /// Syndromes Δ_r in chunk layout, `stride_chunks` chunks each.
    syndromes: Vec<[u8; CHUNK]>,
    /// One region product in chunk layout.
    term: Vec<[u8; CHUNK]>,
    /// One recovered symbol in chunk layout.
    sum: Vec<[u8; CHUNK]>,
    stride_chunks: usize,
    lost: Vec<usize>,
    used_parity: Vec<usize>,
}

impl LossSolver {
    /// A solver for blocks of up to `max_k` sources, `m` RS parities, symbols up to `stride`.
    pub(super) fn new(
        max_k: usize,
        m: usize,
        stride: usize,
    ) -> Result<LossSolver, reed_solomon_simd::Error> {
        let field = tables::get_exp_log();
        let probe_len = probe_len(max_k);
        let stride_chunks = stride.div_ceil(CHUNK);
        let max_e = max_k.min(m + 1);
        Ok(LossSolver {
            max_k,
            m,
            stride,
            max_e,
            engine: DefaultEngine::new(),
            field,
            // exp[0] is g^0: the identity (checked by a test against `tables::mul`).
            one: field.exp[0],
            reencoder: None,
            probe: ReedSolomonEncoder::new(max_k, m, probe_len)?,
            probe_shard: vec![0; probe_len],
            coefficients: vec![0; m * max_k],
            coefficients_k: 0,
            zeros: vec![0; stride],
            scratch: vec![0; stride],
            matrix: vec![0; max_e * 2 * max_e],
            syndromes: vec![[0; CHUNK]; max_e * stride_chunks],
            term: vec![[0; CHUNK]; stride_chunks],
            sum: vec![[0; CHUNK]; stride_chunks],
            stride_chunks,
            lost: Vec::with_capacity(max_e),
            used_parity: Vec::with_capacity(max_e),
        })
    }

    /// Writes every lost source of `block` into its slot (framed, zero-padded to the stride),
    /// from e RS parities if that many are held, else from the XOR parity and e − 1 RS ones.
    /// Returns `Ok(false)`, touching no slot, if too few parities are held or the system is
    /// singular (possible only with the XOR parity in it).
    pub(super) fn solve(&mut self, block: Block<'_>) -> Result<bool, reed_solomon_simd::Error> {
        self.lost.clear();
        self.lost
            .extend((0..block.k).filter(|&index| !block.have_source[index]));
        let e = self.lost.len();
        self.used_parity.clear();
        self.used_parity.extend(
            (1..=self.m)
                .filter(|&index| block.parity(index).is_some())
                .take(e),
        );
        if self.used_parity.len() + 1 == e && block.parity(XOR_PARITY).is_some() {
            self.used_parity.insert(0, XOR_PARITY);
        }
        if e == 0 || e > self.max_e || self.used_parity.len() < e {
            return Ok(false);
        }
        self.compute_coefficients(block.k)?;
        if !self.invert(e) {
            return Ok(false);
        }
        self.compute_syndromes(&block)?;
        let chunks = block.symbol_len.div_ceil(CHUNK);
        let width = 2 * e;
        for (col, &lost) in self.lost.iter().enumerate() {
            let sum = &mut self.sum[..chunks];
            sum.fill([0; CHUNK]);
            for row in 0..e {
                // Row `col` of the inverse, right half of the work space.
                let factor = self.matrix[col * width + e + row];
                let syndrome = &self.syndromes[row * self.stride_chunks..][..chunks];
                multiply_add(
                    &self.engine,
                    self.field,
                    self.one,
                    sum,
                    &mut self.term[..chunks],
                    syndrome,
                    factor,
                );
            }
            let slot = &mut block.sources[lost * block.stride..][..block.stride];
            store(sum, &mut slot[..block.symbol_len]);
            slot[block.symbol_len..].fill(0);
        }
        Ok(true)
    }

    /// Fills `coefficients` for blocks of `k` sources, unless already done for this k.
    fn compute_coefficients(&mut self, k: usize) -> Result<(), reed_solomon_simd::Error> {
        if self.coefficients_k == k {
            return Ok(());
        }
        let probe_len = probe_len(k);
        self.probe.reset(k, self.m, probe_len)?;
        let shard = &mut self.probe_shard[..probe_len];
        for source in 0..k {
            let (lo, hi) = element_bytes(source);
            shard[lo] = self.one as u8;
            shard[hi] = (self.one >> 8) as u8;
            self.probe.add_original_shard(&*shard)?;
            shard[lo] = 0;
            shard[hi] = 0;
        }
        let encoded = self.probe.encode()?;
        for (row, parity) in encoded.recovery_iter().enumerate() {
            let coefficients = &mut self.coefficients[row * self.max_k..][..k];
            for (source, coefficient) in coefficients.iter_mut().enumerate() {
                let (lo, hi) = element_bytes(source);
                *coefficient = GfElement::from(parity[lo]) | GfElement::from(parity[hi]) << 8;
            }
        }
        self.coefficients_k = k;
        Ok(())
    }

    /// Coefficient of source `source` in parity `parity` (the XOR parity's are all one).
    fn coefficient(&self, parity: usize, source: usize) -> GfElement {
        if parity == XOR_PARITY {
            self.one
        } else {
            self.coefficients[(parity - 1) * self.max_k + source]
        }
    }

    /// Gauss–Jordan on [C_PL | I]: leaves C_PL⁻¹ in the right half; false if singular.
    fn invert(&mut self, e: usize) -> bool {
        let field = self.field;
        let width = 2 * e;
        for row in 0..e {
            let parity = self.used_parity[row];
            for col in 0..e {
                self.matrix[row * width + col] = self.coefficient(parity, self.lost[col]);
            }
            let line = &mut self.matrix[row * width..][..width];
            line[e..].fill(0);
            line[e + row] = self.one;
        }
        let matrix = &mut self.matrix[..e * width];
        for col in 0..e {
            let Some(pivot_row) = (col..e).find(|&row| matrix[row * width + col] != 0) else {
                return false;
            };
            if pivot_row != col {
                for index in 0..width {
                    matrix.swap(col * width + index, pivot_row * width + index);
                }
            }
            let pivot = matrix[col * width + col];
            // log of pivot⁻¹: the crate's logs are exponents of one generator, modulo 2^16 − 1.
            let log_inverse = GF_MODULUS - field.log[usize::from(pivot)];
            for value in &mut matrix[col * width..][..width] {
                *value = product(field, *value, log_inverse);
            }
            for row in (0..e).filter(|&row| row != col) {
                let factor = matrix[row * width + col];
                if factor == 0 {
                    continue;
                }
                let log_factor = field.log[usize::from(factor)];
                for index in 0..width {
                    let scaled = product(field, matrix[col * width + index], log_factor);
                    matrix[row * width + index] ^= scaled;
                }
            }
        }
        true
    }

    /// Δ_r = p_r + Σ_{j received} c_rj · s_j for every row used, in chunk layout.
    fn compute_syndromes(&mut self, block: &Block<'_>) -> Result<(), reed_solomon_simd::Error> {
        let symbol_len = block.symbol_len;
        let chunks = symbol_len.div_ceil(CHUNK);
        let held = |index: &usize| block.have_source[*index];
        let rs_rows = self.used_parity.iter().any(|&parity| parity != XOR_PARITY);
        // A crate encoder sized for m ≫ k would dwarf the block: sum the products instead.
        let reencode = rs_rows && self.m <= 2 * self.max_k;
        if reencode && self.reencoder.is_none() {
            self.reencoder = Some(ReedSolomonEncoder::new(self.max_k, self.m, self.stride)?);
        }
        let encoded = match self.reencoder.as_mut().filter(|_| reencode) {
            Some(reencoder) => {
                reencoder.reset(block.k, self.m, symbol_len)?;
                for index in 0..block.k {
                    let symbol = if block.have_source[index] {
                        &block.sources[index * block.stride..][..symbol_len]
                    } else {
                        &self.zeros[..symbol_len]
                    };
                    reencoder.add_original_shard(symbol)?;
                }
                Some(reencoder.encode()?)
            }
            None => None,
        };
        for (row, &parity) in self.used_parity.iter().enumerate() {
            let syndrome = &mut self.syndromes[row * self.stride_chunks..][..chunks];
            let Some(symbol) = block.parity(parity) else {
                return Err(reed_solomon_simd::Error::InvalidRecoveryShardIndex {
                    recovery_count: self.m,
                    index: parity,
                });
            };
            if parity == XOR_PARITY {
                // All coefficients one: the sum is an XOR pass, in byte layout.
                let scratch = &mut self.scratch[..symbol_len];
                scratch.copy_from_slice(symbol);
                for index in (0..block.k).filter(held) {
                    xor_into(
                        scratch,
                        &block.sources[index * block.stride..][..symbol_len],
                    );
                }
                load(scratch, syndrome);
                continue;
            }
            load(symbol, syndrome);
            if let Some(encoded) = &encoded {
                let Some(reencoded) = encoded.recovery(parity - 1) else {
                    return Err(reed_solomon_simd::Error::InvalidRecoveryShardIndex {
                        recovery_count: self.m,
                        index: parity - 1,
                    });
                };
                load(reencoded, &mut self.term[..chunks]);
                utils::xor(syndrome, &self.term[..chunks]);
                continue;
            }
            let coefficients = &self.coefficients[(parity - 1) * self.max_k..];
            for index in (0..block.k).filter(held) {
                let source = &mut self.sum[..chunks];
                load(&block.sources[index * block.stride..][..symbol_len], source);
                multiply_add(
                    &self.engine,
                    self.field,
                    self.one,
                    syndrome,
                    &mut self.term[..chunks],
                    source,
                    coefficients[index],
                );
            }
        }
        Ok(())
    }
}

/// `acc += factor · x` over chunks, with `term` as scratch (x untouched).
fn multiply_add(
    engine: &DefaultEngine,
    field: &ExpLog,
    one: GfElement,
    acc: &mut [[u8; CHUNK]],
    term: &mut [[u8; CHUNK]],
    x: &[[u8; CHUNK]],
    factor: GfElement,
) {
    if factor == 0 {
        return;
    }
    if factor == one {
        utils::xor(acc, x);
        return;
    }
    term.copy_from_slice(x);
    engine.mul(term, field.log[usize::from(factor)]);
    utils::xor(acc, term);
}

/// `x · g^log_m` with the crate's scalar multiply (0 stays 0).
fn product(field: &ExpLog, x: GfElement, log_m: GfElement) -> GfElement {
    tables::mul(x, log_m, &field.exp, &field.log)
}

/// Probe shard length for k sources: one element per source, whole chunks only.
fn probe_len(k: usize) -> usize {
    k.div_ceil(HALF) * CHUNK
}

/// Byte offsets of element `index` (low, high) in a shard of whole chunks.
fn element_bytes(index: usize) -> (usize, usize) {
    let lo = index / HALF * CHUNK + index % HALF;
    (lo, lo + HALF)
}

/// Copies `symbol` into `chunks` in the crate's layout (see the module doc).
fn load(symbol: &[u8], chunks: &mut [[u8; CHUNK]]) {
    let (whole, tail) = symbol.as_chunks::<CHUNK>();
    chunks[..whole.len()].copy_from_slice(whole);
    if !tail.is_empty() {
        let half = tail.len() / 2;
        let last = &mut chunks[whole.len()];
        last.fill(0);
        last[..half].copy_from_slice(&tail[..half]);
        last[HALF..HALF + half].copy_from_slice(&tail[half..]);
    }
}

/// Inverse of [`load`]: writes `chunks` back as `symbol.len()` bytes.
fn store(chunks: &[[u8; CHUNK]], symbol: &mut [u8]) {
    let (whole, tail) = symbol.as_chunks_mut::<CHUNK>();
    let count = whole.len();
    whole.copy_from_slice(&chunks[..count]);
    if !tail.is_empty() {
        let half = tail.len() / 2;
        let last = &chunks[count];
        tail[..half].copy_from_slice(&last[..half]);
        tail[half..].copy_from_slice(&last[HALF..HALF + half]);
    }
}

#[cfg(test)]
mod tests {
    // Paths instead of `use`: `benches/fec.rs` compiles this module without its tests.

    #[test]
    fn exp_zero_is_the_identity_and_log_negation_inverts() {
        let field = super::tables::get_exp_log();
        let one = field.exp[0];
        for x in 1..=u16::MAX {
            let log_x = field.log[usize::from(x)];
            assert_eq!(super::product(field, one, log_x), x);
            assert_eq!(
                super::product(field, x, super::GF_MODULUS - log_x),
                one,
                "x = {x}"
            );
        }
    }

    #[test]
    fn load_and_store_round_trip_every_even_length() {
        for len in (2..=200usize).step_by(2) {
            let symbol: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut chunks = vec![[0xAA; super::CHUNK]; len.div_ceil(super::CHUNK)];
            super::load(&symbol, &mut chunks);
            let mut back = vec![0; len];
            super::store(&chunks, &mut back);
            assert_eq!(back, symbol, "len {len}");
        }
    }
}
