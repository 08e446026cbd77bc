//! How many jobs a worker fetches ahead of its free handlers.
//!
//! At least `task_queue_size`, and more while handlers are fast enough to
//! start them soon: the prefetch holds about `HORIZON` of work at the rate
//! handlers have been starting jobs, up to `2 * batch_size`. Fast handlers
//! then get whole fetch batches (Redis's cost per job falls with the batch
//! size), and slow ones never sit on jobs another worker could start now.
//!
//! The limit works on the worker's permits (one per job fetched and not
//! finished): the governor parks the permits above the current limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// How long a prefetched job should wait for a handler, at most, when the
/// prefetch is above `task_queue_size`.
const HORIZON: Duration = Duration::from_millis(100);
/// How often the limit is recomputed.
const TICK: Duration = Duration::from_millis(50);

/// The most jobs a worker holds: running plus prefetched.
pub(super) fn max_held(config: &Config) -> usize {
    config.max_workers + max_prefetch(config)
}

fn max_prefetch(config: &Config) -> usize {
    config.task_queue_size.max(2 * config.batch_size)
}

/// The prefetch for a start rate of `per_sec` jobs per second.
fn prefetch(config: &Config, per_sec: f64) -> usize {
    let wanted = (per_sec * HORIZON.as_secs_f64()) as usize;
    wanted.clamp(config.task_queue_size, max_prefetch(config))
}

/// Jobs started by the runners, counted for the governor.
#[derive(Default)]
pub(super) struct Starts(AtomicU64);

impl Starts {
    pub(super) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Parks the permits above the smallest prefetch: call before anything
/// takes permits, and hand the result to [`govern`].
pub(super) fn park(config: &Config, permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    let above = max_prefetch(config) - config.task_queue_size;
    Arc::clone(permits)
        .try_acquire_many_owned(above as u32)
        .ok()
}

/// Adjusts the parked permits until `token` is cancelled.
pub(super) async fn govern(
    config: Config,
    permits: Arc<Semaphore>,
    mut parked: Option<OwnedSemaphorePermit>,
    starts: Arc<Starts>,
    token: CancellationToken,
) {
    let max = max_prefetch(&config);
    let mut last = (Instant::now(), starts.get());
    let mut rate = 0.0;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once: no rate can be measured yet.
    tick.tick().await;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = (Instant::now(), starts.get());
        let elapsed = now.0.duration_since(last.0).max(TICK / 2).as_secs_f64();
        let sample = (now.1 - last.1) as f64 / elapsed;
        last = now;
        // Smoothed, so one idle tick does not halve a busy worker's prefetch.
        rate = 0.5 * rate + 0.5 * sample;
        let target = (max - prefetch(&config, rate)) as u32;
        let held = parked.as_ref().map_or(0, |p| p.num_permits() as u32);
        if held > target {
            if let Some(p) = parked.as_mut() {
                drop(p.split((held - target) as usize));
            }
        } else if held < target {
            // Only what is free now: permits in use come back as jobs finish.
            let free = (permits.available_permits() as u32).min(target - held);
            if free > 0 {
                if let Ok(more) = Arc::clone(&permits).try_acquire_many_owned(free) {
                    match parked.as_mut() {
                        Some(p) => p.merge(more),
                        None => parked = Some(more),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_follows_the_start_rate_within_its_bounds() {
        let config = Config::default();
        assert_eq!(max_prefetch(&config), 200);
        assert_eq!(prefetch(&config, 0.0), 8);
        // Slow handlers: the floor.
        assert_eq!(prefetch(&config, 5.0), 8);
        // 1,000 starts/s: about 100 ms of work.
        assert_eq!(prefetch(&config, 1_000.0), 100);
        // No-op handlers: two fetch batches.
        assert_eq!(prefetch(&config, 200_000.0), 200);
    }
}
