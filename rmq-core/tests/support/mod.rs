//! Shared helpers of the engine tests: a Redis per test, a broker on it,
//! raw access for assertions.
#![allow(dead_code, unreachable_pub, unused_macros)]

/// A test run twice: on a Redis of its own and on the shared cluster
/// (under a prefix of its own, its topics spread over different
/// primaries). `env` is bound to the environment.
macro_rules! on_both {
    ($name:ident, $topics:expr, |$env:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn body($env: Env) $body

            #[tokio::test]
            async fn standalone() {
                body(Env::on(Deployment::Standalone).await).await;
            }

            #[tokio::test]
            async fn cluster() {
                body(Env::spread(&$topics).await).await;
            }
        }
    };
}

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use rmq_core::broker::{EnqueueSpec, NewJob};
use rmq_core::envelope::Envelope;
use rmq_core::{Broker, Config, JobId, Priority};
use rmq_testkit::{Cluster, RedisServer};

pub fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.redis_url = url.to_owned();
    config.connection_pool_size = 4;
    config
}

/// Where a test runs: a Redis of its own, or the test binary's shared
/// cluster (3 primaries + 3 replicas) under a queue prefix of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    Standalone,
    Cluster,
}

pub struct Env {
    pub server: Option<RedisServer>,
    pub broker: Broker,
    pub config: Config,
}

/// A raw connection for planting and inspecting keys: to the test's own
/// server, or to the cluster (routing by slot).
pub enum Raw {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Raw {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Raw::Single(c) => c.req_packed_command(cmd),
            Raw::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Raw::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Raw::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

static PREFIXES: AtomicUsize = AtomicUsize::new(0);

impl Env {
    pub async fn new() -> Env {
        Env::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Env {
        Env::on_with(Deployment::Standalone, adjust).await
    }

    pub async fn on(deployment: Deployment) -> Env {
        Env::on_with(deployment, |_| {}).await
    }

    /// On the cluster every test gets its own `queue_prefix`, so tests
    /// share the cluster without seeing each other's jobs.
    pub async fn on_with(deployment: Deployment, adjust: impl FnOnce(&mut Config)) -> Env {
        let (server, mut config) = match deployment {
            Deployment::Standalone => {
                let server = RedisServer::start();
                let config = config(&server.url());
                (Some(server), config)
            }
            Deployment::Cluster => {
                let url = tokio::task::spawn_blocking(|| Cluster::shared().url())
                    .await
                    .unwrap();
                let mut config = config(&url);
                config.queue_prefix = format!(
                    "t{}-{}",
                    std::process::id(),
                    PREFIXES.fetch_add(1, Ordering::Relaxed)
                );
                (None, config)
            }
        };
        adjust(&mut config);
        let broker = Broker::connect(&config).await.expect("connect");
        Env {
            server,
            broker,
            config,
        }
    }

    /// On the shared cluster, under a prefix that puts each of `topics` on
    /// a different primary (as far as there are primaries).
    pub async fn spread(topics: &[&str]) -> Env {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let prefix = tokio::task::spawn_blocking(move || spread_prefix(&topics))
            .await
            .unwrap();
        Env::on_with(Deployment::Cluster, |config| config.queue_prefix = prefix).await
    }

    /// The test's own server.
    ///
    /// # Panics
    /// On the cluster.
    pub fn server(&self) -> &RedisServer {
        self.server.as_ref().expect("a standalone test server")
    }

    /// The test's own server, to kill or restart it.
    ///
    /// # Panics
    /// On the cluster.
    pub fn server_mut(&mut self) -> &mut RedisServer {
        self.server.as_mut().expect("a standalone test server")
    }

    /// The keys of `topic` under this test's prefix.
    pub fn keys(&self, topic: &str) -> rmq_core::keys::TopicKeys {
        rmq_core::keys::TopicKeys::new(&self.config.queue_prefix, topic)
    }

    pub async fn raw(&self) -> Raw {
        match &self.server {
            Some(server) => Raw::Single(
                redis::Client::open(server.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            ),
            None => {
                let ports = Cluster::shared().ports();
                let nodes: Vec<String> = ports
                    .iter()
                    .map(|p| format!("redis://127.0.0.1:{p}"))
                    .collect();
                Raw::Cluster(
                    redis::cluster::ClusterClient::new(nodes)
                        .unwrap()
                        .get_async_connection()
                        .await
                        .unwrap(),
                )
            }
        }
    }

    pub async fn push(&self, topic: &str, jobs: &[&str], spec: &EnqueueSpec) -> Vec<JobId> {
        let payloads: Vec<Vec<u8>> = jobs.iter().map(|j| j.as_bytes().to_vec()).collect();
        let new: Vec<NewJob<'_>> = payloads
            .iter()
            .map(|p| NewJob {
                payload: p,
                id: None,
            })
            .collect();
        self.broker.enqueue(topic, spec, &new).await.unwrap()
    }

    /// Fetches until `want` jobs arrived or `within` passed.
    pub async fn fetch_until(
        &self,
        topic: &str,
        want: usize,
        lease: Duration,
        within: Duration,
    ) -> Vec<Envelope> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < want && Instant::now() < deadline {
            let fetched = self
                .broker
                .fetch(topic, want - got.len(), lease)
                .await
                .unwrap();
            if fetched.jobs.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            got.extend(fetched.jobs);
        }
        got
    }
}

pub fn spec(priority: Priority) -> EnqueueSpec {
    EnqueueSpec {
        priority,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 3,
        index: false,
    }
}

pub fn payloads(jobs: &[Envelope]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(j.payload()).into_owned())
        .collect()
}

pub const LEASE: Duration = Duration::from_secs(30);

/// The entries of a listing, each of which must be readable.
pub fn readable<T, E: std::fmt::Debug>(entries: Vec<Result<T, E>>) -> Vec<T> {
    entries
        .into_iter()
        .map(|entry| entry.expect("a readable entry"))
        .collect()
}

/// A fresh queue prefix under which `topics` land on pairwise different
/// primaries of the shared cluster (the first ones, when there are more
/// topics than primaries).
pub fn spread_prefix(topics: &[String]) -> String {
    let cluster = Cluster::shared();
    let owners: Vec<(u16, u16, u16)> = cluster
        .topology()
        .into_iter()
        .filter(|n| n.primary)
        .flat_map(|n| n.slots.into_iter().map(move |(a, b)| (a, b, n.port)))
        .collect();
    let owner = |slot: u16| {
        owners
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, port)| *port)
    };
    let distinct = topics.len().min(3);
    loop {
        let prefix = format!(
            "t{}-{}",
            std::process::id(),
            PREFIXES.fetch_add(1, Ordering::Relaxed)
        );
        let mut ports: Vec<u16> = topics
            .iter()
            .filter_map(|t| owner(rmq_testkit::key_slot(&format!("{{{prefix}:{t}}}"))))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        if ports.len() >= distinct {
            return prefix;
        }
    }
}
