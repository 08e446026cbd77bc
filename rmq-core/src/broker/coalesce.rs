//! Group commit of single enqueues: concurrent `enqueue_one` calls for the
//! same topic and options share script calls. The first caller starts a
//! flusher task that sends at once, so a lone producer waits for no batch;
//! callers that arrive while a call is in flight go out together in the
//! next one. Jobs with a trace context trailer and jobs without one go in
//! separate calls (the flag is one per call).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{Broker, EnqueueSpec, NewJob};
use crate::{Error, JobId};

/// Topic, options, and the envelope flags of the payloads (trace trailer,
/// fair-queueing key).
type Key = (String, EnqueueSpec, u8);
type Reply = oneshot::Sender<Result<JobId, Error>>;
/// Jobs waiting for the next script call of their key.
type Queues = HashMap<Key, Vec<(Vec<u8>, Reply)>>;

/// Jobs waiting for a script call, per topic and options.
#[derive(Default)]
pub(super) struct Coalescer {
    queues: Mutex<Queues>,
}

impl Coalescer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Broker {
    /// Enqueues one job with a generated id, sharing the script call with
    /// concurrent callers of the same topic and options.
    pub async fn enqueue_one(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        payload: Vec<u8>,
    ) -> Result<JobId, Error> {
        self.enqueue_one_traced(topic, spec, payload, 0).await
    }

    /// [`Broker::enqueue_one`] with envelope `flags`: the payload ends in a
    /// trace context trailer (`FLAG_TRACE_CONTEXT`), starts with a
    /// fair-queueing key (`FLAG_KEYED`), or both.
    pub(crate) async fn enqueue_one_traced(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        payload: Vec<u8>,
        flags: u8,
    ) -> Result<JobId, Error> {
        super::check_times(spec)?;
        let (reply, answer) = oneshot::channel();
        let key = (topic.to_owned(), spec.clone(), flags);
        let first = {
            let mut queues = self.inner.coalescer.lock();
            match queues.get_mut(&key) {
                // A flusher owns this queue: it will take the job.
                Some(waiting) => {
                    waiting.push((payload, reply));
                    false
                }
                None => {
                    queues.insert(key.clone(), vec![(payload, reply)]);
                    true
                }
            }
        };
        if first {
            // A task of its own, so a caller that gives up cannot strand the
            // jobs of the others.
            tokio::spawn(self.clone().flush(key));
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::Corrupt {
                op: "enqueue",
                detail: "the enqueue task stopped before answering".to_owned(),
            })
        })
    }

    /// Sends the queue of `key` until it is empty, then removes it.
    async fn flush(self, key: Key) {
        // If this task is dropped (its runtime shuts down), the queue goes
        // with it: its callers get an error instead of waiting for ever, and
        // the next caller starts a new flusher.
        let mut forget = ForgetQueue {
            broker: self.clone(),
            key: key.clone(),
            armed: true,
        };
        loop {
            // Let producers that are running right now join this call.
            tokio::task::yield_now().await;
            let batch = {
                let mut queues = self.inner.coalescer.lock();
                let Some(waiting) = queues.get_mut(&key) else {
                    forget.armed = false;
                    return;
                };
                if waiting.is_empty() {
                    queues.remove(&key);
                    forget.armed = false;
                    return;
                }
                std::mem::take(waiting)
            };
            let jobs: Vec<NewJob<'_>> = batch
                .iter()
                .map(|(payload, _)| NewJob { payload, id: None })
                .collect();
            match self.enqueue_jobs(&key.0, &key.1, &jobs, key.2).await {
                Ok(ids) => {
                    for ((_, reply), id) in batch.into_iter().zip(ids) {
                        let _ = reply.send(Ok(id));
                    }
                }
                // Enqueued, but not confirmed by enough replicas: each caller
                // learns the id of its own job.
                Err(Error::NotReplicated {
                    topic,
                    acked,
                    wanted,
                    ids,
                }) => {
                    for ((_, reply), id) in batch.into_iter().zip(ids) {
                        let _ = reply.send(Err(Error::NotReplicated {
                            topic: topic.clone(),
                            acked,
                            wanted,
                            ids: vec![id],
                        }));
                    }
                }
                Err(error) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(error.duplicate()));
                    }
                }
            }
        }
    }
}

/// Removes a flusher's queue if the flusher is dropped before it finished.
struct ForgetQueue {
    broker: Broker,
    key: Key,
    armed: bool,
}

impl Drop for ForgetQueue {
    fn drop(&mut self) {
        if self.armed {
            self.broker.inner.coalescer.lock().remove(&self.key);
        }
    }
}
