//! Metrics through the [`metrics`] facade: the names rmq records, and the
//! queue-wide figures one process reads from Redis ([`queue`]).
//!
//! rmq records into whatever recorder the application installs (the worker
//! binary installs a Prometheus one for `worker run --metrics-addr`); with
//! none installed every handle is a no-op. Handles are registered once (per
//! topic, when a worker starts or a client first enqueues to a topic), never
//! per job, so install the recorder before building clients and workers.
//!
//! Per process (labels in braces; never a job id or a host):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `rmq_jobs_enqueued_total` | counter | topic, priority |
//! | `rmq_events_published_total` | counter | event |
//! | `rmq_batches_completed_total` | counter | callback (topic, or `none`) |
//! | `rmq_jobs_fetched_total` | counter | topic |
//! | `rmq_jobs_processed_total` | counter | topic, outcome |
//! | `rmq_job_duration_seconds` | histogram | topic |
//! | `rmq_job_wait_seconds` | histogram | topic, priority |
//! | `rmq_worker_jobs_active` | gauge | topic |
//! | `rmq_worker_prefetched_jobs` | gauge | topic |
//! | `rmq_job_running_max_seconds` | gauge | topic |
//! | `rmq_worker_concurrency` | gauge | |
//! | `rmq_leases_lost_total` | counter | topic |
//! | `rmq_fetches_throttled_total` | counter | topic, limit (`rate`, `concurrency`) |
//! | `rmq_redis_errors_total` | counter | op |
//! | `rmq_build_info` | gauge | version |

mod histograms;
pub mod queue;

pub use histograms::{collect_job_histograms, render_job_histograms};
pub(crate) use histograms::{collecting, register, AtomicHistogram, LocalHistogram};

use std::collections::HashMap;
use std::sync::RwLock;

use metrics::{Counter, Unit};

use crate::Priority;

/// Jobs this process enqueued (accepted by Redis).
pub const JOBS_ENQUEUED: &str = "rmq_jobs_enqueued_total";
/// Unique enqueues this process made that found a job holding the lock.
pub const JOBS_DUPLICATE: &str = "rmq_jobs_duplicate_total";
/// Events this process published (one per publish, whatever the number of
/// subscribers).
pub const EVENTS_PUBLISHED: &str = "rmq_events_published_total";
/// Batches whose last child this process recorded, firing the callback.
pub const BATCHES_COMPLETED: &str = "rmq_batches_completed_total";
/// Jobs this worker leased.
pub const JOBS_FETCHED: &str = "rmq_jobs_fetched_total";
/// Attempts this worker finished, by outcome (see [`Outcome`]).
pub const JOBS_PROCESSED: &str = "rmq_jobs_processed_total";
/// Handler run time.
pub const JOB_DURATION: &str = "rmq_job_duration_seconds";
/// Time from due to start, for first attempts of jobs enqueued without a delay.
pub const JOB_WAIT: &str = "rmq_job_wait_seconds";
/// Handlers running now.
pub const WORKER_JOBS_ACTIVE: &str = "rmq_worker_jobs_active";
/// Handlers this worker runs at once (`max_workers`).
pub const WORKER_CONCURRENCY: &str = "rmq_worker_concurrency";
/// Leased jobs waiting here for a free handler.
pub const WORKER_PREFETCHED: &str = "rmq_worker_prefetched_jobs";
/// How long the longest-running handler has been running.
pub const JOB_RUNNING_MAX: &str = "rmq_job_running_max_seconds";
/// Leases this worker lost (expired and handed elsewhere before it reported).
pub const LEASES_LOST: &str = "rmq_leases_lost_total";
/// Fetches a topic's rate or concurrency limit held back.
pub const FETCHES_THROTTLED: &str = "rmq_fetches_throttled_total";
/// Redis calls of the worker's loops that failed.
pub const REDIS_ERRORS: &str = "rmq_redis_errors_total";
/// Always 1, labelled with the rmq version.
pub const BUILD_INFO: &str = "rmq_build_info";

pub(crate) const JOB_DURATION_HELP: &str = "Handler run time.";
pub(crate) const JOB_WAIT_HELP: &str =
    "Time from due to handler start, for first attempts of jobs enqueued without a delay.";

/// The version of rmq, as `rmq_build_info{version}` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Buckets (seconds) that suit both metrics of handler time and wait:
/// 0.5 ms to 1 h.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0, 3600.0,
];

/// How a finished attempt ended: the `outcome` label of
/// `rmq_jobs_processed_total`. Every attempt counts once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded and the ack was accepted.
    Completed,
    /// The handler returned an error; the job is scheduled again.
    Retried,
    /// The handler returned an error and no attempt is left (or it was
    /// permanent): dead-lettered.
    Dead,
    /// Not run: its TTL passed before it could start (found by this
    /// worker's fetch).
    Expired,
    /// The handler ran past its timeout (retried or dead-lettered after).
    Timeout,
    /// The handler panicked (retried or dead-lettered after).
    Panicked,
    /// The payload did not decode: moved to the parse-error store.
    Malformed,
    /// The lease had passed to another worker when the outcome was reported.
    LeaseLost,
    /// Cancelled while it ran (or the handler returned
    /// [`crate::TaskError::cancelled`]): ended cancelled, not retried.
    Cancelled,
    /// The handler returned [`TaskError::rate_limited`](crate::TaskError::rate_limited):
    /// delayed again, no attempt counted.
    RateLimited,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 10] = [
        Outcome::Completed,
        Outcome::Retried,
        Outcome::Dead,
        Outcome::Expired,
        Outcome::Timeout,
        Outcome::Panicked,
        Outcome::Malformed,
        Outcome::LeaseLost,
        Outcome::Cancelled,
        Outcome::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retried => "retried",
            Outcome::Dead => "dead",
            Outcome::Expired => "expired",
            Outcome::Timeout => "timeout",
            Outcome::Panicked => "panicked",
            Outcome::Malformed => "malformed",
            Outcome::LeaseLost => "lease_lost",
            Outcome::Cancelled => "cancelled",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// Registers the descriptions and units of every per-process metric with the
/// installed recorder (its `# HELP` lines). Call once after installing it.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        JOBS_ENQUEUED,
        Unit::Count,
        "Jobs this process enqueued, accepted by Redis."
    );
    describe_counter!(
        JOBS_DUPLICATE,
        Unit::Count,
        "Unique enqueues this process made that found a job holding the lock (nothing enqueued)."
    );
    describe_counter!(
        EVENTS_PUBLISHED,
        Unit::Count,
        "Events this process published, by event type."
    );
    describe_counter!(
        BATCHES_COMPLETED,
        Unit::Count,
        "Batches whose last child this process recorded (their callback enqueued), by callback topic."
    );
    describe_counter!(JOBS_FETCHED, Unit::Count, "Jobs this worker leased.");
    describe_counter!(
        JOBS_PROCESSED,
        Unit::Count,
        "Attempts this worker finished, by outcome (completed, retried, dead, expired, timeout, panicked, malformed, lease_lost, rate_limited)."
    );
    describe_histogram!(JOB_DURATION, Unit::Seconds, JOB_DURATION_HELP);
    describe_histogram!(JOB_WAIT, Unit::Seconds, JOB_WAIT_HELP);
    describe_gauge!(WORKER_JOBS_ACTIVE, Unit::Count, "Handlers running now.");
    describe_gauge!(
        WORKER_CONCURRENCY,
        Unit::Count,
        "Handlers this worker runs at once."
    );
    describe_gauge!(
        WORKER_PREFETCHED,
        Unit::Count,
        "Leased jobs waiting in this worker for a free handler."
    );
    describe_gauge!(
        JOB_RUNNING_MAX,
        Unit::Seconds,
        "How long the longest-running handler has run so far (0 when none runs)."
    );
    describe_counter!(
        LEASES_LOST,
        Unit::Count,
        "Leases this worker lost before it reported the job."
    );
    describe_counter!(
        FETCHES_THROTTLED,
        Unit::Count,
        "Fetches held back by a topic's rate or concurrency limit, by limit."
    );
    describe_counter!(
        REDIS_ERRORS,
        Unit::Count,
        "Failed Redis calls of the worker's loops, by operation."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the rmq version is its label.");
}

/// `rmq_jobs_enqueued_total` handles per topic and priority, registered at
/// the first enqueue of each.
#[derive(Default)]
pub(crate) struct EnqueueCounters {
    counters: RwLock<HashMap<String, [Counter; 3]>>,
}

impl EnqueueCounters {
    /// Counts `n` jobs of `topic` and `priority` enqueued.
    pub(crate) fn add(&self, topic: &str, priority: Priority, n: usize) {
        let index = usize::from(priority.as_u8());
        if let Ok(counters) = self.counters.read() {
            if let Some(counters) = counters.get(topic) {
                counters[index].increment(n as u64);
                return;
            }
        }
        let counters = Priority::ALL.map(|p| {
            metrics::counter!(JOBS_ENQUEUED, "topic" => topic.to_owned(), "priority" => p.as_str())
        });
        counters[index].increment(n as u64);
        if let Ok(mut map) = self.counters.write() {
            map.insert(topic.to_owned(), counters);
        }
    }
}

impl std::fmt::Debug for EnqueueCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnqueueCounters").finish_non_exhaustive()
    }
}
