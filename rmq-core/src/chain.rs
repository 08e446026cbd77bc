//! Chains: jobs that run one after the other, each enqueued when the one
//! before it has completed, optionally with that one's result as its
//! payload.
//!
//! ```no_run
//! # use rmq_core as rmq;
//! # async fn demo<A: rmq::Task, B: rmq::Task, C: rmq::Task>(a: A, b: B, client: &rmq::Client) -> Result<(), rmq::Error> {
//! let chain = rmq::Chain::new(a).then(b).enqueue(client).await?;
//! println!("{:?}", chain.status().await?);
//! # Ok(()) }
//! ```
//!
//! Step `i` of chain `C` is the job `chain:C:i` on its task's topic (ids
//! beginning with `chain:` are reserved for chains). The steps wait in a
//! record of their own, `{P:chain:C}` (see [`crate::keys`]), so the steps
//! of one chain may live on different topics and Cluster shards. The
//! worker that completes step `i` enqueues step `i + 1`, records step `i`
//! done, then acks: a step runs once per completion of the step before it,
//! also when that step's ack is repeated or its worker dies in between
//! (step ids are explicit, and a worker skips a step the record says is
//! done). A step that dies or is cancelled stops the chain; the chain's
//! status says which and why.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::broker::{ChainState, ChainStatus, Waiter, RESULT_RECHECK};
use crate::{Client, Enqueue, Error, Job, JobId, JobOptions, ResultError, Task, TaskDescriptor};

/// Longest chain id: a step's job id (`chain:<id>:<step>`) must fit in 255
/// bytes.
pub const MAX_CHAIN_ID_LEN: usize = 200;

/// One step, before it is enqueued.
pub(crate) struct NewStep {
    pub(crate) descriptor: &'static TaskDescriptor,
    /// The payload; `None`: the previous step's result.
    pub(crate) payload: Option<Result<Vec<u8>, String>>,
    pub(crate) options: JobOptions,
}

/// A chain of jobs being built: each step runs once the step before it has
/// completed. `Last` is the task of the last step. Build one with
/// [`Chain::new`] or the `then` / `then_result` methods of a payload, and
/// enqueue it with [`Chain::enqueue`].
#[must_use = "nothing is enqueued until `.enqueue(&client)` is awaited"]
pub struct Chain<Last> {
    steps: Vec<NewStep>,
    id: Option<String>,
    last: PhantomData<fn() -> Last>,
}

fn encoded<T: Task>(task: &T) -> Result<Vec<u8>, String> {
    crate::codec::encode(task).map_err(|e| e.to_string())
}

impl<A: Task> Chain<A> {
    /// A chain whose first step is `first`.
    pub fn new(first: A) -> Chain<A> {
        Chain::starting(Enqueue::new(first))
    }

    /// A chain whose first step is `first`, with its per-call options
    /// (delay, priority, ttl; a chain step's id is the chain's to give).
    pub fn starting(first: Enqueue<A>) -> Chain<A> {
        let (task, options) = first.into_parts();
        Chain {
            steps: vec![NewStep {
                descriptor: A::descriptor(),
                payload: Some(encoded(&task)),
                options,
            }],
            id: None,
            last: PhantomData,
        }
    }

    fn push<B: Task>(
        mut self,
        payload: Option<Result<Vec<u8>, String>>,
        options: JobOptions,
    ) -> Chain<B> {
        self.steps.push(NewStep {
            descriptor: B::descriptor(),
            payload,
            options,
        });
        Chain {
            steps: self.steps,
            id: self.id,
            last: PhantomData,
        }
    }

    /// Runs `next` once the last step so far has completed.
    pub fn then<B: Task>(self, next: B) -> Chain<B> {
        let payload = Some(encoded(&next));
        self.push::<B>(payload, JobOptions::default())
    }

    /// [`Chain::then`] with per-call options (`B { .. }.priority(..)`).
    pub fn then_with<B: Task>(self, next: Enqueue<B>) -> Chain<B> {
        let (task, options) = next.into_parts();
        self.push::<B>(Some(encoded(&task)), options)
    }

    /// Runs a job of `B` whose payload is the result of the last step so
    /// far: that step's task must return `B`'s payload struct.
    pub fn then_result<B: Task>(self) -> Chain<B>
    where
        A: Task<Output = B>,
    {
        self.push::<B>(None, JobOptions::default())
    }

    /// Gives the chain an id of its own (default: 16 random hex digits).
    /// Enqueueing a chain whose id exists already enqueues nothing new and
    /// returns a handle on the existing chain, so a retry after an error
    /// that left it unclear whether the chain was enqueued is safe.
    pub fn chain_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Stores the chain and enqueues its first step (Redis), records the
    /// first step (fake client), or runs every step at once until one does
    /// not complete (inline client).
    pub async fn enqueue(self, client: &Client) -> Result<ChainJob<A::Output>, Error> {
        let id = self
            .id
            .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)));
        if id.is_empty() || id.len() > MAX_CHAIN_ID_LEN {
            return Err(Error::InvalidOption {
                option: "chain_id",
                rule: format!("must be 1 to {MAX_CHAIN_ID_LEN} bytes long"),
            });
        }
        let last = self
            .steps
            .last()
            .map(|step| step.descriptor.topic)
            .unwrap_or_default();
        let len = self.steps.len();
        client.enqueue_chain(&id, self.steps).await?;
        Ok(ChainJob {
            last: Job::new(
                client.clone(),
                last,
                JobId::new(crate::broker::chain_step_id(&id, len - 1)),
            ),
            id,
            client: client.clone(),
        })
    }
}

/// A handle on an enqueued chain: its id, its status, and the result of
/// its last step (`T`, kept when the last task has `keep_result`).
pub struct ChainJob<T> {
    id: String,
    client: Client,
    last: Job<T>,
}

impl<T> std::fmt::Debug for ChainJob<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainJob")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> ChainJob<T> {
    /// The chain's id (`worker chain <id>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A handle on the last step's job.
    pub fn last(&self) -> &Job<T> {
        &self.last
    }

    /// The chain's steps and where it stands.
    pub async fn status(&self) -> Result<ChainStatus, Error> {
        self.client.chain_status(&self.id).await
    }

    /// Waits until the chain has completed or stopped, or `timeout` passes
    /// (`None`: no limit; then an [`Error::Timeout`]), and returns its
    /// status. Woken when each step finishes, like [`Job::result`].
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<ChainStatus, Error> {
        let Some(broker) = self.client.broker() else {
            // A fake or inline chain does not move on its own.
            return self.status().await;
        };
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut waiter = Waiter::default();
        let mut due = None;
        loop {
            let status = self.status().await?;
            let ChainState::Running { step } = status.state else {
                return Ok(status);
            };
            if due != Some(step) {
                waiter.progressed();
                due = Some(step);
            }
            let left = deadline.map_or(RESULT_RECHECK, |at| {
                at.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(Error::Timeout {
                    op: "wait for a chain",
                    after: timeout.unwrap_or_default(),
                });
            }
            let job = &status.steps[step];
            waiter
                .wait(
                    broker,
                    &job.topic,
                    job.id.as_str(),
                    left.min(RESULT_RECHECK),
                )
                .await?;
        }
    }

    /// Waits for the chain and returns its last step's result, or why there
    /// is none: the step that stopped the chain died or was cancelled
    /// ([`ResultError::Dead`], [`ResultError::Cancelled`], naming that
    /// step's job), or the last task keeps no result
    /// ([`ResultError::Unknown`]).
    pub async fn result(&self) -> Result<T, ResultError> {
        if self.client.broker().is_none() {
            return self.last.result().await;
        }
        let status = self.wait(None).await?;
        if let ChainState::Stopped { step, reason } = &status.state {
            let job = &status.steps[*step];
            let (topic, id) = (job.topic.clone(), job.id.clone());
            return Err(match job.state {
                crate::broker::StepState::Cancelled => ResultError::Cancelled { topic, id },
                _ => ResultError::Dead {
                    topic,
                    id,
                    error: reason.clone(),
                },
            });
        }
        self.last.result().await
    }
}
