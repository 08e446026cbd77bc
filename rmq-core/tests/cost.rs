//! Redis CPU per job of the hot path (enqueue, fetch, ack in batches of
//! 100), read from `INFO cpu`. A measurement, not a pass/fail test:
//! `cargo test -p rmq-core --test cost -- --ignored --nocapture`.

mod support;

use std::time::{Duration, Instant};

use rmq_core::broker::NewJob;
use rmq_core::Priority;
use support::Raw;
use support::{spec, Env};

async fn redis_cpu_us(raw: &mut Raw) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(raw)
        .await
        .unwrap();
    let field = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (field("used_cpu_user:") + field("used_cpu_sys:")) * 1e6
}

#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn redis_cpu_per_job() {
    let env = Env::new().await;
    let mut raw = env.raw().await;
    let total = 50_000;
    let batch = 100;
    let payload = [0x81, 0xa1, b'n', 0x2a].repeat(12);
    let jobs = vec![
        NewJob {
            payload: &payload,
            id: None
        };
        batch
    ];
    let s = spec(Priority::Normal);

    let cpu = redis_cpu_us(&mut raw).await;
    let start = Instant::now();
    for _ in 0..total / batch {
        env.broker.enqueue("bench", &s, &jobs).await.unwrap();
    }
    let enqueue_wall = start.elapsed();
    let enqueue_cpu = redis_cpu_us(&mut raw).await - cpu;
    let memory: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&env.broker.keys("bench").pending[1])
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut raw)
        .await
        .unwrap();

    let durations = vec![Duration::from_micros(5); batch];
    let cpu = redis_cpu_us(&mut raw).await;
    let start = Instant::now();
    let mut held = Vec::with_capacity(total / batch);
    loop {
        let fetched = env
            .broker
            .fetch("bench", batch, Duration::from_secs(30))
            .await
            .unwrap();
        if fetched.jobs.is_empty() {
            break;
        }
        held.push(fetched.jobs);
    }
    let fetch_wall = start.elapsed();
    let fetch_cpu = redis_cpu_us(&mut raw).await - cpu;
    let cpu = redis_cpu_us(&mut raw).await;
    let start = Instant::now();
    for jobs in &held {
        let lost = env.broker.ack("bench", jobs, &durations).await.unwrap();
        assert!(lost.is_empty());
    }
    let ack_wall = start.elapsed();
    let ack_cpu = redis_cpu_us(&mut raw).await - cpu;
    let n = total as f64;
    println!(
        "fetch x{batch}: {:.2} us Redis CPU/job, {:.0} jobs/s (sequential, debug client)",
        fetch_cpu / n,
        n / fetch_wall.as_secs_f64()
    );
    println!(
        "ack x{batch}: {:.2} us Redis CPU/job, {:.0} jobs/s (sequential, debug client)",
        ack_cpu / n,
        n / ack_wall.as_secs_f64()
    );
    println!(
        "enqueue x{batch}: {:.2} us Redis CPU/job, {:.0} jobs/s (sequential, debug client)",
        enqueue_cpu / n,
        n / enqueue_wall.as_secs_f64()
    );
    println!(
        "pending list: {:.1} bytes per queued job (payload {} bytes)",
        memory as f64 / n,
        payload.len()
    );
    assert_eq!(
        env.broker.stats("bench").await.unwrap().completed,
        total as u64
    );
}
