//! `POST /topics/{topic}/retry`, `.../delete`, `.../run-now`: act on the
//! entries the form names, one `entry` field (a locator) each: one from a
//! row's or the job detail's button, several from the ticked boxes.
//! Entries gone meanwhile (they ran or moved) are skipped and counted.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::Response;
use rmq::broker::Locator;

use super::{answer, refusal, retried, Action, Refusal};
use crate::layout::Ctx;

/// The form of an entry action: its fields in order (`entry` may repeat).
type Fields = Result<Form<Vec<(String, String)>>, FormRejection>;

/// Most entries one request acts on (a page shows 50): each is found
/// again in Redis before the action.
const MAX_PICKED: usize = 200;

/// The locators of the form's `entry` fields; none is a mistake.
fn picked(fields: Fields) -> Result<Vec<Locator>, Refusal> {
    let Form(fields) = fields.map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()))?;
    let locators = fields
        .iter()
        .filter(|(name, _)| name == "entry")
        .map(|(_, value)| {
            value
                .parse::<Locator>()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if locators.len() > MAX_PICKED {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "{} entries selected: at most {MAX_PICKED} per request; use Retry all or Purge for more",
                locators.len()
            ),
        ));
    }
    if locators.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "nothing selected: tick the entries to act on first".to_owned(),
        ));
    }
    Ok(locators)
}

/// `POST /topics/{topic}/retry`: dead-letter and parse-error entries run
/// again as new jobs.
pub(crate) async fn retry(ctx: Ctx, Path(topic): Path<String>, fields: Fields) -> Response {
    act(ctx, topic, fields, Action::Retry).await
}

/// `POST /topics/{topic}/delete`: pending, delayed, dead-letter and
/// parse-error entries are deleted.
pub(crate) async fn delete(ctx: Ctx, Path(topic): Path<String>, fields: Fields) -> Response {
    act(ctx, topic, fields, Action::Delete).await
}

/// `POST /topics/{topic}/run-now`: delayed jobs move to their pending
/// lists.
pub(crate) async fn run_now(ctx: Ctx, Path(topic): Path<String>, fields: Fields) -> Response {
    act(ctx, topic, fields, Action::RunNow).await
}

async fn act(ctx: Ctx, topic: String, fields: Fields, action: Action) -> Response {
    let locators = match picked(fields) {
        Ok(locators) => locators,
        Err(refused) => return answer(&ctx, &topic, None, Err(refused)).await,
    };
    let state = locators.first().map(|l| l.state);
    let result = run(&ctx, &topic, &locators, action).await;
    if let Ok(message) = &result {
        tracing::info!(
            topic = %topic,
            action = action.name(),
            entries = locators.len(),
            result = %message,
            "entry action from the dashboard"
        );
    }
    answer(&ctx, &topic, state, result).await
}

async fn run(
    ctx: &Ctx,
    topic: &str,
    locators: &[Locator],
    action: Action,
) -> Result<String, Refusal> {
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    match action {
        Action::Retry => {
            let report = broker
                .retry_entries(topic, locators)
                .await
                .map_err(refusal)?;
            Ok(retried(&report))
        }
        Action::Delete => {
            let changed = broker
                .delete_entries(topic, locators)
                .await
                .map_err(refusal)?;
            Ok(with_skipped(
                format!("deleted {}", changed.done),
                changed.skipped,
                "gone",
            ))
        }
        Action::RunNow => {
            let changed = broker.run_now(topic, locators).await.map_err(refusal)?;
            Ok(with_skipped(
                format!("queued {} to run now", changed.done),
                changed.skipped,
                "gone, or not a job rmq can read",
            ))
        }
    }
}

/// `message`, and how many entries were skipped and why, if any.
fn with_skipped(message: String, skipped: usize, why: &str) -> String {
    if skipped == 0 {
        message
    } else {
        format!("{message}, {skipped} skipped ({why})")
    }
}
