//! The trace context trailer through every script that stores or rewrites
//! an envelope: enqueue, retry, lease recovery, dead-letter retry and
//! parse-error retry keep it; jobs without it keep their size.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rmq_core::broker::{Failure, NewJob};
use rmq_core::envelope::{
    Envelope, FLAG_EXPLICIT_ID, FLAG_INDEXED, FLAG_TRACE_CONTEXT, HEADER_LEN,
};
use rmq_core::trace::TraceContext;
use rmq_core::Priority;
use support::{spec, Env, LEASE};

fn context() -> TraceContext {
    TraceContext::from_w3c(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "congo=t61rcWkgMzE",
    )
    .unwrap()
}

const TRAILER: usize = 26 + "congo=t61rcWkgMzE".len() + 1;

fn job(payload: &[u8]) -> NewJob<'_> {
    NewJob { payload, id: None }
}

fn assert_traced(env: &Envelope, payload: &[u8]) {
    assert!(env.has_trace_context(), "{env:?}");
    assert_eq!(env.trace_context(), Some(context()));
    assert_eq!(env.payload(), payload);
}

#[tokio::test]
async fn enqueue_stores_the_trailer_only_on_traced_jobs() {
    let env = Env::new().await;
    let plain = env.push("t", &["\u{c0}"], &spec(Priority::Normal)).await;
    let traced = env
        .broker
        .enqueue_traced("t", &spec(Priority::Normal), &[job(b"\xc0")], &context())
        .await
        .unwrap();
    assert_eq!(plain.len() + traced.len(), 2);
    let mut raw = env.raw().await;
    let stored: Vec<Vec<u8>> = raw.lrange("{t}:normal", 0, -1).await.unwrap();
    let payload = "\u{c0}".as_bytes();
    assert_eq!(
        stored[0].len(),
        HEADER_LEN + 1 + payload.len(),
        "a job without context has not one byte more"
    );
    assert_eq!(stored[0][4], 0);
    assert_eq!(stored[1].len(), HEADER_LEN + 1 + 1 + TRAILER);
    assert_eq!(stored[1][4], FLAG_TRACE_CONTEXT);

    let fetched = env.fetch_until("t", 2, LEASE, Duration::from_secs(5)).await;
    assert!(!fetched[0].has_trace_context());
    assert_eq!(fetched[0].payload(), payload);
    assert_traced(&fetched[1], b"\xc0");
}

#[tokio::test]
async fn explicit_ids_and_trace_context_share_the_flags() {
    let env = Env::new().await;
    let new = [NewJob {
        payload: b"\x90",
        id: Some("k1"),
    }];
    env.broker
        .enqueue_traced("t", &spec(Priority::High), &new, &context())
        .await
        .unwrap();
    let got = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(
        got[0].as_bytes()[4],
        FLAG_EXPLICIT_ID | FLAG_TRACE_CONTEXT | FLAG_INDEXED
    );
    assert!(got[0].has_explicit_id());
    assert_eq!(got[0].id(), "k1");
    assert_traced(&got[0], b"\x90");
    // The id is freed at ack (the scripts read bit 0 of the flags only).
    env.broker
        .ack("t", &got, &[Duration::from_millis(1)])
        .await
        .unwrap();
    env.broker
        .enqueue_traced("t", &spec(Priority::High), &new, &context())
        .await
        .expect("the id is free again");
}

#[tokio::test]
async fn retries_and_recovery_keep_the_context() {
    let env = Env::new().await;
    env.broker
        .enqueue_traced("t", &spec(Priority::Low), &[job(b"\xa1x")], &context())
        .await
        .unwrap();
    let first = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    let failure = Failure {
        error: "boom",
        permanent: false,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    env.broker.fail("t", &first[0], &failure).await.unwrap();
    let second = env
        .fetch_until("t", 1, Duration::from_millis(50), Duration::from_secs(5))
        .await;
    assert_eq!(second[0].attempt(), 2);
    assert_traced(&second[0], b"\xa1x");

    // The lease runs out: recovery counts the attempt and keeps the rest.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let recovered = env.broker.recover("t", 10).await.unwrap();
    assert_eq!(recovered.requeued, 1);
    let third = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(third[0].attempt(), 3);
    assert_traced(&third[0], b"\xa1x");
}

#[tokio::test]
async fn dead_letter_and_parse_error_retries_keep_the_context() {
    let env = Env::new().await;
    env.broker
        .enqueue_traced("t", &spec(Priority::Normal), &[job(b"\x01")], &context())
        .await
        .unwrap();
    let got = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    let failure = Failure {
        error: "for good",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    env.broker.fail("t", &got[0], &failure).await.unwrap();
    let dead = env.broker.dead_letter("t", got[0].id()).await.unwrap();
    assert_traced(&dead.envelope, b"\x01");
    env.broker.retry_dead("t", got[0].id()).await.unwrap();
    let again = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(again[0].attempt(), 1);
    assert_traced(&again[0], b"\x01");

    // Rejected as undecodable, then retried from the parse-error store.
    assert!(env.broker.reject("t", &again[0], "bad").await.unwrap());
    let retried = env.broker.retry_all_parse_errors("t").await.unwrap();
    assert_eq!(retried.moved, 1, "{retried:?}");
    let last = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_traced(&last[0], b"\x01");
}
