//! Each script's behaviour against a real Redis.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use rmq_core::broker::{EnqueueSpec, FailOutcome, Failure, NewJob};
use rmq_core::keys::TopicKeys;
use rmq_core::{Error, Priority};
use support::{payloads, readable, spec, Deployment, Env, LEASE};

on_both!(strict_priority_and_fifo_within_a_priority, ["t"], |env| {
    env.push("t", &["l1", "l2"], &spec(Priority::Low)).await;
    env.push("t", &["n1", "n2"], &spec(Priority::Normal)).await;
    env.push("t", &["h1"], &spec(Priority::High)).await;
    env.push("t", &["n3"], &spec(Priority::Normal)).await;
    env.push("t", &["h2"], &spec(Priority::High)).await;
    let first = env.broker.fetch("t", 3, LEASE).await.unwrap();
    assert_eq!(payloads(&first.jobs), ["h1", "h2", "n1"]);
    assert_eq!(first.next_due, None);
    let rest = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert_eq!(payloads(&rest.jobs), ["n2", "n3", "l1", "l2"]);
    assert!(env
        .broker
        .fetch("t", 10, LEASE)
        .await
        .unwrap()
        .jobs
        .is_empty());
});

#[tokio::test]
async fn generated_ids_count_up_and_the_envelope_is_filled_in() {
    let env = Env::new().await;
    let ids = env.push("t", &["a", "b", "c"], &spec(Priority::Low)).await;
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    let more = env.push("t", &["d"], &spec(Priority::Low)).await;
    assert_eq!(more[0].as_str(), "4");
    let jobs = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    let job = &jobs[0];
    assert_eq!(job.id(), "1");
    assert_eq!(job.priority(), Priority::Low);
    assert_eq!(job.retries_used(), 0);
    assert_eq!(job.max_retries(), 3);
    assert!(!job.has_explicit_id());
    assert_eq!(job.expire_at_ms(), None);
    let now = rmq_core::envelope::millis(std::time::SystemTime::now());
    assert!(job.enqueued_at_ms().abs_diff(now) < 60_000);
}

on_both!(batch_fetch_and_ack, ["t"], |env| {
    let names: Vec<String> = (0..250).map(|i| format!("j{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    env.push("t", &refs, &spec(Priority::Normal)).await;
    let batch = env.broker.fetch("t", 100, LEASE).await.unwrap().jobs;
    assert_eq!(batch.len(), 100);
    assert_eq!(payloads(&batch)[..3], ["j0", "j1", "j2"]);
    let durations = vec![Duration::from_micros(10); batch.len()];
    assert!(env
        .broker
        .ack("t", &batch, &durations)
        .await
        .unwrap()
        .is_empty());
    // A second ack of the same jobs: every lease is gone.
    let lost = env.broker.ack("t", &batch[..3], &[]).await.unwrap();
    assert_eq!(lost, [0, 1, 2]);
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!(stats.completed, 100);
    assert_eq!(stats.pending, [0, 150, 0]);
    assert_eq!(stats.processing, 0);
    assert_eq!(stats.processing_us[1], 12);
});

#[tokio::test]
async fn delayed_job_is_due_once_and_not_before_its_time() {
    let env = Env::new().await;
    let mut delayed = spec(Priority::Normal);
    delayed.delay = Duration::from_millis(300);
    let start = Instant::now();
    env.push("t", &["later"], &delayed).await;
    let first = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert!(first.jobs.is_empty());
    let next_due = first.next_due.expect("a delayed job is scheduled");
    assert!(next_due <= Duration::from_millis(300), "{next_due:?}");
    let jobs = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(payloads(&jobs), ["later"]);
    // Server time, client clock: allow a little skew, never much earlier.
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    let again = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert!(again.jobs.is_empty());
    assert_eq!(again.next_due, None);
    assert_eq!(env.broker.stats("t").await.unwrap().delayed, 0);
}

on_both!(
    retry_schedule_then_dead_letter_after_the_last_attempt,
    ["t"],
    |env| {
        let mut s = spec(Priority::High);
        s.max_retries = 2;
        env.push("t", &["flaky"], &s).await;
        let delays = [Duration::from_millis(50), Duration::from_millis(100)];
        for (attempt, delay) in delays.iter().enumerate() {
            let job = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
            assert_eq!(job.len(), 1);
            assert_eq!(job[0].retries_used() as usize, attempt);
            let failed_at = Instant::now();
            let outcome = env
                .broker
                .fail(
                    "t",
                    &job[0],
                    &Failure {
                        error: "boom",
                        permanent: false,
                        retry_delay: *delay,
                        cancelled: false,
                    },
                )
                .await
                .unwrap();
            assert_eq!(outcome, FailOutcome::Retrying);
            let stats = env.broker.stats("t").await.unwrap();
            assert_eq!(stats.delayed, 1);
            let retried = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
            assert!(failed_at.elapsed() + Duration::from_millis(20) >= *delay);
            assert_eq!(retried[0].retries_used() as usize, attempt + 1);
            env.broker.release("t", &retried).await.unwrap();
        }
        let last = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
        assert_eq!(last[0].retries_used(), 2);
        let outcome = env
            .broker
            .fail(
                "t",
                &last[0],
                &Failure {
                    error: "still broken",
                    permanent: false,
                    retry_delay: Duration::ZERO,
                    cancelled: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(outcome, FailOutcome::Dead);
        let dead = readable(env.broker.dead_letters("t", 0, 10).await.unwrap());
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].error, "still broken");
        assert_eq!(dead[0].envelope.retries_used(), 2);
        let stats = env.broker.stats("t").await.unwrap();
        assert_eq!((stats.failed, stats.dead, stats.delayed), (3, 1, 0));
        assert_eq!(env.broker.counter("t", "retried").await.unwrap(), 2);
    }
);

#[tokio::test]
async fn permanent_error_dead_letters_at_once() {
    let env = Env::new().await;
    env.push("t", &["bad"], &spec(Priority::Normal)).await;
    let job = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    let outcome = env
        .broker
        .fail(
            "t",
            &job[0],
            &Failure {
                error: "invalid input",
                permanent: true,
                retry_delay: Duration::from_secs(60),
                cancelled: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Dead);
    let dead = env.broker.dead_letter("t", job[0].id()).await.unwrap();
    assert_eq!(dead.error, "invalid input");
    assert_eq!(dead.envelope.retries_used(), 0);
}

#[tokio::test]
async fn dead_letter_disabled_drops_but_counts() {
    let env = Env::with(|c| c.enable_dead_letter = false).await;
    env.push("t", &["bad"], &spec(Priority::Normal)).await;
    let job = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    let failure = Failure {
        error: "x",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    let outcome = env.broker.fail("t", &job[0], &failure).await.unwrap();
    assert_eq!(outcome, FailOutcome::Dead);
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!((stats.dead, stats.failed), (0, 1));
    assert_eq!(env.broker.counter("t", "dead").await.unwrap(), 1);
}

on_both!(
    expired_lease_is_recovered_and_the_stale_worker_is_fenced_off,
    ["t"],
    |env| {
        let mut s = spec(Priority::Normal);
        s.max_retries = 1;
        env.push("t", &["a", "b"], &s).await;
        let stale = env
            .broker
            .fetch("t", 2, Duration::from_millis(50))
            .await
            .unwrap()
            .jobs;
        assert_eq!(stale.len(), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut recovered = rmq_core::broker::Recovered::default();
        while recovered.requeued < 2 && Instant::now() < deadline {
            let r = env.broker.recover("t", 100).await.unwrap();
            recovered.requeued += r.requeued;
            recovered.dead += r.dead;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((recovered.requeued, recovered.dead), (2, 0));
        // Back at the front with the attempt counted.
        let fresh = env.broker.fetch("t", 2, LEASE).await.unwrap().jobs;
        assert_eq!(fresh.len(), 2);
        assert!(fresh.iter().all(|j| j.retries_used() == 1));
        // The stale copies match nothing.
        assert_eq!(env.broker.ack("t", &stale, &[]).await.unwrap(), [0, 1]);
        assert_eq!(
            env.broker.extend("t", &stale, LEASE).await.unwrap().lost,
            [0, 1]
        );
        let failure = Failure {
            error: "late",
            permanent: false,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        assert_eq!(
            env.broker.fail("t", &stale[0], &failure).await.unwrap(),
            FailOutcome::LeaseLost
        );
        assert!(!env.broker.reject("t", &stale[0], "x").await.unwrap());
        assert_eq!(env.broker.release("t", &stale).await.unwrap(), 0);
        // The current holder still owns them.
        assert!(env
            .broker
            .extend("t", &fresh, LEASE)
            .await
            .unwrap()
            .lost
            .is_empty());
        // Lease expiry with no attempt left: dead with `lease expired`.
        let short = Duration::from_millis(20);
        assert_eq!(
            env.broker.extend("t", &fresh, short).await.unwrap().lost,
            Vec::<usize>::new()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut dead = 0;
        while dead < 2 && Instant::now() < deadline {
            dead += env.broker.recover("t", 100).await.unwrap().dead;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dead, 2);
        let entries = readable(env.broker.dead_letters("t", 0, 10).await.unwrap());
        assert!(entries.iter().all(|d| d.error == "lease expired"));
        assert_eq!(env.broker.counter("t", "recovered").await.unwrap(), 4);
    }
);

#[tokio::test]
async fn recover_reports_the_next_deadline() {
    let env = Env::new().await;
    env.push("t", &["a"], &spec(Priority::Normal)).await;
    env.broker
        .fetch("t", 1, Duration::from_secs(10))
        .await
        .unwrap();
    let r = env.broker.recover("t", 10).await.unwrap();
    assert_eq!((r.requeued, r.dead), (0, 0));
    let next = r.next_deadline.unwrap();
    assert!(next > Duration::from_secs(8) && next <= Duration::from_secs(10));
}

#[tokio::test]
async fn release_returns_jobs_to_the_front_unchanged() {
    let env = Env::new().await;
    env.push("t", &["a", "b", "c", "d"], &spec(Priority::Normal))
        .await;
    let held = env.broker.fetch("t", 2, LEASE).await.unwrap().jobs;
    assert_eq!(env.broker.release("t", &held).await.unwrap(), 2);
    let all = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&all), ["a", "b", "c", "d"]);
    assert!(all.iter().all(|j| j.retries_used() == 0));
}

#[tokio::test]
async fn ttl_expiry_goes_to_dead_as_expired_and_is_counted() {
    let env = Env::new().await;
    let mut s = spec(Priority::Normal);
    s.ttl = Some(Duration::from_millis(30));
    env.push("t", &["stale"], &s).await;
    env.push("t", &["ok"], &spec(Priority::Normal)).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let jobs = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&jobs), ["ok"]);
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!((stats.expired, stats.dead), (1, 1));
    let dead = readable(env.broker.dead_letters("t", 0, 10).await.unwrap());
    assert_eq!(dead[0].error, "expired");
    assert_eq!(String::from_utf8_lossy(dead[0].envelope.payload()), "stale");
}

#[tokio::test]
async fn ttl_counts_from_the_due_time_of_a_delayed_job() {
    let env = Env::new().await;
    let mut s = spec(Priority::Normal);
    s.delay = Duration::from_millis(100);
    s.ttl = Some(Duration::from_secs(10));
    env.push("t", &["later"], &s).await;
    let jobs = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(payloads(&jobs), ["later"]);
    let job = &jobs[0];
    assert_eq!(job.expire_at_ms().unwrap() - job.enqueued_at_ms(), 10_100);
}

#[tokio::test]
async fn duplicate_explicit_id_is_rejected_until_the_first_job_completes() {
    let env = Env::new().await;
    let s = spec(Priority::Normal);
    let job = |id| NewJob {
        payload: b"p",
        id: Some(id),
    };
    let ids = env
        .broker
        .enqueue("t", &s, &[job("order-1")])
        .await
        .unwrap();
    assert_eq!(ids[0].as_str(), "order-1");
    let err = env
        .broker
        .enqueue("t", &s, &[job("order-1")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateJobId { id, topic } if id == "order-1" && topic == "t"),
        "{err}"
    );
    // Other topics do not share ids.
    env.broker
        .enqueue("u", &s, &[job("order-1")])
        .await
        .unwrap();
    // A batch with a duplicate inside is refused whole.
    let err = env
        .broker
        .enqueue("t", &s, &[job("x"), job("x")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateJobId { .. }));
    let fetched = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].has_explicit_id());
    assert_eq!(fetched[0].id(), "order-1");
    // Still running: still a duplicate.
    assert!(env
        .broker
        .enqueue("t", &s, &[job("order-1")])
        .await
        .is_err());
    env.broker.ack("t", &fetched, &[]).await.unwrap();
    env.broker
        .enqueue("t", &s, &[job("order-1")])
        .await
        .unwrap();
    // Bad ids.
    let long = "x".repeat(256);
    assert!(matches!(
        env.broker.enqueue("t", &s, &[job(&long)]).await,
        Err(Error::InvalidJobId { .. })
    ));
    assert!(matches!(
        env.broker.enqueue("t", &s, &[job("")]).await,
        Err(Error::InvalidJobId { .. })
    ));
}

#[tokio::test]
async fn corrupt_entry_goes_to_the_parse_error_store_and_the_next_job_is_fetched() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    env.push("t", &["good"], &spec(Priority::Normal)).await;
    let mut raw = env.raw().await;
    let _: () = raw.lpush(&keys.pending[1], b"\x07garbage").await.unwrap();
    let _: () = raw.lpush(&keys.pending[1], b"tiny").await.unwrap();
    let jobs = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&jobs), ["good"]);
    let errors = readable(env.broker.parse_errors("t", 0, 10).await.unwrap());
    assert_eq!(errors.len(), 2);
    let raws: Vec<&[u8]> = errors.iter().map(|e| e.raw.as_slice()).collect();
    assert!(raws.contains(&&b"tiny"[..]) && raws.contains(&&b"\x07garbage"[..]));
    assert!(errors.iter().any(|e| e.error.contains("truncated")));
    assert_eq!(env.broker.stats("t").await.unwrap().parse_errors, 2);
    assert_eq!(env.broker.purge_parse_errors("t").await.unwrap(), 2);
    assert!(env
        .broker
        .parse_errors("t", 0, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn reject_stores_the_raw_bytes_and_the_error() {
    let env = Env::new().await;
    let ids = env
        .broker
        .enqueue(
            "t",
            &spec(Priority::Normal),
            &[NewJob {
                payload: b"\xc1",
                id: Some("k"),
            }],
        )
        .await
        .unwrap();
    let job = env
        .broker
        .fetch("t", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert!(env
        .broker
        .reject("t", &job, "invalid type: expected struct")
        .await
        .unwrap());
    let errors = readable(env.broker.parse_errors("t", 0, 10).await.unwrap());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].raw, job.as_bytes());
    assert_eq!(errors[0].error, "invalid type: expected struct");
    assert!(errors[0].at_ms > 0);
    assert_eq!(env.broker.stats("t").await.unwrap().processing, 0);
    // The explicit id is free again.
    env.broker
        .enqueue(
            "t",
            &spec(Priority::Normal),
            &[NewJob {
                payload: b"x",
                id: Some(ids[0].as_str()),
            }],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn prefixes_isolate_jobs() {
    let env = Env::with(|c| c.queue_prefix = "a".into()).await;
    let mut other_config = env.config.clone();
    other_config.queue_prefix = "b".into();
    let other = rmq_core::Broker::connect(&other_config).await.unwrap();
    env.push("t", &["from-a"], &spec(Priority::Normal)).await;
    let new = [NewJob {
        payload: b"from-b",
        id: None,
    }];
    other
        .enqueue("t", &spec(Priority::Normal), &new)
        .await
        .unwrap();
    let a = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    let b = other.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&a), ["from-a"]);
    assert_eq!(payloads(&b), ["from-b"]);
    env.broker.record_topics(&["x"]).await.unwrap();
    other.record_topics(&["y"]).await.unwrap();
    // Enqueue records its topic too.
    assert_eq!(env.broker.topics().await.unwrap(), ["t", "x"]);
    assert_eq!(other.topics().await.unwrap(), ["t", "y"]);
    let mut raw = env.raw().await;
    let keys: Vec<String> = raw.keys("*").await.unwrap();
    assert!(
        keys.iter().all(|k| k.starts_with("{a:")
            || k.starts_with("{b:")
            || k == "a:topics"
            || k == "b:topics"),
        "{keys:?}"
    );
}

async fn kill_jobs(env: &Env, names: &[&str]) {
    env.push("t", names, &spec(Priority::Normal)).await;
    let jobs = env
        .broker
        .fetch("t", names.len(), LEASE)
        .await
        .unwrap()
        .jobs;
    for job in &jobs {
        let failure = Failure {
            error: "dead",
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        env.broker.fail("t", job, &failure).await.unwrap();
        // Distinct death times keep the order observable.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn dead_letter_list_show_retry_purge() {
    let env = Env::new().await;
    kill_jobs(&env, &["a", "b", "c"]).await;
    let list = readable(env.broker.dead_letters("t", 0, 10).await.unwrap());
    assert_eq!(
        payloads(&list.iter().map(|d| d.envelope.clone()).collect::<Vec<_>>()),
        ["c", "b", "a"]
    );
    let page = readable(env.broker.dead_letters("t", 1, 1).await.unwrap());
    assert_eq!(page[0].envelope.id(), "2");
    let shown = env.broker.dead_letter("t", "1").await.unwrap();
    assert_eq!(shown.envelope.payload(), b"a");
    assert!(matches!(
        env.broker.dead_letter("t", "99").await,
        Err(Error::JobNotFound { .. })
    ));
    env.broker.retry_dead("t", "1").await.unwrap();
    assert!(matches!(
        env.broker.retry_dead("t", "1").await,
        Err(Error::JobNotFound { .. })
    ));
    let again = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&again), ["a"]);
    assert_eq!(again[0].retries_used(), 0);
    env.broker.ack("t", &again, &[]).await.unwrap();
    assert_eq!(env.broker.retry_all_dead("t").await.unwrap().moved, 2);
    let rest = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&rest), ["b", "c"]);
    for job in &rest {
        let failure = Failure {
            error: "dead",
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        env.broker.fail("t", job, &failure).await.unwrap();
    }
    assert_eq!(env.broker.purge_dead("t").await.unwrap(), 2);
    assert!(env
        .broker
        .dead_letters("t", 0, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn retention_trims_by_count_and_age() {
    let env = Env::with(|c| {
        c.dead_letter_max_entries = 3;
        c.parse_error_max_entries = 2;
        c.dead_letter_max_age = Duration::from_millis(200);
    })
    .await;
    kill_jobs(&env, &["a", "b", "c", "d", "e"]).await;
    let dead = readable(env.broker.dead_letters("t", 0, 10).await.unwrap());
    let kept: Vec<&str> = dead.iter().map(|d| d.envelope.id()).collect();
    assert_eq!(kept, ["5", "4", "3"]);
    let keys = TopicKeys::new("", "t");
    let mut raw = env.raw().await;
    for junk in ["j1", "j2", "j3"] {
        let _: () = raw.rpush(&keys.pending[2], junk).await.unwrap();
    }
    env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert_eq!(env.broker.parse_errors("t", 0, 10).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let trimmed = env.broker.trim("t").await.unwrap();
    assert_eq!((trimmed.dead, trimmed.parse_errors), (3, 0));
    assert_eq!(env.broker.stats("t").await.unwrap().dead, 0);
}

on_both!(stats_report_depths_counters_and_times, ["t"], |env| {
    env.push("t", &["h"], &spec(Priority::High)).await;
    env.push("t", &["n1", "n2"], &spec(Priority::Normal)).await;
    env.push("t", &["l"], &spec(Priority::Low)).await;
    let mut later = spec(Priority::Normal);
    later.delay = Duration::from_secs(60);
    env.push("t", &["d"], &later).await;
    let jobs = env.broker.fetch("t", 2, LEASE).await.unwrap().jobs;
    env.broker
        .ack("t", &jobs[..1], &[Duration::from_millis(3)])
        .await
        .unwrap();
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!(stats.topic, "t");
    assert_eq!(stats.pending, [0, 1, 1]);
    assert_eq!(stats.processing, 1);
    assert_eq!(stats.delayed, 1);
    assert_eq!(stats.completed, 1);
    // 3000 us sits in bucket 11 (2048..4096).
    assert_eq!(stats.processing_us, [3000, 3072, 3072]);
    // The minute counter is kept across trims of old minutes.
    env.broker.trim("t").await.unwrap();
    let mut raw = env.raw().await;
    let fields: Vec<String> = raw.hkeys(env.keys("t").stats).await.unwrap();
    assert!(fields.iter().any(|f| f.starts_with('m')), "{fields:?}");
    let _: () = raw.hset(env.keys("t").stats, "m5", 1).await.unwrap();
    env.broker.trim("t").await.unwrap();
    let fields: Vec<String> = raw.hkeys(env.keys("t").stats).await.unwrap();
    assert!(!fields.contains(&"m5".to_owned()), "{fields:?}");
});

on_both!(throughput_reads_an_hour_of_minute_counters, ["t"], |env| {
    env.push("t", &["a", "b", "c"], &spec(Priority::Normal))
        .await;
    let jobs = env.broker.fetch("t", 3, LEASE).await.unwrap().jobs;
    env.broker
        .ack("t", &jobs[..2], &[Duration::from_millis(1); 2])
        .await
        .unwrap();
    let failure = Failure {
        error: "boom",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    let outcome = env.broker.fail("t", &jobs[2], &failure).await.unwrap();
    assert_eq!(outcome, FailOutcome::Dead);
    // Half an hour ago: kept by trim, which drops what is older than an hour.
    let now_minute = env.broker.throughput("t", 1).await.unwrap().last_minute;
    let mut raw = env.raw().await;
    let stats = env.keys("t").stats;
    let _: () = raw
        .hset(&stats, format!("m{}", now_minute - 30), 5)
        .await
        .unwrap();
    let _: () = raw
        .hset(&stats, format!("m{}", now_minute - 90), 7)
        .await
        .unwrap();
    env.broker.trim("t").await.unwrap();
    let fields: Vec<String> = raw.hkeys(&stats).await.unwrap();
    assert!(
        !fields.contains(&format!("m{}", now_minute - 90)),
        "{fields:?}"
    );

    let t = env.broker.throughput("t", 60).await.unwrap();
    assert_eq!((t.completed.len(), t.dead.len()), (60, 60));
    assert!(t.last_minute >= now_minute);
    assert_eq!(t.completed.iter().sum::<u64>(), 7, "{t:?}");
    assert_eq!(t.dead.iter().sum::<u64>(), 1, "{t:?}");
    let back = (t.last_minute - (now_minute - 30)) as usize;
    assert_eq!(t.completed[59 - back], 5, "{t:?}");
    // More than an hour is clamped to what the hash keeps.
    assert_eq!(
        env.broker
            .throughput("t", 500)
            .await
            .unwrap()
            .completed
            .len(),
        60
    );

    let servers = env.broker.server_info().await.unwrap();
    assert!(!servers.is_empty());
    for server in &servers {
        assert!(server.version.starts_with(char::is_numeric), "{server:?}");
        assert!(server.used_memory > 0, "{server:?}");
        assert!(!server.eviction_policy.is_empty(), "{server:?}");
    }
});

on_both!(
    wait_wakes_promptly_on_enqueue_and_times_out_when_idle,
    ["t", "u"],
    |env| {
        let topics = vec!["t".to_owned(), "u".to_owned()];
        let start = Instant::now();
        assert!(!env
            .broker
            .wait(&topics, Duration::from_millis(100))
            .await
            .unwrap());
        assert!(start.elapsed() >= Duration::from_millis(90));
        let waiter = {
            let broker = env.broker.clone();
            let topics = topics.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let woken = broker.wait(&topics, Duration::from_secs(10)).await.unwrap();
                (woken, start.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        env.push("u", &["go"], &spec(Priority::Normal)).await;
        let (woken, took) = waiter.await.unwrap();
        assert!(woken);
        assert!(took < Duration::from_secs(5), "{took:?}");
        // The token was consumed; the job is there.
        assert_eq!(
            env.broker.fetch("u", 10, LEASE).await.unwrap().jobs.len(),
            1
        );
    }
);

#[tokio::test]
async fn delayed_enqueue_wakes_a_sleeper_when_it_is_the_earliest() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    let mut raw = env.raw().await;
    let mut s = spec(Priority::Normal);
    s.delay = Duration::from_secs(60);
    env.push("t", &["a"], &s).await;
    let _: () = raw.del(&keys.wake).await.unwrap();
    // Later than the earliest: no token.
    s.delay = Duration::from_secs(120);
    env.push("t", &["b"], &s).await;
    assert_eq!(raw.llen::<_, usize>(&keys.wake).await.unwrap(), 0);
    // Earlier: a token.
    s.delay = Duration::from_secs(1);
    env.push("t", &["c"], &s).await;
    assert_eq!(raw.llen::<_, usize>(&keys.wake).await.unwrap(), 1);
}

on_both!(script_flush_between_calls_is_survived, ["t"], |env| {
    env.push("t", &["a"], &spec(Priority::Normal)).await;
    let mut raw = env.raw().await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    let jobs = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&jobs), ["a"]);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(env.broker.ack("t", &jobs, &[]).await.unwrap().is_empty());
});

#[tokio::test]
async fn redis_restart_between_calls_reconnects() {
    let mut env = Env::new().await;
    env.push("t", &["a"], &spec(Priority::Normal)).await;
    env.server_mut().restart();
    // The first call may see the dead connection; a following one works.
    let _ = env.broker.fetch("t", 1, LEASE).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match env.broker.stats("t").await {
            Ok(stats) => {
                // No persistence in this server: the queue starts empty.
                assert_eq!(stats.pending, [0, 0, 0]);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no reconnect: {e}"),
        }
    }
    env.push("t", &["b"], &spec(Priority::Normal)).await;
    let jobs = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&jobs), ["b"]);
    // The blocking wait reconnects too.
    env.server_mut().restart();
    let topics = vec!["t".to_owned()];
    let _ = env.broker.wait(&topics, Duration::from_millis(50)).await;
    let mut ok = false;
    for _ in 0..20 {
        if env
            .broker
            .wait(&topics, Duration::from_millis(50))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "wait did not reconnect");
}

#[tokio::test]
async fn persisted_jobs_survive_a_crash() {
    let server = rmq_testkit::RedisServer::with(rmq_testkit::Options {
        appendonly: true,
        ..Default::default()
    });
    let mut env = Env {
        broker: rmq_core::Broker::connect(&support::config(&server.url()))
            .await
            .unwrap(),
        config: support::config(&server.url()),
        server: Some(server),
    };
    env.push("t", &["a", "b"], &spec(Priority::Normal)).await;
    let held = env
        .broker
        .fetch("t", 1, Duration::from_millis(100))
        .await
        .unwrap()
        .jobs;
    assert_eq!(payloads(&held), ["a"]);
    env.server_mut().kill();
    env.server_mut().restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        match env.broker.stats("t").await {
            Ok(stats) => break stats,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((stats.pending[1], stats.processing), (1, 1));
    let _ = EnqueueSpec::clone(&spec(Priority::Low));
}
