//! Administration: dead-letter queue, parse-error store, statistics, topic
//! registry and retention trimming. None of it is on the hot path.
//!
//! Bad data never breaks these calls. An entry of the dead-letter queue or
//! the parse-error store that rmq cannot read (written by hand or by another
//! program, or damaged) is listed in its place as an [`UnreadableEntry`],
//! and the retry calls leave it where it is and count it. A field of a
//! topic's stats hash that is not an integer is left out of the counters and
//! named in [`TopicStats::skipped_fields`].
//!
//! Parse-error entries have no id of their own. They are addressed by
//! [`ParseErrorEntry::address`]: the job id when the stored bytes are a job
//! envelope, else a digest, `@` and 16 hex digits of the 64-bit FNV-1a hash
//! of the stored bytes (`@9f86d081884c7d65`). Every entry, readable or not,
//! can be addressed by its digest, which tells apart two entries of one job
//! id; an address that matches several entries means the newest.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{ms, Broker, DeadJob, ParseErrorEntry, State, TopicStats};
use crate::envelope::{Envelope, EnvelopeError};
use crate::keys::{topics_key, TopicKeys};
use crate::{scripts, Error};

/// Entries read per call when scanning a retention store.
const PAGE: usize = 1000;

/// What one [`Broker::trim`] call removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Dead-letter entries older than `dead_letter_max_age`.
    pub dead: u64,
    /// Parse-error entries older than `parse_error_max_age`.
    pub parse_errors: u64,
}

/// An entry of the dead-letter queue or the parse-error store that rmq
/// cannot read: not a `[time, error, bytes]` entry as the scripts write it,
/// or, in the dead-letter queue, one whose job is not an envelope. Listings
/// return it in its place; retries leave it where it is; a purge deletes it.
#[derive(Clone, PartialEq, Eq)]
pub struct UnreadableEntry {
    /// The entry exactly as stored (the sorted-set member).
    pub raw: Vec<u8>,
    /// Its score: when it was stored, ms since the epoch (server clock), if
    /// whoever wrote it kept to that.
    pub at_ms: u64,
    /// Why it cannot be read.
    pub reason: String,
}

impl UnreadableEntry {
    /// Its address in the parse-error store: `@` and a digest of `raw`.
    pub fn digest(&self) -> String {
        digest(&self.raw)
    }
}

impl fmt::Display for UnreadableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<unreadable entry, {} bytes: {}>",
            self.raw.len(),
            self.reason
        )
    }
}

impl fmt::Debug for UnreadableEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnreadableEntry")
            .field("raw_len", &self.raw.len())
            .field("at_ms", &self.at_ms)
            .field("reason", &self.reason)
            .finish()
    }
}

impl std::error::Error for UnreadableEntry {}

/// What a retry of many entries did. Entries that stay are left exactly
/// where they were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retried {
    /// Entries re-enqueued as new runs.
    pub moved: usize,
    /// Explicit ids of entries that stayed because a queued or running job
    /// holds the same id (retry them once it has finished).
    pub busy: Vec<String>,
    /// Entries that stayed because they cannot be retried: unreadable, or
    /// (parse-error store) bytes that are not a job envelope.
    pub unreadable: usize,
    /// Chosen entries no longer there ([`Broker::retry_entries`]).
    pub missing: usize,
}

impl ParseErrorEntry {
    /// The stored bytes as a job envelope, when they are one: the job's
    /// payload then failed to decode, and the entry can be retried.
    pub fn envelope(&self) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(self.raw.clone())
    }

    /// `@` and a digest of `raw`: an address of this entry that never
    /// changes.
    pub fn digest(&self) -> String {
        digest(&self.raw)
    }

    /// How the CLI and [`Broker::parse_error`] name this entry: its job id
    /// when the bytes are an envelope with an id, else its
    /// [digest](Self::digest).
    pub fn address(&self) -> String {
        match self.envelope() {
            Ok(envelope) if !envelope.id().is_empty() => envelope.id().to_owned(),
            _ => self.digest(),
        }
    }
}

/// `@` and the 64-bit FNV-1a hash of `bytes`, in hex.
pub(super) fn digest(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("@{hash:016x}")
}

/// Decodes a retention entry `[at ms, error, bytes]` as the scripts write
/// it (`cmsgpack.pack`: the error and the bytes are MessagePack strings;
/// binary fields are refused, as the scripts could not read them back).
pub(super) fn decode_entry(entry: &[u8]) -> Result<(u64, String, Vec<u8>), String> {
    const NOT: &str = "not a [time, error, bytes] entry";
    let mut rest = entry;
    // An entry is one flat array: a deeply nested (corrupt) one is refused
    // before it can exhaust the stack.
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, 16)
        .map_err(|e| format!("{NOT} ({e})"))?;
    if !rest.is_empty() {
        return Err(format!("{NOT} ({} bytes follow one)", rest.len()));
    }
    let rmpv::Value::Array(items) = value else {
        return Err(NOT.to_owned());
    };
    let [at, error, bytes] = <[rmpv::Value; 3]>::try_from(items).map_err(|_| NOT.to_owned())?;
    let at = at
        .as_u64()
        .or_else(|| at.as_f64().map(|f| f as u64))
        .ok_or_else(|| NOT.to_owned())?;
    let text = |v: rmpv::Value| -> Option<Vec<u8>> {
        match v {
            rmpv::Value::String(s) => Some(s.into_bytes()),
            _ => None,
        }
    };
    let error = text(error).ok_or_else(|| NOT.to_owned())?;
    let bytes = text(bytes).ok_or_else(|| NOT.to_owned())?;
    Ok((at, String::from_utf8_lossy(&error).into_owned(), bytes))
}

fn unreadable(member: &[u8], score: f64, reason: String) -> UnreadableEntry {
    UnreadableEntry {
        raw: member.to_vec(),
        // Saturating: NaN and negative scores read as 0.
        at_ms: score as u64,
        reason,
    }
}

pub(super) fn dead_job(member: &[u8], score: f64) -> Result<DeadJob, UnreadableEntry> {
    let (died_at_ms, error, bytes) =
        decode_entry(member).map_err(|reason| unreadable(member, score, reason))?;
    let envelope = Envelope::parse(bytes)
        .map_err(|e| unreadable(member, score, format!("its job is not an envelope: {e}")))?;
    Ok(DeadJob {
        envelope,
        error,
        died_at_ms,
    })
}

pub(super) fn parse_error_entry(
    member: &[u8],
    score: f64,
) -> Result<ParseErrorEntry, UnreadableEntry> {
    let (at_ms, error, raw) =
        decode_entry(member).map_err(|reason| unreadable(member, score, reason))?;
    Ok(ParseErrorEntry { raw, error, at_ms })
}

/// The two retention stores, whose entries can be listed and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Store {
    Dead,
    Errors,
}

impl Store {
    pub(super) fn key(self, keys: &TopicKeys) -> &str {
        match self {
            Store::Dead => &keys.dead,
            Store::Errors => &keys.errors,
        }
    }

    fn place(self) -> &'static str {
        match self {
            Store::Dead => "dead-letter queue",
            Store::Errors => "parse-error store",
        }
    }

    /// Whether the retry script can re-enqueue `member`: checked here, so
    /// an unreadable entry never reaches (and fails) a script.
    pub(super) fn retryable(self, member: &[u8]) -> bool {
        match self {
            Store::Dead => dead_job(member, 0.0).is_ok(),
            Store::Errors => parse_error_entry(member, 0.0).is_ok_and(|e| e.envelope().is_ok()),
        }
    }
}

/// What one retry script call did.
#[derive(Debug, Default)]
pub(super) struct RetryCall {
    pub(super) moved: usize,
    pub(super) busy: Vec<String>,
    pub(super) invalid: usize,
    pub(super) missing: usize,
}

/// The bucket value reported for histogram bucket `i`: the middle of
/// `[2^i, 2^(i+1))` microseconds.
fn bucket_value(i: u32) -> u64 {
    (1u64 << i) + (1u64 << i) / 2
}

fn percentile(histogram: &[u64; 41], total: u64, p: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return bucket_value(i as u32);
        }
    }
    bucket_value(40)
}

impl Broker {
    /// Known topics, sorted.
    pub async fn topics(&self) -> Result<Vec<String>, Error> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(topics_key(self.prefix()));
        let mut topics: Vec<String> = self.cmd("topics", &cmd).await?;
        topics.sort();
        Ok(topics)
    }

    /// Depths, counters and processing times of one topic. A field of the
    /// stats hash that is not an integer is left out (counted as 0) and
    /// named in [`TopicStats::skipped_fields`].
    pub async fn stats(&self, topic: &str) -> Result<TopicStats, Error> {
        let keys = self.keys(topic);
        let mut pipe = redis::pipe();
        for list in &keys.pending {
            pipe.llen(list);
        }
        pipe.zcard(&keys.processing)
            .zcard(&keys.delayed)
            .zcard(&keys.dead)
            .zcard(&keys.errors)
            .hgetall(&keys.stats)
            .cmd("TIME")
            .exists(&keys.paused);
        #[allow(clippy::type_complexity)]
        let (high, normal, low, processing, delayed, dead, errors, fields, time, paused): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            Vec<(Vec<u8>, Vec<u8>)>,
            (u64, u64),
            bool,
        ) = self.pipe("stats", &pipe).await?;
        let mut hash = HashMap::with_capacity(fields.len());
        let mut skipped_fields = Vec::new();
        for (field, value) in fields {
            let field = String::from_utf8_lossy(&field).into_owned();
            match integer(&value) {
                Some(value) => {
                    hash.insert(field, value);
                }
                None => skipped_fields.push(field),
            }
        }
        skipped_fields.sort();
        let get = |field: &str| hash.get(field).copied().unwrap_or(0).max(0) as u64;
        let mut histogram = [0u64; 41];
        for (i, slot) in histogram.iter_mut().enumerate() {
            *slot = get(&format!("h{i}"));
        }
        let timed: u64 = histogram.iter().sum();
        let now_ms = time.0 * 1000 + time.1 / 1000;
        let minute = now_ms / 60_000;
        let recent = |field: &str| {
            let at = get(field);
            at > 0 && now_ms.saturating_sub(at) <= super::THROTTLED_RECENTLY_MS
        };
        let throttled_now = if recent("throttled_rate_at") {
            Some(super::Throttle::Rate)
        } else if recent("throttled_concurrency_at") {
            Some(super::Throttle::Concurrency)
        } else {
            None
        };
        Ok(TopicStats {
            topic: topic.to_owned(),
            pending: [high, normal, low],
            processing,
            delayed,
            dead,
            parse_errors: errors,
            paused,
            completed: get("completed"),
            failed: get("failed"),
            expired: get("expired"),
            completed_last_minute: get(&format!("m{}", minute.saturating_sub(1))),
            processing_us: [
                get("dur_sum").checked_div(timed).unwrap_or(0),
                percentile(&histogram, timed, 0.5),
                percentile(&histogram, timed, 0.99),
            ],
            skipped_fields,
            rate_limited: get("rate_limited"),
            throttled_rate: get("throttled_rate"),
            throttled_concurrency: get("throttled_concurrency"),
            throttled_now,
            keyed: get("keyed"),
        })
    }

    /// A raw counter of the topic's stats hash (`completed`, `failed`,
    /// `retried`, `dead`, `expired`, `recovered`).
    pub async fn counter(&self, topic: &str, name: &str) -> Result<u64, Error> {
        let keys = self.keys(topic);
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&keys.stats).arg(name);
        let value: Option<Vec<u8>> = self.cmd("counter", &cmd).await?;
        match value {
            None => Ok(0),
            Some(value) => integer(&value)
                .map(|n| n.max(0) as u64)
                .ok_or_else(|| Error::Corrupt {
                    op: "reading a counter",
                    detail: format!(
                        "field `{name}` of `{}` is not an integer: {}",
                        keys.stats,
                        preview(&value, 64)
                    ),
                }),
        }
    }

    /// Dead-lettered jobs, newest first, skipping `offset`. An entry that
    /// cannot be read is returned in its place as an [`UnreadableEntry`].
    pub async fn dead_letters(
        &self,
        topic: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Result<DeadJob, UnreadableEntry>>, Error> {
        let page = self.page(topic, Store::Dead, offset, limit).await?;
        Ok(page
            .iter()
            .map(|(member, score)| dead_job(member, *score))
            .collect())
    }

    /// Entries of `store`, newest first, with their scores.
    async fn page(
        &self,
        topic: &str,
        store: Store,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, f64)>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZREVRANGE");
        cmd.arg(store.key(&self.keys(topic)))
            .arg(offset)
            .arg(offset + limit - 1)
            .arg("WITHSCORES");
        self.cmd(store.place(), &cmd).await
    }

    /// Finds the dead-letter entry of job `id` (newest if several).
    async fn find_dead(&self, topic: &str, id: &str) -> Result<(Vec<u8>, DeadJob), Error> {
        let mut offset = 0;
        loop {
            let page = self.page(topic, Store::Dead, offset, PAGE).await?;
            for (member, score) in &page {
                if let Ok(job) = dead_job(member, *score) {
                    if job.envelope.id() == id {
                        return Ok((member.clone(), job));
                    }
                }
            }
            if page.len() < PAGE {
                return Err(not_found(topic, id, Store::Dead));
            }
            offset += PAGE;
        }
    }

    /// The dead-lettered job `id`.
    pub async fn dead_letter(&self, topic: &str, id: &str) -> Result<DeadJob, Error> {
        Ok(self.find_dead(topic, id).await?.1)
    }

    /// Runs the retry script of `store` over exact `members`, which must be
    /// [retryable](Store::retryable). `strict` (parse-error store only):
    /// move all of them or none.
    pub(super) async fn retry_members(
        &self,
        topic: &str,
        store: Store,
        members: &[Vec<u8>],
        strict: bool,
    ) -> Result<RetryCall, Error> {
        let keys = self.keys(topic);
        let mut invocation = match store {
            Store::Dead => scripts::DEAD_RETRY.prepare_invoke(),
            Store::Errors => scripts::PARSE_ERROR_RETRY.prepare_invoke(),
        };
        invocation
            .key(store.key(&keys))
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.index);
        match store {
            Store::Dead => {
                for member in members {
                    invocation.arg(member.as_slice());
                }
                let (moved, busy) = self.run("dead-letter retry", &invocation).await?;
                Ok(RetryCall {
                    moved,
                    busy,
                    ..RetryCall::default()
                })
            }
            Store::Errors => {
                invocation.arg(if strict { "1" } else { "0" });
                for member in members {
                    invocation.arg(member.as_slice());
                }
                let (moved, busy, invalid, missing) =
                    self.run("parse-error retry", &invocation).await?;
                Ok(RetryCall {
                    moved,
                    busy,
                    invalid,
                    missing,
                })
            }
        }
    }

    /// Re-enqueues the dead-lettered job `id` as a new run (attempt 1 again,
    /// at the back of its priority list).
    pub async fn retry_dead(&self, topic: &str, id: &str) -> Result<(), Error> {
        let (entry, _) = self.find_dead(topic, id).await?;
        let call = self
            .retry_members(topic, Store::Dead, &[entry], false)
            .await?;
        if !call.busy.is_empty() {
            return Err(Error::DuplicateJobId {
                topic: topic.to_owned(),
                id: call.busy.join(", "),
            });
        }
        if call.moved == 0 {
            return Err(not_found(topic, id, Store::Dead));
        }
        Ok(())
    }

    /// Re-enqueues every readable dead-lettered job of `topic`, oldest
    /// first.
    ///
    /// Atomic per page, not as a whole: the entries present when the call
    /// starts are read 1,000 at a time, and each page moves in one script
    /// call. Unreadable entries never fail a call: they stay, counted in
    /// [`Retried::unreadable`], as do jobs whose explicit id a live job
    /// holds ([`Retried::busy`]). If Redis fails between pages, the pages
    /// before are queued again and the rest stay dead: calling again
    /// retries exactly the rest.
    pub async fn retry_all_dead(&self, topic: &str) -> Result<Retried, Error> {
        self.retry_all(topic, Store::Dead).await
    }

    /// Re-enqueues every entry of `store` present when the call starts.
    async fn retry_all(&self, topic: &str, store: Store) -> Result<Retried, Error> {
        // Only the entries present when the call starts: a job retried here
        // that a worker dead-letters again meanwhile is not retried a second
        // time (nor kept in a loop that never ends).
        let keys = self.keys(topic);
        let key = store.key(&keys);
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(key).arg(-1).arg(-1).arg("WITHSCORES");
        let newest: Vec<(Vec<u8>, String)> = self.cmd(store.place(), &cmd).await?;
        let mut report = Retried::default();
        let Some((_, newest)) = newest.into_iter().next() else {
            return Ok(report);
        };
        // Entries that stay (unreadable, or busy ids) are paged past.
        let mut skipped = 0;
        loop {
            // Oldest first, so they run in the order they were stored.
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(key)
                .arg("-inf")
                .arg(&newest)
                .arg("LIMIT")
                .arg(skipped)
                .arg(PAGE);
            let page: Vec<Vec<u8>> = self.cmd(store.place(), &cmd).await?;
            if page.is_empty() {
                return Ok(report);
            }
            let (movable, unreadable): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
                page.into_iter().partition(|m| store.retryable(m));
            report.unreadable += unreadable.len();
            skipped += unreadable.len();
            if movable.is_empty() {
                continue;
            }
            let call = match self.retry_members(topic, store, &movable, false).await {
                Ok(call) => call,
                Err(error) => {
                    tracing::warn!(
                        topic,
                        store = store.place(),
                        moved = report.moved,
                        %error,
                        "retry stopped part way: the entries counted as moved are queued again, the rest stay"
                    );
                    return Err(error);
                }
            };
            if !call.busy.is_empty() {
                tracing::warn!(
                    topic,
                    ids = %call.busy.join(", "),
                    "entries not retried: a queued or running job holds the same id"
                );
            }
            report.moved += call.moved;
            report.unreadable += call.invalid;
            skipped += call.busy.len() + call.invalid;
            report.busy.extend(call.busy);
        }
    }

    /// Deletes every dead-lettered job of `topic`, unreadable entries too;
    /// returns how many.
    pub async fn purge_dead(&self, topic: &str) -> Result<u64, Error> {
        self.purge_state(topic, State::Dead).await
    }

    /// Parse-error entries, newest first, skipping `offset`. An entry that
    /// cannot be read is returned in its place as an [`UnreadableEntry`].
    pub async fn parse_errors(
        &self,
        topic: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Result<ParseErrorEntry, UnreadableEntry>>, Error> {
        let page = self.page(topic, Store::Errors, offset, limit).await?;
        Ok(page
            .iter()
            .map(|(member, score)| parse_error_entry(member, *score))
            .collect())
    }

    /// The newest parse-error entry at each address (see the module docs),
    /// with its exact member; `JobNotFound` names the first address that
    /// matches nothing.
    #[allow(clippy::type_complexity)]
    async fn find_parse_errors(
        &self,
        topic: &str,
        addresses: &[&str],
    ) -> Result<Vec<(Vec<u8>, Result<ParseErrorEntry, UnreadableEntry>)>, Error> {
        let mut found: Vec<Option<(Vec<u8>, Result<ParseErrorEntry, UnreadableEntry>)>> =
            vec![None; addresses.len()];
        let mut offset = 0;
        while found.iter().any(Option::is_none) {
            let page = self.page(topic, Store::Errors, offset, PAGE).await?;
            for (member, score) in &page {
                let entry = parse_error_entry(member, *score);
                let (digest, id) = match &entry {
                    Ok(entry) => (entry.digest(), entry.envelope().ok()),
                    Err(entry) => (entry.digest(), None),
                };
                let id = id.as_ref().map(Envelope::id);
                for (slot, address) in found.iter_mut().zip(addresses) {
                    if slot.is_none() && (digest == *address || id == Some(*address)) {
                        *slot = Some((member.clone(), entry.clone()));
                    }
                }
            }
            if page.len() < PAGE {
                break;
            }
            offset += PAGE;
        }
        found
            .into_iter()
            .zip(addresses)
            .map(|(slot, address)| slot.ok_or_else(|| not_found(topic, address, Store::Errors)))
            .collect()
    }

    /// The parse-error entry at `address` (a job id or a digest, see the
    /// module docs), readable or not.
    pub async fn parse_error(
        &self,
        topic: &str,
        address: &str,
    ) -> Result<Result<ParseErrorEntry, UnreadableEntry>, Error> {
        let mut found = self.find_parse_errors(topic, &[address]).await?;
        Ok(found.remove(0).1)
    }

    /// Re-enqueues the parse-error entries at `addresses` as new runs
    /// (attempt 1, at the back of their priority lists), all of them or
    /// none: one script call, after every address is found and checked.
    /// Fails with `NotRetryable` for an entry whose bytes are not a job
    /// envelope, `DuplicateJobId` when a queued or running job holds an
    /// entry's explicit id, `JobNotFound` for an unknown address.
    pub async fn retry_parse_errors(
        &self,
        topic: &str,
        addresses: &[&str],
    ) -> Result<usize, Error> {
        if addresses.is_empty() {
            return Ok(0);
        }
        let found = self.find_parse_errors(topic, addresses).await?;
        let mut members = Vec::with_capacity(found.len());
        let mut seen = HashSet::new();
        for ((member, entry), address) in found.into_iter().zip(addresses) {
            let reason = match &entry {
                Err(unreadable) => Some(format!("the entry cannot be read: {}", unreadable.reason)),
                Ok(entry) => entry
                    .envelope()
                    .err()
                    .map(|e| format!("its bytes are not a job envelope ({e})")),
            };
            if let Some(reason) = reason {
                return Err(Error::NotRetryable {
                    topic: topic.to_owned(),
                    address: (*address).to_owned(),
                    reason,
                });
            }
            if seen.insert(member.clone()) {
                members.push(member);
            }
        }
        let call = self
            .retry_members(topic, Store::Errors, &members, true)
            .await?;
        if !call.busy.is_empty() {
            return Err(Error::DuplicateJobId {
                topic: topic.to_owned(),
                id: call.busy.join(", "),
            });
        }
        if call.missing > 0 || call.invalid > 0 {
            // Removed or changed between the lookup and the script.
            return Err(Error::Corrupt {
                op: "parse-error retry",
                detail: format!(
                    "topic `{topic}`: {} of the entries changed meanwhile; nothing was retried",
                    call.missing + call.invalid
                ),
            });
        }
        Ok(call.moved)
    }

    /// Re-enqueues every parse-error entry of `topic` whose bytes are a job
    /// envelope, oldest first.
    ///
    /// Atomic per page, not as a whole: the entries present when the call
    /// starts are read 1,000 at a time, and each page moves in one script
    /// call, all of its retryable entries or none. Unreadable entries and
    /// entries that are not envelopes never fail a call; they stay, counted
    /// in [`Retried::unreadable`], as do entries whose explicit id a live job
    /// holds ([`Retried::busy`]). If Redis fails between pages, the pages
    /// before are queued again and the rest stay: calling again retries
    /// exactly the rest.
    pub async fn retry_all_parse_errors(&self, topic: &str) -> Result<Retried, Error> {
        self.retry_all(topic, Store::Errors).await
    }

    /// Deletes every parse-error entry of `topic`; returns how many.
    pub async fn purge_parse_errors(&self, topic: &str) -> Result<u64, Error> {
        self.purge_state(topic, State::ParseError).await
    }

    /// Applies age retention to the dead-letter and parse-error stores and
    /// drops old per-minute counters.
    pub async fn trim(&self, topic: &str) -> Result<Trimmed, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::TRIM.prepare_invoke();
        invocation
            .key(&keys.dead)
            .key(&keys.errors)
            .key(&keys.stats)
            .key(&keys.index)
            .arg(ms(self.inner.dead_max_age))
            .arg(ms(self.inner.errors_max_age));
        let (dead, parse_errors): (u64, u64) = self.run("trim", &invocation).await?;
        Ok(Trimmed { dead, parse_errors })
    }
}

fn not_found(topic: &str, id: &str, store: Store) -> Error {
    Error::JobNotFound {
        topic: topic.to_owned(),
        id: id.to_owned(),
        place: store.place(),
    }
}

/// A stats-hash value as an integer, if it is one.
fn integer(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Up to `max` bytes of `bytes`, printable ASCII as is and the rest escaped
/// (`\xff`), with the number of bytes left out.
fn preview(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        text.push_str(&format!("… ({} more bytes)", bytes.len() - shown.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_bucket() {
        let mut h = [0u64; 41];
        h[3] = 98; // 8..16 us
        h[10] = 2; // 1024..2048 us
        assert_eq!(percentile(&h, 100, 0.5), 12);
        assert_eq!(percentile(&h, 100, 0.99), 1536);
        assert_eq!(percentile(&h, 0, 0.5), 0);
    }

    #[test]
    fn decodes_entries() {
        // As cmsgpack writes it: a fixarray of a uint64 and two strings, the
        // second one not UTF-8.
        let mut buf = vec![0x93, 0xcf];
        buf.extend_from_slice(&1_763_800_000_123u64.to_be_bytes());
        buf.extend_from_slice(b"\xa4boom\xa2\xff\x00");
        let (at, error, raw) = decode_entry(&buf).unwrap();
        assert_eq!(
            (at, error.as_str(), raw),
            (1_763_800_000_123, "boom", vec![0xff, 0])
        );
        assert!(decode_entry(b"\x01").is_err());
        let mut deep = vec![0x91; 100_000];
        deep.push(0xc0);
        assert!(decode_entry(&deep).is_err(), "a nested entry is refused");
        let mut trailing = buf.clone();
        trailing.push(0);
        assert!(decode_entry(&trailing)
            .unwrap_err()
            .contains("1 bytes follow"));
        let mut binary = Vec::new();
        rmpv::encode::write_value(
            &mut binary,
            &rmpv::Value::Array(vec![
                1u64.into(),
                "boom".into(),
                rmpv::Value::Binary(vec![1]),
            ]),
        )
        .unwrap();
        assert!(decode_entry(&binary).is_err(), "the scripts cannot read it");
    }

    #[test]
    fn digests_are_fnv1a() {
        assert_eq!(digest(b""), "@cbf29ce484222325");
        assert_eq!(digest(b"a"), "@af63dc4c8601ec8c");
    }
}
