//! The Redis engine: every job transition is one Lua script over the keys of
//! one topic (see `keys`). Hot-path calls (enqueue, fetch, ack) move whole
//! batches per script call.

use std::time::Duration;

use crate::envelope::Envelope;
use crate::{Config, Error, JobId, Priority};

/// One job to enqueue: its encoded payload and, optionally, an explicit id.
#[derive(Clone, Copy, Debug)]
pub struct NewJob<'a> {
    /// MessagePack payload.
    pub payload: &'a [u8],
    /// Explicit id; `None` draws the next id of the topic's counter.
    pub id: Option<&'a str>,
}

/// What applies to every job of one enqueue call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueSpec {
    /// Priority list the job goes to.
    pub priority: Priority,
    /// Zero for immediate jobs.
    pub delay: Duration,
    /// Time to live from enqueue; `None` or zero never expires.
    pub ttl: Option<Duration>,
    /// Retries after the first attempt (at most 255).
    pub max_retries: u32,
}

/// The result of one fetch call.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Leased jobs, highest priority first, FIFO within a priority.
    pub jobs: Vec<Envelope>,
    /// Time until the earliest delayed job is due, if any is scheduled.
    pub next_due: Option<Duration>,
}

/// How a failed attempt should be handled.
#[derive(Clone, Debug)]
pub struct Failure<'a> {
    /// The handler's error, kept with the job if it is dead-lettered.
    pub error: &'a str,
    /// Skip the remaining retries.
    pub permanent: bool,
    /// Delay before the retry (ignored when the job dies).
    pub retry_delay: Duration,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled again after the retry delay.
    Retrying,
    /// Moved to the dead-letter queue (or dropped, counted, when it is off).
    Dead,
    /// The lease was no longer ours: the job had been recovered and handed
    /// elsewhere; nothing changed.
    LeaseLost,
}

/// The result of one recovery pass over expired leases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Returned to pending with the attempt counted.
    pub requeued: usize,
    /// Dead-lettered because no attempt was left.
    pub dead: usize,
    /// Time until the earliest remaining lease deadline.
    pub next_deadline: Option<Duration>,
}

/// Counters and depths of one topic.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TopicStats {
    /// Topic name.
    pub topic: String,
    /// Pending jobs per priority: high, normal, low.
    pub pending: [u64; 3],
    /// Leased jobs.
    pub processing: u64,
    /// Scheduled jobs (delayed or waiting for a retry).
    pub delayed: u64,
    /// Jobs in the dead-letter queue.
    pub dead: u64,
    /// Entries in the parse-error store.
    pub parse_errors: u64,
    /// Jobs completed, ever.
    pub completed: u64,
    /// Failed attempts, ever.
    pub failed: u64,
    /// Jobs that expired before they started, ever.
    pub expired: u64,
    /// Jobs completed in the last full minute.
    pub completed_last_minute: u64,
    /// Handler time of completed jobs: average, p50, p99 (microseconds).
    pub processing_us: [u64; 3],
}

/// A dead-lettered job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadJob {
    /// The job as it was when it died.
    pub envelope: Envelope,
    /// The last error (or `expired` / `lease expired`).
    pub error: String,
    /// When it died, ms since the epoch (server clock).
    pub died_at_ms: u64,
}

/// A stored entry that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrorEntry {
    /// The bytes as they were stored.
    pub raw: Vec<u8>,
    /// Why they did not decode.
    pub error: String,
    /// When it was found, ms since the epoch (server clock).
    pub at_ms: u64,
}

/// The Redis engine: a connection pool plus the loaded scripts.
#[derive(Clone, Debug)]
pub struct Broker {}

/// `url` with its password replaced by `***`, for messages.
pub fn mask_password(url: &str) -> String {
    url.to_owned()
}

impl Broker {
    /// Connects: opens the pool, checks the server version (>= 6.2), AUTH,
    /// database selection.
    pub async fn connect(config: &Config) -> Result<Broker, Error> {
        let _ = config;
        todo!()
    }

    /// Enqueues jobs of one topic in one script call; ids in order.
    pub async fn enqueue(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
    ) -> Result<Vec<JobId>, Error> {
        let _ = (topic, spec, jobs);
        todo!()
    }

    /// Promotes due delayed jobs, then leases up to `max` jobs.
    pub async fn fetch(&self, topic: &str, max: usize, lease: Duration) -> Result<Fetched, Error> {
        let _ = (topic, max, lease);
        todo!()
    }

    /// Completes jobs; returns the indexes (into `jobs`) whose lease was lost.
    /// `durations` (same order) feed the processing-time histogram.
    pub async fn ack(
        &self,
        topic: &str,
        jobs: &[Envelope],
        durations: &[Duration],
    ) -> Result<Vec<usize>, Error> {
        let _ = (topic, jobs, durations);
        todo!()
    }

    /// Records a failed attempt: retry later or dead-letter.
    pub async fn fail(
        &self,
        topic: &str,
        job: &Envelope,
        failure: &Failure<'_>,
    ) -> Result<FailOutcome, Error> {
        let _ = (topic, job, failure);
        todo!()
    }

    /// Moves the leased `job`, whose payload does not decode, to the
    /// parse-error store. Returns false if the lease was lost.
    pub async fn reject(&self, topic: &str, job: &Envelope, error: &str) -> Result<bool, Error> {
        let _ = (topic, job, error);
        todo!()
    }

    /// Extends the leases of `jobs` to `lease` from now; returns the indexes
    /// whose lease was lost.
    pub async fn extend(
        &self,
        topic: &str,
        jobs: &[Envelope],
        lease: Duration,
    ) -> Result<Vec<usize>, Error> {
        let _ = (topic, jobs, lease);
        todo!()
    }

    /// Returns leased jobs this worker will not run to the front of their
    /// pending list, attempt unchanged. Returns how many were still ours.
    pub async fn release(&self, topic: &str, jobs: &[Envelope]) -> Result<usize, Error> {
        let _ = (topic, jobs);
        todo!()
    }

    /// Returns jobs whose lease expired to pending (attempt counted) or to
    /// the dead-letter queue.
    pub async fn recover(&self, topic: &str, max: usize) -> Result<Recovered, Error> {
        let _ = (topic, max);
        todo!()
    }

    /// Blocks on a dedicated connection until an enqueue wakes one of
    /// `topics` or `timeout` passes. True when woken.
    pub async fn wait(&self, topics: &[String], timeout: Duration) -> Result<bool, Error> {
        let _ = (topics, timeout);
        todo!()
    }

    /// Records `topics` in the global topic set (for admin listings).
    pub async fn register_topics(&self, topics: &[String]) -> Result<(), Error> {
        let _ = topics;
        todo!()
    }

    /// Trims the dead-letter and parse-error stores of `topic` by age.
    pub async fn trim(&self, topic: &str) -> Result<(), Error> {
        let _ = topic;
        todo!()
    }
}
