//! Mixed versions: a process that never calls `rmq_otel::install()` (a
//! producer or worker built without the feature) adds nothing to its jobs,
//! and runs jobs that carry a trace context like any other.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rmq::broker::{EnqueueSpec, NewJob};
use rmq::envelope::HEADER_LEN;
use rmq::trace::TraceContext;
use rmq::{JobContext, Priority, State, TaskError, Worker};
use support::{run_until, Env};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// An OpenTelemetry subscriber, so spans do have a trace context: only the
/// propagator is missing.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("rmq-otel-tests")));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        exporter
    })
}

#[derive(Clone, Default)]
struct Ran(Arc<Mutex<Vec<(u32, String, u32)>>>);

impl Ran {
    fn record(&self, n: u32, tag: String, attempt: u32) {
        self.0.lock().unwrap().push((n, tag, attempt));
    }
}

#[rmq::task(topic = "mixed", retries = 1, retry_delays = ["10ms"])]
async fn mixed_job(n: u32, tag: String, ctx: JobContext, ran: State<Ran>) -> Result<(), TaskError> {
    ran.record(n, tag, ctx.attempt);
    if ctx.attempt == 1 {
        return Err(TaskError::retryable("once more"));
    }
    Ok(())
}

fn spec() -> EnqueueSpec {
    EnqueueSpec {
        priority: Priority::Normal,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 1,
        index: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_without_the_propagator_adds_no_byte() {
    exporter();
    let env = Env::new().await;
    let job = MixedJob {
        n: 1,
        tag: "x".into(),
    };
    let payload = rmq::codec::encode(&job).unwrap();
    let id = job
        .enqueue(&env.client)
        .instrument(tracing::info_span!("request"))
        .await
        .unwrap();
    let fetched = env
        .broker()
        .fetch("mixed", 1, Duration::from_secs(30))
        .await
        .unwrap();
    let envelope = &fetched.jobs[0];
    assert!(!envelope.has_trace_context());
    assert_eq!(
        envelope.as_bytes().len(),
        HEADER_LEN + id.as_str().len() + payload.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_the_propagator_runs_jobs_that_carry_context() {
    exporter();
    let env = Env::new().await;
    let context = TraceContext::from_w3c(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "",
    )
    .unwrap();
    let payload = rmq::codec::encode(&MixedJob {
        n: 42,
        tag: "traced".into(),
    })
    .unwrap();
    env.broker()
        .enqueue_traced(
            "mixed",
            &spec(),
            &[NewJob {
                payload: &payload,
                id: None,
            }],
            &context,
        )
        .await
        .unwrap();
    let ran = Ran::default();
    let worker = Worker::builder(env.client.clone())
        .task::<MixedJob>()
        .state(ran.clone())
        .build()
        .unwrap();
    let runs = run_until(worker, || {
        let runs = ran.0.lock().unwrap().clone();
        (runs.len() >= 2).then_some(runs)
    })
    .await;
    assert_eq!(
        runs,
        vec![(42, "traced".to_owned(), 1), (42, "traced".to_owned(), 2)],
        "the payload decodes on the first run and on the retry"
    );
    let spans = exporter().get_finished_spans().unwrap();
    assert!(
        spans.iter().all(|span| !span.name.starts_with("process ")),
        "no propagator, no messaging spans"
    );
}
