//! Mixed versions against the real previous parser: `compat/` holds
//! `rmq-core/src/envelope.rs` as it was before the trace context trailer
//! (verbatim from git), as every worker built before it parses jobs.

// The old module names its siblings through `crate::`.
pub use rmq_core::{JobContext, JobId, Priority};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "compat/envelope_v1_before_trace.rs"]
mod before;

use rmq_core::envelope::{encode_traced, Envelope};
use rmq_core::trace::TraceContext;
use rmq_core::{codec, Priority as P};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Order {
    order_id: String,
    amount: f64,
    items: Vec<(String, u32)>,
}

fn order() -> Order {
    Order {
        order_id: "ORD_1".into(),
        amount: 99.5,
        items: vec![("sku".into(), 2)],
    }
}

fn context() -> TraceContext {
    TraceContext::from_w3c(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    )
    .unwrap()
}

#[test]
fn an_old_worker_reads_a_job_that_carries_context() {
    let payload = codec::encode(&order()).unwrap();
    let bytes = encode_traced(
        P::High,
        1,
        3,
        1_763_800_000_123,
        0,
        "ORD_1",
        true,
        &payload,
        &context(),
    );
    let old = before::Envelope::parse(bytes.clone()).expect("the old parser accepts it");
    assert_eq!(old.id(), "ORD_1");
    assert_eq!(old.priority(), P::High);
    assert_eq!(old.attempt(), 2);
    assert!(old.has_explicit_id());
    assert_eq!(old.enqueued_at_ms(), 1_763_800_000_123);
    // The old payload slice runs to the end, trailer included; decoding
    // (what the old worker's handler does) stops after the payload.
    assert!(old.payload().len() > payload.len());
    assert_eq!(codec::decode::<Order>(old.payload()).unwrap(), order());
    assert_eq!(
        codec::to_json(old.payload()).unwrap(),
        codec::to_json(&payload).unwrap(),
        "old `dlq show` prints the same payload"
    );
}

#[test]
fn a_new_worker_reads_jobs_the_old_build_wrote() {
    let payload = codec::encode(&order()).unwrap();
    for (id, explicit) in [("7", false), ("k", true)] {
        let bytes = before::encode(P::Low, 0, 2, 5, 9, id, explicit, &payload);
        let old = before::Envelope::parse(bytes.clone()).unwrap();
        let new = Envelope::parse(bytes).unwrap();
        assert_eq!(new.as_bytes(), old.as_bytes());
        assert_eq!(new.payload(), old.payload());
        assert_eq!(new.id(), old.id());
        assert_eq!(new.has_explicit_id(), explicit);
        assert_eq!(new.expire_at_ms(), Some(9));
        assert_eq!(new.trace_context(), None);
        assert_eq!(
            rmq_core::envelope::encode(P::Low, 0, 2, 5, 9, id, explicit, &payload),
            old.as_bytes(),
            "a job without context is byte for byte what the old build wrote"
        );
    }
}
