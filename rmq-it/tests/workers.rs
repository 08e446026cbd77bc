//! Worker heartbeats on real worker processes: `worker ps`, a crashed
//! worker dropping out by itself, and `quiet` / `stop` sent through Redis.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{cli, eventually, Probe, Worker};
use redis::AsyncCommands;
use rmq::broker::{Broker, WorkerInfo, WorkerState};
use rmq_it::{Record, Slow, RAN, STARTED};
use rmq_testkit::RedisServer;

/// A short heartbeat, so expiry is quick to test.
const BEAT_MS: u64 = 200;
const BEAT: [(&str, &str); 1] = [("MQ_HEARTBEAT_INTERVAL", "0.2")];

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

async fn broker(probe: &Probe) -> Broker {
    probe.client().await.broker().expect("redis client").clone()
}

/// Waits until exactly one worker is listed, and returns it.
async fn the_worker(broker: &Broker) -> WorkerInfo {
    eventually(
        "the worker to be listed",
        Duration::from_secs(10),
        || async {
            let mut workers = broker.workers().await.expect("workers");
            (workers.len() == 1).then(|| workers.remove(0))
        },
    )
    .await
}

async fn started(probe: &Probe, n: usize) {
    eventually("slow jobs to start", Duration::from_secs(10), || async {
        (probe.list(STARTED).await.len() >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn ps_lists_a_running_worker_with_its_topics_and_busy_job() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let worker = Worker::run(
        &url,
        &["--topics", "slow,record", "--concurrency", "3"],
        &BEAT,
    );
    let client = probe.client().await;
    let id = Slow {
        seq: 1,
        millis: 4000,
    }
    .enqueue(&client)
    .await
    .unwrap();
    started(&probe, 1).await;
    let info = eventually(
        "a beat with the busy job",
        Duration::from_secs(5),
        || async {
            let workers = broker.workers().await.expect("workers");
            workers.into_iter().find(|w| w.busy == 1)
        },
    )
    .await;
    assert_eq!(info.pid, worker.pid() as u32);
    assert_eq!(info.topics, ["slow", "record"]);
    assert_eq!(info.concurrency, 3);
    assert_eq!(info.state, WorkerState::Running);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.beat_interval_ms, BEAT_MS);
    assert_eq!(info.jobs.len(), 1);
    assert_eq!(info.jobs[0].topic, "slow");
    assert_eq!(info.jobs[0].id, id.as_str());
    assert!(info.started_at_ms <= info.jobs[0].started_at_ms);
    assert!(info.jobs[0].started_at_ms <= info.last_beat_ms);
    assert!(
        info.id.contains(&format!("-{}-", worker.pid())),
        "{}",
        info.id
    );

    let table = ok(cli(&url, &["ps"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("id "), "{table}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], info.id, "{table}");
    assert_eq!(row[2], worker.pid().to_string(), "{table}");
    assert_eq!(row[4], "running", "{table}");
    assert_eq!(row[5], "1/3", "{table}");
    assert_eq!(row[8], "slow,record", "{table}");
    assert!(row[9].starts_with(&format!("slow/{id}(")), "{table}");

    let json: serde_json::Value = serde_json::from_str(&ok(cli(&url, &["ps", "--json"]))).unwrap();
    assert_eq!(json[0]["id"], info.id.as_str());
    assert_eq!(json[0]["busy"], 1);
    assert_eq!(json[0]["jobs"][0]["topic"], "slow");
    assert_eq!(json[0]["state"], "running");
}

#[tokio::test]
async fn a_killed_worker_leaves_ps_within_three_beats() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let mut worker = Worker::run(&url, &[], &BEAT);
    let info = the_worker(&broker).await;
    worker.kill9().await;
    let killed = Instant::now();
    eventually(
        "the killed worker to leave the list",
        Duration::from_secs(5),
        || async {
            broker
                .workers()
                .await
                .expect("workers")
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let gone = killed.elapsed();
    // Its last beat was at most one beat before the kill; the entry lives
    // 3 beats from there. Some slack for the polling.
    assert!(
        gone <= Duration::from_millis(3 * BEAT_MS + 300),
        "listed for {gone:?} after kill -9"
    );
    assert!(ok(cli(&url, &["ps"])).contains("no live worker"));
    // Nobody cleaned up: Redis expired the heartbeat and the reader trimmed
    // the set.
    let mut conn = probe.conn().await;
    let exists: bool = conn
        .exists(format!("rmq:worker:{}", info.id))
        .await
        .unwrap();
    assert!(!exists);
    let ids: u64 = conn.zcard("rmq:workers").await.unwrap();
    assert_eq!(ids, 0);
}

#[tokio::test]
async fn a_graceful_stop_removes_the_entry_at_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    // A long beat: only the worker's own removal can make it vanish now.
    let mut worker = Worker::run(&url, &[], &[("MQ_HEARTBEAT_INTERVAL", "30")]);
    let info = the_worker(&broker).await;
    worker.signal(libc::SIGTERM);
    let status = worker.exited(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    assert!(broker.workers().await.unwrap().is_empty());
    let mut conn = probe.conn().await;
    let exists: bool = conn
        .exists(format!("rmq:worker:{}", info.id))
        .await
        .unwrap();
    assert!(!exists);
    let score: Option<f64> = conn.zscore("rmq:workers", &info.id).await.unwrap();
    assert_eq!(score, None);
}

#[tokio::test]
async fn quiet_stops_fetching_while_the_running_job_finishes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let mut worker = Worker::run(&url, &["--concurrency", "2"], &BEAT);
    let info = the_worker(&broker).await;
    let client = probe.client().await;
    Slow {
        seq: 1,
        millis: 1500,
    }
    .enqueue(&client)
    .await
    .unwrap();
    started(&probe, 1).await;

    let out = ok(cli(&url, &["quiet", &info.id]));
    assert!(out.contains("quiet"), "{out}");
    let sent = Instant::now();
    eventually("the worker to go quiet", Duration::from_secs(5), || async {
        let workers = broker.workers().await.expect("workers");
        workers
            .iter()
            .any(|w| w.state == WorkerState::Quiet)
            .then_some(())
    })
    .await;
    // Read at the next beat, shown at the same beat.
    let took = sent.elapsed();
    assert!(took <= Duration::from_millis(2 * BEAT_MS + 300), "{took:?}");

    Record { seq: 7 }.enqueue(&client).await.unwrap();
    eventually(
        "the running job to finish",
        Duration::from_secs(10),
        || async {
            probe
                .list(RAN)
                .await
                .iter()
                .any(|r| r == "slow:1")
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(4 * BEAT_MS)).await;
    let stats = probe.stats("record").await;
    assert_eq!(stats.pending.iter().sum::<u64>(), 1, "{stats:?}");
    assert_eq!(stats.completed, 0);
    assert!(worker.running());
    let quiet = the_worker(&broker).await;
    assert_eq!(quiet.state, WorkerState::Quiet);
    assert_eq!(quiet.busy, 0);
    let table = ok(cli(&url, &["ps"]));
    assert!(table.contains(" quiet "), "{table}");

    // A stop still works on a quiet worker, and leaves the job queued.
    ok(cli(&url, &["stop", &info.id]));
    let status = worker.exited(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(probe.stats("record").await.pending[1], 1);
}

#[tokio::test]
async fn stop_through_redis_shuts_down_gracefully_and_exits_zero() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let mut worker = Worker::run(&url, &[], &BEAT);
    let info = the_worker(&broker).await;
    let client = probe.client().await;
    Slow {
        seq: 1,
        millis: 800,
    }
    .enqueue(&client)
    .await
    .unwrap();
    started(&probe, 1).await;
    let out = ok(cli(&url, &["stop", &info.id]));
    assert!(out.contains("stops"), "{out}");
    let status = worker.exited(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", worker.log());
    // Graceful: the running job finished first, and the entry is gone.
    assert!(probe.list(RAN).await.iter().any(|r| r == "slow:1"));
    assert!(broker.workers().await.unwrap().is_empty());
    let log = worker.log();
    assert!(log.contains("`worker stop` received"), "{log}");
}

#[tokio::test]
async fn quiet_or_stop_of_an_unknown_worker_exits_2_with_the_live_ids() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let broker = broker(&probe).await;
    let out = cli(&url, &["stop", "nobody-1-000000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no live worker has id `nobody-1-000000`"),
        "{err}"
    );
    assert!(err.contains("no worker is live"), "{err}");

    let _worker = Worker::run(&url, &[], &BEAT);
    let info = the_worker(&broker).await;
    let out = cli(&url, &["quiet", "nobody-1-000000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("live workers (see `worker ps`): {}", info.id)),
        "{err}"
    );
    // Nothing was written for the unknown id.
    let mut conn = probe.conn().await;
    let exists: bool = conn
        .exists("rmq:worker:nobody-1-000000:control")
        .await
        .unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn heartbeats_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let mut worker = Worker::run(&url, &[], &BEAT);
    let info = the_worker(&broker(&probe).await).await;
    redis.restart();
    // A fresh client: the old one's connections died with the server.
    let broker = broker(&probe).await;
    let again = eventually(
        "the worker to beat again",
        Duration::from_secs(15),
        || async { broker.workers().await.ok()?.into_iter().next() },
    )
    .await;
    assert_eq!(again.id, info.id);
    assert!(worker.running(), "{}", worker.log());
}

#[tokio::test]
async fn a_paused_topic_is_not_served_until_resumed() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let _worker = Worker::run(&url, &["--topics", "slow,record"], &BEAT);
    let client = probe.client().await;
    Record { seq: 1 }.enqueue(&client).await.unwrap();
    eventually("the first record job", Duration::from_secs(10), || async {
        (probe.len(RAN).await == 1).then_some(())
    })
    .await;

    let paused = ok(cli(&url, &["pause", "record"]));
    assert!(paused.contains("paused topic `record`"), "{paused}");
    Record { seq: 2 }.enqueue(&client).await.unwrap();
    // The worker serves its other topic meanwhile: once that job ran, it
    // has fetched (and skipped) the paused one too.
    Slow { seq: 1, millis: 0 }.enqueue(&client).await.unwrap();
    eventually("the slow job", Duration::from_secs(10), || async {
        probe
            .list(RAN)
            .await
            .contains(&"slow:1".to_owned())
            .then_some(())
    })
    .await;
    let stats = probe.stats("record").await;
    assert_eq!((stats.pending[1], stats.paused), (1, true));
    assert!(!probe.list(RAN).await.contains(&"record:2".to_owned()));
    let table = ok(cli(&url, &["stats", "--topics", "record"]));
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.split_whitespace().any(|cell| cell == "paused"),
        "{table}"
    );

    let resumed = ok(cli(&url, &["resume", "record"]));
    assert!(resumed.contains("resumed topic `record`"), "{resumed}");
    eventually(
        "the record job after resume",
        Duration::from_secs(10),
        || async {
            probe
                .list(RAN)
                .await
                .contains(&"record:2".to_owned())
                .then_some(())
        },
    )
    .await;
    let unknown = cli(&url, &["pause", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
}
