//! Fuzzing harness bodies, shared by the `fuzz/` targets and by `cargo test` corpus replay.
//!
//! Each function takes the fuzzer's raw bytes and asserts invariants of the wire codec, so a
//! crash means a broken invariant, not only a panic in the parser:
//! - [`decode`]: any byte string decodes without panicking; a decoded packet re-encodes to
//!   exactly `encoded_len()` bytes, to the same length as the input (the format has no
//!   optional padding), and decodes back to the same packet.
//! - [`roundtrip`]: a valid packet built from the bytes encodes and decodes to itself.
//!
//! Invariant: harnesses are deterministic functions of their input (no clock, no RNG), so every
//! crash reproduces from its artifact file.

use bytes::Bytes;

use crate::wire::{
    self, Data, Echo, MAX_ECHOES, MAX_RANGES, MAX_REPORT_ECHOES, Nak, Ncf, Packet, Parity,
    ParityNak, PeerRdata, Report, SeqNum, SeqRange, Spm, StreamId,
};

/// Decodes arbitrary bytes; on success checks the re-encoding invariants.
///
/// # Panics
/// When the codec breaks one of the invariants listed in the module doc.
pub fn decode(data: &[u8]) {
    let Ok(packet) = wire::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let encoded = packet.to_bytes();
    assert_eq!(
        encoded.len(),
        packet.encoded_len(),
        "encoded_len disagrees with encode"
    );
    assert_eq!(
        encoded.len(),
        data.len(),
        "canonical re-encoding changed the length"
    );
    match wire::decode(encoded) {
        Ok(again) => assert_eq!(again, packet, "re-encoded packet decodes differently"),
        Err(error) => panic!("re-encoded {packet:?} fails to decode: {error}"),
    }
}

/// Builds a valid packet from the bytes, encodes it and checks it decodes to itself.
///
/// # Panics
/// When the codec breaks one of the invariants listed in the module doc.
pub fn roundtrip(data: &[u8]) {
    let packet = build_packet(&mut ByteReader { rest: data });
    let encoded = packet.to_bytes();
    assert_eq!(
        encoded.len(),
        packet.encoded_len(),
        "encoded_len disagrees with encode"
    );
    match wire::decode(encoded) {
        Ok(decoded) => assert_eq!(decoded, packet, "round trip changed the packet"),
        Err(error) => panic!("valid {packet:?} fails to decode: {error}"),
    }
}

/// Reads fixed-size values from the fuzzer's bytes; past the end every value is zero, so any
/// input (including the empty one) builds a packet.
struct ByteReader<'a> {
    rest: &'a [u8],
}

impl ByteReader<'_> {
    fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&byte, rest)) => {
                self.rest = rest;
                byte
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    fn seq(&mut self) -> SeqNum {
        SeqNum(self.u32())
    }

    /// Up to `max` bytes (fewer if the input runs out), as the payload.
    fn bytes(&mut self, max: usize) -> Bytes {
        let len = max.min(self.rest.len());
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Bytes::copy_from_slice(taken)
    }

    /// A count in `min..=max`.
    fn count(&mut self, min: usize, max: usize) -> usize {
        min + usize::from(self.u8()) % (max - min + 1)
    }
}

fn build_packet(input: &mut ByteReader<'_>) -> Packet {
    let kind = input.u8();
    let stream = StreamId {
        source: input.u64(),
        instance: input.u32(),
    };
    match kind % 10 {
        0 | 1 => Packet::Data(build_data(input, stream, kind % 10 == 1)),
        2 => Packet::Nak(Nak {
            stream,
            requester: input.u64(),
            timestamp: input.u32(),
            ranges: build_ranges(input),
        }),
        3 => Packet::Ncf(Ncf {
            stream,
            gone: input.u8() & 1 == 1,
            requester: input.u64(),
            timestamp_echo: input.u32(),
            trail: input.seq(),
            ranges: build_ranges(input),
        }),
        4 => {
            let spm_seq = input.u32();
            let trail = input.seq();
            let lead = input.seq();
            let timestamp = input.u32();
            let echoes = build_echoes(input, MAX_ECHOES);
            Packet::Spm(Spm {
                stream,
                spm_seq,
                trail,
                lead,
                timestamp,
                echoes,
            })
        }
        6 => {
            let block = input.seq();
            let trail = input.seq();
            let k = input.u8().max(1);
            let m = input.u8().max(1);
            let index = input.u8() % m.saturating_add(1).max(1);
            let len = input.count(1, 255) * 2;
            // Valid symbols are even and at least 2 bytes, however short the input ran.
            let mut symbol = input.bytes(len).to_vec();
            symbol.resize(symbol.len().next_multiple_of(2).max(2), 0);
            Packet::Parity(Parity {
                stream,
                block,
                trail,
                k,
                m: m.min(254),
                index: index.min(m.min(254)),
                symbol: Bytes::from(symbol),
            })
        }
        8 => Packet::ParityNcf(Ncf {
            stream,
            gone: input.u8() & 1 == 1,
            requester: input.u64(),
            timestamp_echo: input.u32(),
            trail: input.seq(),
            ranges: build_ranges(input),
        }),
        7 => Packet::ParityNak(ParityNak {
            stream,
            requester: input.u64(),
            timestamp: input.u32(),
            blocks: build_ranges(input),
        }),
        5 => Packet::Report(Report {
            stream,
            reporter: input.u64(),
            timestamp: input.u32(),
            spm_timestamp_echo: input.u32(),
            spm_hold_us: input.u32(),
            delivered_until: input.seq(),
            echoes: build_echoes(input, MAX_REPORT_ECHOES),
        }),
        _ => Packet::PeerRdata(PeerRdata {
            repairer: input.u64(),
            requester: input.u64(),
            timestamp_echo: input.u32(),
            hold_us: input.u32(),
            data: build_data(input, stream, true),
        }),
    }
}

fn build_data(input: &mut ByteReader<'_>, stream: StreamId, repair: bool) -> Data {
    let seq = input.seq();
    let trail = input.seq();
    let extra = input.u32();
    let offset_pick = input.u32();
    let payload_max = usize::from(input.u16());
    let payload = input.bytes(payload_max);
    // Consistent fragment fields: offset + payload length <= message_len.
    let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let message_len = payload_len.saturating_add(extra);
    let fragment_offset = offset_pick % (message_len - payload_len).saturating_add(1);
    Data {
        stream,
        repair,
        seq,
        trail,
        message_len,
        fragment_offset,
        payload,
        fec_index: (extra & 1 == 1).then_some(input.u8()),
    }
}

fn build_echoes(input: &mut ByteReader<'_>, max: usize) -> Vec<Echo> {
    let count = input.count(0, max);
    (0..count)
        .map(|_| Echo {
            member: input.u64(),
            timestamp: input.u32(),
            hold_us: input.u32(),
        })
        .collect()
}

fn build_ranges(input: &mut ByteReader<'_>) -> Vec<SeqRange> {
    let count = input.count(1, MAX_RANGES);
    (0..count)
        .map(|_| SeqRange {
            first: input.seq(),
            count: input.u16().max(1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Runs every file of `fuzz/corpus/<target>/` through `harness`; returns how many ran.
    fn replay(target: &str, harness: fn(&[u8])) -> usize {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read corpus {}: {e}", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("list corpus entry").path();
            if !path.is_file() {
                continue;
            }
            let input = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("read corpus file {}: {e}", path.display()));
            // Name the file in the failure so it can be replayed under the fuzzer.
            let outcome = std::panic::catch_unwind(|| harness(&input));
            assert!(outcome.is_ok(), "corpus file {} fails", path.display());
            replayed += 1;
        }
        replayed
    }

    #[test]
    fn decode_corpus_replays() {
        // Seeded from tests/data/packets, so an empty corpus means it was lost.
        assert!(
            replay("decode", super::decode) > 0,
            "fuzz/corpus/decode is empty"
        );
    }

    #[test]
    fn roundtrip_corpus_replays() {
        assert!(
            replay("roundtrip", super::roundtrip) > 0,
            "fuzz/corpus/roundtrip is empty"
        );
    }

    #[test]
    fn sample_packets_pass_the_decode_harness() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/packets");
        for entry in std::fs::read_dir(&dir).expect("read tests/data/packets") {
            let path = entry.expect("list sample").path();
            super::decode(&std::fs::read(&path).expect("read sample"));
        }
    }

    #[test]
    fn roundtrip_harness_builds_every_packet_type() {
        use crate::wire::Packet;
        let mut seen = Vec::new();
        for kind in 0u8..10 {
            let input = [
                kind, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 200,
            ];
            super::roundtrip(&input);
            let packet = super::build_packet(&mut super::ByteReader { rest: &input });
            // By variant, not `packet_type()`: that maps a parity NAK to `Nak` and ODATA and
            // RDATA to one type, so a harness that lost either would still pass.
            seen.push(match packet {
                Packet::Data(data) if data.repair => "rdata",
                Packet::Data(_) => "odata",
                Packet::Nak(_) => "nak",
                Packet::ParityNak(_) => "parity_nak",
                Packet::Ncf(_) => "ncf",
                Packet::ParityNcf(_) => "parity_ncf",
                Packet::Spm(_) => "spm",
                Packet::Report(_) => "report",
                Packet::Parity(_) => "parity",
                Packet::PeerRdata(_) => "peer_rdata",
            });
        }
        for wanted in [
            "odata",
            "rdata",
            "nak",
            "parity_nak",
            "ncf",
            "parity_ncf",
            "spm",
            "report",
            "parity",
            "peer_rdata",
        ] {
            assert!(seen.contains(&wanted), "harness never builds {wanted}");
        }
        super::roundtrip(&[]);
    }
}
