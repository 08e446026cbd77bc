//! Cross-site request forgery: every request that may change something
//! (any method but GET, HEAD and OPTIONS) must come from the dashboard's
//! own pages. It must carry the router's token, in the `X-CSRF-Token`
//! header (htmx sends it from `hx-headers` on `<body>`) or in a `csrf`
//! form field (plain forms), and must not be marked cross-site by the
//! browser (`Sec-Fetch-Site`) or come from another origin (`Origin` against
//! `Host`). Refused: 403 with the reason.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::refuse::refuse;
use crate::state::AppState;

/// The header htmx sends the token in.
pub(crate) const HEADER: &str = "x-csrf-token";
/// The form field plain forms send the token in.
pub(crate) const FIELD: &str = "csrf";
/// The largest form body read to find the token.
const MAX_FORM: usize = 64 * 1024;

pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if let Err(reason) = same_origin(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, reason);
    }
    let from_header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, token) = match from_header {
        Some(token) => (request, Some(token)),
        None if is_form(request.headers()) => {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "refused: the form is too large",
                );
            };
            let token = form_field(&bytes, FIELD);
            (Request::from_parts(parts, Body::from(bytes)), token)
        }
        None => (request, None),
    };
    match token {
        Some(token) if state.csrf.matches(&token) => next.run(request).await,
        Some(_) => refuse(
            StatusCode::FORBIDDEN,
            "refused: the CSRF token is wrong (the dashboard restarted since this page \
             was loaded?): reload the page and try again",
        ),
        None => refuse(
            StatusCode::FORBIDDEN,
            "refused: the request has no CSRF token; actions must come from the \
             dashboard's own pages: reload the page and try again",
        ),
    }
}

/// Refuses what the browser marks as cross-site, and an `Origin` whose
/// host is not the `Host` of the request.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A browser that says where the request comes from is believed: a
    // proxy may rewrite `Host`, so `Origin` is compared only without it.
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(format!(
                "refused: a {site} request (Sec-Fetch-Site) may not act on the dashboard"
            ));
        }
        return Ok(());
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let origin_host = origin.split_once("://").map(|(_, host)| host);
        let host = text(header::HOST.as_str());
        let same = match (origin_host, host) {
            (Some(o), Some(h)) => o.eq_ignore_ascii_case(h),
            // No Host header to compare with (HTTP/2 without :authority):
            // the token alone decides.
            (Some(_), None) => true,
            // `Origin: null` (sandboxed frames, some redirects).
            (None, _) => false,
        };
        if !same {
            return Err(format!(
                "refused: a request from origin {origin} may not act on the dashboard at {}",
                host.unwrap_or("this host")
            ));
        }
    }
    Ok(())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The raw value of field `name` of a URL-encoded form (the token is hex,
/// so it needs no decoding).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_the_form_field() {
        assert_eq!(
            form_field(b"a=1&csrf=ab12&b=2", "csrf").as_deref(),
            Some("ab12")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }

    #[test]
    fn origin_must_match_host() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("dash:9090"));
        same_origin(&headers).unwrap();
        headers.insert("origin", HeaderValue::from_static("http://dash:9090"));
        same_origin(&headers).unwrap();
        headers.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(same_origin(&headers).unwrap_err().contains("evil.example"));
        headers.insert("origin", HeaderValue::from_static("null"));
        assert!(same_origin(&headers).is_err());
        headers.remove("origin");
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&headers).unwrap_err().contains("cross-site"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        same_origin(&headers).unwrap();
    }
}
