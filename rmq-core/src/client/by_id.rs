//! Jobs by id: status, typed read-back and cancellation.

use std::time::Duration;

use super::{Backend, Client};
use crate::broker::{Cancelled, JobResult, JobStatus};
use crate::{codec, Error, Task};

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

    /// Where the result of job `id` of `topic` stands, encoded
    /// ([`crate::Broker::job_result`]); [`Client::result`] decodes it.
    pub async fn job_result(&self, topic: &str, id: &str) -> Result<JobResult, Error> {
        match &*self.backend {
            Backend::Redis(broker) => broker.job_result(topic, id).await,
            Backend::Fake(store) => Ok(store.job_result(topic, id)),
            Backend::Inline(runner) => Ok(runner.job_result(topic, id)),
        }
    }

    /// Waits until job `id` of `topic` finishes or `timeout` passes
    /// ([`crate::Broker::wait_result`]); a fake or inline client answers at
    /// once.
    pub async fn wait_job_result(
        &self,
        topic: &str,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<JobResult, Error> {
        match &*self.backend {
            Backend::Redis(broker) => broker.wait_result(topic, id, timeout).await,
            _ => self.job_result(topic, id).await,
        }
    }

    /// Gives job `id` of task `T`, recorded by a fake client, the result
    /// `output`, as if a worker had run it: [`crate::Job::result`] and
    /// [`Client::result`] then return it.
    ///
    /// # Panics
    /// On a client that is not [`Client::fake`], or an output that does not
    /// encode.
    pub fn complete_fake<T: Task>(&self, id: &str, output: &T::Output) {
        let bytes = codec::encode(output).expect("the output encodes");
        self.fake_store("complete_fake")
            .complete(T::descriptor().topic, id, bytes);
    }
}
