//! Redis Sentinel: the master is found through the sentinels, every new
//! connection goes to the current master (checked with `ROLE`), and a
//! `+switch-master` announced by any sentinel retires every connection made
//! before it at once.
//!
//! URL grammar (the credentials are the master's, as in `redis://`; the
//! sentinels' come from `sentinel_username` / `sentinel_password`):
//!
//! ```text
//! redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master_name[/db]
//! rediss+sentinel://...[#insecure]      TLS to the sentinels and to the master
//! ```
//!
//! The port defaults to 26379.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisError, RedisResult,
};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{mask_password, CONNECT_TIMEOUT};
use crate::{Config, Error};

/// Default port of a sentinel.
const SENTINEL_PORT: u16 = 26379;
/// Time allowed to connect to one sentinel and for its answer: a sentinel
/// that is slower is skipped for the next one.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest pause between attempts to subscribe to a sentinel again.
const MAX_RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(2);

/// Whether `url` selects the Sentinel deployment.
pub(crate) fn is_sentinel_url(url: &str) -> bool {
    url.starts_with("redis+sentinel://") || url.starts_with("rediss+sentinel://")
}

/// A parsed `redis+sentinel://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    /// TLS to the sentinels and the master (`rediss+sentinel://`).
    pub(crate) tls: bool,
    /// `#insecure`: no certificate checks.
    pub(crate) insecure: bool,
    /// Sentinel addresses, in the order given.
    pub(crate) sentinels: Vec<(String, u16)>,
    /// The master name the sentinels monitor.
    pub(crate) master: String,
    /// The master's ACL user.
    pub(crate) username: Option<String>,
    /// The master's password.
    pub(crate) password: Option<String>,
    /// The database on the master.
    pub(crate) db: Option<i64>,
}

pub(super) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a `redis+sentinel://` URL; the error says what is wrong and shows
/// the URL with its password masked.
pub(crate) fn parse(url: &str) -> Result<SentinelUrl, Error> {
    let masked = mask_password(url);
    let bad = |what: &str| {
        Error::Config {
        option: "redis_url",
        rule: format!(
            "is not a valid Sentinel URL ({what}); expected `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master_name[/db]` \
             (`rediss+sentinel://` for TLS; a password must be percent-encoded); got `{masked}`"
        ),
    }
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
        (true, rest)
    } else {
        return Err(bad(
            "the scheme must be `redis+sentinel` or `rediss+sentinel`",
        ));
    };
    let (rest, insecure) = match rest.split_once('#') {
        Some((rest, "insecure")) if tls => (rest, true),
        Some(_) => return Err(bad("the only fragment allowed is `#insecure`, with TLS")),
        None => (rest, false),
    };
    if rest.contains('?') {
        return Err(bad("query parameters are not supported"));
    }
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (info, None),
            };
            let user =
                percent_decode(user).ok_or_else(|| bad("bad percent-encoding in the user name"))?;
            let pass = pass
                .map(|p| {
                    percent_decode(p).ok_or_else(|| bad("bad percent-encoding in the password"))
                })
                .transpose()?;
            (
                (!user.is_empty()).then_some(user),
                pass.filter(|p| !p.is_empty()),
            )
        }
    };
    let (hosts, path) = rest
        .split_once('/')
        .ok_or_else(|| bad("the master name is missing: add `/master_name` after the sentinels"))?;
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err(bad("a sentinel address is empty"));
        }
        let (name, port) = if let Some(v6) = host.strip_prefix('[') {
            let (name, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address lacks its `]`"))?;
            match after.strip_prefix(':') {
                Some(port) => (name, Some(port)),
                None if after.is_empty() => (name, None),
                None => return Err(bad("text after an IPv6 address")),
            }
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            }
        };
        if name.is_empty() {
            return Err(bad("a sentinel address has no host"));
        }
        let port = match port {
            None => SENTINEL_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&format!("`{port}` is not a port")))?,
        };
        sentinels.push((name.to_owned(), port));
    }
    let (master, db) = match path.split_once('/') {
        Some((master, db)) if !db.is_empty() => (
            master,
            Some(db.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| {
                bad(&format!(
                    "`{db}` after the master name is not a database number"
                ))
            })?),
        ),
        Some((master, _)) => (master, None),
        None => (path, None),
    };
    if master.is_empty() {
        return Err(bad("the master name is empty"));
    }
    let master =
        percent_decode(master).ok_or_else(|| bad("bad percent-encoding in the master name"))?;
    Ok(SentinelUrl {
        tls,
        insecure,
        sentinels,
        master,
        username,
        password,
        db,
    })
}

/// One sentinel: its address (for messages) and a client for it.
struct Node {
    label: String,
    client: redis::Client,
}

/// What the connection layer and the watchers share.
struct Shared {
    master_name: String,
    sentinels: Vec<Node>,
    /// The master's connection settings, with a placeholder address.
    template: ConnectionInfo,
    config: Config,
    tls: bool,
    insecure: bool,
    /// Bumped at every master switch: connections made before are retired.
    generation: AtomicU64,
    switched: Notify,
    /// The last `+switch-master` acted on (every sentinel announces it).
    last_switch: Mutex<String>,
    /// The master of the last successful discovery, and a client for it.
    master: Mutex<Option<((String, u16), redis::Client)>>,
    /// The sentinel that answered last: asked first next time.
    preferred: AtomicUsize,
}

/// The Sentinel deployment. Dropping the last clone stops its watchers.
pub(crate) struct Sentinel {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl Sentinel {
    /// Parses the URL and prepares the clients; no I/O. Watchers of
    /// `+switch-master` start on the current Tokio runtime, if any.
    pub(crate) fn new(config: &Config) -> Result<Sentinel, Error> {
        let url = parse(&config.redis_url)?;
        if url.tls && !cfg!(feature = "tls") {
            return Err(Error::Config {
                option: "redis_url",
                rule: format!(
                    "uses TLS (`rediss+sentinel://`), but this build of rmq has no TLS support: enable the `tls` feature; got `{}`",
                    mask_password(&config.redis_url)
                ),
            });
        }
        let mut template =
            "redis://127.0.0.1:1"
                .into_connection_info()
                .map_err(|e| Error::Config {
                    option: "redis_url",
                    rule: format!("cannot be used ({e})"),
                })?;
        let mut redis = template.redis_settings().clone();
        if let Some(user) = config.redis_username.as_ref().or(url.username.as_ref()) {
            redis = redis.set_username(user);
        }
        if let Some(password) = config.redis_password.as_ref().or(url.password.as_ref()) {
            redis = redis.set_password(password);
        }
        if let Some(db) = config.redis_db.or(url.db) {
            redis = redis.set_db(db);
        }
        template = template.set_redis_settings(redis);
        let mut sentinel_settings = redis::RedisConnectionInfo::default();
        if let Some(user) = &config.sentinel_username {
            sentinel_settings = sentinel_settings.set_username(user);
        }
        if let Some(password) = &config.sentinel_password {
            sentinel_settings = sentinel_settings.set_password(password);
        }
        let mut sentinels = Vec::with_capacity(url.sentinels.len());
        for (host, port) in &url.sentinels {
            let info = template
                .clone()
                .set_redis_settings(sentinel_settings.clone())
                .set_addr(addr(url.tls, url.insecure, host, *port));
            sentinels.push(Node {
                label: format!("{host}:{port}"),
                client: open(config, url.tls, info)?,
            });
        }
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            master_name: url.master,
            sentinels,
            template,
            config: config.clone(),
            tls: url.tls,
            insecure: url.insecure,
            generation: AtomicU64::new(0),
            switched: Notify::new(),
            last_switch: Mutex::default(),
            master: Mutex::default(),
            preferred: AtomicUsize::new(0),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            for index in 0..shared.sentinels.len() {
                runtime.spawn(watch(shared.clone(), index, stop.clone()));
            }
        }
        Ok(Sentinel {
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// The number of master switches seen so far.
    pub(crate) fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Resolves once the generation is no longer `generation`.
    pub(crate) async fn switched_since(&self, generation: u64) {
        loop {
            let notified = self.shared.switched.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.generation() != generation {
                return;
            }
            notified.await;
        }
    }

    /// A connection to the current master: asks the sentinels in turn,
    /// connects to the address the first one gives, and checks with `ROLE`
    /// that the node is a master.
    pub(crate) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        let shared = &self.shared;
        let count = shared.sentinels.len();
        let first = shared.preferred.load(Ordering::Relaxed) % count.max(1);
        let mut failures = Vec::new();
        let mut unknown = 0;
        for step in 0..count {
            let index = (first + step) % count;
            let node = &shared.sentinels[index];
            let addr = match ask(node, &shared.master_name).await {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    unknown += 1;
                    failures.push(format!(
                        "{}: knows no master named `{}`",
                        node.label, shared.master_name
                    ));
                    continue;
                }
                Err(e) if is_auth_error(&e) => {
                    return Err(RedisError::from((
                        ErrorKind::AuthenticationFailed,
                        "a sentinel refused the credentials",
                        format!(
                            "sentinel {}: {e}; check sentinel_username / sentinel_password (REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD)",
                            node.label
                        ),
                    )))
                }
                Err(e) => {
                    failures.push(format!("{}: {e}", node.label));
                    continue;
                }
            };
            match self.connect_master(&addr, config).await {
                Ok(conn) => {
                    shared.preferred.store(index, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(e) if !crate::error::is_transient(&e) => return Err(e),
                Err(e) => failures.push(format!(
                    "{} named master {}:{}: {e}",
                    node.label, addr.0, addr.1
                )),
            }
        }
        if unknown == count {
            return Err(RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "no sentinel knows the master",
                format!(
                    "{}; check the master name in redis_url (the name in `sentinel monitor <name> ...`)",
                    failures.join("; ")
                ),
            )));
        }
        Err(RedisError::from((
            ErrorKind::Io,
            "no sentinel gave a reachable master",
            format!(
                "{}; are the sentinels up, and are their addresses in redis_url right?",
                failures.join("; ")
            ),
        )))
    }

    async fn connect_master(
        &self,
        addr: &(String, u16),
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        let shared = &self.shared;
        let client = {
            let cached = shared.master.lock().ok().and_then(|master| {
                master
                    .as_ref()
                    .filter(|(known, _)| known == addr)
                    .map(|(_, client)| client.clone())
            });
            match cached {
                Some(client) => client,
                None => {
                    let info = shared.template.clone().set_addr(addr_of(shared, addr));
                    let client = open(&shared.config, shared.tls, info).map_err(|e| {
                        RedisError::from((
                            ErrorKind::InvalidClientConfig,
                            "cannot connect to the master",
                            e.to_string(),
                        ))
                    })?;
                    if let Ok(mut master) = shared.master.lock() {
                        *master = Some((addr.clone(), client.clone()));
                    }
                    client
                }
            }
        };
        let mut conn = client
            .get_multiplexed_async_connection_with_config(config)
            .await?;
        let role = tokio::time::timeout(
            CONNECT_TIMEOUT,
            redis::cmd("ROLE").query_async::<Vec<redis::Value>>(&mut conn),
        )
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "no answer to ROLE")))??;
        let role: Option<String> = role
            .first()
            .and_then(|v| redis::FromRedisValue::from_redis_value_ref(v).ok());
        if role.as_deref() != Some("master") {
            return Err(RedisError::from((
                ErrorKind::Io,
                "not a master",
                format!(
                    "ROLE says `{}` (a failover may be under way)",
                    role.unwrap_or_default()
                ),
            )));
        }
        Ok(conn)
    }
}

fn addr(tls: bool, insecure: bool, host: &str, port: u16) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    }
}

fn addr_of(shared: &Shared, (host, port): &(String, u16)) -> ConnectionAddr {
    addr(shared.tls, shared.insecure, host, *port)
}

/// A client for `info`, with the TLS files of `config` when `tls`.
fn open(config: &Config, tls: bool, info: ConnectionInfo) -> Result<redis::Client, Error> {
    #[cfg(feature = "tls")]
    if tls {
        return super::tls::client(config, info, &mask_password(&config.redis_url));
    }
    let _ = (config, tls);
    redis::Client::open(info).map_err(|e| Error::Config {
        option: "redis_url",
        rule: format!("cannot be used ({e})"),
    })
}

fn is_auth_error(error: &RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

fn sentinel_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(SENTINEL_TIMEOUT))
        .set_response_timeout(Some(SENTINEL_TIMEOUT))
}

/// `SENTINEL get-master-addr-by-name`: `None` when the sentinel does not
/// know the name.
async fn ask(node: &Node, master: &str) -> RedisResult<Option<(String, u16)>> {
    let mut conn = node
        .client
        .get_multiplexed_async_connection_with_config(&sentinel_config())
        .await?;
    redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(master)
        .query_async(&mut conn)
        .await
}

impl Shared {
    /// Retires every connection made so far, once per announced switch.
    fn switch(&self, event: &str) {
        if let Ok(mut last) = self.last_switch.lock() {
            if *last == event {
                return;
            }
            event.clone_into(&mut last);
        }
        if let Ok(mut master) = self.master.lock() {
            *master = None;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.switched.notify_waiters();
        tracing::warn!(
            master = %self.master_name,
            event,
            "Sentinel switched the master: every connection to the old master is dropped; new ones go to the new master"
        );
    }
}

/// Follows `+switch-master` on one sentinel, subscribing again whenever the
/// sentinel goes away, until `stop`.
async fn watch(shared: Arc<Shared>, index: usize, stop: CancellationToken) {
    let mut pause = Duration::from_millis(100);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            result = watch_once(&shared, index) => {
                if let Err(error) = result {
                    tracing::debug!(sentinel = %shared.sentinels[index].label, %error, "lost the +switch-master subscription; subscribing again");
                } else {
                    pause = Duration::from_millis(100);
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_RESUBSCRIBE_PAUSE);
    }
}

async fn watch_once(shared: &Shared, index: usize) -> RedisResult<()> {
    let node = &shared.sentinels[index];
    let mut pubsub = tokio::time::timeout(SENTINEL_TIMEOUT, node.client.get_async_pubsub())
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "sentinel did not answer")))??;
    pubsub.subscribe("+switch-master").await?;
    // A switch announced while this subscription was down: the master the
    // sentinel names now is not the one connections were made to.
    if let Ok(Some(now)) = ask(node, &shared.master_name).await {
        let known = shared
            .master
            .lock()
            .ok()
            .and_then(|m| m.as_ref().map(|(addr, _)| addr.clone()));
        if known.is_some_and(|known| known != now) {
            shared.switch(&format!(
                "{} (master now at {}:{})",
                shared.master_name, now.0, now.1
            ));
        }
    }
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        // `<name> <old ip> <old port> <new ip> <new port>`
        let mut parts = payload.split(' ');
        if parts.next() == Some(shared.master_name.as_str()) {
            shared.switch(&payload);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_url_grammar() {
        let url = parse("redis+sentinel://s1:26380,s2,[::1]:7/mymaster").unwrap();
        assert_eq!(
            url.sentinels,
            [
                ("s1".to_owned(), 26380),
                ("s2".to_owned(), 26379),
                ("::1".to_owned(), 7)
            ]
        );
        assert_eq!(url.master, "mymaster");
        assert_eq!((url.tls, url.insecure, url.db), (false, false, None));
        assert_eq!((url.username, url.password), (None, None));

        let url = parse("rediss+sentinel://app:p%40ss@h:1/m/3#insecure").unwrap();
        assert!(url.tls && url.insecure);
        assert_eq!(url.username.as_deref(), Some("app"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!(url.db, Some(3));
        let url = parse("redis+sentinel://:secret@h/m/").unwrap();
        assert_eq!(
            (url.username, url.password.as_deref()),
            (None, Some("secret"))
        );
    }

    #[test]
    fn malformed_urls_say_what_is_wrong_and_mask_the_password() {
        for (url, what) in [
            ("redis+sentinel://h1:26379", "master name is missing"),
            ("redis+sentinel://h1:26379/", "master name is empty"),
            ("redis+sentinel://:secret@h1:x/m", "`x` is not a port"),
            ("redis+sentinel://h1,,h2/m", "address is empty"),
            ("redis+sentinel://h1/m/zero", "not a database number"),
            ("redis+sentinel://h1/m?db=1", "query"),
            ("redis+sentinel://h1/m#insecure", "fragment"),
            ("redis+sentinel://:70000@h1:0/m", "`0` is not a port"),
        ] {
            let err = parse(url).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(
                    err,
                    Error::Config {
                        option: "redis_url",
                        ..
                    }
                ),
                "{text}"
            );
            assert!(text.contains(what), "{url}: {text}");
            assert!(
                text.contains("redis+sentinel://[[user]:password@]host"),
                "{text}"
            );
            assert!(
                !text.contains("secret") && !text.contains("70000"),
                "{text}"
            );
        }
    }
}
