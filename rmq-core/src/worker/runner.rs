//! A runner executes handlers, one job at a time, until shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::telemetry::RunnerSamples;
use super::{finish, Job, Shared};
use crate::handler::{self, Invocation};
use crate::{Cancellation, TaskError};

/// A job that ran, with how it went.
pub(super) struct Done {
    pub(super) job: Job,
    pub(super) result: Result<(), TaskError>,
    pub(super) elapsed: Duration,
    /// The job was asked to cancel before its handler ended.
    pub(super) cancelled: bool,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    jobs: async_channel::Receiver<Job>,
    done: async_channel::Sender<Done>,
    permits: Arc<Semaphore>,
    token: CancellationToken,
) {
    let mut samples = RunnerSamples::new(&shared.telemetry);
    run_jobs(&shared, &jobs, &done, &permits, &token, &mut samples).await;
    samples.merge(&shared.telemetry);
}

async fn run_jobs(
    shared: &Arc<Shared>,
    jobs: &async_channel::Receiver<Job>,
    done: &async_channel::Sender<Done>,
    permits: &Semaphore,
    token: &CancellationToken,
    samples: &mut RunnerSamples,
) {
    // The handlers' cancellation signal, reused from job to job when the
    // last handler kept no copy of its context.
    let mut signal = Cancellation::new();
    loop {
        samples.merge_if(&shared.telemetry, jobs.is_empty());
        let job = tokio::select! {
            biased;
            () = token.cancelled() => return,
            job = jobs.recv() => match job {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        signal.renew();
        if !shared.held.start(job.key, started, &signal) {
            // Its lease was lost while it waited here (the lease keeper
            // dropped it): another worker runs the recovered copy.
            permits.add_permits(1);
            continue;
        }
        shared.starts.add();
        let result = if signal.is_cancelled() {
            // Asked to cancel while it waited for a runner: it ends
            // cancelled without running.
            tracing::info!(topic = %shared.topics[job.topic].name, id = job.envelope.id(), "job cancelled before it started; not run");
            Err(TaskError::cancelled())
        } else {
            run_one(shared, &job, &signal, started, samples).await
        };
        let elapsed = started.elapsed();
        samples.duration(&shared.telemetry, job.topic, elapsed);
        let cancelled = shared.held.finish(job.key);
        permits.add_permits(1);
        if done
            .try_send(Done {
                job,
                result,
                elapsed,
                cancelled,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Runs the handler of a started job (in its span, with its context).
async fn run_one(
    shared: &Arc<Shared>,
    job: &Job,
    signal: &Cancellation,
    started: Instant,
    samples: &mut RunnerSamples,
) -> Result<(), TaskError> {
    let topic = &shared.topics[job.topic];
    let context = job.envelope.context_with(&topic.name, signal.clone());
    let span = tracing::info_span!(
        "job",
        topic = %topic.name,
        id = %context.id,
        attempt = context.attempt,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    if let Some(propagator) = crate::trace::propagator() {
        let parent = job.envelope.trace_context();
        propagator.job_span(&span, &context, parent.as_ref());
    }
    let invocation = Invocation::new(job.envelope.payload_bytes(), context, shared.state.clone());
    if let Some(waited) = job.waited {
        samples.wait(
            &shared.telemetry,
            job.topic,
            job.envelope.priority(),
            waited + started.saturating_duration_since(job.fetched_at),
        );
    }
    if finish::applies(topic, &job.envelope) {
        // Boxed, so that the plain path's future stays as small as it
        // was: plain jobs pay for none of this.
        Box::pin(finish::run(shared, topic, &job.envelope, invocation))
            .instrument(span)
            .await
    } else {
        async {
            tracing::debug!("job started");
            handler::run(topic.descriptor.handler, invocation, topic.timeout)
                .await
                .map(drop)
        }
        .instrument(span)
        .await
    }
}
