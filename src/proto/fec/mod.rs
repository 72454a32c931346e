//! Forward error correction for one transmission group ("block") of source packets: the only
//! place that talks to the erasure-code crate (`reed-solomon-simd`). Sans-IO: no clock, no
//! threads, no randomness; buffers are sized once and reused block after block.
//!
//! # Code
//!
//! A block is `k` source symbols (1 ≤ k ≤ [`MAX_SOURCES`]) protected by `m + 1` parity symbols
//! (1 ≤ m ≤ [`MAX_RS_PARITY`]), all of one per-block symbol length:
//!
//! - parity index **0** is the *XOR parity*: the byte-wise XOR of the k source symbols. It
//!   repairs exactly one lost source symbol at memory speed, with no Galois-field decode. It is
//!   a separate single-parity code, not part of the Reed-Solomon code below.
//! - parity indices **1..=m** are the m recovery shards of a Reed-Solomon code over
//!   GF(2^16) (`reed-solomon-simd`, k originals, m recovery). Any `e ≤ m` lost sources are
//!   rebuilt from any `e` of them. Their values depend on (k, m), so m is fixed per session and
//!   all m are encoded once when the block closes.
//!
//! The XOR parity is also a row of the same linear code: every coefficient is the field's one
//! (GF(2^16) addition is XOR, over the same framed symbols). So `e` missing sources are
//! rebuilt from any `e` parities in hand: `e` Reed-Solomon ones always (MDS), or the XOR parity
//! and `e − 1` Reed-Solomon ones, unless that e × e system is singular for this loss pattern
//! (the combined code is not MDS; rare, and then one more RS parity does it).
//!
//! # Recovery paths
//!
//! A `reed-solomon-simd` decode pays a fixed ~0.3 ms of transforms whatever is lost, so the
//! decoder uses it only for many losses from RS parities alone. One loss with the XOR parity
//! costs one XOR pass; up to 32 losses, and any number that needs the XOR parity, are rebuilt
//! by `solver`, which re-encodes the received sources with the crate's encoder and solves only
//! the e × e system the losses leave, with the crate's field arithmetic (4.0–4.8 GiB/s at
//! k = 64 for 2–4 losses; figures in `docs/fec.md`). All read the same parity the encoder sent:
//! the wire format does not depend on the path.
//!
//! # Symbols
//!
//! Source payloads have different lengths. Each is framed as a *symbol*: a 2-byte big-endian
//! length prefix, the payload, zero padding up to the block's symbol length
//! ([`symbol_len_for`]: 2 + the largest payload, rounded up to even as the crate requires).
//! Parity covers the whole symbol, so a recovered source comes back with its exact length,
//! including 0. Only parity symbols travel framed; sources travel as their bare payloads.
//!
//! Invariant: every public method validates indices and lengths and returns [`FecError`] on bad
//! input; nothing here panics on data from the network.

#![cfg_attr(
    not(test),
    expect(
        dead_code,
        unused_imports,
        reason = "adapter queries the protocol does not call (Added, k, source_count, rs_parity_count) serve the tests and benches"
    )
)]

mod decoder;
mod encoder;
mod solver;
#[cfg(test)]
mod tests;

pub(crate) use decoder::{Added, BlockDecoder, RecoveryPath};
pub(crate) use encoder::BlockEncoder;

/// Most source symbols in one block (k), so a source index fits one byte on the wire.
pub(crate) const MAX_SOURCES: usize = 255;

/// Most Reed-Solomon parity symbols per block (m); with the XOR parity at index 0 every parity
/// index (0..=m) fits one byte on the wire.
pub(crate) const MAX_RS_PARITY: usize = 254;

/// Bytes of the big-endian length prefix framing each source payload inside a symbol.
pub(crate) const LEN_PREFIX: usize = 2;

/// Largest source payload a symbol can carry (the prefix is a u16; the symbol length must stay
/// even, so the largest even symbol bounds the payload).
pub(crate) const MAX_PAYLOAD: usize = u16::MAX as usize - LEN_PREFIX - 1;

/// Parity index of the XOR parity symbol.
pub(crate) const XOR_PARITY: usize = 0;

/// Why the FEC adapter refused an input. Every variant is a malformed or out-of-range argument
/// (from the network or from a caller bug); the caller counts and drops it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FecError {
    /// Block shape outside the supported range.
    #[error("unsupported block shape: k = {k}, m = {m}, max payload = {max_payload}")]
    Shape {
        /// Source symbols per block.
        k: usize,
        /// Reed-Solomon parity symbols per block.
        m: usize,
        /// Largest source payload.
        max_payload: usize,
    },
    /// A source payload longer than the configured maximum or than this block's symbol.
    #[error("payload of {len} bytes exceeds the {max} bytes a symbol of this block carries")]
    PayloadTooLong {
        /// Payload length given.
        len: usize,
        /// Largest payload allowed here.
        max: usize,
    },
    /// A source index at or beyond the block's k.
    #[error("source index {index} out of range for a block of {k}")]
    SourceIndex {
        /// Index given.
        index: usize,
        /// Sources in the block.
        k: usize,
    },
    /// A parity index beyond m.
    #[error("parity index {index} out of range (0..={m})")]
    ParityIndex {
        /// Index given.
        index: usize,
        /// Reed-Solomon parity symbols in the block (the XOR parity is index 0).
        m: usize,
    },
    /// A parity symbol whose length is not this block's symbol length (or not a valid one).
    #[error("parity symbol of {len} bytes does not match symbol length {expected}")]
    SymbolLen {
        /// Length given.
        len: usize,
        /// Length required: the block's symbol length, or the largest allowed before one is set.
        expected: usize,
    },
    /// The encoder's block already holds its k sources.
    #[error("block already holds its {k} sources")]
    BlockFull {
        /// Sources in the block.
        k: usize,
    },
    /// Parity asked of an encoder before `finish` (or after `reset`), or `finish` on no source.
    #[error("block not finished or empty")]
    NotFinished,
    /// Not enough symbols in hand to recover the missing sources.
    #[error("{missing} sources missing; not recoverable from the parity in hand")]
    NotRecoverable {
        /// Sources missing.
        missing: usize,
    },
    /// The XOR parity and the Reed-Solomon parities in hand leave a singular system for this
    /// loss pattern; one more Reed-Solomon parity recovers it. Nothing was changed.
    #[error("{missing} sources missing; the XOR parity and these RS parities are dependent")]
    Singular {
        /// Sources missing.
        missing: usize,
    },
    /// A recovered symbol carries a length prefix longer than the symbol: the parity in hand was
    /// not produced from these sources (corrupt or from another block).
    #[error("recovered source {index} has an impossible length prefix")]
    CorruptRecovery {
        /// Source index whose recovery failed the check.
        index: usize,
    },
    /// The erasure-code crate refused the operation (not expected with validated input).
    #[error("erasure code: {0}")]
    Codec(String),
}

impl From<reed_solomon_simd::Error> for FecError {
    fn from(error: reed_solomon_simd::Error) -> FecError {
        FecError::Codec(error.to_string())
    }
}

/// The symbol length of a block whose longest source payload is `max_len` bytes: the length
/// prefix plus the payload, rounded up to an even length (a `reed-solomon-simd` requirement).
pub(crate) fn symbol_len_for(max_len: usize) -> usize {
    (LEN_PREFIX + max_len).next_multiple_of(2)
}

/// Whether a block of `k` sources with `m` Reed-Solomon parities is one the adapter codes (a
/// PARITY claiming another shape is inconsistent, whatever else it says).
pub(crate) fn shape_supported(k: usize, m: usize) -> bool {
    check_shape(k, m, 0).is_ok()
}

/// Checks a block shape against the adapter's and the crate's limits.
fn check_shape(k: usize, m: usize, max_payload: usize) -> Result<(), FecError> {
    let supported = (1..=MAX_SOURCES).contains(&k)
        && (1..=MAX_RS_PARITY).contains(&m)
        && max_payload <= MAX_PAYLOAD
        && reed_solomon_simd::ReedSolomonEncoder::supports(k, m);
    if supported {
        Ok(())
    } else {
        Err(FecError::Shape { k, m, max_payload })
    }
}

/// Writes `payload` framed as a symbol of `symbol.len()` bytes: prefix, payload, zero padding.
/// The caller has checked `LEN_PREFIX + payload.len() <= symbol.len()`.
fn frame_into(symbol: &mut [u8], payload: &[u8]) {
    let (prefix, body) = symbol.split_at_mut(LEN_PREFIX);
    // Truncation impossible: payload lengths are checked against MAX_PAYLOAD (< u16::MAX).
    prefix.copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let (used, padding) = body.split_at_mut(payload.len());
    used.copy_from_slice(payload);
    padding.fill(0);
}

/// The payload framed in `symbol`, or `None` when its prefix claims more bytes than follow.
fn unframe(symbol: &[u8]) -> Option<&[u8]> {
    let (prefix, body) = symbol.split_at_checked(LEN_PREFIX)?;
    let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    body.get(..len)
}

/// `acc ^= other`, byte-wise, over the shorter of the two (a plain loop the compiler vectorises).
fn xor_into(acc: &mut [u8], other: &[u8]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}
