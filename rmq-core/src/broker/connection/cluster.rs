//! Redis Cluster (`redis+cluster://h1:7000,h2:7001/`): redis-rs's cluster
//! client routes every command by its first key's slot, follows `MOVED` and
//! `ASK`, and refreshes the slot map after a reshard or a failover. Every
//! rmq script and pipeline touches one topic's keys (one hash tag, one
//! slot), so it runs on the one node owning that slot; `SCRIPT LOAD` goes to
//! every primary, so a `NOSCRIPT` reload covers a promoted replica too.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::RedisResult;

use super::{mask_password, sentinel::percent_decode};
use crate::{Config, Error};

/// Whether `url` names a cluster (`redis+cluster://`).
pub(crate) fn is_cluster_url(url: &str) -> bool {
    url.starts_with("redis+cluster://") || url.starts_with("rediss+cluster://")
}

/// A parsed `redis+cluster://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClusterUrl {
    /// Seed nodes, in the order given.
    pub(crate) nodes: Vec<(String, u16)>,
    /// ACL user.
    pub(crate) username: Option<String>,
    /// Password.
    pub(crate) password: Option<String>,
}

/// Parses `redis+cluster://[[user]:password@]host:port[,host:port...][/]`.
pub(crate) fn parse(url: &str) -> Result<ClusterUrl, Error> {
    let masked = mask_password(url);
    let bad = |what: &str| {
        Error::Config {
        option: "redis_url",
        rule: format!(
            "is not a valid Cluster URL ({what}); expected `redis+cluster://[[user]:password@]host:port[,host:port...]/` \
             (a password must be percent-encoded); got `{masked}`"
        ),
    }
    };
    if url.starts_with("rediss+cluster://") {
        return Err(bad(
            "TLS to a cluster (`rediss+cluster://`) is not supported yet",
        ));
    }
    let Some(rest) = url.strip_prefix("redis+cluster://") else {
        return Err(bad("the scheme must be `redis+cluster`"));
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("query parameters and fragments are not supported"));
    }
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = match rest.split_once('/') {
        Some((hosts, path)) => (hosts, path),
        None => (rest, ""),
    };
    if !path.is_empty() && path != "0" {
        return Err(bad("a cluster has only database 0"));
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (info, None),
            };
            let decode = |raw: &str| percent_decode(raw).ok_or_else(|| bad("bad percent-encoding"));
            let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
            let pass = pass.map(decode).transpose()?;
            (user, pass)
        }
    };
    let mut nodes = Vec::new();
    for node in hosts.split(',') {
        let node = node.trim();
        if node.is_empty() {
            return Err(bad("an empty node address"));
        }
        let (host, port) = match node.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| bad(&format!("`{port}` is not a port")))?,
            ),
            None => (node, 6379),
        };
        if host.is_empty() {
            return Err(bad("an empty host"));
        }
        nodes.push((host.to_owned(), port));
    }
    Ok(ClusterUrl {
        nodes,
        username,
        password,
    })
}

/// The cluster deployment: a client for the seed nodes.
pub(crate) struct Cluster {
    client: ClusterClient,
    /// Same, without a response timeout: for blocking waits.
    blocking: ClusterClient,
}

impl Cluster {
    pub(super) fn new(config: &Config) -> Result<Cluster, Error> {
        let url = parse(&config.redis_url)?;
        if config.redis_db.is_some_and(|db| db != 0) {
            return Err(Error::Config {
                option: "redis_db",
                rule: "must be 0 (or unset) with a Redis Cluster: a cluster has only database 0"
                    .to_owned(),
            });
        }
        let builder = || {
            let nodes: Vec<String> = url
                .nodes
                .iter()
                .map(|(host, port)| format!("redis://{host}:{port}"))
                .collect();
            let mut builder = ClusterClientBuilder::new(nodes)
                .connection_timeout(super::CONNECT_TIMEOUT)
                // A failover takes the cluster about `cluster-node-timeout`
                // plus an election: retry for a few seconds (50 ms doubling
                // to 1 s), then report the error and let the caller back off.
                .retries(RETRIES)
                .min_retry_wait(50)
                .max_retry_wait(1000)
                .retry_wait_formula(50, 2);
            if let Some(user) = config.redis_username.as_ref().or(url.username.as_ref()) {
                builder = builder.username(user);
            }
            if let Some(password) = config.redis_password.as_ref().or(url.password.as_ref()) {
                builder = builder.password(password);
            }
            builder
        };
        let bad = |e: redis::RedisError| Error::Config {
            option: "redis_url",
            rule: format!(
                "is not a usable Cluster URL ({e}); got `{}`",
                mask_password(&config.redis_url)
            ),
        };
        let client = builder()
            .response_timeout(super::RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(super::RESPONSE_TIMEOUT + RETRY_BUDGET))
            .build()
            .map_err(bad)?;
        let blocking = builder()
            .overall_response_timeout(None)
            .build()
            .map_err(bad)?;
        Ok(Cluster { client, blocking })
    }

    /// A connection routing by slot to every primary.
    pub(super) async fn connect(&self) -> RedisResult<ClusterConnection> {
        self.client.get_async_connection().await
    }

    /// A connection without response timeout, for one blocking wait at a
    /// time (the caller's watchdog bounds it).
    pub(crate) async fn connect_blocking(&self) -> RedisResult<ClusterConnection> {
        self.blocking.get_async_connection().await
    }
}

/// Redirections and reconnections a cluster request is retried through.
const RETRIES: u32 = 6;
/// Time the retries of one request may add to its response timeout.
const RETRY_BUDGET: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_urls() {
        let url = parse("redis+cluster://u:p%40ss@h1:7000,h2:7001/").unwrap();
        assert_eq!(
            url.nodes,
            vec![("h1".to_owned(), 7000), ("h2".to_owned(), 7001)]
        );
        assert_eq!(url.username.as_deref(), Some("u"));
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        let url = parse("redis+cluster://:secret@127.0.0.1:7000").unwrap();
        assert_eq!(url.username, None);
        assert_eq!(url.password.as_deref(), Some("secret"));
        assert_eq!(parse("redis+cluster://h").unwrap().nodes[0].1, 6379);
        for bad in [
            "redis+cluster://",
            "redis+cluster://h1:7000,,h2:7001/",
            "redis+cluster://h1:x/",
            "redis+cluster://h1:7000/3",
            "redis+cluster://h1:7000/?a=b",
            "rediss+cluster://h1:7000/",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("Cluster URL"), "{bad}: {err}");
        }
        let err = parse("redis+cluster://u:hunter2@h1:x/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
