//! `health`: queue health findings, exit 3 when there are any.

use rmq::broker::HealthOptions;
use rmq::Client;

use super::CliError;
use crate::cli::HealthArgs;

pub(crate) async fn check(client: &Client, args: HealthArgs) -> Result<(), CliError> {
    let broker = super::broker(client);
    let mut options = HealthOptions::default();
    options.topics = if args.topics.is_empty() {
        super::all_topics(broker).await?
    } else {
        args.topics
    };
    options.stuck_after = args.stuck_after;
    options.max_pending_age = args.max_age.0;
    options.max_delayed_lateness = args.max_late.0;
    options.max_pending = args.max_pending.0;
    options.max_dead = args.max_dead.0;
    options.dead_window = args.dead_window;
    options.require_worker = !args.allow_no_worker;
    if options.topics.is_empty() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"topics": [], "workers": 0, "findings": []})
            );
        } else {
            println!("healthy: no topics yet");
        }
        return Ok(());
    }
    let report = broker.health_report(&options).await?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).expect("health report serializes");
        println!("{json}");
    } else if report.is_healthy() {
        println!(
            "healthy: {} topic(s), {} live worker(s)",
            report.topics.len(),
            report.workers
        );
    } else {
        for finding in &report.findings {
            println!("{finding}");
        }
    }
    if report.is_healthy() {
        Ok(())
    } else {
        Err(CliError::Unhealthy(report.findings.len()))
    }
}
