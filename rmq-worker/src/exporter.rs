//! The Prometheus recorder of `run --metrics-addr`: installed before the
//! client and worker exist (they register their handles once, at start),
//! with histogram buckets for the `_seconds` metrics, and served with the
//! worker's `/healthz`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rmq::worker::Probe;

use crate::http::{self, Handler, Reply, Route};

/// How often histogram samples are folded in when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// A started metrics endpoint; the worker's probe is handed over once the
/// worker is built (until then `/healthz` answers 503 "starting").
pub(crate) struct Endpoint {
    probe: Arc<OnceLock<Probe>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Endpoint {
    /// Installs the recorder and serves `addr`. Fails on an address that
    /// cannot be bound or a recorder that is already installed.
    pub(crate) async fn start(addr: SocketAddr) -> Result<Endpoint, rmq::Error> {
        let listener = http::bind(addr).await?;
        let handle = install()?;
        let probe: Arc<OnceLock<Probe>> = Arc::default();
        let handler: Handler = {
            let probe = Arc::clone(&probe);
            let handle = handle.clone();
            Arc::new(move |route| {
                let reply = match route {
                    Route::Metrics => {
                        if let Some(probe) = probe.get() {
                            probe.refresh_gauges();
                        }
                        Reply::metrics(handle.render())
                    }
                    Route::Health => Reply::health(match probe.get() {
                        Some(probe) => probe.health(),
                        None => Err("the worker is connecting to Redis".to_owned()),
                    }),
                };
                Box::pin(async move { reply })
            })
        };
        tracing::info!(%addr, "serving /metrics and /healthz");
        let server = tokio::spawn(http::serve(listener, handler));
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
        Ok(Endpoint {
            probe,
            tasks: vec![server, upkeep],
        })
    }

    /// Hands over the built worker's probe.
    pub(crate) fn attach(&self, probe: Probe) {
        let _ = self.probe.set(probe);
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The Prometheus recorder as `worker run --metrics-addr` installs it:
/// [`Renderer::render`] writes everything rmq records in this process.
#[derive(Clone)]
pub struct Renderer {
    handle: PrometheusHandle,
}

impl Renderer {
    /// The text format of every metric: the recorder's, then the job
    /// histograms rmq keeps itself.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        text.push_str(&rmq::telemetry::render_job_histograms());
        text
    }

    /// Folds in recorded samples; call every few seconds when nothing
    /// scrapes (the endpoint of `worker run` does).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

/// Installs the Prometheus recorder as the global `metrics` recorder,
/// describes rmq's metrics, and has the workers built afterwards keep their
/// per-job histograms (handler time, wait) in rmq's own atomic buckets,
/// which cost a fraction of a recorder histogram per job; call before
/// building clients and workers.
pub fn install() -> Result<Renderer, rmq::Error> {
    let handle = PrometheusBuilder::new()
        .set_buckets(rmq::telemetry::DURATION_BUCKETS)
        .and_then(|builder| builder.install_recorder())
        .map_err(|e| rmq::Error::Config {
            option: "metrics address",
            rule: format!("cannot install the Prometheus recorder: {e}"),
        })?;
    rmq::telemetry::describe();
    rmq::telemetry::collect_job_histograms();
    Ok(Renderer { handle })
}
