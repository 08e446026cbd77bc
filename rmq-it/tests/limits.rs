//! Concurrency limits across worker processes, and a killed worker's slots.

mod common;

use std::time::Duration;

use common::{eventually, Probe, Worker};
use rmq_it::{Capped, STARTED};
use rmq_testkit::RedisServer;

/// A 1 s lease, recovery checked every second.
const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

/// Live leases of `capped` (deadline in the future, by Redis time).
async fn live_leases(probe: &Probe) -> usize {
    let mut conn = probe.conn().await;
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now = s * 1000 + us / 1000;
    redis::cmd("ZCOUNT")
        .arg("{capped}:processing")
        .arg(format!("({now}"))
        .arg("+inf")
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_worker_s_concurrency_slots_free_at_its_lease_expiry() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    // Two long jobs take both slots of `concurrency = 2`.
    client
        .enqueue_many((0..2).map(|seq| Capped { seq, millis: 3_000 }))
        .await
        .unwrap();
    let mut first = Worker::run(
        &redis.url(),
        &["--topics", "capped", "--concurrency", "4"],
        &SHORT_LEASE,
    );
    eventually(
        "both long jobs to start",
        Duration::from_secs(20),
        || async { (probe.list(STARTED).await.len() == 2).then_some(()) },
    )
    .await;
    // Three short ones, and a second worker with free handlers: the limit
    // is global, so it starts none of them while the first one lives.
    client
        .enqueue_many((10..13).map(|seq| Capped { seq, millis: 10 }))
        .await
        .unwrap();
    let _second = Worker::run(
        &redis.url(),
        &["--topics", "capped", "--concurrency", "4"],
        &SHORT_LEASE,
    );
    for _ in 0..20 {
        assert!(live_leases(&probe).await <= 2);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        probe.list(STARTED).await.len(),
        2,
        "{:?}",
        probe.list(STARTED).await
    );
    // kill -9: nobody renews its leases; the slots free when they expire.
    let status = first.kill9().await;
    assert!(!status.success());
    let started_before = probe.list(STARTED).await.len();
    let ran = eventually("every job to complete", Duration::from_secs(60), || async {
        assert!(live_leases(&probe).await <= 2);
        let ran = probe.ran("capped").await;
        (ran.len() == 5).then_some(ran)
    })
    .await;
    assert!(ran.keys().all(|seq| [0, 1, 10, 11, 12].contains(seq)));
    let started = probe.list(STARTED).await;
    // The short jobs started only after the kill, on the second worker.
    for seq in 10..13 {
        let at = started
            .iter()
            .position(|s| s == &format!("capped:{seq}:1"))
            .expect("started");
        assert!(at >= started_before, "{started:?}");
    }
    let stats = probe.stats("capped").await;
    assert!(stats.throttled_concurrency > 0, "{stats:?}");
}

#[tokio::test]
async fn tasks_and_stats_show_the_limits_and_the_throttling() {
    let tasks = common::cli("redis://127.0.0.1:1", &["tasks"]);
    let out = String::from_utf8_lossy(&tasks.stdout);
    let header = out.lines().next().unwrap_or_default();
    assert!(header.contains("limits"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("capped "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.split_whitespace().any(|c| c == "c=2"), "{out}");

    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    client
        .enqueue_many((0..6).map(|seq| Capped { seq, millis: 2_000 }))
        .await
        .unwrap();
    let _worker = Worker::run(&redis.url(), &["--topics", "capped"], &[]);
    let stats = eventually("a fetch held back", Duration::from_secs(20), || async {
        let stats = probe.stats("capped").await;
        (stats.throttled_concurrency > 0).then_some(stats)
    })
    .await;
    assert!(stats.throttled_now.is_some(), "{stats:?}");
    let out = common::cli(&redis.url(), &["stats", "--topics", "capped"]);
    let out = String::from_utf8_lossy(&out.stdout);
    let row = out
        .lines()
        .find(|l| l.starts_with("capped "))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(cells.contains(&"c=2"), "{out}");
    assert_eq!(cells.last(), Some(&"concurrency"), "{out}");
}
