//! Errors: [`TaskError`] for handlers, [`Error`] for the library.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// Characters of a user-supplied value that an error message quotes.
const QUOTED_CHARS: usize = 64;

/// `value` as error messages quote it: whole up to 64 characters, else its
/// first 64 characters and its length (`abc… (10000 bytes)`), so a huge id
/// or topic never floods a log line or a terminal.
pub(crate) fn quoted(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &value[..cut], value.len())),
    }
}

/// `live workers: a, b` (see `worker ps`), or that there is none.
fn live_workers(live: &[String]) -> String {
    if live.is_empty() {
        "no worker is live (none has beaten within 3 heartbeat intervals)".to_owned()
    } else {
        format!("live workers (see `worker ps`): {}", live.join(", "))
    }
}

/// A boxed error that can cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a handler failed, and whether trying again can help.
///
/// Any error converts into a *retryable* `TaskError`, so `?` works in a
/// handler that returns `Result<(), TaskError>`. Mark input that can never
/// succeed as [`TaskError::permanent`]: the job then goes straight to the
/// dead-letter queue instead of being retried.
pub struct TaskError {
    kind: TaskErrorKind,
    source: BoxError,
    /// Set by the runtime for a timeout or a panic (not user-visible: both
    /// stay plain retryable errors); feeds the `outcome` metric label.
    cause: Cause,
    /// For [`TaskErrorKind::RateLimited`]: when to run the job again.
    retry_after: Option<Duration>,
}

/// What produced a [`TaskError`]: the handler itself, or the runtime
/// stopping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Returned by the handler (or its payload decoding).
    Handler,
    /// The handler ran past its timeout and was cancelled.
    Timeout,
    /// The handler panicked.
    Panic,
}

/// The class of a [`TaskError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskErrorKind {
    /// Try again later, per the task's retry policy.
    Retryable,
    /// Never retry: dead-letter the job now.
    Permanent,
    /// The stored payload does not decode into the task's type; the job goes
    /// to the parse-error store with its raw bytes.
    Malformed,
    /// The handler stopped because the job was cancelled: it is never
    /// retried, and ends cancelled.
    Cancelled,
    /// Something upstream asked to slow down (an HTTP 429): run the job
    /// again after [`TaskError::retry_after`], without counting an attempt.
    RateLimited,
}

impl TaskError {
    /// A failure worth retrying.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        TaskError {
            kind: TaskErrorKind::Retryable,
            source: error.into(),
            cause: Cause::Handler,
            retry_after: None,
        }
    }

    /// A failure that no retry can fix: the job is dead-lettered at once.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        TaskError {
            kind: TaskErrorKind::Permanent,
            source: error.into(),
            cause: Cause::Handler,
            retry_after: None,
        }
    }

    /// A payload that does not decode into the task's type.
    pub fn malformed(error: impl Into<BoxError>) -> Self {
        TaskError {
            kind: TaskErrorKind::Malformed,
            source: error.into(),
            cause: Cause::Handler,
            retry_after: None,
        }
    }

    /// The handler stopped because its job was cancelled
    /// ([`crate::JobContext::cancelled`]): the job ends cancelled, never
    /// retried.
    pub fn cancelled() -> Self {
        TaskError {
            kind: TaskErrorKind::Cancelled,
            source: "cancelled".into(),
            cause: Cause::Handler,
            retry_after: None,
        }
    }

    /// An upstream rate limit (an HTTP 429 with `Retry-After`): the job goes
    /// back to the delayed set, due in `retry_after`, with its attempt
    /// number unchanged. It never dead-letters for this, however often it
    /// happens; the worker's `rate_limited` counter and the topic's
    /// `rate_limited` statistic count the re-delays.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rmq_core::TaskError;
    /// let error = TaskError::rate_limited(Duration::from_secs(2));
    /// assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    pub fn rate_limited(retry_after: Duration) -> Self {
        TaskError {
            kind: TaskErrorKind::RateLimited,
            source: format!("rate limited; run again in {retry_after:?}").into(),
            cause: Cause::Handler,
            retry_after: Some(retry_after),
        }
    }

    /// For a rate-limited error, how long to wait before the next run.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// A retryable error the runtime made for a timeout or a panic.
    pub(crate) fn stopped(cause: Cause, message: String) -> Self {
        TaskError {
            cause,
            ..TaskError::retryable(message)
        }
    }

    /// Whether the handler returned this error, timed out or panicked.
    pub(crate) fn cause(&self) -> Cause {
        self.cause
    }

    /// The class of this error.
    pub fn kind(&self) -> TaskErrorKind {
        self.kind
    }

    /// Whether the job should not be retried.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.kind,
            TaskErrorKind::Permanent | TaskErrorKind::Malformed
        )
    }

    /// The underlying error.
    pub fn source(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The underlying error, taken out.
    pub fn into_source(self) -> BoxError {
        self.source
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for TaskError {
    fn from(error: E) -> Self {
        TaskError::retryable(error)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

/// Marks the error of a `Result` as permanent: `parse(x).permanent()?`.
pub trait ResultExt<T> {
    /// Turns an `Err` into a [`TaskError::permanent`].
    fn permanent(self) -> Result<T, TaskError>;
}

impl<T, E: Into<BoxError>> ResultExt<T> for Result<T, E> {
    fn permanent(self) -> Result<T, TaskError> {
        self.map_err(TaskError::permanent)
    }
}

/// An error of the rmq library itself: configuration, connection, enqueue,
/// administration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A per-call enqueue option breaks its rule.
    #[error("invalid enqueue option `{option}`: {rule}")]
    InvalidOption {
        /// The option (`delay`, `ttl`, ...).
        option: &'static str,
        /// What the value must be, and what was given.
        rule: String,
    },
    /// A configuration value breaks its rule.
    #[error("invalid configuration: `{option}` {rule}")]
    Config {
        /// The option's name (as in the configuration table).
        option: &'static str,
        /// What the value must be, and what was given.
        rule: String,
    },
    /// Redis could not be reached or refused the connection.
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connect {
        /// The URL, with any password masked.
        url: String,
        /// What went wrong and what to check.
        reason: String,
    },
    /// Redis refused the credentials or the database, or failed the
    /// connection in another way that retrying cannot fix.
    #[error("Redis at {url} refused the connection: {reason}")]
    Rejected {
        /// The URL, with any password masked.
        url: String,
        /// What was refused and what to check.
        reason: String,
    },
    /// Redis may evict keys under memory pressure, which deletes queued jobs.
    #[error("Redis at {url} evicts keys when memory runs out (`maxmemory-policy {policy}`), which silently deletes queued jobs: set `maxmemory-policy noeviction` (in redis.conf, or `CONFIG SET maxmemory-policy noeviction`), or set `allow_eviction` (MQ_ALLOW_EVICTION=true) to accept the risk")]
    EvictingRedis {
        /// The URL, with any password masked.
        url: String,
        /// The server's `maxmemory-policy`.
        policy: String,
    },
    /// Redis refused a write because it reached `maxmemory` (`noeviction`).
    #[error("Redis is full during {op} (used memory is over `maxmemory`); nothing was written. Workers keep draining queues; free memory (purge dead letters, drain backlogs) or raise `maxmemory`")]
    RedisFull {
        /// What rmq was doing.
        op: &'static str,
    },
    /// An enqueue got no reply: Redis may or may not have stored the jobs.
    #[error("no reply from Redis to the enqueue on topic `{topic}` ({reason}): the jobs may or may not have been enqueued; enqueue with explicit job ids (`.job_id(..)`) to make a retry safe (a duplicate is then refused, not queued twice)")]
    EnqueueUnconfirmed {
        /// The topic.
        topic: String,
        /// What went wrong on the connection.
        reason: String,
    },
    /// An enqueue succeeded on the master, but fewer replicas than
    /// `min_replicas_acked` confirmed it within `replicas_ack_timeout`
    /// (`WAIT`). The jobs ARE enqueued and will run unless the master fails
    /// before its replicas catch up: then a failover may lose them.
    #[error("the enqueue on topic `{topic}` is on the master, but only {acked} of the {wanted} replicas required (min_replicas_acked) confirmed it in time: the jobs are enqueued and will run, unless a failover happens before the replicas catch up, which may lose them; do not enqueue them again blindly (use explicit job ids to make a retry safe)")]
    NotReplicated {
        /// The topic.
        topic: String,
        /// Replicas that acknowledged the write.
        acked: u32,
        /// Replicas required.
        wanted: u32,
        /// The ids of the jobs of this call, enqueued on the master (those
        /// of earlier calls of a large batch are confirmed).
        ids: Vec<crate::JobId>,
    },
    /// The TLS layer refused the connection: the server's certificate is
    /// not trusted or not valid for the host, the server requires or
    /// refused the client certificate, or the port does not speak TLS.
    /// Retrying cannot help.
    #[error("TLS connection to Redis at {url} failed: {reason}")]
    Tls {
        /// The URL, with any password masked.
        url: String,
        /// What was wrong and what to change.
        reason: String,
    },
    /// The ACL user may not run a command rmq needs (`NOPERM`). Retrying
    /// cannot help.
    #[error("Redis at {url} denied a permission: {reason}")]
    Permission {
        /// The URL, with any password masked.
        url: String,
        /// Which user may not run what, and what to grant.
        reason: String,
    },
    /// The Redis server is older than rmq supports.
    #[error("Redis {found} is too old: rmq needs Redis 7.0 or newer (upgrade the server)")]
    RedisVersion {
        /// The version the server reported.
        found: String,
    },
    /// A Redis command failed.
    #[error("Redis error during {op}: {source}")]
    Redis {
        /// What rmq was doing.
        op: &'static str,
        /// The Redis client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error(
        "Redis did not answer {op} within {after:?} (is the server overloaded or unreachable?)"
    )]
    Timeout {
        /// What rmq was doing.
        op: &'static str,
        /// How long rmq waited.
        after: std::time::Duration,
    },
    /// Redis answered with something rmq did not write (a key changed by
    /// hand, or another program using rmq's keys).
    #[error("unexpected data in Redis during {op}: {detail}")]
    Corrupt {
        /// What rmq was doing.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The connection pool gave no connection in time.
    #[error(
        "no Redis connection available for {op}: {reason} (is Redis up? is the pool large enough?)"
    )]
    Pool {
        /// What rmq was doing.
        op: &'static str,
        /// The pool's error.
        reason: String,
    },
    /// A payload could not be encoded or decoded.
    #[error("payload of topic `{topic}` does not fit its type: {reason}")]
    Payload {
        /// The topic.
        topic: String,
        /// The serializer's message.
        reason: String,
    },
    /// An encoded payload is over the configured limit.
    #[error("payload of topic `{topic}` is {size} bytes, over the limit of {limit} bytes (raise `max_payload_bytes` or store the data elsewhere and enqueue a reference)")]
    PayloadTooLarge {
        /// The topic.
        topic: String,
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No task is registered for a topic.
    #[error("no task is registered for topic `{}` (is the crate that defines it linked? see `rmq::registry`)", quoted(.0))]
    UnknownTopic(String),
    /// No live worker has this id (`worker quiet` / `worker stop`).
    #[error("no live worker has id `{}`; {}", quoted(.id), live_workers(.live))]
    UnknownWorker {
        /// The id given.
        id: String,
        /// The ids of the live workers.
        live: Vec<String>,
    },
    /// A task takes `State<T>` and no `T` was registered on the worker.
    #[error("task `{task}` takes `State<{type_name}>`, but no `{type_name}` is registered on the worker: add `.state(value)` to the worker builder (with the worker command line: `rmq_worker::Cli::new().configure(|w| w.state(value)).main()`)")]
    MissingState {
        /// The task function.
        task: String,
        /// The state type.
        type_name: &'static str,
    },
    /// A worker found no task to serve.
    #[error("no tasks are registered in this binary: define tasks with #[rmq::task], and if they live in another crate, make sure the binary references it (add `use my_tasks as _;` to main.rs), or register them with `Worker::builder(client).task::<MyTask>()`")]
    NoTasks,
    /// Two tasks claim one topic.
    #[error("topic `{topic}` is claimed by two tasks: `{first}` and `{second}`; give one of them another `topic = \"...\"`")]
    DuplicateTopic {
        /// The topic.
        topic: String,
        /// One task function (module path and name).
        first: String,
        /// The other.
        second: String,
    },
    /// An explicit job id is invalid. Messages quote ids and topics
    /// shortened to 64 characters; the fields hold them in full.
    #[error("invalid job id `{}`: {rule}", quoted(.id))]
    InvalidJobId {
        /// The id given.
        id: String,
        /// What an id must be.
        rule: &'static str,
    },
    /// A job with this explicit id is already queued or running.
    #[error("a job with id `{}` is already queued or running on topic `{}`; it was not enqueued again", quoted(.id), quoted(.topic))]
    DuplicateJobId {
        /// The topic.
        topic: String,
        /// The id.
        id: String,
    },
    /// A job id was not found where it was looked for.
    #[error("no job `{}` in the {place} of topic `{}`", quoted(.id), quoted(.topic))]
    JobNotFound {
        /// The topic.
        topic: String,
        /// The id.
        id: String,
        /// The store that was searched (e.g. "dead-letter queue").
        place: &'static str,
    },
    /// A parse-error entry whose bytes are not a job envelope: there is no
    /// job to enqueue again.
    #[error("parse-error entry `{}` of topic `{}` cannot be retried: {reason}", quoted(.address), quoted(.topic))]
    NotRetryable {
        /// The topic.
        topic: String,
        /// The entry's address (job id or `@` digest).
        address: String,
        /// Why.
        reason: String,
    },
    /// An action that the state of an entry does not allow (e.g. deleting
    /// a job while it runs).
    #[error("cannot {action} a {state} entry: {hint}")]
    NotAllowed {
        /// The action asked for.
        action: &'static str,
        /// The state of the entry.
        state: &'static str,
        /// What can be done instead.
        hint: &'static str,
    },
    /// The operation needs a Redis-backed client.
    #[error("{0} needs a Redis-backed client (Client::connect), not a fake or inline one")]
    NotRedis(&'static str),
    /// No chain has this id.
    #[error("no chain `{}`: it was never enqueued, or its record expired (it is kept `dead_letter_max_age` after its last step)", quoted(.0))]
    UnknownChain(String),
    /// A cron schedule is invalid or does not exist.
    #[error("cron schedule `{name}` of topic `{topic}`: {reason}")]
    Schedule {
        /// The topic.
        topic: String,
        /// The schedule's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// A copy of this error for each caller that shared one failed Redis
    /// call (errors hold a non-cloneable source).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Redis { op, source } => Error::Redis {
                op,
                source: redis::RedisError::from((source.kind(), "Redis error", source.to_string())),
            },
            Error::Pool { op, reason } => Error::Pool {
                op,
                reason: reason.clone(),
            },
            Error::Timeout { op, after } => Error::Timeout { op, after: *after },
            Error::RedisFull { op } => Error::RedisFull { op },
            Error::InvalidOption { option, rule } => Error::InvalidOption {
                option,
                rule: rule.clone(),
            },
            Error::Corrupt { op, detail } => Error::Corrupt {
                op,
                detail: detail.clone(),
            },
            Error::EnqueueUnconfirmed { topic, reason } => Error::EnqueueUnconfirmed {
                topic: topic.clone(),
                reason: reason.clone(),
            },
            Error::NotReplicated {
                topic,
                acked,
                wanted,
                ids,
            } => Error::NotReplicated {
                topic: topic.clone(),
                acked: *acked,
                wanted: *wanted,
                ids: ids.clone(),
            },
            Error::Connect { url, reason } => Error::Connect {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::Rejected { url, reason } => Error::Rejected {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::Tls { url, reason } => Error::Tls {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::Permission { url, reason } => Error::Permission {
                url: url.clone(),
                reason: reason.clone(),
            },
            other => Error::Corrupt {
                op: "enqueue",
                detail: other.to_string(),
            },
        }
    }

    /// Whether trying again later may succeed without changing anything:
    /// Redis unreachable, refusing connections, timing out, loading its data
    /// set, failing over or busy. Configuration, authentication, permission
    /// (`NOPERM`), TLS and certificate errors and invalid input are not
    /// transient: they need a change, and `rmq-worker run` stops at once on
    /// them.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Pool { .. } | Error::Timeout { .. } => true,
            Error::Redis { source, .. } => is_transient(source),
            _ => false,
        }
    }

    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
        move |source| {
            if source.code() == Some("OOM") {
                Error::RedisFull { op }
            } else {
                Error::Redis { op, source }
            }
        }
    }
}

/// Whether a Redis client error may pass by itself: the connection failed
/// (refused, reset, timed out) or the server is temporarily unable to serve
/// (`LOADING`, `BUSY`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`
/// after a failover). A TLS failure reaches here as an I/O error too, and is
/// told apart by the caller.
pub(crate) fn is_transient(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        ErrorKind::Io => true,
        _ => {
            error.is_connection_dropped()
                || error.is_timeout()
                || error.is_connection_refusal()
                || error.code() == Some("BUSY")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_shorten_long_user_values() {
        let id = "x".repeat(10_000);
        let error = Error::InvalidJobId {
            id: id.clone(),
            rule: "an id must be 1 to 255 bytes long",
        };
        let message = error.to_string();
        assert!(
            message.contains(&format!("`{}… (10000 bytes)`", "x".repeat(64))),
            "{message}"
        );
        assert!(message.len() < 200, "{message}");
        let error = Error::JobNotFound {
            topic: "t".into(),
            id: id.clone(),
            place: "dead-letter queue",
        };
        assert!(error.to_string().len() < 200);
        let error = Error::DuplicateJobId {
            topic: "t".into(),
            id,
        };
        assert!(error.to_string().len() < 200);
        assert!(Error::UnknownTopic("y".repeat(5000)).to_string().len() < 200);
    }

    #[test]
    fn short_values_and_multibyte_text_are_quoted_whole_or_cut_on_a_char() {
        assert_eq!(quoted("job-1"), "job-1");
        let exact = "é".repeat(64);
        assert_eq!(quoted(&exact), exact.as_str());
        let long = "é".repeat(65);
        assert_eq!(quoted(&long), format!("{}… (130 bytes)", "é".repeat(64)));
    }
}
