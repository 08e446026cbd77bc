//! Unique jobs: at most one job per unique key while its lock is held.
//!
//! A unique job takes the STRING `{P:T}:unique:<key>` (its value: the job's
//! id; `PEXPIRE`: the lock's time to live, the safety bound) in the same
//! enqueue script that adds it, so concurrent enqueues of one key make
//! exactly one job. Jobs whose lock is released by a transition (every mode
//! but [`UniqueMode::Window`]) carry envelope flag 16 and an entry in the
//! HASH `{P:T}:locks` (job id -> mode and key, and for debounce the queued
//! envelope); the scripts that end a job release the lock only while it
//! still holds that job's id. Plain jobs pay one flag test per envelope.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use crate::JobId;

/// When a unique job's lock is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UniqueMode {
    /// When a worker leases the job: a duplicate can be enqueued while the
    /// first one runs.
    UntilStarted,
    /// When the job ends: acked, dead, cancelled, deleted or purged (the
    /// default). Retries and lease recovery keep the lock.
    UntilCompleted,
    /// Only by its time to live: at most one job per key per window
    /// (throttle), however fast the first one ran.
    Window,
    /// The job waits `ttl`; a duplicate enqueued while it still waits
    /// replaces its payload and restarts the wait. The lock is released
    /// when a worker leases the job.
    Debounce,
}

impl UniqueMode {
    /// The mode's name in the attribute and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            UniqueMode::UntilStarted => "until_started",
            UniqueMode::UntilCompleted => "until_completed",
            UniqueMode::Window => "window",
            UniqueMode::Debounce => "debounce",
        }
    }

    /// The byte the scripts know the mode by.
    pub(crate) fn code(self) -> &'static str {
        match self {
            UniqueMode::UntilStarted => "s",
            UniqueMode::UntilCompleted => "c",
            UniqueMode::Window => "w",
            UniqueMode::Debounce => "d",
        }
    }

    /// The mode of script code `code`.
    pub(crate) fn from_code(code: u8) -> Option<UniqueMode> {
        match code {
            b's' => Some(UniqueMode::UntilStarted),
            b'c' => Some(UniqueMode::UntilCompleted),
            b'w' => Some(UniqueMode::Window),
            b'd' => Some(UniqueMode::Debounce),
            _ => None,
        }
    }
}

impl fmt::Display for UniqueMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lock's time to live when the attribute gives none.
pub const DEFAULT_UNIQUE_TTL: Duration = Duration::from_secs(3600);

/// A task's uniqueness, from `#[rmq::task(unique = ...)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UniquePolicy {
    /// When the lock is released.
    pub mode: UniqueMode,
    /// The lock's time to live: the window ([`UniqueMode::Window`]), the
    /// wait ([`UniqueMode::Debounce`]), or the safety bound after which a
    /// lock no transition released expires (counted from when the job is
    /// due).
    pub ttl: Duration,
    /// The payload fields the key is made of, in order; `None`: the whole
    /// payload.
    pub fields: Option<&'static [&'static str]>,
}

impl UniquePolicy {
    /// Until completed, the default time to live, the whole payload.
    pub const DEFAULT: UniquePolicy = UniquePolicy {
        mode: UniqueMode::UntilCompleted,
        ttl: DEFAULT_UNIQUE_TTL,
        fields: None,
    };
}

/// Per-call uniqueness (see [`crate::Enqueue::unique`]): overrides the
/// task's mode and time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Unique {
    /// When the lock is released.
    pub mode: UniqueMode,
    /// The lock's time to live.
    pub ttl: Duration,
}

/// What an enqueue did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Enqueued {
    /// A new job was enqueued.
    New(JobId),
    /// A job with the same unique key holds the lock: nothing was enqueued;
    /// this is that job's id.
    Duplicate(JobId),
    /// Debounce: the waiting job with the same unique key now has this
    /// payload and waits again from now; this is its id.
    Replaced(JobId),
}

impl Enqueued {
    /// The job's id (the existing job's, for a duplicate).
    pub fn id(&self) -> &JobId {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) | Enqueued::Replaced(id) => id,
        }
    }

    /// The job's id, owned.
    pub fn into_id(self) -> JobId {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) | Enqueued::Replaced(id) => id,
        }
    }

    /// Whether nothing was enqueued because a job with the same unique key
    /// exists.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Enqueued::Duplicate(_))
    }

    /// Whether a new job was enqueued.
    pub fn is_new(&self) -> bool {
        matches!(self, Enqueued::New(_))
    }
}

impl Deref for Enqueued {
    type Target = JobId;

    fn deref(&self) -> &JobId {
        self.id()
    }
}

impl From<Enqueued> for JobId {
    fn from(enqueued: Enqueued) -> JobId {
        enqueued.into_id()
    }
}

impl PartialEq<JobId> for Enqueued {
    fn eq(&self, other: &JobId) -> bool {
        self.id() == other
    }
}

impl fmt::Display for Enqueued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enqueued::New(id) => write!(f, "{id}"),
            Enqueued::Duplicate(id) => write!(f, "{id} (duplicate)"),
            Enqueued::Replaced(id) => write!(f, "{id} (replaced)"),
        }
    }
}

/// The lock one unique enqueue takes, resolved from the task's policy and
/// the call's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueLock {
    /// When it is released.
    pub mode: UniqueMode,
    /// The part of the lock's key after `{P:T}:unique:`.
    pub key: String,
    /// Its time to live.
    pub ttl: Duration,
}

/// Longest per-call key used as it is; longer ones are digested.
const MAX_PLAIN_KEY: usize = 128;

/// The key of an explicit per-call unique key: the text itself, or its
/// digest when it is longer than 128 bytes.
pub fn explicit_key(key: &str) -> String {
    if key.len() <= MAX_PLAIN_KEY {
        key.to_owned()
    } else {
        digest(key.as_bytes())
    }
}

/// The key of `payload` (as stored, MessagePack with field names): the
/// digest of the whole payload, or of the values of `fields` in order.
pub fn payload_key(payload: &[u8], fields: Option<&[&str]>) -> Result<String, String> {
    let Some(fields) = fields else {
        return Ok(digest(payload));
    };
    crate::codec::check_depth(payload).map_err(|e| e.to_string())?;
    let value = rmpv::decode::read_value(&mut &payload[..]).map_err(|e| e.to_string())?;
    let rmpv::Value::Map(entries) = value else {
        return Err("the payload is not a map of fields".to_owned());
    };
    let mut picked = Vec::with_capacity(fields.len());
    for field in fields {
        let value = entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(field))
            .map(|(_, v)| v.clone())
            .unwrap_or(rmpv::Value::Nil);
        picked.push(value);
    }
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &rmpv::Value::Array(picked))
        .map_err(|e| e.to_string())?;
    Ok(digest(&bytes))
}

/// 128-bit XXH3 as 32 hex digits: stable across versions and processes.
fn digest(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Unique locks of the fake and inline clients, in memory, with the same
/// rules as the scripts (wall clock instead of Redis time).
#[derive(Default)]
pub(crate) struct LocalLocks(
    std::sync::Mutex<std::collections::HashMap<(String, String), (JobId, std::time::Instant)>>,
);

impl LocalLocks {
    /// The job holding the live lock of `key` on `topic`, if any.
    pub(crate) fn holder(&self, topic: &str, key: &str) -> Option<JobId> {
        let locks = self.lock();
        locks
            .get(&(topic.to_owned(), key.to_owned()))
            .filter(|(_, until)| *until > std::time::Instant::now())
            .map(|(id, _)| id.clone())
    }

    /// Gives the lock of `key` on `topic` to `id` for `ttl`.
    pub(crate) fn take(&self, topic: &str, key: &str, id: &JobId, ttl: Duration) {
        let until = std::time::Instant::now() + ttl;
        self.lock()
            .insert((topic.to_owned(), key.to_owned()), (id.clone(), until));
    }

    /// Releases the lock of `key` on `topic` if `id` holds it.
    pub(crate) fn release(&self, topic: &str, key: &str, id: &JobId) {
        let mut locks = self.lock();
        let slot = (topic.to_owned(), key.to_owned());
        if locks.get(&slot).is_some_and(|(holder, _)| holder == id) {
            locks.remove(&slot);
        }
    }

    /// Forgets every lock.
    pub(crate) fn clear(&self) {
        self.lock().clear()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<(String, String), (JobId, std::time::Instant)>,
    > {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct P {
        a: u32,
        b: String,
        c: bool,
    }

    #[test]
    fn keys_of_chosen_fields_ignore_the_others() {
        let one = crate::codec::encode(&P {
            a: 1,
            b: "x".into(),
            c: true,
        })
        .unwrap();
        let two = crate::codec::encode(&P {
            a: 1,
            b: "x".into(),
            c: false,
        })
        .unwrap();
        let fields: &[&str] = &["a", "b"];
        assert_eq!(
            payload_key(&one, Some(fields)).unwrap(),
            payload_key(&two, Some(fields)).unwrap()
        );
        assert_ne!(
            payload_key(&one, None).unwrap(),
            payload_key(&two, None).unwrap()
        );
        assert_ne!(
            payload_key(&one, Some(&["a"])).unwrap(),
            payload_key(&one, Some(&["b"])).unwrap()
        );
        assert_eq!(payload_key(&one, None).unwrap().len(), 32);
    }

    #[test]
    fn explicit_keys_stay_readable_unless_long() {
        assert_eq!(explicit_key("order-42"), "order-42");
        assert_eq!(explicit_key(&"x".repeat(500)).len(), 32);
    }

    #[test]
    fn enqueued_reads_like_its_id() {
        let new = Enqueued::New(JobId::new("7"));
        let dup = Enqueued::Duplicate(JobId::new("7"));
        assert_eq!(new.as_str(), "7");
        assert!(dup.is_duplicate() && !new.is_duplicate());
        assert_eq!(dup, JobId::new("7"));
        assert_eq!(JobId::from(dup), JobId::new("7"));
    }
}
