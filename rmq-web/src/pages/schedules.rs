//! `/schedules`: the cron schedules kept in Redis, of every topic: name,
//! topic, expression, time zone, next and last fire, whether paused, and
//! pause / resume / trigger buttons (see [`crate::actions::schedules`]).
//! The table reloads after an action (`?part=live`).

use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use rmq::broker::ScheduleInfo;

use super::{all_topics, per_topic};
use crate::actions::schedules::Command;
use crate::actions::CHANGED;
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page_with_flash, respond, Ctx, Nav, Part};

const COLUMNS: [(&str, &str); 8] = [
    ("Name", "name"),
    ("Topic", "name"),
    ("Expression", "mid"),
    ("Time zone", "mid"),
    ("Next fire", "mid"),
    ("Last fire", "mid"),
    ("Paused", "num"),
    ("Actions", "mid"),
];

/// `GET /schedules`.
pub(crate) async fn show(ctx: Ctx, Query(part): Query<Part>) -> Response {
    let (table, failed) = live(&ctx).await;
    if part.live() {
        return respond(table, failed);
    }
    respond(render(&ctx, table, None), failed)
}

/// The whole page around `table`, with `flash` in the message area.
pub(crate) fn render(ctx: &Ctx, table: Markup, flash: Option<Markup>) -> Markup {
    let live = format!("{}?part=live", ctx.href("/schedules"));
    let content = html! {
        div #schedules hx-get=(live) hx-trigger={ (CHANGED) " from:body" } hx-swap="innerHTML" {
            (table)
        }
    };
    page_with_flash(ctx, Nav::Schedules, "Schedules", flash, content)
}

/// The table of every topic's schedules, and whether reading failed.
pub(crate) async fn live(ctx: &Ctx) -> (Markup, bool) {
    match load(ctx).await {
        Ok((schedules, left_out)) => (table(ctx, &schedules, &left_out), false),
        Err(error) => (error_banner(&error), true),
    }
}

async fn load(ctx: &Ctx) -> Result<(Vec<ScheduleInfo>, Vec<String>), String> {
    let broker = ctx.state.broker()?;
    let topics = all_topics(broker).await?;
    let (found, left_out) = per_topic(&topics, |t| broker.schedules(t)).await?;
    Ok((found.into_iter().flatten().collect(), left_out))
}

fn time(ms: Option<i64>, now: u64) -> Markup {
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => html! {
            (format::timestamp_ms(ms)) span.muted { " (" (format::relative_ms(ms, now)) ")" }
        },
        None => html! { span.muted { "-" } },
    }
}

fn table(ctx: &Ctx, schedules: &[ScheduleInfo], left_out: &[String]) -> Markup {
    let now = format::now_ms();
    let columns = if ctx.read_only() {
        &COLUMNS[..COLUMNS.len() - 1]
    } else {
        &COLUMNS[..]
    };
    html! {
        @for problem in left_out {
            p.banner.warn { (problem) }
        }
        div.table-wrap {
            table.data.schedules {
                thead {
                    tr {
                        @for (label, class) in columns {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody {
                    @if schedules.is_empty() {
                        tr { td.empty colspan=(columns.len()) {
                            "No cron schedules: a task with " code { "cron = \"...\"" }
                            " adds its schedule when a worker serving it starts."
                        } }
                    }
                    @for s in schedules {
                        tr data-schedule=(s.name) data-topic=(s.topic) {
                            td.name.mono title=(s.name) { (s.name) }
                            td.name { a href=(ctx.href(&format!("/topics/{}", segment(&s.topic)))) { (s.topic) } }
                            @match &s.spec {
                                Some(spec) => {
                                    td.mid.mono { (spec.expression) }
                                    td.mid { (spec.tz) }
                                }
                                None => {
                                    td.mid { span.bad { "unreadable" } }
                                    td.mid { "-" }
                                }
                            }
                            td.mid { (time(s.next_ms, now)) }
                            td.mid {
                                (time(s.last_ms, now))
                                @if let Some(id) = &s.last_id { br; span.mono.muted { (id) } }
                            }
                            td.num {
                                @if s.paused { span.badge.paused { "paused" } } @else { span.muted { "no" } }
                            }
                            @if !ctx.read_only() {
                                td.mid {
                                    @let command = if s.paused { Command::Resume } else { Command::Pause };
                                    (button(ctx, s, command)) " " (button(ctx, s, Command::Trigger))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn button(ctx: &Ctx, schedule: &ScheduleInfo, command: Command) -> Markup {
    let href = ctx.href(&format!("/schedules/{}", command.name()));
    html! {
        form.inline method="post" action=(href) hx-post=(href) hx-target="#flash"
            hx-swap="innerHTML" hx-confirm=(command.confirm(&schedule.topic, &schedule.name)) {
            (ctx.csrf_field())
            input type="hidden" name="topic" value=(schedule.topic);
            input type="hidden" name="name" value=(schedule.name);
            button type="submit" class={ (command.name()) "-schedule" } { (command.label()) }
        }
    }
}
