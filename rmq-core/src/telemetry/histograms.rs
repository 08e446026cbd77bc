//! Job histograms kept by rmq itself, for a process that serves the
//! Prometheus text format itself (the worker binary): one relaxed atomic
//! add per bucket and one for the sum per sample, instead of a facade
//! histogram's sample queue (which costs about as much again to drain).
//!
//! Off unless [`collect_job_histograms`] is called before workers are
//! built; then `rmq_job_duration_seconds` and `rmq_job_wait_seconds` are
//! recorded here instead of through the recorder, and
//! [`render_job_histograms`] writes them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::queue::{format_float, header, sample};
use super::DURATION_BUCKETS;

static COLLECT: AtomicBool = AtomicBool::new(false);
static REGISTRY: OnceLock<Mutex<Vec<Entry>>> = OnceLock::new();

struct Entry {
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
    histogram: Arc<AtomicHistogram>,
}

/// From now on, workers built in this process keep their job histograms
/// here, for [`render_job_histograms`], instead of sending them to the
/// `metrics` recorder.
pub fn collect_job_histograms() {
    COLLECT.store(true, Ordering::Relaxed);
}

pub(crate) fn collecting() -> bool {
    COLLECT.load(Ordering::Relaxed)
}

/// A histogram with the buckets of [`DURATION_BUCKETS`].
#[derive(Default)]
pub(crate) struct AtomicHistogram {
    /// Per bucket (and a last one past every bound), non-cumulative.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// Bucket bounds in nanoseconds.
const BOUNDS_NS: [u64; DURATION_BUCKETS.len()] = {
    let mut ns = [0; DURATION_BUCKETS.len()];
    let mut i = 0;
    while i < ns.len() {
        ns[i] = (DURATION_BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    ns
};

/// The bucket of `ns`: the first whose bound it does not exceed.
fn bucket(ns: u64) -> usize {
    BOUNDS_NS.partition_point(|&bound| bound < ns)
}

impl AtomicHistogram {
    #[cfg(test)]
    fn record(&self, value: Duration) {
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Adds what `local` holds and empties it.
    pub(crate) fn merge(&self, local: &mut LocalHistogram) {
        if local.count == 0 {
            return;
        }
        for (shared, n) in self.buckets.iter().zip(local.buckets.iter_mut()) {
            if *n > 0 {
                shared.fetch_add(*n, Ordering::Relaxed);
                *n = 0;
            }
        }
        self.sum_ns.fetch_add(local.sum_ns, Ordering::Relaxed);
        local.sum_ns = 0;
        local.count = 0;
    }
}

/// Samples gathered by one task before they are merged into an
/// [`AtomicHistogram`] (no atomic operation per sample).
#[derive(Clone, Default)]
pub(crate) struct LocalHistogram {
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum_ns: u64,
    count: u64,
}

impl LocalHistogram {
    pub(crate) fn record(&mut self, value: Duration) {
        let ns = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(ns)] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
    }
}

/// The histogram `name{labels}`, registered once (workers of one process
/// share it).
pub(crate) fn register(
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
) -> Arc<AtomicHistogram> {
    let registry = REGISTRY.get_or_init(Mutex::default);
    let mut entries = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(entry) = entries
        .iter()
        .find(|e| e.name == name && e.labels == labels)
    {
        return Arc::clone(&entry.histogram);
    }
    let histogram = Arc::new(AtomicHistogram::default());
    entries.push(Entry {
        name,
        help,
        labels,
        histogram: Arc::clone(&histogram),
    });
    histogram
}

/// The collected job histograms in the Prometheus text format (nothing
/// before [`collect_job_histograms`] and a worker start).
pub fn render_job_histograms() -> String {
    let mut out = String::new();
    let Some(registry) = REGISTRY.get() else {
        return out;
    };
    let entries = registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut names: Vec<(&'static str, &'static str)> =
        entries.iter().map(|e| (e.name, e.help)).collect();
    names.sort_unstable();
    names.dedup_by_key(|(name, _)| *name);
    let bounds: Vec<String> = DURATION_BUCKETS.iter().map(|&b| format_float(b)).collect();
    for (name, help) in names {
        header(&mut out, name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let sum = format!("{name}_sum");
        let count = format!("{name}_count");
        for entry in entries.iter().filter(|e| e.name == name) {
            let labels: Vec<(&str, &str)> =
                entry.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut cumulative = 0;
            for (i, le) in bounds
                .iter()
                .chain(std::iter::once(&"+Inf".to_owned()))
                .enumerate()
            {
                cumulative += entry.histogram.buckets[i].load(Ordering::Relaxed);
                let mut with_le = labels.clone();
                with_le.push(("le", le));
                sample(&mut out, &bucket, &with_le, cumulative as f64);
            }
            let sum_s = entry.histogram.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            sample(&mut out, &sum, &labels, sum_s);
            sample(&mut out, &count, &labels, cumulative as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_values_up_to_their_bound() {
        let h = AtomicHistogram::default();
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(500));
        h.record(Duration::from_millis(2));
        h.record(Duration::from_secs(7200));
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 2, "0.5 ms holds 100 us and 500 us");
        assert_eq!(counts[2], 1, "2.5 ms holds 2 ms");
        assert_eq!(counts[DURATION_BUCKETS.len()], 1, "+Inf holds 2 h");
        assert_eq!(h.sum_ns.load(Ordering::Relaxed), 7_200_002_600_000);
        let mut local = LocalHistogram::default();
        local.record(Duration::from_micros(400));
        local.record(Duration::from_secs(20));
        h.merge(&mut local);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 3);
        assert_eq!(h.buckets[14].load(Ordering::Relaxed), 1, "30 s holds 20 s");
        assert_eq!(local.count, 0, "merged and emptied");
    }
}
