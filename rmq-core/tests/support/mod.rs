//! Shared helpers of the engine tests: a Redis per test, a broker on it,
//! raw access for assertions.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use rmq_core::broker::{EnqueueSpec, NewJob};
use rmq_core::envelope::Envelope;
use rmq_core::{Broker, Config, JobId, Priority};
use rmq_testkit::RedisServer;

pub fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.redis_url = url.to_owned();
    config.connection_pool_size = 4;
    config
}

pub struct Env {
    pub server: RedisServer,
    pub broker: Broker,
    pub config: Config,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Env {
        let server = RedisServer::start();
        let mut config = config(&server.url());
        adjust(&mut config);
        let broker = Broker::connect(&config).await.expect("connect");
        Env {
            server,
            broker,
            config,
        }
    }

    pub async fn raw(&self) -> MultiplexedConnection {
        redis::Client::open(self.server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
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
