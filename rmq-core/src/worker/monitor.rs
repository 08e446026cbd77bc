//! The monitor: returns jobs whose lease expired (a crashed worker's) to
//! their queue as soon as the earliest lease deadline passes, and trims the
//! dead-letter and parse-error stores by age.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::dispatch::Backoff;
use super::metrics::Metrics;
use super::Shared;
use crate::Error;

/// Slack after a lease deadline before recovering, so a keeper that is a
/// little late does not lose its lease to clock jitter.
const SLACK: Duration = Duration::from_millis(5);

pub(super) async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut last_trim: Option<Instant> = None;
    loop {
        let wait = match pass(&shared, &mut last_trim).await {
            Ok(wait) => {
                backoff.reset();
                wait
            }
            Err(error) => {
                Metrics::add(&shared.metrics.redis_errors, 1);
                tracing::warn!(%error, "monitor pass failed; retrying");
                backoff.next()
            }
        };
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over every topic; returns how long to sleep before the next.
async fn pass(shared: &Shared, last_trim: &mut Option<Instant>) -> Result<Duration, Error> {
    let config = &shared.config;
    let mut wait = config.processing_monitor_interval;
    for topic in &shared.topics {
        loop {
            let recovered = shared
                .broker
                .recover(&topic.name, config.batch_size)
                .await?;
            if recovered.requeued + recovered.dead > 0 {
                tracing::warn!(
                    topic = %topic.name,
                    requeued = recovered.requeued,
                    dead = recovered.dead,
                    "recovered jobs whose lease expired (a worker stopped without reporting them)"
                );
            }
            if let Some(next) = recovered.next_deadline {
                wait = wait.min(next + SLACK);
            }
            if recovered.requeued + recovered.dead < config.batch_size {
                break;
            }
        }
    }
    if last_trim.is_none_or(|at| at.elapsed() >= config.monitor_interval) {
        for topic in &shared.topics {
            shared.broker.trim(&topic.name).await?;
        }
        *last_trim = Some(Instant::now());
    }
    Ok(wait)
}
