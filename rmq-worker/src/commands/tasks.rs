//! `tasks`: what this binary can run.

use rmq::{Backoff, Error, Registry};

pub(crate) fn list() -> Result<(), Error> {
    let registry = Registry::global()?;
    if registry.is_empty() {
        println!(
            "no tasks are linked into this binary (see `rmq::registry` on linking task crates)"
        );
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:<8} {:<20} {:<10} {:<10} {:<24} {:<28} payload",
        "topic", "priority", "retries", "retry delays", "timeout", "ttl", "limits", "function"
    );
    let or_default = |d: Option<std::time::Duration>| {
        d.map_or("default".to_owned(), |d| {
            humantime::format_duration(d).to_string()
        })
    };
    for task in registry.tasks() {
        let policy = &task.policy;
        let fields: Vec<String> = task
            .fields
            .iter()
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        println!(
            "{:<24} {:<8} {:<8} {:<20} {:<10} {:<10} {:<24} {:<28} {} {{ {} }}",
            task.topic,
            policy.priority,
            policy
                .retries
                .map_or("default".to_owned(), |r| r.to_string()),
            backoff(policy.backoff),
            or_default(policy.timeout),
            or_default(policy.ttl),
            super::limits(policy),
            task.qualified_name(),
            task.payload_type,
            fields.join(", ")
        );
        if let Some(keep) = policy.keep_result {
            println!(
                "{:<24} keeps results for {} (`job {} <id>` shows one)",
                "",
                humantime::format_duration(keep),
                task.topic
            );
        }
        if let Some(cron) = policy.cron {
            println!(
                "{:<24} cron \"{}\" tz {} overlap {} catch-up {}{}",
                "",
                cron.expression,
                cron.tz,
                cron.overlap.as_str(),
                cron.catch_up,
                cron.payload
                    .map_or_else(String::new, |json| format!(" payload {json}"))
            );
        }
    }
    Ok(())
}

/// `1s,5s`, `exp:1s..10m` or `default` (one column, no spaces).
fn backoff(backoff: Option<Backoff>) -> String {
    match backoff {
        None => "default".to_owned(),
        Some(Backoff::Fixed(delays)) => delays
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect::<Vec<_>>()
            .join(","),
        Some(Backoff::Exponential { base, max }) => format!(
            "exp:{}..{}",
            humantime::format_duration(base),
            humantime::format_duration(max)
        ),
    }
}
