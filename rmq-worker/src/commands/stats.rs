//! `stats`: depths, counters and health measurements per topic.

use std::time::Duration;

use rmq::{Client, Error};

use crate::cli::StatsArgs;

pub(crate) async fn show(client: &Client, args: StatsArgs) -> Result<(), Error> {
    let broker = super::broker(client);
    let topics = if args.topics.is_empty() {
        super::all_topics(broker).await?
    } else {
        args.topics
    };
    let mut all = Vec::with_capacity(topics.len());
    let mut health = Vec::with_capacity(topics.len());
    let workers = broker.workers().await?;
    // A topic whose keys another program broke is reported and skipped; the
    // others are shown, and the command then fails with its error.
    let mut broken = None;
    for topic in &topics {
        let measured = async {
            let stats = broker.stats(topic).await?;
            let topic_health = broker.topic_health(topic, &workers, DEAD_WINDOW).await?;
            Ok::<_, Error>((stats, topic_health))
        };
        match measured.await {
            Ok((stats, topic_health)) => {
                all.push(stats);
                health.push(topic_health);
            }
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                eprintln!("warning: topic `{topic}` left out: {error}");
                broken.get_or_insert(error);
            }
        }
    }
    for s in &all {
        if !s.skipped_fields.is_empty() {
            let key = &broker.keys(&s.topic).stats;
            eprintln!(
                "warning: topic `{}`: field(s) {} of `{key}` are not integers; left out (counted as 0)",
                s.topic,
                s.skipped_fields
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    if args.json {
        // A topic's line: the counters, and the health measurements under
        // `health`.
        let rows: Vec<serde_json::Value> = all
            .iter()
            .zip(&health)
            .map(|(stats, health)| {
                let mut row = serde_json::to_value(stats).expect("stats serialize");
                row["health"] = serde_json::to_value(health).expect("health serializes");
                row
            })
            .collect();
        let json = serde_json::to_string_pretty(&rows).expect("stats serialize");
        println!("{json}");
        return broken.map_or(Ok(()), Err);
    }
    if all.is_empty() && broken.is_none() {
        println!("no topics yet: nothing has been enqueued or served with this prefix");
        return Ok(());
    }
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>10} {:>8} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9} {:>7} {:>7} {:>7} {:<20} {:<9}",
        "topic",
        "high",
        "normal",
        "low",
        "processing",
        "delayed",
        "dead",
        "errors",
        "completed",
        "failed",
        "expired",
        "per_min",
        "avg_ms",
        "p99_ms",
        "oldest_s",
        "late_s",
        "idle_s",
        "workers",
        "dead_5m",
        "state",
        "limits",
        "throttled"
    );
    // Limits are declared on the tasks: shown for the topics linked here.
    let registry = rmq::Registry::global().ok();
    for (s, h) in all.iter().zip(&health) {
        println!(
            "{:<24} {:>7} {:>7} {:>7} {:>10} {:>8} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9.3} {:>9.3} {:>9} {:>8} {:>9} {:>7} {:>7} {:>7} {:<20} {:<9}",
            s.topic,
            s.pending[0],
            s.pending[1] + s.keyed,
            s.pending[2],
            s.processing,
            s.delayed,
            s.dead,
            s.parse_errors,
            s.completed,
            s.failed,
            s.expired,
            s.completed_last_minute,
            s.processing_us[0] as f64 / 1000.0,
            s.processing_us[2] as f64 / 1000.0,
            super::secs(h.oldest_pending()),
            super::secs(h.delayed_late_ms.map(Duration::from_millis)),
            super::secs(h.since_completion()),
            h.workers,
            h.dead_in_window,
            if s.paused { "paused" } else { "running" },
            registry
                .as_ref()
                .and_then(|r| r.get(&s.topic))
                .map_or_else(|| "?".to_owned(), |task| super::limits(&task.policy)),
            s.throttled_now.map_or("-", |limit| limit.as_str()),
        );
    }
    broken.map_or(Ok(()), Err)
}

/// The dead-letter window of the `dead_5m` column.
const DEAD_WINDOW: Duration = Duration::from_secs(300);
