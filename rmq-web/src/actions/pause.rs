//! `POST /topics/{topic}/pause` and `.../resume`: while a topic is paused
//! no worker leases its jobs; enqueues still land and running jobs finish.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;

use super::{answer, refusal, Refusal};
use crate::layout::Ctx;

/// `POST /topics/{topic}/pause`.
pub(crate) async fn pause(ctx: Ctx, Path(topic): Path<String>) -> Response {
    let result = switch(&ctx, &topic, true).await;
    answer(&ctx, &topic, None, result).await
}

/// `POST /topics/{topic}/resume`.
pub(crate) async fn resume(ctx: Ctx, Path(topic): Path<String>) -> Response {
    let result = switch(&ctx, &topic, false).await;
    answer(&ctx, &topic, None, result).await
}

async fn switch(ctx: &Ctx, topic: &str, pause: bool) -> Result<String, Refusal> {
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    let changed = if pause {
        broker.pause(topic).await
    } else {
        broker.resume(topic).await
    }
    .map_err(refusal)?;
    let verb = if pause { "paused" } else { "resumed" };
    if changed {
        tracing::info!(topic = %topic, "topic {verb} from the dashboard");
    }
    Ok(match (pause, changed) {
        (true, true) => {
            format!("paused topic {topic}: no worker starts its jobs until it is resumed")
        }
        (true, false) => format!("topic {topic} was already paused"),
        (false, true) => format!("resumed topic {topic}"),
        (false, false) => format!("topic {topic} was not paused"),
    })
}
