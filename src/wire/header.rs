//! The 16-byte common header that starts every rmcast datagram, and the flag bits.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  version = 1  |     type      |     flags     |   reserved    |  0
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |  4
//! +                        source (u64)                           +
//! |                                                               |  8
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       instance (u32)                          | 12
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Like the PGM common header (RFC 3208 §8), every packet names its type and the data stream
//! (source id + instance, PGM's TSI) it concerns; unlike PGM there are no ports or checksum
//! (UDP checksums the datagram).
//!
//! Invariant: [`decode`] consumes exactly [`HEADER_LEN`] bytes on success and rejects in a fixed
//! order: empty → `Truncated`, version byte ≠ [`VERSION`] → `UnknownVersion` (checked before the
//! length, so a future version may use a shorter header), < 16 bytes → `Truncated`, unassigned
//! type → `UnknownType`, reserved type → `ReservedType`. The reserved byte is written as 0 and
//! ignored on receive; the meaning of `flags` depends on the type.

use bytes::{Buf, BufMut, Bytes};

use super::{HEADER_LEN, PacketType, StreamId, VERSION, WireError};

/// ODATA/RDATA flag: this fragment starts its message (`fragment_offset == 0`).
pub(crate) const FLAG_FIRST: u8 = 0x01;
/// ODATA/RDATA flag: this fragment ends its message (`fragment_offset + len == message_len`).
pub(crate) const FLAG_LAST: u8 = 0x02;
/// ODATA/RDATA flag: FEC is on; 4 bytes after `fragment_offset` give the packet's index in
/// its block.
pub(crate) const FLAG_BLOCK: u8 = 0x04;
/// NAK flag: a parity NAK, whose ranges are `(block, symbols needed)`.
pub(crate) const FLAG_PARITY_NAK: u8 = 0x01;
/// NCF flag: the confirmed ranges left the source's window and will never be repaired.
pub(crate) const FLAG_GONE: u8 = 0x01;

/// The decoded common header of an implemented packet type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// Type of the body that follows; always an implemented type.
    pub(super) packet_type: PacketType,
    /// Raw flag byte; each body parser interprets its own bits.
    pub(super) flags: u8,
    /// The stream the packet is about.
    pub(super) stream: StreamId,
}

/// Reads and validates the common header, leaving `datagram` positioned at the body.
pub(super) fn decode(datagram: &mut Bytes) -> Result<Header, WireError> {
    let Some(&version) = datagram.first() else {
        return Err(WireError::Truncated);
    };
    if version != VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    if datagram.remaining() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let _version = datagram.get_u8();
    let code = datagram.get_u8();
    let flags = datagram.get_u8();
    let _reserved = datagram.get_u8();
    let source = datagram.get_u64();
    let instance = datagram.get_u32();
    let packet_type = PacketType::from_code(code).ok_or(WireError::UnknownType(code))?;
    if !packet_type.is_implemented() {
        return Err(WireError::ReservedType(code));
    }
    Ok(Header {
        packet_type,
        flags,
        stream: StreamId { source, instance },
    })
}

/// Writes the common header (exactly [`HEADER_LEN`] bytes).
pub(super) fn encode(buf: &mut impl BufMut, packet_type: PacketType, flags: u8, stream: StreamId) {
    buf.put_u8(VERSION);
    buf.put_u8(packet_type as u8);
    buf.put_u8(flags);
    buf.put_u8(0);
    buf.put_u64(stream.source);
    buf.put_u32(stream.instance);
}
