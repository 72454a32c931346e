//! PEER_RDATA (type 0x0d): a repair of a source's packet sent by a receiver that held it (peer
//! repair, SRM-style). The header's stream is the *original source's* stream, so every
//! receiver files the repair under that stream; the body names the repairer and echoes the
//! answered NAK's timestamp, then carries the RDATA body unchanged.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | common header: type 0x0d PEER_RDATA, flags FIRST|LAST (data)  |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        repairer (u64)                         | 16
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        requester (u64)                        | 24
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     timestamp_echo (u32)                      | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         hold_us (u32)                         | 36
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   RDATA body: seq, trail, message_len, fragment_offset, payload | 40
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A new type rather than an RDATA flag: receivers that predate peer repair drop it as an
//! unknown type instead of mistaking a peer's copy (with the peer's view of `trail`) for the
//! source's, and the fixed RDATA layout stays untouched.
//!
//! Invariant: a decoded [`PeerRdata`] satisfies every [`Data`] invariant (`data.repair` is
//! `true`), and the body held at least the 24 bytes of repairer fields before the data body.

use bytes::{Buf, BufMut, Bytes};

use super::{Data, PeerRdata, StreamId, WireError};

/// Bytes before the RDATA body: repairer, requester, timestamp_echo, hold_us.
const PEER_FIXED_LEN: usize = 8 + 8 + 4 + 4;

impl PeerRdata {
    pub(super) fn body_len(&self) -> usize {
        PEER_FIXED_LEN + self.data.body_len()
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.repairer);
        buf.put_u64(self.requester);
        buf.put_u32(self.timestamp_echo);
        buf.put_u32(self.hold_us);
        self.data.encode_body(buf);
    }

    pub(super) fn decode_body(
        stream: StreamId,
        flags: u8,
        mut body: Bytes,
    ) -> Result<PeerRdata, WireError> {
        if body.remaining() < PEER_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let repairer = body.get_u64();
        let requester = body.get_u64();
        let timestamp_echo = body.get_u32();
        let hold_us = body.get_u32();
        let data = Data::decode_body(stream, true, flags, body)?;
        Ok(PeerRdata {
            repairer,
            requester,
            timestamp_echo,
            hold_us,
            data,
        })
    }
}
