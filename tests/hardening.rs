//! The worker on the Redis and the handlers production has: handlers that
//! block their thread, workers that crash holding a lease, a topic whose keys
//! another program broke, and a full Redis.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use rmq::{Client, Priority, State, TaskError, Worker};
use support::{run, Env, Probe, LIMIT};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------
// A handler that blocks its thread

#[rmq::task(topic = "blocking")]
async fn blocking_job(probe: State<Probe<&'static str>>) -> Result<(), TaskError> {
    probe.record("start");
    // Blocks the worker's only runtime thread for three leases.
    std::thread::sleep(Duration::from_millis(900));
    probe.record("end");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_blocks_its_thread_keeps_its_lease() {
    let env = Env::with(|c| {
        c.lease = Duration::from_millis(300);
        c.processing_monitor_interval = Duration::from_millis(50);
    })
    .await;
    let first = Probe::<&'static str>::new();
    let second = Probe::<&'static str>::new();
    BlockingJob {}.enqueue(&env.client).await.unwrap();

    // Worker A on a runtime of one thread, which the handler blocks.
    let config = env.client.config().clone();
    let probe = first.clone();
    let a = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = Client::connect(config).await.unwrap();
            let worker = Worker::builder(client)
                .task::<BlockingJob>()
                .state(probe.clone())
                .build()
                .unwrap();
            let metrics = worker.metrics_handle();
            run(worker, probe.until(|r| r.contains(&"end"))).await;
            metrics.snapshot()
        })
    });
    first.wait(|r| r.contains(&"start")).await;
    // Worker B would recover the job if A's lease lapsed.
    let worker_b = Worker::builder(env.second_client().await)
        .task::<BlockingJob>()
        .state(second.clone())
        .build()
        .unwrap();
    run(worker_b, first.until(|r| r.contains(&"end"))).await;
    let metrics_a = tokio::task::spawn_blocking(move || a.join().unwrap())
        .await
        .unwrap();

    assert_eq!(first.records(), ["start", "end"]);
    assert!(second.records().is_empty(), "the job ran twice");
    assert_eq!((metrics_a.completed, metrics_a.lease_lost), (1, 0));
    let stats = env.stats("blocking").await;
    assert_eq!((stats.completed, stats.failed, stats.dead), (1, 0, 0));
}

// ---------------------------------------------------------------------------
// A crashed worker's lease

#[rmq::task(topic = "orphan")]
async fn orphan_job(n: u32, probe: State<Probe<(u32, u64)>>) -> Result<(), TaskError> {
    probe.record((n, now_ms()));
    Ok(())
}

#[rmq::task(topic = "staging")]
async fn staging_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

/// Leases a job of `topic` as a worker that then crashes would: fetched
/// through another topic (so no running worker takes it first) and moved,
/// lease and all, into `topic`. Returns the lease deadline (ms).
async fn orphan_lease(env: &Env, topic: &str, n: u32, lease: Duration) -> u64 {
    StagingJob { n }.enqueue(&env.client).await.unwrap();
    let job = env
        .broker()
        .fetch("staging", 1, lease)
        .await
        .unwrap()
        .jobs
        .remove(0);
    let mut raw = env.raw().await;
    let deadline: u64 = raw
        .zscore("{staging}:processing", job.as_bytes())
        .await
        .unwrap();
    let processing = format!("{{{topic}}}:processing");
    let _: () = redis::pipe()
        .atomic()
        .zrem("{staging}:processing", job.as_bytes())
        .zadd(&processing, job.as_bytes(), deadline)
        .query_async(&mut raw)
        .await
        .unwrap();
    deadline
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_recovered_within_a_second_whatever_the_monitor_interval() {
    // The default processing_monitor_interval (30 s) is far longer than
    // the lease.
    let env = Env::with(|c| c.lease = Duration::from_secs(2)).await;
    let probe = Probe::<(u32, u64)>::new();
    let worker = Worker::builder(env.second_client().await)
        .task::<OrphanJob>()
        .state(probe.clone())
        .build()
        .unwrap();
    let stop = probe.reached(1);
    let running = tokio::spawn(run(worker, stop));
    // The worker is idle (its monitor saw no lease) when a worker that is
    // about to crash takes a lease.
    env.wait_idle(1).await;
    let deadline = orphan_lease(&env, "orphan", 7, Duration::from_secs(2)).await;
    tokio::time::timeout(LIMIT, running).await.unwrap().unwrap();

    let (n, ran_at) = probe.records()[0];
    assert_eq!(n, 7);
    assert!(
        ran_at + 50 >= deadline && ran_at < deadline + 1_000,
        "recovered {} ms after the lease deadline",
        ran_at as i64 - deadline as i64
    );
}

// ---------------------------------------------------------------------------
// A topic whose keys another program broke

#[rmq::task(topic = "broken")]
async fn broken_job(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_topic_does_not_stop_the_others() {
    let env = Env::with(|c| {
        c.lease = Duration::from_millis(300);
        c.processing_monitor_interval = Duration::from_millis(50);
    })
    .await;
    let mut raw = env.raw().await;
    BrokenJob { n: 1 }.enqueue(&env.client).await.unwrap();
    let _: () = raw.set("{broken}:processing", "foreign").await.unwrap();
    let _: () = raw.set("{broken}:wake", "foreign").await.unwrap();

    let probe = Probe::<(u32, u64)>::new();
    let worker = Worker::builder(env.second_client().await)
        .task::<BrokenJob>()
        .task::<OrphanJob>()
        .state(probe.clone())
        .build()
        .unwrap();
    let stop = probe.reached(2);
    let running = tokio::spawn(run(worker, stop));
    // A crashed worker's job is recovered and a new one runs, while every
    // call on the broken topic fails.
    orphan_lease(&env, "orphan", 1, Duration::from_millis(300)).await;
    OrphanJob { n: 2 }.enqueue(&env.client).await.unwrap();
    tokio::time::timeout(LIMIT, running).await.unwrap().unwrap();

    let mut ran: Vec<u32> = probe.records().into_iter().map(|(n, _)| n).collect();
    ran.sort_unstable();
    assert_eq!(ran, [1, 2]);
    // The broken topic's job is still queued, not lost.
    let pending: u64 = raw.llen("{broken}:normal").await.unwrap();
    assert_eq!(pending, 1);
}

// ---------------------------------------------------------------------------
// A full Redis

#[rmq::task(topic = "drain", priority = Low)]
async fn drain_job(n: u32, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(n);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starts_on_a_full_redis_and_drains_it() {
    let env = Env::new().await;
    env.client
        .enqueue_many((0..50).map(|n| DrainJob { n }))
        .await
        .unwrap();
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();
    let err = DrainJob { n: 99 }.enqueue(&env.client).await.unwrap_err();
    assert!(err.to_string().contains("Redis is full"), "{err}");

    let probe = Probe::<u32>::new();
    let worker = Worker::builder(env.second_client().await)
        .task::<DrainJob>()
        .state(probe.clone())
        .build()
        .unwrap();
    run(worker, probe.reached(50)).await;
    let stats = env.stats("drain").await;
    assert_eq!(
        (
            stats.completed,
            stats.pending[Priority::Low.as_u8() as usize]
        ),
        (50, 0)
    );
}

// ---------------------------------------------------------------------------
// Prefetch

#[rmq::task(topic = "slow")]
async fn slow_job(
    n: u32,
    gate: State<tokio::sync::Semaphore>,
    probe: State<Probe<u32>>,
) -> Result<(), TaskError> {
    probe.record(n);
    // Held until the test lets it finish.
    let _ = gate.acquire().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_keep_the_prefetch_at_task_queue_size() {
    // Prefetch grows only for handlers that start jobs fast; these hang.
    let env = Env::with(|c| {
        c.max_workers = 2;
        c.task_queue_size = 3;
    })
    .await;
    env.client
        .enqueue_many((0..300).map(|n| SlowJob { n }))
        .await
        .unwrap();
    let probe = Probe::<u32>::new();
    let gate = tokio::sync::Semaphore::new(0);
    let worker = Worker::builder(env.second_client().await)
        .task::<SlowJob>()
        .state(gate)
        .state(probe.clone())
        .build()
        .unwrap();
    let stop = probe.reached(2);
    let running = tokio::spawn(worker.run_until(async move {
        stop.await;
        std::future::pending::<()>().await
    }));
    probe.wait(|r| r.len() >= 2).await;
    // Whatever the governor does over a few of its ticks, the worker never
    // holds more than its handlers plus `task_queue_size`.
    for _ in 0..10 {
        let stats = env.stats("slow").await;
        assert!(stats.processing <= 5, "{} jobs held", stats.processing);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    running.abort();
}
