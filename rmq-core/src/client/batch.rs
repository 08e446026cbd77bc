//! The client's side of batches ([`crate::Batch`]): the record, the
//! children, progress, and the inline client's callback.

use super::{keyed_payload, Backend, Client};
use crate::batch::{BatchId, BatchOutcome, BatchProgress, Callback, ID_PREFIX};
use crate::broker::NewJob;
use crate::envelope::FLAG_KEYED;
use crate::{codec, Error, JobId, JobOptions, JobOutcome, TaskDescriptor};

impl Client {
    /// Where batch `id` stands: counts of finished children and whether its
    /// callback was enqueued; `None` for an unknown (or expired) batch.
    /// Redis only.
    pub async fn batch(&self, id: &str) -> Result<Option<BatchProgress>, Error> {
        let broker = self.broker().ok_or(Error::NotRedis("batch progress"))?;
        broker.batch(id).await
    }

    /// Writes the record of a new batch (Redis; the local clients keep
    /// none).
    pub(crate) async fn create_batch(
        &self,
        id: &BatchId,
        total: usize,
        callback: Option<&Callback>,
    ) -> Result<(), Error> {
        match &*self.backend {
            Backend::Redis(broker) => broker.create_batch(id.as_str(), total, callback).await,
            _ => Ok(()),
        }
    }

    /// Enqueues batch children of one task, each with its own explicit id,
    /// never expiring.
    pub(crate) async fn enqueue_children(
        &self,
        descriptor: &'static TaskDescriptor,
        jobs: Vec<(JobId, Vec<u8>)>,
    ) -> Result<(), Error> {
        let topic = descriptor.topic;
        let mut spec = self.spec(descriptor, &JobOptions::default());
        spec.ttl = None;
        match &*self.backend {
            Backend::Redis(broker) => {
                let (jobs, flags) = match descriptor.policy.rate_key {
                    Some(field) => (
                        jobs.into_iter()
                            .map(|(id, payload)| (id, keyed_payload(field, payload)))
                            .collect(),
                        FLAG_KEYED,
                    ),
                    None => (jobs, 0),
                };
                let new: Vec<NewJob<'_>> = jobs
                    .iter()
                    .map(|(id, payload)| NewJob {
                        payload,
                        id: Some(id.as_str()),
                    })
                    .collect();
                broker.enqueue_jobs(topic, &spec, &new, flags).await?;
                self.enqueued.add(topic, spec.priority, new.len());
                Ok(())
            }
            _ => {
                for (id, payload) in jobs {
                    let options = JobOptions {
                        id: Some(id),
                        ..JobOptions::default()
                    };
                    self.enqueue_encoded(topic, descriptor, vec![payload], &options)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// After a batch's children were enqueued: an inline client has run
    /// them, and runs the callback now with what they came to.
    pub(crate) async fn batch_enqueued(
        &self,
        id: &BatchId,
        callback: &'static TaskDescriptor,
    ) -> Result<(), Error> {
        let Backend::Inline(runner) = &*self.backend else {
            return Ok(());
        };
        let prefix = format!("{ID_PREFIX}{id}:");
        let mut outcome = BatchOutcome {
            id: id.to_string(),
            ..BatchOutcome::default()
        };
        let mut finished = true;
        for ran in runner.outcomes() {
            if !ran.id.as_str().starts_with(&prefix) {
                continue;
            }
            outcome.total += 1;
            match ran.result {
                JobOutcome::Completed => outcome.succeeded += 1,
                JobOutcome::Dead(_) | JobOutcome::Malformed(_) => outcome.dead += 1,
                JobOutcome::Cancelled => outcome.cancelled += 1,
                // It would run again later: the batch is not finished.
                JobOutcome::RateLimited(_) => finished = false,
            }
        }
        if !finished {
            return Ok(());
        }
        let payload = codec::encode(&outcome).map_err(|e| Error::Payload {
            topic: callback.topic.to_owned(),
            reason: e.to_string(),
        })?;
        let options = JobOptions {
            id: Some(id.callback()),
            ..JobOptions::default()
        };
        self.submit_encoded(callback.topic, callback, payload, &options)
            .await
            .map(drop)
    }
}
