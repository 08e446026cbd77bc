//! `dlq list|show|retry|purge`.

use std::time::{Duration, UNIX_EPOCH};

use rmq::broker::DeadJob;
use rmq::{Client, Error};

use crate::cli::DlqCommand;

pub(crate) async fn execute(client: &Client, command: DlqCommand) -> Result<(), Error> {
    let broker = super::broker(client);
    let topic = match &command {
        DlqCommand::List { topic, .. }
        | DlqCommand::Show { topic, .. }
        | DlqCommand::Retry { topic, .. }
        | DlqCommand::Purge { topic } => topic,
    };
    super::known_topic(broker, topic).await?;
    match command {
        DlqCommand::List {
            topic,
            limit,
            offset,
        } => {
            let jobs = broker.dead_letters(&topic, offset, limit).await?;
            if jobs.is_empty() {
                println!("the dead-letter queue of `{topic}` is empty");
            }
            for job in jobs {
                println!(
                    "{:<16} attempt={:<3} died={} error={}",
                    job.envelope.id(),
                    job.envelope.attempt(),
                    timestamp(job.died_at_ms),
                    one_line(&job.error)
                );
            }
        }
        DlqCommand::Show { topic, id } => {
            let job = broker.dead_letter(&topic, &id).await?;
            print_job(&topic, &job);
        }
        DlqCommand::Retry { topic, ids, all } => {
            let retried = if all {
                broker.retry_all_dead(&topic).await?
            } else {
                for id in &ids {
                    broker.retry_dead(&topic, id).await?;
                }
                ids.len()
            };
            println!("re-enqueued {retried} job(s) of `{topic}`");
        }
        DlqCommand::Purge { topic } => {
            let purged = broker.purge_dead(&topic).await?;
            println!("deleted {purged} dead job(s) of `{topic}`");
        }
    }
    Ok(())
}

fn print_job(topic: &str, job: &DeadJob) {
    let envelope = &job.envelope;
    let payload = rmq::codec::to_json(envelope.payload())
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_else(|e| format!("<undecodable payload: {e}>"));
    println!("topic:       {topic}");
    println!("id:          {}", envelope.id());
    println!("priority:    {}", envelope.priority());
    println!(
        "attempt:     {} (the last; at most {} with retries = {})",
        envelope.attempt(),
        envelope.max_attempts(),
        envelope.max_retries()
    );
    println!("enqueued at: {}", timestamp(envelope.enqueued_at_ms()));
    println!("died at:     {}", timestamp(job.died_at_ms));
    println!("error:       {}", job.error);
    println!("payload:     {payload}");
}

fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}
