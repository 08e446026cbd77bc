//! The cluster scenario: a 3-primary Redis Cluster, one topic per primary
//! (the no-op task under three key prefixes, chosen so each topic's hash tag
//! lands on another primary), one worker process per topic. Reports the
//! jobs/s of all three together and the Redis CPU each shard spent.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

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
    let exe = std::env::current_exe().expect("own path");
    let mut children = Vec::new();
    for (_, prefix) in &shards {
        let child = tokio::process::Command::new(&exe)
            .args(["worker-proc", "--redis-url", &cluster.url(), "--count", "0"])
            .args(["--prefix", prefix])
            .args(["--concurrency", &setup.concurrency.to_string()])
            .args(["--queue-size", &setup.queue_size.to_string()])
            .args(["--batch", &setup.batch.to_string()])
            .args(["--threads", &setup.threads.to_string()])
            .args(["--pool", &setup.pool.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn worker process");
        children.push(child);
    }
    for (_, prefix) in &shards {
        let shard = Setup {
            url: cluster.url(),
            prefix: prefix.clone(),
            ..setup.clone()
        };
        let client = shard.client().await;
        let broker = client.broker().expect("a Redis client");
        while broker.counter("bench_noop", "completed").await.unwrap_or(0) < per_shard {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (mut first, mut last) = (u64::MAX, 0u64);
    for mut child in children {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::io::BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .ok()
            .flatten()
            .expect("worker process reports");
        let _ = child.wait().await;
        let report: serde_json::Value = serde_json::from_str(&line).expect("report is JSON");
        if let (Some(f), Some(l)) = (report["first_ns"].as_u64(), report["last_ns"].as_u64()) {
            if f > 0 {
                first = first.min(f);
                last = last.max(l);
            }
        }
    }
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
    r.per_s = Some(total as f64 / (last.saturating_sub(first) as f64 / 1e9));
    r.redis_us_per_job = Some(cpu_total * 1e6 / total as f64);
    r
}
