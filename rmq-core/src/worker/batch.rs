//! Batch bookkeeping of finished jobs, before their ack: a batch child is
//! recorded in its batch (see [`crate::batch`]) before the script that ends
//! it runs, so a crash in between re-runs the child, which records it again
//! (changing nothing) instead of leaving the batch one child short.

use super::runner::Done;
use super::Shared;
use crate::broker::{FailOutcome, Failure};
use crate::envelope::Envelope;
use crate::{BatchEnd, Error};

/// Whether `envelope` is a batch child or callback: an explicit id that
/// starts with `batch:`. One flag byte for plain jobs.
pub(super) fn is_member(envelope: &Envelope) -> bool {
    envelope.has_explicit_id() && envelope.id().starts_with(crate::batch::ID_PREFIX)
}

/// Records the batch children among `done` as succeeded (and marks
/// callbacks fired); nothing, not even an allocation, when there are none.
pub(super) async fn succeeded(
    shared: &Shared,
    done: impl Iterator<Item = &Done>,
) -> Result<(), Error> {
    let ends: Vec<(&str, BatchEnd)> = done
        .filter(|d| is_member(&d.job.envelope))
        .map(|d| (d.job.envelope.id(), BatchEnd::Succeeded))
        .collect();
    if ends.is_empty() {
        return Ok(());
    }
    shared.broker.batch_jobs_ended(&ends).await
}

/// Records one batch child as ended `end`.
pub(super) async fn ended(
    shared: &Shared,
    envelope: &Envelope,
    end: BatchEnd,
) -> Result<(), Error> {
    shared
        .broker
        .batch_jobs_ended(&[(envelope.id(), end)])
        .await
}

/// Before the fail script: records a batch child whose failure ends it
/// (cancelled, a permanent error, or no retry left); returns whether it did.
pub(super) async fn before_fail(
    shared: &Shared,
    envelope: &Envelope,
    failure: &Failure<'_>,
) -> Result<bool, Error> {
    if !is_member(envelope) {
        return Ok(false);
    }
    let end = if failure.cancelled {
        BatchEnd::Cancelled
    } else if failure.permanent || envelope.retries_used() >= envelope.max_retries() {
        BatchEnd::Dead
    } else {
        return Ok(false);
    };
    ended(shared, envelope, end).await?;
    Ok(true)
}

/// After the fail script: records a batch child it ended although
/// [`before_fail`] did not expect it to (a cancellation asked meanwhile).
pub(super) async fn after_fail(
    shared: &Shared,
    envelope: &Envelope,
    recorded: bool,
    outcome: FailOutcome,
) -> Result<(), Error> {
    if recorded || !is_member(envelope) {
        return Ok(());
    }
    match outcome {
        FailOutcome::Dead => ended(shared, envelope, BatchEnd::Dead).await,
        FailOutcome::Cancelled => ended(shared, envelope, BatchEnd::Cancelled).await,
        _ => Ok(()),
    }
}
