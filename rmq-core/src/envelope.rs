//! The stored form of a job: a fixed binary header written by the enqueue
//! script, the job id, the MessagePack payload and, only on jobs enqueued
//! inside a traced span, a trace context trailer.
//!
//! ```text
//! offset size field
//!  0     1    version (1)
//!  1     1    priority (0 high, 1 normal, 2 low)
//!  2     1    retries used: runs that failed before this one (0 on the first run)
//!  3     1    max_retries
//!  4     1    flags (bit 0: the id was given explicitly;
//!                    bit 1: a trace context trailer follows the payload;
//!                    bit 2: enqueued with a delay;
//!                    bit 3: indexed by id;
//!                    bit 4: holds a unique lock, see `{P:T}:locks`;
//!                    bit 5: a fair-queueing key follows the id)
//!  5     6    enqueued_at, ms since the Unix epoch, Redis server time
//! 11     6    expire_at, ms (0 = never)
//! 17     1    id length n
//! 18     n    id
//! with flag bit 5 only (topics with a `rate_key`):
//! 18+n   1    key length k
//! 19+n   k    key
//! 18+n   ..   payload (one MessagePack value; after the key with bit 5)
//! with flag bit 1 only, the trailer, the last t+1 bytes:
//! end-t-1 1   trace context format (0: W3C traceparent version 00)
//! end-t   16  trace id
//! end-t+16 8  parent span id (the enqueuing span)
//! end-t+24 1  trace flags (bit 0: sampled)
//! end-t+25 .. tracestate, ASCII (t - 26 bytes, often none)
//! end-1   1   t, the trailer's length before this byte (26 to 255)
//! ```
//!
//! All integers are big-endian (Lua `struct` format `>BBBBBI6I6B`). The exact
//! bytes are also the lease token: recovery and retry rewrite `retries used`,
//! so a worker holding an outdated copy can no longer ack, fail or extend it.
//!
//! The trace context is a trailer, not a field before the payload, so the
//! version stays 1 and every reader keeps working: a job without it has not
//! one byte more, and a reader that does not know flag bit 1 (a build before
//! the trailer, or any worker without a [`crate::trace::Propagator`]) reads
//! the payload from the id to the end, and MessagePack decoding stops after
//! the payload's one value, so it ignores the trailer. A trailer of a format
//! this build does not know is ignored too (the job runs without a parent
//! span). The scripts that rewrite envelopes (retry, recovery, dead-letter
//! and parse-error retries) change only header bytes and keep the rest.
//!
//! An *attempt* is one run, counted from 1: attempt 1 is the first run, and a
//! job with `retries = 2` has at most 3 attempts. The stored byte is the
//! number of retries used so far, so [`Envelope::attempt`] is that byte plus
//! one, the same number as [`JobContext::attempt`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::trace::TraceContext;
use crate::{JobContext, JobId, Priority};

/// The envelope format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the id.
pub const HEADER_LEN: usize = 18;
/// Flag bit: the id was given explicitly (and is indexed for de-duplication).
pub const FLAG_EXPLICIT_ID: u8 = 1;
/// Flag bit: a trace context trailer follows the payload.
pub const FLAG_TRACE_CONTEXT: u8 = 2;
/// Flag bit: the job was enqueued with a delay, so it was due later than
/// its `enqueued_at`.
pub const FLAG_DELAYED: u8 = 4;
/// Flag bit: the job is in its topic's status-by-id index (every script
/// that moves it keeps its index record).
pub const FLAG_INDEXED: u8 = 8;
/// Flag bit: the job holds a unique lock that a transition releases (its
/// entry is in `{P:T}:locks`).
pub const FLAG_UNIQUE: u8 = 16;
/// Flag bit: a fair-queueing key (1 length byte, the key) follows the id;
/// the job waits in its key's sub-queue (topics with a `rate_key`).
pub const FLAG_KEYED: u8 = 32;

/// A job as stored in Redis, parsed. Holding one is holding its lease token.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Bytes,
    priority: Priority,
    id_end: usize,
    payload_start: usize,
    payload_end: usize,
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
        let mut payload_start = id_end;
        if bytes[4] & FLAG_KEYED != 0 {
            let len = bytes.get(id_end).map_or(0, |&b| usize::from(b));
            payload_start = id_end + 1 + len;
            if bytes.len() < payload_start {
                return Err(EnvelopeError::Truncated(bytes.len()));
            }
        }
        let mut payload_end = bytes.len();
        if bytes[4] & FLAG_TRACE_CONTEXT != 0 {
            // The trailer and its length byte, after the id.
            let trailer = bytes.len() - payload_start;
            let len = bytes.last().map_or(0, |&b| usize::from(b));
            if trailer < len + 1 {
                return Err(EnvelopeError::Truncated(bytes.len()));
            }
            payload_end -= len + 1;
        }
        Ok(Envelope {
            bytes,
            priority,
            id_end,
            payload_start,
            payload_end,
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
        &self.bytes[self.payload_start..self.payload_end]
    }

    /// The fair-queueing key (the `rate_key` field's value), for jobs of a
    /// topic with a `rate_key`.
    pub fn fair_key(&self) -> Option<&[u8]> {
        (self.bytes[4] & FLAG_KEYED != 0).then(|| &self.bytes[self.id_end + 1..self.payload_start])
    }

    /// The encoded payload, shared with the envelope (no copy).
    pub fn payload_bytes(&self) -> Bytes {
        self.bytes.slice(self.payload_start..self.payload_end)
    }

    /// Whether the job carries a trace context trailer (flag bit 1).
    pub fn has_trace_context(&self) -> bool {
        self.bytes[4] & FLAG_TRACE_CONTEXT != 0
    }

    /// The trace context of the span that enqueued the job, if it carries
    /// one this build reads.
    pub fn trace_context(&self) -> Option<TraceContext> {
        if !self.has_trace_context() {
            return None;
        }
        TraceContext::decode(&self.bytes[self.payload_end..self.bytes.len() - 1])
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

    /// Whether the job was enqueued with a delay (set by this version's
    /// enqueue script; older envelopes read as not delayed).
    pub fn was_delayed(&self) -> bool {
        self.bytes[4] & FLAG_DELAYED != 0
    }

    /// The flags byte (`FLAG_*` bits).
    pub fn flags(&self) -> u8 {
        self.bytes[4]
    }

    /// Whether the job holds a unique lock released by a transition.
    pub fn holds_unique_lock(&self) -> bool {
        self.bytes[4] & FLAG_UNIQUE != 0
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
        self.context_with(topic, crate::Cancellation::new())
    }

    /// [`Envelope::context`] with the token that cancels the job.
    pub fn context_with(&self, topic: &str, cancellation: crate::Cancellation) -> JobContext {
        JobContext {
            id: JobId::new(self.id()),
            topic: topic.to_owned(),
            attempt: self.attempt(),
            max_retries: self.max_retries(),
            priority: self.priority,
            enqueued_at: UNIX_EPOCH + Duration::from_millis(self.enqueued_at_ms()),
            cancellation,
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
            .field("trace_context", &self.trace_context())
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

/// Builds envelope bytes with a trace context trailer, the way the enqueue
/// script does for a job enqueued inside a traced span (tests and tools).
#[allow(clippy::too_many_arguments)]
pub fn encode_traced(
    priority: Priority,
    retries_used: u8,
    max_retries: u8,
    enqueued_at_ms: u64,
    expire_at_ms: u64,
    id: &str,
    explicit_id: bool,
    payload: &[u8],
    trace: &TraceContext,
) -> Vec<u8> {
    let mut bytes = encode(
        priority,
        retries_used,
        max_retries,
        enqueued_at_ms,
        expire_at_ms,
        id,
        explicit_id,
        payload,
    );
    bytes[4] |= FLAG_TRACE_CONTEXT;
    trace.append_trailer(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fair_key_sits_between_the_id_and_the_payload() {
        // As the enqueue script writes it with flag bit 5: length, key.
        let mut keyed = b"\x04acme".to_vec();
        keyed.extend_from_slice(b"\x80");
        let mut bytes = encode(Priority::Normal, 0, 3, 1, 0, "7", false, &keyed);
        bytes[4] |= FLAG_KEYED;
        let env = Envelope::parse(bytes.clone()).unwrap();
        assert_eq!(env.id(), "7");
        assert_eq!(env.fair_key(), Some(&b"acme"[..]));
        assert_eq!(env.payload(), b"\x80");
        // With a trace trailer too.
        context().append_trailer(&mut bytes);
        bytes[4] |= FLAG_TRACE_CONTEXT;
        let env = Envelope::parse(bytes).unwrap();
        assert_eq!(
            (env.fair_key(), env.payload()),
            (Some(&b"acme"[..]), &b"\x80"[..])
        );
        assert_eq!(env.trace_context(), Some(context()));
        // A key longer than what is left is a truncated envelope.
        let mut short = encode(Priority::Normal, 0, 3, 1, 0, "7", false, b"\x09ab");
        short[4] |= FLAG_KEYED;
        assert_eq!(Envelope::parse(short), Err(EnvelopeError::Truncated(22)));
        // Without the flag there is no key.
        let plain =
            Envelope::parse(encode(Priority::Normal, 0, 3, 1, 0, "7", false, b"\x80")).unwrap();
        assert_eq!(plain.fair_key(), None);
    }

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

    fn context() -> TraceContext {
        TraceContext::from_w3c(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "rojo=1",
        )
        .unwrap()
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        order_id: String,
        amount: u32,
        tags: Vec<String>,
    }

    fn order() -> Order {
        Order {
            order_id: "ORD_1".into(),
            amount: 7,
            tags: vec!["a".into()],
        }
    }

    #[test]
    fn a_trace_context_rides_after_the_payload() {
        let payload = crate::codec::encode(&order()).unwrap();
        let plain = encode(Priority::Normal, 0, 3, 1, 0, "k-1", true, &payload);
        let traced = encode_traced(
            Priority::Normal,
            0,
            3,
            1,
            0,
            "k-1",
            true,
            &payload,
            &context(),
        );
        assert_eq!(&traced[..4], &plain[..4]);
        assert_eq!(traced[4], FLAG_EXPLICIT_ID | FLAG_TRACE_CONTEXT);
        assert_eq!(traced.len(), plain.len() + 26 + 6 + 1);
        let env = Envelope::parse(traced).unwrap();
        assert_eq!(env.id(), "k-1");
        assert!(env.has_explicit_id());
        assert_eq!(env.payload(), &payload[..]);
        assert_eq!(&env.payload_bytes()[..], &payload[..]);
        assert_eq!(env.trace_context(), Some(context()));
        let plain = Envelope::parse(plain).unwrap();
        assert!(!plain.has_trace_context());
        assert_eq!(plain.trace_context(), None);
    }

    #[test]
    fn a_job_without_context_does_not_grow() {
        let bytes = encode(Priority::Normal, 0, 3, 1, 0, "1", false, b"\x80");
        assert_eq!(bytes.len(), HEADER_LEN + 1 + 1);
    }

    /// A worker built before the trailer existed: payload from the id to
    /// the end, decoded with `codec::decode` (the previous
    /// `Envelope::parse` and `Invocation::decode`).
    fn decode_like_before<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        assert_eq!(bytes[0], 1, "the version an old worker reads");
        let id_end = HEADER_LEN + bytes[17] as usize;
        crate::codec::decode(&bytes[id_end..]).expect("an old worker decodes the payload")
    }

    #[test]
    fn a_worker_that_knows_no_trailer_still_decodes_the_payload() {
        let payload = crate::codec::encode(&order()).unwrap();
        let traced = encode_traced(Priority::High, 0, 3, 1, 0, "9", false, &payload, &context());
        assert_eq!(decode_like_before::<Order>(&traced), order());
        // Payloads that end in a nested value or a string, or are one scalar.
        let unit = crate::codec::encode(&()).unwrap();
        let traced = encode_traced(Priority::High, 0, 3, 1, 0, "9", false, &unit, &context());
        decode_like_before::<()>(&traced);
        let text = crate::codec::encode("text").unwrap();
        let traced = encode_traced(Priority::High, 0, 3, 1, 0, "9", false, &text, &context());
        assert_eq!(decode_like_before::<String>(&traced), "text");
        let json = crate::codec::to_json(&traced[HEADER_LEN + 1..]).unwrap();
        assert_eq!(json, serde_json::json!("text"), "old `dlq show`");
    }

    #[test]
    fn rmp_serde_stops_after_one_value() {
        let mut bytes = rmp_serde::to_vec_named(&order()).unwrap();
        bytes.extend_from_slice(b"\x00trailing bytes\x0f");
        assert_eq!(rmp_serde::from_slice::<Order>(&bytes).unwrap(), order());
    }

    #[test]
    fn a_trailer_longer_than_the_envelope_is_truncated() {
        let mut bytes = encode(Priority::High, 0, 0, 1, 0, "abc", false, b"\xc0");
        bytes[4] |= FLAG_TRACE_CONTEXT;
        assert!(matches!(
            Envelope::parse(bytes.clone()),
            Err(EnvelopeError::Truncated(_))
        ));
        bytes.push(0);
        let env = Envelope::parse(bytes).unwrap();
        assert_eq!(env.payload(), b"\xc0");
        assert_eq!(
            env.trace_context(),
            None,
            "an empty trailer carries nothing"
        );
    }
}
