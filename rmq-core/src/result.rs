//! Typed results: the [`Job`] handle an enqueue of a `keep_result` task
//! returns, and reading a kept result by id from any process.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::broker::{JobResult, JobStatus};
use crate::task::FromEnqueued;
use crate::{codec, Client, Enqueued, Error, JobId, Task};

/// Why a job's result is not there: the job died, was cancelled, is not
/// known, or did not finish in time; or Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The job failed for good (it is in the dead-letter queue).
    #[error("job `{id}` of topic `{topic}` died: {error}")]
    Dead {
        /// The job's topic.
        topic: String,
        /// Its id.
        id: JobId,
        /// Its last error (`expired` when it did not start within its TTL).
        error: String,
    },
    /// The job was cancelled.
    #[error("job `{id}` of topic `{topic}` was cancelled")]
    Cancelled {
        /// The job's topic.
        topic: String,
        /// Its id.
        id: JobId,
    },
    /// The job's payload did not decode into its task's type (it is in the
    /// parse-error store).
    #[error("job `{id}` of topic `{topic}` has a payload that does not decode: {error}")]
    Malformed {
        /// The job's topic.
        topic: String,
        /// Its id.
        id: JobId,
        /// The decoding error.
        error: String,
    },
    /// Nothing is known of the job: no such id, or it finished and its
    /// result expired (`keep_result`), was never kept (the task has no
    /// `keep_result`), or its dead-letter entry is gone.
    #[error("no result and no status for job `{id}` of topic `{topic}`: the id is unknown, or the job finished and its result expired or was never kept (is `keep_result` set on the task?)")]
    Unknown {
        /// The job's topic.
        topic: String,
        /// Its id.
        id: JobId,
    },
    /// The job had not finished when the wait ended.
    #[error("job `{id}` of topic `{topic}` did not finish within {after:?}")]
    Timeout {
        /// The job's topic.
        topic: String,
        /// Its id.
        id: JobId,
        /// How long the wait lasted.
        after: Duration,
    },
    /// Redis failed, or the stored result does not decode as the type asked
    /// for.
    #[error(transparent)]
    Error(#[from] Error),
}

/// A handle on an enqueued job whose result is kept (a task with
/// `keep_result`): its id and topic, and the typed result once it
/// completes. Returned by the enqueue of such a task; made for any job with
/// [`Client::handle`] or [`Job::new`].
pub struct Job<T> {
    id: JobId,
    topic: String,
    client: Client,
    output: PhantomData<fn() -> T>,
}

impl<T> Clone for Job<T> {
    fn clone(&self) -> Self {
        Job {
            id: self.id.clone(),
            topic: self.topic.clone(),
            client: self.client.clone(),
            output: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T> PartialEq for Job<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.topic == other.topic
    }
}

impl<T> FromEnqueued for Job<T> {
    fn from_enqueued(enqueued: Enqueued, topic: &'static str, client: &Client) -> Self {
        Job {
            id: enqueued.into_id(),
            topic: topic.to_owned(),
            client: client.clone(),
            output: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Job<T> {
    /// A handle on job `id` of `topic` whose result is a `T` (nothing checks
    /// that it is: a mismatch shows as an error when the result is read).
    pub fn new(client: Client, topic: impl Into<String>, id: JobId) -> Job<T> {
        Job {
            id,
            topic: topic.into(),
            client,
            output: PhantomData,
        }
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The job's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits until the job finishes and returns its result, or why there is
    /// none (died, cancelled, unknown). Woken by the worker, not polled;
    /// see [`Client::wait_result`].
    pub async fn result(&self) -> Result<T, ResultError> {
        self.client
            .wait_result(&self.topic, self.id.as_str(), None)
            .await
    }

    /// [`Job::result`], giving up with [`ResultError::Timeout`] after
    /// `timeout`.
    pub async fn result_timeout(&self, timeout: Duration) -> Result<T, ResultError> {
        self.client
            .wait_result(&self.topic, self.id.as_str(), Some(timeout))
            .await
    }

    /// The result if the job has completed, `None` while it is queued or
    /// running; no wait.
    pub async fn try_result(&self) -> Result<Option<T>, ResultError> {
        self.client.result(&self.topic, self.id.as_str()).await
    }

    /// Where the job is while it is queued, running, dead or cancelled
    /// (`None` once it completed: [`Job::try_result`] has its result).
    pub async fn status(&self) -> Result<Option<JobStatus>, Error> {
        self.client.status(&self.topic, self.id.as_str()).await
    }
}

impl Client {
    /// The result of job `id` of `topic` if it has completed, `None` while
    /// it is queued or running; no wait. Readable from any process while
    /// the result is kept (the task's `keep_result`).
    pub async fn result<T: DeserializeOwned>(
        &self,
        topic: &str,
        id: &str,
    ) -> Result<Option<T>, ResultError> {
        let now = self.job_result(topic, id).await?;
        typed(topic, id, now)
    }

    /// Waits until job `id` of `topic` finishes and returns its result, or
    /// why there is none; `timeout` bounds the wait (`None`: no bound). It
    /// blocks on the job's done list on a connection of its own, woken when
    /// the worker stores the result or reports the job dead or cancelled,
    /// and reads the job's status again every
    /// [`RESULT_RECHECK`](crate::broker::RESULT_RECHECK) for deaths no
    /// worker reports (a crashed worker's job out of attempts, an expired
    /// TTL, a cancel). A fake client's jobs never run: the wait ends at
    /// once unless [`Client::complete_fake`] gave the job a result.
    pub async fn wait_result<T: DeserializeOwned>(
        &self,
        topic: &str,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<T, ResultError> {
        let end = self.wait_job_result(topic, id, timeout).await?;
        let after = timeout.unwrap_or_default();
        typed(topic, id, end)?.ok_or_else(|| ResultError::Timeout {
            topic: topic.to_owned(),
            id: JobId::new(id),
            after,
        })
    }

    /// A handle on job `id` of task `T`, typed by the task's output.
    pub fn handle<T: Task>(&self, id: impl Into<JobId>) -> Job<T::Output> {
        Job::new(self.clone(), T::descriptor().topic, id.into())
    }
}

/// `JobResult` as the caller's type: `Ok(None)` while unfinished.
fn typed<T: DeserializeOwned>(
    topic: &str,
    id: &str,
    result: JobResult,
) -> Result<Option<T>, ResultError> {
    let (topic, id) = (topic.to_owned(), JobId::new(id));
    match result {
        JobResult::Completed(bytes) => codec::decode(&bytes).map(Some).map_err(|e| {
            ResultError::Error(Error::Corrupt {
                op: "result",
                detail: format!(
                    "the result of job `{id}` of topic `{topic}` does not decode as `{}`: {e}",
                    std::any::type_name::<T>()
                ),
            })
        }),
        JobResult::Unfinished(_) => Ok(None),
        JobResult::Dead { error } => Err(ResultError::Dead { topic, id, error }),
        JobResult::Cancelled => Err(ResultError::Cancelled { topic, id }),
        JobResult::ParseError { error } => Err(ResultError::Malformed { topic, id, error }),
        JobResult::Unknown => Err(ResultError::Unknown { topic, id }),
    }
}
