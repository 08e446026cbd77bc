//! Concurrent single enqueues share script calls (group commit), each
//! caller still gets its own id, and a failure reaches every caller.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use rmq_core::Priority;
use support::{spec, Env};

async fn script_calls(env: &Env) -> u64 {
    let mut raw = env.raw().await;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn concurrent_single_enqueues_share_script_calls() {
    let env = Env::new().await;
    let before = script_calls(&env).await;
    let calls = (0..200u32).map(|i| {
        let broker = env.broker.clone();
        async move {
            broker
                .enqueue_one("orders", &spec(Priority::Normal), i.to_be_bytes().to_vec())
                .await
                .unwrap()
        }
    });
    let ids = join_all(calls).await;
    let calls = script_calls(&env).await - before;

    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 200, "every caller gets its own id");
    let mut raw = env.raw().await;
    let queued: usize = redis::cmd("LLEN")
        .arg("{orders}:normal")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(queued, 200);
    assert!(
        calls <= 20,
        "200 concurrent enqueues took {calls} script calls; they should share a few"
    );
}

#[tokio::test]
async fn a_failed_shared_call_answers_every_caller() {
    let mut env = Env::new().await;
    env.server_mut().kill();
    let calls = (0..20u32).map(|i| {
        let broker = env.broker.clone();
        async move {
            broker
                .enqueue_one("orders", &spec(Priority::Normal), i.to_be_bytes().to_vec())
                .await
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(30), join_all(calls))
        .await
        .expect("every caller is answered");
    assert!(results.iter().all(Result::is_err));
}
