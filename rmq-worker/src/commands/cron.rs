//! `cron list|trigger|pause|resume`: the cron schedules kept in Redis.

use rmq::broker::{RunSpec, ScheduleInfo};
use rmq::{Client, CronClock, Error};

use crate::cli::CronCommand;

pub(crate) async fn execute(client: &Client, command: CronCommand) -> Result<(), Error> {
    let broker = super::broker(client);
    match command {
        CronCommand::List { topic, json } => {
            let topics = match topic {
                Some(topic) => {
                    super::known_topic(broker, &topic).await?;
                    vec![topic]
                }
                None => super::all_topics(broker).await?,
            };
            let mut schedules = Vec::new();
            for topic in &topics {
                schedules.extend(broker.schedules(topic).await?);
            }
            if json {
                for schedule in &schedules {
                    println!("{}", to_json(schedule));
                }
            } else if schedules.is_empty() {
                println!("no cron schedules");
            } else {
                let rows: Vec<Vec<String>> = schedules.iter().map(row).collect();
                super::print_table(
                    &[
                        "NAME",
                        "TOPIC",
                        "EXPRESSION",
                        "TZ",
                        "OVERLAP",
                        "CATCH-UP",
                        "NEXT",
                        "LAST",
                        "PAUSED",
                    ],
                    &rows,
                );
            }
        }
        CronCommand::Trigger { topic, name } => {
            let name = name.unwrap_or_else(|| topic.clone());
            let run = run_spec(client, &topic);
            let id = broker
                .trigger_schedule(&topic, &name, &run, CronClock::SERVER)
                .await?;
            println!("enqueued {id} on topic `{topic}`");
        }
        CronCommand::Pause { topic, name } => {
            let name = name.unwrap_or_else(|| topic.clone());
            if broker.pause_schedule(&topic, &name).await? {
                println!("paused schedule `{name}` of topic `{topic}`: its occurrences pass without runs until `cron resume`");
            } else {
                println!("schedule `{name}` of topic `{topic}` was already paused");
            }
        }
        CronCommand::Resume { topic, name } => {
            let name = name.unwrap_or_else(|| topic.clone());
            if broker.resume_schedule(&topic, &name).await? {
                println!("resumed schedule `{name}` of topic `{topic}`");
            } else {
                println!("schedule `{name}` of topic `{topic}` was not paused");
            }
        }
    }
    Ok(())
}

/// How a run of `topic` is enqueued: the linked task's policy, else the
/// configuration's defaults.
fn run_spec(client: &Client, topic: &str) -> RunSpec {
    let config = client.config();
    let policy = rmq::Registry::global()
        .ok()
        .and_then(|r| r.get(topic))
        .map(|d| d.policy)
        .unwrap_or_default();
    RunSpec {
        priority: policy.priority,
        ttl: policy.ttl.or(Some(config.message_ttl)),
        max_retries: policy.retries.unwrap_or(config.max_retries),
    }
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .map_or_else(|| "-".to_owned(), super::timestamp)
}

fn row(schedule: &ScheduleInfo) -> Vec<String> {
    let (expression, tz, overlap, catch_up) = match &schedule.spec {
        Some(spec) => (
            spec.expression.clone(),
            spec.tz.clone(),
            spec.overlap.as_str().to_owned(),
            spec.catch_up.to_string(),
        ),
        None => (
            "<unreadable>".to_owned(),
            "-".into(),
            "-".into(),
            "-".into(),
        ),
    };
    vec![
        schedule.name.clone(),
        schedule.topic.clone(),
        expression,
        tz,
        overlap,
        catch_up,
        time(schedule.next_ms),
        time(schedule.last_ms),
        if schedule.paused { "yes" } else { "no" }.to_owned(),
    ]
}

fn to_json(schedule: &ScheduleInfo) -> serde_json::Value {
    serde_json::json!({
        "name": schedule.name,
        "topic": schedule.topic,
        "spec": schedule.spec,
        "next_ms": schedule.next_ms,
        "last_ms": schedule.last_ms,
        "last_id": schedule.last_id,
        "paused": schedule.paused,
    })
}
