//! The scenarios. Each starts from an empty Redis and returns one record.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rmq::{Client, Config};
use tokio::io::AsyncBufReadExt;

use crate::procs::Procs;
use crate::redis_info;
use crate::report::{quantile_ms, Record};
use crate::tasks::{self, Noop, Timed};

/// Settings shared by the scenarios.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) url: String,
    pub(crate) concurrency: usize,
    pub(crate) queue_size: usize,
    pub(crate) batch: usize,
    pub(crate) threads: usize,
    pub(crate) pool: u32,
    pub(crate) replicas: u32,
    /// A Prometheus recorder is installed (`--metrics`).
    pub(crate) metrics: bool,
    /// `queue_prefix` of the jobs and the worker.
    pub(crate) prefix: String,
}

impl Setup {
    pub(crate) fn config(&self) -> Config {
        let mut config = Config::default();
        config.redis_url = self.url.clone();
        config.max_workers = self.concurrency;
        config.task_queue_size = self.queue_size;
        config.batch_size = self.batch;
        config.connection_pool_size = self.pool;
        config.min_replicas_acked = self.replicas;
        config.queue_prefix = self.prefix.clone();
        config
    }

    pub(crate) async fn client(&self) -> Client {
        Client::connect(self.config())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

fn order(_: u64) -> Noop {
    Noop {
        order_id: "ORD_1".to_owned(),
        user_id: 42,
        amount: 99.99,
    }
}

/// Redis CPU and script time since it was started, per job.
struct Meter {
    conn: redis::aio::MultiplexedConnection,
    cpu_s: f64,
    script_us: f64,
}

impl Meter {
    async fn start(mut conn: redis::aio::MultiplexedConnection) -> Meter {
        let cpu_s = redis_info::cpu_seconds(&mut conn).await;
        let script_us = redis_info::script_usec(&mut conn).await;
        Meter {
            conn,
            cpu_s,
            script_us,
        }
    }

    async fn finish(mut self, jobs: u64, record: &mut Record) {
        let cpu_s = redis_info::cpu_seconds(&mut self.conn).await - self.cpu_s;
        let script_us = redis_info::script_usec(&mut self.conn).await - self.script_us;
        record.redis_us_per_job = Some(cpu_s * 1e6 / jobs as f64);
        record.redis_script_us_per_job = Some(script_us / jobs as f64);
    }
}

pub(crate) async fn fresh(setup: &Setup) -> redis::aio::MultiplexedConnection {
    let mut conn = redis_info::connect(&setup.url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", setup.url));
    redis_info::flush(&mut conn).await;
    conn
}

/// The floor under every awaited call: one `PING` at a time on the same
/// client stack (redis-rs multiplexed connection), no rmq involved.
pub(crate) async fn ping_awaited(setup: &Setup, n: u64) -> Record {
    let mut conn = fresh(setup).await;
    let started = Instant::now();
    for _ in 0..n {
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .expect("PING");
    }
    let mut r = Record::new("ping_awaited (baseline)", n, 1);
    r.per_s = Some(n as f64 / started.elapsed().as_secs_f64());
    r
}

/// One awaited enqueue at a time from each of `producers` tasks sharing one
/// client.
pub(crate) async fn enqueue_awaited(setup: &Setup, n: u64, producers: usize) -> Record {
    let conn = fresh(setup).await;
    let client = setup.client().await;
    let meter = Meter::start(conn).await;
    let per_producer = n / producers as u64;
    let started = Instant::now();
    join_all((0..producers).map(|_| {
        let client = client.clone();
        async move {
            for i in 0..per_producer {
                order(i).enqueue(&client).await.expect("enqueue");
            }
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let total = per_producer * producers as u64;
    let mut r = Record::new(
        if producers == 1 {
            "enqueue_awaited".to_owned()
        } else {
            format!("enqueue_awaited_x{producers}")
        },
        total,
        producers,
    );
    r.per_s = Some(total as f64 / elapsed);
    meter.finish(total, &mut r).await;
    r
}

/// `enqueue_many` in batches of `batch`.
pub(crate) async fn enqueue_bulk(setup: &Setup, n: u64, batch: usize) -> Record {
    let conn = fresh(setup).await;
    let client = setup.client().await;
    let meter = Meter::start(conn).await;
    let started = Instant::now();
    prefill(&client, n, batch).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut r = Record::new("enqueue_bulk", n, 1);
    r.per_s = Some(n as f64 / elapsed);
    meter.finish(n, &mut r).await;
    r
}

pub(crate) async fn prefill(client: &Client, n: u64, batch: usize) {
    let mut done = 0;
    let mut reported = 0;
    while done < n {
        let size = (n - done).min(batch as u64);
        client
            .enqueue_many((0..size).map(order))
            .await
            .expect("bulk enqueue");
        done += size;
        if n >= 200_000 && done - reported >= 200_000 {
            eprintln!("  queued {done}/{n}");
            reported = done;
        }
    }
}

/// Redis bytes per queued job, from `INFO memory` around a bulk enqueue;
/// `indexed`: every job in the status-by-id index (`index_jobs`).
pub(crate) async fn memory(setup: &Setup, n: u64, indexed: bool) -> Record {
    let mut conn = fresh(setup).await;
    let mut config = setup.config();
    config.index_jobs = indexed;
    let client = Client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", setup.url));
    let before = redis_info::used_memory(&mut conn).await;
    prefill(&client, n, 1000).await;
    let after = redis_info::used_memory(&mut conn).await;
    let name = if indexed {
        "bytes_per_indexed_job"
    } else {
        "bytes_per_queued_job"
    };
    let mut r = Record::new(name, n, 1);
    r.bytes_per_job = Some((after - before) / n as f64);
    r
}

/// A worker process (this binary, `worker-proc`) drains `n` jobs queued
/// behind `backlog` others; reports throughput, its peak RSS and Redis CPU.
pub(crate) async fn processing(setup: &Setup, n: u64, backlog: u64) -> Record {
    let conn = fresh(setup).await;
    {
        let client = setup.client().await;
        eprintln!("  queueing {} jobs", n + backlog);
        prefill(&client, n + backlog, 1000).await;
    }
    let meter = Meter::start(conn).await;
    let exe = std::env::current_exe().expect("own path");
    let mut child = tokio::process::Command::new(exe)
        .args(["worker-proc", "--redis-url", &setup.url])
        .args(["--count", &n.to_string()])
        .args(["--concurrency", &setup.concurrency.to_string()])
        .args(["--queue-size", &setup.queue_size.to_string()])
        .args(["--batch", &setup.batch.to_string()])
        .args(["--threads", &setup.threads.to_string()])
        .args(["--pool", &setup.pool.to_string()])
        .args(if setup.replicas > 0 {
            &["--replica"][..]
        } else {
            &[]
        })
        .args(setup.metrics.then_some("--metrics"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn worker process");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = lines
        .next_line()
        .await
        .ok()
        .flatten()
        .expect("worker process reports");
    let _ = child.wait().await;
    let report: serde_json::Value = serde_json::from_str(&line).expect("worker report is JSON");
    let elapsed = report["elapsed_s"].as_f64().unwrap_or(f64::NAN);
    let name = if backlog == 0 {
        "processing".to_owned()
    } else {
        format!("processing_backlog_{backlog}")
    };
    let mut r = Record::new(name, n, setup.concurrency);
    r.per_s = Some(n as f64 / elapsed);
    r.rss_mb = report["rss_mb"].as_f64();
    r.worker_cpu_us_per_job = report["cpu_s"].as_f64().map(|s| s * 1e6 / n as f64);
    meter.finish(n, &mut r).await;
    r.backlog = Some(backlog);
    r
}

/// `processing` with the default `task_queue_size`, as a user who tunes
/// nothing gets it.
pub(crate) async fn processing_defaults(setup: &Setup, n: u64) -> Record {
    let defaults = Setup {
        queue_size: Config::default().task_queue_size,
        ..setup.clone()
    };
    let mut record = processing(&defaults, n, 0).await;
    record.scenario = "processing_defaults".to_owned();
    record
}

/// `procs` worker processes drain `n` jobs together; throughput from the
/// first job's start in any of them to the last job's end in any.
pub(crate) async fn processing_procs(setup: &Setup, n: u64, procs: usize) -> Record {
    let conn = fresh(setup).await;
    let client = setup.client().await;
    eprintln!("  queueing {n} jobs");
    prefill(&client, n, 1000).await;
    let broker = client.broker().expect("a Redis client").clone();
    let meter = Meter::start(conn).await;
    let running = Procs::spawn(std::iter::repeat_n(setup, procs));
    while broker.counter("bench_noop", "completed").await.unwrap_or(0) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ran = running.stop().await;
    let mut r = Record::new(format!("processing_procs_{procs}"), n, setup.concurrency);
    r.per_s = Some(ran.per_s(n));
    r.rss_mb = Some(ran.rss_mb);
    meter.finish(n, &mut r).await;
    r
}

/// The body of `worker-proc`: run a worker until `count` no-op jobs ran,
/// or, with `count` 0, until SIGTERM.
pub(crate) async fn worker_process(setup: &Setup, count: u64) {
    tasks::reset(if count == 0 { u64::MAX } else { count });
    let client = setup.client().await;
    let worker = rmq::Worker::builder(client)
        .task::<Noop>()
        .build()
        .expect("worker builds");
    let run = if count == 0 {
        worker.run().await
    } else {
        worker.run_until(tasks::DONE.notified()).await
    };
    run.expect("worker runs");
    if count == 0 {
        let ordering = std::sync::atomic::Ordering::Acquire;
        println!(
            "{}",
            serde_json::json!({
                "first_ns": tasks::FIRST_NS.load(ordering),
                "last_ns": tasks::LAST_NS.load(ordering),
                "rss_mb": peak_rss_mb(),
            })
        );
        return;
    }
    let end = tasks::now_ns();
    let first = tasks::FIRST_NS.load(std::sync::atomic::Ordering::Acquire);
    let elapsed = (end - first) as f64 / 1e9;
    println!(
        "{}",
        serde_json::json!({ "elapsed_s": elapsed, "rss_mb": peak_rss_mb(), "cpu_s": cpu_seconds() })
    );
}

/// CPU time of this process so far, all threads (Linux: the scheduler's
/// nanosecond counts per thread).
fn cpu_seconds() -> Option<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Runs an in-process worker for `bench_timed` while `produce` enqueues `n`
/// jobs; returns the recorded latencies (p50, p99).
async fn timed_run<F>(setup: &Setup, name: &str, n: u64, produce: F) -> Record
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = fresh(setup).await;
    tasks::reset(n);
    let client = setup.client().await;
    let worker = rmq::Worker::builder(client)
        .task::<Timed>()
        .build()
        .expect("worker builds");
    let running = tokio::spawn(worker.run_until(tasks::DONE.notified()));
    produce.await;
    let _ = tokio::time::timeout(Duration::from_secs(120), running).await;
    let mut latencies = tasks::LATENCIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    latencies.sort_unstable();
    let mut r = Record::new(name, latencies.len() as u64, setup.concurrency);
    r.p50_ms = quantile_ms(&latencies, 0.50);
    r.p99_ms = quantile_ms(&latencies, 0.99);
    r
}

/// Pickup latency: jobs enqueued at `rate` per second, enqueue-to-start time.
pub(crate) async fn pickup(setup: &Setup, rate: u64, seconds: u64) -> Record {
    let n = rate * seconds;
    let client = Arc::new(setup.client().await);
    let producer = async move {
        let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..n {
            tick.tick().await;
            Timed {
                due_ns: tasks::now_ns(),
            }
            .enqueue(&client)
            .await
            .expect("enqueue");
        }
    };
    let mut r = timed_run(setup, &format!("pickup_at_{rate}_per_s"), n, producer).await;
    r.per_s = Some(rate as f64);
    r
}

/// Delayed-job lateness: `n` jobs with delays spread over two seconds.
pub(crate) async fn delayed(setup: &Setup, n: u64) -> Record {
    let client = Arc::new(setup.client().await);
    let producer = async move {
        for i in 0..n {
            let delay = Duration::from_millis(200 + (i * 2000 / n));
            Timed {
                due_ns: tasks::now_ns() + delay.as_nanos() as u64,
            }
            .delay(delay)
            .enqueue(&client)
            .await
            .expect("enqueue");
        }
    };
    timed_run(setup, "delayed_lateness", n, producer).await
}
