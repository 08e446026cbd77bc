//! `/tasks`: the tasks linked into the serving binary, with their
//! policies: retries, timeouts, limits (rate, concurrency, rate key),
//! uniqueness and cron schedule; then the event types and the topics that
//! subscribe to each, and a batch lookup (see [`super::batches`]).

use std::time::Duration;

use axum::response::Response;
use maud::{html, Markup};
use rmq::{Backoff, Registry, TaskPolicy};

use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav};

const COLUMNS: [(&str, &str); 11] = [
    ("Topic", "name"),
    ("Function", "wide"),
    ("Payload", "wide"),
    ("Priority", "num"),
    ("Retries", "num"),
    ("Retry delays", "mid"),
    ("Timeout", "num"),
    ("TTL", "num"),
    ("Limits", "mid"),
    ("Unique", "mid"),
    ("Cron", "mid"),
];

pub(crate) async fn show(ctx: Ctx) -> Response {
    let (content, failed) = match Registry::global() {
        Ok(registry) => (
            html! {
                (table(registry))
                (events(&ctx, rmq::event::events()))
                (super::batches::lookup(&ctx, ""))
            },
            false,
        ),
        Err(error) => (error_banner(&error.to_string()), true),
    };
    respond(page(&ctx, Nav::Tasks, "Tasks", content), failed)
}

/// The table of `registry`'s tasks, or a note that there are none.
pub(crate) fn table(registry: &Registry) -> Markup {
    if registry.is_empty() {
        return html! {
            p.banner.warn {
                "No tasks linked into this binary: it can show the queues, but not the tasks' \
                 policies. A task crate that the binary never names is dropped by the linker: \
                 name it once, e.g. " code { "use my_tasks as _;" } "."
            }
        };
    }
    let default = |d: Option<Duration>| d.map_or("default".to_owned(), human);
    html! {
        div.table-wrap {
            table.data.tasks {
                thead {
                    tr {
                        @for (label, class) in COLUMNS {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody {
                    @for task in registry.tasks() {
                        @let policy = &task.policy;
                        @let fields = task.fields.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>().join(", ");
                        @let payload = format!("{} {{ {fields} }}", task.payload_type);
                        tr data-topic=(task.topic) {
                            td.name title=(task.topic) { (task.topic) }
                            td.wide.mono title=(task.qualified_name()) { (task.qualified_name()) }
                            td.wide.mono.wrap { (payload) }
                            td.num { (policy.priority) }
                            td.num { (policy.retries.map_or("default".to_owned(), |r| r.to_string())) }
                            td.mid { (backoff(policy.backoff)) }
                            td.num { (default(policy.timeout)) }
                            td.num { (default(policy.ttl)) }
                            td.mid.limits { (limits(policy)) }
                            td.mid.unique { (unique(policy)) }
                            td.mid.cron {
                                @match policy.cron {
                                    Some(cron) => {
                                        code { (cron.expression) }
                                        " " span.muted { (cron.tz) " · overlap " (cron.overlap.as_str()) }
                                    }
                                    None => span.muted { "-" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The event types and their subscribers' topics, or nothing when there
/// are none.
pub(crate) fn events(ctx: &Ctx, events: &[rmq::event::EventInfo]) -> Markup {
    if events.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Events" }
        div.table-wrap {
            table.data.events {
                thead {
                    tr {
                        th.name scope="col" { "Event" }
                        th.wide scope="col" { "Fields" }
                        th.wide scope="col" { "Subscribers" }
                    }
                }
                tbody {
                    @for event in events {
                        @let fields = event.descriptor.map_or_else(
                            || "-".to_owned(),
                            |d| d.fields.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>().join(", "),
                        );
                        tr data-event=(event.name) {
                            td.name.mono title=(event.name) { (event.name) }
                            td.wide.mono.wrap { (fields) }
                            td.wide {
                                @if event.subscribers.is_empty() {
                                    span.muted { "none: a publish enqueues nothing" }
                                }
                                @for (n, task) in event.subscribers.iter().enumerate() {
                                    @if n > 0 { ", " }
                                    a href=(ctx.href(&format!("/topics/{}", crate::base::segment(task.topic)))) { (task.topic) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `50/s, concurrency 5, per customer_id`, or `-`.
fn limits(policy: &TaskPolicy) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = policy.rate {
        parts.push(rate.to_string());
    }
    if let Some(n) = policy.concurrency {
        parts.push(format!("concurrency {n}"));
    }
    if let Some(key) = policy.rate_key {
        parts.push(format!("per {key}"));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `until_completed 1h`, with the key's fields, or `-`.
fn unique(policy: &TaskPolicy) -> String {
    let Some(unique) = policy.unique else {
        return "-".to_owned();
    };
    let mut text = format!("{} {}", unique.mode.as_str(), human(unique.ttl));
    if let Some(fields) = unique.fields {
        text.push_str(&format!(" on {}", fields.join(", ")));
    }
    text
}

fn human(d: Duration) -> String {
    format::duration_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `1s, 5s`, `exp 1s..10m` or `default`.
fn backoff(backoff: Option<Backoff>) -> String {
    match backoff {
        None => "default".to_owned(),
        Some(Backoff::Fixed(delays)) => delays
            .iter()
            .map(|d| human(*d))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Backoff::Exponential { base, max }) => format!("exp {}..{}", human(base), human(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_when_no_task_is_linked() {
        let empty = Registry::from_descriptors([]).unwrap();
        assert!(table(&empty)
            .into_string()
            .contains("No tasks linked into this binary"));
    }
}
