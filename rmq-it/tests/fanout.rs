//! Fan-out events and batches on real worker processes: an event with three
//! subscribers in two crates, delivered at least once across a SIGKILL; a
//! batch of 1,000 children over two topics whose worker is SIGKILLed midway,
//! firing its callback once with the right counts; `worker events` and
//! `worker batch`.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{cli, drained, eventually, Probe, Worker};
use rmq::Batch;
use rmq_it::{BatchChild, BatchDone, BatchOther, SignedUp, BATCHES, RAN, STARTED};
use rmq_testkit::RedisServer;

const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

const SUBSCRIBERS: [&str; 3] = ["fixture.bonus", "signup_audit", "signup_mail"];

#[track_caller]
fn ok(output: Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn runs(list: &[String], name: &str) -> usize {
    list.iter().filter(|entry| *entry == name).count()
}

#[tokio::test]
async fn an_event_reaches_three_subscribers_at_least_once_across_a_kill() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    let published = SignedUp { user: "ada".into() }
        .event_id("signup-ada")
        .publish(&client)
        .await
        .unwrap();
    let topics: Vec<&str> = published.jobs.iter().map(|j| j.topic).collect();
    assert_eq!(topics, SUBSCRIBERS);

    let mut first = Worker::run(&redis.url(), &["--concurrency", "4"], &SHORT_LEASE);
    eventually(
        "the audit subscriber to start",
        Duration::from_secs(15),
        || async {
            probe
                .list(STARTED)
                .await
                .contains(&"signup_audit:ada:1".to_owned())
                .then_some(())
        },
    )
    .await;
    first.kill9().await;
    assert_eq!(
        runs(&probe.list(RAN).await, "signup_audit:ada"),
        0,
        "killed while the audit ran"
    );

    let _second = Worker::run(&redis.url(), &["--concurrency", "4"], &SHORT_LEASE);
    for topic in SUBSCRIBERS {
        let stats = drained(&probe, topic, Duration::from_secs(20)).await;
        assert!(stats.completed >= 1, "{topic} completed: {stats:?}");
        assert_eq!(stats.dead, 0, "{topic}: {stats:?}");
    }
    let ran = probe.list(RAN).await;
    assert!(runs(&ran, "signup_mail:ada") >= 1, "{ran:?}");
    assert_eq!(
        runs(&ran, "signup_audit:ada"),
        1,
        "the recovered run: {ran:?}"
    );
    assert_eq!(
        probe.list(STARTED).await,
        ["signup_audit:ada:1", "signup_audit:ada:2"],
        "recovered after the kill, with the attempt counted"
    );
}

#[tokio::test]
async fn an_event_reaches_each_subscriber_exactly_once_without_faults() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    for user in ["bo", "cy"] {
        SignedUp { user: user.into() }
            .event_id(format!("signup-{user}"))
            .publish(&client)
            .await
            .unwrap();
    }
    // Again, as after a timeout: nothing new.
    let again = SignedUp { user: "bo".into() }
        .event_id("signup-bo")
        .publish(&client)
        .await
        .unwrap();
    assert_eq!(again.new_jobs(), 0);

    let _worker = Worker::run(&redis.url(), &["--concurrency", "4"], &[]);
    for topic in SUBSCRIBERS {
        let stats = drained(&probe, topic, Duration::from_secs(20)).await;
        assert_eq!((stats.completed, stats.dead), (2, 0), "{topic}: {stats:?}");
    }
    let ran = probe.list(RAN).await;
    for name in ["signup_mail", "signup_audit"] {
        for user in ["bo", "cy"] {
            assert_eq!(runs(&ran, &format!("{name}:{user}")), 1, "{ran:?}");
        }
    }
}

#[tokio::test]
async fn a_batch_fires_its_callback_once_with_its_counts_across_a_kill() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let mut batch = Batch::new();
    for seq in 0..500 {
        batch = batch.push(BatchChild {
            seq,
            millis: 3,
            fail: seq % 25 == 0,
        });
        batch = batch.push(BatchOther {
            seq,
            millis: 3,
            fail: seq % 100 == 1,
        });
    }
    let id = batch
        .on_complete::<BatchDone>()
        .enqueue(&client)
        .await
        .unwrap();

    let mut first = Worker::run(&url, &["--concurrency", "8"], &SHORT_LEASE);
    eventually(
        "a third of the batch to finish",
        Duration::from_secs(20),
        || async {
            let progress = client.batch(id.as_str()).await.unwrap().unwrap();
            (progress.outcome.total - progress.pending() >= 300).then_some(())
        },
    )
    .await;
    first.kill9().await;
    let midway = client.batch(id.as_str()).await.unwrap().unwrap();
    assert!(midway.pending() > 0, "killed mid-batch: {midway:?}");
    assert!(!midway.fired);

    let _second = Worker::run(&url, &["--concurrency", "8"], &SHORT_LEASE);
    eventually("the callback to run", Duration::from_secs(30), || async {
        (!probe.list(BATCHES).await.is_empty()).then_some(())
    })
    .await;
    for topic in ["batch_child", "batch_other", "batch_done"] {
        drained(&probe, topic, Duration::from_secs(20)).await;
    }
    let dead = 20 + 5;
    assert_eq!(
        probe.list(BATCHES).await,
        [format!("{id}|{}|{dead}|0|1", 1000 - dead)],
        "exactly one callback run, with the counts"
    );
    let progress = client.batch(id.as_str()).await.unwrap().unwrap();
    assert!(progress.fired && progress.is_complete(), "{progress:?}");

    let out = ok(cli(&url, &["batch", id.as_str()]));
    let field = |name: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{name}` line: {out}"))
            .to_owned()
    };
    assert_eq!(field("total"), "1000");
    assert_eq!(field("succeeded"), (1000 - dead).to_string());
    assert_eq!(field("dead"), dead.to_string());
    assert_eq!(field("pending"), "0");
    assert_eq!(field("callback"), "batch_done: enqueued");
}

#[test]
fn events_lists_each_event_with_its_subscribers() {
    // Needs no Redis.
    let out = ok(cli("redis://127.0.0.1:1", &["events"]));
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("rmq_fixture_tasks::SignedUp { user: String }"))
        .unwrap_or_else(|| panic!("no SignedUp line: {out}"));
    let subscribers: Vec<Vec<&str>> = lines[at + 1..at + 4]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(subscribers[0][0], "fixture.bonus", "{out}");
    assert_eq!(subscribers[0][3], "rmq_fixture_tasks::grant_bonus", "{out}");
    assert_eq!(subscribers[1][0], "signup_audit", "{out}");
    assert_eq!(subscribers[2][..3], ["signup_mail", "normal", "3"], "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("rmq::BatchOutcome")),
        "batch callbacks are listed too: {out}"
    );
}

#[test]
fn batch_of_an_unknown_id_says_so() {
    let redis = RedisServer::start();
    let output = cli(&redis.url(), &["batch", "nope"]);
    assert_ne!(output.status.code(), Some(0));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("no batch `nope`"), "{err}");
}
