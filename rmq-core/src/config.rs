//! Configuration: code, then environment, then defaults. Every option is in
//! the README's configuration table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// Settings of a client and a worker. Build with `Config::default()` or
/// [`Config::from_env`] and adjust fields; [`Config::validate`] runs when a
/// client connects or a worker starts.
///
/// Its `Debug` output masks the password, in `redis_password` and in
/// `redis_url`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `redis://[user:pass@]host:port[/db]`, `rediss://...` (feature
    /// `tls`), or through Redis Sentinel
    /// `redis+sentinel://[user:pass@]s1:26379,s2:26379/master[/db]`
    /// (`rediss+sentinel://` for TLS to the sentinels and the master; the
    /// credentials are the master's, see `sentinel_password`), or a Redis
    /// Cluster `redis+cluster://[user:pass@]h1:7000,h2:7001/` (seed nodes;
    /// the others are discovered).
    pub redis_url: String,
    /// Database number; overrides the one in the URL.
    pub redis_db: Option<i64>,
    /// ACL user name; overrides the one in the URL.
    pub redis_username: Option<String>,
    /// Password; overrides the one in the URL.
    pub redis_password: Option<String>,
    /// ACL user for the sentinels of a `redis+sentinel://` URL (the user in
    /// the URL and `redis_username` are the master's).
    pub sentinel_username: Option<String>,
    /// Password for the sentinels of a `redis+sentinel://` URL (the password
    /// in the URL and `redis_password` are the master's).
    pub sentinel_password: Option<String>,
    /// PEM file of the CA certificate(s) that sign the server's certificate
    /// (`rediss://` only). When set, only these CAs are trusted; when not,
    /// the public web PKI roots are.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (chain) for mutual TLS; needs
    /// `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key; needs
    /// `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Skip every check of the server's certificate (trust, host name,
    /// expiry), like `rediss://...#insecure`; a warning is logged at every
    /// connect. For tests only: anyone on the path can read and change the
    /// traffic.
    pub tls_insecure: bool,
    /// Namespace of every key, to run several environments on one Redis.
    pub queue_prefix: String,
    /// Connections in the pool (each one pipelines many requests).
    pub connection_pool_size: u32,
    /// Handlers a worker runs at once.
    pub max_workers: usize,
    /// Jobs a worker fetches ahead of its free handlers, at least: while
    /// handlers start jobs fast, it fetches up to `2 * batch_size` ahead,
    /// about 100 ms of work.
    pub task_queue_size: usize,
    /// Default time a job may wait before it starts (0 = forever).
    pub message_ttl: Duration,
    /// Default handler time limit, for tasks without `timeout`.
    pub processing_timeout: Duration,
    /// Lease (visibility timeout) of a fetched job; renewed while it runs.
    pub lease: Duration,
    /// Default retries after the first attempt, for tasks without `retries`.
    pub max_retries: u32,
    /// Default delays between retries (the last repeats).
    pub retry_delays: Vec<Duration>,
    /// Keep jobs that fail for good in the dead-letter queue (else drop them,
    /// counted).
    pub enable_dead_letter: bool,
    /// Keep cancelled jobs in the dead-letter queue, marked `cancelled`
    /// (else drop them, counted). Ignored when the dead-letter queue is off.
    pub keep_cancelled: bool,
    /// Index every job by id (status, cancellation by id). Jobs with an
    /// explicit id and jobs of tasks with `index = true` are indexed anyway.
    pub index_jobs: bool,
    /// How often a worker refreshes its metrics and trims retention stores.
    pub monitor_interval: Duration,
    /// Longest wait between checks for due delayed jobs (a worker is woken
    /// at the due time in any case).
    pub expired_check_interval: Duration,
    /// Longest wait between checks for expired leases (a worker also checks
    /// at the earliest lease deadline).
    pub processing_monitor_interval: Duration,
    /// Most jobs moved by one script call (fetch, ack, promote, recover).
    pub batch_size: usize,
    /// Largest encoded payload accepted by enqueue.
    pub max_payload_bytes: usize,
    /// Most entries kept in a topic's parse-error store.
    pub parse_error_max_entries: usize,
    /// Oldest entry kept in a topic's parse-error store.
    pub parse_error_max_age: Duration,
    /// Most entries kept in a topic's dead-letter queue.
    pub dead_letter_max_entries: usize,
    /// Oldest entry kept in a topic's dead-letter queue.
    pub dead_letter_max_age: Duration,
    /// How long a stopping worker lets running handlers finish.
    pub shutdown_grace: Duration,
    /// How often a worker writes its heartbeat (and reads `worker quiet` /
    /// `worker stop` commands); its entry expires after 3 missed beats.
    pub heartbeat_interval: Duration,
    /// Connect even when Redis may evict keys (`maxmemory-policy allkeys-*`),
    /// which silently deletes queued jobs; a warning is logged at every
    /// connect. Off by default: connecting fails instead.
    pub allow_eviction: bool,
    /// Replicas that must acknowledge each enqueue (`WAIT`) before it
    /// returns `Ok`; 0 (the default) does not wait. With fewer
    /// acknowledgements the enqueue returns [`Error::NotReplicated`]: the
    /// jobs are on the master, but a failover may lose them.
    pub min_replicas_acked: u32,
    /// How long an enqueue waits for `min_replicas_acked` replicas.
    pub replicas_ack_timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            redis_url,
            redis_db,
            redis_username,
            redis_password,
            sentinel_username,
            sentinel_password,
            tls_ca_file,
            tls_cert_file,
            tls_key_file,
            tls_insecure,
            queue_prefix,
            connection_pool_size,
            max_workers,
            task_queue_size,
            message_ttl,
            processing_timeout,
            lease,
            max_retries,
            retry_delays,
            enable_dead_letter,
            keep_cancelled,
            index_jobs,
            monitor_interval,
            expired_check_interval,
            processing_monitor_interval,
            batch_size,
            max_payload_bytes,
            parse_error_max_entries,
            parse_error_max_age,
            dead_letter_max_entries,
            dead_letter_max_age,
            shutdown_grace,
            heartbeat_interval,
            allow_eviction,
            min_replicas_acked,
            replicas_ack_timeout,
        } = self;
        f.debug_struct("Config")
            .field("redis_url", &crate::broker::mask_password(redis_url))
            .field("redis_db", redis_db)
            .field("redis_username", redis_username)
            .field("redis_password", &redis_password.as_ref().map(|_| "***"))
            .field("sentinel_username", sentinel_username)
            .field(
                "sentinel_password",
                &sentinel_password.as_ref().map(|_| "***"),
            )
            .field("tls_ca_file", tls_ca_file)
            .field("tls_cert_file", tls_cert_file)
            .field("tls_key_file", tls_key_file)
            .field("tls_insecure", tls_insecure)
            .field("queue_prefix", queue_prefix)
            .field("connection_pool_size", connection_pool_size)
            .field("max_workers", max_workers)
            .field("task_queue_size", task_queue_size)
            .field("message_ttl", message_ttl)
            .field("processing_timeout", processing_timeout)
            .field("lease", lease)
            .field("max_retries", max_retries)
            .field("retry_delays", retry_delays)
            .field("enable_dead_letter", enable_dead_letter)
            .field("keep_cancelled", keep_cancelled)
            .field("index_jobs", index_jobs)
            .field("monitor_interval", monitor_interval)
            .field("expired_check_interval", expired_check_interval)
            .field("processing_monitor_interval", processing_monitor_interval)
            .field("batch_size", batch_size)
            .field("max_payload_bytes", max_payload_bytes)
            .field("parse_error_max_entries", parse_error_max_entries)
            .field("parse_error_max_age", parse_error_max_age)
            .field("dead_letter_max_entries", dead_letter_max_entries)
            .field("dead_letter_max_age", dead_letter_max_age)
            .field("shutdown_grace", shutdown_grace)
            .field("heartbeat_interval", heartbeat_interval)
            .field("allow_eviction", allow_eviction)
            .field("min_replicas_acked", min_replicas_acked)
            .field("replicas_ack_timeout", replicas_ack_timeout)
            .finish()
    }
}

const DAY: Duration = Duration::from_secs(86_400);

impl Default for Config {
    fn default() -> Self {
        Config {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_db: None,
            redis_username: None,
            redis_password: None,
            sentinel_username: None,
            sentinel_password: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_insecure: false,
            queue_prefix: String::new(),
            connection_pool_size: 4,
            max_workers: 5,
            task_queue_size: 8,
            message_ttl: DAY,
            processing_timeout: Duration::from_secs(180),
            lease: Duration::from_secs(30),
            max_retries: 3,
            retry_delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(1800),
            ],
            enable_dead_letter: true,
            keep_cancelled: true,
            index_jobs: false,
            monitor_interval: Duration::from_secs(30),
            expired_check_interval: Duration::from_secs(10),
            processing_monitor_interval: Duration::from_secs(30),
            batch_size: 100,
            max_payload_bytes: 1024 * 1024,
            parse_error_max_entries: 10_000,
            parse_error_max_age: 3 * DAY,
            dead_letter_max_entries: 100_000,
            dead_letter_max_age: 7 * DAY,
            shutdown_grace: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            allow_eviction: false,
            min_replicas_acked: 0,
            replicas_ack_timeout: Duration::from_secs(1),
        }
    }
}

/// Reads one environment variable: `Ok(None)` when unset or empty.
fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T: std::str::FromStr>(
    name: &'static str,
    option: &'static str,
    what: &str,
) -> Result<Option<T>, Error> {
    match var(name) {
        None => Ok(None),
        Some(raw) => raw.trim().parse().map(Some).map_err(|_| Error::Config {
            option,
            rule: format!("must be {what}; {name}=`{raw}`"),
        }),
    }
}

fn secs_env(name: &'static str, option: &'static str) -> Result<Option<Duration>, Error> {
    match var(name) {
        None => Ok(None),
        Some(raw) => parse_secs(&raw).map(Some).map_err(|_| Error::Config {
            option,
            rule: format!("must be a non-negative number of seconds; {name}=`{raw}`"),
        }),
    }
}

/// `redis+sentinel://<REDIS_SENTINELS>/<REDIS_SENTINEL_MASTER>` when
/// `REDIS_SENTINELS` is set (`rediss+sentinel://` with
/// `REDIS_SENTINEL_TLS=true`).
fn sentinel_url_from_env() -> Result<Option<String>, Error> {
    let Some(sentinels) = var("REDIS_SENTINELS") else {
        if var("REDIS_SENTINEL_MASTER").is_some() {
            return Err(Error::Config {
                option: "redis_url",
                rule: "needs REDIS_SENTINELS (e.g. `s1:26379,s2:26379`) with REDIS_SENTINEL_MASTER"
                    .to_owned(),
            });
        }
        return Ok(None);
    };
    if let Some(url) = var("REDIS_URL") {
        return Err(Error::Config {
            option: "redis_url",
            rule: format!(
                "is set twice: REDIS_URL=`{}` and REDIS_SENTINELS=`{sentinels}`; set one of them",
                crate::broker::mask_password(&url)
            ),
        });
    }
    let master = var("REDIS_SENTINEL_MASTER").ok_or_else(|| Error::Config {
        option: "redis_url",
        rule: format!(
            "needs REDIS_SENTINEL_MASTER (the master name the sentinels monitor) with REDIS_SENTINELS=`{sentinels}`"
        ),
    })?;
    let tls: bool =
        parse_env("REDIS_SENTINEL_TLS", "redis_url", "`true` or `false`")?.unwrap_or(false);
    let scheme = if tls {
        "rediss+sentinel"
    } else {
        "redis+sentinel"
    };
    Ok(Some(format!(
        "{scheme}://{}/{}",
        sentinels.trim(),
        master.trim()
    )))
}

/// `redis+cluster://<REDIS_CLUSTER_NODES>/` when `REDIS_CLUSTER_NODES` is
/// set (comma-separated `host:port`).
fn cluster_url_from_env() -> Result<Option<String>, Error> {
    let Some(nodes) = var("REDIS_CLUSTER_NODES") else {
        return Ok(None);
    };
    for other in ["REDIS_URL", "REDIS_SENTINELS"] {
        if let Some(value) = var(other) {
            return Err(Error::Config {
                option: "redis_url",
                rule: format!(
                    "is set twice: {other}=`{}` and REDIS_CLUSTER_NODES=`{nodes}`; set one of them",
                    crate::broker::mask_password(&value)
                ),
            });
        }
    }
    Ok(Some(format!("redis+cluster://{}/", nodes.trim())))
}

fn parse_secs(raw: &str) -> Result<Duration, ()> {
    let secs: f64 = raw.trim().parse().map_err(|_| ())?;
    Duration::try_from_secs_f64(secs).map_err(|_| ())
}

impl Config {
    /// Defaults overridden by the environment: `REDIS_URL` (or
    /// `REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`, with
    /// `REDIS_SENTINEL_TLS`, or `REDIS_CLUSTER_NODES`), `REDIS_DB`, `REDIS_USERNAME`, `REDIS_PASSWORD`,
    /// `REDIS_SENTINEL_USERNAME`, `REDIS_SENTINEL_PASSWORD`, `REDIS_TLS_CA_FILE`,
    /// `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`, `REDIS_TLS_INSECURE`
    /// and one `MQ_<OPTION>` per option
    /// (durations in seconds, `MQ_RETRY_DELAYS` comma-separated).
    pub fn from_env() -> Result<Config, Error> {
        let mut c = Config::default();
        if let Some(v) = var("REDIS_URL") {
            c.redis_url = v;
        }
        if let Some(url) = sentinel_url_from_env()? {
            c.redis_url = url;
        }
        if let Some(url) = cluster_url_from_env()? {
            c.redis_url = url;
        }
        c.sentinel_username = var("REDIS_SENTINEL_USERNAME").or(c.sentinel_username);
        c.sentinel_password = var("REDIS_SENTINEL_PASSWORD").or(c.sentinel_password);
        c.redis_db = parse_env("REDIS_DB", "redis_db", "a database number")?.or(c.redis_db);
        c.redis_username = var("REDIS_USERNAME").or(c.redis_username);
        c.redis_password = var("REDIS_PASSWORD").or(c.redis_password);
        c.tls_ca_file = var("REDIS_TLS_CA_FILE")
            .map(PathBuf::from)
            .or(c.tls_ca_file);
        c.tls_cert_file = var("REDIS_TLS_CERT_FILE")
            .map(PathBuf::from)
            .or(c.tls_cert_file);
        c.tls_key_file = var("REDIS_TLS_KEY_FILE")
            .map(PathBuf::from)
            .or(c.tls_key_file);
        if let Some(v) = parse_env("REDIS_TLS_INSECURE", "tls_insecure", "`true` or `false`")? {
            c.tls_insecure = v;
        }
        if let Some(v) = var("MQ_QUEUE_PREFIX") {
            c.queue_prefix = v;
        }
        macro_rules! num {
            ($field:ident, $env:literal, $what:literal) => {
                if let Some(v) = parse_env($env, stringify!($field), $what)? {
                    c.$field = v;
                }
            };
        }
        macro_rules! secs {
            ($field:ident, $env:literal) => {
                if let Some(v) = secs_env($env, stringify!($field))? {
                    c.$field = v;
                }
            };
        }
        num!(
            connection_pool_size,
            "MQ_CONNECTION_POOL_SIZE",
            "a positive integer"
        );
        num!(max_workers, "MQ_MAX_WORKERS", "a positive integer");
        num!(task_queue_size, "MQ_TASK_QUEUE_SIZE", "a positive integer");
        num!(max_retries, "MQ_MAX_RETRIES", "a non-negative integer");
        num!(
            enable_dead_letter,
            "MQ_ENABLE_DEAD_LETTER",
            "`true` or `false`"
        );
        num!(keep_cancelled, "MQ_KEEP_CANCELLED", "`true` or `false`");
        num!(index_jobs, "MQ_INDEX_JOBS", "`true` or `false`");
        num!(batch_size, "MQ_BATCH_SIZE", "a positive integer");
        num!(allow_eviction, "MQ_ALLOW_EVICTION", "`true` or `false`");
        num!(
            max_payload_bytes,
            "MQ_MAX_PAYLOAD_BYTES",
            "a positive integer"
        );
        num!(
            parse_error_max_entries,
            "MQ_PARSE_ERROR_MAX_ENTRIES",
            "a positive integer"
        );
        num!(
            dead_letter_max_entries,
            "MQ_DEAD_LETTER_MAX_ENTRIES",
            "a positive integer"
        );
        secs!(message_ttl, "MQ_MESSAGE_TTL");
        secs!(processing_timeout, "MQ_PROCESSING_TIMEOUT");
        secs!(lease, "MQ_LEASE");
        secs!(monitor_interval, "MQ_MONITOR_INTERVAL");
        secs!(expired_check_interval, "MQ_EXPIRED_CHECK_INTERVAL");
        secs!(
            processing_monitor_interval,
            "MQ_PROCESSING_MONITOR_INTERVAL"
        );
        secs!(parse_error_max_age, "MQ_PARSE_ERROR_MAX_AGE");
        secs!(dead_letter_max_age, "MQ_DEAD_LETTER_MAX_AGE");
        secs!(shutdown_grace, "MQ_SHUTDOWN_GRACE");
        secs!(heartbeat_interval, "MQ_HEARTBEAT_INTERVAL");
        num!(
            min_replicas_acked,
            "MQ_WAIT_REPLICAS",
            "a non-negative integer"
        );
        secs!(replicas_ack_timeout, "MQ_WAIT_TIMEOUT");
        if let Some(raw) = var("MQ_RETRY_DELAYS") {
            c.retry_delays = raw
                .split(',')
                .map(parse_secs)
                .collect::<Result<_, _>>()
                .map_err(|_| Error::Config {
                    option: "retry_delays",
                    rule: format!(
                        "must be comma-separated non-negative seconds, e.g. `60,300,1800`; MQ_RETRY_DELAYS=`{raw}`"
                    ),
                })?;
        }
        Ok(c)
    }

    /// Checks every rule; the error names the option and the rule.
    pub fn validate(&self) -> Result<(), Error> {
        fn rule(ok: bool, option: &'static str, rule: String) -> Result<(), Error> {
            if ok {
                Ok(())
            } else {
                Err(Error::Config { option, rule })
            }
        }
        let sentinel = crate::broker::is_sentinel_url(&self.redis_url);
        let cluster = crate::broker::is_cluster_url(&self.redis_url);
        rule(
            self.redis_url.starts_with("redis://")
                || self.redis_url.starts_with("rediss://")
                || self.redis_url.starts_with("redis+unix://")
                || self.redis_url.starts_with("unix://")
                || sentinel
                || cluster,
            "redis_url",
            format!(
                "must start with `redis://`, `rediss://`, `redis+cluster://` or `redis+sentinel://`, e.g. `redis://127.0.0.1:6379/0`; got `{}`",
                crate::broker::mask_password(&self.redis_url)
            ),
        )?;
        if sentinel {
            crate::broker::parse_sentinel_url(&self.redis_url)?;
        }
        if cluster {
            crate::broker::parse_cluster_url(&self.redis_url)?;
        }
        for (option, set) in [
            ("sentinel_username", self.sentinel_username.is_some()),
            ("sentinel_password", self.sentinel_password.is_some()),
        ] {
            rule(
                sentinel || !set,
                option,
                format!(
                    "applies to Sentinel deployments only, but redis_url is no `redis+sentinel://` URL: unset it, or use the master's `redis_password`; got `{}`",
                    crate::broker::mask_password(&self.redis_url)
                ),
            )?;
        }
        rule(
            self.min_replicas_acked == 0
                || (Duration::from_millis(1)..=Duration::from_secs(5))
                    .contains(&self.replicas_ack_timeout),
            "replicas_ack_timeout",
            format!(
                "must be from 1 ms to 5 s when min_replicas_acked is set (MQ_WAIT_TIMEOUT; a longer wait would run into the 10 s response timeout); got {:?}",
                self.replicas_ack_timeout
            ),
        )?;
        let tls = self.redis_url.starts_with("rediss://")
            || self.redis_url.starts_with("rediss+sentinel://");
        for (option, set) in [
            ("tls_ca_file", self.tls_ca_file.is_some()),
            ("tls_cert_file", self.tls_cert_file.is_some()),
            ("tls_key_file", self.tls_key_file.is_some()),
            ("tls_insecure", self.tls_insecure),
        ] {
            rule(
                tls || !set,
                option,
                format!(
                    "applies to TLS connections only, but redis_url does not use TLS: use `rediss://...` or unset it; got `{}`",
                    crate::broker::mask_password(&self.redis_url)
                ),
            )?;
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), None) => rule(
                false,
                "tls_key_file",
                format!(
                    "must be set with tls_cert_file (REDIS_TLS_KEY_FILE: the client certificate's private key); tls_cert_file is `{}`",
                    cert.display()
                ),
            )?,
            (None, Some(key)) => rule(
                false,
                "tls_cert_file",
                format!(
                    "must be set with tls_key_file (REDIS_TLS_CERT_FILE: the client certificate for the key); tls_key_file is `{}`",
                    key.display()
                ),
            )?,
            _ => {}
        }
        rule(
            self.redis_db.is_none_or(|db| db >= 0),
            "redis_db",
            format!("must be 0 or more; got {:?}", self.redis_db),
        )?;
        rule(
            !self.queue_prefix.contains(['{', '}', ' ', '\t', '\n']),
            "queue_prefix",
            format!(
                "must not contain braces or whitespace (they break the key layout); got `{}`",
                self.queue_prefix
            ),
        )?;
        for (option, value) in [
            ("connection_pool_size", self.connection_pool_size as usize),
            ("max_workers", self.max_workers),
            ("task_queue_size", self.task_queue_size),
            ("batch_size", self.batch_size),
            ("max_payload_bytes", self.max_payload_bytes),
            ("parse_error_max_entries", self.parse_error_max_entries),
            ("dead_letter_max_entries", self.dead_letter_max_entries),
        ] {
            rule(value > 0, option, "must be at least 1; got 0".to_owned())?;
        }
        rule(
            self.batch_size <= 1000,
            "batch_size",
            format!("must be at most 1000; got {}", self.batch_size),
        )?;
        rule(
            self.max_retries <= 255,
            "max_retries",
            format!("must be at most 255; got {}", self.max_retries),
        )?;
        rule(
            !self.retry_delays.is_empty(),
            "retry_delays",
            "must list at least one delay (e.g. `60,300,1800`); the list is empty".to_owned(),
        )?;
        for (option, value) in [
            ("processing_timeout", self.processing_timeout),
            ("lease", self.lease),
            ("monitor_interval", self.monitor_interval),
            ("expired_check_interval", self.expired_check_interval),
            (
                "processing_monitor_interval",
                self.processing_monitor_interval,
            ),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            rule(
                value >= Duration::from_millis(10),
                option,
                format!("must be at least 10 ms; got {value:?}"),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_seed() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.max_workers, 5);
        assert_eq!(c.task_queue_size, 8);
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.message_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn invalid_values_name_the_option() {
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    max_workers: 0,
                    ..Config::default()
                },
                "max_workers",
            ),
            (
                Config {
                    retry_delays: vec![],
                    ..Config::default()
                },
                "retry_delays",
            ),
            (
                Config {
                    redis_url: "http://x".into(),
                    ..Config::default()
                },
                "redis_url",
            ),
            (
                Config {
                    queue_prefix: "a{b".into(),
                    ..Config::default()
                },
                "queue_prefix",
            ),
            (
                Config {
                    lease: Duration::ZERO,
                    ..Config::default()
                },
                "lease",
            ),
        ];
        for (config, option) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(option), "{err} should name {option}");
        }
    }

    #[test]
    fn debug_output_masks_the_password() {
        let secret = "p/a#s?s@w:rd";
        let config = Config {
            redis_url: format!("redis://user:{secret}@host:6379/0"),
            redis_password: Some(secret.to_owned()),
            redis_username: Some("user".to_owned()),
            ..Config::default()
        };
        for text in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("redis://user:***@host:6379/0"), "{text}");
            assert!(text.contains("\"***\""), "{text}");
            assert!(text.contains("max_workers"), "{text}");
        }
        let none = format!("{:?}", Config::default());
        assert!(none.contains("redis_password: None"), "{none}");
    }

    #[test]
    fn tls_options_need_a_tls_url_and_come_in_pairs() {
        let tls = |f: fn(&mut Config)| {
            let mut c = Config {
                redis_url: "rediss://host:6380".to_owned(),
                ..Config::default()
            };
            f(&mut c);
            c.validate().err().map(|e| e.to_string())
        };
        assert_eq!(tls(|_| {}), None);
        assert_eq!(
            tls(|c| {
                c.tls_cert_file = Some("c.pem".into());
                c.tls_key_file = Some("k.pem".into());
                c.tls_ca_file = Some("ca.pem".into());
                c.tls_insecure = true;
            }),
            None
        );
        let err = tls(|c| c.tls_cert_file = Some("c.pem".into())).unwrap();
        assert!(
            err.contains("tls_key_file") && err.contains("c.pem"),
            "{err}"
        );
        let err = tls(|c| c.tls_key_file = Some("k.pem".into())).unwrap();
        assert!(
            err.contains("tls_cert_file") && err.contains("k.pem"),
            "{err}"
        );
        let err = tls(|c| {
            c.redis_url = "redis://:secret@host".to_owned();
            c.tls_insecure = true;
        })
        .unwrap();
        assert!(
            err.contains("tls_insecure") && err.contains("rediss://"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn seconds_parse_rejects_negative_values() {
        assert!(parse_secs("-5").is_err());
        assert!(parse_secs("abc").is_err());
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
    }
}
