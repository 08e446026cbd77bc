//! The fake backend: records jobs for tests to read back, typed.

use std::sync::Mutex;

use std::time::SystemTime;

use std::collections::HashMap;

use crate::broker::{Cancelled, EnqueueSpec, JobResult, JobState, JobStatus};
use crate::unique::{LocalLocks, UniqueLock};
use crate::{codec, Enqueued, Error, JobId, JobOptions, Priority, Task, UniqueMode};

/// A job recorded by [`crate::Client::fake`].
#[derive(Clone, Debug, PartialEq)]
pub struct FakeJob<T> {
    /// The id the fake client returned.
    pub id: JobId,
    /// The payload.
    pub payload: T,
    /// The per-call options given.
    pub options: JobOptions,
    /// The priority the job would run at (the option or the task's default).
    pub priority: Priority,
    /// Retries the job would be allowed.
    pub max_retries: u32,
}

#[derive(Default)]
pub(super) struct FakeStore {
    jobs: Mutex<Vec<Recorded>>,
    /// Results given with `Client::complete_fake`, by topic and id.
    results: Mutex<HashMap<(String, JobId), Vec<u8>>>,
    locks: LocalLocks,
}

struct Recorded {
    topic: String,
    id: JobId,
    payload: Vec<u8>,
    options: JobOptions,
    spec: EnqueueSpec,
    at: SystemTime,
}

impl FakeStore {
    pub(super) fn record(
        &self,
        topic: &str,
        payloads: Vec<Vec<u8>>,
        options: &JobOptions,
        spec: &EnqueueSpec,
    ) -> Result<Vec<JobId>, Error> {
        let mut jobs = self.lock();
        if let Some(id) = &options.id {
            if jobs.iter().any(|job| job.topic == topic && &job.id == id) {
                return Err(Error::DuplicateJobId {
                    topic: topic.to_owned(),
                    id: id.to_string(),
                });
            }
        }
        let mut ids = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let id = options
                .id
                .clone()
                .unwrap_or_else(|| JobId::new((jobs.len() + 1).to_string()));
            ids.push(id.clone());
            jobs.push(Recorded {
                topic: topic.to_owned(),
                id,
                payload,
                options: options.clone(),
                spec: spec.clone(),
                at: SystemTime::now(),
            });
        }
        Ok(ids)
    }

    /// Records one unique job as the scripts would: a live lock makes it a
    /// duplicate (a fake job never runs, so only its time to live, or
    /// [`crate::Client::clear_enqueued`], ends a lock), and a debounced
    /// job takes the new payload.
    pub(super) fn record_unique(
        &self,
        topic: &str,
        payload: Vec<u8>,
        options: &JobOptions,
        spec: &EnqueueSpec,
        lock: &UniqueLock,
    ) -> Result<Enqueued, Error> {
        if let Some(holder) = self.locks.holder(topic, &lock.key) {
            if lock.mode == UniqueMode::Debounce {
                let mut jobs = self.lock();
                if let Some(job) = jobs
                    .iter_mut()
                    .find(|job| job.topic == topic && job.id == holder)
                {
                    job.payload = payload;
                    job.options = options.clone();
                    job.spec = spec.clone();
                    drop(jobs);
                    self.locks.take(topic, &lock.key, &holder, lock.ttl);
                    return Ok(Enqueued::Replaced(holder));
                }
            }
            return Ok(Enqueued::Duplicate(holder));
        }
        let mut ids = self.record(topic, vec![payload], options, spec)?;
        let id = ids.remove(0);
        self.locks.take(topic, &lock.key, &id, lock.ttl);
        Ok(Enqueued::New(id))
    }

    pub(super) fn jobs<T: Task>(&self) -> Vec<FakeJob<T>> {
        let topic = T::descriptor().topic;
        self.lock()
            .iter()
            .filter(|job| job.topic == topic)
            .map(|job| FakeJob {
                id: job.id.clone(),
                payload: codec::decode(&job.payload)
                    .expect("a payload recorded by the fake client decodes into its own type"),
                options: job.options.clone(),
                priority: job.spec.priority,
                max_retries: job.spec.max_retries,
            })
            .collect()
    }

    /// A recorded job as pending (delayed when enqueued with a delay),
    /// its position among the recorded jobs of its topic and priority.
    pub(super) fn status(&self, topic: &str, id: &str) -> Option<JobStatus> {
        let jobs = self.lock();
        let job = jobs
            .iter()
            .find(|job| job.topic == topic && job.id.as_str() == id)?;
        let position = jobs
            .iter()
            .filter(|other| other.topic == topic && other.spec.priority == job.spec.priority)
            .position(|other| other.id == job.id)
            .map(|p| p as u64);
        let state = if job.spec.delay.is_zero() {
            JobState::Pending {
                priority: job.spec.priority,
                position,
            }
        } else {
            JobState::Delayed {
                due: job.at + job.spec.delay,
            }
        };
        Some(JobStatus {
            id: job.id.clone(),
            topic: topic.to_owned(),
            state,
            attempt: 1,
            max_retries: job.spec.max_retries,
            priority: job.spec.priority,
            enqueued_at: job.at,
            last_error: None,
            payload: job.payload.clone().into(),
        })
    }

    /// Gives job `id` of `topic` a result, as if a worker had run it.
    pub(super) fn complete(&self, topic: &str, id: &str, result: Vec<u8>) {
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((topic.to_owned(), JobId::new(id)), result);
    }

    /// A result given with [`FakeStore::complete`]; a recorded job without
    /// one is unfinished (pending or delayed).
    pub(super) fn job_result(&self, topic: &str, id: &str) -> JobResult {
        let key = (topic.to_owned(), JobId::new(id));
        if let Some(result) = self
            .results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return JobResult::Completed(result.clone());
        }
        match self.status(topic, id) {
            Some(status) => JobResult::Unfinished(status.state),
            None => JobResult::Unknown,
        }
    }

    /// Forgets a recorded job.
    pub(super) fn cancel(&self, topic: &str, id: &str) -> Cancelled {
        let mut jobs = self.lock();
        let before = jobs.len();
        jobs.retain(|job| !(job.topic == topic && job.id.as_str() == id));
        if jobs.len() < before {
            Cancelled::Removed
        } else {
            Cancelled::NotFound
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        self.locks.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
