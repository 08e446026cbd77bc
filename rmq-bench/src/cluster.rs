//! The cluster scenario: a 3-primary Redis Cluster, one topic per primary
//! (the no-op task under three key prefixes, chosen so each topic's hash tag
//! lands on another primary), one worker process per topic. Reports the
//! jobs/s of all three together and the Redis CPU each shard spent.

use std::time::Duration;

use crate::procs::Procs;
use crate::redis_info;
use crate::report::Record;
use crate::scenarios::{prefill, Setup};

/// A prefix per primary whose `{prefix:bench_noop}` tag the primary owns.
fn prefixes(cluster: &rmq_testkit::Cluster) -> Vec<(u16, String)> {
    let mut found: Vec<(u16, String)> = Vec::new();
    for i in 0.. {
        let prefix = format!("shard{i}");
        let slot = rmq_testkit::key_slot(&format!("{{{prefix}:bench_noop}}"));
        if let Some(primary) = cluster.primary_of_slot(slot) {
            if !found.iter().any(|(p, _)| *p == primary) {
                found.push((primary, prefix));
            }
        }
        if found.len() == cluster.primaries().len() {
            return found;
        }
    }
    unreachable!("the loop returns once every primary has a prefix")
}

/// Runs `n` jobs spread evenly over the shards of `cluster`.
pub(crate) async fn processing(setup: &Setup, cluster: &rmq_testkit::Cluster, n: u64) -> Record {
    let shards = prefixes(cluster);
    let per_shard = n / shards.len() as u64;
    let mut meters = Vec::new();
    for (port, prefix) in &shards {
        let mut conn = redis_info::connect(&format!("redis://127.0.0.1:{port}"))
            .await
            .expect("connect to a primary");
        redis_info::flush(&mut conn).await;
        let shard = Setup {
            url: cluster.url(),
            prefix: prefix.clone(),
            ..setup.clone()
        };
        prefill(&shard.client().await, per_shard, 1000).await;
        let cpu = redis_info::cpu_seconds(&mut conn).await;
        meters.push((conn, cpu));
    }
    let setups: Vec<Setup> = shards
        .iter()
        .map(|(_, prefix)| Setup {
            url: cluster.url(),
            prefix: prefix.clone(),
            ..setup.clone()
        })
        .collect();
    let procs = Procs::spawn(&setups);
    for shard in &setups {
        let client = shard.client().await;
        let broker = client.broker().expect("a Redis client");
        while broker.counter("bench_noop", "completed").await.unwrap_or(0) < per_shard {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let ran = procs.stop().await;
    let total = per_shard * shards.len() as u64;
    let mut cpu_total = 0.0;
    for ((port, _), (mut conn, before)) in shards.iter().zip(meters) {
        let spent = redis_info::cpu_seconds(&mut conn).await - before;
        eprintln!(
            "  shard 127.0.0.1:{port}: {:.2} us of Redis CPU per job",
            spent * 1e6 / per_shard as f64
        );
        cpu_total += spent;
    }
    let mut r = Record::new(
        format!("processing_cluster_{}", shards.len()),
        total,
        setup.concurrency,
    );
    r.per_s = Some(ran.per_s(total));
    r.redis_us_per_job = Some(cpu_total * 1e6 / total as f64);
    r
}
