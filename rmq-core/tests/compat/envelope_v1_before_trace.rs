//! The stored form of a job: a fixed binary header written by the enqueue
//! script, the job id, then the MessagePack payload.
//!
//! ```text
//! offset size field
//!  0     1    version (1)
//!  1     1    priority (0 high, 1 normal, 2 low)
//!  2     1    retries used: runs that failed before this one (0 on the first run)
//!  3     1    max_retries
//!  4     1    flags (bit 0: the id was given explicitly)
//!  5     6    enqueued_at, ms since the Unix epoch, Redis server time
//! 11     6    expire_at, ms (0 = never)
//! 17     1    id length n
//! 18     n    id
//! 18+n   ..   payload
//! ```
//!
//! All integers are big-endian (Lua `struct` format `>BBBBBI6I6B`). The exact
//! bytes are also the lease token: recovery and retry rewrite `retries used`,
//! so a worker holding an outdated copy can no longer ack, fail or extend it.
//!
//! An *attempt* is one run, counted from 1: attempt 1 is the first run, and a
//! job with `retries = 2` has at most 3 attempts. The stored byte is the
//! number of retries used so far, so [`Envelope::attempt`] is that byte plus
//! one, the same number as [`JobContext::attempt`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{JobContext, JobId, Priority};

/// The envelope format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the id.
pub const HEADER_LEN: usize = 18;
/// Flag bit: the id was given explicitly (and is indexed for de-duplication).
pub const FLAG_EXPLICIT_ID: u8 = 1;

/// A job as stored in Redis, parsed. Holding one is holding its lease token.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Bytes,
    priority: Priority,
    id_end: usize,
}

/// Why stored bytes are not a job envelope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than its header says.
    #[error("envelope is truncated ({0} bytes)")]
    Truncated(usize),
    /// Written by another version of rmq.
    #[error("envelope version {0} is not supported (this build reads version {VERSION})")]
    Version(u8),
    /// A header field is out of range.
    #[error("envelope priority byte {0} is invalid")]
    Priority(u8),
    /// The id is not UTF-8.
    #[error("envelope id is not UTF-8")]
    Id,
}

impl Envelope {
    /// Parses stored bytes (without copying them).
    pub fn parse(bytes: impl Into<Bytes>) -> Result<Envelope, EnvelopeError> {
        let bytes = bytes.into();
        if bytes.len() < HEADER_LEN {
            return Err(EnvelopeError::Truncated(bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(EnvelopeError::Version(bytes[0]));
        }
        let priority = Priority::from_u8(bytes[1]).ok_or(EnvelopeError::Priority(bytes[1]))?;
        let id_end = HEADER_LEN + bytes[17] as usize;
        if bytes.len() < id_end {
            return Err(EnvelopeError::Truncated(bytes.len()));
        }
        std::str::from_utf8(&bytes[HEADER_LEN..id_end]).map_err(|_| EnvelopeError::Id)?;
        Ok(Envelope {
            bytes,
            priority,
            id_end,
        })
    }

    /// The stored bytes (the lease token).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The stored bytes, shared (cloning an envelope copies no bytes).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The job id.
    pub fn id(&self) -> &str {
        // Checked to be UTF-8 in `parse`.
        std::str::from_utf8(&self.bytes[HEADER_LEN..self.id_end]).unwrap_or_default()
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.id_end..]
    }

    /// The encoded payload, shared with the envelope (no copy).
    pub fn payload_bytes(&self) -> Bytes {
        self.bytes.slice(self.id_end..)
    }

    /// The job's priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The attempt this envelope is for, counted from 1: 1 on the first run,
    /// 2 on the first retry. For a dead-lettered job, the attempt that failed
    /// last. Equals the handler's [`JobContext::attempt`].
    pub fn attempt(&self) -> u32 {
        self.retries_used() + 1
    }

    /// Retries used so far: the runs that failed (or lost their lease)
    /// before this one. The stored header byte.
    pub fn retries_used(&self) -> u32 {
        u32::from(self.bytes[2])
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        u32::from(self.bytes[3])
    }

    /// The most attempts the retry policy allows: `max_retries() + 1`.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries() + 1
    }

    /// Whether the id was given explicitly.
    pub fn has_explicit_id(&self) -> bool {
        self.bytes[4] & FLAG_EXPLICIT_ID != 0
    }

    /// Enqueue time, ms since the epoch (Redis server clock).
    pub fn enqueued_at_ms(&self) -> u64 {
        u48(&self.bytes[5..11])
    }

    /// Expiry time, ms since the epoch; `None` if the job never expires.
    pub fn expire_at_ms(&self) -> Option<u64> {
        Some(u48(&self.bytes[11..17])).filter(|&ms| ms != 0)
    }

    /// The context a handler of this job sees.
    pub fn context(&self, topic: &str) -> JobContext {
        JobContext {
            id: JobId::new(self.id()),
            topic: topic.to_owned(),
            attempt: self.attempt(),
            max_retries: self.max_retries(),
            priority: self.priority,
            enqueued_at: UNIX_EPOCH + Duration::from_millis(self.enqueued_at_ms()),
            cancellation: rmq_core::Cancellation::new(),
        }
    }

    /// Whether the retry policy allows another attempt after this one fails.
    pub fn can_retry(&self) -> bool {
        self.retries_used() < self.max_retries()
    }
}

fn u48(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id())
            .field("priority", &self.priority)
            .field("attempt", &self.attempt())
            .field("max_retries", &self.max_retries())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// Milliseconds since the epoch of `time` (for tests and display).
pub fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Builds envelope bytes the way the enqueue script does (tests and tools).
#[allow(clippy::too_many_arguments)]
pub fn encode(
    priority: Priority,
    retries_used: u8,
    max_retries: u8,
    enqueued_at_ms: u64,
    expire_at_ms: u64,
    id: &str,
    explicit_id: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + id.len() + payload.len());
    bytes.extend_from_slice(&[
        VERSION,
        priority.as_u8(),
        retries_used,
        max_retries,
        if explicit_id { FLAG_EXPLICIT_ID } else { 0 },
    ]);
    bytes.extend_from_slice(&enqueued_at_ms.to_be_bytes()[2..]);
    bytes.extend_from_slice(&expire_at_ms.to_be_bytes()[2..]);
    bytes.push(id.len() as u8);
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_encodes() {
        let bytes = encode(
            Priority::Low,
            2,
            5,
            1_763_800_000_123,
            0,
            "42",
            false,
            b"\x80",
        );
        let env = Envelope::parse(bytes).unwrap();
        assert_eq!(env.id(), "42");
        assert_eq!(env.priority(), Priority::Low);
        assert_eq!(env.retries_used(), 2);
        assert_eq!(env.attempt(), 3, "the third run");
        assert_eq!(env.max_retries(), 5);
        assert_eq!(env.max_attempts(), 6);
        assert_eq!(env.enqueued_at_ms(), 1_763_800_000_123);
        assert_eq!(env.expire_at_ms(), None);
        assert_eq!(env.payload(), b"\x80");
        assert!(env.can_retry());
        assert_eq!(env.context("t").attempt, env.attempt());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            Envelope::parse(b"junk".to_vec()),
            Err(EnvelopeError::Truncated(4))
        );
        let mut bytes = encode(Priority::High, 0, 0, 1, 0, "abc", true, b"");
        bytes[0] = 9;
        assert_eq!(Envelope::parse(bytes), Err(EnvelopeError::Version(9)));
        let mut bytes = encode(Priority::High, 0, 0, 1, 0, "abc", true, b"");
        bytes[17] = 200;
        assert!(matches!(
            Envelope::parse(bytes),
            Err(EnvelopeError::Truncated(_))
        ));
    }
}
