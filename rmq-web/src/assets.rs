//! The dashboard's static files, embedded in the binary and served under
//! names that change with their contents, so browsers may cache them for
//! a year: htmx (vendored from the npm package `htmx.org`, 0BSD licence in
//! `assets/htmx.LICENSE`) and the style sheet.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The vendored htmx release.
pub const HTMX_VERSION: &str = "2.0.11";

const HTMX: &[u8] = include_bytes!("../assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("../assets/rmq.css");

struct Asset {
    name: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        Asset {
            name: format!("htmx-{HTMX_VERSION}-{}.min.js", digest(HTMX)),
            bytes: HTMX,
            content_type: "text/javascript; charset=utf-8",
        },
        Asset {
            name: format!("rmq-{}.css", digest(CSS)),
            bytes: CSS,
            content_type: "text/css; charset=utf-8",
        },
    ]
});

/// The first 8 hex digits of the FNV-1a hash of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
}

/// Where the page finds htmx.
pub(crate) fn htmx_href(base: &str) -> String {
    format!("{base}/assets/{}", ASSETS[0].name)
}

/// Where the page finds the style sheet.
pub(crate) fn css_href(base: &str) -> String {
    format!("{base}/assets/{}", ASSETS[1].name)
}

/// `GET /assets/{name}`: an asset by its current name, cached for a year.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response()
}
