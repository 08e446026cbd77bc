//! Edge cases found in review: bounded fetch work, TTL versus retries,
//! out-of-range times, and an abandoned blocking wait.

mod support;

use std::time::{Duration, Instant};

use rmq_core::broker::Failure;
use rmq_core::{Error, Priority};
use support::{payloads, spec, Env, LEASE};

#[tokio::test]
async fn a_backlog_of_expired_jobs_is_cleared_over_several_fetches() {
    let env = Env::with(|c| c.batch_size = 100).await;
    let mut stale = spec(Priority::Normal);
    stale.ttl = Some(Duration::from_millis(20));
    let names: Vec<String> = (0..500).map(|i| format!("stale{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    env.push("t", &names, &stale).await;
    env.push("t", &["fresh"], &spec(Priority::Normal)).await;
    tokio::time::sleep(Duration::from_millis(40)).await;

    // One call examines at most `max` + the promotion batch (10 + 100).
    let first = env.broker.fetch("t", 10, LEASE).await.unwrap();
    assert!(first.jobs.is_empty());
    assert_eq!(
        first.next_due,
        Some(Duration::ZERO),
        "asks to be called again"
    );
    assert_eq!(env.broker.stats("t").await.unwrap().expired, 110);

    let mut calls = 1;
    let found = loop {
        let fetched = env.broker.fetch("t", 10, LEASE).await.unwrap();
        calls += 1;
        if !fetched.jobs.is_empty() {
            break fetched.jobs;
        }
        assert!(calls < 10, "the backlog never cleared");
    };
    assert_eq!(payloads(&found), ["fresh"]);
    assert_eq!(env.broker.stats("t").await.unwrap().expired, 500);
}

#[tokio::test]
async fn the_ttl_does_not_cut_a_retry_short() {
    let env = Env::new().await;
    let mut short = spec(Priority::Normal);
    short.ttl = Some(Duration::from_millis(100));
    env.push("t", &["job"], &short).await;
    let job = env
        .broker
        .fetch("t", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .remove(0);
    let failure = Failure {
        error: "try again",
        permanent: false,
        retry_delay: Duration::from_millis(200),
        cancelled: false,
    };
    env.broker.fail("t", &job, &failure).await.unwrap();

    // The retry is due after the TTL has passed: it still runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    let retried = loop {
        let fetched = env.broker.fetch("t", 1, LEASE).await.unwrap();
        if let Some(job) = fetched.jobs.into_iter().next() {
            break job;
        }
        assert!(Instant::now() < deadline, "the retry never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(retried.retries_used(), 1);
    assert_eq!(env.broker.stats("t").await.unwrap().expired, 0);
}

#[tokio::test]
async fn delays_and_ttls_beyond_the_envelope_are_refused() {
    let env = Env::new().await;
    let mut far = spec(Priority::Normal);
    far.delay = Duration::from_secs(3_000 * 365 * 86_400);
    let job = rmq_core::broker::NewJob {
        payload: b"x",
        id: None,
    };
    let err = env.broker.enqueue("t", &far, &[job]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "delay",
                ..
            }
        ),
        "{err}"
    );
    let mut long = spec(Priority::Normal);
    long.ttl = Some(Duration::MAX);
    let err = env.broker.enqueue("t", &long, &[job]).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidOption { option: "ttl", .. }),
        "{err}"
    );
    assert_eq!(env.broker.stats("t").await.unwrap().pending, [0, 0, 0]);
}

async fn blocked_clients(env: &Env) -> usize {
    let mut raw = env.raw().await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    list.lines().filter(|l| l.contains("cmd=blpop")).count()
}

async fn until_blocked(env: &Env, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(env).await != want {
        assert!(Instant::now() < deadline, "never {want} blocked clients");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_abandoned_wait_leaves_no_blpop_behind() {
    let env = Env::new().await;
    let broker = env.broker.clone();
    let waiter = tokio::spawn(async move {
        broker
            .wait(&["t".to_owned()], Duration::from_secs(30))
            .await
    });
    until_blocked(&env, 1).await;
    waiter.abort();
    let _ = waiter.await;
    // Redis forgets the BLPOP, so it cannot swallow the next wake-up.
    until_blocked(&env, 0).await;
    env.push("t", &["job"], &spec(Priority::Normal)).await;
    let woken = env
        .broker
        .wait(&["t".to_owned()], Duration::from_secs(5))
        .await
        .unwrap();
    assert!(woken);
}

#[tokio::test]
async fn retry_all_skips_dead_jobs_whose_id_is_live_again() {
    let env = Env::new().await;
    let s = spec(Priority::Normal);
    for id in ["a", "b"] {
        let job = rmq_core::broker::NewJob {
            payload: id.as_bytes(),
            id: Some(id),
        };
        env.broker.enqueue("t", &s, &[job]).await.unwrap();
    }
    let permanent = Failure {
        error: "bad",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    for job in env.broker.fetch("t", 10, LEASE).await.unwrap().jobs {
        env.broker.fail("t", &job, &permanent).await.unwrap();
    }
    let live = rmq_core::broker::NewJob {
        payload: b"a again",
        id: Some("a"),
    };
    env.broker.enqueue("t", &s, &[live]).await.unwrap();

    let retried = env.broker.retry_all_dead("t").await.unwrap();
    assert_eq!((retried.moved, retried.busy), (1, vec!["a".to_owned()]));
    let left = env.broker.dead_letters("t", 0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].as_ref().unwrap().envelope.id(), "a");
    let queued = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&queued), ["a again", "b"]);
}

#[tokio::test]
async fn an_out_of_range_delay_on_a_single_enqueue_names_the_option() {
    let env = Env::new().await;
    let mut far = spec(Priority::Normal);
    far.delay = Duration::from_secs(3000 * 365 * 86_400);
    let err = env
        .broker
        .enqueue_one("t", &far, b"x".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "delay",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("2,000 years"), "{err}");
}
