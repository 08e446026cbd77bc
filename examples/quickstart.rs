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
    let (client, _server) = match connect().await {
        Ok(found) => found,
        Err(message) => {
            eprintln!("quickstart: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };

    println!("enqueueing {JOBS} jobs");
    HandleOrder {
        order_id: "ORD_1".into(),
        amount: 99.9,
    }
    .priority(Priority::Low)
    .enqueue(&client)
    .await
    .expect("enqueue");
    HandleOrder {
        order_id: "ORD_2".into(),
        amount: 12.5,
    }
    .enqueue(&client)
    .await
    .expect("enqueue");
    HandleOrder {
        order_id: "ORD_VIP".into(),
        amount: 1200.0,
    }
    .priority(Priority::High)
    .enqueue(&client)
    .await
    .expect("enqueue");
    SendEmail {
        to: "ada@example.com".into(),
        subject: "Welcome".into(),
    }
    .enqueue(&client)
    .await
    .expect("enqueue");
    SendEmail {
        to: "ada@example.com".into(),
        subject: "One second later".into(),
    }
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

/// A client for `REDIS_URL` if Redis answers there; else for a private
/// `redis-server` if one can be started; else an explanation.
async fn connect() -> Result<(Client, Option<rmq_testkit::RedisServer>), String> {
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    // A namespace of its own, so the quickstart never touches other data
    // (and leaves only its counters behind).
    config.queue_prefix = "rmq-quickstart".to_owned();
    match Client::connect(config.clone()).await {
        Ok(client) => {
            println!("using Redis at {}", config.redis_url);
            Ok((client, None))
        }
        Err(rmq::Error::Connect { .. }) => {
            let server = rmq_testkit::RedisServer::try_with(Default::default()).map_err(|_| {
                format!(
                    "nothing answers at {} and redis-server could not be started: install Redis (e.g. `apt-get install redis-server`) or set REDIS_URL",
                    config.redis_url
                )
            })?;
            println!(
                "nothing answers at {}; started a private redis-server at {} (stopped on exit)",
                config.redis_url,
                server.url()
            );
            config.redis_url = server.url();
            let client = Client::connect(config).await.map_err(|e| e.to_string())?;
            Ok((client, Some(server)))
        }
        Err(error) => Err(error.to_string()),
    }
}
