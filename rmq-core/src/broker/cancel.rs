//! Cancel (`lua/cancel.lua`): a queued job ends at once, a running one is
//! asked to stop through its lease renewal.

use super::status::locating_keys;
use super::{flag, Broker};
use crate::{scripts, Error};

/// Most running jobs compared by id to find one that is not indexed.
const RUNNING_SCAN: u64 = 10_000;

/// What [`Broker::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was queued (pending, delayed or waiting for a retry) and ended
    /// cancelled: kept in the dead-letter queue marked `cancelled`, or
    /// dropped (configuration `keep_cancelled`).
    Removed,
    /// It runs: its worker cancels the handler's
    /// [`JobContext::cancellation`](crate::JobContext::cancellation) token
    /// at the next lease renewal (within a third of the lease), and the job
    /// is not retried.
    Signalled,
    /// It runs and was asked to stop before.
    AlreadySignalled,
    /// It had ended already: dead, cancelled, or in the parse-error store.
    AlreadyEnded,
    /// No such job: completed, never indexed and not running, or unknown.
    NotFound,
}

impl Broker {
    /// Cancels job `id` of `topic`. Queued jobs are found through the
    /// status index (jobs with explicit ids, tasks with `index = true`, or
    /// configuration `index_jobs`); running jobs are found either way.
    /// Removing a pending job costs one LREM over the list before it.
    pub async fn cancel(&self, topic: &str, id: &str) -> Result<Cancelled, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::CANCEL.prepare_invoke();
        locating_keys(&mut invocation, &keys)
            .key(&keys.ids)
            .key(&keys.stats)
            .key(&keys.cancel)
            .key(&keys.locks)
            .key(&keys.keyed)
            .arg(id)
            .arg(flag(self.inner.dead_letter && self.inner.keep_cancelled))
            .arg(self.inner.dead_max)
            .arg(RUNNING_SCAN);
        let code: i64 = self.run("cancel", &invocation).await?;
        match code {
            0 => Ok(Cancelled::NotFound),
            1 => {
                // A queued batch child ends here, with no worker to count it.
                if id.starts_with(crate::batch::ID_PREFIX) {
                    self.batch_jobs_ended(&[(id, crate::BatchEnd::Cancelled)])
                        .await?;
                }
                Ok(Cancelled::Removed)
            }
            2 => Ok(Cancelled::Signalled),
            3 => Ok(Cancelled::AlreadySignalled),
            4 => Ok(Cancelled::AlreadyEnded),
            other => Err(Error::Corrupt {
                op: "cancel",
                detail: format!("the cancel script returned {other}"),
            }),
        }
    }
}
