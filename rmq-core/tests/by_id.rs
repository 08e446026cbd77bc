//! Status by id and cancellation against a real Redis (and the shared
//! cluster): every state, every transition keeping the index, cancelling
//! queued and running jobs.

#[macro_use]
mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rmq_core::broker::{Cancelled, EnqueueSpec, Failure, JobState, NewJob};
use rmq_core::{Broker, Priority};
use support::{spec, Deployment, Env, LEASE};

fn indexed(priority: Priority) -> EnqueueSpec {
    EnqueueSpec {
        index: true,
        ..spec(priority)
    }
}

async fn push_one(env: &Env, topic: &str, payload: &str, spec: &EnqueueSpec) -> String {
    env.push(topic, &[payload], spec).await[0].to_string()
}

async fn push_with_id(broker: &Broker, topic: &str, id: &str, spec: &EnqueueSpec) {
    let jobs = [NewJob {
        payload: b"explicit",
        id: Some(id),
    }];
    broker.enqueue(topic, spec, &jobs).await.unwrap();
}

fn failure(error: &str, permanent: bool) -> Failure<'_> {
    Failure {
        error,
        permanent,
        retry_delay: Duration::from_secs(60),
        cancelled: false,
    }
}

async fn state(env: &Env, topic: &str, id: &str) -> Option<JobState> {
    env.broker
        .status(topic, id)
        .await
        .unwrap()
        .map(|status| status.state)
}

async fn index_len(env: &Env, topic: &str) -> usize {
    env.raw().await.hlen(env.keys(topic).index).await.unwrap()
}

on_both!(status_follows_a_job_through_every_state, ["t"], |env| {
    let topic = "t";
    let id = push_one(&env, topic, "payload", &indexed(Priority::High)).await;
    let status = env.broker.status(topic, &id).await.unwrap().unwrap();
    assert_eq!(
        status.state,
        JobState::Pending {
            priority: Priority::High,
            position: Some(0)
        }
    );
    assert_eq!(&status.payload[..], b"payload");
    assert_eq!((status.attempt, status.max_retries), (1, 3));
    assert_eq!(status.id.as_str(), id);
    assert_eq!(status.topic, topic);
    assert_eq!(status.last_error, None);

    // A second job behind it is at position 1.
    let behind = push_one(&env, topic, "behind", &indexed(Priority::High)).await;
    assert!(matches!(
        state(&env, topic, &behind).await,
        Some(JobState::Pending {
            position: Some(1),
            ..
        })
    ));

    let job = env
        .broker
        .with_owner("worker-7")
        .fetch(topic, 1, LEASE)
        .await
        .unwrap()
        .jobs;
    let Some(JobState::Processing {
        worker,
        cancel_requested,
        deadline,
    }) = state(&env, topic, &id).await
    else {
        panic!("processing expected");
    };
    assert_eq!(worker.as_deref(), Some("worker-7"));
    assert!(!cancel_requested);
    assert!(deadline > std::time::SystemTime::now());

    env.broker
        .fail(topic, &job[0], &failure("boom", false))
        .await
        .unwrap();
    let status = env.broker.status(topic, &id).await.unwrap().unwrap();
    let JobState::Retrying { attempt, error, .. } = &status.state else {
        panic!("retrying expected, got {:?}", status.state);
    };
    assert_eq!((*attempt, error.as_str()), (2, "boom"));
    assert_eq!(status.last_error.as_deref(), Some("boom"));

    // Run the retry now, fail it for good: dead, with its error.
    let entry = env
        .broker
        .entries(topic, rmq_core::broker::State::Delayed, 0, 10)
        .await
        .unwrap();
    let locators: Vec<_> = entry.iter().map(|e| e.locator()).collect();
    assert_eq!(env.broker.run_now(topic, &locators).await.unwrap().done, 1);
    assert!(matches!(
        state(&env, topic, &id).await,
        Some(JobState::Pending { .. })
    ));
    let status = env.broker.status(topic, &id).await.unwrap().unwrap();
    assert_eq!(status.attempt, 2, "the retry keeps its attempt");
    assert_eq!(
        status.last_error.as_deref(),
        Some("boom"),
        "and its last error"
    );
    // `behind` is ahead of the retry now.
    let mut jobs = env
        .fetch_until(topic, 2, LEASE, Duration::from_secs(5))
        .await;
    assert_eq!(jobs[0].id(), behind);
    env.broker.release(topic, &jobs[..1]).await.unwrap();
    let job = jobs.split_off(1);
    env.broker
        .fail(topic, &job[0], &failure("gone", true))
        .await
        .unwrap();
    let Some(JobState::Dead { error, .. }) = state(&env, topic, &id).await else {
        panic!("dead expected");
    };
    assert_eq!(error, "gone");

    // Retried from the dead-letter queue: pending again.
    let dead = env.broker.dead_letter(topic, &id).await.unwrap();
    assert_eq!(dead.envelope.id(), id);
    env.broker.retry_dead(topic, &id).await.unwrap();
    assert!(matches!(
        state(&env, topic, &id).await,
        Some(JobState::Pending { .. })
    ));

    // Completed: gone from the index.
    let mut done = env
        .fetch_until(topic, 2, LEASE, Duration::from_secs(5))
        .await;
    done.sort_by_key(|j| j.id().to_owned());
    env.broker
        .ack(topic, &done, &[Duration::ZERO; 2])
        .await
        .unwrap();
    assert_eq!(state(&env, topic, &id).await, None);
    assert_eq!(state(&env, topic, &behind).await, None);
    assert_eq!(index_len(&env, topic).await, 0);
});

on_both!(delayed_and_parse_errors_and_unindexed_jobs, ["t"], |env| {
    let topic = "t";
    let later = EnqueueSpec {
        delay: Duration::from_secs(600),
        ..indexed(Priority::Normal)
    };
    let id = push_one(&env, topic, "later", &later).await;
    let Some(JobState::Delayed { due }) = state(&env, topic, &id).await else {
        panic!("delayed expected");
    };
    assert!(due > std::time::SystemTime::now() + Duration::from_secs(500));

    // Not indexed: unknown, and nothing written for it.
    let plain = push_one(&env, topic, "plain", &spec(Priority::Normal)).await;
    assert_eq!(state(&env, topic, &plain).await, None);
    assert_eq!(index_len(&env, topic).await, 1);

    // Explicit ids are always indexed.
    push_with_id(&env.broker, topic, "order-1", &spec(Priority::Low)).await;
    assert!(matches!(
        state(&env, topic, "order-1").await,
        Some(JobState::Pending {
            priority: Priority::Low,
            ..
        })
    ));
    let jobs = env
        .fetch_until(topic, 2, LEASE, Duration::from_secs(5))
        .await;
    let explicit = jobs.iter().find(|j| j.id() == "order-1").unwrap();
    env.broker
        .reject(topic, explicit, "bad payload")
        .await
        .unwrap();
    let Some(JobState::ParseError { error, .. }) = state(&env, topic, "order-1").await else {
        panic!("parse error expected");
    };
    assert_eq!(error, "bad payload");
    env.broker
        .purge_state(topic, rmq_core::broker::State::ParseError)
        .await
        .unwrap();
    assert_eq!(state(&env, topic, "order-1").await, None);
    assert_eq!(
        index_len(&env, topic).await,
        1,
        "only the delayed job is left"
    );
});

on_both!(cancel_removes_queued_jobs_at_once, ["t"], |env| {
    let topic = "t";
    let pending = push_one(&env, topic, "p", &indexed(Priority::Normal)).await;
    let later = EnqueueSpec {
        delay: Duration::from_secs(600),
        ..indexed(Priority::Normal)
    };
    let delayed = push_one(&env, topic, "d", &later).await;
    let other = push_one(&env, topic, "o", &indexed(Priority::Normal)).await;
    assert_eq!(
        env.broker.cancel(topic, &pending).await.unwrap(),
        Cancelled::Removed
    );
    assert_eq!(
        env.broker.cancel(topic, &delayed).await.unwrap(),
        Cancelled::Removed
    );
    assert!(matches!(
        state(&env, topic, &pending).await,
        Some(JobState::Cancelled { .. })
    ));
    assert!(matches!(
        state(&env, topic, &delayed).await,
        Some(JobState::Cancelled { .. })
    ));
    // Kept in the dead-letter queue, marked cancelled.
    let dead = env.broker.dead_letter(topic, &pending).await.unwrap();
    assert_eq!(dead.error, "cancelled");
    assert_eq!(
        env.broker.cancel(topic, &pending).await.unwrap(),
        Cancelled::AlreadyEnded
    );
    assert_eq!(
        env.broker.cancel(topic, "nope").await.unwrap(),
        Cancelled::NotFound
    );
    // Only the other job runs.
    let jobs = env.broker.fetch(topic, 10, LEASE).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id(), other);
    let stats = env.broker.stats(topic).await.unwrap();
    assert_eq!(stats.dead, 2);
});

on_both!(
    cancel_of_a_retrying_job_with_an_explicit_id_frees_the_id,
    ["t"],
    |env| {
        let topic = "t";
        push_with_id(&env.broker, topic, "invoice-9", &spec(Priority::Normal)).await;
        let job = env.broker.fetch(topic, 1, LEASE).await.unwrap().jobs;
        env.broker
            .fail(topic, &job[0], &failure("flaky", false))
            .await
            .unwrap();
        assert!(matches!(
            state(&env, topic, "invoice-9").await,
            Some(JobState::Retrying { .. })
        ));
        assert_eq!(
            env.broker.cancel(topic, "invoice-9").await.unwrap(),
            Cancelled::Removed
        );
        // The id can be used again.
        push_with_id(&env.broker, topic, "invoice-9", &spec(Priority::Normal)).await;
        assert!(matches!(
            state(&env, topic, "invoice-9").await,
            Some(JobState::Pending { .. })
        ));
    }
);

on_both!(
    a_running_job_is_signalled_through_its_lease_renewal,
    ["t"],
    |env| {
        let topic = "t";
        let id = push_one(&env, topic, "r", &indexed(Priority::Normal)).await;
        // Not indexed, running: found among the running jobs.
        let plain = push_one(&env, topic, "plain", &spec(Priority::Normal)).await;
        let jobs = env
            .fetch_until(topic, 2, LEASE, Duration::from_secs(5))
            .await;
        let extended = env.broker.extend(topic, &jobs, LEASE).await.unwrap();
        assert!(extended.cancel.is_empty());

        assert_eq!(
            env.broker.cancel(topic, &id).await.unwrap(),
            Cancelled::Signalled
        );
        assert_eq!(
            env.broker.cancel(topic, &id).await.unwrap(),
            Cancelled::AlreadySignalled
        );
        assert_eq!(
            env.broker.cancel(topic, &plain).await.unwrap(),
            Cancelled::Signalled
        );
        let Some(JobState::Processing {
            cancel_requested, ..
        }) = state(&env, topic, &id).await
        else {
            panic!("processing expected");
        };
        assert!(cancel_requested);
        let extended = env.broker.extend(topic, &jobs, LEASE).await.unwrap();
        assert_eq!(extended.cancel, vec![0, 1]);
        assert!(extended.lost.is_empty());

        // A failure after the signal ends it cancelled, not retried, whatever
        // the handler returned.
        let outcome = env
            .broker
            .fail(topic, &jobs[0], &failure("interrupted", false))
            .await
            .unwrap();
        assert_eq!(outcome, rmq_core::broker::FailOutcome::Cancelled);
        assert!(matches!(
            state(&env, topic, &id).await,
            Some(JobState::Cancelled { .. })
        ));
        // A job that completes despite the request completes; the request goes.
        env.broker
            .ack(topic, &jobs[1..], &[Duration::ZERO])
            .await
            .unwrap();
        let requests: usize = env.raw().await.hlen(env.keys(topic).cancel).await.unwrap();
        assert_eq!(requests, 0);
        assert_eq!(
            env.broker
                .depth(topic, rmq_core::broker::State::Delayed)
                .await
                .unwrap(),
            0
        );
    }
);

on_both!(
    a_cancelled_job_whose_lease_expires_is_not_retried,
    ["t"],
    |env| {
        let topic = "t";
        let id = push_one(&env, topic, "r", &indexed(Priority::Normal)).await;
        let jobs = env
            .fetch_until(topic, 1, Duration::from_millis(50), Duration::from_secs(5))
            .await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            env.broker.cancel(topic, &id).await.unwrap(),
            Cancelled::Signalled
        );
        // The worker died: its lease expires, recovery ends the job cancelled.
        // (Polled: the lease runs out with time, no event announces it.)
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let recovered = env.broker.recover(topic, 10).await.unwrap();
            assert_eq!(
                (recovered.requeued, recovered.dead),
                (0, 0),
                "never retried"
            );
            if matches!(
                state(&env, topic, &id).await,
                Some(JobState::Cancelled { .. })
            ) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the lease never expired"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(env
            .broker
            .fetch(topic, 10, LEASE)
            .await
            .unwrap()
            .jobs
            .is_empty());
    }
);

on_both!(
    a_released_job_asked_to_cancel_ends_cancelled,
    ["t"],
    |env| {
        let topic = "t";
        let id = push_one(&env, topic, "r", &indexed(Priority::Normal)).await;
        let keep = push_one(&env, topic, "k", &indexed(Priority::Normal)).await;
        let jobs = env
            .fetch_until(topic, 2, LEASE, Duration::from_secs(5))
            .await;
        env.broker.cancel(topic, &id).await.unwrap();
        assert_eq!(env.broker.release(topic, &jobs).await.unwrap(), 2);
        assert!(matches!(
            state(&env, topic, &id).await,
            Some(JobState::Cancelled { .. })
        ));
        assert!(matches!(
            state(&env, topic, &keep).await,
            Some(JobState::Pending {
                position: Some(0),
                ..
            })
        ));
    }
);

#[tokio::test]
async fn cancelled_jobs_can_be_dropped_and_every_job_indexed_by_config() {
    let env = Env::with(|config| {
        config.keep_cancelled = false;
        config.index_jobs = true;
    })
    .await;
    let topic = "t";
    let id = push_one(&env, topic, "p", &spec(Priority::Normal)).await;
    assert!(state(&env, topic, &id).await.is_some(), "indexed by config");
    assert_eq!(
        env.broker.cancel(topic, &id).await.unwrap(),
        Cancelled::Removed
    );
    assert_eq!(state(&env, topic, &id).await, None);
    assert_eq!(env.broker.stats(topic).await.unwrap().dead, 0);
    assert_eq!(index_len(&env, topic).await, 0);
}

#[tokio::test]
async fn dead_entries_trimmed_by_count_leave_the_index() {
    let env = Env::with(|config| config.dead_letter_max_entries = 2).await;
    let topic = "t";
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(push_one(&env, topic, &format!("j{n}"), &indexed(Priority::Normal)).await);
        let job = env.broker.fetch(topic, 1, LEASE).await.unwrap().jobs;
        env.broker
            .fail(topic, &job[0], &failure("no", true))
            .await
            .unwrap();
    }
    assert_eq!(state(&env, topic, &ids[0]).await, None);
    assert_eq!(state(&env, topic, &ids[1]).await, None);
    assert!(matches!(
        state(&env, topic, &ids[3]).await,
        Some(JobState::Dead { .. })
    ));
    assert_eq!(index_len(&env, topic).await, 2);
    env.broker.purge_dead(topic).await.unwrap();
    assert_eq!(index_len(&env, topic).await, 0);
}

#[tokio::test]
async fn a_foreign_index_key_is_refused_before_any_write() {
    let env = Env::on(Deployment::Standalone).await;
    let topic = "t";
    let mut raw = env.raw().await;
    let () = raw.set(env.keys(topic).index, "not a hash").await.unwrap();
    let spec = indexed(Priority::Normal);
    let jobs = [NewJob {
        payload: b"x",
        id: None,
    }];
    let error = env.broker.enqueue(topic, &spec, &jobs).await.unwrap_err();
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");
    let depth = env
        .broker
        .depth(topic, rmq_core::broker::State::Pending(Priority::Normal))
        .await
        .unwrap();
    assert_eq!(depth, 0);
}

/// Depths of `topic`: pending (normal), delayed, processing.
async fn depths(env: &Env, topic: &str) -> [u64; 3] {
    use rmq_core::broker::State;
    let mut out = [0; 3];
    for (slot, state) in [
        State::Pending(Priority::Normal),
        State::Delayed,
        State::Processing,
    ]
    .into_iter()
    .enumerate()
    {
        out[slot] = env.broker.depth(topic, state).await.unwrap();
    }
    out
}

/// Puts the index aside and a string in its place, or the index back.
async fn foreign_index(env: &Env, index: &str, foreign: bool) {
    let mut raw = env.raw().await;
    let aside = format!("{index}:aside");
    if foreign {
        let () = raw.rename(index, &aside).await.unwrap();
        let () = raw.set(index, "not a hash").await.unwrap();
    } else {
        let () = raw.del(index).await.unwrap();
        let () = raw.rename(&aside, index).await.unwrap();
    }
}

#[tokio::test]
async fn an_index_key_turned_foreign_under_indexed_jobs_stops_promotion_lease_and_ack_before_any_write(
) {
    let env = Env::on(Deployment::Standalone).await;
    let topic = "t";
    let index = env.keys(topic).index;
    let mut delayed = indexed(Priority::Normal);
    delayed.delay = Duration::from_millis(1);
    let job = |payload: &'static [u8]| [NewJob { payload, id: None }];
    let refused = |error: rmq_core::Error| {
        assert!(error.to_string().contains("nothing was changed"), "{error}");
    };
    env.broker
        .enqueue(topic, &indexed(Priority::Normal), &job(b"now"))
        .await
        .unwrap();
    env.broker
        .enqueue(topic, &delayed, &job(b"later"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    // The due delayed job is indexed: its promotion is refused first.
    foreign_index(&env, &index, true).await;
    refused(env.broker.fetch(topic, 10, LEASE).await.unwrap_err());
    assert_eq!(depths(&env, topic).await, [1, 1, 0]);
    foreign_index(&env, &index, false).await;
    assert!(env
        .broker
        .fetch(topic, 0, LEASE)
        .await
        .unwrap()
        .jobs
        .is_empty());
    assert_eq!(depths(&env, topic).await, [2, 0, 0]);

    // Both pending and indexed: the lease is refused.
    foreign_index(&env, &index, true).await;
    refused(env.broker.fetch(topic, 10, LEASE).await.unwrap_err());
    assert_eq!(depths(&env, topic).await, [2, 0, 0]);
    foreign_index(&env, &index, false).await;
    let leased = env.broker.fetch(topic, 10, LEASE).await.unwrap().jobs;
    assert_eq!(leased.len(), 2);

    // Leased: the ack is refused and the jobs stay leased.
    foreign_index(&env, &index, true).await;
    let durations = [Duration::from_millis(1); 2];
    refused(
        env.broker
            .ack(topic, &leased, &durations)
            .await
            .unwrap_err(),
    );
    assert_eq!(depths(&env, topic).await, [0, 0, 2]);
}
