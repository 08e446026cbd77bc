//! The tasks the benchmark runs, and what they record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// Jobs run so far, and the count at which `DONE` is notified.
pub(crate) static RAN: AtomicU64 = AtomicU64::new(0);
pub(crate) static TARGET: AtomicU64 = AtomicU64::new(u64::MAX);
pub(crate) static DONE: Notify = Notify::const_new();
/// Nanoseconds since the epoch when the first job of a run started.
pub(crate) static FIRST_NS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds since the epoch when the latest job of a run ran.
pub(crate) static LAST_NS: AtomicU64 = AtomicU64::new(0);
/// Latencies (ns) recorded by `timed`.
pub(crate) static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn reset(target: u64) {
    RAN.store(0, Ordering::SeqCst);
    FIRST_NS.store(0, Ordering::SeqCst);
    TARGET.store(target, Ordering::SeqCst);
    LATENCIES.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn count_one() {
    let ran = RAN.fetch_add(1, Ordering::AcqRel) + 1;
    let now = now_ns();
    if ran == 1 {
        FIRST_NS.store(now, Ordering::Release);
    }
    LAST_NS.fetch_max(now, Ordering::AcqRel);
    if ran == TARGET.load(Ordering::Acquire) {
        DONE.notify_one();
    }
}

/// The no-op job: the payload of the published comparison.
#[rmq::task(topic = "bench_noop", retries = 0)]
pub(crate) async fn noop(
    order_id: String,
    user_id: u64,
    amount: f64,
) -> Result<(), rmq::TaskError> {
    let _ = (order_id, user_id, amount);
    count_one();
    Ok(())
}

/// Records how late the job started against `due_ns` (send time, or send
/// time plus delay).
#[rmq::task(topic = "bench_timed", retries = 0)]
pub(crate) async fn timed(due_ns: u64) -> Result<(), rmq::TaskError> {
    let late = now_ns().saturating_sub(due_ns);
    LATENCIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(late);
    count_one();
    Ok(())
}
