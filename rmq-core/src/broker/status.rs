//! Status by id (`lua/status.lua`): where an indexed job is, read from the
//! topic's index in one consistent view.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::admin::decode_entry;
use super::Broker;
use crate::envelope::Envelope;
use crate::keys::TopicKeys;
use crate::{codec, scripts, Error, JobId, Priority};

/// Most entries of a pending list compared to find a job's position (one
/// LPOS, bounded so a deep queue costs a status read no more than this).
const POSITION_SCAN: u64 = 10_000;

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting in its priority's list.
    Pending {
        /// The list it waits in.
        priority: Priority,
        /// Jobs ahead of it in that list (for a topic with a `rate_key`, in
        /// its key's sub-queue), when it is among the first 10,000.
        position: Option<u64>,
    },
    /// Enqueued with a delay, due later.
    Delayed {
        /// When it becomes due (Redis server time).
        due: SystemTime,
    },
    /// Waiting for a retry after a failed attempt.
    Retrying {
        /// The attempt it will run as (2 for the first retry).
        attempt: u32,
        /// The error of the attempt that failed.
        error: String,
        /// When the retry is due.
        due: SystemTime,
    },
    /// Leased by a worker, its handler running.
    Processing {
        /// When the lease runs out unless renewed.
        deadline: SystemTime,
        /// The worker holding the lease (`worker ps`), when known.
        worker: Option<String>,
        /// Asked to cancel; the handler sees it at the next lease renewal.
        cancel_requested: bool,
    },
    /// Failed for good, in the dead-letter queue.
    Dead {
        /// The last error.
        error: String,
        /// When it died.
        at: SystemTime,
    },
    /// Cancelled, kept in the dead-letter queue.
    Cancelled {
        /// When it was cancelled.
        at: SystemTime,
    },
    /// Its payload did not decode; kept in the parse-error store.
    ParseError {
        /// The decoding error.
        error: String,
        /// When it was found.
        at: SystemTime,
    },
}

impl JobState {
    /// A short name: `pending`, `delayed`, `retrying`, `processing`,
    /// `dead`, `cancelled` or `parse_error`.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Pending { .. } => "pending",
            JobState::Delayed { .. } => "delayed",
            JobState::Retrying { .. } => "retrying",
            JobState::Processing { .. } => "processing",
            JobState::Dead { .. } => "dead",
            JobState::Cancelled { .. } => "cancelled",
            JobState::ParseError { .. } => "parse_error",
        }
    }
}

/// An indexed job found by id: where it is, its header and its payload
/// (`P` = the encoded MessagePack bytes, or a task's payload type through
/// [`crate::Client::job`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus<P = Bytes> {
    /// The job's id.
    pub id: JobId,
    /// Its topic.
    pub topic: String,
    /// Where it is.
    pub state: JobState,
    /// The attempt it runs (or ran last, or will run next) as, from 1.
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// Its priority.
    pub priority: Priority,
    /// When it was enqueued (Redis server time).
    pub enqueued_at: SystemTime,
    /// The error of its last failed attempt, if any is known.
    pub last_error: Option<String>,
    /// The payload.
    pub payload: P,
}

impl JobStatus {
    /// The payload decoded as `T`.
    pub fn decode<T: DeserializeOwned>(self) -> Result<JobStatus<T>, Error> {
        let payload = codec::decode(&self.payload).map_err(|e| Error::Corrupt {
            op: "status",
            detail: format!(
                "the payload of job {} on topic {} does not decode as {}: {e}",
                self.id,
                self.topic,
                std::any::type_name::<T>()
            ),
        })?;
        Ok(JobStatus {
            id: self.id,
            topic: self.topic,
            state: self.state,
            attempt: self.attempt,
            max_retries: self.max_retries,
            priority: self.priority,
            enqueued_at: self.enqueued_at,
            last_error: self.last_error,
            payload,
        })
    }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        op: "status",
        detail,
    }
}

impl Broker {
    /// Where job `id` of `topic` is, or `None` when the index does not hold
    /// it: never indexed (see [`crate::broker::EnqueueSpec::index`]),
    /// completed, dropped, or unknown. One script call; a pending job's
    /// position costs one LPOS over at most 10,000 entries.
    pub async fn status(&self, topic: &str, id: &str) -> Result<Option<JobStatus>, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::STATUS.prepare_invoke();
        locating_keys(&mut invocation, &keys)
            .key(&keys.errors)
            .key(&keys.cancel)
            .key(&keys.keyed)
            .arg(id)
            .arg(POSITION_SCAN);
        let reply: Vec<Vec<u8>> = self.run("status", &invocation).await?;
        let [state, member, note, score, asked] = match <[Vec<u8>; 5]>::try_from(reply) {
            Ok(fields) => fields,
            Err(reply) if reply.is_empty() => return Ok(None),
            Err(reply) => {
                return Err(corrupt(format!(
                    "the status script returned {} fields",
                    reply.len()
                )))
            }
        };
        let score: f64 = std::str::from_utf8(&score)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                corrupt("the status script returned a score that is no number".into())
            })?;
        let note = String::from_utf8_lossy(&note).into_owned();
        let state = state.first().copied().unwrap_or_default();
        // Retention entries hold the envelope after a time and an error.
        let (envelope, entry) = match state {
            b'D' | b'c' | b'E' => {
                let (when, error, env) = decode_entry(&member).map_err(corrupt)?;
                (env, Some((when, error)))
            }
            _ => (member, None),
        };
        let envelope = Envelope::parse(envelope).map_err(|e| {
            corrupt(format!(
                "the index record of job {id} on topic {topic} holds no envelope: {e}"
            ))
        })?;
        let when = score.max(0.0) as u64;
        let mut last_error = (!note.is_empty()).then_some(note);
        let state = match (state, entry) {
            (b'p', _) => JobState::Pending {
                priority: envelope.priority(),
                position: (score >= 0.0).then_some(when),
            },
            (b'd', _) if envelope.retries_used() > 0 => JobState::Retrying {
                attempt: envelope.attempt(),
                error: last_error.clone().unwrap_or_default(),
                due: at(when),
            },
            (b'd', _) => JobState::Delayed { due: at(when) },
            (b'x', _) => JobState::Processing {
                deadline: at(when),
                worker: last_error.take(),
                cancel_requested: asked == b"1",
            },
            (b'D', Some((died, error))) => {
                last_error = Some(error.clone());
                JobState::Dead {
                    error,
                    at: at(died),
                }
            }
            (b'c', Some((cancelled, _))) => JobState::Cancelled { at: at(cancelled) },
            (b'E', Some((found, error))) => JobState::ParseError {
                error,
                at: at(found),
            },
            (other, _) => {
                return Err(corrupt(format!(
                    "the index record of job {id} on topic {topic} has state {:?}",
                    char::from(other)
                )))
            }
        };
        Ok(Some(JobStatus {
            id: JobId::new(envelope.id()),
            topic: topic.to_owned(),
            attempt: envelope.attempt(),
            max_retries: envelope.max_retries(),
            priority: envelope.priority(),
            enqueued_at: at(envelope.enqueued_at_ms()),
            last_error,
            payload: envelope.payload_bytes(),
            state,
        }))
    }
}

/// The first keys of the scripts that find a job by id (`status.lua`,
/// `cancel.lua`): index, the three pending lists, delayed, processing, dead.
pub(super) fn locating_keys<'a>(
    invocation: &'a mut redis::ScriptInvocation<'static>,
    keys: &TopicKeys,
) -> &'a mut redis::ScriptInvocation<'static> {
    invocation
        .key(&keys.index)
        .key(&keys.pending[0])
        .key(&keys.pending[1])
        .key(&keys.pending[2])
        .key(&keys.delayed)
        .key(&keys.processing)
        .key(&keys.dead)
}
