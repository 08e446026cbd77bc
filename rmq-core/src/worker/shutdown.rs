//! Shutdown: the signals that start it, and returning held jobs.

use super::Shared;

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub(super) async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Returns every job still held (fetched but not started, or cancelled at
/// the end of the grace period) to the front of its queue, attempt unchanged.
pub(super) async fn release_held(shared: &Shared) {
    if shared.held.is_empty() {
        return;
    }
    for group in shared.held.by_topic(shared.topics.len()) {
        let name = &shared.topics[group.topic].name;
        let envelopes = &group.envelopes;
        match shared.broker.release(name, envelopes).await {
            Ok(released) => {
                tracing::info!(topic = %name, released, "returned unfinished jobs to the queue")
            }
            Err(error) => tracing::error!(
                %error,
                topic = %name,
                jobs = envelopes.len(),
                "could not return unfinished jobs; they are recovered when their lease expires"
            ),
        }
        shared.held.remove_all(group.keys);
    }
}
