//! Batches: enqueue a set of jobs (any tasks, any topics) as one, and run a
//! callback task once when every one of them has finished.
//!
//! A batch's record lives under its own hash tag (`{P:batch:<id>}`, see
//! [`crate::keys::batch_keys`]); its children are ordinary jobs with the
//! explicit ids `batch:<id>:<n>`, so whoever ends one (the worker that ran
//! it, lease recovery, a cancellation) knows its batch from the id alone.
//! The worker records a finished child in the batch's hash of finished
//! children *before* it acks the child, so a crash in between re-runs the
//! child and records it again, which changes nothing: a child is counted
//! once. When the last child is recorded, the callback is enqueued with the
//! id `batch:<id>:done` (a second attempt finds it queued or running) and
//! the record is marked fired (a callback that ran marks it too, before
//! its own ack), so it runs once.
//!
//! Children that end without a worker (cancelled while queued, or
//! dead-lettered by lease recovery on their last attempt) are recorded by
//! the process that ended them, right after the script that did: a crash in
//! between leaves that child uncounted (the batch then shows it pending).
//!
//! Plain jobs pay nothing for this: their ids are never explicit ids that
//! start with `batch:`, which the worker checks on a byte of the envelope
//! it has at hand.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{Subscriber, Trigger};
use crate::{codec, Client, Error, JobId, Task, TaskDescriptor};

/// What every batch child's and callback's id starts with.
pub const ID_PREFIX: &str = "batch:";

/// Most children in one batch.
pub const MAX_CHILDREN: usize = 1_000_000;

/// The id of a batch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(String);

impl BatchId {
    /// Wraps an id.
    pub fn new(id: impl Into<String>) -> Self {
        BatchId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The job id of child `n` (from 0).
    pub fn child(&self, n: usize) -> JobId {
        JobId::new(format!("{ID_PREFIX}{}:{n}", self.0))
    }

    /// The job id of the callback.
    pub fn callback(&self) -> JobId {
        JobId::new(format!("{ID_PREFIX}{}:done", self.0))
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a batch came to: the payload of its callback. A callback task
/// takes it as its payload: `#[rmq::task(on = rmq::BatchOutcome)] async fn
/// report(outcome: rmq::BatchOutcome)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// The batch.
    pub id: String,
    /// Its children.
    pub total: u64,
    /// Children that completed.
    pub succeeded: u64,
    /// Children that died (retries exhausted, a permanent error, a payload
    /// that did not decode, a lease lost on the last attempt).
    pub dead: u64,
    /// Children that were cancelled.
    pub cancelled: u64,
}

impl Trigger for BatchOutcome {
    const NAME: &'static str = "rmq::BatchOutcome";
}

/// How one child of a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchEnd {
    /// It completed.
    Succeeded,
    /// It died.
    Dead,
    /// It was cancelled.
    Cancelled,
}

impl BatchEnd {
    /// The letter the batch script stores.
    pub(crate) fn code(self) -> &'static str {
        match self {
            BatchEnd::Succeeded => "s",
            BatchEnd::Dead => "d",
            BatchEnd::Cancelled => "c",
        }
    }
}

/// Where a batch stands ([`Client::batch`], `worker batch ID`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchProgress {
    /// The counts so far (final once `pending() == 0`).
    pub outcome: BatchOutcome,
    /// The callback's topic, if the batch has one.
    pub callback: Option<String>,
    /// Whether the callback was enqueued.
    pub fired: bool,
    /// When the batch was created, ms since the epoch (Redis server time).
    pub created_at_ms: u64,
}

impl BatchProgress {
    /// Children not finished yet.
    pub fn pending(&self) -> u64 {
        let o = &self.outcome;
        o.total.saturating_sub(o.succeeded + o.dead + o.cancelled)
    }

    /// Whether every child has finished.
    pub fn is_complete(&self) -> bool {
        self.pending() == 0
    }
}

/// The callback of a batch, as stored in its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Callback {
    pub(crate) topic: &'static str,
    pub(crate) priority: crate::Priority,
    pub(crate) max_retries: u32,
}

/// A set of jobs to enqueue as one batch, with an optional callback.
///
/// ```no_run
/// # use rmq_core::{Batch, BatchOutcome, Client, Error};
/// # async fn demo<A: rmq_core::Task, R: rmq_core::event::Subscriber<Event = BatchOutcome>>(client: &Client, a: A, b: A) -> Result<(), Error> {
/// let id = Batch::new().push(a).push(b).on_complete::<R>().enqueue(client).await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use = "nothing is enqueued until `.enqueue(&client)` is awaited"]
pub struct Batch {
    children: Vec<(&'static TaskDescriptor, Result<Vec<u8>, String>)>,
    callback: Option<&'static TaskDescriptor>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a job of any task. Unique locks, per-call options and message
    /// ttls do not apply to batch children: each child runs (or dies, or is
    /// cancelled) once the batch is enqueued, so that the batch finishes.
    pub fn push<T: Task>(mut self, task: T) -> Batch {
        let payload = codec::encode(&task).map_err(|e| e.to_string());
        self.children.push((T::descriptor(), payload));
        self
    }

    /// Adds every job of `tasks`.
    pub fn extend<T: Task>(mut self, tasks: impl IntoIterator<Item = T>) -> Batch {
        for task in tasks {
            self = self.push(task);
        }
        self
    }

    /// Runs task `T` once every child has finished, with the batch's
    /// [`BatchOutcome`] as its payload.
    pub fn on_complete<T: Subscriber<Event = BatchOutcome>>(mut self) -> Batch {
        self.callback = Some(T::descriptor());
        self
    }

    /// Children so far.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether the batch has no child yet.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Creates the batch's record, then enqueues its children, one script
    /// call per topic (per 1,000 jobs), the topics concurrently; returns the
    /// batch id. An error after the record was made leaves the children
    /// enqueued so far to run; the callback of such a batch never fires.
    pub async fn enqueue(self, client: &Client) -> Result<BatchId, Error> {
        if self.children.is_empty() {
            return Err(Error::InvalidOption {
                option: "batch",
                rule: "needs at least one job: add some with `.push(job)`".to_owned(),
            });
        }
        if self.children.len() > MAX_CHILDREN {
            return Err(Error::InvalidOption {
                option: "batch",
                rule: format!(
                    "has {} jobs, more than {MAX_CHILDREN}: split it",
                    self.children.len()
                ),
            });
        }
        let id = BatchId::new(crate::event::new_id());
        let mut by_topic: BTreeMap<&'static str, (&'static TaskDescriptor, Vec<_>)> =
            BTreeMap::new();
        for (n, (descriptor, payload)) in self.children.into_iter().enumerate() {
            let payload = payload.map_err(|reason| Error::Payload {
                topic: descriptor.topic.to_owned(),
                reason,
            })?;
            if descriptor.policy.unique.is_some() {
                return Err(Error::InvalidOption {
                    option: "batch",
                    rule: format!(
                        "has a job of the unique task `{}` (topic `{}`): a batch child must run, so it cannot be a duplicate; enqueue unique jobs on their own",
                        descriptor.qualified_name(),
                        descriptor.topic
                    ),
                });
            }
            client.check_size(descriptor.topic, &payload)?;
            by_topic
                .entry(descriptor.topic)
                .or_insert_with(|| (descriptor, Vec::new()))
                .1
                .push((id.child(n), payload));
        }
        let total: usize = by_topic.values().map(|(_, jobs)| jobs.len()).sum();
        let callback = self.callback.map(|task| Callback {
            topic: task.topic,
            priority: task.policy.priority,
            max_retries: task.policy.retries.unwrap_or(client.config().max_retries),
        });
        client.create_batch(&id, total, callback.as_ref()).await?;
        let calls = by_topic
            .into_values()
            .map(|(descriptor, jobs)| client.enqueue_children(descriptor, jobs));
        for result in futures_util::future::join_all(calls).await {
            result?;
        }
        if let Some(task) = self.callback {
            client.batch_enqueued(&id, task).await?;
        }
        tracing::debug!(batch = %id, children = total, "batch enqueued");
        Ok(id)
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("children", &self.children.len())
            .field("callback", &self.callback.map(|task| task.topic))
            .finish()
    }
}

/// The batch and the part of a job id after it: `batch:<id>:<rest>`.
pub(crate) fn parse_id(job_id: &str) -> Option<(&str, &str)> {
    job_id.strip_prefix(ID_PREFIX)?.rsplit_once(':')
}
