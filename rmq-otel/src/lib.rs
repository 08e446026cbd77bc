//! OpenTelemetry for [rmq](https://docs.rs/rmq) jobs (`rmq::otel` with the
//! `otel` feature): the W3C trace context of the span that enqueues a job
//! rides in the job, and the worker runs the handler in that trace.
//!
//! Call [`install`] once in every process that enqueues or runs jobs, and
//! have a `tracing` subscriber with the OpenTelemetry layer
//! ([`tracing_opentelemetry::layer`]) export the spans:
//!
//! ```no_run
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! # fn demo(provider: opentelemetry_sdk::trace::SdkTracerProvider) {
//! let tracer = provider.tracer("my-service");
//! let subscriber = tracing_subscriber::registry()
//!     .with(rmq_otel::tracing_opentelemetry::layer().with_tracer(tracer));
//! tracing::subscriber::set_global_default(subscriber).unwrap();
//! rmq_otel::install();
//! # }
//! ```
//!
//! What the spans look like (OpenTelemetry messaging semantic conventions):
//!
//! - Each enqueue runs in a `send <topic>` span of kind producer, a child of
//!   the current span, with `messaging.system = "rmq"`,
//!   `messaging.destination.name`, `messaging.operation.type = "send"` and,
//!   for a batch, `messaging.batch.message_count`. Its context is stored in
//!   each job (27 bytes, plus the `tracestate` if any).
//! - The handler's `job` span is named `process <topic>`, of kind consumer,
//!   with `messaging.system`, `messaging.destination.name`,
//!   `messaging.message.id` (the job id), `messaging.operation.type =
//!   "process"` and `messaging.rmq.message.attempt` (1 on the first run).
//!   On the first attempt it is a child of the `send` span, in the same
//!   trace; on a retry it starts a new trace with a link to the `send`
//!   span, so a job retried for hours does not stretch its producer's trace.
//!   A job that carries no context (enqueued outside any recorded span, or
//!   by a process without `install`) starts a new trace.
//!
//! A dead-lettered job retried by hand runs as attempt 1 again: a child of
//! the original `send` span.
//!
//! Without `install`, rmq injects nothing: jobs keep their size, and a
//! worker ignores the context of jobs that carry one.

pub use opentelemetry;
pub use tracing_opentelemetry;

use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use rmq_core::trace::TraceContext;
use rmq_core::JobContext;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `messaging.system` of rmq spans.
pub const MESSAGING_SYSTEM: &str = "rmq";

/// The OpenTelemetry propagator of rmq: see the [crate docs](crate).
#[derive(Clone, Copy, Debug, Default)]
pub struct Propagator;

/// Installs [`Propagator`] for this process: enqueues inject the context of
/// their `send` span, workers run handlers in the trace a job carries.
/// Returns `false` if a propagator was installed already (it stays).
pub fn install() -> bool {
    rmq_core::trace::install(Propagator)
}

impl rmq_core::trace::Propagator for Propagator {
    fn send_span(&self, topic: &str, jobs: usize) -> tracing::Span {
        let span = tracing::info_span!(
            "send",
            otel.name = format_args!("send {topic}"),
            otel.kind = "producer",
            topic,
        );
        span.set_attribute("messaging.system", MESSAGING_SYSTEM);
        span.set_attribute("messaging.destination.name", topic.to_owned());
        span.set_attribute("messaging.operation.type", "send");
        span.set_attribute("messaging.operation.name", "send");
        if jobs > 1 {
            span.set_attribute(
                "messaging.batch.message_count",
                i64::try_from(jobs).unwrap_or(i64::MAX),
            );
        }
        span
    }

    fn inject(&self, span: &tracing::Span) -> Option<TraceContext> {
        if span.is_disabled() {
            return None;
        }
        let context = span.context();
        let otel_span = context.span();
        let span_context = otel_span.span_context();
        if !span_context.is_valid() {
            return None;
        }
        let mut trace = TraceContext {
            trace_id: span_context.trace_id().to_bytes(),
            span_id: span_context.span_id().to_bytes(),
            flags: span_context.trace_flags().to_u8(),
            state: String::new(),
        };
        trace.set_state(&span_context.trace_state().header());
        Some(trace)
    }

    fn job_span(&self, span: &tracing::Span, job: &JobContext, parent: Option<&TraceContext>) {
        if span.is_disabled() {
            return;
        }
        span.record("otel.name", format_args!("process {}", job.topic));
        span.record("otel.kind", "consumer");
        span.set_attribute("messaging.system", MESSAGING_SYSTEM);
        span.set_attribute("messaging.destination.name", job.topic.clone());
        span.set_attribute("messaging.message.id", job.id.as_str().to_owned());
        span.set_attribute("messaging.operation.type", "process");
        span.set_attribute("messaging.operation.name", "process");
        span.set_attribute("messaging.rmq.message.attempt", i64::from(job.attempt));
        let remote = parent.map(span_context);
        match remote {
            Some(remote) if job.attempt <= 1 => {
                let _ = span.set_parent(Context::new().with_remote_span_context(remote));
            }
            remote => {
                // A new trace: not a child of whatever span the worker runs in.
                let _ = span.set_parent(Context::new());
                if let Some(remote) = remote {
                    span.add_link(remote);
                }
            }
        }
    }
}

/// The OpenTelemetry span context of a stored trace context (remote).
pub fn span_context(trace: &TraceContext) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(trace.trace_id),
        SpanId::from_bytes(trace.span_id),
        TraceFlags::new(trace.flags),
        true,
        TraceState::from_str(&trace.state).unwrap_or_default(),
    )
}
