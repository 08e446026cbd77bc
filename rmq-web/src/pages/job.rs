//! `/topics/{topic}/entries/{locator}`: one entry, found again by its
//! locator: the envelope's fields, the payload as indented JSON (or a hex
//! dump and why it does not decode), the last error, its time in its state,
//! and the buttons its state allows (Cancel for a queued or running job).
//! A job in the status index also shows where the index has it: its
//! state, its worker and whether it was asked to cancel. An entry no
//! longer there (it ran,
//! moved or was deleted) is a 404 page that links back to its state.
//!
//! One live region (`?part=live`), reloaded after an action: an entry just
//! retried or deleted turns into the "gone" message.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use rmq::broker::{Entry, Locator, State};
use rmq::{JobState, JobStatus};

use super::topic::{
    cancel_form, cancellable, entry_actions, entry_name, holders, label, time_label, topic_href,
    when,
};
use crate::actions::{Action, CHANGED};
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page_with_flash, respond, Ctx, Nav, Part};
use crate::payload;

/// `GET /topics/{topic}/entries/{locator}`.
pub(crate) async fn show(
    ctx: Ctx,
    Path((topic, locator)): Path<(String, String)>,
    Query(part): Query<Part>,
) -> Response {
    let (status, heading, body) = match locator.parse::<Locator>() {
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            "Bad entry link".to_owned(),
            error_banner(&reason),
        ),
        Ok(locator) => match load(&ctx, &topic, &locator).await {
            Ok(Some(Loaded {
                entry,
                holder,
                status,
            })) => (
                StatusCode::OK,
                format!("Job {}", entry_name(&entry)),
                detail(&ctx, &topic, &entry, holder.as_ref(), &status),
            ),
            Ok(None) => (
                StatusCode::NOT_FOUND,
                "Entry gone".to_owned(),
                gone(&ctx, &topic, &locator),
            ),
            Err(error) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Job".to_owned(),
                error_banner(&error),
            ),
        },
    };
    let mut response = if part.live() {
        respond(body, false)
    } else {
        let live = format!(
            "{}?part=live",
            ctx.href(&format!(
                "/topics/{}/entries/{}",
                segment(&topic),
                segment(&locator)
            ))
        );
        let content = html! {
            p.crumbs {
                a href=(ctx.href("/topics")) { "Topics" }
                " / "
                a href=(ctx.href(&format!("/topics/{}", segment(&topic)))) { (topic) }
            }
            div #entry-detail hx-get=(live) hx-trigger={ (CHANGED) " from:body" } hx-swap="innerHTML" {
                (body)
            }
        };
        respond(
            page_with_flash(&ctx, Nav::Topics, &heading, None, content),
            false,
        )
    };
    *response.status_mut() = status;
    response
}

/// What the detail shows.
struct Loaded {
    entry: Entry,
    /// The worker that runs it (with its start) if it is leased.
    holder: Option<(String, u64)>,
    /// Its status by id: `Ok(None)` when the index does not hold it.
    status: Result<Option<JobStatus>, String>,
}

/// The entry, the worker that runs it and its status by id.
async fn load(ctx: &Ctx, topic: &str, locator: &Locator) -> Result<Option<Loaded>, String> {
    let broker = ctx.state.broker()?;
    let Some(entry) = broker
        .entry(topic, locator)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let holder = match (entry.state, entry.id()) {
        (State::Processing, Some(id)) => holders(ctx, topic).await?.remove(id),
        _ => None,
    };
    let status = match entry.id() {
        Some(id) => broker.status(topic, id).await.map_err(|e| e.to_string()),
        None => Ok(None),
    };
    Ok(Some(Loaded {
        entry,
        holder,
        status,
    }))
}

fn ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the status index has the job.
fn status_panel(status: &Result<Option<JobStatus>, String>) -> Markup {
    let now = format::now_ms();
    let at = |t: std::time::SystemTime| {
        html! { (format::timestamp_ms(ms(t))) span.muted { " (" (format::relative_ms(ms(t), now)) ")" } }
    };
    html! {
        section.panel #status-panel {
            h2 { "Status by id" }
            @match status {
                Err(error) => p.banner.warn { "The status index could not be read: " (error) },
                Ok(None) => p.muted #status-none {
                    "Not in the status index: only jobs with explicit ids, tasks with "
                    code { "index = true" } " or configuration " code { "index_jobs" }
                    " are indexed. Cancel finds a running job either way; Delete removes a queued one."
                },
                Ok(Some(status)) => dl.facts {
                    dt { "State" } dd #status-state data-state=(status.state.name()) { (status.state.name()) }
                    @match &status.state {
                        JobState::Pending { priority, position } => {
                            dt { "Priority list" } dd { (priority) }
                            dt { "Jobs ahead" } dd #status-position {
                                @match position { Some(p) => (p), None => "more than 10,000" }
                            }
                        }
                        JobState::Delayed { due } => { dt { "Due" } dd { (at(*due)) } }
                        JobState::Retrying { attempt, error, due } => {
                            dt { "Retry due" } dd { (at(*due)) }
                            dt { "Runs as attempt" } dd { (attempt) }
                            dt { "Error" } dd.mono { (payload::cut(error, 4096)) }
                        }
                        JobState::Processing { deadline, worker, cancel_requested } => {
                            dt { "Lease deadline" } dd { (at(*deadline)) }
                            dt { "Worker" } dd.mono #status-worker {
                                @match worker { Some(w) => (w), None => span.muted { "unknown" } }
                            }
                            dt { "Cancel requested" } dd #status-cancel-requested {
                                @if *cancel_requested { "yes: it stops at its next lease renewal" } @else { "no" }
                            }
                        }
                        JobState::Dead { at: when, .. }
                        | JobState::Cancelled { at: when }
                        | JobState::ParseError { at: when, .. } => { dt { "Since" } dd { (at(*when)) } }
                    }
                    dt { "Attempt" } dd { (status.attempt) " (" (status.max_retries) " retries allowed)" }
                }
            }
        }
    }
}

fn gone(ctx: &Ctx, topic: &str, locator: &Locator) -> Markup {
    let state = locator.state;
    html! {
        p.banner.warn role="alert" {
            "This entry is no longer among the " (label(state).to_lowercase()) " entries of topic "
            code { (topic) } ": it ran, moved (retried, run now, promoted, expired) or was deleted."
        }
        p {
            a #back-to-topic href=(topic_href(ctx, topic, state, 1)) {
                "‹ Back to " (label(state).to_lowercase()) " of " (topic)
            }
        }
    }
}

fn detail(
    ctx: &Ctx,
    topic: &str,
    entry: &Entry,
    holder: Option<&(String, u64)>,
    status: &Result<Option<JobStatus>, String>,
) -> Markup {
    let now = format::now_ms();
    let state = entry.state;
    let actions = if ctx.read_only() {
        &[][..]
    } else {
        Action::for_state(state)
    };
    // A queued job is found by cancel only through the status index; a
    // running one either way.
    let findable = state == State::Processing || matches!(status, Ok(Some(_)));
    let cancel = match entry.id() {
        Some(id) if !ctx.read_only() && cancellable(state) && findable => Some(id),
        _ => None,
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    html! {
        section.panel #envelope {
            h2 { "Entry " code { (entry_name(entry)) } }
            dl.facts {
                dt { "Topic" } dd { (topic) }
                dt { "State" } dd {
                    a href=(topic_href(ctx, topic, state, 1)) {
                        span class={ "badge state-" (state) } #entry-state data-state=(state) { (label(state)) }
                    }
                }
                @if let Some(at) = entry.at_ms() {
                    dt { (time_label(state)) }
                    dd { (format::timestamp_ms(at)) span.muted { " (" (format::relative_ms(at, now)) ")" } }
                }
                @if state == State::Processing {
                    dt { "Worker" }
                    dd.mono {
                        @match holder {
                            Some((worker, started)) => {
                                a href=(ctx.href("/workers")) { (worker) }
                                span.muted { " running for " (format::duration_ms(now.saturating_sub(*started))) }
                            }
                            None => span.muted { "no live worker reports it" },
                        }
                    }
                }
                @if let Some(e) = &entry.envelope {
                    dt { "Job id" } dd.mono #job-id { (e.id()) }
                    dt { "Explicit id" } dd { (yes_no(e.has_explicit_id())) }
                    dt { "Priority" } dd { (e.priority()) }
                    dt { "Attempt" } dd { (e.attempt()) " of " (e.max_attempts()) }
                    dt { "Enqueued at" } dd { (when(e.enqueued_at_ms(), now)) " · " (format::timestamp_ms(e.enqueued_at_ms())) }
                    dt { "Expires at" } dd {
                        @match e.expire_at_ms() {
                            Some(at) => { (when(at, now)) " · " (format::timestamp_ms(at)) }
                            None => "never (no TTL)",
                        }
                    }
                    dt { "Delayed" } dd { (yes_no(e.was_delayed())) }
                    @if let Some(trace) = e.trace_context() {
                        dt { "Trace context" }
                        dd.mono {
                            (trace.traceparent())
                            @if !trace.state.is_empty() { br; "tracestate: " (trace.state) }
                        }
                    }
                } @else {
                    dt { "Job" } dd { span.bad { "not a job envelope rmq reads" } }
                }
                dt { "Size" } dd { (format::bytes(entry.raw.len() as u64)) }
            }
            @if !actions.is_empty() || cancel.is_some() {
                div.toolbar #entry-actions {
                    (entry_actions(ctx, topic, entry, actions, true))
                    @if let Some(id) = cancel {
                        (cancel_form(ctx, topic, id, state == State::Processing, true))
                    }
                }
            }
        }
        @if entry.envelope.is_some() {
            (status_panel(status))
        }
        section.panel #payload-panel {
            h2 { "Payload" }
            @match &entry.envelope {
                Some(e) => {
                    @match payload::pretty(e.payload()) {
                        Ok(json) => pre.json #payload { code { (json) } },
                        Err(reason) => {
                            p.banner.warn #payload-error { "The payload does not decode: " (reason) }
                            pre.hex #payload-hex { (payload::hex_dump(e.payload())) }
                        }
                    }
                }
                None => {
                    p.banner.warn #payload-error { "The stored bytes are not a job envelope; as stored:" }
                    pre.hex #payload-hex { (payload::hex_dump(&entry.raw)) }
                }
            }
        }
        @if let Some(error) = &entry.error {
            section.panel #error-panel {
                h2 {
                    @if matches!(state, State::Dead | State::ParseError) { "Last error" } @else { "Why it cannot be read" }
                }
                pre.error-text #last-error { (payload::cut(error, 64 * 1024)) }
            }
        }
    }
}
