//! What the topic page and the job detail can do (POST, behind the
//! read-only guard and the CSRF check): act on chosen entries
//! ([`entries`]), on a whole state ([`states`]), pause or resume the topic
//! ([`pause`]), enqueue a job from JSON ([`enqueue`]) and cancel a job by
//! id ([`cancel`]); pause, resume or trigger a cron schedule
//! ([`schedules`]).
//!
//! Every action answers with a message saying what it did. To htmx: the
//! message as a fragment for `#flash`, with `HX-Trigger: rmq-changed` when
//! it succeeded, on which the page's regions reload. To a plain form: the
//! topic page with the message. A refusal is an escaped fragment with the
//! status that says why (400 bad input, 404 unknown, 409 not allowed in
//! that state, 503 Redis failed).

pub(crate) mod cancel;
pub(crate) mod enqueue;
pub(crate) mod entries;
pub(crate) mod pause;
pub(crate) mod schedules;
pub(crate) mod states;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use maud::{html, Markup};
use rmq::broker::{Retried, State};
use rmq::Error;
use std::future::Future;

use crate::base::segment;
use crate::layout::Ctx;
use crate::pages::topic;
use crate::state::AppState;

/// The event an action's reply triggers (`HX-Trigger`): the topic page's
/// header and rows and the job detail reload on it.
pub(crate) const CHANGED: &str = "rmq-changed";

/// The action routes, to go behind the read-only guard.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/topics/{topic}/retry", post(entries::retry))
        .route("/topics/{topic}/delete", post(entries::delete))
        .route("/topics/{topic}/run-now", post(entries::run_now))
        .route("/topics/{topic}/states/{state}/purge", post(states::purge))
        .route(
            "/topics/{topic}/states/{state}/retry",
            post(states::retry_all),
        )
        .route("/topics/{topic}/pause", post(pause::pause))
        .route("/topics/{topic}/resume", post(pause::resume))
        .route("/topics/{topic}/enqueue", post(enqueue::enqueue))
        .route("/topics/{topic}/cancel", post(cancel::cancel))
        .route("/schedules/pause", post(schedules::pause))
        .route("/schedules/resume", post(schedules::resume))
        .route("/schedules/trigger", post(schedules::trigger))
}

/// An action on chosen entries, as the pages offer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Dead-letter and parse-error entries run again as new jobs.
    Retry,
    /// Delayed jobs move to their pending lists.
    RunNow,
    /// Entries are deleted (never a running job).
    Delete,
}

impl Action {
    /// The actions entries in `state` allow, in button order.
    pub(crate) fn for_state(state: State) -> &'static [Action] {
        match state {
            State::Dead | State::ParseError => &[Action::Retry, Action::Delete],
            State::Delayed => &[Action::RunNow, Action::Delete],
            State::Pending(_) => &[Action::Delete],
            State::Processing => &[],
        }
    }

    /// The last segment of its route, and the stem of its button classes
    /// and ids (`retry`, `run-now`, `delete`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::RunNow => "run-now",
            Action::Delete => "delete",
        }
    }

    /// Its button's text.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Action::Retry => "Retry",
            Action::RunNow => "Run now",
            Action::Delete => "Delete",
        }
    }

    /// Whether its button is marked as dangerous.
    pub(crate) fn danger(self) -> bool {
        self == Action::Delete
    }

    /// Where it is posted for `topic`.
    pub(crate) fn href(self, ctx: &Ctx, topic: &str) -> String {
        ctx.href(&format!("/topics/{}/{}", segment(topic), self.name()))
    }

    /// The question before acting on one entry (running it now does not
    /// ask: it only runs sooner what would run anyway).
    pub(crate) fn confirm_one(self, what: &str) -> Option<String> {
        match self {
            Action::Delete => Some(format!("Delete {what}? This cannot be undone.")),
            Action::Retry => Some(format!("Retry {what}? It runs again from attempt 1.")),
            Action::RunNow => None,
        }
    }

    /// The question before acting on the ticked entries.
    pub(crate) fn confirm_selected(self, topic: &str) -> String {
        match self {
            Action::Retry => format!("Retry the selected entries of topic {topic}?"),
            Action::RunNow => format!("Run the selected delayed jobs of topic {topic} now?"),
            Action::Delete => {
                format!("Delete the selected entries of topic {topic}? This cannot be undone.")
            }
        }
    }
}

/// A refused action: the status and what to tell the user.
pub(crate) type Refusal = (StatusCode, String);

/// The status that answers `error`.
pub(crate) fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::NotAllowed { .. } | Error::DuplicateJobId { .. } => StatusCode::CONFLICT,
        Error::Payload { .. }
        | Error::InvalidJobId { .. }
        | Error::InvalidOption { .. }
        | Error::NotRetryable { .. } => StatusCode::BAD_REQUEST,
        Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnknownTopic(_) | Error::JobNotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `error` as a refusal.
pub(crate) fn refusal(error: Error) -> Refusal {
    (status_of(&error), error.to_string())
}

/// The reply to an action on `topic`: `result` is the message saying what
/// it did, or the refusal; `state` is the tab a plain form returns to.
pub(crate) async fn answer(
    ctx: &Ctx,
    topic: &str,
    state: Option<State>,
    result: Result<String, Refusal>,
) -> Response {
    reply(ctx, result, |flash| {
        topic::render(ctx, topic, state, 1, Some(flash))
    })
    .await
}

/// The reply to an action: to htmx, the flash alone (with `CHANGED` on
/// success, so live regions reload); to a plain form, `page` rendered with
/// the flash, under the flash's status.
pub(crate) async fn reply<F, Fut>(ctx: &Ctx, result: Result<String, Refusal>, page: F) -> Response
where
    F: FnOnce(Markup) -> Fut,
    Fut: Future<Output = Response>,
{
    let (status, flash) = match result {
        Ok(message) => (
            StatusCode::OK,
            html! { p.flash.ok role="status" { (message) } },
        ),
        Err((status, message)) => (status, html! { p.flash.error role="alert" { (message) } }),
    };
    if ctx.htmx {
        let mut response = (status, Html(flash.into_string())).into_response();
        if status.is_success() {
            response
                .headers_mut()
                .insert("hx-trigger", HeaderValue::from_static(CHANGED));
        }
        return response;
    }
    let mut response = page(flash).await;
    if status != StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

/// `retried 3, 1 skipped (gone), ...`: what a retry did and why it left
/// entries alone.
pub(crate) fn retried(report: &Retried) -> String {
    let mut message = format!("retried {}", report.moved);
    if report.missing > 0 {
        message.push_str(&format!(", {} skipped (gone)", report.missing));
    }
    if !report.busy.is_empty() {
        message.push_str(&format!(
            ", {} skipped (a job with the same id is queued or running: {})",
            report.busy.len(),
            report.busy.join(", ")
        ));
    }
    if report.unreadable > 0 {
        message.push_str(&format!(
            ", {} skipped (not a job rmq can read)",
            report.unreadable
        ));
    }
    message
}

/// The state's entries in words: `pending high`, `dead`, `parse-error`.
pub(crate) fn noun(state: State) -> String {
    match state {
        State::Pending(p) => format!("pending {p}"),
        State::ParseError => "parse-error".to_owned(),
        state => state.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_a_retry_did() {
        let report = Retried {
            moved: 3,
            missing: 1,
            ..Retried::default()
        };
        assert_eq!(retried(&report), "retried 3, 1 skipped (gone)");
        let report = Retried {
            moved: 0,
            busy: vec!["a".into()],
            unreadable: 2,
            missing: 0,
        };
        assert_eq!(
            retried(&report),
            "retried 0, 1 skipped (a job with the same id is queued or running: a), \
             2 skipped (not a job rmq can read)"
        );
    }
}
