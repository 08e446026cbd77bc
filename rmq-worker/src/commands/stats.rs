//! `stats`: depths and counters per topic.

use rmq::{Client, Error, Registry};

use crate::cli::StatsArgs;

pub(crate) async fn show(client: &Client, args: StatsArgs) -> Result<(), Error> {
    let broker = super::broker(client);
    let topics = if args.topics.is_empty() {
        let mut topics = broker.topics().await?;
        if let Ok(registry) = Registry::global() {
            topics.extend(registry.topics().map(str::to_owned));
        }
        topics.sort();
        topics.dedup();
        topics
    } else {
        args.topics
    };
    let mut all = Vec::with_capacity(topics.len());
    for topic in &topics {
        all.push(broker.stats(topic).await?);
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
        let json = serde_json::to_string_pretty(&all).expect("stats serialize");
        println!("{json}");
        return Ok(());
    }
    if all.is_empty() {
        println!("no topics yet: nothing has been enqueued or served with this prefix");
        return Ok(());
    }
    println!(
        "{:<24} {:>7} {:>7} {:>7} {:>10} {:>8} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9}",
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
        "p99_ms"
    );
    for s in &all {
        println!(
            "{:<24} {:>7} {:>7} {:>7} {:>10} {:>8} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>9.3} {:>9.3}",
            s.topic,
            s.pending[0],
            s.pending[1],
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
        );
    }
    Ok(())
}
