//! The jobs this worker holds a lease on, fetched and not yet reported:
//! what the lease keeper extends and what shutdown returns to the queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::envelope::Envelope;
use crate::Cancellation;

/// The held jobs of one topic: keys and envelopes in the same order.
pub(super) struct HeldGroup {
    pub(super) topic: usize,
    pub(super) keys: Vec<u64>,
    pub(super) envelopes: Vec<Envelope>,
    /// When each job's handler started (`None`: waiting for a runner).
    pub(super) started: Vec<Option<Instant>>,
}

/// What [`Held::counts`] reports for one topic.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HeldCounts {
    pub(super) running: usize,
    pub(super) waiting: usize,
    pub(super) earliest_start: Option<Instant>,
}

#[derive(Default)]
pub(super) struct Held {
    next_key: AtomicU64,
    jobs: Mutex<HashMap<u64, Entry>>,
}

struct Entry {
    topic: usize,
    envelope: Envelope,
    /// When the handler started.
    started: Option<Instant>,
    /// The handler is done; the outcome is with the acker.
    finished: bool,
    /// The job was asked to cancel (by the lease keeper).
    cancel_requested: bool,
    /// The running handler's [`crate::JobContext::cancellation`].
    signal: Option<Cancellation>,
}

impl Held {
    /// Records a fetched job of topic index `topic`; returns its key.
    pub(super) fn insert(&self, topic: usize, envelope: Envelope) -> u64 {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            key,
            Entry {
                topic,
                envelope,
                started: None,
                finished: false,
                cancel_requested: false,
                signal: None,
            },
        );
        key
    }

    /// Marks the job started with the handler's cancellation `signal` (set
    /// at once if the job was asked to cancel while it waited); false if it
    /// is no longer held (its lease was lost while it waited for a runner).
    pub(super) fn start(&self, key: u64, at: Instant, signal: &Cancellation) -> bool {
        match self.lock().get_mut(&key) {
            Some(entry) if !entry.finished => {
                entry.started = Some(at);
                if entry.cancel_requested {
                    signal.cancel();
                }
                entry.signal = Some(signal.clone());
                true
            }
            _ => false,
        }
    }

    /// Marks held jobs asked to cancel, setting the signal of those
    /// running; returns how many were not asked before.
    pub(super) fn cancel(&self, keys: impl IntoIterator<Item = u64>) -> usize {
        let mut jobs = self.lock();
        let mut asked = 0;
        for key in keys {
            let Some(entry) = jobs.get_mut(&key) else {
                continue;
            };
            if !entry.cancel_requested {
                entry.cancel_requested = true;
                asked += 1;
                if let Some(signal) = &entry.signal {
                    signal.cancel();
                }
            }
        }
        asked
    }

    /// Marks a job whose handler is done: its outcome is on its way to the
    /// acker, which removes it once reported. Returns whether the job was
    /// asked to cancel while it ran.
    pub(super) fn finish(&self, key: u64) -> bool {
        match self.lock().get_mut(&key) {
            Some(entry) => {
                entry.finished = true;
                entry.signal = None;
                entry.cancel_requested
            }
            None => false,
        }
    }

    /// Whether the job is held and its handler has not finished.
    pub(super) fn is_running(&self, key: u64) -> bool {
        self.lock().get(&key).is_some_and(|entry| !entry.finished)
    }

    /// Forgets jobs that were reported (or whose lease was lost).
    pub(super) fn remove_all(&self, keys: impl IntoIterator<Item = u64>) {
        let mut jobs = self.lock();
        for key in keys {
            jobs.remove(&key);
        }
    }

    /// Copies of the held jobs, one group per topic that has any, each in
    /// the order the jobs were fetched (so a release keeps their queue order).
    pub(super) fn by_topic(&self, topics: usize) -> Vec<HeldGroup> {
        let mut grouped: Vec<Vec<(u64, Envelope, Option<Instant>)>> = vec![Vec::new(); topics];
        for (key, entry) in self.lock().iter() {
            grouped[entry.topic].push((*key, entry.envelope.clone(), entry.started));
        }
        grouped
            .into_iter()
            .enumerate()
            .filter(|(_, jobs)| !jobs.is_empty())
            .map(|(topic, mut jobs)| {
                jobs.sort_unstable_by_key(|(key, _, _)| *key);
                let mut group = HeldGroup {
                    topic,
                    keys: Vec::with_capacity(jobs.len()),
                    envelopes: Vec::with_capacity(jobs.len()),
                    started: Vec::with_capacity(jobs.len()),
                };
                for (key, envelope, started) in jobs {
                    group.keys.push(key);
                    group.envelopes.push(envelope);
                    group.started.push(started);
                }
                group
            })
            .collect()
    }

    /// The jobs whose handler runs now: topic index, job id, start, in the
    /// order they were fetched (for the heartbeat).
    pub(super) fn running(&self) -> Vec<(usize, String, Instant)> {
        let mut running: Vec<(u64, usize, String, Instant)> = self
            .lock()
            .iter()
            .filter(|(_, entry)| !entry.finished)
            .filter_map(|(key, entry)| {
                let started = entry.started?;
                Some((*key, entry.topic, entry.envelope.id().to_owned(), started))
            })
            .collect();
        running.sort_unstable_by_key(|(key, ..)| *key);
        running
            .into_iter()
            .map(|(_, topic, id, started)| (topic, id, started))
            .collect()
    }

    /// Per topic index: handlers running, jobs waiting for one, and the
    /// earliest start of a running handler.
    pub(super) fn counts(&self, topics: usize) -> Vec<HeldCounts> {
        let mut counts = vec![HeldCounts::default(); topics];
        for entry in self.lock().values() {
            let c = &mut counts[entry.topic];
            match entry.started {
                _ if entry.finished => {}
                None => c.waiting += 1,
                Some(at) => {
                    c.running += 1;
                    c.earliest_start = Some(c.earliest_start.map_or(at, |e| e.min(at)));
                }
            }
        }
        counts
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
