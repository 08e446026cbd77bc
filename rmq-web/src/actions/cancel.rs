//! `POST /topics/{topic}/cancel`: cancel the job the form's `id` field
//! names. A queued job (pending, delayed, waiting for a retry) ends
//! cancelled at once; a running one is asked to stop at its next lease
//! renewal and is not retried. Queued jobs are found through the status
//! index only: one that is not indexed is "not found" (Delete removes it).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::Response;
use rmq::Cancelled;
use serde::Deserialize;

use super::{answer, refusal, Refusal};
use crate::layout::Ctx;

/// The cancel form.
#[derive(Deserialize)]
pub(crate) struct Fields {
    /// The job's id.
    id: String,
}

/// `POST /topics/{topic}/cancel`.
pub(crate) async fn cancel(
    ctx: Ctx,
    Path(topic): Path<String>,
    fields: Result<Form<Fields>, FormRejection>,
) -> Response {
    let result = match fields {
        Ok(Form(fields)) => run(&ctx, &topic, fields.id.trim()).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, e.body_text())),
    };
    answer(&ctx, &topic, None, result).await
}

async fn run(ctx: &Ctx, topic: &str, id: &str) -> Result<String, Refusal> {
    if id.is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "no job id: name the job to cancel".to_owned(),
        ));
    }
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    let outcome = broker.cancel(topic, id).await.map_err(refusal)?;
    tracing::info!(topic = %topic, job_id = %id, outcome = ?outcome, "cancel from the dashboard");
    message(topic, id, outcome)
}

/// What a cancel did, in words; a job not found is a 404.
fn message(topic: &str, id: &str, outcome: Cancelled) -> Result<String, Refusal> {
    match outcome {
        Cancelled::Removed => Ok(format!(
            "cancelled job {id} of topic {topic}: removed from the queue, it will not run"
        )),
        Cancelled::Signalled => Ok(format!(
            "asked job {id} of topic {topic} to stop: its worker cancels it at the next lease renewal, and it is not retried"
        )),
        Cancelled::AlreadySignalled => Ok(format!(
            "job {id} of topic {topic} was already asked to stop; its worker has not stopped it yet"
        )),
        Cancelled::AlreadyEnded => Ok(format!(
            "job {id} of topic {topic} had already ended (dead, cancelled or unreadable): nothing to cancel"
        )),
        Cancelled::NotFound => Err((
            StatusCode::NOT_FOUND,
            format!(
                "job {id} of topic {topic} not found: it completed, or it is queued but not indexed by id (Delete removes such an entry)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_a_cancel_did() {
        assert!(message("t", "a", Cancelled::Removed)
            .unwrap()
            .starts_with("cancelled job a of topic t: removed"));
        assert!(message("t", "a", Cancelled::Signalled)
            .unwrap()
            .starts_with("asked job a of topic t to stop"));
        let (status, _) = message("t", "a", Cancelled::NotFound).unwrap_err();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
