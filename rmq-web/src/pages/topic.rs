//! `/topics/{topic}?state=<state>&page=<n>`: one topic, one state at a
//! time. A header with the depth of every state as tabs, the paused badge
//! and the pause / resume button; the state's actions (retry all, purge,
//! act on the ticked entries); its entries, [`PAGE_SIZE`] a page (one
//! `LRANGE` / `ZRANGE`, never the whole list), each linking to its job
//! detail; and the enqueue form when a task for the topic is linked in.
//!
//! Two live regions: the rows (`?part=live`, every 2 s and after an
//! action) and the header (`?part=head`, after an action). Without a
//! `state` the page opens on the first state that holds entries.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::future::try_join_all;
use maud::{html, Markup};
use rmq::broker::{Entry, State};
use rmq::Registry;

use super::all_topics;
use crate::actions::{noun, Action, CHANGED};
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page_with_flash, respond, Ctx, Nav};
use crate::payload;
use crate::refuse::refuse;

/// Entries a page shows.
pub(crate) const PAGE_SIZE: usize = 50;
/// The highest page number asked for (its offset must fit Redis's signed
/// 64-bit indexes).
const MAX_PAGE: u64 = 1 << 40;

/// The query of the topic page.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct View {
    state: Option<String>,
    page: Option<String>,
    part: Option<String>,
}

/// A state's name on its tab and in headings.
pub(crate) fn label(state: State) -> &'static str {
    match state {
        State::Pending(rmq::Priority::High) => "Pending high",
        State::Pending(rmq::Priority::Normal) => "Pending normal",
        State::Pending(rmq::Priority::Low) => "Pending low",
        State::Delayed => "Delayed",
        State::Processing => "Processing",
        State::Dead => "Dead",
        State::ParseError => "Parse errors",
    }
}

/// What the time of an entry in `state` means ([`Entry::at_ms`]; for
/// pending entries, the enqueue time).
pub(crate) fn time_label(state: State) -> &'static str {
    match state {
        State::Pending(_) => "Enqueued",
        State::Delayed => "Due",
        State::Processing => "Lease deadline",
        State::Dead => "Died",
        State::ParseError => "Stored",
    }
}

/// The time an entry's row shows: see [`time_label`].
pub(crate) fn entry_time(entry: &Entry) -> Option<u64> {
    match entry.state {
        State::Pending(_) => entry.envelope.as_ref().map(|e| e.enqueued_at_ms()),
        _ => entry.at_ms(),
    }
}

/// `/topics/{topic}?state=..&page=..`, under the mount prefix.
pub(crate) fn topic_href(ctx: &Ctx, topic: &str, state: State, page: u64) -> String {
    ctx.href(&format!(
        "/topics/{}?state={}&page={page}",
        segment(topic),
        state
    ))
}

/// The job detail of `entry` of `topic`.
pub(crate) fn entry_href(ctx: &Ctx, topic: &str, entry: &Entry) -> String {
    ctx.href(&format!(
        "/topics/{}/entries/{}",
        segment(topic),
        entry.locator()
    ))
}

/// The id an entry shows: its job id, or `@` and its digest when it holds
/// no job rmq reads.
pub(crate) fn entry_name(entry: &Entry) -> String {
    match entry.id() {
        Some(id) => id.to_owned(),
        None => entry.locator().digest,
    }
}

/// A time as `3m 4s ago`, the exact time in its title.
pub(crate) fn when(ms: u64, now: u64) -> Markup {
    html! { span title=(format::timestamp_ms(ms)) { (format::relative_ms(ms, now)) } }
}

/// Who leases the jobs of `topic`: job id to worker id and start time.
pub(crate) async fn holders(
    ctx: &Ctx,
    topic: &str,
) -> Result<HashMap<String, (String, u64)>, String> {
    let broker = ctx.state.broker()?;
    let workers = broker.workers().await.map_err(|e| e.to_string())?;
    Ok(workers
        .into_iter()
        .flat_map(|w| {
            let worker = w.id;
            w.jobs
                .into_iter()
                .filter(|job| job.topic == topic)
                .map(move |job| (job.id, (worker.clone(), job.started_at_ms)))
        })
        .collect())
}

/// Depth per state ([`State::ALL`] order) and whether it is paused.
struct Summary {
    depths: Vec<u64>,
    paused: bool,
    known: bool,
}

async fn summary(ctx: &Ctx, topic: &str) -> Result<Summary, String> {
    let broker = ctx.state.broker()?;
    let depths = try_join_all(State::ALL.map(|state| broker.depth(topic, state)))
        .await
        .map_err(|e| e.to_string())?;
    let paused = broker.is_paused(topic).await.map_err(|e| e.to_string())?;
    let known = all_topics(broker).await?.iter().any(|t| t == topic);
    Ok(Summary {
        depths,
        paused,
        known,
    })
}

impl Summary {
    fn depth(&self, state: State) -> u64 {
        State::ALL
            .iter()
            .position(|s| *s == state)
            .map_or(0, |i| self.depths[i])
    }

    /// The first state with entries, else pending normal.
    fn busiest(&self) -> State {
        State::ALL
            .into_iter()
            .zip(&self.depths)
            .find(|(_, depth)| **depth > 0)
            .map_or(State::Pending(rmq::Priority::Normal), |(state, _)| state)
    }

    fn pages(&self, state: State) -> u64 {
        self.depth(state).div_ceil(PAGE_SIZE as u64).max(1)
    }
}

/// `GET /topics/{topic}`.
pub(crate) async fn show(
    ctx: Ctx,
    Path(topic): Path<String>,
    query: Result<Query<View>, QueryRejection>,
) -> Response {
    let view = match query {
        Ok(Query(view)) => view,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let state = match view.state.as_deref().map(str::parse::<State>).transpose() {
        Ok(state) => state,
        Err(e) => return bad_request(&ctx, &topic, view.part.is_some(), &e),
    };
    let page = match view.page.as_deref().map(str::parse::<u64>).transpose() {
        Ok(None) => 1,
        Ok(Some(page)) if (1..=MAX_PAGE).contains(&page) => page,
        _ => {
            let message = "the page must be a whole number from 1";
            return bad_request(&ctx, &topic, view.part.is_some(), message);
        }
    };
    match view.part.as_deref() {
        None => render(&ctx, &topic, state, page, None).await,
        Some("head") => {
            let (head, failed) = match summary(&ctx, &topic).await {
                Ok(summary) => {
                    let state = state.unwrap_or_else(|| summary.busiest());
                    (head(&ctx, &topic, &summary, state, page), false)
                }
                Err(error) => (error_banner(&error), true),
            };
            respond(head, failed)
        }
        Some(_) => {
            let state = state.unwrap_or(State::Pending(rmq::Priority::Normal));
            let (rows, failed) = rows(&ctx, &topic, state, page).await;
            respond(rows, failed)
        }
    }
}

fn bad_request(ctx: &Ctx, topic: &str, part: bool, message: &str) -> Response {
    if part {
        return refuse(StatusCode::BAD_REQUEST, message);
    }
    let mut response = respond(
        page_with_flash(ctx, Nav::Topics, topic, None, error_banner(message)),
        false,
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// The whole topic page on `state` (or the busiest) at `page`, with
/// `flash` in the message area.
pub(crate) async fn render(
    ctx: &Ctx,
    topic: &str,
    state: Option<State>,
    page: u64,
    flash: Option<Markup>,
) -> Response {
    let summary = match summary(ctx, topic).await {
        Ok(summary) => summary,
        Err(error) => {
            let content = html! { (crumbs(ctx, topic)) (error_banner(&error)) };
            return respond(
                page_with_flash(ctx, Nav::Topics, topic, flash, content),
                true,
            );
        }
    };
    let state = state.unwrap_or_else(|| summary.busiest());
    let (rows, failed) = rows(ctx, topic, state, page).await;
    let at = |part: &str| format!("{}&part={part}", topic_href(ctx, topic, state, page));
    let trigger = format!("every 2s, {CHANGED} from:body");
    let head_trigger = format!("{CHANGED} from:body");
    let content = html! {
        (crumbs(ctx, topic))
        @if !summary.known {
            p.banner.warn {
                "Redis has no record of topic " code { (topic) } " and no task for it is linked into \
                 this binary: nothing was ever enqueued to it (is the name right?)."
            }
        }
        div #topic-head hx-get=(at("head")) hx-trigger=(head_trigger) hx-swap="innerHTML" {
            (head(ctx, topic, &summary, state, page))
        }
        @if !ctx.read_only() {
            (toolbar(ctx, topic, state))
        }
        div.table-wrap {
            table.data.entries data-state=(state) {
                thead {
                    tr {
                        @for (label, class) in columns(ctx, state) {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody #entry-rows hx-get=(at("live")) hx-trigger=(trigger) hx-swap="innerHTML" {
                    (rows)
                }
            }
        }
        @if !ctx.read_only() {
            (enqueue_form(ctx, topic))
        }
    };
    respond(
        page_with_flash(ctx, Nav::Topics, topic, flash, content),
        failed,
    )
}

fn crumbs(ctx: &Ctx, topic: &str) -> Markup {
    html! {
        p.crumbs {
            a href=(ctx.href("/topics")) { "Topics" }
            " / "
            a href=(ctx.href(&format!("/topics/{}", segment(topic)))) { (topic) }
        }
    }
}

/// The header: paused or running with its button, the tabs, the pager.
fn head(ctx: &Ctx, topic: &str, summary: &Summary, state: State, page: u64) -> Markup {
    let pages = summary.pages(state);
    let depth = summary.depth(state);
    let first = (page - 1).saturating_mul(PAGE_SIZE as u64);
    let shown = depth.saturating_sub(first).min(PAGE_SIZE as u64);
    let switch = |action: &str, label: &str, id: &str, confirm: Option<String>| {
        let href = ctx.href(&format!("/topics/{}/{action}", segment(topic)));
        html! {
            form.inline method="post" action=(href) hx-post=(href) hx-target="#flash" hx-swap="innerHTML"
                hx-confirm=[confirm] {
                (ctx.csrf_field())
                button type="submit" id=(id) { (label) }
            }
        }
    };
    html! {
        div.topic-status {
            @if summary.paused {
                span.badge.paused #paused-badge title="No worker starts this topic's jobs until it is resumed" { "paused" }
                @if !ctx.read_only() { (switch("resume", "Resume", "resume-topic", None)) }
            } @else {
                span.badge.running #running-badge { "running" }
                @if !ctx.read_only() { (switch("pause", "Pause", "pause-topic",
                    Some(format!("Pause topic {topic}? No worker starts its jobs until it is resumed.")))) }
            }
        }
        nav.tabs #state-tabs aria-label="States" {
            @for (tab, depth) in State::ALL.into_iter().zip(&summary.depths) {
                @let bad = matches!(tab, State::Dead | State::ParseError) && *depth > 0;
                @if tab == state {
                    a.tab.current id={ "tab-" (tab) } data-state=(tab) aria-current="page" href=(topic_href(ctx, topic, tab, 1)) {
                        (label(tab)) " " span.count.bad[bad] { (depth) }
                    }
                } @else {
                    a.tab id={ "tab-" (tab) } data-state=(tab) href=(topic_href(ctx, topic, tab, 1)) {
                        (label(tab)) " " span.count.bad[bad] { (depth) }
                    }
                }
            }
        }
        nav.pager #pager aria-label="Pages" {
            @if page > 1 {
                a.prev rel="prev" href=(topic_href(ctx, topic, state, (page - 1).min(pages))) { "‹ Previous" }
            } @else {
                span.prev.disabled { "‹ Previous" }
            }
            span.where {
                @if shown == 0 {
                    "no entries on this page"
                } @else {
                    "entries " (first + 1) "–" (first + shown) " of " (depth)
                }
                " · page " (page) " of " (pages)
            }
            @if page < pages {
                a.next rel="next" href=(topic_href(ctx, topic, state, page + 1)) { "Next ›" }
            } @else {
                span.next.disabled { "Next ›" }
            }
        }
    }
}

/// The state's actions: on the ticked entries, and on all of them.
fn toolbar(ctx: &Ctx, topic: &str, state: State) -> Markup {
    let actions = Action::for_state(state);
    let whole = |action: &str, label: String, id: &str, danger: bool, confirm: String| {
        let href = ctx.href(&format!(
            "/topics/{}/states/{state}/{action}",
            segment(topic)
        ));
        html! {
            form.inline method="post" action=(href) hx-post=(href) hx-target="#flash"
                hx-swap="innerHTML" hx-confirm=(confirm) {
                (ctx.csrf_field())
                button type="submit" id=(id) .danger[danger] { (label) }
            }
        }
    };
    html! {
        div.toolbar #state-actions {
            @if let Some(first) = actions.first() {
                form #pick method="post" action=(first.href(ctx, topic)) {
                    (ctx.csrf_field())
                    span.muted { "Ticked: " }
                    @for action in actions {
                        @let href = action.href(ctx, topic);
                        button type="submit" id={ (action.name()) "-selected" } .danger[action.danger()]
                            formaction=(href) hx-post=(href) hx-target="#flash" hx-swap="innerHTML"
                            hx-confirm=(action.confirm_selected(topic)) {
                            (action.label()) " selected"
                        }
                        " "
                    }
                }
            }
            @if matches!(state, State::Dead | State::ParseError) {
                (whole("retry", "Retry all".to_owned(), "retry-all", false,
                    format!("Retry every {} entry of topic {topic}?", noun(state))))
            }
            @if state != State::Processing {
                (whole("purge", format!("Purge {}", label(state).to_lowercase()), "purge-state", true,
                    format!("Delete every {} entry of topic {topic}? This cannot be undone.", noun(state))))
            }
        }
    }
}

/// Headers and cell classes of the table of `state`.
fn columns(ctx: &Ctx, state: State) -> Vec<(&'static str, &'static str)> {
    let pick = !ctx.read_only() && !Action::for_state(state).is_empty();
    let acts = pick || (!ctx.read_only() && cancellable(state));
    let mut columns = Vec::with_capacity(9);
    if pick {
        columns.push(("", "pick"));
    }
    columns.extend([("Job id", "id"), (time_label(state), "mid")]);
    if state == State::Processing {
        columns.push(("Worker", "wide"));
    }
    columns.extend([
        ("Attempt", "num"),
        ("Priority", "num"),
        ("Payload", "payload"),
    ]);
    if matches!(state, State::Dead | State::ParseError) {
        columns.push(("Error", "wide"));
    }
    if acts {
        columns.push(("Actions", "actions"));
    }
    columns
}

/// The rows of `page` of `state`, or an error row; and whether Redis
/// failed.
async fn rows(ctx: &Ctx, topic: &str, state: State, page: u64) -> (Markup, bool) {
    let span = columns(ctx, state).len();
    let read = async {
        let broker = ctx.state.broker()?;
        let offset = (page - 1).saturating_mul(PAGE_SIZE as u64);
        let entries = broker
            .entries(topic, state, offset, PAGE_SIZE)
            .await
            .map_err(|e| e.to_string())?;
        let holders = if state == State::Processing && !entries.is_empty() {
            holders(ctx, topic).await?
        } else {
            HashMap::new()
        };
        Ok::<_, String>((entries, holders))
    };
    match read.await {
        Ok((entries, holders)) => {
            let now = format::now_ms();
            let markup = html! {
                @if entries.is_empty() {
                    tr { td.empty colspan=(span) {
                        @if page > 1 { "No entries on this page." } @else { "No " (noun(state)) " entries." }
                    } }
                }
                @for entry in &entries {
                    (row(ctx, topic, entry, &holders, now))
                }
            };
            (markup, false)
        }
        Err(error) => (
            html! { tr { td.error colspan=(span) { (error_banner(&error)) } } },
            true,
        ),
    }
}

fn row(
    ctx: &Ctx,
    topic: &str,
    entry: &Entry,
    holders: &HashMap<String, (String, u64)>,
    now: u64,
) -> Markup {
    let state = entry.state;
    let locator = entry.locator().to_string();
    let name = entry_name(entry);
    let actions = if ctx.read_only() {
        &[][..]
    } else {
        Action::for_state(state)
    };
    let cancel = !ctx.read_only()
        && cancellable(state)
        && (state == State::Processing || indexed(ctx, topic, entry));
    let envelope = entry.envelope.as_ref();
    let preview = envelope.map(|e| payload::preview(e.payload()));
    html! {
        tr data-entry=(locator) data-job=[entry.id()] {
            @if !actions.is_empty() {
                td.pick {
                    input type="checkbox" name="entry" value=(locator) form="pick"
                        id={ "pick-" (state) "-" (&entry.locator().digest[1..]) } hx-preserve="true"
                        aria-label={ "Select " (name) };
                }
            }
            td.id.mono title=(name) { a.entry href=(entry_href(ctx, topic, entry)) { (name) } }
            td.mid { @if let Some(at) = entry_time(entry) { (when(at, now)) } @else { span.muted { "-" } } }
            @if state == State::Processing {
                td.wide.mono {
                    @match entry.id().and_then(|id| holders.get(id)) {
                        Some((worker, started)) => {
                            a href=(ctx.href("/workers")) title=(worker) { (worker) }
                            span.muted { " for " (format::duration_ms(now.saturating_sub(*started))) }
                        }
                        None => span.muted { "no live worker reports it" },
                    }
                }
            }
            @match envelope {
                Some(e) => {
                    td.num { (e.attempt()) " of " (e.max_attempts()) }
                    td.num { (e.priority()) }
                }
                None => { td.num { "-" } td.num { "-" } }
            }
            @match preview {
                Some(Ok(json)) => td.payload.mono title=(json) { (json) },
                Some(Err(reason)) => td.payload.bad title=(reason) { "does not decode: " (reason) },
                None => td.payload.muted { "not a job envelope" },
            }
            @if matches!(state, State::Dead | State::ParseError) {
                @let error = entry.error.as_deref().unwrap_or("-");
                td.wide.wrap.error-text title=(payload::cut(error, 1000)) { (payload::cut(error, 200)) }
            }
            @if !actions.is_empty() || cancel {
                td.actions {
                    (entry_actions(ctx, topic, entry, actions, false))
                    @if let (true, Some(id)) = (cancel, entry.id()) {
                        (cancel_form(ctx, topic, id, state == State::Processing, false))
                    }
                }
            }
        }
    }
}

/// Whether a queued `entry` is in the status index, as far as the
/// dashboard can tell: an explicit id, a linked task with `index = true`,
/// or configuration `index_jobs`. Cancel finds a queued job only there.
fn indexed(ctx: &Ctx, topic: &str, entry: &Entry) -> bool {
    entry.envelope.as_ref().is_some_and(|e| e.has_explicit_id())
        || ctx.state.client.config().index_jobs
        || Registry::global()
            .ok()
            .and_then(|r| r.get(topic))
            .is_some_and(|task| task.policy.index)
}

/// Whether a job in `state` can be cancelled: queued or running.
pub(crate) fn cancellable(state: State) -> bool {
    matches!(
        state,
        State::Pending(_) | State::Delayed | State::Processing
    )
}

/// The Cancel button for job `id`; `large`: the job detail's, with an id.
pub(crate) fn cancel_form(ctx: &Ctx, topic: &str, id: &str, running: bool, large: bool) -> Markup {
    let href = ctx.href(&format!("/topics/{}/cancel", segment(topic)));
    let confirm = if running {
        format!(
            "Cancel job {id} of topic {topic}? Its handler is asked to stop at the next lease renewal and the job is not retried."
        )
    } else {
        format!("Cancel job {id} of topic {topic}? It is removed from the queue and will not run.")
    };
    html! {
        form.inline method="post" action=(href) hx-post=(href) hx-target="#flash"
            hx-swap="innerHTML" hx-confirm=(confirm) {
            (ctx.csrf_field())
            input type="hidden" name="id" value=(id);
            @if large {
                button.danger type="submit" #cancel-entry { "Cancel" }
            } @else {
                button.cancel-one.danger type="submit" { "Cancel" }
            }
        }
    }
}

/// Buttons for `actions` on `entry`, each its own form (so they work
/// without htmx too). `large`: the job detail's buttons, with ids.
pub(crate) fn entry_actions(
    ctx: &Ctx,
    topic: &str,
    entry: &Entry,
    actions: &[Action],
    large: bool,
) -> Markup {
    let locator = entry.locator().to_string();
    let what = format!("entry {} of topic {topic}", entry_name(entry));
    html! {
        @for action in actions {
            @let href = action.href(ctx, topic);
            form.inline method="post" action=(href) hx-post=(href) hx-target="#flash"
                hx-swap="innerHTML" hx-confirm=[action.confirm_one(&what)] {
                (ctx.csrf_field())
                input type="hidden" name="entry" value=(locator);
                @if large {
                    button.danger[action.danger()] type="submit" id={ (action.name()) "-entry" } { (action.label()) }
                } @else {
                    @let class = format!("{}-one{}", action.name(), if action.danger() { " danger" } else { "" });
                    button type="submit" class=(class) { (action.label()) }
                }
            }
            " "
        }
    }
}

/// "Enqueue a job": when a task for `topic` is linked into this binary.
/// Its answer (the new id, or why the JSON does not fit) shows under the
/// form, where the eye is.
fn enqueue_form(ctx: &Ctx, topic: &str) -> Markup {
    let Some(task) = Registry::global().ok().and_then(|r| r.get(topic)) else {
        return html! {};
    };
    let href = ctx.href(&format!("/topics/{}/enqueue", segment(topic)));
    let fields: Vec<String> = task
        .fields
        .iter()
        .map(|(name, ty)| format!("\"{name}\": {ty}"))
        .collect();
    let shape = format!("{{{}}}", fields.join(", "));
    html! {
        details.enqueue #enqueue {
            summary { "Enqueue a job" }
            form #enqueue-form method="post" action=(href) hx-post=(href) hx-target="#enqueue-result" hx-swap="innerHTML" {
                (ctx.csrf_field())
                label for="enqueue-json" {
                    "Payload of " code { (task.payload_type) } " as JSON: " code { (shape) }
                }
                textarea #enqueue-json name="json" rows="6" spellcheck="false" required placeholder=(shape) {}
                p { button type="submit" #enqueue-submit { "Enqueue" } }
                div #enqueue-result aria-live="polite" {}
            }
        }
    }
}
