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
//! | echo count u8 |   reserved (3 bytes)   -- only if count >= 1  | 40
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        count × echo (16 bytes each, as in the SPM)            | 44
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! A REPORT without peer echoes is the 40-byte form with no echo part at all (so reports of
//! builds that predate echoes decode unchanged); with 1 to [`MAX_REPORT_ECHOES`] echoes, the
//! count word and the echoes follow. A count of 0 after `delivered_until` is not canonical and
//! is `malformed`.
//!
//! The SPM follows RFC 3208 §8.1 (`spm_sqn`, `spm_trail`, `spm_lead`); the timestamp echoes
//! and the REPORT play the role of NORM's CMD(CC) / ACK round-trip probing (RFC 5740 §5.5.1,
//! §5.5.3), in the send-timestamp + hold-time form.
//!
//! Invariant: a decoded SPM carries at most [`MAX_ECHOES`] echoes, a REPORT at most
//! [`MAX_REPORT_ECHOES`], and both types end exactly after their last field; echo counts are
//! checked before the `Vec` is allocated.

use bytes::{Buf, BufMut, Bytes};

use super::{
    Echo, MAX_ECHOES, MAX_REPORT_ECHOES, Report, SeqNum, Spm, StreamId, WireError, expect_exact_len,
};

/// SPM fixed body: spm_seq, trail, lead, timestamp, echo count, 3 reserved bytes.
const SPM_FIXED_LEN: usize = 4 * 4 + 4;
/// Bytes of one encoded [`Echo`].
const ECHO_LEN: usize = 16;

/// Most bytes the peer echoes add to a REPORT (count word and [`MAX_REPORT_ECHOES`] echoes):
/// what a receiver budgets per report when it may echo.
pub(crate) const MAX_REPORT_ECHO_BYTES: usize = 4 + MAX_REPORT_ECHOES * ECHO_LEN;

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
        encode_echoes(buf, &self.echoes);
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Spm, WireError> {
        if body.remaining() < SPM_FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let spm_seq = body.get_u32();
        let trail = SeqNum(body.get_u32());
        let lead = SeqNum(body.get_u32());
        let timestamp = body.get_u32();
        let echoes = decode_echoes(
            &mut body,
            MAX_ECHOES,
            "SPM with more than MAX_ECHOES echoes",
        )?;
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
    /// REPORT body without echoes: reporter, timestamp, spm_timestamp_echo, spm_hold_us,
    /// delivered_until.
    pub(super) const BODY_LEN: usize = 8 + 4 * 4;

    pub(super) fn body_len(&self) -> usize {
        if self.echoes.is_empty() {
            Self::BODY_LEN
        } else {
            Self::BODY_LEN + 4 + self.echoes.len() * ECHO_LEN
        }
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) {
        assert!(
            self.echoes.len() <= MAX_REPORT_ECHOES,
            "REPORT must carry at most {MAX_REPORT_ECHOES} echoes, got {}",
            self.echoes.len()
        );
        buf.put_u64(self.reporter);
        buf.put_u32(self.timestamp);
        buf.put_u32(self.spm_timestamp_echo);
        buf.put_u32(self.spm_hold_us);
        buf.put_u32(self.delivered_until.0);
        if !self.echoes.is_empty() {
            encode_echoes(buf, &self.echoes);
        }
    }

    pub(super) fn decode_body(stream: StreamId, mut body: Bytes) -> Result<Report, WireError> {
        if body.remaining() < Self::BODY_LEN {
            return Err(WireError::Truncated);
        }
        let reporter = body.get_u64();
        let timestamp = body.get_u32();
        let spm_timestamp_echo = body.get_u32();
        let spm_hold_us = body.get_u32();
        let delivered_until = SeqNum(body.get_u32());
        let echoes = if body.has_remaining() {
            let echoes = decode_echoes(
                &mut body,
                MAX_REPORT_ECHOES,
                "REPORT with more than MAX_REPORT_ECHOES echoes",
            )?;
            if echoes.is_empty() {
                return Err(WireError::Malformed("REPORT with an empty echo list"));
            }
            echoes
        } else {
            Vec::new()
        };
        Ok(Report {
            stream,
            reporter,
            timestamp,
            spm_timestamp_echo,
            spm_hold_us,
            delivered_until,
            echoes,
        })
    }
}

/// Writes an echo count byte, 3 reserved bytes and the echoes (the caller checked the count
/// against its type's limit, which fits a `u8`).
fn encode_echoes(buf: &mut impl BufMut, echoes: &[Echo]) {
    buf.put_u8(echoes.len() as u8);
    buf.put_bytes(0, 3);
    for echo in echoes {
        buf.put_u64(echo.member);
        buf.put_u32(echo.timestamp);
        buf.put_u32(echo.hold_us);
    }
}

/// Reads an echo count (at most `max`, else `Malformed(too_many)`), 3 reserved bytes and the
/// echoes; `body` must end exactly after them. The count is checked before allocating.
fn decode_echoes(
    body: &mut Bytes,
    max: usize,
    too_many: &'static str,
) -> Result<Vec<Echo>, WireError> {
    if body.remaining() < 4 {
        return Err(WireError::Truncated);
    }
    let count = usize::from(body.get_u8());
    body.advance(3);
    if count > max {
        return Err(WireError::Malformed(too_many));
    }
    // count <= max <= 255, so this cannot overflow.
    expect_exact_len(body, count * ECHO_LEN)?;
    let mut echoes = Vec::with_capacity(count);
    for _ in 0..count {
        echoes.push(Echo {
            member: body.get_u64(),
            timestamp: body.get_u32(),
            hold_us: body.get_u32(),
        });
    }
    Ok(echoes)
}
