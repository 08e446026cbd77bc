//! What a client and a worker record through the `metrics` facade, read
//! back from `metrics-util`'s debugging recorder (installed for this test
//! binary only).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use rmq_core::handler::BoxFuture;
use rmq_core::{
    Client, Invocation, JobOptions, Priority, Task, TaskDescriptor, TaskError, TaskPolicy, Worker,
};
use rmq_testkit::RedisServer;
use support::config;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Probe {
    n: u64,
}

/// 0 succeeds, 1 fails permanently, 2 hangs past its timeout, 3 panics.
fn run_probe(invocation: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async move {
        let Probe { n } = invocation.decode()?;
        match n {
            0 => Ok(None),
            1 => Err(TaskError::permanent("bad input")),
            2 => std::future::pending().await,
            _ => panic!("on purpose"),
        }
    })
}

fn encode_probe(json: &str) -> Result<Vec<u8>, String> {
    rmq_core::codec::encode_json::<Probe>(json)
}

static PROBE: TaskDescriptor = TaskDescriptor {
    topic: "probe",
    function: "probe",
    module_path: "telemetry",
    payload_type: "Probe",
    fields: &[("n", "u64")],
    policy: TaskPolicy {
        retries: Some(0),
        backoff: None,
        priority: Priority::Normal,
        timeout: Some(Duration::from_millis(100)),
        ttl: None,
        ..TaskPolicy::DEFAULT
    },
    handler: run_probe,
    state: &[],
    encode_json: encode_probe,
};

impl Task for Probe {
    type Receipt = rmq_core::JobId;
    type Output = ();

    fn descriptor() -> &'static TaskDescriptor {
        &PROBE
    }
}

type Values = HashMap<(MetricKind, String, Vec<(String, String)>), DebugValue>;

fn values(snapshotter: &Snapshotter) -> Values {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((kind, key.name().to_owned(), labels), value)
        })
        .collect()
}

fn counter(values: &Values, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    match values.get(&(MetricKind::Counter, name.to_owned(), labels)) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

fn histogram_len(values: &Values, name: &str, labels: &[(&str, &str)]) -> usize {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    match values.get(&(MetricKind::Histogram, name.to_owned(), labels)) {
        Some(DebugValue::Histogram(samples)) => samples.len(),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_worker_record_counts_outcomes_and_times() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this binary");

    let server = RedisServer::start();
    let client = Client::connect(config(&server.url())).await.unwrap();
    client
        .enqueue_many([0, 0, 1, 2, 3].map(|n| Probe { n }))
        .await
        .unwrap();
    client
        .enqueue_with(
            Probe { n: 0 },
            JobOptions {
                priority: Some(Priority::High),
                ..JobOptions::default()
            },
        )
        .await
        .unwrap();
    let v = values(&snapshotter);
    let enqueued = |priority| {
        counter(
            &v,
            "rmq_jobs_enqueued_total",
            &[("topic", "probe"), ("priority", priority)],
        )
    };
    assert_eq!((enqueued("normal"), enqueued("high")), (5, 1));

    let worker = Worker::builder(client.clone())
        .task::<Probe>()
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    let probe = worker.probe();
    assert!(probe.health().is_err(), "not running yet");
    let (healthy_tx, healthy_rx) = tokio::sync::oneshot::channel();
    let stop = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while metrics.snapshot().completed + metrics.snapshot().dead < 6 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = healthy_tx.send(probe.health());
    };
    worker.run_until(stop).await.unwrap();
    assert_eq!(healthy_rx.await.unwrap(), Ok(()));

    let v = values(&snapshotter);
    let processed = |outcome| {
        counter(
            &v,
            "rmq_jobs_processed_total",
            &[("topic", "probe"), ("outcome", outcome)],
        )
    };
    assert_eq!(processed("completed"), 3);
    assert_eq!(processed("dead"), 1, "the permanent error");
    assert_eq!(processed("timeout"), 1);
    assert_eq!(processed("panicked"), 1);
    assert_eq!(processed("retried"), 0);
    assert_eq!(
        counter(&v, "rmq_jobs_fetched_total", &[("topic", "probe")]),
        6
    );
    assert_eq!(
        histogram_len(&v, "rmq_job_duration_seconds", &[("topic", "probe")]),
        6
    );
    let waits = |priority| {
        histogram_len(
            &v,
            "rmq_job_wait_seconds",
            &[("topic", "probe"), ("priority", priority)],
        )
    };
    assert_eq!((waits("normal"), waits("high")), (5, 1));
    assert!(v.contains_key(&(
        MetricKind::Gauge,
        "rmq_build_info".to_owned(),
        vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]
    )));
    assert!(matches!(
        v.get(&(MetricKind::Gauge, "rmq_worker_concurrency".to_owned(), vec![])),
        Some(DebugValue::Gauge(c)) if c.into_inner() == 5.0
    ));
}
