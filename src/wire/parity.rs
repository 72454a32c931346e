//! PARITY (type 7) and the parity NAK (type 3 with flag 0x01): FEC repair symbols of one
//! transmission group ("block") and a receiver's request for more of them.
//!
//! ```text
//! PARITY
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          common header, type 7 (PARITY), flags 0              |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |              block (u32): seq of the block's first source     | 16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        trail (u32)                            | 20
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    k (u8)     |    m (u8)     | index (u8)    |   reserved    | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      symbol_len (u16)         |         reserved (u16)        | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            symbol (symbol_len bytes, to the end) ...          | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! parity NAK: the NAK layout (nak.rs) with flags 0x01 = PARITY; each range is reinterpreted
//! as (first = block, count = number of parity symbols the requester still needs).
//! ```
//!
//! Follows RFC 3208 §9 (PGM parity: transmission groups, the parity NAK "TG, count") with the
//! group identified by its first sequence number instead of aligned high bits, so a block the
//! flush timer closed early needs no padding.
//!
//! Invariant: a decoded [`Parity`] has 1 ≤ k, 1 ≤ m, index ≤ m, an even symbol of at least 2
//! bytes whose length equals `symbol_len`; the symbol is a zero-copy slice of the datagram.

use bytes::{Buf, BufMut, Bytes};

use super::nak::{decode_ranges, encode_ranges, nak_body_len};
use super::{Parity, ParityNak, SeqNum, StreamId, WireError, expect_exact_len};

/// PARITY fixed body: block, trail, k, m, index, reserved, symbol_len, reserved.
const PARITY_FIXED_LEN: usize = 4 + 4 + 4 + 4;

impl Parity {
    pub(super) fn body_len(&self) -> usize {
        PARITY_FIXED_LEN + self.symbol.len()
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        let symbol_len = u16::try_from(self.symbol.len());
        assert!(
            symbol_len.is_ok(),
            "parity symbol of {} bytes exceeds u16",
            self.symbol.len()
        );
        buf.put_u32(self.block.0);
        buf.put_u32(self.trail.0);
        buf.put_u8(self.k);
        buf.put_u8(self.m);
        buf.put_u8(self.index);
        buf.put_u8(0);
        buf.put_u16(symbol_len.unwrap_or(0));
        buf.put_u16(0);
        buf.put_slice(&self.symbol);
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Parity, WireError> {
        if body.remaining() < PARITY_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let block = SeqNum(body.get_u32());
        let trail = SeqNum(body.get_u32());
        let k = body.get_u8();
        let m = body.get_u8();
        let index = body.get_u8();
        let _reserved = body.get_u8();
        let symbol_len = usize::from(body.get_u16());
        let _reserved = body.get_u16();
        expect_exact_len(&body, symbol_len)?;
        if k == 0 || m == 0 {
            return Err(WireError::Malformed("PARITY with k or m of 0"));
        }
        if index > m {
            return Err(WireError::Malformed("PARITY index beyond m"));
        }
        if symbol_len < 2 || !symbol_len.is_multiple_of(2) {
            return Err(WireError::Malformed("PARITY symbol length odd or below 2"));
        }
        Ok(Parity {
            stream,
            block,
            trail,
            k,
            m,
            index,
            symbol: body,
        })
    }
}

impl ParityNak {
    pub(super) fn body_len(&self) -> usize {
        nak_body_len(self.blocks.len())
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.requester);
        buf.put_u32(self.timestamp);
        encode_ranges(buf, &self.blocks);
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<ParityNak, WireError> {
        // Same fixed part as a NAK: requester, timestamp, then the range list.
        if body.remaining() < 12 {
            return Err(WireError::Truncated);
        }
        let requester = body.get_u64();
        let timestamp = body.get_u32();
        let blocks = decode_ranges(&mut body)?;
        Ok(ParityNak {
            stream,
            requester,
            timestamp,
            blocks,
        })
    }
}
