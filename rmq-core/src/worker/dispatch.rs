//! The dispatcher: keeps the runners fed with leased jobs, fetching in
//! batches while there is capacity, and blocking on a wake-up (or the next
//! due delayed job) when every topic is empty.
//!
//! A fetch in flight is never abandoned: at shutdown the dispatcher waits for
//! it, so the jobs Redis leased to this worker are held and given back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::telemetry::Op;
use super::{Job, Shared};
use crate::telemetry::Outcome;
use crate::Error;

/// Longest a blocked wait for new work lasts before it is renewed.
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

type WaitFuture = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send>>;

/// Fetch calls in flight at once: one can wait on Redis while the other's
/// batch is handed out, so Redis is never idle between batches.
const FETCHERS: usize = 2;

/// Fetches until `fetch` is cancelled (shutdown, or `worker quiet`); jobs
/// already fetched are handed to the runners unless `token` (shutdown) is
/// cancelled.
pub(super) async fn run(
    shared: Arc<Shared>,
    jobs: async_channel::Sender<Job>,
    permits: Arc<Semaphore>,
    token: CancellationToken,
    fetch: CancellationToken,
) {
    let fetchers = (0..FETCHERS).map(|i| {
        fetch_loop(
            Arc::clone(&shared),
            jobs.clone(),
            Arc::clone(&permits),
            token.clone(),
            fetch.clone(),
            i,
        )
    });
    futures_util::future::join_all(fetchers).await;
}

async fn fetch_loop(
    shared: Arc<Shared>,
    jobs: async_channel::Sender<Job>,
    permits: Arc<Semaphore>,
    token: CancellationToken,
    fetch: CancellationToken,
    mut first: usize,
) {
    let config = &shared.config;
    // Relative to the smallest capacity (the prefetch governor may park the
    // permits above it), so a fetch never waits for permits that are parked.
    let capacity = config.max_workers + config.task_queue_size;
    let watermark = config.batch_size.min(capacity.div_ceil(2)).max(1);
    let names = shared.topic_names();
    let topics = shared.topics.len();
    // Per topic: a topic whose calls fail waits out its own backoff while
    // the others are served.
    let mut failing: Vec<(Backoff, Option<Instant>)> =
        (0..topics).map(|_| (Backoff::default(), None)).collect();
    // Per topic: held back by its rate or concurrency limit until then.
    let mut throttled: Vec<Option<Instant>> = vec![None; topics];
    let limits: Vec<_> = shared
        .topics
        .iter()
        .map(|t| t.descriptor.policy.limits())
        .collect();
    let mut backoff = Backoff::default();
    let mut waiting: Option<WaitFuture> = None;
    let mut empty_streak = 0;
    let mut next_due: Option<Duration> = None;

    while !fetch.is_cancelled() {
        // Reserve room for a whole batch before asking Redis for it.
        let mut reserved = tokio::select! {
            () = fetch.cancelled() => return,
            permit = permits.acquire_many(watermark as u32) => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let extra = config.batch_size.saturating_sub(watermark) as u32;
        if let Ok(more) = permits.try_acquire_many(extra.min(permits.available_permits() as u32)) {
            reserved.merge(more);
        }
        let now = Instant::now();
        // When each topic may be fetched again (failing or held back).
        let ready_at = |i: usize| -> Option<Instant> {
            let failing_at = failing[i].1.filter(|&at| at > now);
            let throttled_at = throttled[i].filter(|&at| at > now);
            failing_at.max(throttled_at)
        };
        if (0..topics).all(|i| ready_at(i).is_some()) {
            // Every topic is failing or held back by a limit: wait for the
            // first one's retry.
            drop(reserved);
            let at = (0..topics).filter_map(ready_at).min().unwrap_or(now);
            tokio::select! {
                () = fetch.cancelled() => return,
                () = tokio::time::sleep_until(at.into()) => {}
            }
            continue;
        }
        let index = first % topics;
        first = first.wrapping_add(1);
        if ready_at(index).is_some() {
            continue;
        }
        let topic = &shared.topics[index].name;
        let fetched = match shared
            .broker
            .fetch_limited(topic, reserved.num_permits(), config.lease, &limits[index])
            .await
        {
            Ok(fetched) => {
                failing[index] = (Backoff::default(), None);
                shared.telemetry.redis_ok();
                fetched
            }
            Err(error) => {
                drop(reserved);
                super::metrics::Metrics::add(&shared.metrics.redis_errors, 1);
                shared.telemetry.redis_error(Op::Fetch, &error);
                if shared.fatal.raise(config, &error) {
                    return;
                }
                let (topic_backoff, retry_at) = &mut failing[index];
                let delay = topic_backoff.next();
                tracing::warn!(%error, topic = %topic, retry_in = ?delay, "fetch failed; retrying (other topics are served meanwhile)");
                *retry_at = Some(Instant::now() + delay);
                continue;
            }
        };
        let got = fetched.jobs.len();
        next_due = min_opt(next_due, fetched.next_due);
        let fetched_at = Instant::now();
        let telemetry = shared.telemetry.topic(index);
        if let (Some(limit), Some(wait)) = (fetched.throttled, fetched.wait) {
            // Held back: sleep exactly until the limit lets more through
            // (the other topics are served meanwhile).
            throttled[index] = Some(fetched_at + wait);
            super::metrics::Metrics::add(&shared.metrics.throttled, 1);
            telemetry.throttled(limit);
            tracing::trace!(topic = %topic, limit = limit.as_str(), ?wait, "fetch held back by a limit");
        }
        if fetched.expired > 0 {
            telemetry.processed(Outcome::Expired, fetched.expired as usize);
            tracing::info!(topic = %topic, jobs = fetched.expired, "jobs not started within their TTL; dead-lettered as expired");
        }
        if got > 0 {
            empty_streak = 0;
            next_due = None;
            // Busy again: a BLPOP still pending would take a wake-up meant
            // for an idle worker (dropping it closes its connection).
            waiting = None;
            // The runners give a permit back as each job finishes.
            telemetry.fetched(got);
            if let Some(taken) = reserved.split(got) {
                taken.forget();
            }
            drop(reserved);
            // Every fetched job is held first: whatever is not handed to a
            // runner before shutdown goes back to the queue from there.
            for envelope in fetched.jobs {
                let key = shared.held.insert(index, envelope.clone());
                let waited = (envelope.retries_used() == 0 && !envelope.was_delayed()).then(|| {
                    Duration::from_millis(
                        fetched.server_ms.saturating_sub(envelope.enqueued_at_ms()),
                    )
                });
                let job = Job {
                    topic: index,
                    key,
                    envelope,
                    fetched_at,
                    waited,
                };
                tokio::select! {
                    biased;
                    () = token.cancelled() => {}
                    sent = jobs.send(job) => if sent.is_err() {
                        return;
                    },
                }
            }
            continue;
        }
        drop(reserved);
        if fetched.throttled.is_some() {
            // Not empty, only held back: the topic is skipped until then.
            continue;
        }
        empty_streak += 1;
        if empty_streak < topics {
            continue;
        }
        empty_streak = 0;
        // Every topic came back empty: block until an enqueue wakes us, the
        // next delayed job is due, or the fallback interval passes.
        let fallback = config.expired_check_interval;
        let mut timer = next_due.take().map_or(fallback, |due| due.min(fallback));
        let now = Instant::now();
        if let Some(at) = throttled.iter().flatten().filter(|&&at| at > now).min() {
            timer = timer.min(at.duration_since(now));
        }
        let wait = waiting.get_or_insert_with(|| {
            let broker = shared.broker.clone();
            // A failing topic's wake-up key may be what fails.
            let now = Instant::now();
            let names: Vec<String> = names
                .iter()
                .zip(&failing)
                .filter(|(_, (_, at))| at.is_none_or(|at| at <= now))
                .map(|(name, _)| name.clone())
                .collect();
            Box::pin(async move { broker.wait(&names, WAKE_TIMEOUT).await })
        });
        tokio::select! {
            () = fetch.cancelled() => return,
            woken = wait => {
                waiting = None;
                match woken {
                    Ok(_) => {
                        backoff.reset();
                        shared.telemetry.redis_ok();
                    }
                    Err(error) => {
                        shared.telemetry.redis_error(Op::Wait, &error);
                        if shared.fatal.raise(config, &error) {
                            return;
                        }
                        tracing::warn!(%error, "waiting for new jobs failed; retrying");
                        tokio::select! {
                            () = fetch.cancelled() => return,
                            () = tokio::time::sleep(backoff.next()) => {}
                        }
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
