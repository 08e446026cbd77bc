//! `dlq list|show|retry|purge`.

use rmq::broker::DeadJob;
use rmq::{Client, Error};

use super::{one_line, timestamp};
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
            let entries = broker.dead_letters(&topic, offset, limit).await?;
            if entries.is_empty() {
                println!("the dead-letter queue of `{topic}` is empty");
            }
            for entry in entries {
                match entry {
                    Ok(job) => println!(
                        "{:<16} attempt={:<3} died={} error={}",
                        job.envelope.id(),
                        job.envelope.attempt(),
                        timestamp(job.died_at_ms),
                        one_line(&job.error)
                    ),
                    Err(unreadable) => println!("{unreadable}"),
                }
            }
        }
        DlqCommand::Show { topic, id } => {
            let job = broker.dead_letter(&topic, &id).await?;
            print_job(&topic, &job);
        }
        DlqCommand::Retry { topic, ids, all } => {
            if all {
                let retried = broker.retry_all_dead(&topic).await?;
                println!(
                    "re-enqueued {} job(s) of `{topic}`; skipped {} unreadable entr{} and {} job(s) whose id a queued or running job holds{}",
                    retried.moved,
                    retried.unreadable,
                    if retried.unreadable == 1 { "y" } else { "ies" },
                    retried.busy.len(),
                    super::id_list(&retried.busy),
                );
            } else {
                for id in &ids {
                    broker.retry_dead(&topic, id).await?;
                }
                println!("re-enqueued {} job(s) of `{topic}`", ids.len());
            }
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
    println!("payload:     {}", super::payload_json(envelope.payload()));
}
