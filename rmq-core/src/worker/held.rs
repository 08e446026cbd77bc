//! The jobs this worker holds a lease on, fetched and not yet reported:
//! what the lease keeper extends and what shutdown returns to the queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::envelope::Envelope;

#[derive(Default)]
pub(super) struct Held {
    next_key: AtomicU64,
    jobs: Mutex<HashMap<u64, (usize, Envelope)>>,
}

impl Held {
    /// Records a fetched job of topic index `topic`; returns its key.
    pub(super) fn insert(&self, topic: usize, envelope: Envelope) -> u64 {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, (topic, envelope));
        key
    }

    /// Forgets jobs that were reported (or whose lease was lost).
    pub(super) fn remove_all(&self, keys: impl IntoIterator<Item = u64>) {
        let mut jobs = self.lock();
        for key in keys {
            jobs.remove(&key);
        }
    }

    /// Copies of the held jobs, grouped by topic index, each group in the
    /// order the jobs were fetched (so a release keeps their queue order).
    pub(super) fn by_topic(&self, topics: usize) -> Vec<Vec<(u64, Envelope)>> {
        let mut grouped = vec![Vec::new(); topics];
        for (key, (topic, envelope)) in self.lock().iter() {
            grouped[*topic].push((*key, envelope.clone()));
        }
        for group in &mut grouped {
            group.sort_unstable_by_key(|(key, _)| *key);
        }
        grouped
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (usize, Envelope)>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
