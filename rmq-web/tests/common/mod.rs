//! Helpers the dashboard's Redis-backed tests share: a client on a fresh
//! Redis, requests sent through the router, and reading values out of the
//! HTML it returns.

// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use rmq::{Broker, Client, Config};
use rmq_testkit::RedisServer;
use rmq_web::Options;
use tower::ServiceExt;

pub(crate) const XSS: &str = "<script>alert(1)</script>";
pub(crate) const LEASE: Duration = Duration::from_secs(60);

/// A client and its broker on a Redis of their own.
pub(crate) struct Env {
    pub(crate) redis: RedisServer,
    pub(crate) client: Client,
    pub(crate) broker: Broker,
}

impl Env {
    pub(crate) async fn new() -> Env {
        let redis = RedisServer::start();
        let mut config = Config::default();
        config.redis_url = redis.url();
        let client = Client::connect(config)
            .await
            .expect("connect to the test Redis");
        let broker = client.broker().expect("a Redis client").clone();
        Env {
            redis,
            client,
            broker,
        }
    }

    pub(crate) fn app(&self, options: Options) -> Router {
        rmq_web::router(self.client.clone(), options)
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    #[track_caller]
    pub(crate) fn ok(self) -> String {
        self.status(StatusCode::OK)
    }

    #[track_caller]
    pub(crate) fn status(self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub(crate) async fn get(app: &Router, path: &str) -> Reply {
    get_with(app, path, &[]).await
}

pub(crate) async fn get_with(app: &Router, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

/// A POST with `headers` to a loopback host name (without auth the
/// dashboard serves no other).
pub(crate) async fn post(app: &Router, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "localhost:9090");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body.to_owned())).unwrap()).await
}

/// The value of attribute `attr` of the first tag that contains `marker`.
pub(crate) fn attr(html: &str, marker: &str, attr: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag_start = html[..=at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let key = format!("{attr}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {tag}"))
        + key.len();
    tag[from..from + tag[from..].find('"').unwrap()].to_owned()
}

pub(crate) fn csrf_token(html: &str) -> String {
    attr(html, "name=\"csrf-token\"", "content")
}

/// Nothing in `body` a strict CSP would block: no inline style or script.
#[track_caller]
pub(crate) fn assert_csp_clean(body: &str, what: &str) {
    assert!(!body.contains(" style="), "{what}: {body}");
    assert!(!body.contains("<style"), "{what}: {body}");
    assert_eq!(
        body.matches("<script").count(),
        body.matches("<script src=").count(),
        "{what}: {body}"
    );
}

/// `html` without its tags, trimmed.
pub(crate) fn text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_owned()
}

/// The text of each `<td>` in `row`, in order.
pub(crate) fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|cell| text(&cell[cell.find('>').unwrap() + 1..]))
        .collect()
}
