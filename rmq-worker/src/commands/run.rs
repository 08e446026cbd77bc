//! `run`: the worker.

use std::time::Duration;

use rmq::{Client, Error, Registry, Worker};

use crate::cli::{Global, RunArgs};
use crate::exporter::Endpoint;
use crate::Configure;

/// Connects (retrying while Redis is unreachable, see
/// [`Error::is_transient`]), then runs the worker until SIGINT or SIGTERM.
pub(crate) async fn run(global: &Global, args: RunArgs, configure: Configure) -> Result<(), Error> {
    let mut config = super::config(global)?;
    if let Some(concurrency) = args.concurrency {
        config.max_workers = concurrency;
    }
    config.validate()?;
    let topics = selected_topics(args.topics)?;
    // Before the client and the worker: they register their metrics at start.
    let endpoint = match args.metrics_addr {
        Some(addr) => Some(Endpoint::start(addr).await?),
        None => None,
    };
    let client = connect_with_retry(config).await?;
    let mut builder = Worker::builder(client);
    if let Some(topics) = topics {
        builder = builder.topics(topics);
    }
    let worker = configure(builder).build()?;
    if let Some(endpoint) = &endpoint {
        endpoint.attach(worker.probe());
    }
    worker.run().await
}

/// The `--topics` selection, checked against the linked tasks before any
/// connection is made; `None` serves every task.
fn selected_topics(given: Vec<String>) -> Result<Option<Vec<String>>, Error> {
    if given.is_empty() {
        return Ok(None);
    }
    let topics: Vec<String> = given.into_iter().filter(|t| !t.trim().is_empty()).collect();
    if topics.is_empty() {
        return Err(Error::Config {
            option: "topics",
            rule:
                "must name at least one topic (comma-separated), or be left out to serve every task"
                    .to_owned(),
        });
    }
    if let Ok(registry) = Registry::global() {
        if let Some(unknown) = topics.iter().find(|t| registry.get(t).is_none()) {
            return Err(Error::UnknownTopic(unknown.clone()));
        }
    }
    Ok(Some(topics))
}

/// Retries only what may pass by itself (Redis unreachable, refusing
/// connections, timing out, loading); permission, authentication, TLS and
/// configuration errors stop at once.
pub(super) async fn connect_with_retry(config: rmq::Config) -> Result<Client, Error> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Client::connect(config.clone()).await {
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, retry_in = ?delay, "Redis is not reachable yet; retrying");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Err(error),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}
