//! `/search`: finds jobs by a substring of their id, payload (as JSON) or
//! error, case-insensitive, or by their exact id, in one topic or all.
//! By exact id, the status index is read first (`Broker::status`, one
//! call per topic): an indexed job shows where it is at once, with its
//! worker and whether it was asked to cancel, before the scan's rows.
//!
//! Never one long scan: each request reads at most [`BUDGET`] entries
//! (`Broker::search`), renders the hits it found and, when the scan is not
//! done, a last row that fetches the next batch when it scrolls into view
//! (`?part=more&cursor=..`, swapped over itself) until a row says the
//! search finished. Without htmx that row is a link to the next batch.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use rmq::broker::{Cursor, Entry, Needle, SearchPage, State};
use rmq::{JobState, JobStatus};

use super::topic::{label, topic_href};
use super::{all_topics, per_topic};
use crate::base::segment;
use crate::format;
use crate::layout::{error_banner, page, respond, Ctx, Nav};
use crate::payload;

/// Entries one request reads at most.
pub(crate) const BUDGET: usize = 2000;
/// Hits after which a request stops: after the page of entries (500)
/// that reaches them, so a batch can hold a few hundred hits, all shown
/// (the cursor is past them).
pub(crate) const MAX_HITS: usize = 50;
/// Characters of a payload or error shown in a row.
const PREVIEW: usize = 160;

const COLUMNS: [(&str, &str); 6] = [
    ("Topic", "name"),
    ("State", "num"),
    ("Id", "mid"),
    ("Time", "mid"),
    ("Payload", "wide"),
    ("Error", "wide"),
];

/// The query string. `scanned` and `hits` are the totals of the batches
/// before `cursor`, carried along for the progress row; `at` names the
/// topic the cursor's topic index points to (see [`resume`]).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Params {
    #[serde(default)]
    q: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    mode: String,
    cursor: Option<String>,
    #[serde(default)]
    at: String,
    part: Option<String>,
    #[serde(default)]
    scanned: u64,
    #[serde(default)]
    hits: u64,
}

/// Text or id search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Text,
    Id,
}

impl Mode {
    fn parse(mode: &str) -> Result<Mode, String> {
        match mode {
            "" | "text" => Ok(Mode::Text),
            "id" => Ok(Mode::Id),
            other => Err(format!("unknown search mode `{other}`: use text or id")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Id => "id",
        }
    }
}

/// A checked request: what to look for, where, and from where on.
struct Search {
    query: String,
    topic: String,
    mode: Mode,
    cursor: Cursor,
    at: String,
    scanned: u64,
    hits: u64,
}

impl Search {
    fn parse(params: &Params) -> Result<Search, String> {
        let cursor = match params.cursor.as_deref() {
            None | Some("") => Cursor::default(),
            Some(text) => text
                .parse::<Cursor>()
                .map_err(|e| format!("bad search cursor: {e}; start the search again"))?,
        };
        Ok(Search {
            query: params.q.trim().to_owned(),
            topic: params.topic.clone(),
            mode: Mode::parse(&params.mode)?,
            cursor,
            at: params.at.clone(),
            scanned: params.scanned,
            hits: params.hits,
        })
    }

    fn needle(&self) -> Needle {
        match self.mode {
            Mode::Text => Needle::text(&self.query),
            Mode::Id => Needle::Id(self.query.clone()),
        }
    }

    /// The query string of this search from `cursor` (in topic `at`) on,
    /// with the totals so far.
    fn query_string(&self, cursor: Cursor, at: &str, scanned: u64, hits: u64) -> String {
        format!(
            "q={}&topic={}&mode={}&cursor={cursor}&at={}&scanned={scanned}&hits={hits}",
            segment(&self.query),
            segment(&self.topic),
            self.mode.as_str(),
            segment(at),
        )
    }
}

/// What a request renders below the form.
enum Outcome {
    /// No query: the form alone.
    Form,
    /// One batch of hits and the row after them.
    Rows(Markup),
    /// Refused or failed, and why.
    Failed(StatusCode, String),
}

/// `GET /search?q=..&topic=..&mode=text|id[&cursor=..&part=more]`.
pub(crate) async fn show(ctx: Ctx, Query(params): Query<Params>) -> Response {
    let (outcome, topics) = run(&ctx, &params).await;
    if params.part.as_deref() == Some("more") {
        return match outcome {
            Outcome::Form => fragment(StatusCode::OK, html! {}),
            Outcome::Rows(rows) => fragment(StatusCode::OK, rows),
            Outcome::Failed(status, error) => fragment(status, error_row(&error)),
        };
    }
    let (below, status) = match outcome {
        Outcome::Form => (html! {}, StatusCode::OK),
        Outcome::Rows(rows) => (results(rows), StatusCode::OK),
        Outcome::Failed(status, error) => (error_banner(&error), status),
    };
    let indexed = match status {
        StatusCode::OK => by_id(&ctx, &params, &topics).await,
        _ => html! {},
    };
    let content = html! { (form(&ctx, &params, &topics)) (indexed) (below) };
    let mut response = respond(page(&ctx, Nav::Search, "Search", content), false);
    *response.status_mut() = status;
    response
}

/// Checks the request and reads one batch; also returns the topics for
/// the form.
async fn run(ctx: &Ctx, params: &Params) -> (Outcome, Vec<String>) {
    let unavailable = |error: String| Outcome::Failed(StatusCode::SERVICE_UNAVAILABLE, error);
    let search = match Search::parse(params) {
        Ok(search) => search,
        Err(error) => return (Outcome::Failed(StatusCode::BAD_REQUEST, error), Vec::new()),
    };
    let broker = match ctx.state.broker() {
        Ok(broker) => broker,
        Err(error) => return (unavailable(error), Vec::new()),
    };
    let topics = match all_topics(broker).await {
        Ok(topics) => topics,
        Err(error) => return (unavailable(error), Vec::new()),
    };
    if search.query.is_empty() {
        return (Outcome::Form, topics);
    }
    let searched = if search.topic.is_empty() {
        topics.clone()
    } else {
        vec![search.topic.clone()]
    };
    let cursor = resume(search.cursor, &search.at, &searched);
    let outcome = match broker
        .search(&searched, &search.needle(), cursor, BUDGET, MAX_HITS)
        .await
    {
        Ok(found) => Outcome::Rows(rows(ctx, &search, &searched, &found)),
        Err(error) => unavailable(error.to_string()),
    };
    (outcome, topics)
}

/// The state tab a job in `state` is listed under.
fn tab_of(state: &JobState) -> State {
    match state {
        JobState::Pending { priority, .. } => State::Pending(*priority),
        JobState::Delayed { .. } | JobState::Retrying { .. } => State::Delayed,
        JobState::Processing { .. } => State::Processing,
        JobState::Dead { .. } | JobState::Cancelled { .. } => State::Dead,
        JobState::ParseError { .. } => State::ParseError,
    }
}

/// An exact-id search's first page: where the status index has the job,
/// in the topic searched or in each.
async fn by_id(ctx: &Ctx, params: &Params, topics: &[String]) -> Markup {
    let id = params.q.trim();
    if params.mode != "id" || id.is_empty() || params.cursor.is_some() {
        return html! {};
    }
    let Ok(broker) = ctx.state.broker() else {
        return html! {};
    };
    let searched = if params.topic.is_empty() {
        topics.to_vec()
    } else {
        vec![params.topic.clone()]
    };
    let found = per_topic(&searched, |topic| broker.status(topic, id)).await;
    let found: Vec<JobStatus> = match found {
        Ok((found, _)) => found.into_iter().flatten().collect(),
        Err(error) => return error_banner(&format!("the status index could not be read: {error}")),
    };
    // A completed job has left the index; a `keep_result` task's result
    // stays (one GET per topic).
    let unindexed: Vec<String> = searched
        .iter()
        .filter(|topic| !found.iter().any(|status| &status.topic == *topic))
        .cloned()
        .collect();
    let kept = per_topic(&unindexed, |topic| async move {
        let result = broker.kept_result(topic, id).await?;
        Ok(result.map(|result| (topic.to_owned(), result)))
    })
    .await;
    let kept: Vec<(String, Vec<u8>)> = match kept {
        Ok((kept, _)) => kept.into_iter().flatten().collect(),
        Err(error) => return error_banner(&format!("kept results could not be read: {error}")),
    };
    html! {
        section.panel #by-id {
            h2 { "Status by id" }
            @if found.is_empty() && kept.is_empty() {
                p.muted #by-id-none {
                    "No topic's status index holds job " code { (id) }
                    " (it completed, or is not indexed); the scan below looks through the entries."
                }
            } @else {
                @for (topic, result) in &kept {
                    dl.facts.by-id-result {
                        dt { a href=(ctx.href(&format!("/topics/{}", segment(topic)))) { (topic) } }
                        dd.by-id-state data-state="completed" { span.badge.state-completed { "completed" } }
                        dt { "Result" }
                        dd {
                            @match payload::pretty(result) {
                                Ok(json) => pre.json.by-id-result-value { code { (json) } },
                                Err(reason) => p.banner.warn { "The result does not decode: " (reason) },
                            }
                        }
                    }
                }
                dl.facts {
                    @for status in &found {
                        @let tab = tab_of(&status.state);
                        dt { a href=(topic_href(ctx, &status.topic, tab, 1)) { (status.topic) } }
                        dd.by-id-state data-state=(status.state.name()) {
                            span class={ "badge state-" (tab) } { (status.state.name()) }
                            @match &status.state {
                                JobState::Processing { worker, cancel_requested, .. } => {
                                    @if let Some(worker) = worker { " on " code { (worker) } }
                                    @if *cancel_requested { " · cancel requested" }
                                }
                                JobState::Pending { position: Some(p), .. } => {
                                    " · " (p) " ahead in " (label(tab).to_lowercase())
                                }
                                _ => {}
                            }
                            " · attempt " (status.attempt)
                        }
                    }
                }
            }
        }
    }
}

/// `cursor` against the topic list of this request: a cursor counts
/// topics by index, and a topic that appeared since the last batch (in
/// front of topic `at`) shifts them. Back on `at` then, or, if `at` is
/// gone, at the start of the topic after it.
fn resume(cursor: Cursor, at: &str, topics: &[String]) -> Cursor {
    if at.is_empty() || topics.get(cursor.topic).is_some_and(|t| t == at) {
        return cursor;
    }
    match topics.iter().position(|t| t == at) {
        Some(topic) => Cursor { topic, ..cursor },
        None => Cursor {
            topic: topics.partition_point(|t| t.as_str() < at),
            state: 0,
            offset: 0,
        },
    }
}

/// The results table around the first batch's `rows`.
fn results(rows: Markup) -> Markup {
    html! {
        div.table-wrap {
            table.data.search {
                thead {
                    tr {
                        @for (label, class) in COLUMNS {
                            th class=(class) scope="col" { (label) }
                        }
                    }
                }
                tbody #search-rows { (rows) }
            }
        }
    }
}

fn fragment(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// The search form (GET, so a search is a link to share).
fn form(ctx: &Ctx, params: &Params, topics: &[String]) -> Markup {
    let (query, topic) = (params.q.trim(), params.topic.as_str());
    let mode = Mode::parse(&params.mode).unwrap_or(Mode::Text);
    let unknown = !topic.is_empty() && !topics.iter().any(|t| t == topic);
    html! {
        form.search method="get" action=(ctx.href("/search")) role="search" {
            label { "Find " input type="search" name="q" value=(query) size="40"
                placeholder="text in id, payload or error; or a job id" autofocus; }
            " "
            label { "in "
                select name="topic" {
                    option value="" selected[topic.is_empty()] { "all topics" }
                    @if unknown {
                        option value=(topic) selected { (topic) }
                    }
                    @for t in topics {
                        option value=(t) selected[t == topic] { (t) }
                    }
                }
            }
            " "
            label { "by "
                select name="mode" {
                    option value="text" selected[mode == Mode::Text] { "text" }
                    option value="id" selected[mode == Mode::Id] { "exact id" }
                }
            }
            " "
            button type="submit" { "Search" }
        }
    }
}

/// The hits of one batch, then the row that loads the next batch or says
/// the search finished.
fn rows(ctx: &Ctx, search: &Search, topics: &[String], found: &SearchPage) -> Markup {
    let scanned = search.scanned.saturating_add(found.scanned as u64);
    let hits = search.hits.saturating_add(found.hits.len() as u64);
    let now = now_ms();
    html! {
        @for (topic, entry) in &found.hits {
            (hit(ctx, topic, entry, now))
        }
        @match found.next {
            Some(next) => {
                @let at = topics.get(next.topic).map_or("", String::as_str);
                @let query = search.query_string(next, at, scanned, hits);
                @let more = format!("{}?{query}&part=more", ctx.href("/search"));
                @let link = format!("{}?{query}", ctx.href("/search"));
                tr.search-more hx-get=(more) hx-trigger="revealed" hx-swap="outerHTML" {
                    td.empty colspan=(COLUMNS.len()) {
                        "scanned " (scanned) " entries, " (count(hits, "hit")) " so far; searching on… "
                        a href=(link) { "next batch" }
                    }
                }
            }
            None => {
                tr.search-done {
                    td.empty colspan=(COLUMNS.len()) {
                        "search finished: " (count(hits, "hit")) ", scanned " (scanned) " entries"
                    }
                }
            }
        }
    }
}

fn hit(ctx: &Ctx, topic: &str, entry: &Entry, now: u64) -> Markup {
    let topic_href = ctx.href(&format!("/topics/{}", segment(topic)));
    let detail = ctx.href(&format!(
        "/topics/{}/entries/{}",
        segment(topic),
        entry.locator()
    ));
    let payload = match &entry.envelope {
        Some(envelope) => match rmq::codec::to_json(envelope.payload()) {
            Ok(json) => json.to_string(),
            Err(error) => format!("(unreadable payload: {error})"),
        },
        None => String::from_utf8_lossy(&entry.raw).into_owned(),
    };
    let error = entry.error.as_deref().unwrap_or("");
    html! {
        tr.hit data-state=(entry.state) {
            td.name title=(topic) { a href=(topic_href) { (topic) } }
            td.num { (entry.state) }
            td.mid.mono {
                @match entry.id() {
                    Some(id) => a href=(detail) title=(id) { (id) },
                    None => a href=(detail) { "(unreadable)" },
                }
            }
            td.mid { (when(entry, now)) }
            td.wide.mono.wrap { (truncate(&payload, PREVIEW)) }
            td.wide.wrap.bad[!error.is_empty()] { (truncate(error, PREVIEW)) }
        }
    }
}

/// When something happened or will to `entry`, against `now`: `enqueued
/// 3m 4s ago`, `due in 5.0s`, `died 2h 5m ago`.
fn when(entry: &Entry, now: u64) -> String {
    let (what, at) = match (entry.state, entry.at_ms()) {
        (State::Pending(_), _) | (_, None) => match &entry.envelope {
            Some(envelope) => ("enqueued", envelope.enqueued_at_ms()),
            None => return "-".to_owned(),
        },
        (State::Delayed, Some(at)) => ("due", at),
        (State::Processing, Some(at)) => ("lease ends", at),
        (State::Dead, Some(at)) => ("died", at),
        (State::ParseError, Some(at)) => ("stored", at),
    };
    if at > now {
        format!("{what} in {}", format::duration_ms(at - now))
    } else {
        format!("{what} {} ago", format::duration_ms(now - at))
    }
}

/// The first `max` characters of `text`, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `1 hit`, `3 hits`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn error_row(message: &str) -> Markup {
    html! {
        tr { td.error colspan=(COLUMNS.len()) { (error_banner(message)) } }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    #[test]
    fn resumes_in_the_same_topic_when_the_list_shifts() {
        let topics = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let at = |topic, state, offset| Cursor {
            topic,
            state,
            offset,
        };
        let before = topics(&["b", "d"]);
        assert_eq!(resume(at(1, 2, 500), "d", &before), at(1, 2, 500));
        assert_eq!(resume(at(1, 2, 500), "", &before), at(1, 2, 500));
        let shifted = topics(&["a", "b", "d"]);
        assert_eq!(resume(at(1, 2, 500), "d", &shifted), at(2, 2, 500));
        let gone = topics(&["a", "b", "e"]);
        assert_eq!(resume(at(1, 2, 500), "d", &gone), at(2, 0, 0));
        assert_eq!(resume(at(1, 2, 500), "z", &gone), at(3, 0, 0));
    }

    #[test]
    fn refuses_a_bad_cursor_and_mode() {
        let params = Params {
            q: "x".into(),
            cursor: Some("1.99.0".into()),
            ..Params::default()
        };
        let error = Search::parse(&params).err().unwrap();
        assert!(error.contains("bad search cursor"), "{error}");
        let params = Params {
            q: "x".into(),
            mode: "regex".into(),
            ..Params::default()
        };
        assert!(Search::parse(&params)
            .err()
            .unwrap()
            .contains("use text or id"));
    }
}
