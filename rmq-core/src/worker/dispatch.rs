//! The dispatcher: keeps the runners fed with leased jobs, fetching in
//! batches while there is capacity, and blocking on a wake-up (or the next
//! due delayed job) when every topic is empty.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Job, Shared};
use crate::Error;

/// Longest a blocked wait for new work lasts before it is renewed.
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

type WaitFuture = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send>>;

pub(super) async fn run(
    shared: Arc<Shared>,
    jobs: async_channel::Sender<Job>,
    permits: Arc<Semaphore>,
    token: CancellationToken,
) {
    let config = &shared.config;
    let capacity = config.max_workers + config.task_queue_size;
    let watermark = config.batch_size.min(capacity.div_ceil(2)).max(1);
    let lease = config.lease;
    let names = shared.topic_names();
    let mut backoff = Backoff::default();
    let mut waiting: Option<WaitFuture> = None;
    let mut first = 0;

    while !token.is_cancelled() {
        if permits.available_permits() < watermark {
            tokio::select! {
                () = token.cancelled() => return,
                permit = permits.acquire_many(watermark as u32) => drop(permit),
            }
        }
        let mut fetched_any = false;
        let mut next_due: Option<Duration> = None;
        let mut failed = false;
        for offset in 0..shared.topics.len() {
            let index = (first + offset) % shared.topics.len();
            let free = permits.available_permits();
            if free == 0 {
                break;
            }
            let want = free.min(config.batch_size);
            match shared
                .broker
                .fetch(&shared.topics[index].name, want, lease)
                .await
            {
                Ok(fetched) => {
                    backoff.reset();
                    next_due = min_opt(next_due, fetched.next_due);
                    if fetched.jobs.is_empty() {
                        continue;
                    }
                    fetched_any = true;
                    if let Ok(taken) = permits.try_acquire_many(fetched.jobs.len() as u32) {
                        taken.forget();
                    }
                    for envelope in fetched.jobs {
                        let key = shared.held.insert(index, envelope.clone());
                        let job = Job {
                            topic: index,
                            key,
                            envelope,
                        };
                        if jobs.send(job).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    super::metrics::Metrics::add(&shared.metrics.redis_errors, 1);
                    tracing::warn!(%error, topic = %shared.topics[index].name, "fetch failed; retrying");
                    failed = true;
                    break;
                }
            }
        }
        first = (first + 1) % shared.topics.len();
        if failed {
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(backoff.next()) => {}
            }
            continue;
        }
        if fetched_any {
            continue;
        }
        let fallback = config.expired_check_interval;
        let timer = next_due.map_or(fallback, |due| due.min(fallback));
        let wait = waiting.get_or_insert_with(|| {
            let broker = shared.broker.clone();
            let names = names.clone();
            Box::pin(async move { broker.wait(&names, WAKE_TIMEOUT).await })
        });
        tokio::select! {
            () = token.cancelled() => return,
            woken = wait => {
                waiting = None;
                if let Err(error) = woken {
                    tracing::warn!(%error, "waiting for new jobs failed; retrying");
                    tokio::select! {
                        () = token.cancelled() => return,
                        () = tokio::time::sleep(backoff.next()) => {}
                    }
                }
            }
            () = tokio::time::sleep(timer) => {}
        }
    }
}

fn min_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Exponential backoff for retrying Redis calls: 50 ms doubling to 5 s.
#[derive(Default)]
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(super) fn next(&mut self) -> Duration {
        let delay = Duration::from_millis(50 << self.failures.min(7)).min(Duration::from_secs(5));
        self.failures += 1;
        delay
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}
