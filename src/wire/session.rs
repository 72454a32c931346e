//! SPM (type 5), the source's heartbeat, and REPORT (type 6), a receiver's periodic report:
//! the session messages that carry window edges and the timestamps for RTT measurement.
//!
//! ```text
//! SPM (flags 0)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  common header, type 5 (SPM)                  |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       spm_seq (u32)                           | 16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        trail (u32)                            | 20
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         lead (u32)                            | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       timestamp (u32)                         | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | echo count u8 |              reserved (3 bytes)               | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 count × echo (16 bytes each)                  | 36
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! echo:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        member (u64)                           |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       timestamp (u32)                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        hold_us (u32)                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! REPORT (flags 0)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 common header, type 6 (REPORT)                |  0..16
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       reporter (u64)                          | 16
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       timestamp (u32)                         | 24
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  spm_timestamp_echo (u32)                     | 28
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      spm_hold_us (u32)                        | 32
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    delivered_until (u32)                      | 36
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The SPM follows RFC 3208 §8.1 (`spm_sqn`, `spm_trail`, `spm_lead`); the timestamp echoes
//! and the REPORT play the role of NORM's CMD(CC) / ACK round-trip probing (RFC 5740 §5.5.1,
//! §5.5.3), in the send-timestamp + hold-time form.
//!
//! Invariant: a decoded SPM carries at most [`MAX_ECHOES`] echoes and both types end exactly
//! after their last field; the echo count is checked before the `Vec` is allocated.

use bytes::{Buf, BufMut, Bytes};

use super::{Echo, MAX_ECHOES, Report, SeqNum, Spm, StreamId, WireError, expect_exact_len};

/// SPM fixed body: spm_seq, trail, lead, timestamp, echo count, 3 reserved bytes.
const SPM_FIXED_LEN: usize = 4 * 4 + 4;
/// Bytes of one encoded [`Echo`].
const ECHO_LEN: usize = 16;

impl Spm {
    pub(super) fn body_len(&self) -> usize {
        SPM_FIXED_LEN + self.echoes.len() * ECHO_LEN
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        assert!(
            self.echoes.len() <= MAX_ECHOES,
            "SPM must carry at most {MAX_ECHOES} echoes, got {}",
            self.echoes.len()
        );
        buf.put_u32(self.spm_seq);
        buf.put_u32(self.trail.0);
        buf.put_u32(self.lead.0);
        buf.put_u32(self.timestamp);
        // MAX_ECHOES fits in u8, checked just above.
        buf.put_u8(self.echoes.len() as u8);
        buf.put_bytes(0, 3);
        for echo in &self.echoes {
            buf.put_u64(echo.member);
            buf.put_u32(echo.timestamp);
            buf.put_u32(echo.hold_us);
        }
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Spm, WireError> {
        if body.remaining() < SPM_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let spm_seq = body.get_u32();
        let trail = SeqNum(body.get_u32());
        let lead = SeqNum(body.get_u32());
        let timestamp = body.get_u32();
        let count = usize::from(body.get_u8());
        body.advance(3);
        if count > MAX_ECHOES {
            return Err(WireError::Malformed("SPM with more than MAX_ECHOES echoes"));
        }
        // count <= MAX_ECHOES, so this cannot overflow; checked before allocating.
        let echoes_len = count * ECHO_LEN;
        expect_exact_len(&body, echoes_len)?;
        let mut echoes = Vec::with_capacity(count);
        for _ in 0..count {
            echoes.push(Echo {
                member: body.get_u64(),
                timestamp: body.get_u32(),
                hold_us: body.get_u32(),
            });
        }
        Ok(Spm {
            stream,
            spm_seq,
            trail,
            lead,
            timestamp,
            echoes,
        })
    }
}

impl Report {
    /// REPORT body: reporter, timestamp, spm_timestamp_echo, spm_hold_us, delivered_until.
    pub(super) const BODY_LEN: usize = 8 + 4 * 4;

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.reporter);
        buf.put_u32(self.timestamp);
        buf.put_u32(self.spm_timestamp_echo);
        buf.put_u32(self.spm_hold_us);
        buf.put_u32(self.delivered_until.0);
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Report, WireError> {
        expect_exact_len(&body, Self::BODY_LEN)?;
        Ok(Report {
            stream,
            reporter: body.get_u64(),
            timestamp: body.get_u32(),
            spm_timestamp_echo: body.get_u32(),
            spm_hold_us: body.get_u32(),
            delivered_until: SeqNum(body.get_u32()),
        })
    }
}
