//! Real worker processes over a Redis Cluster: three `rmq-it-worker`
//! processes share three topics whose slots sit on three different
//! primaries; every job runs exactly once. The handlers record into a
//! separate standalone Redis (`RMQ_IT_RECORD_URL`).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{eventually, Probe, Worker};
use rmq::{Client, Config};
use rmq_it::{Flaky, Record, Slow, RAN};
use rmq_testkit::{key_slot, Cluster, RedisServer};

const TOPICS: [&str; 3] = ["record", "slow", "flaky"];
/// Jobs per topic.
const PER_TOPIC: u64 = 10_000;

/// A queue prefix under which the three topics land on three different
/// primaries.
fn spread_prefix(cluster: &Cluster) -> String {
    let owners: Vec<(u16, u16, u16)> = cluster
        .topology()
        .into_iter()
        .filter(|n| n.primary)
        .flat_map(|n| n.slots.into_iter().map(move |(a, b)| (a, b, n.port)))
        .collect();
    let owner = |slot: u16| {
        owners
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, port)| *port)
    };
    (0..)
        .map(|i| format!("it{}-{i}", std::process::id()))
        .find(|prefix| {
            let ports: HashSet<Option<u16>> = TOPICS
                .iter()
                .map(|t| owner(key_slot(&format!("{{{prefix}:{t}}}"))))
                .collect();
            ports.len() == 3 && !ports.contains(&None)
        })
        .expect("some prefix spreads the topics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_three_topics_over_a_cluster_run_every_job_exactly_once() {
    let (cluster_url, prefix) = tokio::task::spawn_blocking(|| {
        let cluster = Cluster::shared();
        (cluster.url(), spread_prefix(cluster))
    })
    .await
    .unwrap();
    let recorder = RedisServer::start();
    let env = [
        ("RMQ_IT_RECORD_URL", recorder.url()),
        ("MQ_QUEUE_PREFIX", prefix.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| {
            Worker::run(
                &cluster_url,
                &["--topics", "record,slow,flaky", "--concurrency", "16"],
                &env,
            )
        })
        .collect();

    let mut config = Config::default();
    config.redis_url = cluster_url.clone();
    config.queue_prefix = prefix;
    let client = Client::connect(config)
        .await
        .expect("connect to the cluster");
    let start = Instant::now();
    for chunk in (0..PER_TOPIC).collect::<Vec<_>>().chunks(1000) {
        client
            .enqueue_many(chunk.iter().map(|&seq| Record { seq }))
            .await
            .unwrap();
        client
            .enqueue_many(chunk.iter().map(|&seq| Slow { seq, millis: 0 }))
            .await
            .unwrap();
        client
            .enqueue_many(chunk.iter().map(|&seq| Flaky { seq, fail_times: 0 }))
            .await
            .unwrap();
    }
    let probe = Probe::new(recorder.url());
    let total = 3 * PER_TOPIC as usize;
    eventually("every job to run", Duration::from_secs(150), || async {
        (probe.len(RAN).await >= total).then_some(())
    })
    .await;
    let took = start.elapsed();
    // Late duplicates would show up after the count was reached.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ran = probe.list(RAN).await;
    assert_eq!(ran.len(), total, "some job ran twice");
    for topic in TOPICS {
        let counts = common::count(&ran, topic);
        assert_eq!(counts.len(), PER_TOPIC as usize, "{topic}: jobs missing");
        assert!(counts.values().all(|&n| n == 1), "{topic}: a job ran twice");
        let stats = client.broker().unwrap().stats(topic).await.unwrap();
        assert_eq!(stats.completed, PER_TOPIC, "{topic}");
        assert_eq!(stats.pending.iter().sum::<u64>() + stats.processing, 0);
    }
    eprintln!(
        "{total} jobs over 3 topics on 3 primaries, 3 worker processes: {took:?} ({:.0} jobs/s)",
        total as f64 / took.as_secs_f64()
    );
    for worker in &mut workers {
        worker.signal(libc::SIGTERM);
        let status = worker.exited(Duration::from_secs(15)).await;
        assert!(status.success(), "{status:?}\n{}", worker.log());
    }
}
