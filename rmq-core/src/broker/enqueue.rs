//! Enqueue (`lua/enqueue.lua`): a batch of one topic per script call, and
//! the record of known topics.

use std::time::Duration;

use redis::FromRedisValue;

use super::{connection, ms, Broker};
use crate::envelope::{
    FLAG_EXPLICIT_ID, FLAG_INDEXED, FLAG_KEYED, FLAG_TRACE_CONTEXT, FLAG_UNIQUE,
};
use crate::trace::TraceContext;
use crate::unique::{Enqueued, UniqueLock};
use crate::{scripts, Error, JobId, Priority};

/// One job to enqueue: its encoded payload and, optionally, an explicit id.
#[derive(Clone, Copy, Debug)]
pub struct NewJob<'a> {
    /// MessagePack payload.
    pub payload: &'a [u8],
    /// Explicit id; `None` draws the next id of the topic's counter.
    pub id: Option<&'a str>,
}

/// What applies to every job of one enqueue call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnqueueSpec {
    /// Priority list the job goes to.
    pub priority: Priority,
    /// Zero for immediate jobs.
    pub delay: Duration,
    /// Time to live, counted from when the job is due (enqueue time plus
    /// `delay`); `None` or zero never expires.
    pub ttl: Option<Duration>,
    /// Retries after the first attempt (at most 255).
    pub max_retries: u32,
    /// Index the jobs by id ([`Broker::status`], [`Broker::cancel`]). Jobs
    /// with explicit ids are indexed anyway, and every job is when the
    /// configuration's `index_jobs` is on.
    pub index: bool,
}

/// Most jobs in one enqueue script call.
const MAX_JOBS_PER_CALL: usize = 1000;

/// Most payload bytes in one enqueue script call (Redis refuses requests over
/// its 1 GiB query buffer, and a huge call blocks every other client).
const MAX_BYTES_PER_CALL: usize = 8 * 1024 * 1024;

/// Largest delay or TTL the envelope can carry (48-bit milliseconds,
/// about 8,900 years).
const MAX_MS: u128 = (1 << 48) - 1;

/// Rejects a delay or TTL the envelope's 48-bit millisecond fields cannot
/// hold.
pub(super) fn check_times(spec: &EnqueueSpec) -> Result<(), Error> {
    for (option, value) in [("delay", Some(spec.delay)), ("ttl", spec.ttl)] {
        if value.is_some_and(|v| v.as_millis() > MAX_MS / 4) {
            return Err(Error::InvalidOption {
                option,
                rule: format!("must be under 2,000 years; got {value:?}"),
            });
        }
    }
    Ok(())
}

/// Longest explicit id (its length is one byte of the envelope).
const MAX_ID_LEN: usize = 255;

impl Broker {
    /// Enqueues jobs of one topic; ids in order. Up to 1,000 jobs and 8 MiB
    /// of payload go in one script call, atomically; a larger batch takes
    /// several calls, and an error stops it after the calls that succeeded.
    pub async fn enqueue(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
    ) -> Result<Vec<JobId>, Error> {
        self.enqueue_jobs(topic, spec, jobs, 0).await
    }

    /// [`Broker::enqueue`] with the trace context of the span the jobs were
    /// enqueued in (a `traceparent` received from elsewhere, say): each
    /// envelope carries it, and a worker with a
    /// [`Propagator`](crate::trace::Propagator) runs the handler in its trace.
    pub async fn enqueue_traced(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
        context: &TraceContext,
    ) -> Result<Vec<JobId>, Error> {
        let payloads: Vec<Vec<u8>> = jobs
            .iter()
            .map(|job| {
                let mut payload = job.payload.to_vec();
                context.append_trailer(&mut payload);
                payload
            })
            .collect();
        let jobs: Vec<NewJob<'_>> = jobs
            .iter()
            .zip(&payloads)
            .map(|(job, payload)| NewJob {
                payload,
                id: job.id,
            })
            .collect();
        self.enqueue_jobs(topic, spec, &jobs, FLAG_TRACE_CONTEXT)
            .await
    }

    /// [`Broker::enqueue`] with envelope `flags`: with `FLAG_TRACE_CONTEXT`,
    /// every payload ends in a trace context trailer
    /// ([`crate::trace::TraceContext::append_trailer`]); with `FLAG_KEYED`,
    /// it starts with a fair-queueing key (length byte, key) and the jobs go
    /// to per-key sub-queues. The envelopes get the flags.
    pub(crate) async fn enqueue_jobs(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
        flags: u8,
    ) -> Result<Vec<JobId>, Error> {
        check_times(spec)?;
        let mut ids = Vec::with_capacity(jobs.len());
        let mut rest = jobs;
        while !rest.is_empty() {
            let mut bytes = 0;
            let take = rest
                .iter()
                .take(MAX_JOBS_PER_CALL)
                .take_while(|job| {
                    bytes += job.payload.len();
                    bytes <= MAX_BYTES_PER_CALL
                })
                .count()
                .max(1);
            let (call, after) = rest.split_at(take);
            ids.extend(self.enqueue_call(topic, spec, call, flags).await?);
            rest = after;
        }
        self.record_topic(topic).await;
        Ok(ids)
    }

    /// Records `topic` in the set of known topics once per process, so a
    /// topic that was enqueued to but never served still shows in `stats`.
    /// A failure is logged and tried again at the next enqueue.
    async fn record_topic(&self, topic: &str) {
        if self
            .inner
            .recorded
            .read()
            .is_ok_and(|recorded| recorded.contains(topic))
        {
            return;
        }
        match self.record_topics(&[topic]).await {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, topic, "could not record the topic in the set of known topics; `stats` may not list it yet");
            }
        }
    }

    /// Records topics in the set of known topics (`<prefix>:topics`), so
    /// tools can list them; works even when Redis is full.
    pub async fn record_topics(&self, topics: &[&str]) -> Result<(), Error> {
        if topics.is_empty() {
            return Ok(());
        }
        let key = crate::keys::topics_key(self.prefix());
        let mut invocation = scripts::REGISTER.prepare_invoke();
        invocation.key(&key);
        for topic in topics {
            invocation.arg(*topic);
        }
        self.run::<()>("recording topics", &invocation).await?;
        if let Ok(mut recorded) = self.inner.recorded.write() {
            recorded.extend(topics.iter().map(|t| (*t).to_owned()));
        }
        Ok(())
    }

    /// One enqueue script call.
    async fn enqueue_call(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
        flags: u8,
    ) -> Result<Vec<JobId>, Error> {
        let explicit = jobs[0].id.is_some();
        for job in jobs {
            match job.id {
                Some(id) if !explicit => {
                    return Err(Error::InvalidJobId {
                        id: id.to_owned(),
                        rule: "a batch must give an id for every job or for none",
                    })
                }
                None if explicit => {
                    return Err(Error::InvalidJobId {
                        id: String::new(),
                        rule: "a batch must give an id for every job or for none",
                    })
                }
                Some(id) if id.is_empty() || id.len() > MAX_ID_LEN => {
                    return Err(Error::InvalidJobId {
                        id: id.to_owned(),
                        rule: "an id must be 1 to 255 bytes long",
                    })
                }
                _ => {}
            }
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::ENQUEUE.prepare_invoke();
        let indexed = explicit || spec.index || self.inner.index_jobs;
        enqueue_args(
            &mut invocation,
            &keys,
            spec,
            jobs,
            flags
                | if explicit { FLAG_EXPLICIT_ID } else { 0 }
                | if indexed { FLAG_INDEXED } else { 0 },
            None,
        );
        let (reply, acked) = self.send_enqueue(topic, &invocation).await?;
        let ids = match reply {
            redis::Value::Int(last) if explicit => {
                let _ = last;
                jobs.iter()
                    .map(|job| JobId::new(job.id.unwrap_or_default()))
                    .collect()
            }
            redis::Value::Int(last) => {
                let first = last - jobs.len() as i64 + 1;
                (0..jobs.len() as i64)
                    .map(|i| JobId::new((first + i).to_string()))
                    .collect()
            }
            other => {
                let dups: Vec<String> =
                    FromRedisValue::from_redis_value(other).map_err(|e| Error::Corrupt {
                        op: "enqueue",
                        detail: format!("unexpected reply of the enqueue script: {e}"),
                    })?;
                return Err(Error::DuplicateJobId {
                    topic: topic.to_owned(),
                    id: dups.join(", "),
                });
            }
        };
        match acked {
            Some((acked, wanted)) if acked < wanted => Err(Error::NotReplicated {
                topic: topic.to_owned(),
                acked,
                wanted,
                ids,
            }),
            _ => Ok(ids),
        }
    }
    /// Enqueues one unique job (`lock` taken in the same script call):
    /// [`Enqueued::Duplicate`] when another job holds the lock,
    /// [`Enqueued::Replaced`] when a debounced job took this payload.
    pub async fn enqueue_unique(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        job: NewJob<'_>,
        traced: bool,
        lock: &UniqueLock,
    ) -> Result<Enqueued, Error> {
        check_times(spec)?;
        if let Some(id) = job.id {
            if id.is_empty() || id.len() > MAX_ID_LEN {
                return Err(Error::InvalidJobId {
                    id: id.to_owned(),
                    rule: "an id must be 1 to 255 bytes long",
                });
            }
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::ENQUEUE.prepare_invoke();
        enqueue_args(
            &mut invocation,
            &keys,
            spec,
            &[job],
            if job.id.is_some() {
                FLAG_EXPLICIT_ID
            } else {
                0
            } | if traced { FLAG_TRACE_CONTEXT } else { 0 }
                | if job.id.is_some() || spec.index || self.inner.index_jobs {
                    FLAG_INDEXED
                } else {
                    0
                },
            Some(lock),
        );
        let (reply, acked) = self.send_enqueue(topic, &invocation).await?;
        let corrupt = |detail: String| Error::Corrupt {
            op: "enqueue",
            detail: format!("unexpected reply of the enqueue script: {detail}"),
        };
        let (kind, id): (String, String) = match FromRedisValue::from_redis_value(reply.clone()) {
            Ok(pair) => pair,
            Err(_) => {
                let dups: Vec<String> =
                    FromRedisValue::from_redis_value(reply).map_err(|e| corrupt(e.to_string()))?;
                return Err(Error::DuplicateJobId {
                    topic: topic.to_owned(),
                    id: dups.join(", "),
                });
            }
        };
        let id = JobId::new(id);
        let enqueued = match kind.as_str() {
            "n" => Enqueued::New(id),
            "d" => Enqueued::Duplicate(id),
            "r" => Enqueued::Replaced(id),
            other => return Err(corrupt(format!("kind `{other}`"))),
        };
        match acked {
            Some((acked, wanted)) if acked < wanted && !enqueued.is_duplicate() => {
                Err(Error::NotReplicated {
                    topic: topic.to_owned(),
                    acked,
                    wanted,
                    ids: vec![enqueued.into_id()],
                })
            }
            _ => Ok(enqueued),
        }
    }

    /// Runs an enqueue script call (and `WAIT`, when replicas are asked
    /// for): its reply, and the replicas that acknowledged it of those
    /// wanted.
    async fn send_enqueue(
        &self,
        topic: &str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<(redis::Value, Option<(u32, u32)>), Error> {
        // A call that got no reply may still have run: say so, instead of
        // a plain I/O error that reads as "not enqueued".
        let mut handle = self.inner.pool.get("enqueue").await?;
        let (result, acked) = match self.inner.replicas {
            None => (invocation.invoke_async(&mut handle.conn).await, None),
            Some((wanted, timeout_ms)) => {
                match invoke_and_wait(&mut handle.conn, invocation, wanted, timeout_ms).await {
                    Ok((reply, acked)) => (Ok(reply), Some((acked, wanted))),
                    Err(e) => (Err(e), None),
                }
            }
        };
        let reply: redis::Value = handle.check(result).map_err(|source| {
            if connection::is_connection_error(&source) {
                Error::EnqueueUnconfirmed {
                    topic: topic.to_owned(),
                    reason: source.to_string(),
                }
            } else {
                Error::redis("enqueue")(source)
            }
        })?;
        Ok((reply, acked))
    }
}

/// The KEYS and ARGV of an enqueue script call (`lua/enqueue.lua`).
fn enqueue_args(
    invocation: &mut redis::ScriptInvocation<'_>,
    keys: &crate::keys::TopicKeys,
    spec: &EnqueueSpec,
    jobs: &[NewJob<'_>],
    flags: u8,
    lock: Option<&UniqueLock>,
) {
    let explicit = flags & FLAG_EXPLICIT_ID != 0;
    invocation
        .key(&keys.pending[usize::from(spec.priority.as_u8())])
        .key(&keys.delayed)
        .key(&keys.ids)
        .key(&keys.seq)
        .key(&keys.wake)
        .key(&keys.paused)
        .key(&keys.index)
        .key(&keys.keyed)
        .key(&keys.stats)
        .arg(spec.priority.as_u8())
        .arg(ms(spec.delay))
        .arg(spec.ttl.map_or(0, ms))
        .arg(spec.max_retries.min(255))
        .arg(
            (flags & (FLAG_EXPLICIT_ID | FLAG_TRACE_CONTEXT | FLAG_KEYED | FLAG_INDEXED))
                | if lock.is_some() { FLAG_UNIQUE } else { 0 },
        );
    for job in jobs {
        invocation.arg(job.payload);
    }
    if explicit {
        for job in jobs {
            invocation.arg(job.id.unwrap_or_default());
        }
    }
    if let Some(lock) = lock {
        invocation
            .key(&keys.locks)
            .key(keys.unique(&lock.key))
            .arg(lock.mode.code())
            .arg(ms(lock.ttl).max(1))
            .arg(&lock.key);
    }
}

/// A script and `WAIT wanted timeout` in one pipeline (one round trip): the
/// script's reply and how many replicas acknowledged it. A `NOSCRIPT` loads
/// the script and runs the pipeline again (the script did not run, so
/// nothing is written twice).
pub(super) async fn invoke_and_wait(
    conn: &mut connection::Connection,
    invocation: &redis::ScriptInvocation<'_>,
    wanted: u32,
    timeout_ms: u64,
) -> Result<(redis::Value, u32), redis::RedisError> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors()
        .invoke_script(invocation)
        .cmd("WAIT")
        .arg(wanted)
        .arg(timeout_ms);
    let mut loaded = false;
    loop {
        let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
        let waited = replies.pop();
        let reply = replies.pop();
        match reply {
            Some(redis::Value::ServerError(e)) if e.code() == "NOSCRIPT" && !loaded => {
                invocation.load_async(conn).await?;
                loaded = true;
            }
            Some(redis::Value::ServerError(e)) => return Err(e.into()),
            Some(reply) => {
                let acked = match waited {
                    Some(redis::Value::Int(n)) => u32::try_from(n).unwrap_or(0),
                    other => {
                        tracing::warn!(reply = ?other, "WAIT after a script failed; counting no replica as acknowledged");
                        0
                    }
                };
                return Ok((reply, acked));
            }
            None => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::UnexpectedReturnType,
                    "no reply to the script",
                )))
            }
        }
    }
}
