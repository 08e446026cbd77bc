//! Browsing, entry actions, pausing and search against a real Redis (and
//! the shared cluster).

#[macro_use]
mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rmq_core::broker::{Cursor, EnqueueSpec, Failure, Locator, Needle, NewJob, State};
use rmq_core::{codec, Error, Priority};
use serde_json::json;
use support::{spec, Deployment, Env, LEASE};

/// Enqueues msgpack payloads `{"n": i, "note": note}` with explicit ids
/// `prefix-i`.
async fn push_json(env: &Env, topic: &str, prefix: &str, n: usize, note: &str, spec: &EnqueueSpec) {
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| codec::encode(&json!({"n": i, "note": note})).unwrap())
        .collect();
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let jobs: Vec<NewJob<'_>> = payloads
        .iter()
        .zip(&ids)
        .map(|(payload, id)| NewJob {
            payload,
            id: Some(id),
        })
        .collect();
    env.broker.enqueue(topic, spec, &jobs).await.unwrap();
}

fn delayed(delay: Duration) -> EnqueueSpec {
    EnqueueSpec {
        delay,
        ..spec(Priority::Normal)
    }
}

/// Fetches one job of `topic` and dead-letters it with `error`.
async fn kill_one(env: &Env, topic: &str, error: &str) {
    let job = env.broker.fetch(topic, 1, LEASE).await.unwrap().jobs;
    let failure = Failure {
        error,
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    env.broker.fail(topic, &job[0], &failure).await.unwrap();
}

fn ids(entries: &[rmq_core::broker::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.id().unwrap()).collect()
}

on_both!(
    every_state_is_listed_in_order_and_found_again,
    ["t"],
    |env| {
        push_json(&env, "t", "dead", 2, "", &spec(Priority::Normal)).await;
        kill_one(&env, "t", "boom 0").await;
        kill_one(&env, "t", "boom 1").await;
        push_json(&env, "t", "run", 1, "", &spec(Priority::High)).await;
        let running = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
        push_json(&env, "t", "p", 5, "", &spec(Priority::Low)).await;
        push_json(
            &env,
            "t",
            "later",
            2,
            "",
            &delayed(Duration::from_secs(600)),
        )
        .await;

        let pending = env
            .broker
            .entries("t", State::Pending(Priority::Low), 1, 3)
            .await
            .unwrap();
        assert_eq!(ids(&pending), ["p-1", "p-2", "p-3"]);
        assert_eq!(pending[0].position, 1);
        let dead = env.broker.entries("t", State::Dead, 0, 10).await.unwrap();
        assert_eq!(ids(&dead), ["dead-1", "dead-0"], "newest first");
        assert_eq!(dead[0].error.as_deref(), Some("boom 1"));
        let processing = env
            .broker
            .entries("t", State::Processing, 0, 10)
            .await
            .unwrap();
        assert_eq!(ids(&processing), [running[0].id()]);
        assert!(processing[0].at_ms().is_some());
        assert_eq!(env.broker.depth("t", State::Delayed).await.unwrap(), 2);

        // Found again through the text form of its locator.
        for entry in [&pending[2], &dead[1], &processing[0]] {
            let locator: Locator = entry.locator().to_string().parse().unwrap();
            let found = env.broker.entry("t", &locator).await.unwrap();
            assert_eq!(found.as_ref().map(|e| &e.raw), Some(&entry.raw));
        }
        // The head moved on: the pending entry is still found, at its new index.
        env.broker.fetch("t", 2, LEASE).await.unwrap();
        let moved = env
            .broker
            .entry("t", &pending[2].locator())
            .await
            .unwrap()
            .expect("still pending");
        assert_eq!(moved.id(), Some("p-3"));
        assert_eq!(moved.position, 1);
        // A job that left its state is not found there.
        let gone = env.broker.entry("t", &pending[0].locator()).await.unwrap();
        assert_eq!(gone, None);
    }
);

on_both!(a_paused_topic_leases_nothing_until_resumed, ["t"], |env| {
    push_json(&env, "t", "a", 3, "", &spec(Priority::Normal)).await;
    push_json(&env, "t", "d", 1, "", &delayed(Duration::from_millis(1))).await;
    assert!(env.broker.pause("t").await.unwrap());
    assert!(!env.broker.pause("t").await.unwrap(), "already paused");
    assert!(env.broker.stats("t").await.unwrap().paused);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fetched = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert!(fetched.jobs.is_empty());
    assert_eq!(
        env.broker.depth("t", State::Delayed).await.unwrap(),
        1,
        "not promoted"
    );
    // Enqueue to a paused topic wakes nobody.
    let mut raw = env.raw().await;
    let wake = env.keys("t").wake;
    let _: () = raw.del(&wake).await.unwrap();
    push_json(&env, "t", "b", 1, "", &spec(Priority::Normal)).await;
    let tokens: u64 = raw.llen(&wake).await.unwrap();
    assert_eq!(tokens, 0);

    assert!(env.broker.resume("t").await.unwrap());
    assert!(!env.broker.resume("t").await.unwrap(), "already running");
    let tokens: u64 = raw.llen(&wake).await.unwrap();
    assert_eq!(tokens, 1, "resume wakes an idle worker");
    assert!(!env.broker.stats("t").await.unwrap().paused);
    let fetched = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert_eq!(fetched.jobs.len(), 5);
});

on_both!(
    entry_actions_change_only_what_is_still_there,
    ["t"],
    |env| {
        push_json(&env, "t", "p", 3, "", &spec(Priority::Normal)).await;
        push_json(
            &env,
            "t",
            "later",
            2,
            "",
            &delayed(Duration::from_secs(600)),
        )
        .await;
        let pending = env
            .broker
            .entries("t", State::Pending(Priority::Normal), 0, 10)
            .await
            .unwrap();
        let changed = env
            .broker
            .delete_entries("t", &[pending[1].locator()])
            .await
            .unwrap();
        assert_eq!((changed.done, changed.skipped), (1, 0));
        // Deleting it again finds nothing; its explicit id is free again.
        let again = env
            .broker
            .delete_entries("t", &[pending[1].locator()])
            .await
            .unwrap();
        assert_eq!((again.done, again.skipped), (0, 1));
        let payload = codec::encode(&json!({"again": true})).unwrap();
        let job = NewJob {
            payload: &payload,
            id: Some("p-1"),
        };
        env.broker
            .enqueue("t", &spec(Priority::High), &[job])
            .await
            .expect("the deleted job's id is free again");

        // Run now: the delayed job joins the back of its pending list.
        let later = env
            .broker
            .entries("t", State::Delayed, 0, 10)
            .await
            .unwrap();
        let ran = env
            .broker
            .run_now("t", &[later[0].locator()])
            .await
            .unwrap();
        assert_eq!(ran.done, 1);
        let normal = env
            .broker
            .entries("t", State::Pending(Priority::Normal), 0, 10)
            .await
            .unwrap();
        assert_eq!(ids(&normal), ["p-0", "p-2", later[0].id().unwrap()]);
        let refused = env.broker.run_now("t", &[normal[0].locator()]).await;
        assert!(matches!(
            refused,
            Err(Error::NotAllowed {
                action: "run now",
                ..
            })
        ));

        // A running job is never deleted.
        let running = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
        let processing = env
            .broker
            .entries("t", State::Processing, 0, 10)
            .await
            .unwrap();
        assert_eq!(processing[0].id(), Some(running[0].id()));
        let refused = env
            .broker
            .delete_entries("t", &[processing[0].locator()])
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("running job cannot be deleted"),
            "{refused}"
        );

        // Dead entries: retry one, delete the other.
        push_json(&env, "x", "x", 2, "", &spec(Priority::Normal)).await;
        kill_one(&env, "x", "first").await;
        kill_one(&env, "x", "second").await;
        let dead = env.broker.entries("x", State::Dead, 0, 10).await.unwrap();
        let retried = env
            .broker
            .retry_entries("x", &[dead[0].locator()])
            .await
            .unwrap();
        assert_eq!((retried.moved, retried.missing), (1, 0));
        let retried = env
            .broker
            .retry_entries("x", &[dead[0].locator()])
            .await
            .unwrap();
        assert_eq!((retried.moved, retried.missing), (0, 1));
        let deleted = env
            .broker
            .delete_entries("x", &[dead[1].locator()])
            .await
            .unwrap();
        assert_eq!(deleted.done, 1);
        assert_eq!(env.broker.depth("x", State::Dead).await.unwrap(), 0);
        let back = env.broker.fetch("x", 10, LEASE).await.unwrap().jobs;
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].id(), dead[0].id().unwrap());
    }
);

on_both!(
    purge_deletes_a_big_state_in_slices_and_frees_ids,
    ["t"],
    |env| {
        push_json(&env, "t", "p", 2500, "", &spec(Priority::Low)).await;
        push_json(&env, "t", "d", 1200, "", &delayed(Duration::from_secs(600))).await;
        let purged = env
            .broker
            .purge_state("t", State::Pending(Priority::Low))
            .await
            .unwrap();
        assert_eq!(purged, 2500);
        assert_eq!(
            env.broker.purge_state("t", State::Delayed).await.unwrap(),
            1200
        );
        let mut raw = env.raw().await;
        let ids: u64 = raw.scard(env.keys("t").ids).await.unwrap();
        assert_eq!(ids, 0, "explicit ids are free again");
        push_json(&env, "t", "p", 1, "", &spec(Priority::Low)).await;
        assert!(env
            .broker
            .purge_state("t", State::Processing)
            .await
            .is_err());
    }
);

#[tokio::test]
async fn search_streams_matches_through_a_cursor() {
    let env = Env::on(Deployment::Standalone).await;
    push_json(&env, "a", "a", 1200, "plain", &spec(Priority::Normal)).await;
    push_json(
        &env,
        "a",
        "needle",
        3,
        "the Needle <b>",
        &spec(Priority::Low),
    )
    .await;
    push_json(&env, "b", "b", 2, "plain", &spec(Priority::Normal)).await;
    kill_one(&env, "b", "failed: NEEDLE in error").await;
    let topics = vec!["a".to_owned(), "b".to_owned()];
    let needle = Needle::text("needle");

    let mut cursor = Cursor::default();
    let mut hits = Vec::new();
    let mut calls = 0;
    loop {
        let page = env
            .broker
            .search(&topics, &needle, cursor, 500, 100)
            .await
            .unwrap();
        assert!(page.scanned <= 500, "the budget bounds each call");
        calls += 1;
        hits.extend(
            page.hits
                .into_iter()
                .map(|(topic, e)| format!("{topic}/{}", e.id().unwrap())),
        );
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(calls >= 3, "1,200 entries at 500 per call: {calls} calls");
    assert_eq!(
        hits,
        ["a/needle-0", "a/needle-1", "a/needle-2", "b/b-0"],
        "payload text and error text, case-insensitive"
    );

    let by_id = env
        .broker
        .search(
            &topics,
            &Needle::Id("b-1".into()),
            Cursor::default(),
            10_000,
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_id.hits.len(), 1);
    assert_eq!(by_id.hits[0].0, "b");
    assert!(by_id.next.is_none());
}

#[tokio::test]
async fn a_search_over_many_empty_topics_goes_on_in_bounded_steps() {
    let env = Env::on(Deployment::Standalone).await;
    let mut topics: Vec<String> = (0..40).map(|i| format!("empty-{i}")).collect();
    topics.push("full".to_owned());
    push_json(&env, "full", "late", 1, "found it", &spec(Priority::Normal)).await;
    let needle = Needle::text("found it");
    let first = env
        .broker
        .search(&topics, &needle, Cursor::default(), 10_000, 10)
        .await
        .unwrap();
    assert!(first.hits.is_empty());
    let next = first.next.expect("40 empty topics take more than one call");
    assert!(next.topic < 40, "{next:?}");
    let mut cursor = Some(next);
    let mut hits = Vec::new();
    while let Some(at) = cursor {
        let page = env
            .broker
            .search(&topics, &needle, at, 10_000, 10)
            .await
            .unwrap();
        hits.extend(
            page.hits
                .into_iter()
                .map(|(topic, e)| (topic, e.id().unwrap().to_owned())),
        );
        cursor = page.next;
    }
    assert_eq!(hits, [("full".to_owned(), "late-0".to_owned())]);
}
