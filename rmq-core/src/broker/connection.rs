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

/// The `redis::Client` for `config`, with the database and credential
/// overrides and the TLS settings applied.
pub(super) fn client(config: &Config) -> Result<redis::Client, Error> {
    let masked = mask_password(&config.redis_url);
    let password_hint = if config.redis_url.contains('@') {
        " (a password in the URL must be percent-encoded: `/` as %2F, `#` as %23, `?` as %3F, `@` as %40, `:` as %3A; or set REDIS_PASSWORD instead)"
    } else {
        ""
    };
    let bad_url = |e: RedisError| {
        Error::Config {
        option: "redis_url",
        rule: format!(
            "is not a valid Redis URL ({e}); expected `redis://[user:password@]host:port[/db]`{}{password_hint}; got `{masked}`",
            if cfg!(feature = "tls") { " or `rediss://...`" } else { "" }
        ),
    }
    };
    let tls = config.redis_url.starts_with("rediss://");
    if tls && !cfg!(feature = "tls") {
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
    let info = info.set_redis_settings(redis);
    #[cfg(feature = "tls")]
    if tls {
        return tls::client(config, info, &masked);
    }
    redis::Client::open(info).map_err(bad_url)
}

/// TLS: the crypto provider, the certificate files and the insecure opt-in.
#[cfg(feature = "tls")]
mod tls {
    use std::path::Path;
    use std::sync::Once;

    use redis::{ClientTlsConfig, ConnectionAddr, ConnectionInfo, TlsCertificates};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use crate::{Config, Error};

    /// Installs rustls' *ring* provider as the process default, unless the
    /// application installed one already. rustls panics at the first TLS
    /// connection when no default is installed and more than one provider
    /// (or none) is compiled in.
    pub(super) fn install_crypto_provider() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                // An `Err` means another thread installed one meanwhile.
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
        });
    }

    pub(super) fn client(
        config: &Config,
        info: ConnectionInfo,
        masked: &str,
    ) -> Result<redis::Client, Error> {
        install_crypto_provider();
        let mut info = info;
        if let ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            tls_params,
        } = info.addr().clone()
        {
            let insecure = insecure || config.tls_insecure;
            if insecure {
                tracing::warn!(
                    url = %masked,
                    "TLS certificate checks are off (`tls_insecure` / REDIS_TLS_INSECURE or `#insecure` in the URL): \
                     the server is not authenticated, so anyone on the network path can read and change the traffic; \
                     use this for tests only, and `tls_ca_file` to trust a private CA"
                );
            }
            info = info.set_addr(ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            });
        }
        let root_cert = match &config.tls_ca_file {
            Some(path) => Some(read_certificates("tls_ca_file", "REDIS_TLS_CA_FILE", path)?),
            None => None,
        };
        let client_tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_certificates("tls_cert_file", "REDIS_TLS_CERT_FILE", cert)?,
                client_key: read_key(key)?,
            }),
            // `Config::validate` rejects one without the other.
            _ => None,
        };
        let built = if root_cert.is_none() && client_tls.is_none() {
            redis::Client::open(info)
        } else {
            redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls,
                    root_cert,
                },
            )
        };
        built.map_err(|e| Error::Config {
            option: "redis_url",
            rule: format!("cannot be used with the TLS settings ({e}); got `{masked}`"),
        })
    }

    fn read(option: &'static str, env: &str, path: &Path) -> Result<Vec<u8>, Error> {
        std::fs::read(path).map_err(|e| Error::Config {
            option,
            rule: format!(
                "must name a readable PEM file ({env}); cannot read `{}`: {e}",
                path.display()
            ),
        })
    }

    /// The bytes of a PEM file holding at least one certificate.
    fn read_certificates(option: &'static str, env: &str, path: &Path) -> Result<Vec<u8>, Error> {
        let pem = read(option, env, path)?;
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            cert.map_err(|e| Error::Config {
                option,
                rule: format!(
                    "must be a PEM file of certificates ({env}); `{}` does not parse: {e}",
                    path.display()
                ),
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(Error::Config {
                option,
                rule: format!(
                    "must be a PEM file of certificates ({env}); `{}` holds no `-----BEGIN CERTIFICATE-----` block",
                    path.display()
                ),
            });
        }
        Ok(pem)
    }

    /// The bytes of a PEM file holding a private key. Parse errors are not
    /// quoted: they could echo key material.
    fn read_key(path: &Path) -> Result<Vec<u8>, Error> {
        let pem = read("tls_key_file", "REDIS_TLS_KEY_FILE", path)?;
        if PrivateKeyDer::from_pem_slice(&pem).is_err() {
            return Err(Error::Config {
                option: "tls_key_file",
                rule: format!(
                    "must be a PEM file holding the client certificate's private key (PKCS#8, PKCS#1 or SEC1; REDIS_TLS_KEY_FILE); `{}` holds none",
                    path.display()
                ),
            });
        }
        Ok(pem)
    }

    /// What went wrong in the TLS layer, and what to change, if `error`
    /// comes from it.
    pub(super) fn problem(config: &Config, error: &redis::RedisError) -> Option<String> {
        use rustls::{AlertDescription as Alert, CertificateError as Cert};

        let tls_error = rustls_error(error)?;
        let text = tls_error.to_string();
        let ca = match &config.tls_ca_file {
            Some(path) => format!("the CA in tls_ca_file (`{}`)", path.display()),
            None => "the public web PKI roots (no tls_ca_file is set)".to_owned(),
        };
        let client_cert = config.tls_cert_file.is_some();
        Some(match tls_error {
            rustls::Error::InvalidCertificate(cert) => match cert {
                Cert::UnknownIssuer | Cert::BadSignature => format!(
                    "the server's certificate is not signed by a trusted CA ({text}): this client trusts {ca}; \
                     set tls_ca_file / REDIS_TLS_CA_FILE to the PEM of the CA that signed the server's certificate"
                ),
                Cert::NotValidForName | Cert::NotValidForNameContext { .. } => format!(
                    "the server's certificate is not valid for the host name in redis_url ({text}): \
                     connect by a name the certificate lists, or have the certificate issued for this name"
                ),
                Cert::Expired | Cert::ExpiredContext { .. } | Cert::NotValidYet | Cert::NotValidYetContext { .. } => format!(
                    "the server's certificate is outside its validity period ({text}): renew it, or check this machine's clock"
                ),
                _ => format!("the server's certificate was refused ({text}); check the server's certificate and tls_ca_file"),
            },
            rustls::Error::AlertReceived(Alert::CertificateRequired) => format!(
                "the server requires a client certificate (mutual TLS) ({text}): set tls_cert_file / REDIS_TLS_CERT_FILE and tls_key_file / REDIS_TLS_KEY_FILE"
            ),
            rustls::Error::AlertReceived(
                Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::UnsupportedCertificate
                | Alert::AccessDenied
                | Alert::HandshakeFailure,
            ) if client_cert => format!(
                "the server refused the client certificate ({text}): check that tls_cert_file is signed by a CA the server trusts (its tls-ca-cert-file) and is valid"
            ),
            rustls::Error::AlertReceived(_) if !client_cert => format!(
                "the server ended the TLS handshake ({text}); if it requires a client certificate (`tls-auth-clients yes`), set tls_cert_file and tls_key_file"
            ),
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => format!(
                "the server did not answer in TLS ({text}): is the port in redis_url a TLS port? a plain port needs `redis://`"
            ),
            _ => format!("the TLS handshake failed ({text}); check the server's TLS settings and tls_* options"),
        })
    }

    /// The rustls error inside a redis error: directly, or in the I/O error
    /// a TLS stream reports.
    fn rustls_error(error: &redis::RedisError) -> Option<&rustls::Error> {
        use std::error::Error as StdError;
        use std::sync::Arc;

        let source = StdError::source(error)?;
        // redis keeps its inner error in an `Arc`.
        let inner: &(dyn StdError + 'static) =
            match source.downcast_ref::<Arc<dyn StdError + Send + Sync>>() {
                Some(arc) => &**arc,
                None => source,
            };
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        inner
            .downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<rustls::Error>()
    }
}

/// The ACL user a connection logs in as.
fn user_name(config: &Config) -> String {
    config
        .redis_username
        .clone()
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
