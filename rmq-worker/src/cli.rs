//! Command-line arguments. Every connection option falls back to the
//! environment (`REDIS_URL`, `MQ_*`), then to the defaults.

use clap::{Args, Parser, Subcommand, ValueEnum};

use humantime::parse_duration;

/// A worker for the rmq tasks linked into this binary, with admin commands.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
pub(crate) struct CommandLine {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of every command.
#[derive(Args, Debug)]
pub(crate) struct Global {
    /// Redis URL, e.g. redis://:password@127.0.0.1:6379/0 [env: REDIS_URL]
    #[arg(long, global = true)]
    pub(crate) redis_url: Option<String>,
    /// Key namespace, to run several environments on one Redis [env: MQ_QUEUE_PREFIX]
    #[arg(long, global = true)]
    pub(crate) prefix: Option<String>,
    /// Async runtime threads (default: one per CPU). 1 runs everything on
    /// one thread: the fastest for I/O-bound handlers on small machines, but a
    /// handler that blocks then stalls the whole worker
    #[arg(long, global = true, env = "MQ_RUNTIME_THREADS")]
    pub(crate) threads: Option<usize>,
    /// Log output: readable (colored on a terminal) or JSON lines. Level from RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub(crate) log_format: LogFormat,
}

/// How logs are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines, colored when standard error is a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the worker until SIGINT or SIGTERM.
    Run(RunArgs),
    /// List the tasks linked into this binary with their policies.
    Tasks,
    /// List the event types linked into this binary and the tasks (topics)
    /// that subscribe to each.
    Events,
    /// Show a batch's progress: children finished (succeeded, dead,
    /// cancelled) and pending, and whether its callback was enqueued.
    Batch {
        /// The batch id (returned by `Batch::enqueue`).
        id: String,
    },
    /// Queue depths and counters per topic.
    Stats(StatsArgs),
    /// Inspect and manage the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Inspect and manage the parse-error store (stored jobs that did not
    /// decode). Entries are addressed by job id, or by `@` digest when their
    /// bytes are not a job.
    #[command(subcommand)]
    ParseErrors(ParseErrorsCommand),
    /// Enqueue a job given as JSON, checked against the task's payload type.
    Enqueue(EnqueueArgs),
    /// Live workers (from their heartbeats): host, pid, state, topics and
    /// the jobs they run now.
    Ps(PsArgs),
    /// Tell a live worker (any host) to finish the jobs it holds and fetch
    /// no more; it stays alive, listed as `quiet`. Takes effect at its next
    /// heartbeat.
    Quiet {
        /// The worker's id (see `ps`).
        id: String,
    },
    /// Tell a live worker (any host) to shut down gracefully, as on
    /// SIGTERM; its `run` exits 0. Takes effect at its next heartbeat.
    Stop {
        /// The worker's id (see `ps`).
        id: String,
    },
    /// Pause a topic on every worker (any host): its jobs stay queued and
    /// none is leased until `resume`; running jobs finish. Atomic with
    /// fetching: no worker leases a job of the topic after this returns.
    Pause {
        /// The topic.
        topic: String,
    },
    /// Resume a paused topic: workers lease its jobs again at once.
    Resume {
        /// The topic.
        topic: String,
    },
    /// Show where a job is (pending, delayed, retrying, processing, dead,
    /// cancelled), its attempts and payload, or its result once completed
    /// (tasks with `keep_result`). Finds indexed jobs: explicit ids, tasks
    /// with `index = true` or `keep_result`, or MQ_INDEX_JOBS=true.
    Job {
        /// The topic.
        topic: String,
        /// The job id.
        id: String,
    },
    /// Show a chain: whether it runs, completed or stopped (and why), and
    /// each step's topic, job id and state.
    Chain {
        /// The chain id.
        id: String,
    },
    /// Cancel a job: a queued one (indexed) never runs; a running one is
    /// cancelled through its lease renewal and never retried.
    Cancel {
        /// The topic.
        topic: String,
        /// The job id.
        id: String,
    },
    /// Find jobs by id, or by text in their payload (as JSON) or error,
    /// in every state of one topic or all; scans in bounded steps.
    Search(SearchArgs),
    /// Delete every job of a topic in one state (pending per priority,
    /// delayed, dead, parse_error); running jobs cannot be purged.
    Purge {
        /// The topic.
        topic: String,
        /// high, normal, low, delayed, dead or parse_error.
        state: rmq::broker::State,
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Unique jobs: list, show and clear the locks of a topic.
    #[command(subcommand)]
    Unique(UniqueCommand),
    /// Cron schedules: list them, run one now, pause or resume one on every
    /// worker.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Check queue health: print the findings and exit 3 when there are
    /// any (for cron and Kubernetes probes), 0 when healthy.
    Health(HealthArgs),
    /// Serve the queue-wide Prometheus metrics (depths, oldest job age,
    /// counters and handler times of every topic, read from Redis at each
    /// scrape): run one per Redis, however many workers run.
    Exporter(ExporterArgs),
    /// Serve the web dashboard (queues, throughput, workers, tasks, with
    /// quiet / stop) and the queue-wide /metrics. Loopback only unless
    /// auth is set: RMQ_WEB_TOKEN, or RMQ_WEB_USER and RMQ_WEB_PASSWORD.
    #[cfg(feature = "web")]
    Web(WebArgs),
}

#[cfg(feature = "web")]
#[derive(Args, Debug)]
pub(crate) struct WebArgs {
    /// Address of the dashboard
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub(crate) listen: std::net::SocketAddr,
    /// No actions: no buttons, and every action answers 403 [env: RMQ_WEB_READ_ONLY]
    #[arg(long)]
    pub(crate) read_only: bool,
}

#[derive(Args, Debug)]
pub(crate) struct SearchArgs {
    /// Text to find (case-insensitive), or the job id with --id.
    pub(crate) query: String,
    /// Search only this topic (default: every known topic).
    #[arg(short, long)]
    pub(crate) topic: Option<String>,
    /// Match the job id exactly instead of text.
    #[arg(long)]
    pub(crate) id: bool,
    /// Stop after this many matches.
    #[arg(short, long, default_value_t = 20)]
    pub(crate) limit: usize,
}

#[derive(Args, Debug)]
pub(crate) struct ExporterArgs {
    /// Address of the /metrics and /healthz endpoint
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub(crate) listen: std::net::SocketAddr,
    /// Topics to export besides those known to Redis (comma-separated)
    #[arg(short, long, value_delimiter = ',')]
    pub(crate) topics: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A threshold that can be switched off with `off`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Threshold<T>(pub(crate) Option<T>);

fn duration_threshold(raw: &str) -> Result<Threshold<std::time::Duration>, String> {
    if raw == "off" {
        return Ok(Threshold(None));
    }
    parse_duration(raw)
        .map(|d| Threshold(Some(d)))
        .map_err(|e| format!("{e} (a duration such as 30s, 5m, 1h, or `off`)"))
}

fn count_threshold(raw: &str) -> Result<Threshold<u64>, String> {
    if raw == "off" {
        return Ok(Threshold(None));
    }
    raw.parse()
        .map(|n| Threshold(Some(n)))
        .map_err(|_| format!("`{raw}` is not a non-negative integer or `off`"))
}

#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// Only these topics (default: every topic known to Redis and this binary)
    #[arg(short, long, value_delimiter = ',')]
    pub(crate) topics: Vec<String>,
    /// Stuck: jobs pending and no completion for this long
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub(crate) stuck_after: std::time::Duration,
    /// The oldest pending job waits longer than this (`off` to skip)
    #[arg(long, value_parser = duration_threshold, default_value = "10m")]
    pub(crate) max_age: Threshold<std::time::Duration>,
    /// A due delayed job is later than this (`off` to skip)
    #[arg(long, value_parser = duration_threshold, default_value = "1m")]
    pub(crate) max_late: Threshold<std::time::Duration>,
    /// More jobs pending in a topic than this (default `off`)
    #[arg(long, value_parser = count_threshold, default_value = "off")]
    pub(crate) max_pending: Threshold<u64>,
    /// More jobs dead-lettered within --dead-window than this (`off` to skip)
    #[arg(long, value_parser = count_threshold, default_value = "10")]
    pub(crate) max_dead: Threshold<u64>,
    /// The window of --max-dead, whole minutes, 1m to 1h
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub(crate) dead_window: std::time::Duration,
    /// Do not report topics whose jobs wait with no live worker
    #[arg(long)]
    pub(crate) allow_no_worker: bool,
    /// Print JSON (measurements and findings) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Handlers run at once [env: MQ_MAX_WORKERS]
    #[arg(short, long)]
    pub(crate) concurrency: Option<usize>,
    /// Serve only these topics (comma-separated; default: all linked tasks)
    #[arg(short, long, value_delimiter = ',')]
    pub(crate) topics: Vec<String>,
    /// Serve this worker's Prometheus metrics on /metrics and its health on
    /// /healthz at this address, e.g. 127.0.0.1:9464 [env: MQ_METRICS_ADDR]
    #[arg(long, env = "MQ_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Only these topics (default: every topic known to Redis and this binary)
    #[arg(short, long, value_delimiter = ',')]
    pub(crate) topics: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CronCommand {
    /// Every schedule (of one topic, or of every known topic): name, topic,
    /// expression, time zone, policies, next and last fire time, paused.
    List {
        /// Only this topic's schedules.
        topic: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue one run of a schedule now (whatever its next fire time, pause
    /// and overlap policy).
    Trigger {
        /// The topic.
        topic: String,
        /// The schedule (default: the topic's task schedule, named after the
        /// topic).
        name: Option<String>,
    },
    /// Pause a schedule on every worker: its occurrences pass without runs
    /// (and are not caught up) until `resume`.
    Pause {
        /// The topic.
        topic: String,
        /// The schedule (default: the one named after the topic).
        name: Option<String>,
    },
    /// Resume a paused schedule from its next occurrence on.
    Resume {
        /// The topic.
        topic: String,
        /// The schedule (default: the one named after the topic).
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum DlqCommand {
    /// List dead jobs of a topic, newest first.
    List {
        /// The topic.
        topic: String,
        /// How many to show.
        #[arg(short, long, default_value_t = 20)]
        limit: usize,
        /// How many of the newest to skip.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Show one dead job with its payload as JSON and its last error.
    Show {
        /// The topic.
        topic: String,
        /// The job id.
        id: String,
    },
    /// Re-enqueue dead jobs as new runs (starting again at attempt 1).
    Retry {
        /// The topic.
        topic: String,
        /// Job ids to retry (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Retry every dead job of the topic.
        #[arg(long)]
        all: bool,
    },
    /// Delete every dead job of a topic.
    Purge {
        /// The topic.
        topic: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ParseErrorsCommand {
    /// List parse-error entries of a topic, newest first, with their address.
    List {
        /// The topic.
        topic: String,
        /// How many to show.
        #[arg(short, long, default_value_t = 20)]
        limit: usize,
        /// How many of the newest to skip.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Show one entry: its error, time, size, a preview of its bytes and,
    /// when they are a job, its id and payload as JSON.
    Show {
        /// The topic.
        topic: String,
        /// The entry's address: its job id, or `@` and its digest (see `list`).
        address: String,
    },
    /// Re-enqueue entries whose bytes are a job (e.g. a payload that an older
    /// build could not decode) as new runs. Given addresses move all or none.
    Retry {
        /// The topic.
        topic: String,
        /// Addresses of the entries to retry (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        addresses: Vec<String>,
        /// Retry every entry of the topic whose bytes are a job.
        #[arg(long)]
        all: bool,
    },
    /// Delete every parse-error entry of a topic.
    Purge {
        /// The topic.
        topic: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct EnqueueArgs {
    /// The task's topic (see `tasks`).
    pub(crate) topic: String,
    /// The payload as a JSON object with the task's arguments; `-` reads it
    /// from standard input, `@path` from a file (for payloads over the
    /// 128 KiB an argument can hold).
    pub(crate) json: String,
    /// Run no earlier than this from now, e.g. 30s, 5m, 500ms, "1h 30m".
    #[arg(long, value_parser = parse_duration)]
    pub(crate) delay: Option<std::time::Duration>,
    /// Priority: high, normal or low (default: the task's).
    #[arg(long)]
    pub(crate) priority: Option<rmq::Priority>,
    /// Give up if not started within this time, e.g. 1h.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) ttl: Option<std::time::Duration>,
    /// Explicit job id (an id already queued or running is refused).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// The job's unique key instead of the one made of its payload (a
    /// job holding the key's lock makes this a duplicate).
    #[arg(long)]
    pub(crate) unique_key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum UniqueCommand {
    /// The locks held by a topic's jobs (modes released by a transition;
    /// window locks only expire and are not listed).
    List {
        /// The topic.
        topic: String,
    },
    /// Who holds the lock of a key, and for how long.
    Show(UniqueKeyArgs),
    /// Delete the lock of a key: the next enqueue makes a new job; the job
    /// holding it runs as before.
    Clear(UniqueKeyArgs),
}

#[derive(Args, Debug)]
pub(crate) struct UniqueKeyArgs {
    /// The topic.
    pub(crate) topic: String,
    /// The unique key as given per call (`unique_key`).
    #[arg(long, required_unless_present = "payload", conflicts_with = "payload")]
    pub(crate) key: Option<String>,
    /// A payload as JSON: its key as the task's `unique` policy makes it.
    #[arg(long)]
    pub(crate) payload: Option<String>,
}
