//! Chains (`lua/chain.lua`): a record per chain under a hash tag of its
//! own, holding its steps and the last completed one. Step `i` of chain
//! `C` is the job `chain:C:i` of its step's topic; a worker that completes
//! step `i` enqueues step `i + 1` (an explicit id, so an enqueue repeated
//! while it is queued or running is refused), then records step `i` done,
//! then acks. A worker also skips a step the record says is done, so a
//! step runs once even when the step before it ran twice.

use std::collections::HashMap;
use std::time::Duration;

use super::{ms, Broker, EnqueueSpec, JobResult, JobState, NewJob};
use crate::envelope::FLAG_KEYED;
use crate::keys::chain_key;
use crate::{scripts, Error, JobId, Priority};

/// The job id of step `step` (from 0) of chain `chain`.
pub fn chain_step_id(chain: &str, step: usize) -> String {
    format!("chain:{chain}:{step}")
}

/// The chain and step of a chain step's job id, if `id` is one.
pub fn parse_chain_step_id(id: &str) -> Option<(&str, usize)> {
    let rest = id.strip_prefix("chain:")?;
    let (chain, step) = rest.rsplit_once(':')?;
    if chain.is_empty() {
        return None;
    }
    Some((chain, step.parse().ok()?))
}

/// One step of a chain, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStep {
    /// The step's topic.
    pub topic: String,
    /// How its job is enqueued (its id is [`chain_step_id`]).
    pub spec: EnqueueSpec,
    /// The payload field that names its fair-queueing key (a task with a
    /// `rate_key`).
    pub rate_key: Option<String>,
    /// Its payload; `None`: the previous step's result.
    pub payload: Option<Vec<u8>>,
}

/// A chain's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRecord {
    /// The chain's id.
    pub id: String,
    /// Its steps, in order.
    pub steps: Vec<ChainStep>,
    /// The last completed step; `None` before the first completes.
    pub done: Option<usize>,
}

/// Where one step of a chain is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Not enqueued: an earlier step has not completed.
    Waiting,
    /// Queued or running.
    Running(JobState),
    /// Completed.
    Completed,
    /// Failed for good (or its payload did not decode): the chain stopped.
    Dead {
        /// The last error.
        error: String,
    },
    /// Cancelled: the chain stopped.
    Cancelled,
    /// Due, but its job is not found: being enqueued, or gone from the
    /// dead-letter queue.
    Unknown,
}

/// A step and its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepStatus {
    /// The step's topic.
    pub topic: String,
    /// Its job's id.
    pub id: JobId,
    /// Where it is.
    pub state: StepState,
}

/// How a chain stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainState {
    /// Step `step` (from 0) is due.
    Running {
        /// The due step.
        step: usize,
    },
    /// Every step completed.
    Completed,
    /// Step `step` died or was cancelled; the steps after it never run.
    Stopped {
        /// The step that stopped the chain.
        step: usize,
        /// Its error, or `cancelled`.
        reason: String,
    },
}

/// A chain's steps and where it stands ([`Broker::chain_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain's id.
    pub id: String,
    /// Its steps.
    pub steps: Vec<StepStatus>,
    /// Where it stands.
    pub state: ChainState,
}

impl ChainStatus {
    /// Whether the chain completed or stopped.
    pub fn is_finished(&self) -> bool {
        !matches!(self.state, ChainState::Running { .. })
    }
}

fn corrupt(id: &str, detail: &str) -> Error {
    Error::Corrupt {
        op: "chain",
        detail: format!("the record of chain `{id}` {detail}"),
    }
}

/// `o<i>`: priority, delay (ms), ttl (ms, 0 = none), retries, indexed,
/// rate key (may be empty).
fn options_text(step: &ChainStep) -> String {
    let spec = &step.spec;
    format!(
        "{} {} {} {} {} {}",
        spec.priority.as_u8(),
        ms(spec.delay),
        spec.ttl.map_or(0, ms),
        spec.max_retries,
        u8::from(spec.index),
        step.rate_key.as_deref().unwrap_or_default()
    )
}

fn parse_options(text: &str) -> Option<(EnqueueSpec, Option<String>)> {
    let mut parts = text.split(' ');
    let priority = Priority::from_u8(parts.next()?.parse().ok()?)?;
    let delay = Duration::from_millis(parts.next()?.parse().ok()?);
    let ttl: u64 = parts.next()?.parse().ok()?;
    let max_retries = parts.next()?.parse().ok()?;
    let index = parts.next()? == "1";
    let rate_key = parts.next().filter(|k| !k.is_empty()).map(str::to_owned);
    let spec = EnqueueSpec {
        priority,
        delay,
        ttl: (ttl > 0).then(|| Duration::from_millis(ttl)),
        max_retries,
        index,
    };
    Some((spec, rate_key))
}

impl ChainRecord {
    fn parse(id: &str, mut fields: HashMap<String, Vec<u8>>) -> Result<ChainRecord, Error> {
        let text = |fields: &mut HashMap<String, Vec<u8>>, name: &str| -> Result<String, Error> {
            let value = fields
                .remove(name)
                .ok_or_else(|| corrupt(id, &format!("has no field `{name}`")))?;
            String::from_utf8(value).map_err(|_| corrupt(id, &format!("has a binary `{name}`")))
        };
        let len: usize = text(&mut fields, "len")?
            .parse()
            .map_err(|_| corrupt(id, "has a `len` that is no number"))?;
        let done: i64 = text(&mut fields, "done")?
            .parse()
            .map_err(|_| corrupt(id, "has a `done` that is no number"))?;
        let mut steps = Vec::with_capacity(len);
        for i in 0..len {
            let topic = text(&mut fields, &format!("t{i}"))?;
            let (spec, rate_key) = parse_options(&text(&mut fields, &format!("o{i}"))?)
                .ok_or_else(|| corrupt(id, &format!("has unreadable options `o{i}`")))?;
            let payload = fields.remove(&format!("p{i}"));
            steps.push(ChainStep {
                topic,
                spec,
                rate_key,
                payload,
            });
        }
        Ok(ChainRecord {
            id: id.to_owned(),
            steps,
            done: usize::try_from(done).ok(),
        })
    }
}

impl Broker {
    /// Stores the record of chain `id` unless it exists; returns the last
    /// completed step of the record now stored (`None` for a new one).
    pub async fn create_chain(
        &self,
        id: &str,
        steps: &[ChainStep],
        ttl: Duration,
    ) -> Result<Option<usize>, Error> {
        let mut invocation = scripts::CHAIN.prepare_invoke();
        invocation
            .key(chain_key(self.prefix(), id))
            .arg("create")
            .arg(ms(ttl).max(1))
            .arg("len")
            .arg(steps.len());
        for (i, step) in steps.iter().enumerate() {
            invocation
                .arg(format!("t{i}"))
                .arg(&step.topic)
                .arg(format!("o{i}"))
                .arg(options_text(step));
            if let Some(payload) = &step.payload {
                invocation.arg(format!("p{i}")).arg(payload.as_slice());
            }
        }
        let done: i64 = self.run("create chain", &invocation).await?;
        Ok(usize::try_from(done).ok())
    }

    /// The record of chain `id`, if it exists.
    pub async fn chain(&self, id: &str) -> Result<Option<ChainRecord>, Error> {
        let fields: HashMap<String, Vec<u8>> = self
            .cmd(
                "read chain",
                redis::cmd("HGETALL").arg(chain_key(self.prefix(), id)),
            )
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        ChainRecord::parse(id, fields).map(Some)
    }

    /// Records that step `step` of chain `id` completed (the highest such
    /// step is kept) and keeps the record for `ttl` more; a record that is
    /// gone is not created again.
    pub async fn chain_step_done(&self, id: &str, step: usize, ttl: Duration) -> Result<(), Error> {
        let mut invocation = scripts::CHAIN.prepare_invoke();
        invocation
            .key(chain_key(self.prefix(), id))
            .arg("done")
            .arg(step)
            .arg(ms(ttl).max(1));
        let _: i64 = self.run("chain step done", &invocation).await?;
        Ok(())
    }

    /// Enqueues step `step` of `chain` with `payload` (its stored payload,
    /// or the previous step's result). An enqueue that finds the step's job
    /// queued or running already is no error: it is the same step.
    pub async fn enqueue_chain_step(
        &self,
        chain: &ChainRecord,
        step: usize,
        payload: &[u8],
    ) -> Result<(), Error> {
        let Some(next) = chain.steps.get(step) else {
            return Ok(());
        };
        let id = chain_step_id(&chain.id, step);
        let (payload, flags) = match &next.rate_key {
            Some(field) => (
                crate::client::keyed_payload(field, payload.to_vec()),
                FLAG_KEYED,
            ),
            None => (payload.to_vec(), 0),
        };
        let job = NewJob {
            payload: &payload,
            id: Some(&id),
        };
        match self
            .enqueue_jobs(&next.topic, &next.spec, &[job], flags)
            .await
        {
            Ok(_) | Err(Error::DuplicateJobId { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Chain `id`'s steps and where it stands, or `None` when there is no
    /// such chain (or its record expired). The due step's state is its
    /// job's status by id (chain steps have explicit ids, so they are
    /// indexed).
    pub async fn chain_status(&self, id: &str) -> Result<Option<ChainStatus>, Error> {
        let Some(record) = self.chain(id).await? else {
            return Ok(None);
        };
        let due = record.done.map_or(0, |done| done + 1);
        let mut state = if due >= record.steps.len() {
            ChainState::Completed
        } else {
            ChainState::Running { step: due }
        };
        let mut steps = Vec::with_capacity(record.steps.len());
        for (i, step) in record.steps.iter().enumerate() {
            let job = chain_step_id(id, i);
            let step_state = if i < due {
                StepState::Completed
            } else if i > due {
                StepState::Waiting
            } else {
                match self.job_result(&step.topic, &job).await? {
                    // Completed, its record not updated yet.
                    JobResult::Completed(_) => StepState::Completed,
                    JobResult::Dead { error } | JobResult::ParseError { error } => {
                        state = ChainState::Stopped {
                            step: i,
                            reason: error.clone(),
                        };
                        StepState::Dead { error }
                    }
                    JobResult::Cancelled => {
                        state = ChainState::Stopped {
                            step: i,
                            reason: "cancelled".to_owned(),
                        };
                        StepState::Cancelled
                    }
                    JobResult::Unfinished(job) => StepState::Running(job),
                    JobResult::Unknown => StepState::Unknown,
                }
            };
            steps.push(StepStatus {
                topic: step.topic.clone(),
                id: JobId::new(job),
                state: step_state,
            });
        }
        Ok(Some(ChainStatus {
            id: id.to_owned(),
            steps,
            state,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_round_trip() {
        assert_eq!(chain_step_id("c:1", 2), "chain:c:1:2");
        assert_eq!(parse_chain_step_id("chain:c:1:2"), Some(("c:1", 2)));
        assert_eq!(parse_chain_step_id("chain::2"), None);
        assert_eq!(parse_chain_step_id("chain:c:x"), None);
        assert_eq!(parse_chain_step_id("42"), None);
    }

    #[test]
    fn options_round_trip() {
        let step = ChainStep {
            topic: "t".into(),
            spec: EnqueueSpec {
                priority: Priority::High,
                delay: Duration::from_millis(5),
                ttl: None,
                max_retries: 3,
                index: true,
            },
            rate_key: Some("customer".into()),
            payload: None,
        };
        let (spec, key) = parse_options(&options_text(&step)).unwrap();
        assert_eq!(spec, step.spec);
        assert_eq!(key, step.rate_key);
    }
}
