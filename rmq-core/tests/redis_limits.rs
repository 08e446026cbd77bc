//! The Redis that production runs: full (`noeviction` at `maxmemory`),
//! evicting (`allkeys-*`), and stalled past the client's timeout.

mod support;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use rmq_core::broker::{Failure, NewJob};
use rmq_core::{Broker, Error, Priority};
use rmq_testkit::{Options, RedisServer};
use support::{config, payloads, spec, Env, LEASE};

/// Makes Redis full: every command that may grow memory is refused.
async fn fill(env: &Env) {
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();
    // Proof that it is full: a plain write is refused.
    let refused: redis::RedisResult<()> = raw.rpush("probe", "x").await;
    assert_eq!(refused.unwrap_err().code(), Some("OOM"));
}

#[tokio::test]
async fn a_full_redis_refuses_enqueue_whole_and_keeps_draining() {
    let env = Env::new().await;
    let names: Vec<String> = (0..20).map(|i| format!("job{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    env.push("t", &names, &spec(Priority::Normal)).await;
    let mut soon = spec(Priority::High);
    soon.delay = Duration::from_millis(1);
    env.push("t", &["delayed"], &soon).await;
    fill(&env).await;

    // Enqueue is refused whole, with an error that says Redis is full.
    let batch = [NewJob {
        payload: b"late",
        id: Some("explicit"),
    }];
    let err = env
        .broker
        .enqueue("t", &spec(Priority::Normal), &batch)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RedisFull { .. }), "{err:?}");
    assert!(err.to_string().contains("Redis is full"), "{err}");
    let mut raw = env.raw().await;
    let ids: bool = raw.exists("{t}:ids").await.unwrap();
    assert!(!ids, "the refused enqueue reserved its id");

    // Workers keep draining: promotion of a due job, fetch, ack, renewal,
    // failure, recovery and topic registration all run.
    let fetched = env
        .fetch_until("t", 21, LEASE, Duration::from_secs(5))
        .await;
    assert_eq!(fetched.len(), 21);
    assert!(payloads(&fetched).contains(&"delayed".to_owned()));
    let lost = env.broker.extend("t", &fetched, LEASE).await.unwrap();
    assert!(
        lost.lost.is_empty(),
        "leases were not renewed on a full Redis"
    );
    let durations = vec![Duration::from_millis(1); 19];
    let lost = env
        .broker
        .ack("t", &fetched[..19], &durations)
        .await
        .unwrap();
    assert!(lost.is_empty());
    let failure = Failure {
        error: "boom",
        permanent: false,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    env.broker.fail("t", &fetched[19], &failure).await.unwrap();
    env.broker.release("t", &fetched[20..]).await.unwrap();
    env.broker.recover("t", 100).await.unwrap();
    env.broker.record_topics(&["t"]).await.unwrap();
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!(stats.completed, 19);
    assert_eq!(stats.delayed + stats.pending.iter().sum::<u64>(), 2);
}

#[tokio::test]
async fn an_evicting_redis_is_refused_unless_allowed() {
    let env = Env::new().await;
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut refused = config(&env.server().url());
    let err = Broker::connect(&refused).await.unwrap_err();
    assert!(matches!(err, Error::EvictingRedis { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("allkeys-lru") && text.contains("noeviction"),
        "{text}"
    );
    assert!(text.contains("MQ_ALLOW_EVICTION"), "{text}");
    refused.allow_eviction = true;
    Broker::connect(&refused).await.unwrap();
}

#[tokio::test]
async fn a_fetch_that_reaches_redis_after_its_caller_gave_up_leases_nothing() {
    let server = RedisServer::start();
    let broker = Broker::connect(&config(&server.url())).await.unwrap();
    let new: Vec<NewJob<'_>> = (0..5)
        .map(|_| NewJob {
            payload: b"job",
            id: None,
        })
        .collect();
    broker
        .enqueue("t", &spec(Priority::Normal), &new)
        .await
        .unwrap();
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // A stall longer than the 10 s response timeout: every command queues
    // until the pause ends.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(12_000)
        .arg("ALL")
        .query_async(&mut raw)
        .await
        .unwrap();
    let started = Instant::now();
    let normal = spec(Priority::Normal);
    let stalled = [NewJob {
        payload: b"during the stall",
        id: Some("stalled"),
    }];
    let (fetch, enqueue) = tokio::join!(
        broker.fetch("t", 10, LEASE),
        broker.enqueue("t", &normal, &stalled)
    );
    assert!(fetch.is_err(), "{fetch:?}");
    let err = enqueue.unwrap_err();
    assert!(matches!(err, Error::EnqueueUnconfirmed { .. }), "{err:?}");
    assert!(err.to_string().contains("may or may not"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(12));

    // Once Redis runs the fetch, its caller is gone: nothing is leased.
    let other = Broker::connect(&config(&server.url())).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(11));
    let stats = other.stats("t").await.unwrap();
    assert_eq!(stats.processing, 0, "jobs were leased to nobody");
    // The enqueue did run: the error was right to say it may have.
    assert_eq!(stats.pending[1], 6);
    let jobs = other.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(jobs.len(), 6);
    assert!(
        jobs.iter().all(|j| j.retries_used() == 0),
        "an attempt was burnt"
    );
    // Retrying the unconfirmed enqueue with its explicit id is safe.
    let again = broker.enqueue("t", &normal, &stalled).await.unwrap_err();
    assert!(matches!(again, Error::DuplicateJobId { .. }), "{again}");
}

#[tokio::test]
async fn a_worker_can_start_on_a_full_redis_from_a_fresh_process() {
    let server = RedisServer::with(Options {
        args: vec!["--maxmemory".into(), "1".into()],
        ..Options::default()
    });
    let broker = Broker::connect(&config(&server.url())).await.unwrap();
    broker.record_topics(&["t"]).await.unwrap();
    assert_eq!(broker.topics().await.unwrap(), ["t"]);
}
