//! `exporter`: serves the queue-wide metrics, read from Redis at each
//! scrape, so that one process exports them however many workers run.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::StatusCode;
use rmq::{Client, Error};

use crate::cli::ExporterArgs;
use crate::http::{self, Handler, Reply, Route};

/// Serves `/metrics` (queue-wide gauges and counters) and `/healthz` (200
/// while Redis answers) on `args.listen` until SIGINT or SIGTERM.
pub(crate) async fn serve(client: Client, args: ExporterArgs) -> Result<(), Error> {
    let listener = http::bind(args.listen).await?;
    let broker = super::broker(&client).clone();
    let topics: Arc<Vec<String>> = Arc::new(
        args.topics
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .collect(),
    );
    let handler: Handler = Arc::new(move |route| {
        let broker = broker.clone();
        let topics = Arc::clone(&topics);
        Box::pin(async move {
            match route {
                Route::Metrics => match rmq::telemetry::queue::render(&broker, &topics).await {
                    Ok(text) => Reply::metrics(text),
                    Err(error) => {
                        tracing::warn!(%error, "reading the queue metrics from Redis failed");
                        Reply::text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("reading the queue metrics from Redis failed: {error}\n"),
                        )
                    }
                },
                Route::Health => Reply::health(
                    broker
                        .topics()
                        .await
                        .map(drop)
                        .map_err(|e| format!("Redis does not answer: {e}")),
                ),
            }
        })
    });
    log_listening(args.listen);
    tokio::select! {
        () = http::serve(listener, handler) => {}
        () = stop() => {}
    }
    tracing::info!("exporter stopped");
    Ok(())
}

fn log_listening(addr: SocketAddr) {
    tracing::info!(%addr, "serving queue-wide metrics on /metrics and /healthz");
}

/// SIGINT or, on Unix, SIGTERM.
pub(super) async fn stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
