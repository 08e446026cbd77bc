//! Unique jobs against a real Redis: one job per key under concurrent
//! enqueues, in every mode, and the lock freed in every end state.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use rmq_core::broker::{EnqueueSpec, Failure, NewJob, State};
use rmq_core::envelope::Envelope;
use rmq_core::{Enqueued, Priority, UniqueLock, UniqueMode};
use support::{spec, Deployment, Env, LEASE};

const MODES: [UniqueMode; 4] = [
    UniqueMode::UntilStarted,
    UniqueMode::UntilCompleted,
    UniqueMode::Window,
    UniqueMode::Debounce,
];

fn lock(mode: UniqueMode, key: &str, ttl: Duration) -> UniqueLock {
    UniqueLock {
        mode,
        key: key.to_owned(),
        ttl,
    }
}

/// One unique enqueue of `payload` with key `key`.
async fn put(
    env: &Env,
    topic: &str,
    payload: &str,
    spec: &EnqueueSpec,
    lock: &UniqueLock,
) -> Enqueued {
    let job = NewJob {
        payload: payload.as_bytes(),
        id: None,
    };
    env.broker
        .enqueue_unique(topic, spec, job, false, lock)
        .await
        .unwrap()
}

/// Until completed, an hour, key `k`.
fn completed() -> UniqueLock {
    lock(UniqueMode::UntilCompleted, "k", Duration::from_secs(3600))
}

/// Jobs of `topic` queued, delayed or leased.
async fn jobs(env: &Env, topic: &str) -> u64 {
    let stats = env.broker.stats(topic).await.unwrap();
    stats.pending.iter().sum::<u64>() + stats.delayed + stats.processing
}

async fn holder(env: &Env, topic: &str, key: &str) -> Option<String> {
    env.broker
        .unique_lock(topic, key)
        .await
        .unwrap()
        .job
        .map(|id| id.to_string())
}

/// Fetches one job (which must be there).
async fn fetch_one(env: &Env, topic: &str, lease: Duration) -> Envelope {
    let mut jobs = env.broker.fetch(topic, 1, lease).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    jobs.remove(0)
}

/// Waits (polling, bounded) until the lock `key` of `topic` is gone.
async fn until_unlocked(env: &Env, topic: &str, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while holder(env, topic, key).await.is_some() {
        assert!(Instant::now() < deadline, "lock {key} never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_both!(
    sixteen_concurrent_enqueues_make_one_job_in_every_mode,
    ["c"],
    |env| {
        for (n, mode) in MODES.into_iter().enumerate() {
            let topic = format!("c{n}");
            let lock = lock(mode, "same", Duration::from_secs(60));
            // A debounced job waits (the client gives it its ttl as delay).
            let mut spec = spec(Priority::Normal);
            if mode == UniqueMode::Debounce {
                spec.delay = Duration::from_secs(60);
            }
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let broker = env.broker.clone();
                    let topic = topic.clone();
                    let lock = lock.clone();
                    let spec = spec.clone();
                    tokio::spawn(async move {
                        let payload = format!("p{i}");
                        let job = NewJob {
                            payload: payload.as_bytes(),
                            id: None,
                        };
                        broker
                            .enqueue_unique(&topic, &spec, job, false, &lock)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            let new: Vec<_> = results.iter().filter(|r| r.is_new()).collect();
            assert_eq!(new.len(), 1, "{mode}: {results:?}");
            assert!(
                results.iter().all(|r| r.id() == new[0].id()),
                "{mode}: every enqueue names the one job: {results:?}"
            );
            let expected_rest = if mode == UniqueMode::Debounce {
                "replaced"
            } else {
                "duplicate"
            };
            assert!(
                results
                    .iter()
                    .filter(|r| !r.is_new())
                    .all(|r| r.to_string().contains(expected_rest)),
                "{mode}: {results:?}"
            );
            assert_eq!(jobs(&env, &topic).await, 1, "{mode}");
        }
    }
);

on_both!(
    until_completed_holds_while_running_and_frees_at_ack,
    ["t"],
    |env| {
        let first = put(&env, "t", "a", &spec(Priority::Normal), &completed()).await;
        assert!(first.is_new());
        let again = put(&env, "t", "b", &spec(Priority::Normal), &completed()).await;
        assert_eq!(again, Enqueued::Duplicate(first.id().clone()));
        let job = fetch_one(&env, "t", LEASE).await;
        assert!(job.holds_unique_lock());
        assert!(put(&env, "t", "c", &spec(Priority::Normal), &completed())
            .await
            .is_duplicate());
        assert!(env.broker.ack("t", &[job], &[]).await.unwrap().is_empty());
        assert_eq!(holder(&env, "t", "k").await, None);
        let mut raw = env.raw().await;
        let locks: bool = raw.exists(&env.keys("t").locks).await.unwrap();
        assert!(!locks, "no lock entry is left behind");
        assert!(put(&env, "t", "d", &spec(Priority::Normal), &completed())
            .await
            .is_new());
    }
);

on_both!(until_started_frees_at_lease, ["t"], |env| {
    let started = lock(UniqueMode::UntilStarted, "k", Duration::from_secs(60));
    assert!(put(&env, "t", "a", &spec(Priority::Normal), &started)
        .await
        .is_new());
    assert!(put(&env, "t", "b", &spec(Priority::Normal), &started)
        .await
        .is_duplicate());
    let _running = fetch_one(&env, "t", LEASE).await;
    assert_eq!(holder(&env, "t", "k").await, None);
    assert!(put(&env, "t", "c", &spec(Priority::Normal), &started)
        .await
        .is_new());
});

on_both!(window_is_released_by_its_ttl_only, ["t"], |env| {
    let window = lock(UniqueMode::Window, "k", Duration::from_millis(400));
    let first = put(&env, "t", "a", &spec(Priority::Normal), &window).await;
    assert!(first.is_new());
    let job = fetch_one(&env, "t", LEASE).await;
    assert!(
        !job.holds_unique_lock(),
        "a window lock has no entry to release"
    );
    env.broker.ack("t", &[job], &[]).await.unwrap();
    // Completed, and still throttled until the window ends.
    if holder(&env, "t", "k").await.is_some() {
        assert!(put(&env, "t", "b", &spec(Priority::Normal), &window)
            .await
            .is_duplicate());
    }
    until_unlocked(&env, "t", "k").await;
    assert!(put(&env, "t", "c", &spec(Priority::Normal), &window)
        .await
        .is_new());
});

on_both!(
    death_after_retries_frees_and_retries_keep_it,
    ["t"],
    |env| {
        let mut one_retry = spec(Priority::Normal);
        one_retry.max_retries = 1;
        assert!(put(&env, "t", "a", &one_retry, &completed()).await.is_new());
        let failure = Failure {
            error: "boom",
            permanent: false,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        let job = fetch_one(&env, "t", LEASE).await;
        env.broker.fail("t", &job, &failure).await.unwrap();
        assert!(
            put(&env, "t", "b", &one_retry, &completed())
                .await
                .is_duplicate(),
            "a retry keeps the lock"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let retry = loop {
            let mut got = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
            if let Some(job) = got.pop() {
                break job;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        env.broker.fail("t", &retry, &failure).await.unwrap();
        assert_eq!(env.broker.stats("t").await.unwrap().dead, 1);
        assert_eq!(holder(&env, "t", "k").await, None);
        assert!(put(&env, "t", "c", &one_retry, &completed()).await.is_new());
    }
);

on_both!(expired_at_fetch_frees, ["t"], |env| {
    let mut brief = spec(Priority::Normal);
    brief.ttl = Some(Duration::from_millis(1));
    assert!(put(&env, "t", "a", &brief, &completed()).await.is_new());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fetched = env.broker.fetch("t", 1, LEASE).await.unwrap();
    assert!(fetched.jobs.is_empty());
    assert_eq!(env.broker.stats("t").await.unwrap().dead, 1);
    assert_eq!(holder(&env, "t", "k").await, None);
    assert!(put(&env, "t", "b", &brief, &completed()).await.is_new());
});

on_both!(parse_error_frees, ["t"], |env| {
    assert!(put(&env, "t", "a", &spec(Priority::Normal), &completed())
        .await
        .is_new());
    let job = fetch_one(&env, "t", LEASE).await;
    assert!(env.broker.reject("t", &job, "bad payload").await.unwrap());
    assert_eq!(holder(&env, "t", "k").await, None);
    assert!(put(&env, "t", "b", &spec(Priority::Normal), &completed())
        .await
        .is_new());
});

on_both!(delete_and_purge_from_the_dashboard_free, ["t"], |env| {
    let mut later = spec(Priority::Normal);
    later.delay = Duration::from_secs(3600);
    for (state, spec) in [
        (State::Pending(Priority::Normal), spec(Priority::Normal)),
        (State::Delayed, later),
    ] {
        // Delete one entry.
        assert!(put(&env, "t", "a", &spec, &completed()).await.is_new());
        let entries = env.broker.entries("t", state, 0, 10).await.unwrap();
        assert_eq!(entries.len(), 1);
        let changed = env
            .broker
            .delete_entries("t", &[entries[0].locator()])
            .await
            .unwrap();
        assert_eq!(changed.done, 1);
        assert_eq!(holder(&env, "t", "k").await, None, "delete {state:?}");
        // Purge the state.
        assert!(put(&env, "t", "b", &spec, &completed()).await.is_new());
        assert_eq!(env.broker.purge_state("t", state).await.unwrap(), 1);
        assert_eq!(holder(&env, "t", "k").await, None, "purge {state:?}");
        assert!(put(&env, "t", "c", &spec, &completed()).await.is_new());
        env.broker.purge_state("t", state).await.unwrap();
    }
});

on_both!(
    lease_recovery_keeps_the_lock_until_the_job_really_ends,
    ["t"],
    |env| {
        let mut one_retry = spec(Priority::Normal);
        one_retry.max_retries = 1;
        let first = put(&env, "t", "a", &one_retry, &completed()).await;
        // A worker that crashed: its lease runs out.
        let _lost = fetch_one(&env, "t", Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let recovered = env.broker.recover("t", 10).await.unwrap();
        assert_eq!(recovered.requeued, 1);
        assert_eq!(
            put(&env, "t", "b", &one_retry, &completed()).await,
            Enqueued::Duplicate(first.id().clone()),
            "recovery keeps the lock"
        );
        // Crashed again, no attempt left: dead, and the lock goes.
        let _lost = fetch_one(&env, "t", Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let recovered = env.broker.recover("t", 10).await.unwrap();
        assert_eq!(recovered.dead, 1);
        assert_eq!(holder(&env, "t", "k").await, None);
        assert!(put(&env, "t", "c", &one_retry, &completed()).await.is_new());
    }
);

on_both!(
    an_expired_lock_frees_and_its_old_job_leaves_the_new_one,
    ["t"],
    |env| {
        let short = lock(UniqueMode::UntilCompleted, "k", Duration::from_millis(300));
        let old = put(&env, "t", "a", &spec(Priority::Normal), &short).await;
        until_unlocked(&env, "t", "k").await;
        let long = completed();
        let new = put(&env, "t", "b", &spec(Priority::Normal), &long).await;
        assert!(new.is_new());
        assert_ne!(new.id(), old.id());
        // The old job ends: the lock is the new job's, and stays.
        let job = fetch_one(&env, "t", LEASE).await;
        assert_eq!(job.id(), old.id().as_str());
        env.broker.ack("t", &[job], &[]).await.unwrap();
        assert_eq!(holder(&env, "t", "k").await, Some(new.id().to_string()));
        assert_eq!(
            put(&env, "t", "c", &spec(Priority::Normal), &long).await,
            Enqueued::Duplicate(new.id().clone())
        );
    }
);

on_both!(
    debounce_replaces_the_waiting_job_and_restarts_its_delay,
    ["t"],
    |env| {
        let wait = Duration::from_secs(60);
        let debounce = lock(UniqueMode::Debounce, "k", wait * 2);
        let mut delayed = spec(Priority::Normal);
        delayed.delay = wait;
        let first = put(&env, "t", "v1", &delayed, &debounce).await;
        assert!(first.is_new());
        let due_first = env
            .broker
            .entries("t", State::Delayed, 0, 10)
            .await
            .unwrap()[0]
            .at_ms()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = put(&env, "t", "v2", &delayed, &debounce).await;
        assert_eq!(second, Enqueued::Replaced(first.id().clone()));
        let entries = env
            .broker
            .entries("t", State::Delayed, 0, 10)
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "the newer payload replaced the older");
        let envelope = entries[0].envelope.as_ref().unwrap();
        assert_eq!(envelope.payload(), b"v2");
        assert_eq!(envelope.id(), first.id().as_str());
        assert!(
            entries[0].at_ms().unwrap() > due_first,
            "the delay restarted"
        );
        // Run now: when a worker leases it, the lock is released.
        let changed = env
            .broker
            .run_now("t", &[entries[0].locator()])
            .await
            .unwrap();
        assert_eq!(changed.done, 1);
        // Due, not yet leased: a plain duplicate (it runs with what it has).
        assert_eq!(
            put(&env, "t", "late", &delayed, &debounce).await,
            Enqueued::Duplicate(first.id().clone())
        );
        let job = fetch_one(&env, "t", LEASE).await;
        assert_eq!(job.payload(), b"v2");
        assert_eq!(holder(&env, "t", "k").await, None);
        assert!(put(&env, "t", "v3", &delayed, &debounce).await.is_new());
    }
);

on_both!(plain_jobs_carry_no_flag_and_write_no_lock, ["t"], |env| {
    env.push("t", &["plain"], &spec(Priority::Normal)).await;
    let job = fetch_one(&env, "t", LEASE).await;
    assert!(!job.holds_unique_lock());
    env.broker.ack("t", &[job], &[]).await.unwrap();
    let mut raw = env.raw().await;
    let locks: bool = raw.exists(&env.keys("t").locks).await.unwrap();
    assert!(!locks);
});

#[tokio::test]
async fn locks_are_listed_and_cleared() {
    let env = Env::new().await;
    let first = put(&env, "t", "a", &spec(Priority::Normal), &completed()).await;
    let listed = env.broker.unique_locks("t").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "k");
    assert_eq!(listed[0].job.as_ref(), Some(first.id()));
    assert_eq!(listed[0].mode, Some(UniqueMode::UntilCompleted));
    assert!(listed[0].ttl_ms.is_some_and(|ms| ms > 3_000_000));
    assert!(env.broker.clear_unique_lock("t", "k").await.unwrap());
    assert!(!env.broker.clear_unique_lock("t", "k").await.unwrap());
    assert!(put(&env, "t", "b", &spec(Priority::Normal), &completed())
        .await
        .is_new());
    assert_eq!(jobs(&env, "t").await, 2);
}

on_both!(
    a_foreign_locks_key_stops_a_unique_enqueue_before_any_write,
    ["t"],
    |env| {
        let keys = env.keys("t");
        let mut raw = env.raw().await;
        let _: () = raw.set(&keys.locks, "foreign").await.unwrap();
        let job = NewJob {
            payload: b"a",
            id: None,
        };
        let error = env
            .broker
            .enqueue_unique("t", &spec(Priority::Normal), job, false, &completed())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("WRONGTYPE"), "{error}");
        assert_eq!(jobs(&env, "t").await, 0);
        let locked: bool = raw.exists(keys.unique("k")).await.unwrap();
        assert!(!locked, "no lock without its job");
        // Plain jobs of the topic run as before, and so do window locks.
        env.push("t", &["plain"], &spec(Priority::Normal)).await;
        let window = lock(UniqueMode::Window, "w", Duration::from_secs(60));
        assert!(put(&env, "t", "b", &spec(Priority::Normal), &window)
            .await
            .is_new());
        let first = fetch_one(&env, "t", LEASE).await;
        env.broker.ack("t", &[first], &[]).await.unwrap();
    }
);
