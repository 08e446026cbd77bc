//! Administration: dead-letter queue, parse-error store, statistics, topic
//! registry and retention trimming. None of it is on the hot path.

use std::collections::HashMap;

use super::{ms, Broker, DeadJob, ParseErrorEntry, TopicStats};
use crate::envelope::Envelope;
use crate::keys::topics_key;
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

/// Decodes a retention entry `[at ms, error, bytes]` written by the scripts.
fn decode_entry(entry: &[u8]) -> Option<(u64, String, Vec<u8>)> {
    let value = rmpv::decode::read_value(&mut &entry[..]).ok()?;
    let rmpv::Value::Array(items) = value else {
        return None;
    };
    let [at, error, bytes] = <[rmpv::Value; 3]>::try_from(items).ok()?;
    let at = at.as_u64().or_else(|| at.as_f64().map(|f| f as u64))?;
    let text = |v: rmpv::Value| -> Option<Vec<u8>> {
        match v {
            rmpv::Value::String(s) => Some(s.into_bytes()),
            rmpv::Value::Binary(b) => Some(b),
            _ => None,
        }
    };
    let error = String::from_utf8_lossy(&text(error)?).into_owned();
    Some((at, error, text(bytes)?))
}

fn dead_job(topic: &str, entry: &[u8]) -> Result<DeadJob, Error> {
    let corrupt = |detail: String| Error::Corrupt {
        op: "reading the dead-letter queue",
        detail: format!("topic `{topic}`: {detail}"),
    };
    let (died_at_ms, error, bytes) =
        decode_entry(entry).ok_or_else(|| corrupt("an entry is not [time, error, job]".into()))?;
    let envelope = Envelope::parse(bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok(DeadJob {
        envelope,
        error,
        died_at_ms,
    })
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
    /// Records topics in the topic set (`<prefix>:topics`), so tools can
    /// list them.
    pub async fn register_topics(&self, topics: &[&str]) -> Result<(), Error> {
        if topics.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("SADD");
        cmd.arg(topics_key(self.prefix())).arg(topics);
        self.cmd::<()>("register_topics", &cmd).await
    }

    /// Known topics, sorted.
    pub async fn topics(&self) -> Result<Vec<String>, Error> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(topics_key(self.prefix()));
        let mut topics: Vec<String> = self.cmd("topics", &cmd).await?;
        topics.sort();
        Ok(topics)
    }

    /// Depths, counters and processing times of one topic.
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
            .cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (high, normal, low, processing, delayed, dead, errors, hash, time): (
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            HashMap<String, i64>,
            (u64, u64),
        ) = self.pipe("stats", &pipe).await?;
        let get = |field: &str| hash.get(field).copied().unwrap_or(0).max(0) as u64;
        let mut histogram = [0u64; 41];
        for (i, slot) in histogram.iter_mut().enumerate() {
            *slot = get(&format!("h{i}"));
        }
        let timed: u64 = histogram.iter().sum();
        let minute = (time.0 * 1000 + time.1 / 1000) / 60_000;
        Ok(TopicStats {
            topic: topic.to_owned(),
            pending: [high, normal, low],
            processing,
            delayed,
            dead,
            parse_errors: errors,
            completed: get("completed"),
            failed: get("failed"),
            expired: get("expired"),
            completed_last_minute: get(&format!("m{}", minute.saturating_sub(1))),
            processing_us: [
                get("dur_sum").checked_div(timed).unwrap_or(0),
                percentile(&histogram, timed, 0.5),
                percentile(&histogram, timed, 0.99),
            ],
        })
    }

    /// A raw counter of the topic's stats hash (`completed`, `failed`,
    /// `retried`, `dead`, `expired`, `recovered`).
    pub async fn counter(&self, topic: &str, name: &str) -> Result<u64, Error> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&self.keys(topic).stats).arg(name);
        let value: Option<u64> = self.cmd("counter", &cmd).await?;
        Ok(value.unwrap_or(0))
    }

    /// Dead-lettered jobs, newest first, skipping `offset`.
    pub async fn dead_letters(
        &self,
        topic: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<DeadJob>, Error> {
        let entries = self.dead_entries(topic, offset, limit).await?;
        entries.iter().map(|entry| dead_job(topic, entry)).collect()
    }

    async fn dead_entries(
        &self,
        topic: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZREVRANGE");
        cmd.arg(&self.keys(topic).dead)
            .arg(offset)
            .arg(offset + limit - 1);
        self.cmd("dead_letters", &cmd).await
    }

    /// Finds the dead-letter entry of job `id` (newest if several).
    async fn find_dead(&self, topic: &str, id: &str) -> Result<(Vec<u8>, DeadJob), Error> {
        let mut offset = 0;
        loop {
            let page = self.dead_entries(topic, offset, PAGE).await?;
            for entry in &page {
                if let Ok(job) = dead_job(topic, entry) {
                    if job.envelope.id() == id {
                        return Ok((entry.clone(), job));
                    }
                }
            }
            if page.len() < PAGE {
                return Err(Error::JobNotFound {
                    topic: topic.to_owned(),
                    id: id.to_owned(),
                    place: "dead-letter queue",
                });
            }
            offset += PAGE;
        }
    }

    /// The dead-lettered job `id`.
    pub async fn dead_letter(&self, topic: &str, id: &str) -> Result<DeadJob, Error> {
        Ok(self.find_dead(topic, id).await?.1)
    }

    /// Re-enqueues dead entries; returns how many moved and the explicit ids
    /// that stayed because a live job holds them.
    async fn retry_entries(
        &self,
        topic: &str,
        entries: &[Vec<u8>],
    ) -> Result<(usize, Vec<String>), Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::DEAD_RETRY.prepare_invoke();
        invocation
            .key(&keys.dead)
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.ids)
            .key(&keys.wake);
        for entry in entries {
            invocation.arg(entry.as_slice());
        }
        self.run("dead-letter retry", &invocation).await
    }

    /// Re-enqueues the dead-lettered job `id` as a new run (attempt 1 again, at
    /// the back of its priority list).
    pub async fn retry_dead(&self, topic: &str, id: &str) -> Result<(), Error> {
        let (entry, _) = self.find_dead(topic, id).await?;
        let (moved, busy) = self.retry_entries(topic, &[entry]).await?;
        if !busy.is_empty() {
            return Err(Error::DuplicateJobId {
                topic: topic.to_owned(),
                id: busy.join(", "),
            });
        }
        if moved == 0 {
            return Err(Error::JobNotFound {
                topic: topic.to_owned(),
                id: id.to_owned(),
                place: "dead-letter queue",
            });
        }
        Ok(())
    }

    /// Re-enqueues every dead-lettered job of `topic`; returns how many.
    pub async fn retry_all_dead(&self, topic: &str) -> Result<usize, Error> {
        // Only the jobs dead when the call starts: one retried here that a
        // worker dead-letters again meanwhile is not retried a second time
        // (nor kept in a loop that never ends).
        let keys = self.keys(topic);
        let dead = &keys.dead;
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(dead).arg(-1).arg(-1).arg("WITHSCORES");
        let newest: Vec<(Vec<u8>, String)> = self.cmd("dead-letter retry", &cmd).await?;
        let Some((_, newest)) = newest.into_iter().next() else {
            return Ok(0);
        };
        let mut total = 0;
        // Entries whose explicit id a live job holds stay dead; page past them.
        let mut skipped = 0;
        loop {
            // Oldest first, so they run in the order they died.
            let mut cmd = redis::cmd("ZRANGEBYSCORE");
            cmd.arg(dead)
                .arg("-inf")
                .arg(&newest)
                .arg("LIMIT")
                .arg(skipped)
                .arg(PAGE);
            let page: Vec<Vec<u8>> = self.cmd("dead-letter retry", &cmd).await?;
            if page.is_empty() {
                return Ok(total);
            }
            let (moved, busy) = self.retry_entries(topic, &page).await?;
            if !busy.is_empty() {
                tracing::warn!(
                    topic,
                    ids = %busy.join(", "),
                    "dead jobs not retried: a queued or running job holds the same id"
                );
            }
            total += moved;
            skipped += busy.len();
            if moved + busy.len() == 0 {
                return Ok(total);
            }
        }
    }

    /// Deletes every dead-lettered job of `topic`; returns how many.
    pub async fn purge_dead(&self, topic: &str) -> Result<u64, Error> {
        self.purge(topic, &self.keys(topic).dead, "dead-letter purge")
            .await
    }

    /// Parse-error entries, newest first, skipping `offset`.
    pub async fn parse_errors(
        &self,
        topic: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ParseErrorEntry>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZREVRANGE");
        cmd.arg(&self.keys(topic).errors)
            .arg(offset)
            .arg(offset + limit - 1);
        let entries: Vec<Vec<u8>> = self.cmd("parse_errors", &cmd).await?;
        entries
            .iter()
            .map(|entry| {
                let (at_ms, error, raw) = decode_entry(entry).ok_or_else(|| Error::Corrupt {
                    op: "reading the parse-error store",
                    detail: format!("topic `{topic}`: an entry is not [time, error, bytes]"),
                })?;
                Ok(ParseErrorEntry { raw, error, at_ms })
            })
            .collect()
    }

    /// Deletes every parse-error entry of `topic`; returns how many.
    pub async fn purge_parse_errors(&self, topic: &str) -> Result<u64, Error> {
        self.purge(topic, &self.keys(topic).errors, "parse-error purge")
            .await
    }

    async fn purge(&self, _topic: &str, key: &str, op: &'static str) -> Result<u64, Error> {
        let mut pipe = redis::pipe();
        pipe.atomic().zcard(key).del(key);
        let (count, _): (u64, u64) = self.pipe(op, &pipe).await?;
        Ok(count)
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
            .arg(ms(self.inner.dead_max_age))
            .arg(ms(self.inner.errors_max_age));
        let (dead, parse_errors): (u64, u64) = self.run("trim", &invocation).await?;
        Ok(Trimmed { dead, parse_errors })
    }
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
        let mut buf = Vec::new();
        rmpv::encode::write_value(
            &mut buf,
            &rmpv::Value::Array(vec![
                1_763_800_000_123u64.into(),
                "boom".into(),
                rmpv::Value::Binary(vec![0xff, 0]),
            ]),
        )
        .unwrap();
        let (at, error, raw) = decode_entry(&buf).unwrap();
        assert_eq!(
            (at, error.as_str(), raw),
            (1_763_800_000_123, "boom", vec![0xff, 0])
        );
        assert!(decode_entry(b"\x01").is_none());
    }
}
