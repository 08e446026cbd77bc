//! The dashboard under load: one topic with a million pending jobs and a
//! hundred thousand dead-letters, and the time `rmq_web::router` takes to
//! answer each page (in process, through `tower::ServiceExt::oneshot`: no
//! network, the body read to its end).
//!
//! Every page is asked once first: one that does not answer 200 is reported
//! with its status and not timed.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::future::join_all;
use http_body_util::BodyExt;
use rmq::broker::{Failure, State};
use rmq::{Client, Priority};
use tower::ServiceExt;

use crate::report::{quantile_ms, Record};
use crate::scenarios::{fresh, prefill, Setup};

/// The topic every job of the scenario is in (the bench's no-op task).
const TOPIC: &str = "bench_noop";
/// Jobs per fetch and per bulk enqueue while filling.
const BATCH: usize = 1000;

/// How big the topic is made, and how often each page is asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    pub(crate) pending: u64,
    pub(crate) dead: u64,
    pub(crate) requests: usize,
}

/// Fills a fresh Redis with `load`, then times every page: one record for
/// the fill and one per page that answered 200.
pub(crate) async fn run(setup: &Setup, load: Load) -> Vec<Record> {
    let _ = fresh(setup).await;
    let mut config = setup.config();
    config.dead_letter_max_entries = config.dead_letter_max_entries.max(load.dead as usize);
    let client = Client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", setup.url));
    let mut records = vec![fill(&client, load).await];

    let broker = client.broker().expect("a Redis client");
    let dead = broker
        .entries(TOPIC, State::Dead, load.dead / 2, 1)
        .await
        .expect("read a dead entry");
    let pending = broker
        .entries(TOPIC, State::Pending(Priority::Normal), load.pending / 2, 1)
        .await
        .expect("read a pending entry");
    let detail = |entries: &[rmq::broker::Entry]| match entries.first() {
        Some(entry) => format!("/topics/{TOPIC}/entries/{}", entry.locator()),
        None => format!("/topics/{TOPIC}/entries/none"),
    };
    // Cursors (topic 0 of [TOPIC], state index in `State::ALL`, offset)
    // into the middle of the pending list, the slowest place for `LRANGE`,
    // and of the dead-letters.
    let deep = format!("0.1.{}", load.pending / 2);
    let deep_dead = format!("0.5.{}", load.dead / 2);
    let pages = [
        ("dash overview", "/".to_owned()),
        ("dash topics", "/topics".to_owned()),
        (
            "dash topic normal page 1",
            format!("/topics/{TOPIC}?state=normal&page=1"),
        ),
        (
            "dash topic normal p10000",
            format!("/topics/{TOPIC}?state=normal&page=10000"),
        ),
        (
            "dash topic dead page 1",
            format!("/topics/{TOPIC}?state=dead"),
        ),
        ("dash job detail dead", detail(&dead)),
        ("dash job detail pending", detail(&pending)),
        (
            "dash search text 1st batch",
            format!("/search?q=no-such-text&topic={TOPIC}&mode=text"),
        ),
        (
            "dash search text, all match",
            format!("/search?q=ord_1&topic={TOPIC}&mode=text"),
        ),
        (
            "dash search id all topics",
            "/search?q=no-such-id&topic=&mode=id".to_owned(),
        ),
        (
            "dash search text deep",
            format!("/search?q=no-such-text&topic={TOPIC}&mode=text&cursor={deep}&part=more"),
        ),
        (
            "dash search text deep dead",
            format!("/search?q=no-such-text&topic={TOPIC}&mode=text&cursor={deep_dead}&part=more"),
        ),
    ];
    let app = rmq_web::router(client.clone(), rmq_web::Options::new());
    for (label, path) in pages {
        let (status, _) = ask(&app, &path).await;
        if status != StatusCode::OK {
            println!("{label:<28} status {status}, not timed: GET {path}");
            continue;
        }
        let mut times = Vec::with_capacity(load.requests);
        for _ in 0..load.requests {
            let (status, took) = ask(&app, &path).await;
            assert_eq!(status, StatusCode::OK, "GET {path} answered {status}");
            times.push(took.as_nanos() as u64);
        }
        times.sort_unstable();
        eprintln!("  {label}: GET {path}");
        let mut r = Record::new(label, load.requests as u64, 1);
        r.p50_ms = quantile_ms(&times, 0.5);
        r.p99_ms = quantile_ms(&times, 0.99);
        r.backlog = Some(load.pending);
        records.push(r);
    }
    records
}

/// `load.dead` jobs enqueued, fetched and failed for good, then
/// `load.pending` jobs enqueued, all in batches of [`BATCH`].
async fn fill(client: &Client, load: Load) -> Record {
    let broker = client.broker().expect("a Redis client");
    let started = Instant::now();
    prefill(client, load.dead, BATCH).await;
    let failure = Failure {
        error: "rmq-bench: declined (dead on purpose)",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    let mut killed = 0;
    while killed < load.dead {
        let jobs = broker
            .fetch(TOPIC, BATCH, Duration::from_secs(600))
            .await
            .expect("fetch")
            .jobs;
        if jobs.is_empty() {
            break;
        }
        for result in join_all(jobs.iter().map(|job| broker.fail(TOPIC, job, &failure))).await {
            result.expect("fail");
        }
        killed += jobs.len() as u64;
    }
    let dead_s = started.elapsed().as_secs_f64();
    prefill(client, load.pending, BATCH).await;
    let total_s = started.elapsed().as_secs_f64();
    eprintln!(
        "  filled {TOPIC} in {total_s:.1} s: {killed} dead in {dead_s:.1} s, {} pending in {:.1} s",
        load.pending,
        total_s - dead_s
    );
    let mut r = Record::new("dash fill", load.pending + killed, 1);
    r.per_s = Some((load.pending + killed) as f64 / total_s);
    r.backlog = Some(load.pending);
    r
}

/// GET `path`, the body read to its end: the status and the time taken.
async fn ask(app: &axum::Router, path: &str) -> (StatusCode, Duration) {
    let request = Request::builder()
        .uri(path)
        .body(Body::empty())
        .expect("a request");
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response.into_body().collect().await.expect("the body");
    let took = started.elapsed();
    drop(body);
    (status, took)
}
