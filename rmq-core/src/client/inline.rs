//! The inline backend: runs each job's handler at enqueue time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::broker::{EnqueueSpec, JobResult, JobState};
use crate::handler::{self, Invocation};
use crate::unique::{LocalLocks, UniqueLock};
use crate::{
    Config, Enqueued, Error, JobContext, JobId, JobOptions, StateMap, TaskDescriptor,
    TaskErrorKind, UniqueMode,
};

/// What became of one job run by [`crate::Client::inline`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The job's topic.
    pub topic: String,
    /// The job's id.
    pub id: JobId,
    /// How many times the handler ran.
    pub attempts: u32,
    /// How it ended.
    pub result: JobOutcome,
}

/// How a job run inline ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// The handler returned `Ok`.
    Completed,
    /// Every attempt failed, or one failed permanently: a Redis-backed worker
    /// would have dead-lettered the job. Holds the last error.
    Dead(String),
    /// The payload did not decode into the task's type: a Redis-backed worker
    /// would have put it in the parse-error store.
    Malformed(String),
    /// The handler returned [`crate::TaskError::cancelled`]: a Redis-backed
    /// worker would have ended the job cancelled, not retried.
    Cancelled,
    /// The handler returned [`TaskError::rate_limited`](crate::TaskError::rate_limited):
    /// a Redis-backed worker would have run the same attempt again after
    /// this delay. The inline client neither sleeps nor runs it again (a
    /// test can see the back-off asked for and decide what comes next).
    RateLimited(std::time::Duration),
}

#[derive(Default)]
pub(super) struct InlineRunner {
    pub(super) state: StateMap,
    next_id: AtomicU64,
    outcomes: Mutex<Vec<Outcome>>,
    /// Kept results (tasks with `keep_result`), by topic and id.
    results: Mutex<HashMap<(String, JobId), Vec<u8>>>,
    locks: LocalLocks,
}

impl InlineRunner {
    pub(super) async fn run(
        &self,
        descriptor: &'static TaskDescriptor,
        payloads: Vec<Vec<u8>>,
        options: &JobOptions,
        spec: &EnqueueSpec,
        config: &Config,
    ) -> Result<Vec<JobId>, Error> {
        let timeout = descriptor
            .policy
            .timeout
            .unwrap_or(config.processing_timeout);
        let mut ids = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let id = self.next_id(options);
            self.run_one(descriptor, payload, &id, spec, timeout, false)
                .await;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Runs one unique job as a worker would: a live lock (a window, or a
    /// job of the key still running) makes it a duplicate; the lock is
    /// released before the run (until started, debounce), after it (until
    /// completed) or by its time to live (window).
    pub(super) async fn run_unique(
        &self,
        descriptor: &'static TaskDescriptor,
        payload: Vec<u8>,
        options: &JobOptions,
        spec: &EnqueueSpec,
        config: &Config,
        lock: &UniqueLock,
    ) -> Result<Enqueued, Error> {
        let topic = descriptor.topic;
        if let Some(holder) = self.locks.holder(topic, &lock.key) {
            return Ok(Enqueued::Duplicate(holder));
        }
        let id = self.next_id(options);
        self.locks.take(topic, &lock.key, &id, lock.ttl);
        if matches!(lock.mode, UniqueMode::UntilStarted | UniqueMode::Debounce) {
            self.locks.release(topic, &lock.key, &id);
        }
        let timeout = descriptor
            .policy
            .timeout
            .unwrap_or(config.processing_timeout);
        self.run_one(descriptor, payload, &id, spec, timeout, false)
            .await;
        if lock.mode == UniqueMode::UntilCompleted {
            self.locks.release(topic, &lock.key, &id);
        }
        Ok(Enqueued::New(id))
    }

    fn next_id(&self, options: &JobOptions) -> JobId {
        options.id.clone().unwrap_or_else(|| {
            JobId::new((self.next_id.fetch_add(1, Ordering::Relaxed) + 1).to_string())
        })
    }

    /// Runs one job with its retries and records the outcome, and the
    /// result of a `keep_result` task; returns the outcome and, when the
    /// task keeps its result or `output` asks for it, the encoded return
    /// value.
    pub(super) async fn run_one(
        &self,
        descriptor: &'static TaskDescriptor,
        payload: Vec<u8>,
        id: &JobId,
        spec: &EnqueueSpec,
        timeout: std::time::Duration,
        output: bool,
    ) -> (JobOutcome, Option<Vec<u8>>) {
        let keep = descriptor.policy.keep_result.is_some();
        let mut value = None;
        let mut context = JobContext {
            id: id.clone(),
            topic: descriptor.topic.to_owned(),
            attempt: 0,
            max_retries: spec.max_retries,
            priority: spec.priority,
            enqueued_at: SystemTime::now(),
            cancellation: crate::Cancellation::new(),
        };
        let result = loop {
            context.attempt += 1;
            let invocation = Invocation::new(payload.clone(), context.clone(), self.state.clone())
                .keep_output(keep || output);
            match handler::run(descriptor.handler, invocation, timeout).await {
                Ok(output) => {
                    value = output;
                    break JobOutcome::Completed;
                }
                Err(error) => match error.kind() {
                    TaskErrorKind::Malformed => break JobOutcome::Malformed(error.to_string()),
                    TaskErrorKind::Permanent => break JobOutcome::Dead(error.to_string()),
                    TaskErrorKind::Cancelled => break JobOutcome::Cancelled,
                    TaskErrorKind::Retryable if context.is_last_attempt() => {
                        break JobOutcome::Dead(error.to_string())
                    }
                    TaskErrorKind::Retryable => continue,
                    TaskErrorKind::RateLimited => {
                        break JobOutcome::RateLimited(error.retry_after().unwrap_or_default())
                    }
                },
            }
        };
        if let (true, Some(value)) = (keep, &value) {
            self.results
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert((descriptor.topic.to_owned(), id.clone()), value.clone());
        }
        self.lock().push(Outcome {
            topic: descriptor.topic.to_owned(),
            id: id.clone(),
            attempts: context.attempt,
            result: result.clone(),
        });
        (result, value)
    }

    /// Where the result of job `id` of `topic` stands: every job ran at
    /// enqueue, so it is kept, dead, cancelled, or unknown (never run, or
    /// completed without `keep_result`).
    pub(super) fn job_result(&self, topic: &str, id: &str) -> JobResult {
        let key = (topic.to_owned(), JobId::new(id));
        if let Some(value) = self
            .results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return JobResult::Completed(value.clone());
        }
        let outcomes = self.lock();
        let last = outcomes
            .iter()
            .rev()
            .find(|outcome| outcome.topic == key.0 && outcome.id == key.1);
        match last.map(|outcome| &outcome.result) {
            Some(JobOutcome::Dead(error)) => JobResult::Dead {
                error: error.clone(),
            },
            Some(JobOutcome::Cancelled) => JobResult::Cancelled,
            Some(JobOutcome::Malformed(error)) => JobResult::ParseError {
                error: error.clone(),
            },
            Some(JobOutcome::RateLimited(after)) => JobResult::Unfinished(JobState::Delayed {
                due: SystemTime::now() + *after,
            }),
            Some(JobOutcome::Completed) | None => JobResult::Unknown,
        }
    }

    pub(super) fn outcomes(&self) -> Vec<Outcome> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Outcome>> {
        self.outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
