//! The rmcast wire codec: every byte that crosses the network is encoded and decoded here.
//!
//! Doctrine (after smoltcp's `wire` module):
//! - Byte order is big-endian throughout; the layout of every packet is in `docs/wire.md`.
//! - [`decode`] accepts any byte string. It never panics, never allocates in proportion to a
//!   length read from the packet before checking it against what is actually there, and names
//!   its failure with a [`WireError`] whose [`WireError::reason`] is the drop-counter key.
//! - Payloads are zero-copy [`Bytes`] slices of the received datagram.
//! - [`Packet::encode`] writes exactly [`Packet::encoded_len`] bytes.
//! - Version rule: a datagram whose version byte is not [`VERSION`] is rejected as a whole
//!   (`UnknownVersion`); a future version bumps the byte, it does not reinterpret fields.
//! - Reserved fields are written as 0 and ignored on receive; flag bits a type does not define
//!   are written as 0 and ignored, so a decoded packet re-encodes canonically.
//!
//! Files: `header.rs` (common header, flags), `data.rs` (ODATA/RDATA), `nak.rs` (NAK, NCF),
//! `session.rs` (SPM, REPORT), `parity.rs` (PARITY, parity NAK), `peer.rs` (PEER_RDATA), `seq.rs` ([`SeqNum`]), `tests.rs` (round-trip properties,
//! per-error tests, golden samples in `tests/data/packets/`). Each file starts with the byte
//! diagram of what it parses.
//!
//! This module depends on nothing else in the crate.

mod data;
mod header;
mod nak;
mod parity;
mod peer;
mod seq;
mod session;
#[cfg(test)]
mod tests;

pub(crate) use seq::SeqNum;
pub(crate) use session::MAX_REPORT_ECHO_BYTES;

use bytes::{BufMut, Bytes};

/// The protocol version this build speaks.
pub(crate) const VERSION: u8 = 1;

/// Size of the common header in bytes.
pub(crate) const HEADER_LEN: usize = 16;

/// Most ranges a NAK or NCF may carry; bounds work per packet for sender and receiver alike.
pub(crate) const MAX_RANGES: usize = 64;

/// Most RTT echo entries one SPM may carry.
pub(crate) const MAX_ECHOES: usize = 32;

/// Most peer echo entries one REPORT may carry (a bounded share of each report, as SRM's
/// session messages echo other members' timestamps).
pub(crate) const MAX_REPORT_ECHOES: usize = 8;

/// Packet type codes (the second byte of the common header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum PacketType {
    /// Original data.
    Odata = 0x01,
    /// Repair data.
    Rdata = 0x02,
    /// Negative acknowledgement.
    Nak = 0x03,
    /// NAK confirmation.
    Ncf = 0x04,
    /// Source path message.
    Spm = 0x05,
    /// Receiver report.
    Report = 0x06,
    /// FEC parity symbol of one block.
    Parity = 0x07,
    /// Reserved: DLR poll.
    Poll = 0x08,
    /// Reserved: DLR poll response.
    Polr = 0x09,
    /// Reserved: DLR redirect.
    Redirect = 0x0a,
    /// Reserved: positive acknowledgement.
    Ack = 0x0b,
    /// Confirmation of a parity NAK: per block, how many parity symbols will come.
    ParityNcf = 0x0c,
    /// A repair sent by a receiver from its cache (peer repair) for another member's stream.
    PeerRdata = 0x0d,
}

impl PacketType {
    /// The type for a code, or `None` for an unassigned code.
    #[must_use]
    pub(crate) fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0x01 => PacketType::Odata,
            0x02 => PacketType::Rdata,
            0x03 => PacketType::Nak,
            0x04 => PacketType::Ncf,
            0x05 => PacketType::Spm,
            0x06 => PacketType::Report,
            0x07 => PacketType::Parity,
            0x08 => PacketType::Poll,
            0x09 => PacketType::Polr,
            0x0a => PacketType::Redirect,
            0x0b => PacketType::Ack,
            0x0c => PacketType::ParityNcf,
            0x0d => PacketType::PeerRdata,
            _ => return None,
        })
    }

    /// Whether this build implements the type (the rest are reserved codes).
    #[must_use]
    pub(crate) fn is_implemented(self) -> bool {
        matches!(self as u8, 0x01..=0x07 | 0x0c | 0x0d)
    }
}

/// Identifies one data stream: the member that originated it and that member's incarnation.
///
/// `source` is a random 64-bit id chosen when a member joins; `instance` changes when a member
/// restarts with the same id, so receivers can tell a restart from old packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StreamId {
    /// Random 64-bit id of the originating member.
    pub(crate) source: u64,
    /// Incarnation of that member; changes on restart.
    pub(crate) instance: u32,
}

/// A decoded rmcast datagram. In every variant, `stream` is the data stream the packet is
/// about (for NAKs and reports: the stream being asked about, not the asker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    /// Original data (ODATA) or a retransmission (RDATA).
    Data(Data),
    /// A negative acknowledgement: a receiver asks for sequence numbers it is missing.
    Nak(Nak),
    /// NAK confirmation from the source: the listed data will be repaired (or is gone).
    Ncf(Ncf),
    /// Source path message: the source's window edges and timestamps, sent as a heartbeat.
    Spm(Spm),
    /// A receiver's periodic report to a source: its position and timestamps for RTT.
    Report(Report),
    /// A repair of another member's stream sent by a receiver that held the data.
    PeerRdata(PeerRdata),
    /// FEC parity symbol of one block of source packets (PARITY).
    Parity(Parity),
    /// A receiver's request for parity (a NAK with the PARITY flag): per block, how many
    /// symbols it still needs.
    ParityNak(ParityNak),
    /// The source's confirmation of a parity NAK (PARITY_NCF, the NCF layout): each range is
    /// `(block, parity symbols coming)`, so only receivers needing no more wait for them.
    ParityNcf(Ncf),
}

/// ODATA / RDATA body. A message larger than one datagram is split into fragments carried by
/// consecutive sequence numbers; `message_len` and `fragment_offset` let the receiver check and
/// reassemble it. The FIRST / LAST flags on the wire are derived from these fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Data {
    /// The stream this data belongs to.
    pub(crate) stream: StreamId,
    /// `true` for RDATA (a repair), `false` for ODATA.
    pub(crate) repair: bool,
    /// Sequence number of this packet.
    pub(crate) seq: SeqNum,
    /// Oldest sequence number the source can still repair (window trailing edge).
    pub(crate) trail: SeqNum,
    /// Total length in bytes of the message this fragment belongs to.
    pub(crate) message_len: u32,
    /// Offset of this fragment's first byte within the message.
    pub(crate) fragment_offset: u32,
    /// The fragment's bytes.
    pub(crate) payload: Bytes,
    /// With FEC on: this packet's index in its block (the block starts at `seq - index`).
    /// Sent as the BLOCK flag plus 4 bytes after `fragment_offset`.
    pub(crate) fec_index: Option<u8>,
}

/// PARITY body: one parity symbol of a block (see `parity.rs` and `docs/fec.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parity {
    /// The stream whose packets the block holds.
    pub(crate) stream: StreamId,
    /// Sequence number of the block's first source packet: the block's name.
    pub(crate) block: SeqNum,
    /// Oldest sequence number the source can still repair.
    pub(crate) trail: SeqNum,
    /// Source packets in this block (smaller than configured for a block the flush closed).
    pub(crate) k: u8,
    /// Reed-Solomon parity symbols the source encodes per block (indices 1..=m; 0 is XOR).
    pub(crate) m: u8,
    /// Which parity symbol this is: 0 the XOR parity, 1..=m Reed-Solomon.
    pub(crate) index: u8,
    /// The framed parity symbol; its length is the block's symbol length.
    pub(crate) symbol: Bytes,
}

/// Parity NAK body: like a [`Nak`], but each range names a block (`first`) and how many
/// more parity symbols the requester needs for it (`count`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParityNak {
    /// The stream whose blocks are incomplete.
    pub(crate) stream: StreamId,
    /// Member id of the receiver sending it.
    pub(crate) requester: u64,
    /// The requester's clock (µs, wrapping), echoed in the NCF.
    pub(crate) timestamp: u32,
    /// `(block, symbols needed)`, 1 to [`MAX_RANGES`] entries, each count ≥ 1.
    pub(crate) blocks: Vec<SeqRange>,
}

/// An inclusive run of sequence numbers: `first`, and `count - 1` more after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SeqRange {
    /// First sequence number of the run.
    pub(crate) first: SeqNum,
    /// Number of sequence numbers in the run, at least 1.
    pub(crate) count: u16,
}

/// NAK body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Nak {
    /// The stream whose data is missing.
    pub(crate) stream: StreamId,
    /// Member id of the receiver sending this NAK.
    pub(crate) requester: u64,
    /// The requester's clock (µs, wrapping) when it sent the NAK; echoed in the NCF for RTT.
    pub(crate) timestamp: u32,
    /// Missing sequence numbers, oldest first; 1 to [`MAX_RANGES`] ranges.
    pub(crate) ranges: Vec<SeqRange>,
}

/// NCF body: the source's immediate answer to a NAK, multicast so every receiver waiting for
/// the same data suppresses its own NAK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ncf {
    /// The stream the confirmed data belongs to.
    pub(crate) stream: StreamId,
    /// `true` when the ranges have left the transmit window and will never be repaired.
    pub(crate) gone: bool,
    /// Member id of the receiver whose NAK this answers.
    pub(crate) requester: u64,
    /// That NAK's `timestamp`, echoed so the requester can measure its RTT.
    pub(crate) timestamp_echo: u32,
    /// Trailing edge of the source's window when the NCF was sent.
    pub(crate) trail: SeqNum,
    /// The confirmed ranges, 1 to [`MAX_RANGES`].
    pub(crate) ranges: Vec<SeqRange>,
}

/// One RTT echo in an SPM: the source returns a receiver's report timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Echo {
    /// Member id of the receiver whose report is echoed.
    pub(crate) member: u64,
    /// The `timestamp` of that receiver's report.
    pub(crate) timestamp: u32,
    /// Microseconds the source held the report before this SPM was sent.
    pub(crate) hold_us: u32,
}

/// SPM body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spm {
    /// The stream this heartbeat describes.
    pub(crate) stream: StreamId,
    /// Sequence number of this SPM (its own counter), so stale SPMs can be ignored.
    pub(crate) spm_seq: u32,
    /// Oldest sequence number the source can still repair.
    pub(crate) trail: SeqNum,
    /// Next sequence number the source will send (so `lead - 1` is the newest sent);
    /// `lead == trail` means nothing is in the window.
    pub(crate) lead: SeqNum,
    /// The source's clock (µs, wrapping) when it sent the SPM.
    pub(crate) timestamp: u32,
    /// RTT echoes for receivers' reports, 0 to [`MAX_ECHOES`].
    pub(crate) echoes: Vec<Echo>,
}

/// PEER_RDATA body: a receiver's repair of a source's packet from its cache. The header names
/// the original source's stream, so receivers file it under that stream; the repairer and the
/// answered NAK's timestamp (with the time the repairer held it) give the requester an RTT
/// sample to the repairer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerRdata {
    /// Member id of the receiver sending the repair.
    pub(crate) repairer: u64,
    /// Member id of the receiver whose NAK this answers.
    pub(crate) requester: u64,
    /// That NAK's `timestamp`, echoed for the requester's RTT to the repairer.
    pub(crate) timestamp_echo: u32,
    /// Microseconds between the repairer hearing the NAK and sending this repair.
    pub(crate) hold_us: u32,
    /// The repaired packet as the source sent it (`repair` is always `true`).
    pub(crate) data: Data,
}

/// Receiver report body: sent periodically by each receiver for each source it hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    /// The stream reported on.
    pub(crate) stream: StreamId,
    /// Member id of the reporting receiver.
    pub(crate) reporter: u64,
    /// The reporter's clock (µs, wrapping) when it sent the report; echoed in a later SPM.
    pub(crate) timestamp: u32,
    /// The `timestamp` of the newest SPM the reporter heard from the source (0 if none).
    pub(crate) spm_timestamp_echo: u32,
    /// Microseconds between hearing that SPM and sending this report.
    pub(crate) spm_hold_us: u32,
    /// Next sequence number the reporter needs to deliver in order (everything before it is
    /// delivered or reported lost).
    pub(crate) delivered_until: SeqNum,
    /// Other members' report timestamps, echoed with the time held, 0 to
    /// [`MAX_REPORT_ECHOES`]: their RTT samples to the reporter (peer distances).
    pub(crate) echoes: Vec<Echo>,
}

/// Why a datagram could not be decoded. [`WireError::reason`] is the key for drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The datagram ended before a field it announced.
    #[error("truncated packet")]
    Truncated,
    /// The version byte is not [`VERSION`].
    #[error("unknown protocol version {0}")]
    UnknownVersion(u8),
    /// The type byte names no packet type.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// The type is reserved for a feature this build does not implement.
    #[error("reserved packet type {0}")]
    ReservedType(u8),
    /// A length or count field disagrees with the bytes present.
    #[error("length mismatch")]
    LengthMismatch,
    /// A field holds a value the protocol forbids.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

impl WireError {
    /// A short, stable name for this failure, used as a statistics key and in logs.
    #[must_use]
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::UnknownVersion(_) => "unknown_version",
            WireError::UnknownType(_) => "unknown_type",
            WireError::ReservedType(_) => "reserved_type",
            WireError::LengthMismatch => "length_mismatch",
            WireError::Malformed(_) => "malformed",
        }
    }
}

impl Packet {
    /// The stream this packet is about.
    #[must_use]
    pub(crate) fn stream(&self) -> StreamId {
        match self {
            Packet::Data(p) => p.stream,
            Packet::Nak(p) => p.stream,
            Packet::Ncf(p) => p.stream,
            Packet::Spm(p) => p.stream,
            Packet::Report(p) => p.stream,
            Packet::PeerRdata(p) => p.data.stream,
            Packet::Parity(p) => p.stream,
            Packet::ParityNak(p) => p.stream,
            Packet::ParityNcf(p) => p.stream,
        }
    }

    /// Exact number of bytes [`Packet::encode`] writes.
    #[must_use]
    pub(crate) fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Packet::Data(p) => p.body_len(),
                Packet::Nak(p) => p.body_len(),
                Packet::Ncf(p) | Packet::ParityNcf(p) => p.body_len(),
                Packet::Spm(p) => p.body_len(),
                Packet::Report(p) => p.body_len(),
                Packet::PeerRdata(p) => p.body_len(),
                Packet::Parity(p) => p.body_len(),
                Packet::ParityNak(p) => p.body_len(),
            }
    }

    /// The type code this packet is sent with.
    #[must_use]
    pub(crate) fn packet_type(&self) -> PacketType {
        match self {
            Packet::Data(p) if p.repair => PacketType::Rdata,
            Packet::Data(_) => PacketType::Odata,
            Packet::Nak(_) | Packet::ParityNak(_) => PacketType::Nak,
            Packet::Ncf(_) => PacketType::Ncf,
            Packet::Spm(_) => PacketType::Spm,
            Packet::Report(_) => PacketType::Report,
            Packet::PeerRdata(_) => PacketType::PeerRdata,
            Packet::Parity(_) => PacketType::Parity,
            Packet::ParityNcf(_) => PacketType::ParityNcf,
        }
    }

    /// Appends the encoded packet to `buf`. Writes exactly [`Packet::encoded_len`] bytes.
    ///
    /// # Panics
    /// If the packet breaks a documented limit (no ranges, more than [`MAX_RANGES`],
    /// [`MAX_ECHOES`] or [`MAX_REPORT_ECHOES`], a range of count 0, a PARITY symbol beyond
    /// 65,535 bytes): such a packet is a bug in the caller, never input.
    /// A [`Data`] whose `fragment_offset + payload.len()` exceeds `message_len` is not checked
    /// here; it is written as given and every receiver drops it as `Malformed`.
    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        let flags = match self {
            Packet::Data(p) => p.flags(),
            Packet::Ncf(p) | Packet::ParityNcf(p) => p.flags(),
            Packet::PeerRdata(p) => p.data.flags(),
            Packet::ParityNak(_) => header::FLAG_PARITY_NAK,
            Packet::Nak(_) | Packet::Spm(_) | Packet::Report(_) | Packet::Parity(_) => 0,
        };
        header::encode(buf, self.packet_type(), flags, self.stream());
        match self {
            Packet::Data(p) => p.encode_body(buf),
            Packet::Nak(p) => p.encode_body(buf),
            Packet::Ncf(p) | Packet::ParityNcf(p) => p.encode_body(buf),
            Packet::Spm(p) => p.encode_body(buf),
            Packet::Report(p) => p.encode_body(buf),
            Packet::PeerRdata(p) => p.encode_body(buf),
            Packet::Parity(p) => p.encode_body(buf),
            Packet::ParityNak(p) => p.encode_body(buf),
        }
    }

    /// Encodes into a fresh buffer.
    #[must_use]
    pub(crate) fn to_bytes(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        Bytes::from(buf)
    }
}

/// Decodes one datagram. Never panics; see the module doc for the guarantees.
///
/// Checks run in this order, and the first failure is returned: empty datagram (`Truncated`),
/// version byte (`UnknownVersion`), header length (`Truncated`), type code (`UnknownType`,
/// `ReservedType`), then the body parser of that type.
pub(crate) fn decode(mut datagram: Bytes) -> Result<Packet, WireError> {
    let header = header::decode(&mut datagram)?;
    let (stream, flags, body) = (header.stream, header.flags, datagram);
    Ok(match header.packet_type {
        PacketType::Odata => Packet::Data(Data::decode_body(stream, false, flags, body)?),
        PacketType::Rdata => Packet::Data(Data::decode_body(stream, true, flags, body)?),
        PacketType::Nak if flags & header::FLAG_PARITY_NAK != 0 => {
            Packet::ParityNak(ParityNak::decode_body(stream, body)?)
        }
        PacketType::Nak => Packet::Nak(Nak::decode_body(stream, body)?),
        PacketType::Ncf => Packet::Ncf(Ncf::decode_body(stream, flags, body)?),
        PacketType::Spm => Packet::Spm(Spm::decode_body(stream, body)?),
        PacketType::Report => Packet::Report(Report::decode_body(stream, body)?),
        PacketType::PeerRdata => Packet::PeerRdata(PeerRdata::decode_body(stream, flags, body)?),
        PacketType::Parity => Packet::Parity(Parity::decode_body(stream, body)?),
        PacketType::ParityNcf => Packet::ParityNcf(Ncf::decode_body(stream, flags, body)?),
        // `header::decode` already rejected these as `ReservedType`; kept as an error, not a
        // panic, so a future edit of `is_implemented` cannot turn input into a crash.
        reserved @ (PacketType::Poll
        | PacketType::Polr
        | PacketType::Redirect
        | PacketType::Ack) => return Err(WireError::ReservedType(reserved as u8)),
    })
}

/// Checks that `body` holds exactly `len` more bytes: fewer is `Truncated`, more is
/// `LengthMismatch` (a count field that disagrees with the datagram's size).
fn expect_exact_len(body: &Bytes, len: usize) -> Result<(), WireError> {
    match body.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(WireError::Truncated),
        std::cmp::Ordering::Greater => Err(WireError::LengthMismatch),
        std::cmp::Ordering::Equal => Ok(()),
    }
}
