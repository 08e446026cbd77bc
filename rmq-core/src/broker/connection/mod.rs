//! Connections: a bb8 pool of multiplexed connections that notices broken
//! ones, the checks made at connect time (URL, credentials, server
//! version) and the classification of errors, shared by every deployment.
//! A [`Deployment`], chosen by the URL, opens each connection: to the one
//! server (`standalone`), to the master the sentinels name (`sentinel`), or
//! to every primary of a cluster, routing by slot (`cluster`). A
//! [`Connection`] is either kind; the engine above does not tell them apart.

mod cluster;
mod sentinel;
mod standalone;
#[cfg(feature = "tls")]
mod tls;

pub(crate) use cluster::{is_cluster_url, parse as parse_cluster_url, Cluster};
pub(crate) use sentinel::{is_sentinel_url, parse as parse_sentinel_url};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind,
    Value,
};

use crate::{Config, Error};

/// Time allowed to open a TCP (or TLS) connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a reply to an ordinary command or script.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a caller waits for a pooled connection before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// `url` with its password replaced by `***`, for messages and logs.
///
/// The user information runs from after `scheme://` to the *last* `@`, so a
/// raw password holding `/`, `?`, `#`, `@` or `:` is masked whole; the user
/// name ends at the first `:`. A `pass=` query parameter (unix socket URLs)
/// is masked with all that follows it. When in doubt this masks too much rather than too little:
/// an `@` in the query or fragment counts as the end of the user
/// information.
pub fn mask_password(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let masked = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{head}{}:***{}", &userinfo[..colon], &rest[at..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    mask_query_password(&masked)
}

/// Masks a `pass=` / `password=` query parameter: everything after it, as
/// a raw password may hold `&` or `#`.
fn mask_query_password(url: &str) -> String {
    let Some(query_start) = url.find('?') else {
        return url.to_owned();
    };
    let mut offset = query_start;
    for param in url[query_start + 1..].split('&') {
        offset += 1; // the `?` or `&` before `param`
        if let Some((name, _)) = param.split_once('=') {
            if name == "pass" || name == "password" {
                return format!("{}{name}=***", &url[..offset]);
            }
        }
        offset += param.len();
    }
    url.to_owned()
}

/// Checks the `redis_version` line of `INFO server` output: rmq needs 7.0
/// or newer (script flags).
pub fn check_server_version(info: &str) -> Result<(), Error> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))
        .map(str::trim)
        .ok_or_else(|| Error::RedisVersion {
            found: "unknown (INFO server has no redis_version)".to_owned(),
        })?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (7, 0) => Ok(()),
        _ => Err(Error::RedisVersion {
            found: version.to_owned(),
        }),
    }
}

/// Whether `error` means the connection itself is unusable.
pub(super) fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// Whether `error` says the connection goes to a node that cannot serve
/// rmq now: a replica (`READONLY`, a demoted master), a replica cut off
/// from its master (`MASTERDOWN`), or a node loading its data set
/// (`LOADING`). The command did not run; the connection is replaced, and
/// the new one goes to the current master.
pub(super) fn is_wrong_node(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading
        )
    ) || matches!(error.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// How connections are opened: chosen by the URL's scheme.
#[derive(Clone)]
pub(super) enum Deployment {
    /// `redis://`, `rediss://`, unix sockets: one server.
    Standalone(Arc<standalone::Standalone>),
    /// `redis+sentinel://`, `rediss+sentinel://`: the master the sentinels
    /// name, followed across failovers.
    Sentinel(Arc<sentinel::Sentinel>),
    /// `redis+cluster://`: every primary of a cluster, by slot.
    Cluster(Arc<cluster::Cluster>),
}

/// A multiplexed connection to one server, or a cluster connection that
/// routes each command (and each one-slot pipeline) to the node owning its
/// slot.
#[derive(Clone)]
pub(crate) enum Connection {
    /// Standalone or Sentinel: one server.
    Single(MultiplexedConnection),
    /// Redis Cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    #[inline]
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    #[inline]
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Deployment {
    /// The deployment for `config` (no I/O; a Sentinel deployment starts
    /// following `+switch-master` on the current runtime).
    pub(super) fn new(config: &Config) -> Result<Deployment, Error> {
        if is_cluster_url(&config.redis_url) {
            Ok(Deployment::Cluster(Arc::new(cluster::Cluster::new(
                config,
            )?)))
        } else if is_sentinel_url(&config.redis_url) {
            Ok(Deployment::Sentinel(Arc::new(sentinel::Sentinel::new(
                config,
            )?)))
        } else {
            Ok(Deployment::Standalone(Arc::new(
                standalone::Standalone::new(config)?,
            )))
        }
    }

    /// Opens a connection to the node that serves rmq now (to every
    /// primary, for a cluster).
    pub(super) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<Connection, RedisError> {
        match self {
            Deployment::Standalone(standalone) => {
                standalone.connect(config).await.map(Connection::Single)
            }
            Deployment::Sentinel(sentinel) => {
                sentinel.connect(config).await.map(Connection::Single)
            }
            Deployment::Cluster(cluster) => cluster.connect().await.map(Connection::Cluster),
        }
    }

    /// The cluster, for a `redis+cluster://` deployment.
    pub(super) fn cluster(&self) -> Option<&cluster::Cluster> {
        match self {
            Deployment::Cluster(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// Changes when connections made before must no longer be used (a
    /// master switch); always 0 for a standalone server.
    pub(super) fn generation(&self) -> u64 {
        match self {
            Deployment::Standalone(_) | Deployment::Cluster(_) => 0,
            Deployment::Sentinel(sentinel) => sentinel.generation(),
        }
    }

    /// Resolves once the generation is no longer `generation` (never, for
    /// a standalone server).
    pub(super) async fn switched_since(&self, generation: u64) {
        match self {
            Deployment::Standalone(_) | Deployment::Cluster(_) => std::future::pending().await,
            Deployment::Sentinel(sentinel) => sentinel.switched_since(generation).await,
        }
    }
}

/// The ACL user a connection logs in as.
fn user_name(config: &Config) -> String {
    config
        .redis_username
        .clone()
        .or_else(|| {
            parse_sentinel_url(&config.redis_url)
                .ok()
                .and_then(|url| url.username)
        })
        .or_else(|| {
            cluster::parse(&config.redis_url)
                .ok()
                .and_then(|url| url.username)
        })
        .or_else(|| {
            redis::Client::open(config.redis_url.as_str())
                .ok()
                .and_then(|c| {
                    c.get_connection_info()
                        .redis_settings()
                        .username()
                        .map(str::to_owned)
                })
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// The error for a `NOPERM` reply: which user may not run which command,
/// and what to grant.
fn permission_error(config: &Config, url: String, error: &RedisError) -> Error {
    let text = error.to_string();
    let user = user_name(config);
    let grant = format!(
        "grant it what rmq needs, e.g. `ACL SETUSER {user} +@read +@write +@scripting +@blocking +@connection +info +time ~*`, \
         or connect as another user (REDIS_USERNAME / `redis_username`)"
    );
    let command = text
        .split_once("to run the '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(command, _)| command.replace('|', " "));
    let reason = match command {
        Some(command) => {
            format!("the ACL user `{user}` may not run `{command}` ({text}): {grant}")
        }
        None => format!("the ACL user `{user}` lacks a permission rmq needs ({text}): {grant}"),
    };
    Error::Permission { url, reason }
}

/// The permission error for an ACL denial (`NOPERM`) met after connecting,
/// or `None` when `error` is no denial.
pub(crate) fn denied(config: &Config, error: &Error) -> Option<Error> {
    match error {
        Error::Redis { source, .. }
            if source.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) =>
        {
            Some(permission_error(
                config,
                mask_password(&config.redis_url),
                source,
            ))
        }
        Error::Permission { url, reason } => Some(Error::Permission {
            url: url.clone(),
            reason: reason.clone(),
        }),
        _ => None,
    }
}

/// The error for a failure to load the scripts at connect time.
pub(super) fn script_load_error(config: &Config, error: RedisError) -> Error {
    if error.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) {
        permission_error(config, mask_password(&config.redis_url), &error)
    } else {
        Error::Redis {
            op: "loading scripts",
            source: error,
        }
    }
}

/// The error for a failure to open the first connection. Only an error that
/// may pass by itself (unreachable, refused, timed out, loading) becomes
/// [`Error::Connect`]; see [`Error::is_transient`].
pub(super) fn connect_error(config: &Config, error: &RedisError) -> Error {
    let url = mask_password(&config.redis_url);
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    #[cfg(feature = "tls")]
    if let Some(reason) = tls::problem(config, error) {
        return Error::Tls { url, reason };
    }
    let rejected = |reason: String| Error::Rejected {
        url: url.clone(),
        reason,
    };
    if error.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) {
        return permission_error(config, url, error);
    }
    if error.kind() == ErrorKind::AuthenticationFailed && text.contains("sentinel") {
        return rejected(text);
    }
    if error.kind() == ErrorKind::MasterNameNotFoundBySentinel {
        return rejected(text);
    }
    if error.kind() == ErrorKind::AuthenticationFailed
        || error.code() == Some("WRONGPASS")
        || lower.contains("invalid password")
        || lower.contains("invalid username-password")
    {
        return rejected(format!("the password was rejected ({text}); check REDIS_PASSWORD / `redis_password`, the password in REDIS_URL and REDIS_USERNAME"));
    }
    if error.code() == Some("NOAUTH") || lower.contains("noauth") {
        return rejected(format!(
            "Redis requires a password ({text}); set REDIS_PASSWORD or put it in REDIS_URL"
        ));
    }
    if error.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
        && lower.contains("db index")
    {
        return rejected(format!("the database was refused ({text}); check `redis_db` / REDIS_DB and the database in REDIS_URL"));
    }
    if !crate::error::is_transient(error) {
        return rejected(format!(
            "{text}; retrying cannot help: check REDIS_URL and the server's settings"
        ));
    }
    let reason = if error.is_connection_refusal() {
        format!("connection refused ({text}); is Redis running, and are the host and port in REDIS_URL right?")
    } else if error.is_timeout() {
        let tls_hint = if config.redis_url.starts_with("rediss://") {
            " is the port a TLS port (a plain port needs `redis://`)?"
        } else {
            ""
        };
        format!("no answer within {CONNECT_TIMEOUT:?} ({text}); is the host reachable (firewall, address)?{tls_hint}")
    } else if error.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading) {
        format!("Redis is loading its data set ({text}); it answers once loaded")
    } else if error.is_connection_dropped() && !config.redis_url.starts_with("rediss://") {
        format!("the server closed the connection ({text}); is Redis up, and is the port a plain one (a TLS port needs `rediss://`)?")
    } else {
        format!("{text}; check REDIS_URL and that Redis is up")
    };
    Error::Connect { url, reason }
}

/// A pooled connection: a multiplexed connection and the flag set when a
/// command on it (or on a clone of it) fails at the connection level.
pub(super) struct Conn {
    pub(super) inner: Connection,
    pub(super) broken: Arc<AtomicBool>,
    /// The deployment's generation when the connection was opened.
    generation: u64,
}

/// A connection checked out for one operation (the pool slot is already
/// released; many operations share one connection).
pub(super) struct Handle {
    pub(super) conn: Connection,
    broken: Arc<AtomicBool>,
}

impl Handle {
    /// Marks the connection broken if `result` failed at the connection
    /// level or came from a node that cannot serve (a replica, a loading
    /// node), so the pool replaces it.
    pub(super) fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result {
            if is_connection_error(e) || is_wrong_node(e) {
                self.broken.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

/// bb8 manager over a [`Deployment`]: no PING per checkout, and
/// connections that failed at the connection level, or were opened before
/// a master switch, are reported broken.
pub(super) struct Manager {
    deployment: Deployment,
    config: AsyncConnectionConfig,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Manager {
    pub(super) fn new(deployment: Deployment) -> Manager {
        Manager {
            deployment,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT)),
            last_error: Arc::default(),
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        // Read before connecting: a switch meanwhile retires the connection.
        let generation = self.deployment.generation();
        match self.deployment.connect(&self.config).await {
            Ok(inner) => Ok(Conn {
                inner,
                broken: Arc::default(),
                generation,
            }),
            Err(e) => {
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        redis::cmd("PING")
            .query_async::<()>(&mut conn.inner)
            .await
            .inspect_err(|e| {
                if is_connection_error(e) {
                    conn.broken.store(true, Ordering::Relaxed);
                }
            })
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken.load(Ordering::Relaxed) || conn.generation != self.deployment.generation()
    }
}

/// The pool and what it needs to explain its failures.
pub(super) struct Pool {
    pool: bb8::Pool<Manager>,
    deployment: Deployment,
    last_error: Arc<Mutex<Option<String>>>,
    url: String,
}

impl Pool {
    /// Builds the pool around `first`, an already checked connection.
    pub(super) fn new(manager: Manager, size: u32, first: Conn, url: String) -> Pool {
        let last_error = manager.last_error.clone();
        let deployment = manager.deployment.clone();
        let pool = bb8::Pool::builder()
            .max_size(size.max(1))
            .test_on_check_out(false)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .build_unchecked(manager);
        // Fails only without capacity, which a fresh pool has.
        let _ = pool.add(first);
        Pool {
            pool,
            deployment,
            last_error,
            url,
        }
    }

    /// A connection for one operation; broken connections met on the way
    /// are evicted.
    pub(super) async fn get(&self, op: &'static str) -> Result<Handle, Error> {
        let max = self.pool.state().connections as usize + 2;
        for _ in 0..max {
            let guard = self.pool.get().await.map_err(|e| self.pool_error(op, e))?;
            if guard.broken.load(Ordering::Relaxed)
                || guard.generation != self.deployment.generation()
            {
                // Dropping the guard hands it back; `has_broken` evicts it.
                continue;
            }
            return Ok(Handle {
                conn: guard.inner.clone(),
                broken: guard.broken.clone(),
            });
        }
        Err(Error::Pool {
            op,
            reason: "every pooled connection is broken; Redis may be restarting".to_owned(),
        })
    }

    fn pool_error(&self, op: &'static str, error: bb8::RunError<RedisError>) -> Error {
        match error {
            bb8::RunError::User(source) => Error::Redis { op, source },
            bb8::RunError::TimedOut => {
                let last = self.last_error.lock().ok().and_then(|mut last| last.take());
                Error::Pool {
                    op,
                    reason: match last {
                        Some(e) => format!(
                            "timed out after {CHECKOUT_TIMEOUT:?}; last connection attempt to {} failed: {e}",
                            self.url
                        ),
                        None => format!("timed out after {CHECKOUT_TIMEOUT:?}"),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_the_password() {
        assert_eq!(
            mask_password("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(
            mask_password("rediss://:s3cr%40t@host"),
            "rediss://:***@host"
        );
        assert_eq!(mask_password("redis://host:6379"), "redis://host:6379");
        assert_eq!(mask_password("redis://user@host"), "redis://user@host");
        assert_eq!(mask_password("not a url"), "not a url");
        assert_eq!(
            mask_password("redis://u:p@ss@host/1"),
            "redis://u:***@host/1"
        );
    }

    #[test]
    fn masks_passwords_holding_url_delimiters() {
        let raw = "p/a#s?s@w:rd";
        for (url, masked) in [
            (
                format!("redis://user:{raw}@host:6379/0"),
                "redis://user:***@host:6379/0",
            ),
            (format!("rediss://:{raw}@host"), "rediss://:***@host"),
            (
                format!("rediss://:{raw}@host:6380/2#insecure"),
                "rediss://:***@host:6380/2#insecure",
            ),
            (
                "redis://u:p%2F%23%3F%40%3A@host/1?protocol=resp3".to_owned(),
                "redis://u:***@host/1?protocol=resp3",
            ),
            (
                "redis://:%2F%23@127.0.0.1:1".to_owned(),
                "redis://:***@127.0.0.1:1",
            ),
            // No scheme: still masked.
            (format!(":{raw}@host:6379"), ":***@host:6379"),
            // A password in the query of a unix socket URL.
            (
                format!("redis+unix:///run/redis.sock?db=1&pass={raw}"),
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            (
                "redis+unix:///tmp/r.sock?user=u&pass=x%2Fy&db=2".to_owned(),
                "redis+unix:///tmp/r.sock?user=u&pass=***",
            ),
        ] {
            let got = mask_password(&url);
            assert_eq!(got, masked, "{url}");
            for secret in [raw, "p%2F%23%3F%40%3A", "%2F%23", "x%2Fy"] {
                assert!(!got.contains(secret), "{secret} leaked from {url}: {got}");
            }
        }
        // Nothing to mask.
        for url in [
            "redis://user@host:6379",
            "redis://host:6379/0",
            "rediss://host#insecure",
            "redis+unix:///tmp/r.sock?db=2",
            "",
        ] {
            assert_eq!(mask_password(url), url);
        }
    }

    #[test]
    fn version_check() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        for ok in ["7.0.0", "7.0.15", "7.4.1", "8.0.0", "10.1"] {
            check_server_version(&info(ok)).unwrap();
        }
        for old in ["6.2.14", "6.0.20", "5.0.7", "2.8.0", "garbage", ""] {
            let err = check_server_version(&info(old)).unwrap_err().to_string();
            assert!(err.contains("7.0 or newer"), "{err}");
            assert!(err.contains(old), "{err}");
        }
        let err = check_server_version("# Server\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown"), "{err}");
    }
}
