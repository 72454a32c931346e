//! NAK (type 3) and NCF (type 4): a receiver's request for missing sequence numbers and the
//! source's multicast confirmation of it, both carrying a list of [`SeqRange`]s.
//!
//! ```text
//! NAK                                                     NCF (flags: 0x01 GONE)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          common header, type 3 (NAK), flags 0                 |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       requester (u64)                         | 16
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       timestamp (u32)                         | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          count (u16)          |         reserved (u16)        | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 count × range (8 bytes each)                  | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        common header, type 4 (NCF), flags 0x01 = GONE         |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       requester (u64)                         | 16
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    timestamp_echo (u32)                       | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         trail (u32)                           | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          count (u16)          |         reserved (u16)        | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 count × range (8 bytes each)                  | 36
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! range:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         first (u32)                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       count (u16, >= 1)       |         reserved (u16)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Follows RFC 3208 §8.3 (NAK, NCF with the same layout) and §9.2 (the NAK list option), with
//! the list generalised from single sequence numbers to runs.
//!
//! Invariant: a decoded NAK/NCF carries 1 to [`MAX_RANGES`] ranges, each of count ≥ 1, and the
//! datagram ended exactly after the last range. The range count is checked against
//! [`MAX_RANGES`] and against the bytes present before the `Vec` is allocated.

use bytes::{Buf, BufMut, Bytes};

use super::header::FLAG_GONE;
use super::{MAX_RANGES, Nak, Ncf, SeqNum, SeqRange, StreamId, WireError, expect_exact_len};

/// Bytes of one encoded [`SeqRange`].
const RANGE_LEN: usize = 8;
/// NAK fixed body: requester, timestamp, count, reserved.
const NAK_FIXED_LEN: usize = 8 + 4 + 2 + 2;
/// NCF fixed body: requester, timestamp_echo, trail, count, reserved.
const NCF_FIXED_LEN: usize = 8 + 4 + 4 + 2 + 2;

/// Body length of a NAK (or parity NAK) carrying `ranges` ranges.
pub(super) fn nak_body_len(ranges: usize) -> usize {
    NAK_FIXED_LEN + ranges * RANGE_LEN
}

impl Nak {
    pub(super) fn body_len(&self) -> usize {
        nak_body_len(self.ranges.len())
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.requester);
        buf.put_u32(self.timestamp);
        encode_ranges(buf, &self.ranges);
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Nak, WireError> {
        if body.remaining() < NAK_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let requester = body.get_u64();
        let timestamp = body.get_u32();
        let ranges = decode_ranges(&mut body)?;
        Ok(Nak {
            stream,
            requester,
            timestamp,
            ranges,
        })
    }
}

impl Ncf {
    pub(super) fn body_len(&self) -> usize {
        NCF_FIXED_LEN + self.ranges.len() * RANGE_LEN
    }

    pub(super) fn flags(&self) -> u8 {
        if self.gone { FLAG_GONE } else { 0 }
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.requester);
        buf.put_u32(self.timestamp_echo);
        buf.put_u32(self.trail.0);
        encode_ranges(buf, &self.ranges);
    }

    pub(super) fn decode_body(
        stream: StreamId,
        flags: u8,
        mut body: Bytes,
    ) -> Result<Ncf, WireError> {
        if body.remaining() < NCF_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let requester = body.get_u64();
        let timestamp_echo = body.get_u32();
        let trail = SeqNum(body.get_u32());
        let ranges = decode_ranges(&mut body)?;
        Ok(Ncf {
            stream,
            gone: flags & FLAG_GONE != 0,
            requester,
            timestamp_echo,
            trail,
            ranges,
        })
    }
}

/// Writes `count`, the reserved half-word and the ranges.
///
/// Panics on the caller bugs [`super::Packet::encode`] documents.
pub(super) fn encode_ranges(buf: &mut impl BufMut, ranges: &[SeqRange]) {
    assert!(
        (1..=MAX_RANGES).contains(&ranges.len()),
        "NAK/NCF must carry 1..={MAX_RANGES} ranges, got {}",
        ranges.len()
    );
    // MAX_RANGES fits in u16, checked just above.
    buf.put_u16(ranges.len() as u16);
    buf.put_u16(0);
    for range in ranges {
        assert!(
            range.count >= 1,
            "NAK/NCF range of count 0 at {:?}",
            range.first
        );
        buf.put_u32(range.first.0);
        buf.put_u16(range.count);
        buf.put_u16(0);
    }
}

/// Reads `count`, the reserved half-word and the ranges; `body` must end exactly after them.
pub(super) fn decode_ranges(body: &mut Bytes) -> Result<Vec<SeqRange>, WireError> {
    if body.remaining() < 4 {
        return Err(WireError::Truncated);
    }
    let count = usize::from(body.get_u16());
    let _reserved = body.get_u16();
    if count == 0 {
        return Err(WireError::Malformed("NAK/NCF without ranges"));
    }
    if count > MAX_RANGES {
        return Err(WireError::Malformed(
            "NAK/NCF with more than MAX_RANGES ranges",
        ));
    }
    // count <= MAX_RANGES, so this cannot overflow; checked before allocating.
    let ranges_len = count * RANGE_LEN;
    expect_exact_len(body, ranges_len)?;
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        let first = SeqNum(body.get_u32());
        let range_count = body.get_u16();
        let _reserved = body.get_u16();
        if range_count == 0 {
            return Err(WireError::Malformed("NAK/NCF range of count 0"));
        }
        ranges.push(SeqRange {
            first,
            count: range_count,
        });
    }
    Ok(ranges)
}
