//! Who may look, when [`Options::auth`](crate::Options::auth) is set.
//!
//! - Token: `Authorization: Bearer <token>` (scripts, Prometheus), or the
//!   session cookie that a `GET ...?token=<token>` login sets (browsers:
//!   the login page asks for the token). The cookie holds a random value
//!   of this router, not the token, and is `HttpOnly` and
//!   `SameSite=Strict`; a restart logs browsers out.
//! - Basic: `Authorization: Basic`, which browsers ask for after a 401
//!   with `WWW-Authenticate: Basic`.
//!
//! Secrets are compared in constant time. `/healthz` and the static
//! assets are open, for probes and the login page.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use maud::{html, DOCTYPE};

use crate::base::base_path;
use crate::state::{constant_time_eq, AppState};
use crate::{assets, Auth};

/// The session cookie a token login sets.
pub(crate) const COOKIE: &str = "rmq_web_session";

pub(crate) async fn check(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = &state.options.auth else {
        return match foreign_host(request.headers(), &state.options.hosts) {
            None => next.run(request).await,
            Some(host) => crate::refuse::refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: this dashboard has no auth and answers only requests to \
                     localhost, 127.0.0.1 or [::1], not to `{host}`; set RMQ_WEB_TOKEN \
                     (or Options::auth), or add the name with Options::host"
                ),
            ),
        };
    };
    let path = request.uri().path();
    if path == "/healthz" || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    match auth {
        Auth::Basic { user, password } => {
            // An empty secret (set through the API) matches nothing.
            if !password.is_empty() && basic_matches(request.headers(), user, password) {
                return next.run(request).await;
            }
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "this dashboard needs a user name and password\n",
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rmq\", charset=\"UTF-8\""),
            );
            response
        }
        Auth::Token(token) => {
            let headers = request.headers();
            let valid = |given: &str| {
                !token.is_empty() && constant_time_eq(given.as_bytes(), token.as_bytes())
            };
            if bearer(headers).is_some_and(valid)
                || cookie(headers, COOKIE).is_some_and(|c| state.session.matches(c))
            {
                return next.run(request).await;
            }
            // A live region refreshed after the session ended (a restart):
            // reload the whole page, which shows the login form.
            if headers.contains_key("hx-request") {
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                response
                    .headers_mut()
                    .insert("hx-refresh", HeaderValue::from_static("true"));
                return response;
            }
            let (parts, _) = request.into_parts();
            let base = base_path(&parts);
            let login = query_param(parts.uri.query().unwrap_or_default(), "token");
            match login {
                Some(given) if valid(&given) => logged_in(&parts, &base, state.session.hex()),
                given => login_page(&base, given.is_some()),
            }
        }
    }
}

/// The host name of the request when it is neither a loopback name nor
/// one of `allowed`; `None` without a `Host` header (not a browser).
fn foreign_host(headers: &HeaderMap, allowed: &[String]) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().unwrap_or("?");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    }
    .to_ascii_lowercase();
    let local = matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1");
    (!local && !allowed.contains(&name)).then(|| host.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn basic_matches(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (given_user, given_password) = (&decoded[..colon], &decoded[colon + 1..]);
    // Both compared, whichever fails, so the time tells nothing.
    let user_ok = constant_time_eq(given_user, user.as_bytes());
    let password_ok = constant_time_eq(given_password, password.as_bytes());
    user_ok & password_ok
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sets the session cookie and sends the browser to the same page without
/// the token in its address.
fn logged_in(parts: &axum::http::request::Parts, base: &str, session: &str) -> Response {
    let rest: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    // One leading slash: `//evil.example` would send the browser away.
    let path = format!("/{}", parts.uri.path().trim_start_matches(['/', '\\']));
    let mut location = crate::base::join(base, &path);
    if !rest.is_empty() {
        location.push('?');
        location.push_str(&rest.join("&"));
    }
    let path = if base.is_empty() { "/" } else { base };
    let cookie = format!("{COOKIE}={session}; Path={path}; HttpOnly; SameSite=Strict");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(&location),
        HeaderValue::from_str(&cookie),
    ) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

fn login_page(base: &str, wrong: bool) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "rmq: log in" }
                link rel="stylesheet" href=(assets::css_href(base));
            }
            body.login {
                main {
                    h1 { "rmq" }
                    @if wrong {
                        p.flash.error role="alert" { "That token is wrong." }
                    }
                    form method="get" {
                        label for="token" { "Access token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Log in" }
                    }
                    p.hint { "Scripts may send " code { "Authorization: Bearer <token>" } " instead." }
                }
            }
        }
    };
    let mut response = (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rmq\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic b3BzOnB3OjE="), // ops:pw:1
        );
        assert!(basic_matches(&headers, "ops", "pw:1"));
        assert!(!basic_matches(&headers, "ops", "pw"));
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rmq_web_session=xyz"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(
            query_param("a=1&token=a%2Fb+c", "token").as_deref(),
            Some("a/b c")
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn only_loopback_names_and_added_ones_pass_without_auth() {
        let with = |host: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static(host));
            headers
        };
        let allowed = ["dash.internal".to_owned()];
        for ok in [
            "localhost:9090",
            "127.0.0.1:9090",
            "[::1]:9090",
            "LOCALHOST",
            "dash.internal:80",
        ] {
            assert_eq!(foreign_host(&with(ok), &allowed), None, "{ok}");
        }
        for bad in ["evil.example:9090", "127.0.0.1.evil.example", "[::2]:1"] {
            assert!(foreign_host(&with(bad), &allowed).is_some(), "{bad}");
        }
        assert_eq!(foreign_host(&HeaderMap::new(), &allowed), None);
    }
}
