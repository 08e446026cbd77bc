//! Prometheus endpoints of real processes: a worker's `/metrics` and
//! `/healthz` (`run --metrics-addr`), and the queue-wide `exporter`,
//! scraped over HTTP and read with a real text-format parser.

mod common;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{drained, eventually, Probe, Worker};
use prometheus_parse::{Scrape, Value};
use rmq::Priority;
use rmq_it::{Flaky, Hangs, Panics, Permanent, Record};
use rmq_testkit::{free_port, RedisServer};

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    common::http_get(port, path, &[]).map(|r| (r.status, r.body))
}

fn scrape_metrics(port: u16) -> Scrape {
    let (status, body) = get(port, "/metrics").expect("the metrics endpoint answers");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid text format")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

/// The declared `# TYPE` of every metric family.
fn types(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

fn processed(scrape: &Scrape, topic: &str, outcome: &str) -> f64 {
    value(
        scrape,
        "rmq_jobs_processed_total",
        &[("topic", topic), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_serves_its_metrics_and_health() {
    let mut server = RedisServer::start();
    let probe = Probe::new(server.url());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let worker = Worker::run(
        &server.url(),
        &["--metrics-addr", &addr, "--concurrency", "8"],
        &[],
    );
    eventually(
        "the worker to report healthy",
        Duration::from_secs(20),
        || async { get(port, "/healthz").filter(|(status, _)| *status == 200) },
    )
    .await;

    let client = probe.client().await;
    client
        .enqueue_many((0..20).map(|seq| Record { seq }))
        .await
        .expect("enqueue");
    Flaky {
        seq: 1,
        fail_times: 1,
    }
    .enqueue(&client)
    .await
    .expect("enqueue");
    Permanent { seq: 2 }
        .enqueue(&client)
        .await
        .expect("enqueue");
    Panics { seq: 3 }.enqueue(&client).await.expect("enqueue");
    Hangs { seq: 4 }.enqueue(&client).await.expect("enqueue");
    for topic in ["record", "flaky", "permanent", "panics", "hangs"] {
        drained(&probe, topic, Duration::from_secs(20)).await;
    }

    let scrape = eventually(
        "every outcome in /metrics",
        Duration::from_secs(10),
        || async {
            let scrape = scrape_metrics(port);
            let want = [
                ("record", "completed", 20.0),
                ("flaky", "retried", 1.0),
                ("flaky", "completed", 1.0),
                ("permanent", "dead", 1.0),
                // Three attempts (retries = 2), each a panic, the last dead-lettered.
                ("panics", "panicked", 3.0),
                // Two attempts (retries = 1), each past its 300 ms timeout.
                ("hangs", "timeout", 2.0),
            ];
            want.iter()
                .all(|&(topic, outcome, n)| processed(&scrape, topic, outcome) == n)
                .then_some(scrape)
        },
    )
    .await;
    assert_eq!(processed(&scrape, "record", "retried"), 0.0);
    assert_eq!(
        processed(&scrape, "panics", "dead"),
        0.0,
        "a panic counts as panicked"
    );
    assert_eq!(processed(&scrape, "hangs", "lease_lost"), 0.0);
    assert_eq!(
        value(&scrape, "rmq_jobs_fetched_total", &[("topic", "record")]),
        Some(20.0)
    );
    assert_eq!(
        value(&scrape, "rmq_jobs_fetched_total", &[("topic", "flaky")]),
        Some(2.0),
        "two attempts, two leases"
    );
    assert_eq!(
        value(&scrape, "rmq_job_duration_seconds", &[("topic", "record")]),
        Some(20.0),
        "one handler time per run"
    );
    assert_eq!(
        value(
            &scrape,
            "rmq_job_wait_seconds",
            &[("topic", "record"), ("priority", "normal")]
        ),
        Some(20.0),
        "one wait per first attempt"
    );
    assert_eq!(
        value(
            &scrape,
            "rmq_job_wait_seconds",
            &[("topic", "flaky"), ("priority", "normal")]
        ),
        Some(1.0),
        "the retry has no wait since due"
    );
    assert_eq!(value(&scrape, "rmq_worker_concurrency", &[]), Some(8.0));
    assert_eq!(
        value(&scrape, "rmq_worker_jobs_active", &[("topic", "record")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &scrape,
            "rmq_job_running_max_seconds",
            &[("topic", "record")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &scrape,
            "rmq_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    for sample in &scrape.samples {
        for key in ["id", "job_id", "host", "instance"] {
            assert!(sample.labels.get(key).is_none(), "{sample:?}");
        }
    }
    let (_, body) = get(port, "/metrics").expect("scrape");
    let types = types(&body);
    for (name, kind) in [
        ("rmq_jobs_fetched_total", "counter"),
        ("rmq_jobs_processed_total", "counter"),
        ("rmq_leases_lost_total", "counter"),
        ("rmq_redis_errors_total", "counter"),
        ("rmq_job_duration_seconds", "histogram"),
        ("rmq_job_wait_seconds", "histogram"),
        ("rmq_worker_jobs_active", "gauge"),
        ("rmq_worker_prefetched_jobs", "gauge"),
        ("rmq_worker_concurrency", "gauge"),
        ("rmq_job_running_max_seconds", "gauge"),
        ("rmq_build_info", "gauge"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "{name}: {body}"
        );
    }
    for (name, kind) in &types {
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
    }
    assert!(body.contains("# HELP rmq_jobs_processed_total "), "{body}");
    for name in ["rmq_job_duration_seconds", "rmq_job_wait_seconds"] {
        let declared = format!("# TYPE {name} histogram\n");
        assert_eq!(
            body.matches(&declared).count(),
            1,
            "{name} declared once: {body}"
        );
        assert!(
            body.contains(&format!("{name}_bucket{{topic=\"record\",")),
            "{body}"
        );
    }
    assert_eq!(get(port, "/nope").map(|(s, _)| s), Some(404));

    // Redis gone: the worker stays up but says it is not healthy.
    server.kill();
    let reason = eventually("/healthz to fail", Duration::from_secs(15), || async {
        get(port, "/healthz").and_then(|(status, body)| (status == 503).then_some(body))
    })
    .await;
    assert!(reason.contains("Redis"), "{reason}");
    let scrape = scrape_metrics(port);
    assert!(
        value(&scrape, "rmq_redis_errors_total", &[("op", "wait")]).unwrap_or(0.0) >= 1.0
            || value(&scrape, "rmq_redis_errors_total", &[("op", "fetch")]).unwrap_or(0.0) >= 1.0,
        "{:?}",
        scrape.samples
    );
    drop(worker);
}

/// A child process killed on drop.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_serves_queue_wide_gauges_from_redis() {
    let server = RedisServer::start();
    let probe = Probe::new(server.url());
    let client = probe.client().await;
    Record { seq: 0 }
        .priority(Priority::High)
        .enqueue(&client)
        .await
        .expect("enqueue");
    client
        .enqueue_many([Record { seq: 1 }, Record { seq: 2 }])
        .await
        .expect("enqueue");
    Record { seq: 3 }
        .delay(Duration::from_secs(3600))
        .enqueue(&client)
        .await
        .expect("enqueue");
    let mut conn = probe.conn().await;
    let _: () = redis::pipe()
        .zadd("{record}:dead", "not a real entry", 1)
        .hset_multiple(
            "{record}:stats",
            &[
                ("completed", 7),
                ("failed", 2),
                ("retried", 1),
                ("dead", 1),
                ("h3", 2),
                ("h10", 5),
                ("dur_sum", 7_000),
            ],
        )
        .query_async(&mut conn)
        .await
        .expect("prefill");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _exporter = Exporter(
        common::command(
            &server.url(),
            &["exporter", "--listen", &listen, "--topics", "empty"],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the exporter"),
    );
    eventually(
        "the exporter to answer",
        Duration::from_secs(20),
        || async { get(port, "/healthz").filter(|(status, _)| *status == 200) },
    )
    .await;
    let (status, body) = get(port, "/metrics").expect("scrape");
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid text format");
    if std::env::var_os("RMQ_IT_LOGS").is_some() {
        eprintln!("{body}");
    }
    let jobs = |labels: &[(&str, &str)]| {
        let mut all = vec![("topic", "record")];
        all.extend_from_slice(labels);
        value(&scrape, "rmq_queue_jobs", &all)
    };
    assert_eq!(
        jobs(&[("state", "pending"), ("priority", "high")]),
        Some(1.0)
    );
    assert_eq!(
        jobs(&[("state", "pending"), ("priority", "normal")]),
        Some(2.0)
    );
    assert_eq!(
        jobs(&[("state", "pending"), ("priority", "low")]),
        Some(0.0)
    );
    assert_eq!(jobs(&[("state", "delayed")]), Some(1.0));
    assert_eq!(jobs(&[("state", "processing")]), Some(0.0));
    assert_eq!(jobs(&[("state", "dead")]), Some(1.0));
    assert_eq!(jobs(&[("state", "parse_error")]), Some(0.0));
    let age = |priority| {
        value(
            &scrape,
            "rmq_queue_oldest_job_age_seconds",
            &[("topic", "record"), ("priority", priority)],
        )
        .expect("age")
    };
    assert!((1.0..60.0).contains(&age("high")), "{}", age("high"));
    assert!((1.0..60.0).contains(&age("normal")), "{}", age("normal"));
    assert_eq!(age("low"), 0.0, "an empty list");
    let total = |outcome| {
        value(
            &scrape,
            "rmq_topic_jobs_total",
            &[("topic", "record"), ("outcome", outcome)],
        )
    };
    assert_eq!(total("completed"), Some(7.0));
    assert_eq!(total("retried"), Some(1.0));
    assert_eq!(total("expired"), Some(0.0));
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "rmq_topic_job_duration_seconds" && s.labels.get("topic") == Some("record")
        })
        .expect("the duration histogram");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {histogram:?}");
    };
    let at = |le: f64| {
        buckets
            .iter()
            .find(|b| (b.less_than - le).abs() < 1e-12)
            .map(|b| b.count)
    };
    assert_eq!(at(0.000064), Some(2.0));
    assert_eq!(at(0.004096), Some(7.0));
    assert_eq!(buckets.last().map(|b| b.count), Some(7.0));
    assert!(body.contains("rmq_topic_job_duration_seconds_sum{topic=\"record\"} 0.007\n"));
    // No worker runs: none serves the topic.
    assert_eq!(
        value(&scrape, "rmq_workers", &[("topic", "record")]),
        Some(0.0),
        "{body}"
    );
    // A topic given on the command line shows even before it holds jobs.
    assert_eq!(
        value(
            &scrape,
            "rmq_queue_jobs",
            &[("topic", "empty"), ("state", "delayed")]
        ),
        Some(0.0)
    );
    let types = types(&body);
    assert_eq!(types["rmq_queue_jobs"], "gauge");
    assert_eq!(types["rmq_queue_oldest_job_age_seconds"], "gauge");
    assert_eq!(types["rmq_topic_jobs_total"], "counter");
    assert_eq!(types["rmq_topic_job_duration_seconds"], "histogram");
}
