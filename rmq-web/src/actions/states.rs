//! `POST /topics/{topic}/states/{state}/purge` (any state but processing)
//! and `POST /topics/{topic}/states/{state}/retry` (dead and parse_error):
//! every entry of a state at once.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use rmq::broker::State;

use super::{answer, noun, refusal, retried, Refusal};
use crate::layout::Ctx;

/// `POST /topics/{topic}/states/{state}/purge`: deletes every entry of the
/// state.
pub(crate) async fn purge(ctx: Ctx, Path((topic, state)): Path<(String, String)>) -> Response {
    let result = match state.parse::<State>() {
        Ok(state) => purge_state(&ctx, &topic, state).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, e)),
    };
    answer(&ctx, &topic, state.parse().ok(), result).await
}

async fn purge_state(ctx: &Ctx, topic: &str, state: State) -> Result<String, Refusal> {
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    let purged = broker.purge_state(topic, state).await.map_err(refusal)?;
    tracing::info!(topic = %topic, state = %state, purged, "state purged from the dashboard");
    Ok(format!("purged {purged} {} entries", noun(state)))
}

/// `POST /topics/{topic}/states/{state}/retry`: every dead-letter (or
/// parse-error) entry runs again as a new job.
pub(crate) async fn retry_all(ctx: Ctx, Path((topic, state)): Path<(String, String)>) -> Response {
    let result = match state.parse::<State>() {
        Ok(state) => retry_state(&ctx, &topic, state).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, e)),
    };
    answer(&ctx, &topic, state.parse().ok(), result).await
}

async fn retry_state(ctx: &Ctx, topic: &str, state: State) -> Result<String, Refusal> {
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    let report = match state {
        State::Dead => broker.retry_all_dead(topic).await,
        State::ParseError => broker.retry_all_parse_errors(topic).await,
        other => {
            return Err((
                StatusCode::CONFLICT,
                format!(
                "cannot retry {} entries: only dead-letter and parse-error entries can be retried",
                noun(other)
            ),
            ))
        }
    }
    .map_err(refusal)?;
    let message = retried(&report);
    tracing::info!(topic = %topic, state = %state, result = %message, "state retried from the dashboard");
    Ok(message)
}
