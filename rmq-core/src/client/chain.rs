//! Chains through the client's backend: stored in Redis, recorded by a
//! fake, run at once by an inline client.

use super::{Backend, Client};
use crate::broker::{chain_step_id, ChainRecord, ChainStatus, ChainStep};
use crate::chain::NewStep;
use crate::client::inline::JobOutcome;
use crate::{Error, JobId, JobOptions};

impl Client {
    /// Stores chain `id` and enqueues its first step (see
    /// [`crate::Chain::enqueue`]).
    pub(crate) async fn enqueue_chain(&self, id: &str, steps: Vec<NewStep>) -> Result<(), Error> {
        let mut stored = Vec::with_capacity(steps.len());
        for step in &steps {
            let topic = step.descriptor.topic;
            if step.options.id.is_some() {
                return Err(Error::InvalidOption {
                    option: "job_id",
                    rule: format!(
                        "a chain step's id is `chain:<chain id>:<step>`; give the chain an id with `.chain_id(..)` instead (step on topic `{topic}`)"
                    ),
                });
            }
            let payload = match &step.payload {
                Some(Ok(payload)) => {
                    self.check_size(topic, payload)?;
                    Some(payload.clone())
                }
                Some(Err(reason)) => {
                    return Err(Error::Payload {
                        topic: topic.to_owned(),
                        reason: reason.clone(),
                    })
                }
                None => None,
            };
            stored.push(ChainStep {
                topic: topic.to_owned(),
                spec: self.spec(step.descriptor, &step.options),
                rate_key: step.descriptor.policy.rate_key.map(str::to_owned),
                payload,
            });
        }
        let first = stored
            .first()
            .and_then(|step| step.payload.clone())
            .unwrap_or_default();
        match &*self.backend {
            Backend::Redis(broker) => {
                let ttl = self.config.dead_letter_max_age;
                let done = broker.create_chain(id, &stored, ttl).await?;
                if done.is_none() {
                    let record = ChainRecord {
                        id: id.to_owned(),
                        steps: stored,
                        done: None,
                    };
                    broker.enqueue_chain_step(&record, 0, &first).await?;
                }
                tracing::debug!(chain = id, steps = steps.len(), "chain enqueued");
                Ok(())
            }
            Backend::Fake(store) => {
                let options = JobOptions {
                    id: Some(JobId::new(chain_step_id(id, 0))),
                    ..steps[0].options.clone()
                };
                store.record(&stored[0].topic, vec![first], &options, &stored[0].spec)?;
                Ok(())
            }
            Backend::Inline(runner) => {
                let mut payload = first;
                for (i, step) in steps.iter().enumerate() {
                    let takes_result = steps.get(i + 1).is_some_and(|next| next.payload.is_none());
                    let timeout = step
                        .descriptor
                        .policy
                        .timeout
                        .unwrap_or(self.config.processing_timeout);
                    let job = JobId::new(chain_step_id(id, i));
                    let (outcome, output) = runner
                        .run_one(
                            step.descriptor,
                            payload.clone(),
                            &job,
                            &stored[i].spec,
                            timeout,
                            takes_result,
                        )
                        .await;
                    if outcome != JobOutcome::Completed {
                        break;
                    }
                    payload = match stored.get(i + 1).and_then(|next| next.payload.clone()) {
                        Some(next) => next,
                        None => output.unwrap_or_default(),
                    };
                }
                Ok(())
            }
        }
    }

    /// Chain `id`'s steps and where it stands. Redis only.
    pub async fn chain_status(&self, id: &str) -> Result<ChainStatus, Error> {
        let broker = self.broker().ok_or(Error::NotRedis("a chain's status"))?;
        broker
            .chain_status(id)
            .await?
            .ok_or_else(|| Error::UnknownChain(id.to_owned()))
    }
}
