//! Per-call options of an enqueue, and the builder that carries them.

use std::time::Duration;

use crate::{Client, Enqueued, Error, JobId, Priority, Task, Unique, UniqueMode, UniqueTask};

/// Options of one enqueue; unset values come from the task's attribute, then
/// from the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobOptions {
    /// Run no earlier than this long from now (Redis server time).
    pub delay: Option<Duration>,
    /// Override the task's priority.
    pub priority: Option<Priority>,
    /// Give up on the job (into the dead-letter queue, marked expired) if it
    /// has not started this long after it became due.
    pub ttl: Option<Duration>,
    /// An explicit id: a job with the same id already queued or running on
    /// the topic makes this enqueue fail with [`Error::DuplicateJobId`].
    pub id: Option<JobId>,
    /// The unique key of this job, instead of the one made of its payload
    /// (the task's `unique` fields, or the whole payload).
    pub unique_key: Option<String>,
    /// The unique mode and lock time to live of this job, instead of the
    /// task's.
    pub unique: Option<Unique>,
}

/// A payload with per-call options, ready to enqueue. Made by the `delay`,
/// `priority`, `ttl` and `job_id` methods that `#[rmq::task]` generates on
/// the payload struct.
#[derive(Clone, Debug)]
#[must_use = "nothing is enqueued until `.enqueue(&client)` is awaited"]
pub struct Enqueue<T> {
    task: T,
    options: JobOptions,
}

impl<T: Task> Enqueue<T> {
    /// Wraps a payload with default options.
    pub fn new(task: T) -> Self {
        Enqueue {
            task,
            options: JobOptions::default(),
        }
    }

    /// Runs the job no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.options.delay = Some(delay);
        self
    }

    /// Overrides the task's default priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.options.priority = Some(priority);
        self
    }

    /// Gives up on the job if it has not started within `ttl` of becoming
    /// due.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(ttl);
        self
    }

    /// Uses an explicit id; a second enqueue with the same id while the first
    /// job is queued or running fails with [`Error::DuplicateJobId`].
    pub fn job_id(mut self, id: impl Into<JobId>) -> Self {
        self.options.id = Some(id.into());
        self
    }

    /// The options set so far.
    pub fn options(&self) -> &JobOptions {
        &self.options
    }

    /// The payload and its options.
    pub fn into_parts(self) -> (T, JobOptions) {
        (self.task, self.options)
    }

    /// A chain that runs `next` once this job has completed (see
    /// [`Chain`](crate::Chain)).
    pub fn then<B: Task>(self, next: B) -> crate::Chain<B> {
        crate::Chain::starting(self).then(next)
    }

    /// A chain whose next step is a job of `B` made of this job's result.
    pub fn then_result<B: Task>(self) -> crate::Chain<B>
    where
        T: Task<Output = B>,
    {
        crate::Chain::starting(self).then_result()
    }

    /// Enqueues the job and returns its id (for a unique task, an
    /// [`Enqueued`] that says whether it was a duplicate).
    pub async fn enqueue(self, client: &Client) -> Result<T::Receipt, Error> {
        client.enqueue_with(self.task, self.options).await
    }

    /// Enqueues the job and says whether it is new or, for a unique job, a
    /// duplicate of the job holding the lock (whatever the task's receipt).
    pub async fn submit(self, client: &Client) -> Result<Enqueued, Error> {
        client.submit(self.task, self.options).await
    }
}

impl<T: UniqueTask> Enqueue<T> {
    /// Uses `key` as the job's unique key instead of the one made of its
    /// payload: jobs of this task with the same key are duplicates.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.options.unique_key = Some(key.into());
        self
    }

    /// Overrides the task's unique mode and lock time to live for this job.
    pub fn unique(mut self, mode: UniqueMode, ttl: Duration) -> Self {
        self.options.unique = Some(Unique { mode, ttl });
        self
    }
}
