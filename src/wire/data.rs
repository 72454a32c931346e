//! ODATA (type 1) and RDATA (type 2): one fragment of an application message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  common header, type 1 (ODATA) or 2 (RDATA), flags FIRST|LAST |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         seq (u32)                             | 16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        trail (u32)                            | 20
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     message_len (u32)                         | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   fragment_offset (u32)                       | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  block_index  |         reserved (3 bytes), only with BLOCK     | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           payload (rest of the datagram) ...                  | 32 or 36
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! flags: 0x01 FIRST (fragment_offset == 0), 0x02 LAST (fragment_offset + payload length ==
//! message_len), 0x04 BLOCK (FEC on: the 4-byte block word is present); other bits are sent
//! as 0 and ignored.
//! ```
//!
//! Follows RFC 3208 §8.2 (ODATA/RDATA carry `data_sqn` and `data_trail`) and its fragmentation
//! option (§9.3: first sequence number, offset, total length), folded into fixed fields.
//!
//! Invariant: a decoded [`Data`] always satisfies `fragment_offset + payload.len() <=
//! message_len`, and its wire flags agreed with those fields; the payload is a zero-copy slice
//! of the datagram.

use bytes::{Buf, BufMut, Bytes};

use super::header::{FLAG_BLOCK, FLAG_FIRST, FLAG_LAST};
use super::{Data, SeqNum, StreamId, WireError};

/// Bytes of the fixed part of the body, before the payload.
const FIXED_LEN: usize = 16;
/// Bytes of the block word present with the BLOCK flag.
const BLOCK_LEN: usize = 4;

impl Data {
    /// Encoded body length (after the common header).
    pub(super) fn body_len(&self) -> usize {
        let block = if self.fec_index.is_some() {
            BLOCK_LEN
        } else {
            0
        };
        FIXED_LEN + block + self.payload.len()
    }

    /// The FIRST / LAST flag bits derived from the fragment fields.
    pub(super) fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.fragment_offset == 0 {
            flags |= FLAG_FIRST;
        }
        // u64 so that a (caller-bug) payload beyond u32 range cannot wrap into a false LAST.
        if u64::from(self.fragment_offset) + self.payload.len() as u64
            == u64::from(self.message_len)
        {
            flags |= FLAG_LAST;
        }
        if self.fec_index.is_some() {
            flags |= FLAG_BLOCK;
        }
        flags
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.seq.0);
        buf.put_u32(self.trail.0);
        buf.put_u32(self.message_len);
        buf.put_u32(self.fragment_offset);
        if let Some(index) = self.fec_index {
            buf.put_u8(index);
            buf.put_u8(0);
            buf.put_u16(0);
        }
        buf.put_slice(&self.payload);
    }

    pub(super) fn decode_body(
        stream: StreamId,
        repair: bool,
        flags: u8,
        mut body: Bytes,
    ) -> Result<Data, WireError> {
        if body.remaining() < FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let seq = SeqNum(body.get_u32());
        let trail = SeqNum(body.get_u32());
        let message_len = body.get_u32();
        let fragment_offset = body.get_u32();
        let fec_index = if flags & FLAG_BLOCK != 0 {
            if body.remaining() < BLOCK_LEN {
                return Err(WireError::Truncated);
            }
            let index = body.get_u8();
            let _reserved = (body.get_u8(), body.get_u16());
            Some(index)
        } else {
            None
        };
        // What is left after the fixed fields is the payload, shared with the datagram.
        let payload = body;
        let fragment_end = u64::from(fragment_offset) + payload.len() as u64;
        if fragment_end > u64::from(message_len) {
            return Err(WireError::Malformed(
                "fragment extends past the message end",
            ));
        }
        let data = Data {
            stream,
            repair,
            seq,
            trail,
            message_len,
            fragment_offset,
            payload,
            fec_index,
        };
        let expected = data.flags() & (FLAG_FIRST | FLAG_LAST);
        if flags & (FLAG_FIRST | FLAG_LAST) != expected {
            return Err(WireError::Malformed(
                "FIRST/LAST flags disagree with the fragment fields",
            ));
        }
        Ok(data)
    }
}
