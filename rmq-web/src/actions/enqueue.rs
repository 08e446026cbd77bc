//! `POST /topics/{topic}/enqueue` (field `json`): enqueues a job given as
//! JSON, checked against the payload type of the task linked for the
//! topic, as the CLI's `enqueue` does (`Client::enqueue_json`).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::Response;
use rmq::JobOptions;

use super::{answer, refusal};
use crate::layout::Ctx;

/// The enqueue form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Fields {
    /// The payload, as JSON.
    #[serde(default)]
    json: String,
}

/// `POST /topics/{topic}/enqueue`: the new job's id, or why the JSON does
/// not fit.
pub(crate) async fn enqueue(
    ctx: Ctx,
    Path(topic): Path<String>,
    fields: Result<Form<Fields>, FormRejection>,
) -> Response {
    let result = match fields {
        Ok(Form(fields)) => ctx
            .state
            .client
            .enqueue_json(&topic, &fields.json, &JobOptions::default())
            .await
            .map(|id| {
                tracing::info!(topic = %topic, job_id = %id, "job enqueued from the dashboard");
                format!("enqueued job {id}")
            })
            .map_err(refusal),
        Err(e) => Err((StatusCode::BAD_REQUEST, e.body_text())),
    };
    answer(&ctx, &topic, None, result).await
}
