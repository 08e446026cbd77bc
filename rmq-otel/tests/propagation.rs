//! The trace context of the enqueuing span through Redis into the handler
//! span, read back from an in-memory exporter: child on the first attempt,
//! linked on a retry, a new root without context.

mod support;

use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt, TracerProvider as _};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rmq::broker::{EnqueueSpec, NewJob};
use rmq::trace::TraceContext;
use rmq::{JobContext, Priority, TaskError, Worker};
use support::{run_in, run_until, Env};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// One exporter for the test binary (the subscriber and the propagator are
/// process-wide); tests tell their spans apart by topic.
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
        assert!(rmq_otel::install());
        assert!(!rmq_otel::install(), "the first propagator stays");
        exporter
    })
}

fn spans(topic: &str) -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .filter(|span| {
            attribute(span, "messaging.destination.name") == Some(Value::from(topic.to_owned()))
        })
        .collect()
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// The `process <topic>` spans, once there are `n`, by attempt.
fn process_spans(topic: &str, n: usize) -> Option<Vec<SpanData>> {
    let name = format!("process {topic}");
    let mut found: Vec<SpanData> = spans(topic)
        .into_iter()
        .filter(|span| span.name == name)
        .collect();
    found.sort_by_key(
        |span| match attribute(span, "messaging.rmq.message.attempt") {
            Some(Value::I64(attempt)) => attempt,
            _ => 0,
        },
    );
    (found.len() >= n).then_some(found)
}

fn send_span(topic: &str) -> SpanData {
    let name = format!("send {topic}");
    let mut sends: Vec<SpanData> = spans(topic)
        .into_iter()
        .filter(|span| span.name == name)
        .collect();
    assert_eq!(sends.len(), 1, "one send span for {topic}");
    sends.remove(0)
}

#[rmq::task(topic = "otel_child")]
async fn child_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_attempt_is_a_child_of_the_enqueuing_span() {
    exporter();
    let env = Env::new().await;
    let checkout = tracing::info_span!("checkout");
    let checkout_context = checkout.context().span().span_context().clone();
    let id = ChildJob { n: 7 }
        .enqueue(&env.client)
        .instrument(checkout.clone())
        .await
        .unwrap();
    drop(checkout);

    let worker = Worker::builder(env.client.clone())
        .task::<ChildJob>()
        .build()
        .unwrap();
    let process = run_until(worker, || process_spans("otel_child", 1)).await;
    let process = &process[0];
    let send = send_span("otel_child");

    // checkout -> send otel_child -> process otel_child, one trace.
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(
        send.span_context.trace_id(),
        checkout_context.trace_id(),
        "send runs in the caller's trace"
    );
    assert_eq!(send.parent_span_id, checkout_context.span_id());
    assert_eq!(process.span_context.trace_id(), checkout_context.trace_id());
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert!(process.parent_span_is_remote);
    assert!(process.links.is_empty());
    assert_eq!(process.span_kind, SpanKind::Consumer);

    assert_eq!(attribute(&send, "messaging.system"), Some("rmq".into()));
    assert_eq!(
        attribute(&send, "messaging.operation.type"),
        Some("send".into())
    );
    assert_eq!(attribute(&send, "messaging.batch.message_count"), None);
    assert_eq!(attribute(process, "messaging.system"), Some("rmq".into()));
    assert_eq!(
        attribute(process, "messaging.operation.type"),
        Some("process".into())
    );
    assert_eq!(
        attribute(process, "messaging.message.id"),
        Some(id.to_string().into())
    );
    assert_eq!(
        attribute(process, "messaging.rmq.message.attempt"),
        Some(Value::I64(1))
    );
}

#[rmq::task(topic = "otel_retry", retries = 1, retry_delays = ["10ms"])]
async fn retried_job(n: u32, ctx: JobContext) -> Result<(), TaskError> {
    let _ = n;
    if ctx.attempt == 1 {
        return Err(TaskError::retryable("the first attempt fails"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_starts_a_new_trace_linked_to_the_enqueuing_span() {
    exporter();
    let env = Env::new().await;
    RetriedJob { n: 1 }
        .enqueue(&env.client)
        .instrument(tracing::info_span!("producer"))
        .await
        .unwrap();
    let worker = Worker::builder(env.client.clone())
        .task::<RetriedJob>()
        .build()
        .unwrap();
    let process = run_until(worker, || process_spans("otel_retry", 2)).await;
    let send = send_span("otel_retry");
    let (first, second) = (&process[0], &process[1]);

    assert_eq!(first.parent_span_id, send.span_context.span_id());
    assert_eq!(first.span_context.trace_id(), send.span_context.trace_id());

    assert_eq!(
        attribute(second, "messaging.rmq.message.attempt"),
        Some(Value::I64(2))
    );
    assert_eq!(second.parent_span_id, SpanId::INVALID, "a new root");
    assert_ne!(second.span_context.trace_id(), send.span_context.trace_id());
    assert_eq!(second.links.len(), 1);
    let link = &second.links.links[0].span_context;
    assert_eq!(link.trace_id(), send.span_context.trace_id());
    assert_eq!(link.span_id(), send.span_context.span_id());
    assert!(link.is_remote());
}

#[rmq::task(topic = "otel_plain")]
async fn plain_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

fn spec() -> EnqueueSpec {
    EnqueueSpec {
        priority: Priority::Normal,
        delay: std::time::Duration::ZERO,
        ttl: None,
        max_retries: 0,
        index: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_context_runs_in_a_new_trace() {
    exporter();
    let env = Env::new().await;
    // As a producer without the feature writes it: no trailer.
    let payload = rmq::codec::encode(&PlainJob { n: 3 }).unwrap();
    let job = NewJob {
        payload: &payload,
        id: None,
    };
    env.broker()
        .enqueue("otel_plain", &spec(), &[job])
        .await
        .unwrap();
    let worker = Worker::builder(env.client.clone())
        .task::<PlainJob>()
        .build()
        .unwrap();
    // Even run inside a span of the host application, the job span is a
    // root of its own.
    let host = tracing::info_span!("host");
    let process = run_in(host, worker, || process_spans("otel_plain", 1)).await;
    assert_eq!(process[0].parent_span_id, SpanId::INVALID);
    assert!(process[0].links.is_empty());
    assert_eq!(process[0].span_kind, SpanKind::Consumer);
}

#[rmq::task(topic = "otel_remote")]
async fn remote_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_from_elsewhere_becomes_the_parent() {
    exporter();
    let env = Env::new().await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let context = TraceContext::from_w3c(traceparent, "congo=t61rcWkgMzE").unwrap();
    let payload = rmq::codec::encode(&RemoteJob { n: 3 }).unwrap();
    let job = NewJob {
        payload: &payload,
        id: None,
    };
    env.broker()
        .enqueue_traced("otel_remote", &spec(), &[job], &context)
        .await
        .unwrap();
    let worker = Worker::builder(env.client.clone())
        .task::<RemoteJob>()
        .build()
        .unwrap();
    let process = run_until(worker, || process_spans("otel_remote", 1)).await;
    let process = &process[0];
    assert_eq!(
        process.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(process.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(
        process.span_context.trace_state().header(),
        "congo=t61rcWkgMzE"
    );
}

#[rmq::task(topic = "otel_batch")]
async fn batch_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_shares_one_send_span() {
    exporter();
    let env = Env::new().await;
    env.client
        .enqueue_many((0..3).map(|n| BatchJob { n }))
        .instrument(tracing::info_span!("import"))
        .await
        .unwrap();
    let worker = Worker::builder(env.client.clone())
        .task::<BatchJob>()
        .build()
        .unwrap();
    let process = run_until(worker, || process_spans("otel_batch", 3)).await;
    let send = send_span("otel_batch");
    assert_eq!(
        attribute(&send, "messaging.batch.message_count"),
        Some(Value::I64(3))
    );
    for span in &process {
        assert_eq!(span.parent_span_id, send.span_context.span_id());
    }
}
