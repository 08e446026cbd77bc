//! Batches (`lua/batch.lua`): a batch's record and its finished children,
//! under the batch's own hash tag; the callback enqueued on its topic once
//! the last child is recorded.

use std::collections::HashMap;
use std::time::Duration;

use super::{Broker, EnqueueSpec, NewJob};
use crate::batch::{self, BatchEnd, BatchId, BatchOutcome, BatchProgress, Callback};
use crate::{codec, scripts, Error, Priority};

/// How long a batch's record is kept after its last change.
pub const BATCH_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Broker {
    /// Writes the record of a new batch of `total` children.
    pub(crate) async fn create_batch(
        &self,
        id: &str,
        total: usize,
        callback: Option<&Callback>,
    ) -> Result<(), Error> {
        let (topic, priority, retries) = match callback {
            Some(c) => (c.topic, c.priority.as_u8(), c.max_retries),
            None => ("", Priority::Normal.as_u8(), 0),
        };
        let args = [
            total.to_string(),
            topic.to_owned(),
            priority.to_string(),
            retries.to_string(),
        ];
        self.batch_call("create", id, &args).await.map(drop)
    }

    /// Where batch `id` stands; `None` for an unknown (or expired) batch.
    pub async fn batch(&self, id: &str) -> Result<Option<BatchProgress>, Error> {
        Ok(self.batch_call("read", id, &[]).await?.map(|r| r.progress))
    }

    /// Records how batch children ended (job ids `batch:<id>:<n>`), and
    /// marks a batch's callback fired when given its id
    /// (`batch:<id>:done`); ids of other jobs are ignored. A batch whose
    /// last child is recorded here gets its callback enqueued, then marked
    /// fired. Recording a child again changes nothing.
    pub async fn batch_jobs_ended(&self, ends: &[(&str, BatchEnd)]) -> Result<(), Error> {
        let mut by_batch: HashMap<&str, Vec<String>> = HashMap::new();
        let mut callbacks = Vec::new();
        for &(job_id, end) in ends {
            match batch::parse_id(job_id) {
                Some((id, "done")) => callbacks.push(id),
                Some((id, _)) => {
                    let args = by_batch.entry(id).or_default();
                    args.push(job_id.to_owned());
                    args.push(end.code().to_owned());
                }
                None => {}
            }
        }
        let settles = by_batch.iter().map(|(id, args)| async move {
            match self.batch_call("settle", id, args).await? {
                Some(record) if record.progress.is_complete() && !record.progress.fired => {
                    self.fire_callback(id, &record).await
                }
                _ => Ok(()),
            }
        });
        let fired = callbacks
            .iter()
            .map(|id| async move { self.batch_call("fired", id, &[]).await.map(drop) });
        let results = futures_util::future::join_all(settles)
            .await
            .into_iter()
            .chain(futures_util::future::join_all(fired).await);
        results.into_iter().collect()
    }

    /// Enqueues the callback of the complete batch `id` (an enqueue that
    /// finds it queued or running already is fine), then marks it fired.
    async fn fire_callback(&self, id: &str, record: &Record) -> Result<(), Error> {
        let progress = &record.progress;
        if let Some(topic) = &progress.callback {
            let payload = codec::encode(&progress.outcome).map_err(|e| Error::Payload {
                topic: topic.clone(),
                reason: e.to_string(),
            })?;
            let job_id = BatchId::new(id).callback();
            let job = NewJob {
                payload: &payload,
                id: Some(job_id.as_str()),
            };
            let spec = EnqueueSpec {
                priority: record.priority,
                delay: Duration::ZERO,
                ttl: None,
                max_retries: record.retries,
                index: false,
            };
            match self.enqueue_jobs(topic, &spec, &[job], 0).await {
                Ok(_) | Err(Error::DuplicateJobId { .. }) => {}
                Err(error) => return Err(error),
            }
            tracing::info!(batch = id, callback = %topic, succeeded = progress.outcome.succeeded, dead = progress.outcome.dead, cancelled = progress.outcome.cancelled, "batch complete; callback enqueued");
        }
        let callback = progress
            .callback
            .clone()
            .unwrap_or_else(|| "none".to_owned());
        metrics::counter!(crate::telemetry::BATCHES_COMPLETED, "callback" => callback).increment(1);
        self.batch_call("fired", id, &[]).await.map(drop)
    }

    /// One call of the batch script.
    async fn batch_call(
        &self,
        op: &str,
        id: &str,
        args: &[String],
    ) -> Result<Option<Record>, Error> {
        let [key, done] = crate::keys::batch_keys(self.prefix(), id);
        let mut invocation = scripts::BATCH.prepare_invoke();
        invocation
            .key(&key)
            .key(&done)
            .arg(op)
            .arg(super::ms(BATCH_RETENTION));
        for arg in args {
            invocation.arg(arg);
        }
        let reply: Option<HashMap<String, String>> = self.run("batch", &invocation).await?;
        Ok(reply.map(|fields| record(id, &fields)))
    }
}

/// A batch's record: where it stands and how its callback is enqueued.
struct Record {
    progress: BatchProgress,
    priority: Priority,
    retries: u32,
}

fn record(id: &str, fields: &HashMap<String, String>) -> Record {
    let number = |name: &str| {
        fields
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let progress = BatchProgress {
        outcome: BatchOutcome {
            id: id.to_owned(),
            total: number("total"),
            succeeded: number("s"),
            dead: number("d"),
            cancelled: number("c"),
        },
        callback: fields.get("topic").filter(|t| !t.is_empty()).cloned(),
        fired: number("fired") == 1,
        created_at_ms: number("created"),
    };
    Record {
        progress,
        priority: u8::try_from(number("priority"))
            .ok()
            .and_then(Priority::from_u8)
            .unwrap_or(Priority::Normal),
        retries: u32::try_from(number("retries")).unwrap_or(0),
    }
}
