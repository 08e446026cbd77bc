//! The worker runtime: fetches batches of leased jobs, runs their handlers
//! with bounded concurrency, acknowledges in batches, keeps leases alive,
//! recovers crashed workers' jobs and shuts down without losing a job.
//!
//! Tasks:
//! - the dispatcher (`dispatch`) fetches while there is free capacity and
//!   blocks on a wake-up when every topic is empty;
//! - `max_workers` runners (`runner`) execute handlers;
//! - the acker (`acker`) reports outcomes to Redis in batches;
//! - the lease keeper (`lease`) extends the leases of held jobs;
//! - the monitor (`monitor`) recovers expired leases and trims stores;
//! - the heartbeat (`heartbeat`, beside the lease keeper) says who runs
//!   what, and takes `worker quiet` / `worker stop` commands from Redis;
//! - the cron loop (`cron`) fires the cron schedules of the served topics.

mod acker;
mod batch;
mod builder;
mod cron;
mod dispatch;
mod fatal;
mod finish;
mod heartbeat;
mod held;
mod lease;
mod metrics;
mod monitor;
mod prefetch;
mod runner;
mod shutdown;
mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use builder::WorkerBuilder;
pub use metrics::{MetricsHandle, MetricsSnapshot};
pub use telemetry::Probe;

use crate::broker::Broker;
use crate::envelope::Envelope;
use crate::task::fixed_delay;
use crate::{Config, Error, StateMap, TaskDescriptor};

/// Ack calls in flight at once.
const ACKERS: usize = 2;

/// A worker for the tasks of this binary. Build one with [`Worker::builder`].
pub struct Worker {
    shared: Arc<Shared>,
}

/// What every part of a running worker shares.
struct Shared {
    broker: Broker,
    config: Config,
    topics: Vec<Topic>,
    state: StateMap,
    held: held::Held,
    metrics: Arc<metrics::Metrics>,
    fatal: fatal::Fatal,
    /// Jobs started, for the prefetch governor.
    starts: Arc<prefetch::Starts>,
    lifecycle: heartbeat::Lifecycle,
    telemetry: telemetry::Telemetry,
    /// The clock cron schedules are computed on.
    cron_clock: crate::CronClock,
}

/// A topic this worker serves.
struct Topic {
    name: String,
    descriptor: &'static TaskDescriptor,
    timeout: Duration,
}

/// A leased job on its way through the worker.
struct Job {
    topic: usize,
    key: u64,
    envelope: Envelope,
    /// When the fetch that leased it returned.
    fetched_at: std::time::Instant,
    /// How long it had waited since it was due, at `fetched_at` (only for
    /// first attempts of jobs enqueued without a delay: the others' due
    /// time is not in the envelope).
    waited: Option<Duration>,
}

impl Shared {
    fn topic_names(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.name.clone()).collect()
    }

    /// The delay before the retry that follows a failed run of `envelope`.
    fn retry_delay(&self, topic: &Topic, envelope: &Envelope) -> Duration {
        let retry = envelope.retries_used() + 1;
        match topic.descriptor.policy.backoff {
            Some(backoff) => backoff.delay(retry),
            None => fixed_delay(&self.config.retry_delays, retry),
        }
    }
}

impl Worker {
    /// Starts building a worker over a Redis-backed client.
    pub fn builder(client: crate::Client) -> WorkerBuilder {
        WorkerBuilder::new(client)
    }

    /// This worker's id in `worker ps` and [`Broker::workers`]:
    /// `<host>-<pid>-<random>`, new for every worker built.
    pub fn id(&self) -> &str {
        &self.shared.lifecycle.id
    }

    /// The topics this worker serves.
    pub fn topics(&self) -> Vec<String> {
        self.shared.topic_names()
    }

    /// Counters of what this worker has done so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// A handle on the same counters that can be read while the worker runs
    /// and after it stopped: [`Worker::run_until`] consumes the worker.
    pub fn metrics_handle(&self) -> MetricsHandle {
        MetricsHandle(Arc::clone(&self.shared.metrics))
    }

    /// A handle for health probes and metric scrapes of this worker.
    pub fn probe(&self) -> Probe {
        Probe::new(&self.shared)
    }

    /// Runs until SIGINT, SIGTERM or `worker stop`, then shuts down
    /// gracefully.
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(shutdown::signal()).await
    }

    /// Runs until `stop` completes (or `worker stop` is received through
    /// Redis), then shuts down gracefully: stops fetching, lets running
    /// handlers finish within `shutdown_grace`, returns every job it still
    /// holds to the front of its queue and removes its heartbeat.
    ///
    /// `worker quiet` makes it stop fetching but go on running (and beating,
    /// as `quiet`): the jobs it already fetched finish.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let shared = self.shared;
        let names = shared.topic_names();
        for topic in &shared.topics {
            tracing::info!(
                topic = %topic.name,
                task = %topic.descriptor.qualified_name(),
                "serving topic"
            );
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        shared
            .broker
            .record_topics(&refs)
            .await
            .map_err(|e| crate::broker::denied(&shared.config, &e).unwrap_or(e))?;

        let token = CancellationToken::new();
        let capacity = prefetch::max_held(&shared.config);
        let permits = Arc::new(Semaphore::new(capacity));
        let (job_tx, job_rx) = async_channel::bounded::<Job>(capacity);
        let parked = prefetch::park(&shared.config, &permits);
        let governor = tokio::spawn(prefetch::govern(
            shared.config.clone(),
            Arc::clone(&permits),
            parked,
            Arc::clone(&shared.starts),
            token.clone(),
        ));
        let (done_tx, done_rx) = async_channel::unbounded();

        let mut runners = JoinSet::new();
        for _ in 0..shared.config.max_workers {
            runners.spawn(runner::run(
                Arc::clone(&shared),
                job_rx.clone(),
                done_tx.clone(),
                Arc::clone(&permits),
                token.clone(),
            ));
        }
        drop(done_tx);
        let ackers: Vec<_> = (0..ACKERS)
            .map(|_| {
                tokio::spawn(acker::run(
                    Arc::clone(&shared),
                    done_rx.clone(),
                    token.clone(),
                ))
            })
            .collect();
        drop(done_rx);
        // The lease keeper outlives the shutdown token: held jobs keep their
        // leases through the grace period until they are reported or
        // released, so no other worker recovers a job that still runs here.
        let keeper_token = CancellationToken::new();
        let keeper = lease::spawn(Arc::clone(&shared), keeper_token.clone());
        // Stops the keeper's thread also when this future is dropped.
        let _keeper_guard = keeper_token.clone().drop_guard();
        let monitor = tokio::spawn(monitor::run(Arc::clone(&shared), token.clone()));
        let sampler = tokio::spawn(telemetry::run_sampler(Arc::clone(&shared), token.clone()));
        let cron = tokio::spawn(cron::run(Arc::clone(&shared), token.clone()));

        // Fetching stops at shutdown, or earlier on `worker quiet`.
        let fetch = token.child_token();
        tokio::spawn({
            let quiet = shared.lifecycle.quiet.clone();
            let fetch = fetch.clone();
            async move {
                tokio::select! {
                    () = quiet.cancelled() => fetch.cancel(),
                    () = fetch.cancelled() => {}
                }
            }
        });
        let dispatcher = tokio::spawn(dispatch::run(
            Arc::clone(&shared),
            job_tx,
            permits,
            token.clone(),
            fetch,
        ));
        shared.telemetry.health.set_running(true);
        tokio::select! {
            () = stop => {}
            () = shared.fatal.raised() => {}
            () = shared.lifecycle.stop.cancelled() => {}
        }
        shared.lifecycle.set_stopping();
        shared.telemetry.health.set_running(false);
        tracing::info!("shutting down: no new jobs are fetched");
        token.cancel();
        let _ = dispatcher.await;
        let _ = governor.await;
        let grace = shared.config.shutdown_grace;
        if tokio::time::timeout(grace, async {
            while runners.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                ?grace,
                "handlers still running after the grace period are cancelled; their jobs go back to the queue"
            );
            runners.shutdown().await;
        }
        drop(job_rx);
        for acker in ackers {
            let _ = acker.await;
        }
        let _ = monitor.await;
        let _ = sampler.await;
        let _ = cron.await;
        // Stop renewing only now, before giving the held jobs back: a renewal
        // after the release could extend another worker's lease.
        keeper_token.cancel();
        let _ = keeper.await;
        shutdown::release_held(&shared).await;
        if let Err(error) = shared.broker.remove_worker(&shared.lifecycle.id).await {
            tracing::warn!(%error, "could not remove this worker's heartbeat; it expires after 3 beats");
        }
        tracing::info!("worker stopped");
        shared.fatal.take().map_or(Ok(()), Err)
    }
}
