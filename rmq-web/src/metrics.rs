//! `/metrics` (with [`Options::metrics`](crate::Options::metrics)): the
//! queue-wide Prometheus metrics, as `worker exporter` serves them.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub(crate) async fn serve(State(state): State<AppState>) -> Response {
    let broker = match state.broker() {
        Ok(broker) => broker,
        Err(error) => return (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    };
    match rmq::telemetry::queue::render(broker, &[]).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading the queue metrics from Redis failed: {error}\n"),
        )
            .into_response(),
    }
}

/// `/healthz`: 200 while Redis answers.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let answer = match state.broker() {
        Ok(broker) => broker.topics().await.map(drop).map_err(|e| e.to_string()),
        Err(error) => Err(error),
    };
    match answer {
        Ok(()) => "ok\n".into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Redis does not answer: {error}\n"),
        )
            .into_response(),
    }
}
