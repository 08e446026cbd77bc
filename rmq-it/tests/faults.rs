//! Real worker processes, real signals, a real Redis: crashes, graceful
//! shutdown, Redis restarts, lost scripts and connections, competing
//! workers, and failing handlers.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{count, drained, eventually, Probe, Worker};
use rmq::envelope::Envelope;
use rmq_it::{Flaky, Hangs, Panics, Permanent, Record, Slow, ATTEMPTS, RAN, STARTED};
use rmq_testkit::{Options, RedisServer};

const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

async fn enqueue_records(probe: &Probe, seqs: std::ops::Range<u64>) {
    let client = probe.client().await;
    let all: Vec<u64> = seqs.collect();
    for chunk in all.chunks(1000) {
        client
            .enqueue_many(chunk.iter().map(|&seq| Record { seq }))
            .await
            .expect("enqueue records");
    }
}

async fn enqueue_slow(probe: &Probe, seqs: std::ops::Range<u64>, millis: u64) {
    let client = probe.client().await;
    let all: Vec<u64> = seqs.collect();
    for chunk in all.chunks(1000) {
        client
            .enqueue_many(chunk.iter().map(|&seq| Slow { seq, millis }))
            .await
            .expect("enqueue slow jobs");
    }
}

/// Waits until `topic` has recorded at least `n` distinct completed seqs.
/// Waits for `slow` jobs 0..jobs to run and the queue to drain, then checks
/// that each ran and was acknowledged exactly once as completed; returns the
/// runs per seq.
async fn none_lost(probe: &Probe, jobs: u64) -> HashMap<u64, usize> {
    ran_at_least(probe, "slow", jobs as usize, Duration::from_secs(45)).await;
    let stats = drained(probe, "slow", Duration::from_secs(15)).await;
    let ran = probe.ran("slow").await;
    assert_eq!(
        ran.keys().copied().collect::<HashSet<_>>(),
        (0..jobs).collect::<HashSet<_>>()
    );
    assert_eq!(stats.dead, 0, "{stats:?}");
    assert_eq!(
        stats.completed, jobs,
        "each job acknowledged once: {stats:?}"
    );
    ran
}

async fn ran_at_least(probe: &Probe, topic: &str, n: usize, timeout: Duration) {
    eventually(&format!("{n} `{topic}` runs"), timeout, || async {
        (probe.ran(topic).await.len() >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_job_of_a_killed_worker_completes_on_another_after_its_lease_expires() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    Slow {
        seq: 0,
        millis: 1500,
    }
    .enqueue(&client)
    .await
    .unwrap();
    enqueue_records(&probe, 0..20).await;

    let mut first = Worker::run(&redis.url(), &["--concurrency", "2"], &SHORT_LEASE);
    eventually("the slow job to start", Duration::from_secs(15), || async {
        probe
            .list(STARTED)
            .await
            .contains(&"slow:0:1".to_owned())
            .then_some(())
    })
    .await;
    let status = first.kill9().await;
    assert!(!status.success(), "SIGKILL ends the worker: {status:?}");
    assert!(
        probe.ran("slow").await.is_empty(),
        "the slow job cannot have finished before the kill"
    );
    assert_eq!(
        probe.stats("slow").await.processing,
        1,
        "it is still leased"
    );

    let killed_at = Instant::now();
    let _second = Worker::run(&redis.url(), &["--concurrency", "2"], &SHORT_LEASE);
    eventually(
        "the slow job to complete",
        Duration::from_secs(20),
        || async { probe.ran("slow").await.contains_key(&0).then_some(()) },
    )
    .await;
    // Recovered after the 1 s lease (not before), then 1.5 s of work.
    assert!(killed_at.elapsed() >= Duration::from_millis(1500));
    let slow = drained(&probe, "slow", Duration::from_secs(10)).await;
    let records = drained(&probe, "record", Duration::from_secs(10)).await;

    assert_eq!(probe.ran("slow").await.get(&0), Some(&1), "completed once");
    let started = probe.list(STARTED).await;
    assert_eq!(
        started,
        vec!["slow:0:1".to_owned(), "slow:0:2".to_owned()],
        "recovery counts the attempt"
    );
    let ran = probe.ran("record").await;
    for seq in 0..20 {
        assert!(ran.contains_key(&seq), "record {seq} was lost");
    }
    assert_eq!((slow.completed, slow.dead), (1, 0));
    assert_eq!(records.completed, 20, "every record acknowledged once");
    assert_eq!(records.dead, 0);
}

#[tokio::test]
async fn sigterm_finishes_running_jobs_returns_the_rest_and_exits_zero() {
    const JOBS: u64 = 12;
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    enqueue_slow(&probe, 0..JOBS, 500).await;

    let grace = Duration::from_secs(5);
    let mut worker = Worker::run(
        &redis.url(),
        &["--concurrency", "4"],
        &[("MQ_SHUTDOWN_GRACE", "5")],
    );
    eventually("4 jobs running", Duration::from_secs(15), || async {
        (probe.list(STARTED).await.len() >= 4).then_some(())
    })
    .await;
    let signalled = Instant::now();
    worker.signal(libc::SIGTERM);
    let status = worker.exited(grace + Duration::from_secs(3)).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "graceful exit: {status:?}");
    assert!(
        took < grace,
        "exited {took:?} after SIGTERM, grace {grace:?}"
    );

    let ran = probe.ran("slow").await;
    let started: HashSet<u64> = count(&probe.list(STARTED).await, "slow")
        .into_keys()
        .collect();
    let finished: HashSet<u64> = ran.keys().copied().collect();
    assert_eq!(
        started, finished,
        "every started job finished within the grace"
    );
    assert!(ran.values().all(|&n| n == 1));
    let stats = probe.stats("slow").await;
    assert_eq!(stats.processing, 0, "no job is left leased");
    assert_eq!(stats.delayed, 0);
    assert_eq!(
        ran.len() as u64 + stats.pending.iter().sum::<u64>(),
        JOBS,
        "every job either finished or is pending again: {stats:?}"
    );
    assert!(
        stats.pending[1] > 0,
        "some jobs were still queued at the signal"
    );

    let _fresh = Worker::run(&redis.url(), &["--concurrency", "4"], &[]);
    ran_at_least(&probe, "slow", JOBS as usize, Duration::from_secs(20)).await;
    let stats = drained(&probe, "slow", Duration::from_secs(10)).await;
    let ran = probe.ran("slow").await;
    assert_eq!(ran.len() as u64, JOBS);
    assert!(ran.values().all(|&n| n == 1), "a job ran twice: {ran:?}");
    let started = count(&probe.list(STARTED).await, "slow");
    assert!(
        started.values().all(|&n| n == 1),
        "a job started twice: {started:?}"
    );
    assert_eq!((stats.completed, stats.failed, stats.dead), (JOBS, 0, 0));
}

#[tokio::test]
async fn the_worker_reconnects_after_redis_restarts_and_nothing_is_lost() {
    const JOBS: u64 = 2000;
    let mut redis = RedisServer::with(Options {
        appendonly: true,
        ..Options::default()
    });
    let probe = Probe::new(redis.url());
    enqueue_slow(&probe, 0..JOBS, 2).await;

    let mut worker = Worker::run(
        &redis.url(),
        &["--concurrency", "4"],
        &[("MQ_LEASE", "2"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")],
    );
    ran_at_least(&probe, "slow", 300, Duration::from_secs(20)).await;
    redis.kill();
    // The outage itself: the worker runs on with Redis gone for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(worker.running(), "a Redis outage must not stop the worker");
    redis.restart();
    let before = probe.ran("slow").await.len();
    assert!(
        before < JOBS as usize,
        "the restart came too late to test anything"
    );

    let ran = none_lost(&probe, JOBS).await;
    let repeated = ran.values().filter(|&&n| n > 1).count();
    assert!(
        repeated <= 64,
        "{repeated} jobs ran twice; only those in flight at the crash may"
    );
    assert!(worker.running());
}

#[tokio::test]
async fn the_worker_survives_script_flush_and_client_kill() {
    const JOBS: u64 = 2000;
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    enqueue_slow(&probe, 0..JOBS, 2).await;

    let mut worker = Worker::run(&redis.url(), &["--concurrency", "4"], &[]);
    for (round, threshold) in [300usize, 800, 1300].into_iter().enumerate() {
        ran_at_least(&probe, "slow", threshold, Duration::from_secs(30)).await;
        let mut admin = probe.conn().await;
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut admin)
            .await
            .expect("SCRIPT FLUSH");
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut admin)
            .await
            .expect("CLIENT KILL");
        assert!(
            killed > 0,
            "round {round}: the worker's connections were killed"
        );
        assert!(
            probe.ran("slow").await.len() < JOBS as usize,
            "round {round}: the faults came too late to test anything"
        );
    }
    none_lost(&probe, JOBS).await;
    assert!(worker.running());
}

#[tokio::test]
async fn three_workers_run_each_of_ten_thousand_jobs_exactly_once() {
    const JOBS: u64 = 10_000;
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::run(&redis.url(), &["--concurrency", "8"], &[]))
        .collect();
    enqueue_records(&probe, 0..JOBS).await;

    ran_at_least(&probe, "record", JOBS as usize, Duration::from_secs(60)).await;
    let stats = drained(&probe, "record", Duration::from_secs(10)).await;
    let ran = probe.ran("record").await;
    assert_eq!(ran.len() as u64, JOBS);
    let twice: Vec<_> = ran.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
    assert_eq!(probe.len(RAN).await as u64, JOBS);
    assert_eq!((stats.completed, stats.failed, stats.dead), (JOBS, 0, 0));
    for worker in &mut workers {
        assert!(worker.running());
    }
}

fn attempts_of(all: &[String], topic: &str, seq: u64) -> Vec<u32> {
    let prefix = format!("{topic}:{seq}:");
    all.iter()
        .filter_map(|e| e.strip_prefix(&prefix))
        .map(|a| a.parse().expect("attempt"))
        .collect()
}

#[tokio::test]
async fn failing_handlers_retry_and_dead_letter_as_configured() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    let broker = client.broker().unwrap().clone();
    Panics { seq: 1 }.enqueue(&client).await.unwrap();
    Hangs { seq: 2 }.enqueue(&client).await.unwrap();
    Permanent { seq: 3 }.enqueue(&client).await.unwrap();
    Flaky {
        seq: 4,
        fail_times: 2,
    }
    .enqueue(&client)
    .await
    .unwrap();

    let mut worker = Worker::run(&redis.url(), &["--concurrency", "2"], &[]);
    // Served while the failing jobs go through their retries.
    enqueue_records(&probe, 0..100).await;

    for topic in ["panics", "hangs", "permanent"] {
        eventually(
            &format!("the `{topic}` job to be dead-lettered"),
            Duration::from_secs(15),
            || async { (broker.stats(topic).await.unwrap().dead == 1).then_some(()) },
        )
        .await;
    }
    ran_at_least(&probe, "flaky", 1, Duration::from_secs(15)).await;
    ran_at_least(&probe, "record", 100, Duration::from_secs(15)).await;
    assert!(
        worker.running(),
        "a panicking handler must not kill the worker"
    );

    let attempts = probe.list(ATTEMPTS).await;
    let dead = |topic: &'static str| {
        let broker = broker.clone();
        async move {
            let mut dead = broker.dead_letters(topic, 0, 10).await.unwrap();
            assert_eq!(dead.len(), 1, "one dead job of `{topic}`");
            dead.remove(0).expect("a readable dead-letter entry")
        }
    };

    // Panics: 1 run + 2 retries, then dead.
    let job = dead("panics").await;
    assert_eq!(job.envelope.attempt(), 3, "the attempt that failed last");
    assert!(job.error.contains("panic"), "{}", job.error);
    assert_eq!(attempts_of(&attempts, "panics", 1), [1, 2, 3]);
    assert_payload(&job.envelope, 1);

    // Hangs past its 300 ms timeout: 1 run + 1 retry.
    let job = dead("hangs").await;
    assert_eq!(job.envelope.attempt(), 2);
    assert!(
        job.error.to_lowercase().contains("time"),
        "the error names the timeout: {}",
        job.error
    );
    assert_eq!(attempts_of(&attempts, "hangs", 2), [1, 2]);

    // Permanent: no retry although 3 are allowed.
    let job = dead("permanent").await;
    assert_eq!(job.envelope.attempt(), 1);
    assert!(job.error.contains("bad input 3"), "{}", job.error);
    assert_eq!(attempts_of(&attempts, "permanent", 3), [1]);

    // Flaky: fails twice, completes on attempt 3.
    assert_eq!(attempts_of(&attempts, "flaky", 4), [1, 2, 3]);
    assert_eq!(probe.ran("flaky").await.get(&4), Some(&1));
    let flaky = drained(&probe, "flaky", Duration::from_secs(5)).await;
    assert_eq!((flaky.completed, flaky.failed, flaky.dead), (1, 2, 0));

    let panics = broker.stats("panics").await.unwrap();
    assert_eq!((panics.failed, panics.completed), (3, 0));
    let hangs = broker.stats("hangs").await.unwrap();
    assert_eq!((hangs.failed, hangs.completed), (2, 0));
    let records = drained(&probe, "record", Duration::from_secs(5)).await;
    assert_eq!(
        (records.completed, records.failed, records.dead),
        (100, 0, 0)
    );
    assert!(worker.running());
}

fn assert_payload(envelope: &Envelope, seq: u64) {
    let json = rmq::codec::to_json(envelope.payload()).expect("payload decodes");
    assert_eq!(json["seq"], seq, "{json}");
}

#[tokio::test]
async fn a_fault_free_run_with_short_leases_loses_no_lease() {
    const JOBS: u64 = 3000;
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    enqueue_slow(&probe, 0..JOBS, 1).await;
    let mut worker = Worker::run(&redis.url(), &["--concurrency", "4"], &SHORT_LEASE);
    ran_at_least(&probe, "slow", JOBS as usize, Duration::from_secs(45)).await;
    let stats = drained(&probe, "slow", Duration::from_secs(10)).await;
    assert_eq!((stats.completed, stats.failed, stats.dead), (JOBS, 0, 0));
    let ran = probe.ran("slow").await;
    assert!(ran.values().all(|&n| n == 1));
    worker.signal(libc::SIGTERM);
    assert_eq!(worker.exited(Duration::from_secs(10)).await.code(), Some(0));
    let log = worker.log();
    let lost = log.lines().filter(|l| l.contains("lease lost")).count();
    assert_eq!(lost, 0, "no lease can be lost without a fault:\n{log}");
}
