//! Batch bookkeeping of finished jobs, before their ack: a batch child is
//! recorded in its batch (see [`crate::batch`]) before the script that ends
//! it runs, so a crash in between re-runs the child, which records it again
//! (changing nothing) instead of leaving the batch one child short.

use super::runner::Done;
use super::Shared;
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
