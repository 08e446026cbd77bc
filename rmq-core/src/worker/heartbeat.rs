//! The heartbeat: every `heartbeat_interval` the worker writes who it is and
//! what it runs (see `broker::workers`), and reads the `quiet` / `stop`
//! command an operator may have sent it through Redis.
//!
//! It runs beside the lease keeper, on the keeper's own thread, runtime and
//! connections: a handler that blocks the worker's threads cannot stop it.
//! A failed beat is logged and tried again at the next one; the worker never
//! stops for it. The busy-job list comes from the in-memory held-jobs table,
//! so the heartbeat costs the hot path nothing.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::Shared;
use crate::broker::{Broker, RunningJob, WorkerCommand, WorkerInfo, WorkerState};

/// Who this worker process is, and the commands it has received.
pub(super) struct Lifecycle {
    pub(super) id: String,
    pub(super) host: String,
    /// When it started.
    started: Instant,
    /// Cancelled by `worker quiet`: the dispatcher stops fetching.
    pub(super) quiet: CancellationToken,
    /// Cancelled by `worker stop`: the worker shuts down as on SIGTERM.
    pub(super) stop: CancellationToken,
    /// 0 running, 1 quiet, 2 stopping.
    state: AtomicU8,
}

impl Lifecycle {
    pub(super) fn new() -> Lifecycle {
        let host = host_name();
        let id = format!(
            "{host}-{}-{:06x}",
            std::process::id(),
            fastrand::u32(..1 << 24)
        );
        Lifecycle {
            id,
            host,
            started: Instant::now(),
            quiet: CancellationToken::new(),
            stop: CancellationToken::new(),
            state: AtomicU8::new(0),
        }
    }

    pub(super) fn state(&self) -> WorkerState {
        match self.state.load(Ordering::Relaxed) {
            0 => WorkerState::Running,
            1 => WorkerState::Quiet,
            _ => WorkerState::Stopping,
        }
    }

    /// Quiet: fetch no more. Never undoes stopping.
    pub(super) fn set_quiet(&self) {
        let _ = self
            .state
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed);
        self.quiet.cancel();
    }

    pub(super) fn set_stopping(&self) {
        self.state.store(2, Ordering::Relaxed);
    }
}

/// The host name: `HOSTNAME`, else the kernel's, else `localhost`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Beats until `token` is cancelled (the keeper's token: after shutdown has
/// released every job). The entry is removed by the worker itself at the
/// very end of a graceful shutdown.
pub(super) async fn run(shared: &Shared, broker: &Broker, token: &CancellationToken) {
    let interval = shared.config.heartbeat_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: `worker ps` lists a worker as it starts.
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = beat(shared, broker, interval).await {
            Metrics::add(&shared.metrics.redis_errors, 1);
            tracing::warn!(%error, "heartbeat failed; retrying at the next beat (`worker ps` may miss this worker meanwhile)");
        }
    }
}

async fn beat(shared: &Shared, broker: &Broker, interval: Duration) -> Result<(), crate::Error> {
    let life = &shared.lifecycle;
    let (command, now) = broker.worker_control(&life.id).await?;
    match command {
        Some(WorkerCommand::Stop) if !life.stop.is_cancelled() => {
            tracing::info!(id = %life.id, "`worker stop` received: shutting down");
            life.stop.cancel();
        }
        Some(WorkerCommand::Quiet) if !life.quiet.is_cancelled() => {
            tracing::info!(id = %life.id, "`worker quiet` received: running jobs finish, no new jobs are fetched");
            life.set_quiet();
        }
        _ => {}
    }
    let at = Instant::now();
    // Instants in server time: `now` is the server's, taken just before.
    let server_ms =
        |instant: Instant| now.saturating_sub(ms(at.saturating_duration_since(instant)));
    let jobs: Vec<RunningJob> = shared
        .held
        .running()
        .into_iter()
        .map(|(topic, id, started)| RunningJob {
            topic: shared.topics[topic].name.clone(),
            id,
            started_at_ms: server_ms(started),
        })
        .collect();
    let info = WorkerInfo {
        id: life.id.clone(),
        host: life.host.clone(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        topics: shared.topic_names(),
        concurrency: shared.config.max_workers,
        busy: jobs.len(),
        jobs,
        state: life.state(),
        started_at_ms: server_ms(life.started),
        last_beat_ms: now,
        beat_interval_ms: ms(interval),
    };
    broker.beat(&info).await
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
