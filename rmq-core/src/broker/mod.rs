//! The Redis engine: every job transition is one Lua script over the keys of
//! one topic (see `keys`). Hot-path calls (enqueue, fetch, ack) move whole
//! batches per script call.

mod ack;
mod actions;
mod admin;
mod batch;
mod browse;
mod cancel;
mod chain;
mod clock;
mod coalesce;
mod connection;
mod cron;
mod enqueue;
mod event;
mod extend;
mod fail;
mod fetch;
mod gauges;
mod guard;
mod health;
mod locks;
mod pause;
mod recover;
mod reject;
mod release;
mod result;
mod search;
mod server;
mod status;
mod throughput;
mod wait;
mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::{FromRedisValue, ScriptInvocation};

use crate::envelope::Envelope;
use crate::keys::TopicKeys;
use crate::{scripts, Config, Error};

pub use ack::duration_bucket;
pub use actions::Changed;
pub use admin::{Retried, Trimmed, UnreadableEntry};
pub use batch::BATCH_RETENTION;
pub use browse::{Entry, Locator, State};
pub use cancel::Cancelled;
pub use chain::{
    chain_step_id, parse_chain_step_id, ChainRecord, ChainState, ChainStatus, ChainStep, StepState,
    StepStatus,
};
pub use connection::{check_server_version, mask_password};
pub(crate) use connection::{
    denied, is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url,
};
pub use cron::{Fired, RunSpec, ScheduleInfo, ScheduleSpec, Tick};
use enqueue::check_times;
pub use enqueue::{EnqueueSpec, NewJob};
pub use event::EVENT_RETENTION;
pub use extend::Extended;
pub use fail::{FailOutcome, Failure};
pub use fetch::{Fetched, Throttle};
pub use gauges::QueueGauges;
pub use health::{Finding, HealthOptions, HealthReport, TopicHealth};
pub use locks::LockInfo;
pub use recover::Recovered;
pub(crate) use result::Waiter;
pub use result::{JobResult, DONE_TTL, RESULT_RECHECK};
pub use search::{Cursor, Needle, SearchPage};
pub use server::ServerInfo;
pub use status::{JobState, JobStatus};
pub use throughput::{Throughput, THROUGHPUT_MINUTES};
pub use workers::{RunningJob, WorkerCommand, WorkerInfo, WorkerState, BEATS_TO_LIVE};

/// Most topics whose keys a broker caches.
pub const KEYS_CACHED: usize = 10_000;

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
    /// Whether the topic is paused ([`Broker::pause`]).
    pub paused: bool,
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
    /// Jobs delayed again by [`TaskError::rate_limited`](crate::TaskError::rate_limited), ever.
    pub rate_limited: u64,
    /// Fetches held back by the topic's rate, ever.
    pub throttled_rate: u64,
    /// Fetches held back by the topic's concurrency limit, ever.
    pub throttled_concurrency: u64,
    /// The limit that held a fetch back in the last
    /// [`THROTTLED_RECENTLY_MS`], if one did (the rate when both did).
    pub throttled_now: Option<Throttle>,
    /// Jobs waiting in fair per-key sub-queues (topics with a `rate_key`;
    /// not in `pending`, whatever their priority).
    pub keyed: u64,
}

/// How recent a held-back fetch must be to show in [`TopicStats::throttled_now`].
pub const THROTTLED_RECENTLY_MS: u64 = 5_000;

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
    /// The worker this handle fetches for (kept in the index records of the
    /// jobs it leases); empty for tools.
    owner: Arc<str>,
}

struct Inner {
    pool: connection::Pool,
    deployment: connection::Deployment,
    prefix: String,
    url: String,
    dead_letter: bool,
    keep_cancelled: bool,
    index_jobs: bool,
    dead_max: usize,
    dead_max_age: Duration,
    errors_max: usize,
    errors_max_age: Duration,
    batch_size: usize,
    /// `WAIT` after each enqueue: replicas and timeout (ms); `None` = off.
    replicas: Option<(u32, u64)>,
    keys: RwLock<HashMap<String, Arc<TopicKeys>>>,
    /// Topics this process has recorded in the set of known topics.
    recorded: RwLock<HashSet<String>>,
    clock: clock::ServerClock,
    wait_conn: tokio::sync::Mutex<Option<wait::Dedicated>>,
    /// A cluster's blocking waits: one connection per topic.
    wait_topics: tokio::sync::Mutex<wait::PerTopic>,
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

/// A WRONGTYPE reply to plain commands (or to commands of a pipeline),
/// turned into an error that names the keys (their first argument); any
/// other error unchanged.
fn wrong_type(op: &'static str, cmds: &[redis::Cmd], error: redis::RedisError) -> Error {
    let failed: Vec<usize> = error
        .clone()
        .into_server_errors()
        .map(|errors| {
            errors
                .iter()
                .filter(|(_, e)| e.code() == "WRONGTYPE")
                .map(|(index, _)| *index)
                .collect()
        })
        .unwrap_or_default();
    if failed.is_empty() {
        return Error::redis(op)(error);
    }
    let keys: Vec<String> = failed
        .iter()
        .filter_map(|&index| cmds.get(index))
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

impl Broker {
    /// Connects: opens the pool, checks the server version (>= 7.0) and its
    /// eviction policy, AUTH, database selection.
    pub async fn connect(config: &Config) -> Result<Broker, Error> {
        let deployment = connection::Deployment::new(config)?;
        let manager = connection::Manager::new(deployment.clone());
        let mut first = bb8::ManageConnection::connect(&manager)
            .await
            .map_err(|e| connection::connect_error(config, &e))?;
        let url = mask_password(&config.redis_url);
        let time = match &mut first.inner {
            connection::Connection::Single(conn) => {
                let (info, time): (String, (u64, u64)) = redis::pipe()
                    .cmd("INFO")
                    .arg("server")
                    .arg("memory")
                    .cmd("TIME")
                    .query_async(conn)
                    .await
                    .map_err(|e| connection::connect_error(config, &e))?;
                check_server_version(&info)?;
                guard::check_eviction(&info, config.allow_eviction, &url)?;
                time
            }
            connection::Connection::Cluster(conn) => {
                // INFO goes to every primary: one reply per node, and each
                // must pass the version and eviction checks.
                let infos: Vec<(String, String)> = redis::cmd("INFO")
                    .arg("server")
                    .arg("memory")
                    .query_async(conn)
                    .await
                    .map_err(|e| connection::connect_error(config, &e))?;
                for (node, info) in &infos {
                    check_server_version(info)?;
                    guard::check_eviction(
                        info,
                        config.allow_eviction,
                        &format!("{url} (node {node})"),
                    )?;
                }
                redis::cmd("TIME")
                    .query_async(conn)
                    .await
                    .map_err(|e| connection::connect_error(config, &e))?
            }
        };
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
                deployment,
                prefix: config.queue_prefix.clone(),
                url,
                dead_letter: config.enable_dead_letter,
                keep_cancelled: config.keep_cancelled,
                index_jobs: config.index_jobs,
                dead_max: config.dead_letter_max_entries.max(1),
                dead_max_age: config.dead_letter_max_age,
                errors_max: config.parse_error_max_entries.max(1),
                errors_max_age: config.parse_error_max_age,
                batch_size: config.batch_size.max(1),
                replicas: (config.min_replicas_acked > 0).then(|| {
                    (
                        config.min_replicas_acked,
                        ms(config.replicas_ack_timeout).max(1),
                    )
                }),
                keys: RwLock::default(),
                recorded: RwLock::default(),
                clock: clock::ServerClock::new(time.0 * 1000 + time.1 / 1000),
                wait_conn: tokio::sync::Mutex::new(None),
                wait_topics: tokio::sync::Mutex::default(),
                coalescer: coalesce::Coalescer::default(),
            }),
            owner: Arc::from(""),
        })
    }

    /// A broker with the same settings and scripts on connections of its
    /// own, opened on the calling runtime (their I/O runs there): for work
    /// that must not depend on another runtime's threads.
    pub async fn sibling(&self) -> Result<Broker, Error> {
        let inner = &self.inner;
        let manager = connection::Manager::new(inner.deployment.clone());
        let first = bb8::ManageConnection::connect(&manager)
            .await
            .map_err(Error::redis("connecting"))?;
        let pool = connection::Pool::new(manager, 1, first, inner.url.clone());
        Ok(Broker {
            inner: Arc::new(Inner {
                pool,
                deployment: inner.deployment.clone(),
                prefix: inner.prefix.clone(),
                url: inner.url.clone(),
                dead_letter: inner.dead_letter,
                keep_cancelled: inner.keep_cancelled,
                index_jobs: inner.index_jobs,
                dead_max: inner.dead_max,
                dead_max_age: inner.dead_max_age,
                errors_max: inner.errors_max,
                errors_max_age: inner.errors_max_age,
                batch_size: inner.batch_size,
                replicas: inner.replicas,
                keys: RwLock::default(),
                recorded: RwLock::default(),
                clock: clock::ServerClock::new(inner.clock.now_ms()),
                wait_conn: tokio::sync::Mutex::new(None),
                wait_topics: tokio::sync::Mutex::default(),
                coalescer: coalesce::Coalescer::default(),
            }),
            owner: self.owner.clone(),
        })
    }

    /// A handle on the same connections that fetches for worker `id`: the
    /// index records of the jobs it leases name that worker.
    pub fn with_owner(&self, id: &str) -> Broker {
        Broker {
            inner: Arc::clone(&self.inner),
            owner: Arc::from(id),
        }
    }

    /// The key prefix (`queue_prefix`) of this broker.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The keys of `topic`, cached for up to [`KEYS_CACHED`] topics (names
    /// past that, e.g. from URLs of a dashboard, are built per call).
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
            if map.len() < KEYS_CACHED {
                map.insert(topic.to_owned(), keys.clone());
            }
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

    /// Runs a pipeline whose commands may touch keys of different slots
    /// (worker heartbeats and their index): one pipeline on a single
    /// server; on a cluster each command on its own, concurrently, the
    /// replies in order. Only for pipelines without ignored replies, or
    /// whose replies are all ignored (`T = ()`).
    async fn pipe_any_slot<T: FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, Error> {
        if self.inner.deployment.cluster().is_none() {
            return self.pipe(op, pipe).await;
        }
        let cmds: Vec<redis::Cmd> = pipe.cmd_iter().cloned().collect();
        let replies = futures_util::future::try_join_all(
            cmds.iter().map(|cmd| self.cmd::<redis::Value>(op, cmd)),
        )
        .await?;
        T::from_redis_value(redis::Value::Array(replies)).map_err(|e| Error::redis(op)(e.into()))
    }
}
