//! `/batches?id=<id>`: a batch's progress (children succeeded, dead,
//! cancelled and pending; the callback and whether it was enqueued), and
//! the lookup form the tasks page shows.

use axum::extract::Query;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav};

/// The query of `GET /batches`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Lookup {
    #[serde(default)]
    id: String,
}

/// `GET /batches`.
pub(crate) async fn show(ctx: Ctx, Query(lookup): Query<Lookup>) -> Response {
    let id = lookup.id.trim();
    let (result, failed) = if id.is_empty() {
        (html! {}, false)
    } else {
        match progress(&ctx, id).await {
            Ok(markup) => (markup, false),
            Err(error) => (error_banner(&error), true),
        }
    };
    let content = html! {
        (lookup_form(&ctx, id))
        (result)
    };
    respond(page(&ctx, Nav::Tasks, "Batch", content), failed)
}

/// The lookup form, headed, for the tasks page.
pub(crate) fn lookup(ctx: &Ctx, id: &str) -> Markup {
    html! {
        h2 { "Batches" }
        (lookup_form(ctx, id))
    }
}

fn lookup_form(ctx: &Ctx, id: &str) -> Markup {
    html! {
        form.batch-lookup method="get" action=(ctx.href("/batches")) {
            label for="batch-id" { "Batch id" }
            " "
            input #batch-id type="text" name="id" value=(id) required;
            " "
            button type="submit" { "Show progress" }
        }
    }
}

async fn progress(ctx: &Ctx, id: &str) -> Result<Markup, String> {
    let broker = ctx.state.broker()?;
    let Some(progress) = broker.batch(id).await.map_err(|e| e.to_string())? else {
        return Ok(html! {
            p.banner.warn {
                "No batch " code { (id) } ": it never existed, or its record expired \
                 (a week after its last child finished)."
            }
        });
    };
    let o = &progress.outcome;
    let finished = o.succeeded + o.dead + o.cancelled;
    let callback = match (&progress.callback, progress.fired) {
        (Some(topic), true) => format!("{topic}: enqueued"),
        (Some(topic), false) => format!("{topic}: fires when no child is pending"),
        (None, _) => "none".to_owned(),
    };
    Ok(html! {
        table.data.batch data-batch=(id) {
            tbody {
                tr { th scope="row" { "Total" } td.num { (o.total) } }
                tr { th scope="row" { "Succeeded" } td.num { (o.succeeded) } }
                tr { th scope="row" { "Dead" } td.num { (o.dead) } }
                tr { th scope="row" { "Cancelled" } td.num { (o.cancelled) } }
                tr { th scope="row" { "Pending" } td.num { (progress.pending()) } }
                tr { th scope="row" { "Callback" } td { (callback) } }
                tr { th scope="row" { "Created" } td { (format::timestamp_ms(progress.created_at_ms)) } }
            }
        }
        progress max=(o.total.max(1)) value=(finished) { (finished) " of " (o.total) }
    })
}
