//! Shared helpers: a Redis per test, an in-process worker run until the
//! spans a test waits for were exported.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::{Duration, Instant};

use rmq::{Client, Config, Worker};
use rmq_testkit::RedisServer;
use tracing::Instrument;

/// A test that waits longer than this fails.
pub const LIMIT: Duration = Duration::from_secs(15);

pub struct Env {
    pub server: RedisServer,
    pub client: Client,
}

impl Env {
    pub async fn new() -> Env {
        let server = RedisServer::start();
        let mut config = Config::default();
        config.redis_url = server.url();
        config.connection_pool_size = 2;
        config.retry_delays = vec![Duration::from_millis(10)];
        config.shutdown_grace = Duration::from_secs(5);
        let client = Client::connect(config).await.expect("connect");
        Env { server, client }
    }

    pub fn broker(&self) -> &rmq::Broker {
        self.client.broker().expect("a Redis client")
    }
}

/// Runs `worker` until `done` returns `Some`, then stops it and returns
/// the value.
pub async fn run_until<T>(worker: Worker, done: impl FnMut() -> Option<T>) -> T {
    run_in(tracing::Span::none(), worker, done).await
}

/// [`run_until`] with the worker's future inside `span`.
pub async fn run_in<T>(
    span: tracing::Span,
    worker: Worker,
    mut done: impl FnMut() -> Option<T>,
) -> T {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(
        worker
            .run_until(async move {
                let _ = stopped.await;
            })
            .instrument(span),
    );
    let deadline = Instant::now() + LIMIT;
    let value = loop {
        if let Some(value) = done() {
            break value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the worker"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = stop.send(());
    running.await.expect("worker task").expect("worker run");
    value
}

/// Awaits `future` within [`LIMIT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}
