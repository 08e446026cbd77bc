//! The Redis engine: every job transition is one Lua script over the keys of
//! one topic (see `keys`). Hot-path calls (enqueue, fetch, ack) move whole
//! batches per script call.

mod admin;
mod clock;
mod coalesce;
mod connection;
mod guard;
mod health;
mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, ScriptInvocation};

use crate::envelope::Envelope;
use crate::keys::TopicKeys;
use crate::{scripts, Config, Error, JobId, Priority};

pub use admin::{Retried, Trimmed, UnreadableEntry};
pub use connection::{check_server_version, mask_password};
pub use health::{Finding, HealthOptions, HealthReport, TopicHealth};
pub use workers::{RunningJob, WorkerCommand, WorkerInfo, WorkerState, BEATS_TO_LIVE};

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
}

/// The result of one fetch call.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Leased jobs, highest priority first, FIFO within a priority.
    pub jobs: Vec<Envelope>,
    /// Time until the earliest delayed job is due, if any is scheduled.
    pub next_due: Option<Duration>,
}

/// How a failed attempt should be handled.
#[derive(Clone, Debug)]
pub struct Failure<'a> {
    /// The handler's error, kept with the job if it is dead-lettered.
    pub error: &'a str,
    /// Skip the remaining retries.
    pub permanent: bool,
    /// Delay before the retry (ignored when the job dies).
    pub retry_delay: Duration,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled again after the retry delay.
    Retrying,
    /// Moved to the dead-letter queue (or dropped, counted, when it is off).
    Dead,
    /// The lease was no longer ours: the job had been recovered and handed
    /// elsewhere; nothing changed.
    LeaseLost,
}

/// The result of one recovery pass over expired leases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Returned to pending with the attempt counted.
    pub requeued: usize,
    /// Dead-lettered because no attempt was left.
    pub dead: usize,
    /// Time until the earliest remaining lease deadline.
    pub next_deadline: Option<Duration>,
}

/// Counters and depths of one topic.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TopicStats {
    /// Topic name.
    pub topic: String,
    /// Pending jobs per priority: high, normal, low.
    pub pending: [u64; 3],
    /// Leased jobs.
    pub processing: u64,
    /// Scheduled jobs (delayed or waiting for a retry).
    pub delayed: u64,
    /// Jobs in the dead-letter queue.
    pub dead: u64,
    /// Entries in the parse-error store.
    pub parse_errors: u64,
    /// Jobs completed, ever.
    pub completed: u64,
    /// Failed attempts, ever.
    pub failed: u64,
    /// Jobs that expired before they started, ever.
    pub expired: u64,
    /// Jobs completed in the last full minute.
    pub completed_last_minute: u64,
    /// Handler time of completed jobs: average, p50, p99 (microseconds).
    pub processing_us: [u64; 3],
    /// Fields of the topic's stats hash that are not integers (changed by
    /// hand or by another program): left out of the numbers above.
    pub skipped_fields: Vec<String>,
}

/// A dead-lettered job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadJob {
    /// The job as it was when it died.
    pub envelope: Envelope,
    /// The last error (or `expired` / `lease expired`).
    pub error: String,
    /// When it died, ms since the epoch (server clock).
    pub died_at_ms: u64,
}

/// A stored entry that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrorEntry {
    /// The bytes as they were stored.
    pub raw: Vec<u8>,
    /// Why they did not decode.
    pub error: String,
    /// When it was found, ms since the epoch (server clock).
    pub at_ms: u64,
}

/// The Redis engine: a connection pool plus the loaded scripts. Cheap to
/// clone; clones share the pool.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    pool: connection::Pool,
    client: redis::Client,
    prefix: String,
    url: String,
    dead_letter: bool,
    dead_max: usize,
    dead_max_age: Duration,
    errors_max: usize,
    errors_max_age: Duration,
    batch_size: usize,
    keys: RwLock<HashMap<String, Arc<TopicKeys>>>,
    /// Topics this process has recorded in the set of known topics.
    recorded: RwLock<HashSet<String>>,
    clock: clock::ServerClock,
    wait_conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    coalescer: coalesce::Coalescer,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
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
fn check_times(spec: &EnqueueSpec) -> Result<(), Error> {
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

/// Clears the waiting connection when dropped before `done` is set.
struct DropConnUnlessDone<'a> {
    slot: &'a mut Option<MultiplexedConnection>,
    done: bool,
}

impl Drop for DropConnUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.slot = None;
        }
    }
}

/// Extra time a blocking wait allows Redis beyond its own timeout before
/// the connection is considered dead.
const WAIT_SLACK: Duration = Duration::from_secs(3);
/// How much earlier than the caller's own timeout a fetch stops being
/// valid on the server, to absorb clock estimate error.
const FETCH_DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// Longest explicit id (its length is one byte of the envelope).
const MAX_ID_LEN: usize = 255;

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn flag(value: bool) -> &'static str {
    if value {
        "1"
    } else {
        "0"
    }
}

fn optional_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// A WRONGTYPE reply to plain commands, turned into an error that names
/// the keys (their first argument); any other error unchanged.
fn wrong_type(op: &'static str, cmds: &[redis::Cmd], error: redis::RedisError) -> Error {
    if error.code() != Some("WRONGTYPE") {
        return Error::redis(op)(error);
    }
    let keys: Vec<String> = cmds
        .iter()
        .filter_map(|cmd| match cmd.args_iter().nth(1)? {
            redis::Arg::Simple(key) => Some(format!("`{}`", String::from_utf8_lossy(key))),
            _ => None,
        })
        .collect();
    Error::Corrupt {
        op,
        detail: format!(
            "key {} holds another type than rmq writes there; nothing was changed. Another program wrote this key: rename or delete it, or give rmq its own queue_prefix",
            keys.join(" or ")
        ),
    }
}

/// The histogram bucket of a handler time: floor(log2(microseconds)), 0..=40.
pub fn duration_bucket(duration: Duration) -> u32 {
    let us = u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    (63 - us.leading_zeros()).min(40)
}

impl Broker {
    /// Connects: opens the pool, checks the server version (>= 7.0) and its
    /// eviction policy, AUTH, database selection.
    pub async fn connect(config: &Config) -> Result<Broker, Error> {
        let client = connection::client(config)?;
        let manager = connection::Manager::new(client.clone());
        let mut first = bb8::ManageConnection::connect(&manager)
            .await
            .map_err(|e| connection::connect_error(config, &e))?;
        let (info, time): (String, (u64, u64)) = redis::pipe()
            .cmd("INFO")
            .arg("server")
            .arg("memory")
            .cmd("TIME")
            .query_async(&mut first.inner)
            .await
            .map_err(|e| connection::connect_error(config, &e))?;
        check_server_version(&info)?;
        let url = mask_password(&config.redis_url);
        guard::check_eviction(&info, config.allow_eviction, &url)?;
        for script in scripts::all() {
            script
                .load_async(&mut first.inner)
                .await
                .map_err(|e| connection::script_load_error(config, e))?;
        }
        let pool = connection::Pool::new(manager, config.connection_pool_size, first, url.clone());
        Ok(Broker {
            inner: Arc::new(Inner {
                pool,
                client,
                prefix: config.queue_prefix.clone(),
                url,
                dead_letter: config.enable_dead_letter,
                dead_max: config.dead_letter_max_entries.max(1),
                dead_max_age: config.dead_letter_max_age,
                errors_max: config.parse_error_max_entries.max(1),
                errors_max_age: config.parse_error_max_age,
                batch_size: config.batch_size.max(1),
                keys: RwLock::default(),
                recorded: RwLock::default(),
                clock: clock::ServerClock::new(time.0 * 1000 + time.1 / 1000),
                wait_conn: tokio::sync::Mutex::new(None),
                coalescer: coalesce::Coalescer::default(),
            }),
        })
    }

    /// A broker with the same settings and scripts on connections of its
    /// own, opened on the calling runtime (their I/O runs there): for work
    /// that must not depend on another runtime's threads.
    pub async fn sibling(&self) -> Result<Broker, Error> {
        let inner = &self.inner;
        let manager = connection::Manager::new(inner.client.clone());
        let first = bb8::ManageConnection::connect(&manager)
            .await
            .map_err(Error::redis("connecting"))?;
        let pool = connection::Pool::new(manager, 1, first, inner.url.clone());
        Ok(Broker {
            inner: Arc::new(Inner {
                pool,
                client: inner.client.clone(),
                prefix: inner.prefix.clone(),
                url: inner.url.clone(),
                dead_letter: inner.dead_letter,
                dead_max: inner.dead_max,
                dead_max_age: inner.dead_max_age,
                errors_max: inner.errors_max,
                errors_max_age: inner.errors_max_age,
                batch_size: inner.batch_size,
                keys: RwLock::default(),
                recorded: RwLock::default(),
                clock: clock::ServerClock::new(inner.clock.now_ms()),
                wait_conn: tokio::sync::Mutex::new(None),
                coalescer: coalesce::Coalescer::default(),
            }),
        })
    }

    /// The key prefix (`queue_prefix`) of this broker.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The keys of `topic` (cached).
    pub fn keys(&self, topic: &str) -> Arc<TopicKeys> {
        if let Some(keys) = self
            .inner
            .keys
            .read()
            .ok()
            .and_then(|map| map.get(topic).cloned())
        {
            return keys;
        }
        let keys = Arc::new(TopicKeys::new(&self.inner.prefix, topic));
        if let Ok(mut map) = self.inner.keys.write() {
            map.insert(topic.to_owned(), keys.clone());
        }
        keys
    }

    /// Runs one script invocation on a pooled connection.
    async fn run<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let mut handle = self.inner.pool.get(op).await?;
        let result = invocation.invoke_async(&mut handle.conn).await;
        handle.check(result).map_err(Error::redis(op))
    }

    /// Runs a plain command on a pooled connection.
    async fn cmd<T: FromRedisValue>(&self, op: &'static str, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut handle = self.inner.pool.get(op).await?;
        let result = cmd.query_async(&mut handle.conn).await;
        handle
            .check(result)
            .map_err(|e| wrong_type(op, std::slice::from_ref(cmd), e))
    }

    /// Runs a pipeline of plain commands (never scripts) on a pooled
    /// connection.
    async fn pipe<T: FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, Error> {
        let mut handle = self.inner.pool.get(op).await?;
        let result = pipe.query_async(&mut handle.conn).await;
        handle
            .check(result)
            .map_err(|e| wrong_type(op, &pipe.cmd_iter().cloned().collect::<Vec<_>>(), e))
    }

    /// Enqueues jobs of one topic; ids in order. Up to 1,000 jobs and 8 MiB
    /// of payload go in one script call, atomically; a larger batch takes
    /// several calls, and an error stops it after the calls that succeeded.
    pub async fn enqueue(
        &self,
        topic: &str,
        spec: &EnqueueSpec,
        jobs: &[NewJob<'_>],
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
            ids.extend(self.enqueue_call(topic, spec, call).await?);
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
        invocation
            .key(&keys.pending[usize::from(spec.priority.as_u8())])
            .key(&keys.delayed)
            .key(&keys.ids)
            .key(&keys.seq)
            .key(&keys.wake)
            .arg(spec.priority.as_u8())
            .arg(ms(spec.delay))
            .arg(spec.ttl.map_or(0, ms))
            .arg(spec.max_retries.min(255))
            .arg(flag(explicit));
        for job in jobs {
            invocation.arg(job.payload);
        }
        if explicit {
            for job in jobs {
                invocation.arg(job.id.unwrap_or_default());
            }
        }
        // A call that got no reply may still have run: say so, instead of
        // a plain I/O error that reads as "not enqueued".
        let mut handle = self.inner.pool.get("enqueue").await?;
        let result = invocation.invoke_async(&mut handle.conn).await;
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
        match reply {
            redis::Value::Int(last) if explicit => {
                let _ = last;
                Ok(jobs
                    .iter()
                    .map(|job| JobId::new(job.id.unwrap_or_default()))
                    .collect())
            }
            redis::Value::Int(last) => {
                let first = last - jobs.len() as i64 + 1;
                Ok((0..jobs.len() as i64)
                    .map(|i| JobId::new((first + i).to_string()))
                    .collect())
            }
            other => {
                let dups: Vec<String> =
                    FromRedisValue::from_redis_value(other).map_err(|e| Error::Corrupt {
                        op: "enqueue",
                        detail: format!("unexpected reply of the enqueue script: {e}"),
                    })?;
                Err(Error::DuplicateJobId {
                    topic: topic.to_owned(),
                    id: dups.join(", "),
                })
            }
        }
    }

    /// Promotes due delayed jobs, then leases up to `max` jobs.
    pub async fn fetch(&self, topic: &str, max: usize, lease: Duration) -> Result<Fetched, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::FETCH.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.delayed)
            .key(&keys.processing)
            .key(&keys.dead)
            .key(&keys.errors)
            .key(&keys.ids)
            .key(&keys.stats)
            .key(&keys.wake)
            .arg(max)
            .arg(ms(lease).max(1))
            .arg(self.inner.batch_size.max(max))
            .arg(self.inner.dead_max)
            .arg(self.inner.errors_max);
        // The fetch tells Redis when this caller stops waiting for the
        // reply: one that only runs after that (Redis stalled past the
        // response timeout) leases nothing, so no job is leased to nobody.
        let mut handle = self.inner.pool.get("fetch").await?;
        let deadline = self.inner.clock.now_ms()
            + ms(connection::RESPONSE_TIMEOUT.saturating_sub(FETCH_DEADLINE_MARGIN));
        invocation.arg(deadline);
        let result = invocation.invoke_async(&mut handle.conn).await;
        let (raw, next_due, server_ms): (Vec<Vec<u8>>, i64, u64) =
            handle.check(result).map_err(Error::redis("fetch"))?;
        self.inner.clock.observe(server_ms);
        let mut jobs = Vec::with_capacity(raw.len());
        for bytes in raw {
            let bytes = bytes::Bytes::from(bytes);
            match Envelope::parse(bytes.clone()) {
                Ok(env) => jobs.push(env),
                Err(e) => {
                    // The jobs parsed so far are leased to this caller:
                    // never drop them for a failure to file this one.
                    if let Err(error) = self.reject_raw(topic, &bytes, &e.to_string()).await {
                        tracing::warn!(%error, topic, "could not move an undecodable entry to the parse-error store; it is retried when its lease expires");
                    }
                }
            }
        }
        Ok(Fetched {
            jobs,
            next_due: optional_ms(next_due),
        })
    }

    /// Completes jobs; returns the indexes (into `jobs`) whose lease was lost.
    /// `durations` (same order) feed the processing-time histogram.
    pub async fn ack(
        &self,
        topic: &str,
        jobs: &[Envelope],
        durations: &[Duration],
    ) -> Result<Vec<usize>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::ACK.prepare_invoke();
        // The histogram is summed here, so the script gets one argument per
        // job (its envelope) plus a few buckets.
        let mut buckets = [0u32; 41];
        let mut sum_us: u64 = 0;
        for duration in durations {
            buckets[duration_bucket(*duration) as usize] += 1;
            sum_us = sum_us.saturating_add(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
        }
        let used: Vec<(usize, u32)> = buckets
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(bucket, &count)| (bucket, count))
            .collect();
        invocation
            .key(&keys.processing)
            .key(&keys.ids)
            .key(&keys.stats)
            .arg(sum_us)
            .arg(used.len());
        for (bucket, count) in used {
            invocation.arg(bucket).arg(count);
        }
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        self.run("ack", &invocation).await
    }

    /// Records a failed attempt: retry later or dead-letter.
    pub async fn fail(
        &self,
        topic: &str,
        job: &Envelope,
        failure: &Failure<'_>,
    ) -> Result<FailOutcome, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::FAIL.prepare_invoke();
        invocation
            .key(&keys.processing)
            .key(&keys.delayed)
            .key(&keys.dead)
            .key(&keys.stats)
            .key(&keys.ids)
            .key(&keys.wake)
            .arg(job.as_bytes())
            .arg(failure.error)
            .arg(flag(failure.permanent))
            .arg(ms(failure.retry_delay))
            .arg(flag(self.inner.dead_letter))
            .arg(self.inner.dead_max);
        let code: i64 = self.run("fail", &invocation).await?;
        match code {
            0 => Ok(FailOutcome::Retrying),
            1 => Ok(FailOutcome::Dead),
            2 => Ok(FailOutcome::LeaseLost),
            other => Err(Error::Corrupt {
                op: "fail",
                detail: format!("the fail script returned {other}"),
            }),
        }
    }

    /// Moves the leased `job`, whose payload does not decode, to the
    /// parse-error store. Returns false if the lease was lost.
    pub async fn reject(&self, topic: &str, job: &Envelope, error: &str) -> Result<bool, Error> {
        self.reject_raw(topic, job.as_bytes(), error).await
    }

    async fn reject_raw(&self, topic: &str, raw: &[u8], error: &str) -> Result<bool, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::REJECT.prepare_invoke();
        invocation
            .key(&keys.processing)
            .key(&keys.errors)
            .key(&keys.ids)
            .arg(raw)
            .arg(error)
            .arg(self.inner.errors_max);
        let moved: i64 = self.run("reject", &invocation).await?;
        Ok(moved == 1)
    }

    /// Extends the leases of `jobs` to `lease` from now; returns the indexes
    /// whose lease was lost.
    pub async fn extend(
        &self,
        topic: &str,
        jobs: &[Envelope],
        lease: Duration,
    ) -> Result<Vec<usize>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::EXTEND.prepare_invoke();
        invocation.key(&keys.processing).arg(ms(lease).max(1));
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        self.run("extend", &invocation).await
    }

    /// Returns leased jobs this worker will not run to the front of their
    /// pending list, attempt unchanged. Returns how many were still ours.
    pub async fn release(&self, topic: &str, jobs: &[Envelope]) -> Result<usize, Error> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::RELEASE.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.processing)
            .key(&keys.wake);
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        self.run("release", &invocation).await
    }

    /// Returns jobs whose lease expired to pending (attempt counted) or to
    /// the dead-letter queue.
    pub async fn recover(&self, topic: &str, max: usize) -> Result<Recovered, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::RECOVER.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.processing)
            .key(&keys.dead)
            .key(&keys.stats)
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.errors)
            .arg(max.max(1))
            .arg(flag(self.inner.dead_letter))
            .arg(self.inner.dead_max)
            .arg(self.inner.errors_max);
        let (requeued, dead, next): (usize, usize, i64) = self.run("recover", &invocation).await?;
        Ok(Recovered {
            requeued,
            dead,
            next_deadline: optional_ms(next),
        })
    }

    /// Blocks on a dedicated connection until an enqueue wakes one of
    /// `topics` or `timeout` passes. True when woken.
    ///
    /// Concurrent calls on one broker (and its clones) take turns on the
    /// dedicated connection.
    pub async fn wait(&self, topics: &[String], timeout: Duration) -> Result<bool, Error> {
        if topics.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        let mut guard = self.inner.wait_conn.lock().await;
        // Dropped before BLPOP answers (the caller gave up waiting), the
        // connection is closed, so Redis forgets the BLPOP instead of handing
        // it a wake-up token meant for another worker.
        let mut slot = DropConnUnlessDone {
            slot: &mut guard,
            done: false,
        };
        let conn = match slot.slot.as_mut() {
            Some(conn) => conn,
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connection::CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                let conn = self
                    .inner
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(Error::redis("wait"))?;
                slot.slot.insert(conn)
            }
        };
        let mut cmd = redis::cmd("BLPOP");
        for topic in topics {
            cmd.arg(&self.keys(topic).wake);
        }
        // BLPOP takes seconds with decimals; 0 would block for ever.
        cmd.arg(format!("{:.3}", timeout.as_secs_f64().max(0.001)));
        let watchdog = timeout + WAIT_SLACK;
        let answer = tokio::time::timeout(
            watchdog,
            cmd.query_async::<Option<(Vec<u8>, Vec<u8>)>>(conn),
        )
        .await;
        // On an error the guard drops the connection; the next wait opens a
        // new one.
        match answer {
            Ok(Ok(popped)) => {
                slot.done = true;
                Ok(popped.is_some())
            }
            Ok(Err(e)) => Err(Error::Redis {
                op: "wait",
                source: e,
            }),
            Err(_) => Err(Error::Timeout {
                op: "wait",
                after: watchdog,
            }),
        }
    }
}
