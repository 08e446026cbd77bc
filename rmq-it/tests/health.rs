//! Queue health on real data: `worker health` findings and exit codes
//! (0 healthy, 3 findings), `Broker::health`, and the health columns of
//! `worker stats`.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{cli, drained, Probe, Worker};
use rmq::broker::{Broker, Failure, Finding, HealthOptions};
use rmq::Priority;
use rmq_it::{Permanent, Record};
use rmq_testkit::RedisServer;

const LEASE: Duration = Duration::from_secs(30);

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
fn exits(output: Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

async fn broker(probe: &Probe) -> Broker {
    probe.client().await.broker().expect("redis client").clone()
}

/// Options that check only what a test is about.
fn only_defaults_off() -> HealthOptions {
    let mut options = HealthOptions::default();
    options.max_pending_age = None;
    options.max_delayed_lateness = None;
    options.max_dead = None;
    options.require_worker = false;
    options.stuck_after = Duration::from_secs(3600);
    options
}

#[tokio::test]
async fn pending_jobs_without_a_live_worker_are_reported() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    Record { seq: 1 }.enqueue(&client).await.unwrap();
    Record { seq: 2 }.enqueue(&client).await.unwrap();

    let out = exits(cli(&url, &["health"]), 3);
    assert!(
        out.contains("record: no live worker fetches this topic, and 2 job(s) wait"),
        "{out}"
    );
    let findings = broker(&probe)
        .await
        .health(&HealthOptions::default())
        .await
        .unwrap();
    assert_eq!(
        findings,
        [Finding::NoWorker {
            topic: "record".into(),
            pending: 2
        }]
    );
    // The check can be switched off.
    exits(cli(&url, &["health", "--allow-no-worker"]), 0);
    let json: serde_json::Value =
        serde_json::from_str(&exits(cli(&url, &["health", "--json"]), 3)).unwrap();
    assert_eq!(json["findings"][0]["kind"], "no_worker");
    assert_eq!(json["findings"][0]["topic"], "record");
}

#[tokio::test]
async fn a_healthy_topic_passes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let _worker = Worker::run(&url, &[], &[("MQ_HEARTBEAT_INTERVAL", "0.2")]);
    let client = probe.client().await;
    for seq in 0..5 {
        Record { seq }.enqueue(&client).await.unwrap();
    }
    drained(&probe, "record", Duration::from_secs(10)).await;
    let out = exits(cli(&url, &["health", "--topics", "record"]), 0);
    assert!(
        out.starts_with("healthy: 1 topic(s), 1 live worker(s)"),
        "{out}"
    );
    let report = broker(&probe)
        .await
        .health_report(&HealthOptions::default())
        .await
        .unwrap();
    assert!(report.is_healthy(), "{report:?}");
    let record = report.topics.iter().find(|t| t.topic == "record").unwrap();
    assert_eq!(record.workers, 1);
    assert!(record.last_completed_at_ms.is_some());
}

#[tokio::test]
async fn a_stuck_topic_is_reported() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let client = probe.client().await;
    // One job completes, then the next one waits and nothing completes.
    Record { seq: 1 }.enqueue(&client).await.unwrap();
    let fetched = broker.fetch("record", 1, LEASE).await.unwrap();
    let lost = broker
        .ack("record", &fetched.jobs, &[Duration::from_millis(1)])
        .await
        .unwrap();
    assert!(lost.is_empty());
    Record { seq: 2 }.enqueue(&client).await.unwrap();

    let mut options = only_defaults_off();
    options.stuck_after = Duration::from_millis(200);
    // Not yet: the job arrived just now.
    assert_eq!(broker.health(&options).await.unwrap(), []);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let findings = broker.health(&options).await.unwrap();
    assert!(
        matches!(&findings[..], [Finding::Stuck { topic, pending: 1, idle_ms: Some(idle), .. }] if topic == "record" && *idle >= 400),
        "{findings:?}"
    );
    let out = exits(
        cli(
            &url,
            &["health", "--stuck-after", "200ms", "--allow-no-worker"],
        ),
        3,
    );
    assert!(
        out.contains("record: stuck: 1 job(s) pending and no completion for"),
        "{out}"
    );
    exits(
        cli(
            &url,
            &["health", "--stuck-after", "1h", "--allow-no-worker"],
        ),
        0,
    );
}

#[tokio::test]
async fn the_age_of_the_oldest_pending_job_is_measured_and_reported() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let client = probe.client().await;
    Record { seq: 1 }.enqueue(&client).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Record { seq: 2 }
        .priority(Priority::High)
        .enqueue(&client)
        .await
        .unwrap();
    let health = broker
        .topic_health("record", &[], Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(health.pending, [1, 1, 0]);
    let [high, normal, low] = health.oldest_pending_ms;
    assert!(high.unwrap() < 300, "{health:?}");
    assert!((300..5_000).contains(&normal.unwrap()), "{health:?}");
    assert_eq!(low, None);
    assert_eq!(health.oldest_pending(), normal.map(Duration::from_millis));

    let mut options = only_defaults_off();
    options.max_pending_age = Some(Duration::from_millis(250));
    let findings = broker.health(&options).await.unwrap();
    assert!(
        matches!(&findings[..], [Finding::OldPending { priority: Priority::Normal, age_ms, max_ms: 250, .. }] if *age_ms >= 300),
        "{findings:?}"
    );
    let out = exits(
        cli(&url, &["health", "--max-age", "250ms", "--allow-no-worker"]),
        3,
    );
    assert!(
        out.contains("record: the oldest normal job waits for"),
        "{out}"
    );
    // `stats` shows it in seconds.
    let table = stdout(&cli(&url, &["stats"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("record "))
        .unwrap()
        .split_whitespace()
        .collect();
    let oldest = header.iter().position(|h| *h == "oldest_s").unwrap();
    let age: f64 = row[oldest].parse().unwrap();
    assert!(age >= 0.3, "{table}");
    let workers = header.iter().position(|h| *h == "workers").unwrap();
    assert_eq!(row[workers], "0", "{table}");
}

#[tokio::test]
async fn dead_letter_growth_is_reported() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let client = probe.client().await;
    for seq in 0..3 {
        Permanent { seq }.enqueue(&client).await.unwrap();
    }
    let fetched = broker.fetch("permanent", 3, LEASE).await.unwrap();
    assert_eq!(fetched.jobs.len(), 3);
    let failure = Failure {
        error: "bad input",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    for job in &fetched.jobs {
        broker.fail("permanent", job, &failure).await.unwrap();
    }
    let health = broker
        .topic_health("permanent", &[], Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(health.dead_in_window, 3);
    assert_eq!(health.dead_window_ms, 300_000);

    let mut options = only_defaults_off();
    options.max_dead = Some(2);
    assert_eq!(
        broker.health(&options).await.unwrap(),
        [Finding::DeadGrowth {
            topic: "permanent".into(),
            dead: 3,
            window_ms: 300_000,
            max: 2
        }]
    );
    let out = exits(cli(&url, &["health", "--max-dead", "2"]), 3);
    assert!(
        out.contains("permanent: 3 job(s) dead-lettered in the last 5m (threshold 2)"),
        "{out}"
    );
    exits(cli(&url, &["health", "--max-dead", "3"]), 0);
    // Trimming keeps the window's buckets.
    broker.trim("permanent").await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&exits(
        cli(&url, &["stats", "--json", "--topics", "permanent"]),
        0,
    ))
    .unwrap();
    assert_eq!(json[0]["dead"], 3);
    assert_eq!(json[0]["health"]["dead_in_window"], 3);
}

#[tokio::test]
async fn bad_health_arguments_exit_2() {
    let redis = RedisServer::start();
    let url = redis.url();
    let out = cli(&url, &["health", "--max-dead", "many"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`many` is not a non-negative integer or `off`"),
        "{err}"
    );
}

#[tokio::test]
async fn trimming_keeps_an_hour_of_dead_letter_counts() {
    use redis::AsyncCommands;
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let broker = broker(&probe).await;
    let keys = broker.keys("record");
    let minute = rmq::envelope::millis(std::time::SystemTime::now()) / 60_000;
    let mut conn = probe.conn().await;
    for back in [0, 30, 59, 61, 500] {
        let _: () = conn
            .hset(&keys.stats, format!("d{}", minute - back), 1)
            .await
            .unwrap();
    }
    broker.trim("record").await.unwrap();
    let mut fields: Vec<String> = conn.hkeys(&keys.stats).await.unwrap();
    fields.sort();
    let mut kept: Vec<String> = [0, 30, 59]
        .iter()
        .map(|back| format!("d{}", minute - back))
        .collect();
    kept.sort();
    assert_eq!(fields, kept);
}
