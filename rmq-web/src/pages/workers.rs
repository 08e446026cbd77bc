//! `/workers`: the live workers from their heartbeats, and the `quiet` /
//! `stop` actions (`POST /workers/{id}/quiet`, `.../stop`), sent through
//! Redis like `worker quiet` / `worker stop`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use rmq::broker::{WorkerCommand, WorkerInfo};
use rmq::Error;

use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page_with_flash, respond, Ctx, Nav, Part};
use crate::refuse::refuse;

/// Headers and cell classes; the actions column only when actions are
/// allowed.
const COLUMNS: [(&str, &str); 9] = [
    ("Worker", "wide"),
    ("Host", "mid"),
    ("PID", "num"),
    ("Version", "num"),
    ("Topics", "mid"),
    ("Busy", "num"),
    ("Running now", "wide"),
    ("Uptime", "num"),
    ("State", "num"),
];

fn columns(ctx: &Ctx) -> usize {
    COLUMNS.len() + usize::from(!ctx.read_only())
}

pub(crate) async fn show(ctx: Ctx, Query(part): Query<Part>) -> Response {
    render(&ctx, part.live(), None).await
}

async fn render(ctx: &Ctx, live_only: bool, flash: Option<Markup>) -> Response {
    let read = match ctx.state.broker() {
        Ok(broker) => broker.workers().await.map_err(|e| e.to_string()),
        Err(error) => Err(error),
    };
    let (rows, failed) = match read {
        Ok(workers) => (rows(ctx, &workers), false),
        Err(error) => (
            html! { tr { td.error colspan=(columns(ctx)) { (error_banner(&error)) } } },
            true,
        ),
    };
    if live_only {
        return respond(rows, failed);
    }
    let live = format!("{}?part=live", ctx.href("/workers"));
    let content = html! {
        div.table-wrap {
            table.data.workers {
                thead {
                    tr {
                        @for (label, class) in COLUMNS {
                            th class=(class) scope="col" { (label) }
                        }
                        @if !ctx.read_only() {
                            th.mid scope="col" { "Actions" }
                        }
                    }
                }
                tbody #worker-rows hx-get=(live) hx-trigger="every 2s" hx-swap="innerHTML" {
                    (rows)
                }
            }
        }
    };
    respond(
        page_with_flash(ctx, Nav::Workers, "Workers", flash, content),
        failed,
    )
}

fn rows(ctx: &Ctx, workers: &[WorkerInfo]) -> Markup {
    html! {
        @if workers.is_empty() {
            tr { td.empty colspan=(columns(ctx)) { "No live worker: none has sent a heartbeat lately." } }
        }
        @for worker in workers {
            (row(ctx, worker))
        }
    }
}

fn row(ctx: &Ctx, w: &WorkerInfo) -> Markup {
    let uptime = w.last_beat_ms.saturating_sub(w.started_at_ms);
    let topics = w.topics.join(", ");
    html! {
        tr data-worker=(w.id) {
            td.wide.mono title=(w.id) { (w.id) }
            td.mid title=(w.host) { (w.host) }
            td.num { (w.pid) }
            td.num { (w.version) }
            td.mid title=(topics) { (topics) }
            td.num { (w.busy) "/" (w.concurrency) }
            td.wide.wrap {
                @if w.jobs.is_empty() {
                    span.muted { "-" }
                } @else {
                    ul.jobs {
                        @for job in &w.jobs {
                            li.mono {
                                (job.topic) "/" (job.id)
                                span.muted { " " (format::duration_ms(w.last_beat_ms.saturating_sub(job.started_at_ms))) }
                            }
                        }
                    }
                }
            }
            td.num { (format::duration_ms(uptime)) }
            td.num { span class={ "state " (w.state) } { (w.state) } }
            @if !ctx.read_only() {
                td.mid { (actions(ctx, w)) }
            }
        }
    }
}

fn actions(ctx: &Ctx, w: &WorkerInfo) -> Markup {
    let base = ctx.href(&format!("/workers/{}", segment(&w.id)));
    html! {
        @for (command, label, class, confirm) in [
            ("quiet", "Quiet", "", format!("Quiet worker {}? It finishes its jobs and fetches no more.", w.id)),
            ("stop", "Stop", "danger", format!("Stop worker {}? It shuts down after its running jobs.", w.id)),
        ] {
            @let action = format!("{base}/{command}");
            form.inline method="post" action=(action) hx-post=(action) hx-target="#flash"
                hx-swap="innerHTML" hx-confirm=(confirm) {
                (ctx.csrf_field())
                button type="submit" class=(class) { (label) }
            }
            " "
        }
    }
}

/// `POST /workers/{id}/{quiet|stop}`.
pub(crate) async fn command(ctx: Ctx, Path((id, command)): Path<(String, String)>) -> Response {
    let command = match command.as_str() {
        "quiet" => WorkerCommand::Quiet,
        "stop" => WorkerCommand::Stop,
        _ => {
            return refuse(
                StatusCode::NOT_FOUND,
                "no such worker command: use quiet or stop",
            )
        }
    };
    let name = match command {
        WorkerCommand::Quiet => "quiet",
        WorkerCommand::Stop => "stop",
    };
    let result = match ctx.state.broker() {
        Ok(broker) => broker.command_worker(&id, command).await,
        Err(error) => return refuse(StatusCode::SERVICE_UNAVAILABLE, error),
    };
    let (status, flash) = match result {
        Ok(()) => {
            tracing::info!(worker = %id, command = name, "worker command sent from the dashboard");
            (
                StatusCode::OK,
                html! { p.flash.ok role="status" { "sent " (name) " to worker " (id) } },
            )
        }
        Err(Error::UnknownWorker { .. }) => (
            StatusCode::NOT_FOUND,
            html! { p.flash.error role="alert" { "no live worker " (id) " (it may have exited)" } },
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            html! { p.flash.error role="alert" { (error.to_string()) } },
        ),
    };
    if ctx.htmx {
        return (status, Html(flash.into_string())).into_response();
    }
    let mut response = render(&ctx, false, Some(flash)).await;
    if status != StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}
