//! Unique locks, for operators: show, list and clear them (`worker unique`).

use super::Broker;
use crate::{Error, JobId, UniqueMode};

/// One unique lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock's key after `{P:T}:unique:`.
    pub key: String,
    /// The job holding it; `None` when it has expired or been cleared.
    pub job: Option<JobId>,
    /// Milliseconds left of its time to live.
    pub ttl_ms: Option<u64>,
    /// Its mode, when the holder's entry in `{P:T}:locks` names it (every
    /// mode but window).
    pub mode: Option<UniqueMode>,
}

/// Most lock entries [`Broker::unique_locks`] reads.
const LIST_MAX: usize = 10_000;

impl Broker {
    /// The unique lock `key` (after `{P:T}:unique:`) of `topic`.
    pub async fn unique_lock(&self, topic: &str, key: &str) -> Result<LockInfo, Error> {
        let keys = self.keys(topic);
        let lock = keys.unique(key);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&lock).cmd("PTTL").arg(&lock);
        let (job, ttl): (Option<String>, i64) = self.pipe("reading a unique lock", &pipe).await?;
        let mode = match &job {
            Some(job) => {
                let entry: Option<Vec<u8>> = self
                    .cmd(
                        "reading a unique lock",
                        redis::cmd("HGET").arg(&keys.locks).arg(job),
                    )
                    .await?;
                entry.and_then(|e| decode_entry(&e)).map(|(mode, _)| mode)
            }
            None => None,
        };
        Ok(LockInfo {
            key: key.to_owned(),
            job: job.map(JobId::new),
            ttl_ms: u64::try_from(ttl).ok(),
            mode: mode.or(Some(UniqueMode::Window).filter(|_| ttl >= 0)),
        })
    }

    /// Deletes the unique lock `key` of `topic`, so the next enqueue of the
    /// key makes a new job; whether it was there. The job that held it runs
    /// as before.
    pub async fn clear_unique_lock(&self, topic: &str, key: &str) -> Result<bool, Error> {
        let lock = self.keys(topic).unique(key);
        let gone: u64 = self
            .cmd("clearing a unique lock", redis::cmd("DEL").arg(&lock))
            .await?;
        Ok(gone == 1)
    }

    /// The locks of `topic`'s jobs that a transition releases (every mode
    /// but window, whose locks only expire), up to 10,000.
    pub async fn unique_locks(&self, topic: &str) -> Result<Vec<LockInfo>, Error> {
        let keys = self.keys(topic);
        let mut cursor = 0u64;
        let mut found = Vec::new();
        loop {
            let (next, entries): (u64, Vec<(String, Vec<u8>)>) = self
                .cmd(
                    "listing unique locks",
                    redis::cmd("HSCAN")
                        .arg(&keys.locks)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(500),
                )
                .await?;
            for (job, entry) in entries {
                if let Some((mode, key)) = decode_entry(&entry) {
                    found.push((JobId::new(job), mode, key));
                }
            }
            cursor = next;
            if cursor == 0 || found.len() >= LIST_MAX {
                break;
            }
        }
        found.truncate(LIST_MAX);
        let mut locks = Vec::with_capacity(found.len());
        for chunk in found.chunks(200) {
            let mut pipe = redis::pipe();
            for (_, _, key) in chunk {
                let lock = keys.unique(key);
                pipe.cmd("GET").arg(&lock).cmd("PTTL").arg(&lock);
            }
            let replies: Vec<(Option<String>, i64)> =
                self.pipe("listing unique locks", &pipe).await?;
            for ((job, mode, key), (holder, ttl)) in chunk.iter().zip(replies) {
                // A lock that expired, or was taken by a newer job, is not
                // this job's any more.
                let job = holder.filter(|h| h == job.as_str()).map(JobId::new);
                locks.push(LockInfo {
                    key: key.clone(),
                    job,
                    ttl_ms: u64::try_from(ttl).ok(),
                    mode: Some(*mode),
                });
            }
        }
        Ok(locks)
    }
}

/// Mode and key of an entry of `{P:T}:locks` (see `lua/common.lua`).
fn decode_entry(entry: &[u8]) -> Option<(UniqueMode, String)> {
    let mode = UniqueMode::from_code(*entry.first()?)?;
    let len = usize::from(u16::from_be_bytes([*entry.get(1)?, *entry.get(2)?]));
    let key = entry.get(3..3 + len)?;
    Some((mode, String::from_utf8_lossy(key).into_owned()))
}
