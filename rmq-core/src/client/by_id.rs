//! Jobs by id: status, typed read-back and cancellation.

use super::{Backend, Client};
use crate::broker::{Cancelled, JobStatus};
use crate::{Error, Task};

impl Client {
    /// Where job `id` of `topic` is, with its encoded payload; `None` when
    /// it is not indexed, completed, dropped or unknown. Jobs are indexed
    /// when they have an explicit id, when their task says `index = true`,
    /// or for every job with the configuration's `index_jobs`. A fake
    /// client reports its recorded jobs as pending; an inline client has
    /// run every job already (`None`).
    pub async fn status(&self, topic: &str, id: &str) -> Result<Option<JobStatus>, Error> {
        match &*self.backend {
            Backend::Redis(broker) => broker.status(topic, id).await,
            Backend::Fake(store) => Ok(store.status(topic, id)),
            Backend::Inline(_) => Ok(None),
        }
    }

    /// [`Client::status`] of a job of task `T`, its payload decoded.
    pub async fn job<T: Task>(&self, id: &str) -> Result<Option<JobStatus<T>>, Error> {
        match self.status(T::descriptor().topic, id).await? {
            Some(status) => status.decode().map(Some),
            None => Ok(None),
        }
    }

    /// Cancels job `id` of `topic` (see [`Cancelled`] for what can happen).
    /// A fake client forgets a recorded job; an inline client has nothing
    /// left to cancel.
    pub async fn cancel(&self, topic: &str, id: &str) -> Result<Cancelled, Error> {
        match &*self.backend {
            Backend::Redis(broker) => broker.cancel(topic, id).await,
            Backend::Fake(store) => Ok(store.cancel(topic, id)),
            Backend::Inline(_) => Ok(Cancelled::NotFound),
        }
    }
}
