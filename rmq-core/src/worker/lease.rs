//! The lease keeper: extends the leases of every job this worker holds,
//! every third of the lease, so a long handler is never recovered while it
//! still runs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::Shared;

pub(super) async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let lease = shared.config.lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        for group in shared.held.by_topic(shared.topics.len()) {
            let name = &shared.topics[group.topic].name;
            let envelopes = &group.envelopes;
            match shared.broker.extend(name, envelopes, lease).await {
                Ok(lost) => {
                    // A job whose handler finished may have been acked (or
                    // failed) between the snapshot and the extension: that
                    // is no lost lease, and the acker learns of a real one
                    // when it reports.
                    let lost: Vec<usize> = lost
                        .into_iter()
                        .filter(|&i| shared.held.is_running(group.keys[i]))
                        .collect();
                    for &i in &lost {
                        Metrics::add(&shared.metrics.lease_lost, 1);
                        tracing::warn!(topic = %name, id = envelopes[i].id(), "lease lost while the job was held; another worker may run it");
                    }
                    shared.held.remove_all(lost.iter().map(|&i| group.keys[i]));
                }
                Err(error) => {
                    Metrics::add(&shared.metrics.redis_errors, 1);
                    tracing::warn!(%error, topic = %name, "extending leases failed; will retry at the next tick");
                }
            }
        }
    }
}
