//! Counters of one worker process (Redis keeps the cross-worker ones).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub(super) struct Metrics {
    pub(super) completed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) lease_lost: AtomicU64,
    pub(super) redis_errors: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) rate_limited: AtomicU64,
}

/// What one worker has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Jobs whose handler succeeded and whose ack was accepted.
    pub completed: u64,
    /// Failed attempts scheduled for a retry.
    pub retried: u64,
    /// Jobs dead-lettered after their last failure.
    pub dead: u64,
    /// Jobs whose payload did not decode (moved to the parse-error store).
    pub malformed: u64,
    /// Jobs whose lease had passed to another worker before this one
    /// reported them.
    pub lease_lost: u64,
    /// Redis calls that failed (each was retried or its job left leased).
    pub redis_errors: u64,
    /// Jobs cancelled while they ran here.
    pub cancelled: u64,
    /// Fetches a topic's rate or concurrency limit held back.
    pub throttled: u64,
    /// Jobs delayed again because their handler returned
    /// [`TaskError::rate_limited`](crate::TaskError::rate_limited).
    pub rate_limited: u64,
}

impl Metrics {
    pub(super) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            completed: get(&self.completed),
            retried: get(&self.retried),
            dead: get(&self.dead),
            malformed: get(&self.malformed),
            lease_lost: get(&self.lease_lost),
            redis_errors: get(&self.redis_errors),
            cancelled: get(&self.cancelled),
            throttled: get(&self.throttled),
            rate_limited: get(&self.rate_limited),
        }
    }
}

/// A handle on a worker's counters that stays readable while the worker
/// runs and after it stopped (running consumes the [`Worker`](super::Worker)).
/// Made by [`Worker::metrics_handle`](super::Worker::metrics_handle).
#[derive(Clone)]
pub struct MetricsHandle(pub(super) Arc<Metrics>);

impl MetricsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.0.snapshot()
    }
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MetricsHandle")
            .field(&self.snapshot())
            .finish()
    }
}
