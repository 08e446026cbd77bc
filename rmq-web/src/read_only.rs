//! Read-only mode: every action route answers 403 (the pages render no
//! action buttons either).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::refuse::refuse as answer;
use crate::state::AppState;

pub(crate) async fn refuse(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.options.read_only {
        return answer(
            StatusCode::FORBIDDEN,
            "refused: this dashboard is read-only",
        );
    }
    next.run(request).await
}
