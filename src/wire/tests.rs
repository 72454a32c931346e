//! Codec tests: property round trips, arbitrary-bytes robustness, one targeted test per
//! [`WireError`] variant, and the golden sample files in `tests/data/packets/`.
//!
//! Invariant kept by these tests: the sample files are exactly the encoding of the canonical
//! packets built in [`samples`]; `RMCAST_BLESS=1 cargo test --lib wire::` rewrites them.

use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::header::{FLAG_FIRST, FLAG_LAST};
use super::*;

// ---------------------------------------------------------------------------------------------
// Strategies

fn stream() -> impl Strategy<Value = StreamId> {
    (any::<u64>(), any::<u32>()).prop_map(|(source, instance)| StreamId { source, instance })
}

fn seq() -> impl Strategy<Value = SeqNum> {
    any::<u32>().prop_map(SeqNum)
}

/// How a generated fragment sits in its message; each shape fixes the FIRST/LAST flags.
#[derive(Clone, Copy, Debug)]
enum FragmentShape {
    /// The whole message in one packet: FIRST and LAST.
    Whole,
    /// The first of several: FIRST only.
    First,
    /// The last of several: LAST only.
    Last,
    /// Anywhere, with an arbitrary message length (usually neither flag).
    Anywhere,
}

fn data() -> impl Strategy<Value = Data> {
    let shape = prop_oneof![
        Just(FragmentShape::Whole),
        Just(FragmentShape::First),
        Just(FragmentShape::Last),
        Just(FragmentShape::Anywhere),
    ];
    (
        stream(),
        any::<bool>(),
        seq(),
        seq(),
        vec(any::<u8>(), 0..2000),
        shape,
        1..u32::MAX,
        any::<u32>(),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |(stream, repair, seq, trail, payload, shape, extra, offset_pick, fec_index)| {
                // Consistent fragment: fragment_offset + payload length <= message_len.
                let len = payload.len() as u32;
                let (message_len, fragment_offset) = match shape {
                    FragmentShape::Whole => (len, 0),
                    FragmentShape::First => (len.saturating_add(extra), 0),
                    FragmentShape::Last => {
                        let offset = extra.min(u32::MAX - len);
                        (offset + len, offset)
                    }
                    FragmentShape::Anywhere => {
                        let message_len = len.saturating_add(extra);
                        let room = u64::from(message_len - len) + 1;
                        // The remainder is < room <= 2^32, so it fits the u32 range.
                        (message_len, (u64::from(offset_pick) % room) as u32)
                    }
                };
                Data {
                    stream,
                    repair,
                    seq,
                    trail,
                    message_len,
                    fragment_offset,
                    payload: Bytes::from(payload),
                    fec_index,
                }
            },
        )
}

fn ranges() -> impl Strategy<Value = Vec<SeqRange>> {
    vec(
        (seq(), 1..=u16::MAX).prop_map(|(first, count)| SeqRange { first, count }),
        1..=MAX_RANGES,
    )
}

fn nak() -> impl Strategy<Value = Nak> {
    (stream(), any::<u64>(), any::<u32>(), ranges()).prop_map(
        |(stream, requester, timestamp, ranges)| Nak {
            stream,
            requester,
            timestamp,
            ranges,
        },
    )
}

fn ncf() -> impl Strategy<Value = Ncf> {
    (
        stream(),
        any::<bool>(),
        any::<u64>(),
        any::<u32>(),
        seq(),
        ranges(),
    )
        .prop_map(
            |(stream, gone, requester, timestamp_echo, trail, ranges)| Ncf {
                stream,
                gone,
                requester,
                timestamp_echo,
                trail,
                ranges,
            },
        )
}

fn echo() -> impl Strategy<Value = Echo> {
    (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(member, timestamp, hold_us)| Echo {
        member,
        timestamp,
        hold_us,
    })
}

fn spm() -> impl Strategy<Value = Spm> {
    let echo = echo();
    (
        stream(),
        any::<u32>(),
        seq(),
        seq(),
        any::<u32>(),
        vec(echo, 0..=MAX_ECHOES),
    )
        .prop_map(|(stream, spm_seq, trail, lead, timestamp, echoes)| Spm {
            stream,
            spm_seq,
            trail,
            lead,
            timestamp,
            echoes,
        })
}

fn report() -> impl Strategy<Value = Report> {
    (
        stream(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        seq(),
        vec(echo(), 0..=MAX_REPORT_ECHOES),
    )
        .prop_map(
            |(
                stream,
                reporter,
                timestamp,
                spm_timestamp_echo,
                spm_hold_us,
                delivered_until,
                echoes,
            )| {
                Report {
                    stream,
                    reporter,
                    timestamp,
                    spm_timestamp_echo,
                    spm_hold_us,
                    delivered_until,
                    echoes,
                }
            },
        )
}

fn peer_rdata() -> impl Strategy<Value = PeerRdata> {
    (
        data(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(data, repairer, requester, timestamp_echo, hold_us)| PeerRdata {
                repairer,
                requester,
                timestamp_echo,
                hold_us,
                data: Data {
                    repair: true,
                    ..data
                },
            },
        )
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        data().prop_map(Packet::Data),
        nak().prop_map(Packet::Nak),
        ncf().prop_map(Packet::Ncf),
        spm().prop_map(Packet::Spm),
        report().prop_map(Packet::Report),
        peer_rdata().prop_map(Packet::PeerRdata),
        parity().prop_map(Packet::Parity),
        parity_nak().prop_map(Packet::ParityNak),
        ncf().prop_map(Packet::ParityNcf),
    ]
}

fn parity() -> impl Strategy<Value = Parity> {
    (
        stream(),
        seq(),
        seq(),
        1u8..=255,
        1u8..=254,
        any::<u8>(),
        vec(any::<u8>(), 1..800),
    )
        .prop_map(|(stream, block, trail, k, m, index_pick, mut symbol)| {
            // An even symbol of at least 2 bytes, an index within 0..=m.
            symbol.push(0);
            symbol.truncate(symbol.len() & !1);
            Parity {
                stream,
                block,
                trail,
                k,
                m,
                index: index_pick % (m + 1),
                symbol: Bytes::from(symbol),
            }
        })
}

fn parity_nak() -> impl Strategy<Value = ParityNak> {
    (
        stream(),
        any::<u64>(),
        any::<u32>(),
        vec((seq(), 1u16..), 1..=MAX_RANGES),
    )
        .prop_map(|(stream, requester, timestamp, blocks)| ParityNak {
            stream,
            requester,
            timestamp,
            blocks: blocks
                .into_iter()
                .map(|(first, count)| SeqRange { first, count })
                .collect(),
        })
}

/// A valid 16-byte header for `code` followed by arbitrary bytes, so body parsers see input.
fn header_prefixed() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=0x0e,
        any::<u8>(),
        any::<[u8; 13]>(),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(|(code, flags, rest, body)| {
            let mut bytes = vec![VERSION, code, flags];
            bytes.extend_from_slice(&rest);
            bytes.extend_from_slice(&body);
            bytes
        })
}

/// Encodes, checks the length contract, and decodes again.
fn round_trip(packet: &Packet) -> Result<Packet, WireError> {
    let mut buf = BytesMut::new();
    packet.encode(&mut buf);
    assert_eq!(
        buf.len(),
        packet.encoded_len(),
        "encoded_len disagrees with encode"
    );
    assert_eq!(packet.to_bytes(), buf, "to_bytes disagrees with encode");
    decode(buf.freeze())
}

// ---------------------------------------------------------------------------------------------
// 1. Round trips and 2. robustness

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_packet_round_trips(packet in packet()) {
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn data_round_trips(packet in data()) {
        let packet = Packet::Data(packet);
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn nak_round_trips(packet in nak()) {
        let packet = Packet::Nak(packet);
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn ncf_round_trips(packet in ncf()) {
        let packet = Packet::Ncf(packet);
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn spm_round_trips(packet in spm()) {
        let packet = Packet::Spm(packet);
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn report_round_trips(packet in report()) {
        let packet = Packet::Report(packet);
        prop_assert_eq!(round_trip(&packet), Ok(packet));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reencode(bytes in vec(any::<u8>(), 0..300)) {
        if let Ok(packet) = decode(Bytes::from(bytes)) {
            prop_assert_eq!(round_trip(&packet), Ok(packet));
        }
    }

    #[test]
    fn header_prefixed_bytes_never_panic_and_reencode(bytes in header_prefixed()) {
        if let Ok(packet) = decode(Bytes::from(bytes)) {
            prop_assert_eq!(round_trip(&packet), Ok(packet));
        }
    }

    /// Flipping any single byte of a valid packet either still decodes (to a packet that
    /// re-encodes canonically) or fails with a named error, never a panic.
    #[test]
    fn single_byte_corruption_is_contained(packet in packet(), index in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut bytes = packet.to_bytes().to_vec();
        let at = index.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode(Bytes::from(bytes)) {
            prop_assert_eq!(round_trip(&decoded), Ok(decoded));
        }
    }
}

#[test]
fn payload_is_a_zero_copy_slice_of_the_datagram() {
    let datagram = sample("odata").to_bytes();
    let Ok(Packet::Data(data)) = decode(datagram.clone()) else {
        panic!("odata sample must decode as data");
    };
    let start = datagram.as_ptr() as usize + HEADER_LEN + 16;
    assert_eq!(
        data.payload.as_ptr() as usize,
        start,
        "payload must point into the datagram"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Targeted errors

fn bytes_of(name: &str) -> Vec<u8> {
    sample(name).to_bytes().to_vec()
}

#[test]
fn reason_strings_are_the_counter_keys() {
    let cases = [
        (WireError::Truncated, "truncated"),
        (WireError::UnknownVersion(2), "unknown_version"),
        (WireError::UnknownType(0), "unknown_type"),
        (WireError::ReservedType(7), "reserved_type"),
        (WireError::LengthMismatch, "length_mismatch"),
        (WireError::Malformed("x"), "malformed"),
    ];
    for (error, reason) in cases {
        assert_eq!(error.reason(), reason);
    }
}

#[test]
fn empty_datagram_is_truncated() {
    assert_eq!(decode(Bytes::new()), Err(WireError::Truncated));
}

#[test]
fn version_is_checked_before_length() {
    assert_eq!(
        decode(Bytes::from_static(&[2])),
        Err(WireError::UnknownVersion(2))
    );
    assert_eq!(
        decode(Bytes::from_static(&[0, 1, 0])),
        Err(WireError::UnknownVersion(0))
    );
    let mut odata = bytes_of("odata");
    odata[0] = 0xff;
    assert_eq!(
        decode(Bytes::from(odata)),
        Err(WireError::UnknownVersion(0xff))
    );
}

#[test]
fn short_header_is_truncated() {
    let odata = bytes_of("odata");
    for len in 1..HEADER_LEN {
        let prefix = Bytes::copy_from_slice(&odata[..len]);
        assert_eq!(
            decode(prefix),
            Err(WireError::Truncated),
            "header cut at {len}"
        );
    }
}

#[test]
fn type_codes_are_classified() {
    let mut bytes = bytes_of("report");
    for code in 0..=u8::MAX {
        bytes[1] = code;
        let result = decode(Bytes::copy_from_slice(&bytes));
        match PacketType::from_code(code) {
            None => assert_eq!(result, Err(WireError::UnknownType(code))),
            Some(t) if !t.is_implemented() => {
                assert_eq!(result, Err(WireError::ReservedType(code)));
            }
            // A 24-byte report body read as another type fails or succeeds, but never as a
            // header error.
            Some(_) => assert!(!matches!(
                result,
                Err(WireError::UnknownType(_) | WireError::ReservedType(_))
            )),
        }
    }
}

#[test]
fn every_reserved_type_is_rejected() {
    for code in 0x08..=0x0b {
        let mut bytes = bytes_of("report");
        bytes[1] = code;
        assert_eq!(
            decode(Bytes::from(bytes)),
            Err(WireError::ReservedType(code))
        );
    }
}

#[test]
fn every_prefix_of_a_valid_packet_is_truncated() {
    for name in ["nak", "ncf", "spm", "report", "odata"] {
        let full = bytes_of(name);
        let shortest_valid = if name == "odata" {
            HEADER_LEN + 16
        } else {
            full.len()
        };
        for len in 0..shortest_valid {
            let prefix = Bytes::copy_from_slice(&full[..len]);
            assert_eq!(
                decode(prefix),
                Err(WireError::Truncated),
                "{name} cut at {len}"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_a_length_mismatch() {
    // A REPORT's trailing bytes start an echo list: `report_echo_list_is_bounded_and_canonical`.
    for name in ["nak", "ncf", "spm", "report_echoes"] {
        let mut bytes = bytes_of(name);
        bytes.push(0);
        assert_eq!(
            decode(Bytes::from(bytes)),
            Err(WireError::LengthMismatch),
            "{name}"
        );
    }
}

/// Offset of the NAK/NCF range count within the datagram.
const NAK_COUNT_AT: usize = HEADER_LEN + 12;
const NCF_COUNT_AT: usize = HEADER_LEN + 16;
const SPM_COUNT_AT: usize = HEADER_LEN + 16;

#[test]
fn range_count_out_of_bounds_is_malformed_before_allocating() {
    for (name, at) in [("nak", NAK_COUNT_AT), ("ncf", NCF_COUNT_AT)] {
        for count in [0u16, MAX_RANGES as u16 + 1, u16::MAX] {
            let mut bytes = bytes_of(name);
            bytes[at..at + 2].copy_from_slice(&count.to_be_bytes());
            let result = decode(Bytes::from(bytes));
            assert!(
                matches!(result, Err(WireError::Malformed(_))),
                "{name} count {count}: {result:?}"
            );
        }
    }
}

#[test]
fn huge_count_with_short_body_fails_without_allocating() {
    // Fixed part only, count = MAX: a naive parser would allocate and read past the end.
    let mut bytes = bytes_of("nak");
    bytes.truncate(NAK_COUNT_AT + 4);
    bytes[NAK_COUNT_AT..NAK_COUNT_AT + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        decode(Bytes::from(bytes.clone())),
        Err(WireError::Malformed(_))
    ));
    // Count within bounds but more ranges announced than present.
    bytes[NAK_COUNT_AT..NAK_COUNT_AT + 2].copy_from_slice(&(MAX_RANGES as u16).to_be_bytes());
    assert_eq!(decode(Bytes::from(bytes)), Err(WireError::Truncated));

    let mut spm = bytes_of("spm");
    spm.truncate(SPM_COUNT_AT + 4);
    spm[SPM_COUNT_AT] = u8::MAX;
    assert!(matches!(
        decode(Bytes::from(spm.clone())),
        Err(WireError::Malformed(_))
    ));
    spm[SPM_COUNT_AT] = MAX_ECHOES as u8;
    assert_eq!(decode(Bytes::from(spm)), Err(WireError::Truncated));
}

#[test]
fn range_of_count_zero_is_malformed() {
    for (name, at) in [("nak", NAK_COUNT_AT), ("ncf", NCF_COUNT_AT)] {
        let mut bytes = bytes_of(name);
        // Count field of the last range: 4 bytes after its `first`, 8 bytes from the end.
        let last_count = bytes.len() - 4;
        assert!(last_count > at);
        bytes[last_count..last_count + 2].copy_from_slice(&0u16.to_be_bytes());
        assert!(
            matches!(decode(Bytes::from(bytes)), Err(WireError::Malformed(_))),
            "{name}"
        );
    }
}

#[test]
fn fragment_flags_must_match_fields() {
    for name in ["odata", "odata_fragment", "rdata"] {
        let good = bytes_of(name);
        let good_flags = good[2];
        for flip in [FLAG_FIRST, FLAG_LAST] {
            let mut bytes = good.clone();
            bytes[2] = good_flags ^ flip;
            assert!(
                matches!(decode(Bytes::from(bytes)), Err(WireError::Malformed(_))),
                "{name} with flag {flip:#x} flipped"
            );
        }
        // Bits other than FIRST/LAST are ignored.
        let mut bytes = good.clone();
        bytes[2] = good_flags | 0xf0;
        assert_eq!(decode(Bytes::from(bytes)), Ok(sample(name)));
    }
}

#[test]
fn fragment_past_message_end_is_malformed() {
    let mut bytes = bytes_of("odata_fragment");
    // message_len at offset 24: make it one byte short of offset + payload.
    let Packet::Data(data) = sample("odata_fragment") else {
        unreachable!()
    };
    let short = data.fragment_offset + data.payload.len() as u32 - 1;
    bytes[24..28].copy_from_slice(&short.to_be_bytes());
    assert!(matches!(
        decode(Bytes::from(bytes.clone())),
        Err(WireError::Malformed(_))
    ));
    // fragment_offset near u32::MAX must not wrap into a valid fragment.
    bytes[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
    bytes[28..32].copy_from_slice(&(u32::MAX - 1).to_be_bytes());
    assert!(matches!(
        decode(Bytes::from(bytes)),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn reserved_fields_and_unused_flags_are_ignored() {
    for name in ["nak", "ncf", "spm", "report"] {
        let mut bytes = bytes_of(name);
        bytes[3] = 0xaa; // header reserved byte
        if name != "ncf" {
            bytes[2] = 0xfe; // flags without meaning for this type (bit 0 kept clear for NCF)
        }
        assert_eq!(decode(Bytes::from(bytes)), Ok(sample(name)), "{name}");
    }
    let mut ncf = bytes_of("ncf");
    ncf[2] |= 0xfe;
    assert_eq!(decode(Bytes::from(ncf)), Ok(sample("ncf")));
}

#[test]
#[should_panic(expected = "ranges")]
fn encoding_a_nak_without_ranges_panics() {
    let Packet::Nak(mut nak) = sample("nak") else {
        unreachable!()
    };
    nak.ranges.clear();
    let _ = Packet::Nak(nak).to_bytes();
}

#[test]
#[should_panic(expected = "ranges")]
fn encoding_too_many_ranges_panics() {
    let Packet::Ncf(mut ncf) = sample("ncf") else {
        unreachable!()
    };
    ncf.ranges = vec![
        SeqRange {
            first: SeqNum(1),
            count: 1
        };
        MAX_RANGES + 1
    ];
    let _ = Packet::Ncf(ncf).to_bytes();
}

#[test]
#[should_panic(expected = "count 0")]
fn encoding_a_range_of_count_zero_panics() {
    let Packet::Nak(mut nak) = sample("nak") else {
        unreachable!()
    };
    nak.ranges[0].count = 0;
    let _ = Packet::Nak(nak).to_bytes();
}

#[test]
#[should_panic(expected = "echoes")]
fn encoding_too_many_echoes_panics() {
    let Packet::Spm(mut spm) = sample("spm") else {
        unreachable!()
    };
    spm.echoes = vec![
        Echo {
            member: 1,
            timestamp: 2,
            hold_us: 3
        };
        MAX_ECHOES + 1
    ];
    let _ = Packet::Spm(spm).to_bytes();
}

#[test]
fn encode_appends_after_existing_bytes() {
    let mut buf = BytesMut::new();
    buf.put_slice(b"prefix");
    let packet = sample("spm");
    packet.encode(&mut buf);
    assert_eq!(&buf[..6], b"prefix");
    assert_eq!(buf.len(), 6 + packet.encoded_len());
    assert_eq!(decode(buf.freeze().slice(6..)), Ok(packet));
}

// ---------------------------------------------------------------------------------------------
// 4. Golden sample files

const STREAM: StreamId = StreamId {
    source: 0x0123_4567_89ab_cdef,
    instance: 7,
};

/// The canonical valid sample packets, one per file name.
pub(super) fn samples() -> Vec<(&'static str, Packet)> {
    vec![
        (
            "odata",
            Packet::Data(Data {
                stream: STREAM,
                repair: false,
                seq: SeqNum(42),
                trail: SeqNum(10),
                message_len: 11,
                fragment_offset: 0,
                payload: Bytes::from_static(b"hello world"),
                fec_index: None,
            }),
        ),
        (
            "odata_fragment",
            Packet::Data(Data {
                stream: STREAM,
                repair: false,
                seq: SeqNum(43),
                trail: SeqNum(10),
                message_len: 3000,
                fragment_offset: 1400,
                payload: Bytes::from(vec![0x5a; 1400]),
                fec_index: None,
            }),
        ),
        (
            "rdata",
            Packet::Data(Data {
                stream: STREAM,
                repair: true,
                seq: SeqNum(u32::MAX),
                trail: SeqNum(u32::MAX - 100),
                message_len: 4,
                fragment_offset: 0,
                payload: Bytes::from_static(b"last"),
                fec_index: None,
            }),
        ),
        (
            "nak",
            Packet::Nak(Nak {
                stream: STREAM,
                requester: 0xfeed_face_cafe_beef,
                timestamp: 123_456,
                ranges: vec![
                    SeqRange {
                        first: SeqNum(17),
                        count: 1,
                    },
                    SeqRange {
                        first: SeqNum(20),
                        count: 5,
                    },
                ],
            }),
        ),
        (
            "ncf",
            Packet::Ncf(Ncf {
                stream: STREAM,
                gone: false,
                requester: 0xfeed_face_cafe_beef,
                timestamp_echo: 123_456,
                trail: SeqNum(10),
                ranges: vec![SeqRange {
                    first: SeqNum(17),
                    count: 1,
                }],
            }),
        ),
        (
            "ncf_gone",
            Packet::Ncf(Ncf {
                stream: STREAM,
                gone: true,
                requester: 0xfeed_face_cafe_beef,
                timestamp_echo: 123_999,
                trail: SeqNum(500),
                ranges: vec![SeqRange {
                    first: SeqNum(3),
                    count: 400,
                }],
            }),
        ),
        (
            "spm",
            Packet::Spm(Spm {
                stream: STREAM,
                spm_seq: 9,
                trail: SeqNum(10),
                lead: SeqNum(44),
                timestamp: 777_000,
                echoes: vec![
                    Echo {
                        member: 0xfeed_face_cafe_beef,
                        timestamp: 123_000,
                        hold_us: 250,
                    },
                    Echo {
                        member: 2,
                        timestamp: 5,
                        hold_us: 0,
                    },
                ],
            }),
        ),
        (
            "odata_fec",
            Packet::Data(Data {
                stream: STREAM,
                repair: false,
                seq: SeqNum(44),
                trail: SeqNum(10),
                message_len: 5,
                fragment_offset: 0,
                payload: Bytes::from_static(b"block"),
                fec_index: Some(12),
            }),
        ),
        (
            "parity",
            Packet::Parity(Parity {
                stream: STREAM,
                block: SeqNum(32),
                trail: SeqNum(10),
                k: 20,
                m: 8,
                index: 3,
                symbol: Bytes::from_static(&[0, 5, b'b', b'l', b'o', b'c', b'k', 0]),
            }),
        ),
        (
            "parity_nak",
            Packet::ParityNak(ParityNak {
                stream: STREAM,
                requester: 0xfeed_face_cafe_beef,
                timestamp: 123_456,
                blocks: vec![SeqRange {
                    first: SeqNum(32),
                    count: 2,
                }],
            }),
        ),
        (
            "parity_ncf",
            Packet::ParityNcf(Ncf {
                stream: STREAM,
                gone: false,
                requester: 0xfeed_face_cafe_beef,
                timestamp_echo: 123_456,
                trail: SeqNum(10),
                ranges: vec![SeqRange {
                    first: SeqNum(32),
                    count: 2,
                }],
            }),
        ),
        (
            "report",
            Packet::Report(Report {
                stream: STREAM,
                reporter: 0xfeed_face_cafe_beef,
                timestamp: 124_000,
                spm_timestamp_echo: 777_000,
                spm_hold_us: 1_000,
                delivered_until: SeqNum(41),
                echoes: Vec::new(),
            }),
        ),
        (
            "report_echoes",
            Packet::Report(Report {
                stream: STREAM,
                reporter: 0xfeed_face_cafe_beef,
                timestamp: 124_000,
                spm_timestamp_echo: 777_000,
                spm_hold_us: 1_000,
                delivered_until: SeqNum(41),
                echoes: vec![Echo {
                    member: 0x0bad_cafe_0000_0001,
                    timestamp: 99_000,
                    hold_us: 4_000,
                }],
            }),
        ),
        (
            "peer_rdata",
            Packet::PeerRdata(PeerRdata {
                repairer: 0x0bad_cafe_0000_0001,
                requester: 0xfeed_face_cafe_beef,
                timestamp_echo: 123_456,
                hold_us: 800,
                data: Data {
                    stream: STREAM,
                    repair: true,
                    seq: SeqNum(42),
                    trail: SeqNum(10),
                    message_len: 11,
                    fragment_offset: 0,
                    payload: Bytes::from_static(b"hello world"),
                    fec_index: None,
                },
            }),
        ),
    ]
}

/// The canonical sample packet called `name`.
fn sample(name: &str) -> Packet {
    samples()
        .into_iter()
        .find_map(|(n, p)| (n == name).then_some(p))
        .unwrap_or_else(|| panic!("no sample named {name}"))
}

/// Malformed sample files: name, bytes, expected `reason()`.
fn malformed_samples() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut bad_version = bytes_of("odata");
    bad_version[0] = 2;
    let mut reserved_type = bytes_of("report");
    reserved_type[1] = PacketType::Poll as u8;
    let mut parity_bad_index = bytes_of("parity");
    parity_bad_index[26] = 9;
    let mut parity_truncated = bytes_of("parity");
    parity_truncated.truncate(parity_truncated.len() - 1);
    let mut unknown_type = bytes_of("report");
    unknown_type[1] = 0x7f;
    let mut truncated_nak = bytes_of("nak");
    truncated_nak.truncate(truncated_nak.len() - 3);
    let mut nak_trailing = bytes_of("nak");
    nak_trailing.extend_from_slice(&[0, 0, 0, 0]);
    let mut nak_huge_count = bytes_of("nak");
    nak_huge_count.truncate(NAK_COUNT_AT + 4);
    nak_huge_count[NAK_COUNT_AT..NAK_COUNT_AT + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    let mut flags_mismatch = bytes_of("odata_fragment");
    flags_mismatch[2] |= FLAG_FIRST;
    vec![
        ("malformed_bad_version", bad_version, "unknown_version"),
        ("malformed_reserved_type", reserved_type, "reserved_type"),
        ("malformed_parity_index", parity_bad_index, "malformed"),
        ("malformed_parity_truncated", parity_truncated, "truncated"),
        ("malformed_unknown_type", unknown_type, "unknown_type"),
        ("malformed_truncated_nak", truncated_nak, "truncated"),
        (
            "malformed_nak_trailing_bytes",
            nak_trailing,
            "length_mismatch",
        ),
        ("malformed_nak_huge_count", nak_huge_count, "malformed"),
        ("malformed_flags_mismatch", flags_mismatch, "malformed"),
    ]
}

fn packets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/packets")
}

/// Compares `bytes` with the sample file `name`, or rewrites it when `RMCAST_BLESS=1`.
fn check_golden(name: &str, bytes: &[u8]) {
    let path = packets_dir().join(format!("{name}.bin"));
    if std::env::var_os("RMCAST_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(packets_dir()).expect("create tests/data/packets");
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (RMCAST_BLESS=1 regenerates the samples)",
            path.display()
        )
    });
    assert!(
        on_disk == bytes,
        "{} differs from the encoding of the canonical packet; if the wire format changed on \
         purpose, regenerate with RMCAST_BLESS=1 and document it in docs/wire.md",
        path.display()
    );
}

#[test]
fn golden_samples_match_encoding() {
    for (name, packet) in samples() {
        let bytes = packet.to_bytes();
        check_golden(name, &bytes);
        assert_eq!(
            decode(bytes),
            Ok(packet),
            "{name} must decode to its canonical packet"
        );
    }
}

#[test]
fn golden_malformed_samples_fail_with_their_reason() {
    for (name, bytes, reason) in malformed_samples() {
        check_golden(name, &bytes);
        match decode(Bytes::from(bytes)) {
            Ok(packet) => panic!("{name} decoded as {packet:?}, expected {reason}"),
            Err(error) => assert_eq!(error.reason(), reason, "{name}: {error}"),
        }
    }
}

#[test]
fn no_unexpected_sample_files() {
    // A stale file (renamed sample) would keep feeding the bench and fuzz seeds silently.
    let mut known: Vec<String> = samples().iter().map(|(n, _)| format!("{n}.bin")).collect();
    known.extend(
        malformed_samples()
            .iter()
            .map(|(n, _, _)| format!("{n}.bin")),
    );
    let Ok(entries) = std::fs::read_dir(packets_dir()) else {
        return; // the golden tests report the missing directory
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            known.contains(&name),
            "tests/data/packets/{name} has no sample in wire::tests"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Peer repair and report echoes

#[test]
fn peer_rdata_keeps_the_source_stream_and_the_data_rules() {
    let Packet::PeerRdata(peer) = sample("peer_rdata") else {
        unreachable!()
    };
    assert_eq!(peer.data.stream, STREAM, "filed under the original source");
    assert!(peer.data.repair);
    let bytes = bytes_of("peer_rdata");
    assert_eq!(bytes[1], PacketType::PeerRdata as u8);
    // Shorter than the repairer fields, or than the data fields after them: truncated.
    for len in [HEADER_LEN, HEADER_LEN + 23, HEADER_LEN + 24 + 15] {
        assert_eq!(
            decode(Bytes::copy_from_slice(&bytes[..len])),
            Err(WireError::Truncated),
            "cut at {len}"
        );
    }
    // The FIRST/LAST rule of the data applies to the flags of the peer repair too.
    let mut flags = bytes.clone();
    flags[2] &= !FLAG_LAST;
    assert!(matches!(
        decode(Bytes::from(flags)),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn report_echo_list_is_bounded_and_canonical() {
    let plain = bytes_of("report");
    assert_eq!(
        plain.len(),
        HEADER_LEN + Report::BODY_LEN,
        "no echoes: old form"
    );
    let with = bytes_of("report_echoes");
    assert_eq!(with.len(), plain.len() + 4 + 16);
    // A count word announcing no echoes is not canonical.
    let mut empty = plain.clone();
    empty.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        decode(Bytes::from(empty)),
        Err(WireError::Malformed(_))
    ));
    // More than MAX_REPORT_ECHOES is refused before anything is allocated.
    let mut many = plain.clone();
    many.extend_from_slice(&[(MAX_REPORT_ECHOES + 1) as u8, 0, 0, 0]);
    many.extend(std::iter::repeat_n(0u8, 16 * (MAX_REPORT_ECHOES + 1)));
    assert!(matches!(
        decode(Bytes::from(many)),
        Err(WireError::Malformed(_))
    ));
    // A count that disagrees with the bytes present.
    let mut short = with.clone();
    short.truncate(with.len() - 1);
    assert_eq!(decode(Bytes::from(short)), Err(WireError::Truncated));
    let mut long = with;
    long.push(0);
    assert_eq!(decode(Bytes::from(long)), Err(WireError::LengthMismatch));
    // Three stray bytes after the fixed part cannot hold a count word.
    let mut stray = plain;
    stray.extend_from_slice(&[1, 0, 0]);
    assert_eq!(decode(Bytes::from(stray)), Err(WireError::Truncated));
}

#[test]
#[should_panic(expected = "echoes")]
fn encoding_too_many_report_echoes_panics() {
    let Packet::Report(mut report) = sample("report_echoes") else {
        unreachable!()
    };
    report.echoes = vec![report.echoes[0]; MAX_REPORT_ECHOES + 1];
    let _ = Packet::Report(report).to_bytes();
}
