//! `/topics`: one row per topic: depth per priority, delayed, processing,
//! dead, parse errors, the oldest pending job's age, completions in the
//! last minute, the p99 handler time, whether it is paused and whether a
//! limit (rate or concurrency) held a fetch back in the last seconds. Each
//! name
//! links to the topic's page (`/topics/{topic}`).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use rmq::broker::{TopicHealth, TopicStats};

use super::{all_topics, per_topic};
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav, Part};
use crate::state::Shared;

/// The table's columns: header and cell class. A new column is one entry
/// here and one cell in [`row`].
const COLUMNS: [(&str, &str); 13] = [
    ("Topic", "name"),
    ("High", "num"),
    ("Normal", "num"),
    ("Low", "num"),
    ("Delayed", "num"),
    ("Processing", "num"),
    ("Dead", "num"),
    ("Parse errors", "num"),
    ("Oldest pending", "num"),
    ("Done last min", "num"),
    ("p99", "num"),
    ("Paused", "num"),
    ("Throttled", "num"),
];

struct Topic {
    stats: TopicStats,
    health: Option<TopicHealth>,
}

async fn load(state: &Shared) -> Result<(Vec<Topic>, Vec<String>), String> {
    let broker = state.broker()?;
    let topics = all_topics(broker).await?;
    let workers = broker.workers().await.map_err(|e| e.to_string())?;
    let (stats, mut left_out) = per_topic(&topics, |t| broker.stats(t)).await?;
    let (health, more) = per_topic(&topics, |t| {
        broker.topic_health(t, &workers, Duration::from_secs(300))
    })
    .await?;
    left_out.extend(more);
    // One line per reason, though both reads of a topic may fail alike.
    left_out.sort();
    left_out.dedup();
    let mut health: HashMap<String, TopicHealth> =
        health.into_iter().map(|h| (h.topic.clone(), h)).collect();
    let rows = stats
        .into_iter()
        .map(|stats| {
            let health = health.remove(&stats.topic);
            Topic { stats, health }
        })
        .collect();
    Ok((rows, left_out))
}

pub(crate) async fn show(ctx: Ctx, Query(part): Query<Part>) -> Response {
    let (rows, failed) = match load(&ctx.state).await {
        Ok((topics, left_out)) => (rows(&ctx, &topics, &left_out), false),
        Err(error) => (error_row(&error), true),
    };
    if part.live() {
        return respond(rows, failed);
    }
    let live = format!("{}?part=live", ctx.href("/topics"));
    let content = html! {
        div.table-wrap {
            table.data.topics {
                thead {
                    tr {
                        @for (label, class) in COLUMNS {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody #topic-rows hx-get=(live) hx-trigger="every 2s" hx-swap="innerHTML" {
                    (rows)
                }
            }
        }
    };
    respond(page(&ctx, Nav::Topics, "Topics", content), failed)
}

fn rows(ctx: &Ctx, topics: &[Topic], left_out: &[String]) -> Markup {
    html! {
        @for problem in left_out {
            tr { td.error colspan=(COLUMNS.len()) { (problem) } }
        }
        @if topics.is_empty() {
            tr { td.empty colspan=(COLUMNS.len()) { "No topics yet: nothing was enqueued and no task is linked into this binary." } }
        }
        @for topic in topics {
            (row(ctx, topic))
        }
    }
}

fn row(ctx: &Ctx, topic: &Topic) -> Markup {
    let s = &topic.stats;
    let oldest = topic
        .health
        .as_ref()
        .and_then(TopicHealth::oldest_pending)
        .map_or_else(
            || "-".to_owned(),
            |age| format::duration_ms(age.as_millis() as u64),
        );
    let href = ctx.href(&format!("/topics/{}", segment(&s.topic)));
    html! {
        tr data-topic=(s.topic) {
            td.name title=(s.topic) { a href=(href) { (s.topic) } }
            td.num { (s.pending[0]) }
            td.num { (s.pending[1] + s.keyed) }
            td.num { (s.pending[2]) }
            td.num { (s.delayed) }
            td.num { (s.processing) }
            td.num.bad[s.dead > 0] { (s.dead) }
            td.num.bad[s.parse_errors > 0] { (s.parse_errors) }
            td.num { (oldest) }
            td.num { (s.completed_last_minute) }
            td.num { (format::micros(s.processing_us[2])) }
            td.num {
                @if s.paused { span.badge.paused { "paused" } } @else { span.muted { "-" } }
            }
            td.num.throttled title=(throttle_counts(s)) {
                @match s.throttled_now {
                    Some(limit) => span.badge.throttled { "by " (limit.as_str()) },
                    None => span.muted { "-" },
                }
            }
        }
    }
}

/// How often each limit held a fetch back, ever, and the jobs a handler
/// delayed as rate limited.
fn throttle_counts(s: &TopicStats) -> String {
    format!(
        "held back by the rate {} times, by the concurrency limit {} times; {} jobs delayed as rate limited",
        s.throttled_rate, s.throttled_concurrency, s.rate_limited
    )
}

fn error_row(message: &str) -> Markup {
    html! {
        tr { td.error colspan=(COLUMNS.len()) { (error_banner(message)) } }
    }
}
