//! The lease keeper: extends the leases of every job this worker holds,
//! every third of the lease, so a long handler is never recovered while it
//! still runs.
//!
//! It runs on a thread and runtime of its own, over connections of its own:
//! handlers that block their executor threads cannot stop renewal (nor the
//! heartbeat, which runs beside it, see `heartbeat`). It stops
//! renewing a job whose handler has run past the task's timeout (one the
//! blocked runtime could not cancel), so that job is recovered and retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::dispatch::Backoff;
use super::metrics::Metrics;
use super::telemetry::Op;
use super::Shared;
use crate::broker::Broker;

/// Starts the keeper on its own thread; the receiver completes when it has
/// stopped (after `token` is cancelled).
pub(super) fn spawn(shared: Arc<Shared>, token: CancellationToken) -> oneshot::Receiver<()> {
    let (stopped, on_stop) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("rmq-lease-keeper".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            let token = token.clone();
            move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(run(shared, token)),
                    Err(error) => {
                        tracing::error!(%error, "cannot start the lease keeper's runtime; leases are not renewed")
                    }
                }
                let _ = stopped.send(());
            }
        });
    if let Err(error) = thread {
        tracing::error!(%error, "cannot start the lease keeper's thread; leases are not renewed");
    }
    on_stop
}

async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let Some(broker) = connect(&shared, &token).await else {
        return;
    };
    // The heartbeat shares this thread, for the same reason.
    tokio::join!(
        keep(&shared, &broker, &token),
        super::heartbeat::run(&shared, &broker, &token)
    );
}

async fn keep(shared: &Shared, broker: &Broker, token: &CancellationToken) {
    let lease = shared.config.lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        renew(shared, broker, lease).await;
    }
}

/// The keeper's own connections, opened on its runtime.
async fn connect(shared: &Shared, token: &CancellationToken) -> Option<Broker> {
    let mut backoff = Backoff::default();
    loop {
        match shared.broker.sibling().await {
            Ok(broker) => return Some(broker),
            Err(error) => {
                Metrics::add(&shared.metrics.redis_errors, 1);
                shared.telemetry.redis_error(Op::Connect, &error);
                let delay = backoff.next();
                tracing::warn!(%error, retry_in = ?delay, "the lease keeper cannot connect; retrying");
                tokio::select! {
                    () = token.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

async fn renew(shared: &Shared, broker: &Broker, lease: Duration) {
    let now = Instant::now();
    for group in shared.held.by_topic(shared.topics.len()) {
        let topic = &shared.topics[group.topic];
        let name = &topic.name;
        let mut keys = Vec::with_capacity(group.keys.len());
        let mut envelopes = Vec::with_capacity(group.keys.len());
        for ((key, envelope), started) in group.keys.iter().zip(group.envelopes).zip(group.started)
        {
            let overrun = started.and_then(|at| now.duration_since(at).checked_sub(topic.timeout));
            if let Some(overrun) = overrun {
                // Said once: only one tick falls in the first third of a lease.
                if overrun < lease / 3 {
                    tracing::warn!(topic = %name, id = envelope.id(), timeout = ?topic.timeout, "handler still running past its timeout (is it blocking its thread?); its lease is no longer renewed, so the job will be recovered and retried");
                }
                continue;
            }
            keys.push(*key);
            envelopes.push(envelope);
        }
        match broker.extend(name, &envelopes, lease).await {
            Ok(extended) => {
                shared.telemetry.redis_ok();
                let asked = shared.held.cancel(extended.cancel.iter().map(|&i| keys[i]));
                if asked > 0 {
                    tracing::info!(topic = %name, jobs = asked, "jobs asked to cancel; their handlers' cancellation tokens are cancelled");
                }
                // A job whose handler finished may have been acked (or
                // failed) between the snapshot and the extension: that is
                // no lost lease, and the acker learns of a real one when it
                // reports.
                let lost: Vec<usize> = extended
                    .lost
                    .into_iter()
                    .filter(|&i| shared.held.is_running(keys[i]))
                    .collect();
                for &i in &lost {
                    Metrics::add(&shared.metrics.lease_lost, 1);
                    shared.telemetry.topic(group.topic).lease_lost(1);
                    tracing::warn!(topic = %name, id = envelopes[i].id(), "lease lost while the job was held; another worker may run it");
                }
                shared.held.remove_all(lost.iter().map(|&i| keys[i]));
            }
            Err(error) => {
                Metrics::add(&shared.metrics.redis_errors, 1);
                shared.telemetry.redis_error(Op::Extend, &error);
                shared.fatal.raise(&shared.config, &error);
                tracing::warn!(%error, topic = %name, "extending leases failed; will retry at the next tick");
            }
        }
    }
}
