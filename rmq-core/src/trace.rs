//! Trace context through the job: the W3C trace context of the enqueuing
//! span, carried in the envelope, and the hook that turns it into the
//! parent (or link) of the handler's span.
//!
//! rmq-core knows no tracing system: it stores a [`TraceContext`] and calls
//! a [`Propagator`] installed once per process with [`install`]. The
//! `rmq-otel` crate (`rmq::otel` with the `otel` feature) implements it with
//! OpenTelemetry. With no propagator installed, nothing is injected (a job
//! stays byte for byte what it was) and a context found in a job is ignored.
//!
//! In the envelope the context is a trailer after the payload, announced by
//! [`FLAG_TRACE_CONTEXT`](crate::envelope::FLAG_TRACE_CONTEXT) (layout in
//! [`crate::envelope`]).

use std::fmt;
use std::sync::OnceLock;

use crate::JobContext;

/// The W3C trace context of a span: `traceparent` as its binary fields, and
/// `tracestate` as text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace id (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The id of the span that enqueued the job (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
    /// The W3C `tracestate` header value; empty for none.
    pub state: String,
}

/// The trace context format version: W3C `traceparent` version `00`.
pub const FORMAT: u8 = 0;

/// Bytes of the binary `traceparent`: format, trace id, span id, flags.
const PARENT_LEN: usize = 1 + 16 + 8 + 1;

/// Longest trailer body: its length is one byte.
const MAX_LEN: usize = 255;

impl TraceContext {
    /// Parses a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`)
    /// with an optional `tracestate`. `None` if it is not a valid version
    /// `00` header or an id is all zeros.
    pub fn from_w3c(traceparent: &str, tracestate: &str) -> Option<TraceContext> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let mut context = TraceContext {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
            state: String::new(),
        };
        hex(trace, &mut context.trace_id)?;
        hex(span, &mut context.span_id)?;
        let mut flag = [0];
        hex(flags, &mut flag)?;
        context.flags = flag[0];
        context.set_state(tracestate);
        context.is_valid().then_some(context)
    }

    /// The W3C `traceparent` header.
    pub fn traceparent(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.span_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// Whether the ids are not all zeros (W3C: an all-zero id is invalid).
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// Whether the enqueuing span was sampled (trace flags bit 0).
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Sets the `tracestate`, dropping list members from the end until it
    /// fits the envelope (W3C allows truncation by whole members).
    pub fn set_state(&mut self, tracestate: &str) {
        let mut state = tracestate.trim();
        while state.len() > MAX_LEN - PARENT_LEN {
            state = state.rsplit_once(',').map_or("", |(head, _)| head).trim();
        }
        self.state = state.to_owned();
    }

    /// Appends the envelope trailer: the context, then its length in one
    /// byte. What the enqueue script stores after the payload.
    pub fn append_trailer(&self, out: &mut Vec<u8>) {
        let state = &self.state.as_bytes()[..self.state.len().min(MAX_LEN - PARENT_LEN)];
        out.reserve(PARENT_LEN + state.len() + 1);
        out.push(FORMAT);
        out.extend_from_slice(&self.trace_id);
        out.extend_from_slice(&self.span_id);
        out.push(self.flags);
        out.extend_from_slice(state);
        out.push((PARENT_LEN + state.len()) as u8);
    }

    /// Decodes a trailer body (without its length byte). `None` for a
    /// format this build does not know, or invalid ids: the job then runs
    /// without a parent, it is not an error.
    pub fn decode(body: &[u8]) -> Option<TraceContext> {
        if body.len() < PARENT_LEN || body[0] != FORMAT {
            return None;
        }
        let mut context = TraceContext {
            trace_id: body[1..17].try_into().ok()?,
            span_id: body[17..25].try_into().ok()?,
            flags: body[25],
            state: String::from_utf8_lossy(&body[PARENT_LEN..]).into_owned(),
        };
        if !context.state.is_ascii() {
            context.state.clear();
        }
        context.is_valid().then_some(context)
    }
}

fn hex(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // W3C: lowercase only.
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(())
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent())
            .field("tracestate", &self.state)
            .finish()
    }
}

/// What rmq asks of a tracing system. Installed once per process with
/// [`install`]; `rmq_otel::install()` installs the OpenTelemetry one.
pub trait Propagator: Send + Sync + 'static {
    /// The span an enqueue of `jobs` jobs to `topic` runs in (OpenTelemetry:
    /// a `send` span of kind producer, a child of the current span).
    fn send_span(&self, topic: &str, jobs: usize) -> tracing::Span;

    /// The trace context of `span` to carry in the jobs, or `None` to carry
    /// nothing (no trace, or not recorded by the subscriber).
    fn inject(&self, span: &tracing::Span) -> Option<TraceContext>;

    /// Prepares the `job` span of a handler run before it is entered:
    /// with the context the job carries, a child of the enqueuing span on
    /// the first attempt, a new root linked to it on a retry.
    fn job_span(&self, span: &tracing::Span, job: &JobContext, parent: Option<&TraceContext>);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process's propagator; the first one installed stays, and a
/// second call returns `false`.
pub fn install(propagator: impl Propagator) -> bool {
    PROPAGATOR.set(Box::new(propagator)).is_ok()
}

/// The installed propagator, if any.
pub fn propagator() -> Option<&'static dyn Propagator> {
    PROPAGATOR.get().map(|p| &**p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn w3c_round_trip() {
        let context = TraceContext::from_w3c(PARENT, "rojo=00f067aa0ba902b7").unwrap();
        assert_eq!(context.traceparent(), PARENT);
        assert_eq!(context.state, "rojo=00f067aa0ba902b7");
        assert!(context.is_sampled());
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",
            "junk",
        ] {
            assert_eq!(TraceContext::from_w3c(bad, ""), None, "{bad}");
        }
    }

    #[test]
    fn trailer_round_trip() {
        let context = TraceContext::from_w3c(PARENT, "a=1,b=2").unwrap();
        let mut out = b"payload".to_vec();
        context.append_trailer(&mut out);
        let len = usize::from(*out.last().unwrap());
        assert_eq!(len, 26 + 7);
        assert_eq!(out.len(), 7 + len + 1);
        let body = &out[out.len() - 1 - len..out.len() - 1];
        assert_eq!(TraceContext::decode(body), Some(context));
        let mut unknown = body.to_vec();
        unknown[0] = 1;
        assert_eq!(TraceContext::decode(&unknown), None, "a later format");
        assert_eq!(TraceContext::decode(&body[..25]), None);
    }

    #[test]
    fn a_long_tracestate_is_cut_at_a_member() {
        let members: Vec<String> = (0..40).map(|i| format!("vendor{i}=value{i}")).collect();
        let context = TraceContext::from_w3c(PARENT, &members.join(",")).unwrap();
        assert!(context.state.len() <= 255 - 26);
        assert!(context.state.ends_with(char::is_numeric));
        assert!(members.join(",").starts_with(&context.state));
        let mut out = Vec::new();
        context.append_trailer(&mut out);
        assert_eq!(out.len(), usize::from(*out.last().unwrap()) + 1);
    }
}
