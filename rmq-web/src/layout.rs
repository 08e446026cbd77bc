//! The page shell: head (style sheet, htmx and its configuration, the CSRF
//! token), the navigation, the message area, and what every handler needs
//! to know about its request ([`Ctx`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::assets;
use crate::base::{base_path, join};
use crate::state::AppState;

/// htmx settings, read from `<meta name="htmx-config">` (no inline script):
/// no injected style tag and no `eval`, so the strict CSP holds; error
/// replies (403, 404, 503) are swapped in like others, so their message
/// shows.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"historyCacheSize":0,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}"#;

/// The pages of the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Topics,
    Workers,
    Tasks,
    Schedules,
    Locks,
    Search,
}

/// Label, path, and whether the page exists yet.
const NAV: [(Nav, &str, &str, bool); 7] = [
    (Nav::Overview, "Overview", "/", true),
    (Nav::Topics, "Topics", "/topics", true),
    (Nav::Workers, "Workers", "/workers", true),
    (Nav::Tasks, "Tasks", "/tasks", true),
    (Nav::Schedules, "Schedules", "/schedules", true),
    (Nav::Locks, "Locks", "/locks", true),
    (Nav::Search, "Search", "/search", true),
];

/// What a handler knows about its request and router.
pub(crate) struct Ctx {
    /// The mount prefix (see `base`).
    pub(crate) base: String,
    /// Whether htmx sent the request (`HX-Request`).
    pub(crate) htmx: bool,
    pub(crate) state: AppState,
}

impl Ctx {
    /// `path` under the mount prefix.
    pub(crate) fn href(&self, path: &str) -> String {
        join(&self.base, path)
    }

    pub(crate) fn read_only(&self) -> bool {
        self.state.options.read_only
    }

    pub(crate) fn csrf(&self) -> &str {
        self.state.csrf.hex()
    }

    /// The hidden form field that carries the CSRF token.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(crate::csrf::FIELD) value=(self.csrf()); }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Ctx, Self::Rejection> {
        Ok(Ctx {
            base: base_path(parts),
            htmx: parts.headers.contains_key("hx-request"),
            state: state.clone(),
        })
    }
}

/// A whole page: `heading` over `content`, `current` marked in the
/// navigation.
pub(crate) fn page(ctx: &Ctx, current: Nav, heading: &str, content: Markup) -> Markup {
    page_with_flash(ctx, current, heading, None, content)
}

/// [`page`] with a message in the message area.
pub(crate) fn page_with_flash(
    ctx: &Ctx,
    current: Nav,
    heading: &str,
    flash: Option<Markup>,
    content: Markup,
) -> Markup {
    let title = &ctx.state.options.title;
    let headers = format!(r#"{{"X-CSRF-Token":"{}"}}"#, ctx.csrf());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                meta name="csrf-token" content=(ctx.csrf());
                title { (heading) " · " (title) }
                link rel="stylesheet" href=(assets::css_href(&ctx.base));
                script src=(assets::htmx_href(&ctx.base)) defer {}
            }
            body hx-headers=(headers) {
                header.top {
                    a.brand href=(ctx.href("/")) { (title) }
                    nav aria-label="Sections" {
                        @for (nav, label, path, ready) in NAV {
                            @if !ready {
                                span.soon aria-disabled="true" { (label) }
                            } @else if nav == current {
                                a.current href=(ctx.href(path)) aria-current="page" { (label) }
                            } @else {
                                a href=(ctx.href(path)) { (label) }
                            }
                        }
                    }
                    @if ctx.read_only() {
                        span.mode { "read-only" }
                    }
                }
                main {
                    h1 { (heading) }
                    div #flash aria-live="polite" { @if let Some(flash) = flash { (flash) } }
                    (content)
                }
            }
        }
    }
}

/// A red banner with `message`.
pub(crate) fn error_banner(message: &str) -> Markup {
    html! { p.banner.error role="alert" { (message) } }
}

/// `markup` as a response: 200, or 503 when the page holds a Redis error.
pub(crate) fn respond(markup: Markup, failed: bool) -> Response {
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Html(markup.into_string())).into_response()
}

/// The `?part=` of a live region: its content alone, for htmx.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Part {
    pub(crate) part: Option<String>,
}

impl Part {
    /// Whether the request asks for the live part alone.
    pub(crate) fn live(&self) -> bool {
        self.part.is_some()
    }
}
