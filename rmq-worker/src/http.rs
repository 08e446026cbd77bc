//! A small HTTP/1.1 server for `/metrics` and `/healthz` (hyper), shared by
//! `run --metrics-addr` and `exporter`. GET and HEAD only; anything else is
//! a 404 or a 405.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// What a route answers: status, content type, body.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn metrics(body: String) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: PROMETHEUS_TEXT,
            body,
        }
    }

    /// `/healthz`: 200 "ok", or 503 with the reason.
    pub(crate) fn health(result: Result<(), String>) -> Reply {
        match result {
            Ok(()) => Reply::text(StatusCode::OK, "ok\n".to_owned()),
            Err(reason) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        }
    }

    pub(crate) fn text(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            content_type: PLAIN_TEXT,
            body,
        }
    }
}

/// The paths served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Metrics,
    Health,
}

type BoxFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
/// Answers a route.
pub(crate) type Handler = Arc<dyn Fn(Route) -> BoxFuture + Send + Sync>;

/// Binds `addr` (before anything else starts, so a bad address fails fast).
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, rmq::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| rmq::Error::Config {
            option: "metrics address",
            rule: format!("cannot listen on {addr}: {e}"),
        })
}

/// Serves connections on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics endpoint: accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(answer(&handler, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
        });
    }
}

async fn answer(handler: &Handler, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let route = match request.uri().path() {
        "/metrics" => Some(Route::Metrics),
        "/healthz" => Some(Route::Health),
        _ => None,
    };
    let reply = match (route, request.method()) {
        (None, _) => Reply::text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
        (Some(route), &Method::GET | &Method::HEAD) => handler(route).await,
        (Some(_), _) => Reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD\n".to_owned(),
        ),
    };
    let body = if request.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(reply.body)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}
