//! `run`: the worker.

use std::time::Duration;

use rmq::{Client, Error, Worker};

use crate::cli::{Global, RunArgs};
use crate::Configure;

/// Connects (retrying while Redis is unreachable), then runs the worker until
/// SIGINT or SIGTERM.
pub(crate) async fn run(global: &Global, args: RunArgs, configure: Configure) -> Result<(), Error> {
    let mut config = super::config(global)?;
    if let Some(concurrency) = args.concurrency {
        config.max_workers = concurrency;
    }
    config.validate()?;
    let client = connect_with_retry(config).await?;
    let mut builder = Worker::builder(client);
    if !args.topics.is_empty() {
        builder = builder.topics(args.topics);
    }
    configure(builder).build()?.run().await
}

async fn connect_with_retry(config: rmq::Config) -> Result<Client, Error> {
    let mut delay = Duration::from_millis(250);
    loop {
        match Client::connect(config.clone()).await {
            Err(error @ (Error::Connect { .. } | Error::Pool { .. } | Error::Redis { .. })) => {
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
