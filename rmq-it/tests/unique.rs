//! Unique jobs with real worker processes: a kill -9 keeps the lock through
//! lease recovery until the job really ends; the CLI shows and clears locks.

mod common;

use std::time::Duration;

use common::{cli, drained, eventually, Probe, Worker};
use rmq_it::{UniqueSlow, STARTED};
use rmq_testkit::RedisServer;

const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_killed_workers_unique_job_keeps_its_lock_until_it_completes_elsewhere() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    let job = || UniqueSlow {
        key: 1,
        millis: 1500,
    };
    let first = job().enqueue(&client).await.unwrap();
    assert!(first.is_new());

    let mut worker = Worker::run(&redis.url(), &["--concurrency", "2"], &SHORT_LEASE);
    eventually("the job to start", Duration::from_secs(15), || async {
        probe
            .list(STARTED)
            .await
            .contains(&"unique_slow:1:1".to_owned())
            .then_some(())
    })
    .await;
    assert!(!worker.kill9().await.success());

    // Leased by a dead worker, then recovered: the same job all along.
    let during = job().enqueue(&client).await.unwrap();
    assert!(during.is_duplicate(), "{during:?}");
    assert_eq!(during.id(), first.id());
    let shown = stdout(&cli(
        &redis.url(),
        &[
            "unique",
            "show",
            "unique_slow",
            "--payload",
            r#"{"key":1,"millis":5}"#,
        ],
    ));
    assert!(
        shown.contains(&format!("held by job {}", first.id())),
        "{shown}"
    );
    let listed = stdout(&cli(&redis.url(), &["unique", "list", "unique_slow"]));
    assert!(listed.contains("until_completed"), "{listed}");

    let mut second = Worker::run(&redis.url(), &["--concurrency", "2"], &SHORT_LEASE);
    eventually(
        "the job to start again",
        Duration::from_secs(20),
        || async {
            probe
                .list(STARTED)
                .await
                .contains(&"unique_slow:1:2".to_owned())
                .then_some(())
        },
    )
    .await;
    let again = job().enqueue(&client).await.unwrap();
    assert!(again.is_duplicate(), "recovered and running: {again:?}");
    let stats = drained(&probe, "unique_slow", Duration::from_secs(20)).await;
    assert_eq!((stats.completed, stats.dead), (1, 0));
    assert_eq!(probe.ran("unique_slow").await.get(&1), Some(&1));

    // Completed: the acker frees the lock (the ack may trail the record).
    eventually("the lock to be freed", Duration::from_secs(10), || async {
        let shown = stdout(&cli(
            &redis.url(),
            &[
                "unique",
                "show",
                "unique_slow",
                "--payload",
                r#"{"key":1,"millis":5}"#,
            ],
        ));
        shown.contains("free").then_some(())
    })
    .await;
    // No worker from here on: the jobs below stay queued.
    assert!(!second.kill9().await.success());
    let next = job().enqueue(&client).await.unwrap();
    assert!(next.is_new());

    // Cleared by hand: the next enqueue makes a new job, and the CLI's
    // enqueue says when it found a duplicate.
    let cleared = stdout(&cli(
        &redis.url(),
        &[
            "unique",
            "clear",
            "unique_slow",
            "--payload",
            r#"{"key":1,"millis":5}"#,
        ],
    ));
    assert!(cleared.contains("cleared"), "{cleared}");
    let by_cli = cli(
        &redis.url(),
        &["enqueue", "unique_slow", r#"{"key":1,"millis":5}"#],
    );
    let new_id = stdout(&by_cli);
    assert_ne!(new_id.trim(), next.id().as_str());
    let dup = cli(
        &redis.url(),
        &["enqueue", "unique_slow", r#"{"key":1,"millis":99}"#],
    );
    assert_eq!(stdout(&dup).trim(), new_id.trim());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("unique lock"));
}
