//! Helpers of the worker tests: a Redis per test, a client on it, a probe
//! handlers report to, and waits on conditions (never on fixed sleeps).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq::broker::TopicStats;
use rmq::{Client, Config, Worker};
use rmq_testkit::{Cluster, RedisServer};
use tokio::sync::watch;

/// Where a test runs: a Redis of its own, or the test binary's shared
/// cluster (3 primaries + 3 replicas) under a queue prefix of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    Standalone,
    Cluster,
}

static PREFIXES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Safety net around every wait: a test that hangs fails after this long.
pub const LIMIT: Duration = Duration::from_secs(15);

/// A throwaway Redis (or a prefix of its own on the shared cluster) and a
/// client on it.
pub struct Env {
    server: Option<RedisServer>,
    pub client: Client,
}

impl Env {
    /// A Redis with the test defaults (tiny retry delays, short grace).
    pub async fn new() -> Env {
        Env::with(|_| {}).await
    }

    /// A Redis with the test defaults adjusted by `adjust`.
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Env {
        Env::on_with(Deployment::Standalone, adjust).await
    }

    /// With the test defaults, on `deployment`.
    pub async fn on(deployment: Deployment) -> Env {
        Env::on_with(deployment, |_| {}).await
    }

    /// With the test defaults adjusted by `adjust`, on `deployment`.
    pub async fn on_with(deployment: Deployment, adjust: impl FnOnce(&mut Config)) -> Env {
        let mut config = Config::default();
        let server = match deployment {
            Deployment::Standalone => {
                let server = RedisServer::start();
                config.redis_url = server.url();
                Some(server)
            }
            Deployment::Cluster => {
                config.redis_url = tokio::task::spawn_blocking(|| Cluster::shared().url())
                    .await
                    .expect("start the test cluster");
                config.queue_prefix = format!(
                    "w{}-{}",
                    std::process::id(),
                    PREFIXES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                None
            }
        };
        config.connection_pool_size = 4;
        config.retry_delays = vec![Duration::from_millis(10)];
        config.shutdown_grace = Duration::from_secs(5);
        adjust(&mut config);
        let client = Client::connect(config)
            .await
            .expect("connect to the test Redis");
        Env { server, client }
    }

    /// Another client with the same configuration (its own pool and its own
    /// blocking connection), as a second worker process would have.
    pub async fn second_client(&self) -> Client {
        Client::connect(self.client.config().clone())
            .await
            .expect("connect a second client")
    }

    pub fn broker(&self) -> &rmq::Broker {
        self.client.broker().expect("a Redis-backed client")
    }

    pub async fn stats(&self, topic: &str) -> TopicStats {
        self.broker().stats(topic).await.expect("stats")
    }

    /// The test's own server.
    ///
    /// # Panics
    /// On the cluster.
    pub fn server(&self) -> &RedisServer {
        self.server.as_ref().expect("a standalone test server")
    }

    /// A plain connection to the test Redis, for planting and inspecting
    /// keys.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.server().url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection")
    }

    /// Enqueues `payload` to `topic` as stored bytes, whatever its type.
    pub async fn enqueue_raw(&self, topic: &str, payload: &[u8]) {
        let spec = rmq::broker::EnqueueSpec {
            priority: rmq::Priority::Normal,
            delay: Duration::ZERO,
            ttl: None,
            max_retries: 3,
            index: false,
        };
        let job = rmq::broker::NewJob { payload, id: None };
        self.broker()
            .enqueue(topic, &spec, &[job])
            .await
            .expect("enqueue raw bytes");
    }

    /// Waits until `n` connections are blocked on a wake-up list, i.e. `n`
    /// workers have nothing to do and sleep until an enqueue wakes them.
    pub async fn wait_idle(&self, n: usize) {
        let mut conn = self.raw().await;
        let deadline = Instant::now() + LIMIT;
        loop {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut conn)
                .await
                .expect("CLIENT LIST");
            let blocked = list.lines().filter(|l| l.contains("cmd=blpop")).count();
            if blocked >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no worker went idle within {LIMIT:?}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Jobs pending over every priority.
pub fn pending(stats: &TopicStats) -> u64 {
    stats.pending.iter().sum()
}

/// Runs `worker` until `stop` completes; fails the test if that takes more
/// than [`LIMIT`] or the worker errs.
pub async fn run(worker: Worker, stop: impl Future<Output = ()> + Send) {
    tokio::time::timeout(LIMIT, worker.run_until(stop))
        .await
        .expect("the worker did not stop in time")
        .expect("the worker failed");
}

/// Polls `condition` until it holds, for state only Redis has (counters,
/// where there is nothing to await); fails the test after [`LIMIT`].
pub async fn wait_for<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + LIMIT;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "the condition was not met within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What handlers report to the test: a list of records and a way to wait
/// until it satisfies a condition. Handlers get it as `State<Probe<T>>`.
pub struct Probe<T> {
    inner: Arc<ProbeInner<T>>,
}

struct ProbeInner<T> {
    records: Mutex<Vec<T>>,
    changed: watch::Sender<u64>,
}

impl<T> Clone for Probe<T> {
    fn clone(&self) -> Self {
        Probe {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Probe {
            inner: Arc::new(ProbeInner {
                records: Mutex::new(Vec::new()),
                changed: watch::Sender::new(0),
            }),
        }
    }
}

impl<T: Clone + Send + 'static> Probe<T> {
    pub fn new() -> Self {
        Probe::default()
    }

    pub fn record(&self, record: T) {
        self.inner.records.lock().unwrap().push(record);
        self.inner.changed.send_modify(|n| *n += 1);
    }

    pub fn records(&self) -> Vec<T> {
        self.inner.records.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.inner.records.lock().unwrap().len()
    }

    /// Completes once the records satisfy `condition`.
    pub fn until(
        &self,
        condition: impl Fn(&[T]) -> bool + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let probe = self.clone();
        async move {
            let mut changes = probe.inner.changed.subscribe();
            loop {
                if condition(&probe.inner.records.lock().unwrap()) {
                    return;
                }
                // The sender lives in `probe`, so this never reports closed.
                let _ = changes.changed().await;
            }
        }
    }

    /// Completes once at least `n` records were made.
    pub fn reached(&self, n: usize) -> impl Future<Output = ()> + Send + 'static {
        self.until(move |records| records.len() >= n)
    }

    /// Like [`Probe::until`], failing the test after [`LIMIT`].
    pub async fn wait(&self, condition: impl Fn(&[T]) -> bool + Send + 'static) {
        tokio::time::timeout(LIMIT, self.until(condition))
            .await
            .expect("the condition was not met in time");
    }
}
