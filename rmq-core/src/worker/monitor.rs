//! The monitor: returns jobs whose lease expired (a crashed worker's) to
//! their queue as soon as the earliest lease deadline passes, and trims the
//! dead-letter and parse-error stores by age.
//!
//! Every topic is recovered and trimmed on every pass, whatever another
//! topic's calls do: a topic whose keys Redis refuses is retried with a
//! backoff of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::dispatch::Backoff;
use super::metrics::Metrics;
use super::telemetry::Op;
use super::Shared;
use crate::Error;

/// Slack after a lease deadline before recovering, so a keeper that is a
/// little late does not lose its lease to clock jitter.
const SLACK: Duration = Duration::from_millis(5);

pub(super) async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut topics: Vec<TopicState> = shared
        .topics
        .iter()
        .map(|_| TopicState::default())
        .collect();
    let mut last_trim: Option<Instant> = None;
    loop {
        let trim = last_trim.is_none_or(|at| at.elapsed() >= shared.config.monitor_interval);
        if trim {
            last_trim = Some(Instant::now());
        }
        let wait = pass(&shared, &mut topics, trim).await;
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What the monitor keeps per topic between passes.
#[derive(Default)]
struct TopicState {
    backoff: Backoff,
    /// A failed topic is not called again before this instant.
    retry_at: Option<Instant>,
}

/// One pass over every topic; returns how long to sleep before the next.
///
/// Never longer than one lease: a job leased right after this pass (by this
/// worker or one configured alike) is recovered within `SLACK` of its
/// deadline, not a whole `processing_monitor_interval` later.
async fn pass(shared: &Shared, topics: &mut [TopicState], trim: bool) -> Duration {
    let config = &shared.config;
    let mut wait = config.processing_monitor_interval.min(config.lease + SLACK);
    let now = Instant::now();
    for (topic, state) in shared.topics.iter().zip(topics.iter_mut()) {
        if let Some(at) = state.retry_at.filter(|&at| at > now) {
            wait = wait.min(at - now);
            continue;
        }
        match topic_pass(shared, &topic.name, trim).await {
            Ok(next) => {
                shared.telemetry.redis_ok();
                state.backoff.reset();
                state.retry_at = None;
                if let Some(next) = next {
                    wait = wait.min(next + SLACK);
                }
            }
            Err(error) => {
                Metrics::add(&shared.metrics.redis_errors, 1);
                shared.telemetry.redis_error(Op::Monitor, &error);
                if shared.fatal.raise(config, &error) {
                    return wait;
                }
                let delay = state.backoff.next();
                tracing::warn!(%error, topic = %topic.name, retry_in = ?delay, "monitoring the topic failed (its leases are not recovered until this succeeds); other topics are not affected");
                state.retry_at = Some(now + delay);
                wait = wait.min(delay);
            }
        }
    }
    wait
}

/// Recovers every expired lease of `topic` (and trims it when `trim`);
/// returns the time until its earliest remaining lease deadline.
async fn topic_pass(shared: &Shared, topic: &str, trim: bool) -> Result<Option<Duration>, Error> {
    let batch = shared.config.batch_size;
    let next = loop {
        let recovered = shared.broker.recover(topic, batch).await?;
        if recovered.requeued + recovered.dead > 0 {
            tracing::warn!(
                topic,
                requeued = recovered.requeued,
                dead = recovered.dead,
                "recovered jobs whose lease expired (a worker stopped without reporting them)"
            );
        }
        if recovered.requeued + recovered.dead < batch {
            break recovered.next_deadline;
        }
    };
    if trim {
        shared.broker.trim(topic).await?;
    }
    Ok(next)
}
