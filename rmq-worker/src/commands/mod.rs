//! One module per subcommand.

mod batch;
mod cron;
mod dlq;
mod enqueue;
mod events;
mod exporter;
mod health;
mod jobs;
mod parse_errors;
mod pause;
mod purge;
mod run;
mod search;
mod stats;
mod tasks;
mod unique;
#[cfg(feature = "web")]
mod web;
mod workers;

use std::time::{Duration, UNIX_EPOCH};

use rmq::{Client, Config, Error};

use crate::cli::{Command, CommandLine, Global};
use crate::Configure;

/// Why a command failed: an error of rmq, or input the command line could
/// not read.
#[derive(Debug)]
pub(crate) enum CliError {
    Rmq(Error),
    /// A file or standard input that could not be read (exit code 2).
    Input(String),
    /// `health` found something wrong (exit code 3); already printed.
    Unhealthy(usize),
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError::Rmq(error)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Rmq(error) => error.fmt(f),
            CliError::Input(message) => f.write_str(message),
            CliError::Unhealthy(findings) => write!(f, "unhealthy: {findings} finding(s)"),
        }
    }
}

pub(crate) async fn execute(cli: CommandLine, configure: Configure) -> Result<(), CliError> {
    match cli.command {
        Command::Run(args) => Ok(run::run(&cli.global, args, configure).await?),
        Command::Tasks => Ok(tasks::list()?),
        Command::Events => {
            events::list();
            Ok(())
        }
        Command::Batch { id } => batch::show(&connect(&cli.global).await?, &id).await,
        Command::Stats(args) => Ok(stats::show(&connect(&cli.global).await?, args).await?),
        Command::Dlq(command) => Ok(dlq::execute(&connect(&cli.global).await?, command).await?),
        Command::ParseErrors(command) => {
            Ok(parse_errors::execute(&connect(&cli.global).await?, command).await?)
        }
        Command::Enqueue(args) => enqueue::enqueue(&connect(&cli.global).await?, args).await,
        Command::Ps(args) => Ok(workers::ps(&connect(&cli.global).await?, args).await?),
        Command::Quiet { id } => Ok(workers::command(
            &connect(&cli.global).await?,
            &id,
            rmq::broker::WorkerCommand::Quiet,
        )
        .await?),
        Command::Stop { id } => Ok(workers::command(
            &connect(&cli.global).await?,
            &id,
            rmq::broker::WorkerCommand::Stop,
        )
        .await?),
        Command::Pause { topic } => Ok(pause::pause(&connect(&cli.global).await?, &topic).await?),
        Command::Resume { topic } => Ok(pause::resume(&connect(&cli.global).await?, &topic).await?),
        Command::Job { topic, id } => {
            Ok(jobs::show(&connect(&cli.global).await?, &topic, &id).await?)
        }
        Command::Chain { id } => Ok(jobs::chain(&connect(&cli.global).await?, &id).await?),
        Command::Cancel { topic, id } => {
            Ok(jobs::cancel(&connect(&cli.global).await?, &topic, &id).await?)
        }
        Command::Search(args) => Ok(search::search(&connect(&cli.global).await?, args).await?),
        Command::Purge { topic, state, yes } => {
            purge::purge(&connect(&cli.global).await?, &topic, state, yes).await
        }
        Command::Unique(command) => unique::execute(&connect(&cli.global).await?, command).await,
        Command::Cron(command) => Ok(cron::execute(&connect(&cli.global).await?, command).await?),
        Command::Health(args) => health::check(&connect(&cli.global).await?, args).await,
        Command::Exporter(args) => {
            let client = run::connect_with_retry(config(&cli.global)?).await?;
            Ok(exporter::serve(client, args).await?)
        }
        #[cfg(feature = "web")]
        Command::Web(args) => web::serve(&cli.global, args).await,
    }
}

/// The environment's configuration with the command line's overrides.
fn config(global: &Global) -> Result<Config, Error> {
    let mut config = Config::from_env()?;
    if let Some(url) = &global.redis_url {
        config.redis_url = url.clone();
    }
    if let Some(prefix) = &global.prefix {
        config.queue_prefix = prefix.clone();
    }
    Ok(config)
}

async fn connect(global: &Global) -> Result<Client, Error> {
    Client::connect(config(global)?).await
}

fn broker(client: &Client) -> &rmq::Broker {
    client
        .broker()
        .expect("Client::connect returns a Redis-backed client")
}

/// Fails with `UnknownTopic` unless `topic` is linked into this binary or
/// known to Redis (something was enqueued or served on it).
async fn known_topic(broker: &rmq::Broker, topic: &str) -> Result<(), Error> {
    let linked = rmq::Registry::global().is_ok_and(|r| r.get(topic).is_some());
    if linked || broker.topics().await?.iter().any(|t| t == topic) {
        Ok(())
    } else {
        Err(Error::UnknownTopic(topic.to_owned()))
    }
}

/// Known topics: those in Redis and those linked into this binary, sorted.
async fn all_topics(broker: &rmq::Broker) -> Result<Vec<String>, Error> {
    let mut topics = broker.topics().await?;
    if let Ok(registry) = rmq::Registry::global() {
        topics.extend(registry.topics().map(str::to_owned));
    }
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// Prints `rows` under `header`, columns left-aligned to their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Seconds with one decimal, `-` for none: table cells without spaces.
fn secs(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
}

/// A time (ms since the epoch) as RFC 3339, UTC.
fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The first line of `text`, cut at 100 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

/// A stored payload as pretty JSON, or why it does not decode.
fn payload_json(payload: &[u8]) -> String {
    rmq::codec::to_json(payload)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|e| format!("<undecodable payload: {e}>"))
}

/// `: a, b, c` for a list of ids (the first ten), or nothing.
fn id_list(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
    let more = ids.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(": {}{more}", shown.join(", "))
}

/// A task's flow limits in one column: `50/s`, `c=5`, `key=customer_id`
/// joined by commas, or `-`.
fn limits(policy: &rmq::TaskPolicy) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = policy.rate {
        parts.push(rate.to_string());
    }
    if let Some(n) = policy.concurrency {
        parts.push(format!("c={n}"));
    }
    if let Some(key) = policy.rate_key {
        parts.push(format!("key={key}"));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}
