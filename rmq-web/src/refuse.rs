//! The answer to a request the dashboard will not serve: a status and a
//! message that says why, as an HTML fragment (escaped: messages may hold
//! ids and names from Redis) that htmx swaps into the page's message area
//! and a browser shows as is.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

/// `status` with `message` in a `flash error` paragraph.
pub(crate) fn refuse(status: StatusCode, message: impl AsRef<str>) -> Response {
    let body = html! { p.flash.error role="alert" { (message.as_ref()) } };
    (status, Html(body.into_string())).into_response()
}
