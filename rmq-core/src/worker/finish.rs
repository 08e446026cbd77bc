//! What a successful run leaves behind besides its ack, for the jobs that
//! ask for it: the kept result of a `keep_result` task, and the next step
//! of a chain. Plain jobs never get here ([`applies`] is a flag test and a
//! prefix comparison of the id).

use std::time::Duration;

use super::{Shared, Topic};
use crate::broker::{parse_chain_step_id, ChainRecord};
use crate::envelope::Envelope;
use crate::handler::{self, Invocation};
use crate::{Error, TaskError};

/// Runs the handler of a job for which [`applies`] holds, with what its
/// completion needs before and after.
pub(super) async fn run(
    shared: &Shared,
    topic: &Topic,
    envelope: &Envelope,
    invocation: Invocation,
) -> Result<(), TaskError> {
    let after = After::prepare(shared, topic, envelope).await?;
    if after.skip {
        tracing::info!("chain step completed already; not run again");
        return after.complete(shared, topic, envelope, None).await;
    }
    tracing::debug!("job started");
    let invocation = invocation.keep_output(after.wants_output());
    let output = handler::run(topic.descriptor.handler, invocation, topic.timeout).await?;
    after.complete(shared, topic, envelope, output).await
}

/// What a job's completion needs besides its ack.
struct After {
    /// The task's `keep_result`.
    keep: Option<Duration>,
    /// The job is step `.1` of this chain.
    chain: Option<(ChainRecord, usize)>,
    /// The chain's record says this step completed already (a step enqueued
    /// again by a step before it that ran twice): do not run it.
    skip: bool,
}

/// Whether the job of `topic` needs more than an ack when it completes.
pub(super) fn applies(topic: &Topic, envelope: &Envelope) -> bool {
    topic.descriptor.policy.keep_result.is_some() || envelope.id().starts_with("chain:")
}

impl After {
    /// Reads what the job's completion will need (a chain step's record).
    async fn prepare(
        shared: &Shared,
        topic: &Topic,
        envelope: &Envelope,
    ) -> Result<After, TaskError> {
        let keep = topic.descriptor.policy.keep_result;
        let mut after = After {
            keep,
            chain: None,
            skip: false,
        };
        let Some((chain, step)) = parse_chain_step_id(envelope.id()) else {
            return Ok(after);
        };
        let record = shared.broker.chain(chain).await.map_err(|e| {
            TaskError::retryable(format!("could not read the record of chain `{chain}`: {e}"))
        })?;
        // An id that only looks like a chain step's (or a chain whose
        // record expired) runs as a plain job.
        if let Some(record) = record.filter(|r| step < r.steps.len()) {
            after.skip = record.done.is_some_and(|done| done >= step);
            after.chain = Some((record, step));
        }
        Ok(after)
    }

    /// Whether the handler must return its value, encoded.
    fn wants_output(&self) -> bool {
        self.keep.is_some()
            || self.chain.as_ref().is_some_and(|(record, step)| {
                record
                    .steps
                    .get(step + 1)
                    .is_some_and(|next| next.payload.is_none())
            })
    }

    /// After the handler succeeded, before the ack: keeps the result,
    /// enqueues the chain's next step, records this step done and wakes
    /// waiters. An error here fails the attempt (it runs again: a result
    /// is overwritten, a next step is not enqueued twice).
    async fn complete(
        self,
        shared: &Shared,
        topic: &Topic,
        envelope: &Envelope,
        output: Option<Vec<u8>>,
    ) -> Result<(), TaskError> {
        let failed = |what: &str, e: Error| {
            TaskError::retryable(format!("the job completed, but {what} failed: {e}"))
        };
        let broker = &shared.broker;
        let id = envelope.id();
        let kept = match (self.keep, &output) {
            (Some(ttl), Some(output)) if !self.skip => Some((output.as_slice(), ttl)),
            _ => None,
        };
        let Some((record, step)) = &self.chain else {
            return broker
                .store_result(&topic.name, id, kept, true)
                .await
                .map_err(|e| failed("keeping its result", e));
        };
        if kept.is_some() {
            broker
                .store_result(&topic.name, id, kept, false)
                .await
                .map_err(|e| failed("keeping its result", e))?;
        }
        if !self.skip {
            if let Some(next) = record.steps.get(step + 1) {
                let payload = match (&next.payload, &output) {
                    (Some(payload), _) => payload.as_slice(),
                    (None, Some(output)) => output.as_slice(),
                    (None, None) => {
                        return Err(TaskError::permanent(format!(
                            "step {} of chain `{}` takes this step's result, but the handler returned none",
                            step + 1,
                            record.id
                        )))
                    }
                };
                broker
                    .enqueue_chain_step(record, step + 1, payload)
                    .await
                    .map_err(|e| failed("enqueueing the chain's next step", e))?;
            }
            broker
                .chain_step_done(&record.id, *step, shared.config.dead_letter_max_age)
                .await
                .map_err(|e| failed("recording the chain step done", e))?;
        }
        broker
            .store_result(&topic.name, id, None, true)
            .await
            .map_err(|e| failed("waking the chain's waiters", e))
    }
}

/// After a job of `topic` died or was cancelled: wakes the waiters of a
/// `keep_result` job or a chain step. A failure is logged only (waiters
/// read the job's status again within a second anyway).
pub(super) async fn ended(shared: &Shared, topic: &Topic, envelope: &Envelope) {
    if !applies(topic, envelope) {
        return;
    }
    if let Err(error) = shared
        .broker
        .store_result(&topic.name, envelope.id(), None, true)
        .await
    {
        tracing::debug!(%error, topic = %topic.name, id = envelope.id(), "could not wake the waiters of a job that ended");
    }
}
