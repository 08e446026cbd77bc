//! Mixed versions across processes: jobs that carry a W3C trace context
//! (as a producer with `rmq::otel` writes them) run in the real worker
//! binary, which is built without the `otel` feature, retries included,
//! and its CLI shows their payload without the trailer.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{cli, count, eventually, Probe, Worker};
use rmq::broker::{EnqueueSpec, NewJob};
use rmq::trace::TraceContext;
use rmq::{codec, Priority};
use rmq_it::{Flaky, Permanent, ATTEMPTS};
use rmq_testkit::RedisServer;

fn spec() -> EnqueueSpec {
    EnqueueSpec {
        priority: Priority::Normal,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 3,
        index: false,
    }
}

#[track_caller]
fn ok(output: Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_worker_binary_without_the_feature_runs_jobs_that_carry_context() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let broker = client.broker().expect("redis client");
    let context = TraceContext::from_w3c(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "congo=t61rcWkgMzE",
    )
    .unwrap();
    let flaky = codec::encode(&Flaky {
        seq: 7,
        fail_times: 1,
    })
    .unwrap();
    let job = NewJob {
        payload: &flaky,
        id: None,
    };
    broker
        .enqueue_traced("flaky", &spec(), &[job], &context)
        .await
        .unwrap();
    let permanent = codec::encode(&Permanent { seq: 9 }).unwrap();
    let job = NewJob {
        payload: &permanent,
        id: Some("p-9"),
    };
    broker
        .enqueue_traced("permanent", &spec(), &[job], &context)
        .await
        .unwrap();

    let _worker = Worker::run(&url, &["--topics", "flaky,permanent"], &[]);
    eventually(
        "the flaky job to complete",
        Duration::from_secs(15),
        || async { (probe.ran("flaky").await.get(&7) == Some(&1)).then_some(()) },
    )
    .await;
    let attempts = probe.list(ATTEMPTS).await;
    assert_eq!(count(&attempts, "flaky").get(&7), Some(&2), "{attempts:?}");
    eventually(
        "the permanent job to be dead-lettered",
        Duration::from_secs(15),
        || async { (probe.stats("permanent").await.dead == 1).then_some(()) },
    )
    .await;
    let out = ok(cli(&url, &["dlq", "show", "permanent", "p-9"]));
    assert!(out.contains("\"seq\": 9"), "payload as JSON: {out}");
    assert!(!out.contains("0af7651916"), "{out}");
    let dead = broker.dead_letter("permanent", "p-9").await.unwrap();
    assert_eq!(dead.envelope.trace_context(), Some(context));
}
