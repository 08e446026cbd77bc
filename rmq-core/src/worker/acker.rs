//! The acker reports outcomes to Redis: successes in one batched ack per
//! topic, failures one script call each. Whatever finished while a call was
//! in flight goes in the next batch, so batches grow with the load; a few
//! ackers run at once so Redis always has the next batch at hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::dispatch::Backoff;
use super::metrics::Metrics;
use super::runner::Done;
use super::telemetry::Op;
use super::Shared;
use crate::broker::{FailOutcome, Failure};
use crate::error::Cause;
use crate::telemetry::Outcome;
use crate::{BatchEnd, Error, TaskErrorKind};

pub(super) async fn run(
    shared: Arc<Shared>,
    done: async_channel::Receiver<Done>,
    token: CancellationToken,
) {
    let max = shared.config.batch_size;
    let mut batch = Vec::with_capacity(max);
    let mut give_up_at = None;
    while let Ok(first) = done.recv().await {
        batch.push(first);
        while batch.len() < max {
            match done.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        report(&shared, &mut batch, &token, &mut give_up_at).await;
    }
}

/// How long, once the worker is stopping, reporting may keep failing before
/// the acker gives up (a stopping worker must not hang on a dead Redis).
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

/// Reports a batch, retrying on Redis errors until it succeeds or the worker
/// stops; unreported jobs stay held and go back to the queue at shutdown.
async fn report(
    shared: &Shared,
    batch: &mut Vec<Done>,
    token: &CancellationToken,
    give_up_at: &mut Option<Instant>,
) {
    let mut backoff = Backoff::default();
    let mut after_error = false;
    loop {
        if give_up_at.is_some_and(|at| Instant::now() >= at) {
            tracing::error!(
                jobs = batch.len(),
                "giving up reporting at shutdown; the jobs stay leased and are recovered when their lease expires"
            );
            shared.held.remove_all(batch.drain(..).map(|d| d.job.key));
            return;
        }
        match report_once(shared, batch, after_error).await {
            Ok(()) => {
                shared.telemetry.redis_ok();
                batch.clear();
                return;
            }
            Err(error) => {
                Metrics::add(&shared.metrics.redis_errors, 1);
                shared.telemetry.redis_error(Op::Report, &error);
                if shared.fatal.raise(&shared.config, &error) && give_up_at.is_none() {
                    *give_up_at = Some(Instant::now());
                }
                tracing::warn!(%error, jobs = batch.len(), "reporting job outcomes failed; retrying");
                after_error = true;
                if token.is_cancelled() && give_up_at.is_none() {
                    *give_up_at = Some(Instant::now() + SHUTDOWN_PATIENCE);
                }
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// One attempt at reporting: what was reported leaves `batch`, the rest
/// stays for the next attempt. Every script checks the lease, so reporting a
/// job twice is harmless: after a failed attempt (whose call may have run,
/// its reply lost), a job no longer leased reads as already reported.
async fn report_once(
    shared: &Shared,
    batch: &mut Vec<Done>,
    after_error: bool,
) -> Result<(), Error> {
    let mut reported = vec![false; batch.len()];
    let result = report_into(shared, batch, &mut reported, after_error).await;
    let keys = batch
        .iter()
        .zip(&reported)
        .filter(|(_, &done)| done)
        .map(|(d, _)| d.job.key);
    shared.held.remove_all(keys);
    let mut flags = reported.into_iter();
    batch.retain(|_| !flags.next().unwrap_or(false));
    result
}

async fn report_into(
    shared: &Shared,
    batch: &[Done],
    reported: &mut [bool],
    after_error: bool,
) -> Result<(), Error> {
    let mut successes: Vec<Vec<usize>> = vec![Vec::new(); shared.topics.len()];
    let mut failures = Vec::new();
    for (i, done) in batch.iter().enumerate() {
        match &done.result {
            Ok(()) => successes[done.job.topic].push(i),
            Err(_) => failures.push(i),
        }
    }
    for (topic, indexes) in successes.iter().enumerate() {
        if indexes.is_empty() {
            continue;
        }
        super::batch::succeeded(shared, indexes.iter().map(|&i| &batch[i])).await?;
        let envelopes: Vec<_> = indexes
            .iter()
            .map(|&i| batch[i].job.envelope.clone())
            .collect();
        let durations: Vec<_> = indexes.iter().map(|&i| batch[i].elapsed).collect();
        let lost = shared
            .broker
            .ack(&shared.topics[topic].name, &envelopes, &durations)
            .await?;
        let telemetry = shared.telemetry.topic(topic);
        if after_error {
            // The earlier call most likely completed them.
            Metrics::add(&shared.metrics.completed, indexes.len());
            telemetry.processed(Outcome::Completed, indexes.len());
            if !lost.is_empty() {
                tracing::info!(topic = %shared.topics[topic].name, jobs = lost.len(), "jobs already completed by an earlier report whose reply was lost");
            }
        } else {
            Metrics::add(&shared.metrics.completed, indexes.len() - lost.len());
            telemetry.processed(Outcome::Completed, indexes.len() - lost.len());
            for &l in &lost {
                lease_lost(shared, &batch[indexes[l]]);
            }
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let name = &shared.topics[topic].name;
            for (n, &i) in indexes.iter().enumerate() {
                if !lost.contains(&n) {
                    let done = &batch[i];
                    tracing::debug!(topic = %name, id = done.job.envelope.id(), attempt = done.job.envelope.attempt(), elapsed = ?done.elapsed, "job completed");
                }
            }
        }
        for &i in indexes {
            reported[i] = true;
        }
    }
    let outcomes = join_all(
        failures
            .iter()
            .map(|&i| report_failure(shared, &batch[i], after_error)),
    )
    .await;
    let mut first_error = None;
    for (&i, outcome) in failures.iter().zip(outcomes) {
        match outcome {
            Ok(()) => reported[i] = true,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn report_failure(shared: &Shared, done: &Done, after_error: bool) -> Result<(), Error> {
    let Err(error) = &done.result else {
        return Ok(());
    };
    let topic = &shared.topics[done.job.topic];
    let envelope = &done.job.envelope;
    let message = error.to_string();
    let member = super::batch::is_member(envelope);
    if error.kind() == TaskErrorKind::Malformed {
        tracing::error!(topic = %topic.name, id = envelope.id(), error = %message, "payload does not decode; moved to the parse-error store");
        if member {
            super::batch::ended(shared, envelope, BatchEnd::Dead).await?;
        }
        if shared
            .broker
            .reject(&topic.name, envelope, &message)
            .await?
        {
            Metrics::add(&shared.metrics.malformed, 1);
            shared
                .telemetry
                .topic(done.job.topic)
                .processed(Outcome::Malformed, 1);
        } else {
            lease_lost(shared, done);
        }
        return Ok(());
    }
    if error.kind() == TaskErrorKind::RateLimited {
        let after = error.retry_after().unwrap_or_default();
        match shared.broker.redelay(&topic.name, envelope, after).await? {
            FailOutcome::LeaseLost if after_error => {}
            FailOutcome::LeaseLost => lease_lost(shared, done),
            FailOutcome::Cancelled => {
                if member {
                    super::batch::ended(shared, envelope, BatchEnd::Cancelled).await?;
                }
                Metrics::add(&shared.metrics.cancelled, 1);
                shared
                    .telemetry
                    .topic(done.job.topic)
                    .processed(Outcome::Cancelled, 1);
            }
            _ => {
                Metrics::add(&shared.metrics.rate_limited, 1);
                shared
                    .telemetry
                    .topic(done.job.topic)
                    .processed(Outcome::RateLimited, 1);
                tracing::info!(topic = %topic.name, id = envelope.id(), attempt = envelope.attempt(), retry_in = ?after, "rate limited upstream; delayed again, no attempt counted");
            }
        }
        return Ok(());
    }
    let failure = Failure {
        error: &message,
        permanent: error.kind() == TaskErrorKind::Permanent,
        retry_delay: shared.retry_delay(topic, envelope),
        cancelled: done.cancelled || error.kind() == TaskErrorKind::Cancelled,
    };
    let telemetry = shared.telemetry.topic(done.job.topic);
    // A timeout or a panic counts as such, whatever became of the job.
    let stopped = match error.cause() {
        Cause::Timeout => Some(Outcome::Timeout),
        Cause::Panic => Some(Outcome::Panicked),
        Cause::Handler => None,
    };
    let recorded = super::batch::before_fail(shared, envelope, &failure).await?;
    let outcome = shared.broker.fail(&topic.name, envelope, &failure).await?;
    super::batch::after_fail(shared, envelope, recorded, outcome).await?;
    if matches!(outcome, FailOutcome::Dead | FailOutcome::Cancelled) {
        super::finish::ended(shared, topic, envelope).await;
    }
    match outcome {
        FailOutcome::Retrying => {
            Metrics::add(&shared.metrics.retried, 1);
            telemetry.processed(stopped.unwrap_or(Outcome::Retried), 1);
            tracing::warn!(topic = %topic.name, id = envelope.id(), attempt = envelope.attempt(), retry_in = ?failure.retry_delay, error = %message, "job failed; will retry");
        }
        FailOutcome::Dead => {
            Metrics::add(&shared.metrics.dead, 1);
            telemetry.processed(stopped.unwrap_or(Outcome::Dead), 1);
            tracing::warn!(topic = %topic.name, id = envelope.id(), attempt = envelope.attempt(), permanent = failure.permanent, error = %message, "job failed for good; dead-lettered");
        }
        FailOutcome::Cancelled => {
            Metrics::add(&shared.metrics.cancelled, 1);
            telemetry.processed(Outcome::Cancelled, 1);
            tracing::info!(topic = %topic.name, id = envelope.id(), attempt = envelope.attempt(), error = %message, "job cancelled while it ran; not retried");
        }
        FailOutcome::LeaseLost if after_error => {
            tracing::info!(topic = %topic.name, id = envelope.id(), "failure already recorded by an earlier report whose reply was lost");
        }
        FailOutcome::LeaseLost => lease_lost(shared, done),
        FailOutcome::Redelayed => {}
    }
    Ok(())
}

fn lease_lost(shared: &Shared, done: &Done) {
    Metrics::add(&shared.metrics.lease_lost, 1);
    let telemetry = shared.telemetry.topic(done.job.topic);
    telemetry.processed(Outcome::LeaseLost, 1);
    telemetry.lease_lost(1);
    tracing::warn!(
        topic = %shared.topics[done.job.topic].name,
        id = done.job.envelope.id(),
        "the job was no longer leased to this worker when its outcome was reported (its lease expired and it was handed out again, or Redis lost its data in a restart); outcome ignored"
    );
}
