//! Connections: a bb8 pool of multiplexed connections that notices broken
//! ones, the dedicated connection of blocking waits, and the checks made at
//! connect time (URL, credentials, server version).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind};

use crate::{Config, Error};

/// Time allowed to open a TCP (or TLS) connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a reply to an ordinary command or script.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a caller waits for a pooled connection before giving up.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// `url` with its password replaced by `***`, for messages.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
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

/// The `redis::Client` for `config`, with the database and credential
/// overrides applied.
pub(super) fn client(config: &Config) -> Result<redis::Client, Error> {
    let masked = mask_password(&config.redis_url);
    let bad_url = |e: RedisError| {
        Error::Config {
        option: "redis_url",
        rule: format!(
            "is not a valid Redis URL ({e}); expected `redis://[user:password@]host:port[/db]`{}; got `{masked}`",
            if cfg!(feature = "tls") { " or `rediss://...`" } else { "" }
        ),
    }
    };
    if config.redis_url.starts_with("rediss://") && !cfg!(feature = "tls") {
        return Err(Error::Config {
            option: "redis_url",
            rule: format!(
                "uses TLS (`rediss://`), but this build of rmq has no TLS support: enable the `tls` feature; got `{masked}`"
            ),
        });
    }
    let client = redis::Client::open(config.redis_url.as_str()).map_err(bad_url)?;
    let info = client.get_connection_info().clone();
    let mut redis = info.redis_settings().clone();
    if let Some(db) = config.redis_db {
        redis = redis.set_db(db);
    }
    if let Some(user) = &config.redis_username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &config.redis_password {
        redis = redis.set_password(password);
    }
    redis::Client::open(info.set_redis_settings(redis)).map_err(bad_url)
}

/// The error for a failure to open the first connection.
pub(super) fn connect_error(config: &Config, error: &RedisError) -> Error {
    let url = mask_password(&config.redis_url);
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    let rejected = |reason: String| Error::Rejected {
        url: url.clone(),
        reason,
    };
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
    let reason = if error.is_connection_refusal() {
        format!("connection refused ({text}); is Redis running, and are the host and port in REDIS_URL right?")
    } else if error.is_timeout() {
        format!("no answer within {CONNECT_TIMEOUT:?} ({text}); is the host reachable (firewall, address)?")
    } else {
        format!("{text}; check REDIS_URL and that Redis is up")
    };
    Error::Connect { url, reason }
}

/// A pooled connection: a multiplexed connection and the flag set when a
/// command on it (or on a clone of it) fails at the connection level.
pub(super) struct Conn {
    pub(super) inner: MultiplexedConnection,
    pub(super) broken: Arc<AtomicBool>,
}

/// A connection checked out for one operation (the pool slot is already
/// released; many operations share one connection).
pub(super) struct Handle {
    pub(super) conn: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

impl Handle {
    /// Marks the connection broken if `result` failed at the connection
    /// level, so the pool replaces it.
    pub(super) fn check<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result {
            if is_connection_error(e) {
                self.broken.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

/// bb8 manager over `redis::Client`: no PING per checkout, and connections
/// that failed at the connection level are reported broken.
pub(super) struct Manager {
    client: redis::Client,
    config: AsyncConnectionConfig,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Manager {
    pub(super) fn new(client: redis::Client) -> Manager {
        Manager {
            client,
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
        match self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
        {
            Ok(inner) => Ok(Conn {
                inner,
                broken: Arc::default(),
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
        conn.broken.load(Ordering::Relaxed)
    }
}

/// The pool and what it needs to explain its failures.
pub(super) struct Pool {
    pool: bb8::Pool<Manager>,
    last_error: Arc<Mutex<Option<String>>>,
    url: String,
}

impl Pool {
    /// Builds the pool around `first`, an already checked connection.
    pub(super) fn new(manager: Manager, size: u32, first: Conn, url: String) -> Pool {
        let last_error = manager.last_error.clone();
        let pool = bb8::Pool::builder()
            .max_size(size.max(1))
            .test_on_check_out(false)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .build_unchecked(manager);
        // Fails only without capacity, which a fresh pool has.
        let _ = pool.add(first);
        Pool {
            pool,
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
            if guard.broken.load(Ordering::Relaxed) {
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
