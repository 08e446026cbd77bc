//! `rmq-bench`: measures rmq against a Redis server of its own (or one given
//! with `--redis-url`). Run with `--release`:
//!
//! ```text
//! cargo run --release -p rmq-bench -- --json bench.jsonl
//! ```

mod cluster;
mod dashboard;
mod procs;
mod redis_info;
mod report;
mod scenarios;
mod tasks;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use report::Record;
use scenarios::Setup;

/// Benchmark of rmq: enqueue, processing, latency, memory.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Use this Redis instead of starting a private one (it is FLUSHALLed).
    #[arg(long)]
    redis_url: Option<String>,
    /// Append one JSON object per scenario to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Jobs per throughput scenario.
    #[arg(long, default_value_t = 20_000)]
    n: u64,
    /// Handlers run at once by the worker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Jobs fetched ahead of free handlers.
    #[arg(long, default_value_t = 512)]
    queue_size: usize,
    /// Pooled Redis connections of the bench's client and worker.
    #[arg(long, global = true, default_value_t = 4)]
    pool: u32,
    /// Start a replica of the private Redis and make every enqueue and ack
    /// wait for it (`min_replicas_acked = 1`).
    #[arg(long, global = true)]
    replica: bool,
    /// Jobs per fetch/ack script call and per bulk enqueue.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Tokio worker threads of this process and of the worker process
    /// (1 = current-thread runtime).
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    /// Install the Prometheus recorder (as `worker run --metrics-addr`
    /// does) in this process and in the worker process, rendering it once a
    /// second, to measure what metrics cost.
    #[arg(long, global = true)]
    metrics: bool,
    /// Pending jobs of the dashboard scenario's topic.
    #[arg(long, default_value_t = 1_000_000)]
    dashboard_pending: u64,
    /// Dead-letters of the dashboard scenario's topic.
    #[arg(long, default_value_t = 100_000)]
    dashboard_dead: u64,
    /// Timed requests per page in the dashboard scenario.
    #[arg(long, default_value_t = 30)]
    requests: usize,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Scenarios to run (default: all): ping, enqueue, enqueue16, bulk,
    /// memory, memory_indexed (memory with every job in the status index),
    /// processing, processing_defaults (the seed's
    /// `task_queue_size`, whatever `--queue-size` says), processes (1, 2
    /// and 4 worker processes on one Redis), cluster (a 3-primary cluster,
    /// one topic and worker process per primary), pickup, delayed, backlog,
    /// dashboard (the web dashboard's pages over a topic with
    /// `--dashboard-pending` pending jobs and `--dashboard-dead` dead ones,
    /// `--requests` timed requests each).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: a worker process for the processing scenarios.
    #[command(hide = true)]
    WorkerProc {
        #[arg(long)]
        redis_url: String,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        concurrency: usize,
        #[arg(long)]
        queue_size: usize,
        #[arg(long)]
        batch: usize,
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

fn main() {
    let args = Args::parse();
    if args.metrics {
        let handle = rmq_worker::install_prometheus_recorder().unwrap_or_else(|e| {
            eprintln!("rmq-bench: {e}");
            std::process::exit(2)
        });
        // A scrape a second (more often than Prometheus would).
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            handle.run_upkeep();
            let _ = handle.render();
        });
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    runtime.expect("tokio runtime").block_on(run(args));
}

async fn run(args: Args) {
    if let Some(Command::WorkerProc {
        redis_url,
        count,
        concurrency,
        queue_size,
        batch,
        prefix,
    }) = args.command
    {
        let setup = Setup {
            url: redis_url,
            concurrency,
            queue_size,
            batch,
            threads: args.threads,
            pool: args.pool,
            replicas: u32::from(args.replica),
            prefix,
            metrics: args.metrics,
        };
        scenarios::worker_process(&setup, count).await;
        return;
    }

    let server;
    let url = match &args.redis_url {
        Some(url) => url.clone(),
        None => {
            server = rmq_testkit::RedisServer::try_with(Default::default()).unwrap_or_else(|e| {
                eprintln!("rmq-bench: {e} (install redis-server or pass --redis-url)");
                std::process::exit(2)
            });
            eprintln!("rmq-bench: private redis-server at {}", server.url());
            server.url()
        }
    };
    let replica = args.replica.then(|| {
        let port = url.rsplit(':').next().unwrap_or("6379").to_owned();
        let replica = rmq_testkit::RedisServer::with(rmq_testkit::Options {
            args: vec!["--replicaof".into(), "127.0.0.1".into(), port],
            ..Default::default()
        });
        eprintln!("rmq-bench: replica at {}", replica.url());
        replica
    });
    if replica.is_some() {
        wait_for_replica(&url).await;
    }
    let setup = Setup {
        url,
        concurrency: args.concurrency,
        queue_size: args.queue_size,
        batch: args.batch,
        threads: args.threads,
        pool: args.pool,
        replicas: u32::from(replica.is_some()),
        prefix: String::new(),
        metrics: args.metrics,
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let n = args.n;
    report::print_header();
    let mut all = Vec::new();
    macro_rules! scenario {
        ($name:literal, $key:expr, $run:expr) => {
            if wanted($name) {
                eprintln!("running {} ({} run(s))", $name, args.runs);
                let mut runs: Vec<Record> = Vec::new();
                for _ in 0..args.runs {
                    runs.push($run);
                }
                let record = median(runs, $key);
                report::print_row(&record);
                all.push(record);
            }
        };
    }
    scenario!("ping", per_s, scenarios::ping_awaited(&setup, n).await);
    scenario!(
        "enqueue",
        per_s,
        scenarios::enqueue_awaited(&setup, n, 1).await
    );
    scenario!(
        "enqueue16",
        per_s,
        scenarios::enqueue_awaited(&setup, n, 16).await
    );
    scenario!(
        "bulk",
        per_s,
        scenarios::enqueue_bulk(&setup, n * 5, setup.batch.max(100) * 10).await
    );
    scenario!(
        "memory",
        bytes,
        scenarios::memory(&setup, 100_000, false).await
    );
    scenario!(
        "memory_indexed",
        bytes,
        scenarios::memory(&setup, 100_000, true).await
    );
    scenario!(
        "processing",
        per_s,
        scenarios::processing(&setup, n * 5, 0).await
    );
    scenario!(
        "processing_defaults",
        per_s,
        scenarios::processing_defaults(&setup, n * 5).await
    );
    if wanted("processes") {
        for procs in [1, 2, 4] {
            eprintln!("running {procs} worker processes ({} run(s))", args.runs);
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                runs.push(scenarios::processing_procs(&setup, n * 5, procs).await);
            }
            let record = median(runs, per_s);
            report::print_row(&record);
            all.push(record);
        }
    }
    if wanted("cluster") {
        eprintln!(
            "running cluster ({} run(s)): starting a 3+3 cluster",
            args.runs
        );
        let cluster = rmq_testkit::Cluster::start();
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            runs.push(cluster::processing(&setup, &cluster, n * 5).await);
        }
        let record = median(runs, per_s);
        report::print_row(&record);
        all.push(record);
    }
    scenario!("pickup", p99, scenarios::pickup(&setup, 1000, 5).await);
    scenario!("delayed", p99, scenarios::delayed(&setup, 2000).await);
    if wanted("backlog") {
        for backlog in [1_000, 100_000, 1_000_000] {
            eprintln!("running backlog {backlog} ({} run(s))", args.runs);
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                runs.push(scenarios::processing(&setup, n * 5, backlog).await);
            }
            let record = median(runs, per_s);
            report::print_row(&record);
            all.push(record);
        }
    }
    if wanted("dashboard") {
        eprintln!(
            "running dashboard: {} pending, {} dead, {} requests per page",
            args.dashboard_pending, args.dashboard_dead, args.requests
        );
        let load = dashboard::Load {
            pending: args.dashboard_pending,
            dead: args.dashboard_dead,
            requests: args.requests,
        };
        for record in dashboard::run(&setup, load).await {
            report::print_row(&record);
            all.push(record);
        }
    }
    if let Some(path) = &args.json {
        if let Err(e) = report::append_json(path, &all) {
            eprintln!("rmq-bench: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

fn per_s(r: &Record) -> f64 {
    r.per_s.unwrap_or(0.0)
}

fn p99(r: &Record) -> f64 {
    r.p99_ms.unwrap_or(f64::MAX)
}

fn bytes(r: &Record) -> f64 {
    r.bytes_per_job.unwrap_or(0.0)
}

/// The run whose `key` is the median of `runs`.
fn median(mut runs: Vec<Record>, key: fn(&Record) -> f64) -> Record {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    runs.swap_remove(runs.len() / 2)
}

/// Waits until a replica of `url` acknowledges writes.
async fn wait_for_replica(url: &str) {
    let mut conn = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to the bench Redis");
    loop {
        let _: () = redis::cmd("SET")
            .arg("rmq-bench:probe")
            .arg(1)
            .query(&mut conn)
            .expect("SET");
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(100)
            .query(&mut conn)
            .expect("WAIT");
        if acked >= 1 {
            return;
        }
    }
}
