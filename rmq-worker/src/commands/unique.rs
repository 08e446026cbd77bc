//! `unique list|show|clear`: the unique locks of a topic.

use rmq::{Client, Error, JobOptions};

use super::CliError;
use crate::cli::{UniqueCommand, UniqueKeyArgs};

pub(crate) async fn execute(client: &Client, command: UniqueCommand) -> Result<(), CliError> {
    let broker = super::broker(client);
    match command {
        UniqueCommand::List { topic } => {
            super::known_topic(broker, &topic).await?;
            let locks = broker.unique_locks(&topic).await?;
            if locks.is_empty() {
                println!("no job of topic `{topic}` holds a unique lock released by a transition (window locks only expire)");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = locks
                .iter()
                .map(|lock| {
                    vec![
                        lock.key.clone(),
                        lock.mode.map_or("-".to_owned(), |m| m.to_string()),
                        lock.job
                            .as_ref()
                            .map_or("(expired or taken)".to_owned(), |j| j.to_string()),
                        ttl(lock.ttl_ms),
                    ]
                })
                .collect();
            super::print_table(&["key", "mode", "job", "ttl left"], &rows);
        }
        UniqueCommand::Show(args) => {
            let (topic, key) = resolve(client, &args)?;
            let lock = broker.unique_lock(&topic, &key).await?;
            match lock.job {
                Some(job) => println!(
                    "key {key}: held by job {job}, mode {}, {} left",
                    lock.mode.map_or("-".to_owned(), |m| m.to_string()),
                    ttl(lock.ttl_ms)
                ),
                None => println!("key {key}: free (the next enqueue makes a new job)"),
            }
        }
        UniqueCommand::Clear(args) => {
            let (topic, key) = resolve(client, &args)?;
            if broker.clear_unique_lock(&topic, &key).await? {
                println!("cleared the lock {key} of topic `{topic}`: the next enqueue of the key makes a new job");
            } else {
                println!("no lock {key} on topic `{topic}`");
            }
        }
    }
    Ok(())
}

/// The topic and the lock key: given, or made of a payload as the task's
/// `unique` policy makes it.
fn resolve(client: &Client, args: &UniqueKeyArgs) -> Result<(String, String), CliError> {
    if let Some(key) = &args.key {
        return Ok((args.topic.clone(), rmq::unique::explicit_key(key)));
    }
    let json = args.payload.as_deref().unwrap_or_default();
    let registry = rmq::Registry::global()?;
    let descriptor = registry
        .get(&args.topic)
        .ok_or_else(|| Error::UnknownTopic(args.topic.clone()))?;
    let payload = (descriptor.encode_json)(json).map_err(|reason| Error::Payload {
        topic: args.topic.clone(),
        reason,
    })?;
    let lock = client
        .unique_lock(descriptor, &JobOptions::default(), &payload)?
        .ok_or_else(|| {
            CliError::Input(format!(
                "task `{}` is not unique: give the lock's --key",
                args.topic
            ))
        })?;
    Ok((args.topic.clone(), lock.key))
}

fn ttl(ms: Option<u64>) -> String {
    ms.map_or("no ttl".to_owned(), |ms| {
        humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
    })
}
