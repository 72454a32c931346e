//! The filecast control protocol: one rmcast message per filecast message, in an explicit,
//! versioned, big-endian layout (documented in `docs/filecast.md`).
//!
//! Invariant: `decode` never panics and never allocates by an untrusted length: every
//! variable-length field is bounded by a constant here (path, name, file count) or by the
//! message itself (chunk data is a zero-copy slice of the received message).

use bytes::{BufMut, Bytes, BytesMut};

/// First two bytes of every message: "FC".
pub(crate) const MAGIC: [u8; 2] = *b"FC";
/// Layout version carried in byte 2; anything else is rejected. Version 2 moved the SHA-256
/// from `ANNOUNCE` to a `DIGEST` after the data, so the sender hashes while it sends.
pub(crate) const VERSION: u8 = 2;
/// Bytes of the common header: magic, version, kind, session.
pub(crate) const HEADER_LEN: usize = 12;
/// Largest chunk of file data in one message.
pub(crate) const MAX_CHUNK: usize = 1 << 20;
/// Largest relative path, in bytes of UTF-8.
pub(crate) const MAX_PATH: usize = 4096;
/// Largest receiver name, in bytes of UTF-8.
pub(crate) const MAX_NAME: usize = 255;
/// Most files in one session (bounds the per-file status list of a summary).
pub(crate) const MAX_FILES: u32 = 1 << 20;
/// Largest encoded message: a full chunk and its fields (summaries of `MAX_FILES` fit too).
pub(crate) const MAX_MESSAGE: usize = HEADER_LEN + 12 + MAX_CHUNK;

/// Outcome of one file at one receiver, as confirmed to the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Status {
    /// Written, SHA-256 verified and renamed to its final name.
    Verified,
    /// Every byte arrived but the SHA-256 differed; nothing left under the final name.
    HashMismatch,
    /// Data was lost in transit (unrecoverable loss, hole, or truncated stream).
    Lost,
    /// The announced path was refused (absolute, `..`, escaping through a symlink, invalid).
    Refused,
    /// The target exists and `--overwrite` was not given.
    Exists,
    /// A local I/O error (disk full, permissions…).
    Io,
}

impl Status {
    /// Wire code of the status.
    #[must_use]
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Verified => 0,
            Status::HashMismatch => 1,
            Status::Lost => 2,
            Status::Refused => 3,
            Status::Exists => 4,
            Status::Io => 5,
        }
    }

    /// Status of a wire code; `None` for an unknown code.
    #[must_use]
    pub(crate) fn from_code(code: u8) -> Option<Status> {
        Some(match code {
            0 => Status::Verified,
            1 => Status::HashMismatch,
            2 => Status::Lost,
            3 => Status::Refused,
            4 => Status::Exists,
            5 => Status::Io,
            _ => return None,
        })
    }

    /// Short lower-case name for reports.
    #[must_use]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Verified => "verified",
            Status::HashMismatch => "sha256-mismatch",
            Status::Lost => "lost",
            Status::Refused => "refused",
            Status::Exists => "exists",
            Status::Io => "io-error",
        }
    }
}

/// One file's announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Announce {
    /// Index of the file in the session, from 0, in sending order.
    pub(crate) index: u32,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Unix permission bits (only `0o777` are applied).
    pub(crate) mode: u32,
    /// Relative path, `/`-separated.
    pub(crate) path: String,
}

/// A filecast message (the session id travels in the header, outside this enum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// Sender → group, repeated while it waits for receivers: "register for this session".
    Hello,
    /// Receiver → group: "I take part in this session", with a name for reports.
    Register {
        /// Receiver's name.
        name: String,
    },
    /// Sender → group: a file follows.
    Announce(Announce),
    /// Sender → group: file data at `offset` of file `index`.
    Chunk {
        /// File index.
        index: u32,
        /// Byte offset in the file.
        offset: u64,
        /// The data (a slice of the received message).
        data: Bytes,
    },
    /// Sender → group, after the last chunk of file `index`: its SHA-256, computed while the
    /// data was read and sent.
    Digest {
        /// File index.
        index: u32,
        /// SHA-256 of the file's content.
        sha256: [u8; 32],
    },
    /// Sender → group, repeated until every receiver confirmed: no more files.
    Done {
        /// Files in the session.
        file_count: u32,
        /// Bytes in the session.
        total_bytes: u64,
    },
    /// Receiver → group: outcome of one file.
    Confirm {
        /// File index.
        index: u32,
        /// Outcome.
        status: Status,
    },
    /// Receiver → group, in answer to `Done`: the outcome of every file.
    Summary {
        /// One status per file, by index.
        statuses: Vec<Status>,
    },
    /// Sender → group: every receiver confirmed (or the wait ended); the session is over.
    Bye,
    /// Receiver → group, in answer to `Bye`: "I have it and I am leaving". Once every
    /// receiver said so, the sender leaves without lingering for a lost `Bye`.
    Farewell,
    /// Receiver → group: flow control, "I have processed file `index` up to `end`".
    Ack {
        /// File index.
        index: u32,
        /// Bytes of that file processed (written, or skipped for a failed file).
        end: u64,
    },
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// Session id chosen by the sender.
    pub(crate) session: u64,
    /// What it says.
    pub(crate) body: Body,
}

/// Why a message was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not a filecast message (bad magic).
    Magic,
    /// A version this build does not speak.
    Version(u8),
    /// Unknown message kind.
    Kind(u8),
    /// Shorter than its fields, or with bytes left over.
    Length,
    /// A field out of its bounds (path or name too long, not UTF-8, chunk too large…).
    Field(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Magic => write!(f, "not a filecast message"),
            DecodeError::Version(v) => write!(f, "unsupported filecast version {v}"),
            DecodeError::Kind(k) => write!(f, "unknown message kind {k}"),
            DecodeError::Length => write!(f, "length does not match the fields"),
            DecodeError::Field(name) => write!(f, "invalid field: {name}"),
        }
    }
}

const HELLO: u8 = 1;
const REGISTER: u8 = 2;
const ANNOUNCE: u8 = 3;
const CHUNK: u8 = 4;
const DONE: u8 = 5;
const CONFIRM: u8 = 6;
const SUMMARY: u8 = 7;
const BYE: u8 = 8;
const ACK: u8 = 9;
const DIGEST: u8 = 10;
const FAREWELL: u8 = 11;

fn header(kind: u8, session: u64, body_len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(HEADER_LEN + body_len);
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(kind);
    out.put_u64(session);
    out
}

/// Encodes a message. Fields beyond their bounds (a path over `MAX_PATH`…) are the
/// caller's bug; the receiver would reject them.
#[must_use]
pub(crate) fn encode(session: u64, body: &Body) -> Bytes {
    match body {
        Body::Hello => header(HELLO, session, 0).freeze(),
        Body::Bye => header(BYE, session, 0).freeze(),
        Body::Farewell => header(FAREWELL, session, 0).freeze(),
        Body::Register { name } => {
            let mut out = header(REGISTER, session, 2 + name.len());
            out.put_u16(name.len() as u16);
            out.put_slice(name.as_bytes());
            out.freeze()
        }
        Body::Announce(a) => {
            let mut out = header(ANNOUNCE, session, 18 + a.path.len());
            out.put_u32(a.index);
            out.put_u64(a.size);
            out.put_u32(a.mode);
            out.put_u16(a.path.len() as u16);
            out.put_slice(a.path.as_bytes());
            out.freeze()
        }
        Body::Chunk {
            index,
            offset,
            data,
        } => {
            let mut out = header(CHUNK, session, 12 + data.len());
            out.put_u32(*index);
            out.put_u64(*offset);
            out.put_slice(data);
            out.freeze()
        }
        Body::Digest { index, sha256 } => {
            let mut out = header(DIGEST, session, 36);
            out.put_u32(*index);
            out.put_slice(sha256);
            out.freeze()
        }
        Body::Done {
            file_count,
            total_bytes,
        } => {
            let mut out = header(DONE, session, 12);
            out.put_u32(*file_count);
            out.put_u64(*total_bytes);
            out.freeze()
        }
        Body::Confirm { index, status } => {
            let mut out = header(CONFIRM, session, 5);
            out.put_u32(*index);
            out.put_u8(status.code());
            out.freeze()
        }
        Body::Ack { index, end } => {
            let mut out = header(ACK, session, 12);
            out.put_u32(*index);
            out.put_u64(*end);
            out.freeze()
        }
        Body::Summary { statuses } => {
            let mut out = header(SUMMARY, session, 4 + statuses.len());
            out.put_u32(statuses.len() as u32);
            for status in statuses {
                out.put_u8(status.code());
            }
            out.freeze()
        }
    }
}

/// Reads fields off the front of a message, failing (never panicking) when short.
struct Reader {
    rest: Bytes,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Length);
        }
        Ok(self.rest.split_to(n))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&b);
        Ok(u64::from_be_bytes(raw))
    }

    /// A `u16`-length-prefixed UTF-8 string of at most `max` bytes; the bound is checked
    /// before anything is copied.
    fn string(&mut self, max: usize, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(DecodeError::Field(field));
        }
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Field(field))
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Length)
        }
    }
}

/// Decodes one message. Never panics; rejects anything malformed or out of bounds.
pub(crate) fn decode(message: Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { rest: message };
    let magic = r.take(2).map_err(|_| DecodeError::Magic)?;
    if magic[..] != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = r.u8()?;
    let session = r.u64()?;
    let body = match kind {
        HELLO => Body::Hello,
        BYE => Body::Bye,
        FAREWELL => Body::Farewell,
        REGISTER => Body::Register {
            name: r.string(MAX_NAME, "name")?,
        },
        ANNOUNCE => {
            let index = r.u32()?;
            let size = r.u64()?;
            let mode = r.u32()?;
            let path = r.string(MAX_PATH, "path")?;
            Body::Announce(Announce {
                index,
                size,
                mode,
                path,
            })
        }
        DIGEST => {
            let index = r.u32()?;
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&r.take(32)?);
            Body::Digest { index, sha256 }
        }
        CHUNK => {
            let index = r.u32()?;
            let offset = r.u64()?;
            let len = r.rest.len();
            if len > MAX_CHUNK {
                return Err(DecodeError::Field("chunk length"));
            }
            if offset.checked_add(len as u64).is_none() {
                return Err(DecodeError::Field("chunk offset"));
            }
            let data = r.take(len)?;
            Body::Chunk {
                index,
                offset,
                data,
            }
        }
        DONE => {
            let file_count = r.u32()?;
            if file_count > MAX_FILES {
                return Err(DecodeError::Field("file count"));
            }
            Body::Done {
                file_count,
                total_bytes: r.u64()?,
            }
        }
        ACK => Body::Ack {
            index: r.u32()?,
            end: r.u64()?,
        },
        CONFIRM => {
            let index = r.u32()?;
            let status = Status::from_code(r.u8()?).ok_or(DecodeError::Field("status"))?;
            Body::Confirm { index, status }
        }
        SUMMARY => {
            let count = r.u32()?;
            if count > MAX_FILES {
                return Err(DecodeError::Field("file count"));
            }
            // The statuses must all be present before anything is allocated for them.
            let raw = r.take(count as usize)?;
            let statuses = raw
                .iter()
                .map(|&code| Status::from_code(code).ok_or(DecodeError::Field("status")))
                .collect::<Result<Vec<_>, _>>()?;
            Body::Summary { statuses }
        }
        other => return Err(DecodeError::Kind(other)),
    };
    r.finish()?;
    Ok(Message { session, body })
}
