//! Job identity and the context a running job sees.

use std::fmt;
use std::time::SystemTime;

use crate::{Cancellation, Priority};
use serde::{Deserialize, Serialize};

/// The id of an enqueued job: unique within its topic. Generated ids are a
/// per-topic counter; an explicit id given with [`crate::Enqueue::job_id`] is
/// kept as it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        JobId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        JobId(id)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        JobId(id.to_owned())
    }
}

/// What a handler can know about the job it runs. Take it as a parameter of
/// type `JobContext` in a task function; it is injected by the worker and is
/// not part of the payload.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The job's id.
    pub id: JobId,
    /// The topic the job was enqueued on.
    pub topic: String,
    /// The attempt, counted from 1: 1 on the first run, 2 on the first
    /// retry, and so on (a job with `retries = 2` has at most 3 attempts).
    pub attempt: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// The job's priority.
    pub priority: Priority,
    /// When the job was enqueued (Redis server time for Redis-backed jobs).
    pub enqueued_at: SystemTime,
    /// Cancelled when the job is cancelled while it runs
    /// ([`crate::Client::cancel`], `worker cancel`): the worker learns of it
    /// at its next lease renewal. A handler that stops then (returning
    /// [`crate::TaskError::cancelled`] or any error) is not retried.
    pub cancellation: Cancellation,
}

impl PartialEq for JobContext {
    /// Compares what describes the job (the cancellation token is state,
    /// not identity).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.topic == other.topic
            && self.attempt == other.attempt
            && self.max_retries == other.max_retries
            && self.priority == other.priority
            && self.enqueued_at == other.enqueued_at
    }
}

impl Eq for JobContext {}

impl JobContext {
    /// Completes when the job is asked to cancel (at once if it was).
    /// Select on it beside the work to stop early:
    ///
    /// ```
    /// # async fn work() {}
    /// # async fn handler(ctx: rmq_core::JobContext) -> Result<(), rmq_core::TaskError> {
    /// tokio::select! {
    ///     () = work() => Ok(()),
    ///     () = ctx.cancelled() => Err(rmq_core::TaskError::cancelled()),
    /// }
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        self.cancellation.cancelled().await;
    }

    /// Whether the job was asked to cancel.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Whether this run is the last one the retry policy allows.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt > self.max_retries
    }
}
