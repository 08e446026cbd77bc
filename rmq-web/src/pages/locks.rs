//! `/locks`: the unique locks of every topic that a transition releases
//! (every mode but `window`, whose locks only expire): key, holding job,
//! mode and time left. Read-only: `worker unique clear` clears one.

use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use rmq::broker::LockInfo;

use super::{all_topics, per_topic};
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav, Part};

const COLUMNS: [(&str, &str); 5] = [
    ("Topic", "name"),
    ("Key", "name"),
    ("Held by", "name"),
    ("Mode", "mid"),
    ("Expires in", "num"),
];

/// `GET /locks`.
pub(crate) async fn show(ctx: Ctx, Query(part): Query<Part>) -> Response {
    let (table, failed) = live(&ctx).await;
    if part.live() {
        return respond(table, failed);
    }
    let href = format!("{}?part=live", ctx.href("/locks"));
    let content = html! {
        div #locks hx-get=(href) hx-trigger="every 5s" hx-swap="innerHTML" {
            (table)
        }
    };
    respond(page(&ctx, Nav::Locks, "Unique locks", content), failed)
}

/// The table of every topic's locks, and whether reading failed.
async fn live(ctx: &Ctx) -> (Markup, bool) {
    match load(ctx).await {
        Ok((locks, left_out)) => (table(ctx, &locks, &left_out), false),
        Err(error) => (error_banner(&error), true),
    }
}

async fn load(ctx: &Ctx) -> Result<(Vec<(String, LockInfo)>, Vec<String>), String> {
    let broker = ctx.state.broker()?;
    let topics = all_topics(broker).await?;
    let (found, left_out) = per_topic(&topics, |t| broker.unique_locks(t)).await?;
    let locks = topics
        .iter()
        .zip(found)
        .flat_map(|(topic, locks)| locks.into_iter().map(|lock| (topic.clone(), lock)))
        .collect();
    Ok((locks, left_out))
}

fn table(ctx: &Ctx, locks: &[(String, LockInfo)], left_out: &[String]) -> Markup {
    html! {
        @for problem in left_out {
            p.banner.warn { (problem) }
        }
        div.table-wrap {
            table.data.locks {
                thead {
                    tr {
                        @for (label, class) in COLUMNS {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody {
                    @if locks.is_empty() {
                        tr { td.empty colspan=(COLUMNS.len()) {
                            "No unique locks held: a task declared " code { "unique" }
                            " takes one per key while its job is queued or runs."
                        } }
                    }
                    @for (topic, lock) in locks {
                        tr data-lock=(lock.key) data-topic=(topic) {
                            td.name { a href=(ctx.href(&format!("/topics/{}", segment(topic)))) { (topic) } }
                            td.name.mono title=(lock.key) { (lock.key) }
                            td.name.mono {
                                @match &lock.job {
                                    Some(job) => {
                                        a href=(ctx.href(&format!("/search?mode=id&topic={}&q={}", segment(topic), segment(job.as_str())))) { (job) }
                                    }
                                    None => span.muted { "expired" },
                                }
                            }
                            td.mid { @match lock.mode { Some(mode) => (mode.as_str()), None => span.muted { "-" } } }
                            td.num {
                                @match lock.ttl_ms {
                                    Some(ms) => (format::duration_ms(ms)),
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
