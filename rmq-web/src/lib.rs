//! A web dashboard for [rmq](https://docs.rs/rmq): an [axum] router that
//! shows queue depths and throughput, workers and tasks, with live
//! updates (htmx, embedded: nothing comes from a CDN) and worker actions.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = rmq::Client::from_env().await?;
//! let options = rmq_web::Options::from_env()?;
//! let addr: std::net::SocketAddr = "127.0.0.1:9090".parse()?;
//! rmq_web::check_listen(addr, &options)?;
//! // Mounted under a prefix of your own app, or alone at `/`.
//! let app = axum::Router::new().nest("/admin/rmq", rmq_web::router(client, options));
//! let listener = tokio::net::TcpListener::bind(addr).await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Pages: `/` (overview), `/topics`, `/topics/{topic}` (entries by state,
//! with retry / delete / run now / purge, pause / resume and enqueue),
//! `/topics/{topic}/entries/{locator}` (job detail: status by id, cancel),
//! `/workers` (with quiet / stop), `/tasks`, `/schedules` (cron, with
//! pause / resume / run now), `/search` (by text or exact
//! id, with the status by id); `/healthz`; `/metrics` with
//! [`Options::metrics`].
//!
//! Security: every response carries a strict Content Security Policy
//! ([`CONTENT_SECURITY_POLICY`]: no inline script or style) and
//! `nosniff`, `DENY` framing and `same-origin` referrer headers; all data
//! is HTML-escaped. Requests that act (POST) need the page's CSRF token and
//! must not come from another site. With [`Options::auth`] every page needs
//! a token or basic-auth credentials; [`check_listen`] refuses a
//! non-loopback address without it. [`Options::read_only`] removes every
//! action.

mod actions;
mod assets;
mod auth;
mod base;
mod chart;
mod csrf;
mod format;
mod layout;
mod metrics;
mod options;
mod pages;
mod payload;
mod read_only;
mod refuse;
mod security;
mod state;

use std::sync::Arc;

use axum::middleware::{from_fn_with_state, map_response};
use axum::routing::{get, post};
use axum::Router;

pub use assets::HTMX_VERSION;
pub use options::{check_listen, Auth, Options};
pub use security::CONTENT_SECURITY_POLICY;

/// The dashboard for `client`'s Redis, to serve alone or to mount under any
/// path of another app with [`Router::nest`]: its links follow the prefix
/// the request came in under.
pub fn router(client: rmq::Client, options: Options) -> Router {
    let metrics = options.metrics;
    let state = Arc::new(state::Shared {
        client,
        options,
        csrf: state::Secret::random(),
        session: state::Secret::random(),
    });
    let actions = Router::new()
        .route("/workers/{id}/{command}", post(pages::workers::command))
        .merge(actions::routes())
        .route_layer(from_fn_with_state(state.clone(), read_only::refuse));
    let mut router = Router::new()
        .route("/", get(pages::overview::show))
        .route("/topics", get(pages::topics::show))
        .route("/topics/{topic}", get(pages::topic::show))
        .route("/topics/{topic}/entries/{locator}", get(pages::job::show))
        .route("/workers", get(pages::workers::show))
        .route("/tasks", get(pages::tasks::show))
        .route("/batches", get(pages::batches::show))
        .route("/schedules", get(pages::schedules::show))
        .route("/locks", get(pages::locks::show))
        .route("/search", get(pages::search::show))
        .route("/healthz", get(metrics::health))
        .route("/assets/{name}", get(assets::serve))
        .merge(actions);
    if metrics {
        router = router.route("/metrics", get(metrics::serve));
    }
    router
        .layer(from_fn_with_state(state.clone(), csrf::check))
        .layer(from_fn_with_state(state.clone(), auth::check))
        .layer(map_response(security::headers))
        .with_state(state)
}
