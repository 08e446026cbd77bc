//! Quickstart: define tasks, enqueue immediate, delayed and prioritised jobs,
//! run a worker until they are done, and print what ran.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Uses `REDIS_URL` (default `redis://127.0.0.1:6379`). If nothing answers
//! there and `redis-server` is on PATH, it starts a private throwaway server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmq::{Client, Config, JobContext, Priority, TaskError, Worker};
use tokio::sync::Notify;

static RAN: AtomicUsize = AtomicUsize::new(0);
static ALL_DONE: Notify = Notify::const_new();
const JOBS: usize = 5;

fn ran(line: String) {
    println!("  ran: {line}");
    if RAN.fetch_add(1, Ordering::SeqCst) + 1 == JOBS {
        ALL_DONE.notify_one();
    }
}

/// Sends a welcome email.
#[rmq::task(topic = "emails", retries = 3, timeout = "10s")]
async fn send_email(to: String, subject: String) -> Result<(), TaskError> {
    ran(format!("email to {to}: {subject}"));
    Ok(())
}

/// Handles an order; high-priority orders jump the queue.
#[rmq::task(topic = "orders", retries = 5, retry_delays = ["1s", "5s"])]
async fn handle_order(order_id: String, amount: f64, ctx: JobContext) -> Result<(), TaskError> {
    ran(format!(
        "order {order_id} ({amount:.2}) priority={} attempt={}",
        ctx.priority, ctx.attempt
    ));
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (url, _server) = match redis_url() {
        Ok(found) => found,
        Err(message) => {
            eprintln!("quickstart: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut config = Config::from_env().expect("valid MQ_* environment");
    config.redis_url = url;
    config.queue_prefix = format!("quickstart-{}", std::process::id());
    let client = match Client::connect(config).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("quickstart: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };

    println!("enqueueing {JOBS} jobs");
    HandleOrder { order_id: "ORD_1".into(), amount: 99.9 }
        .priority(Priority::Low)
        .enqueue(&client)
        .await
        .expect("enqueue");
    HandleOrder { order_id: "ORD_2".into(), amount: 12.5 }
        .enqueue(&client)
        .await
        .expect("enqueue");
    HandleOrder { order_id: "ORD_VIP".into(), amount: 1200.0 }
        .priority(Priority::High)
        .enqueue(&client)
        .await
        .expect("enqueue");
    SendEmail { to: "ada@example.com".into(), subject: "Welcome".into() }
        .enqueue(&client)
        .await
        .expect("enqueue");
    SendEmail { to: "ada@example.com".into(), subject: "One second later".into() }
        .delay(Duration::from_secs(1))
        .enqueue(&client)
        .await
        .expect("enqueue");

    let started = Instant::now();
    let worker = Worker::builder(client)
        .concurrency(1)
        .build()
        .expect("worker");
    println!("running a worker for topics {:?}", worker.topics());
    worker
        .run_until(ALL_DONE.notified())
        .await
        .expect("worker runs");
    println!(
        "all {JOBS} jobs ran in {:.2}s (the delayed one waited ~1s)",
        started.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}

/// `REDIS_URL` if it answers; else a private `redis-server` if one can be
/// started; else an explanation.
fn redis_url() -> Result<(String, Option<rmq_testkit::RedisServer>), String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if rmq_testkit::answers(&url) {
        println!("using Redis at {url}");
        return Ok((url, None));
    }
    match rmq_testkit::RedisServer::start() {
        Ok(server) => {
            println!(
                "nothing answers at {url}; started a private redis-server at {} (stopped on exit)",
                server.url()
            );
            Ok((server.url().to_owned(), Some(server)))
        }
        Err(_) => Err(format!(
            "nothing answers at {url} and redis-server is not on PATH: start Redis (e.g. `apt-get install redis-server`) or set REDIS_URL"
        )),
    }
}
