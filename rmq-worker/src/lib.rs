//! The rmq worker command line. A binary that links tasks becomes a worker
//! with admin commands in one line:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rmq_worker::main()
//! }
//! ```
//!
//! Commands: `run`, `tasks`, `stats`, `dlq list|show|retry|purge`,
//! `parse-errors list|show|retry|purge` (entries addressed by job id, or by
//! `@` digest when their bytes are not a job), `enqueue <topic> <json>` (`-`
//! reads the JSON from standard input, `@path` from a file), `ps` (live
//! workers from their heartbeats), `quiet <worker-id>` / `stop <worker-id>`
//! (sent through Redis, taken within one heartbeat), `health` (queue health
//! findings, for probes), `exporter` (queue-wide Prometheus metrics), `web`
//! (the dashboard of `rmq-web` and `/metrics`; cargo feature `web`);
//! `run --metrics-addr` serves the worker's own `/metrics` and `/healthz`;
//! `--help` on each. Options come from flags, then the environment
//! (`REDIS_URL`, `REDIS_PASSWORD`, `MQ_*`), then defaults.
//!
//! Exit codes: 0 success; 1 Redis unreachable or failing; 2 something to
//! change before trying again: bad usage or input (invalid configuration,
//! unknown topic, JSON that does not fit the payload type or cannot be read,
//! unknown job id or address, an entry that cannot be retried, an unknown
//! worker id), credentials, ACL permissions or TLS settings that Redis
//! refuses; 3 `health` found something wrong (no live worker for waiting
//! jobs, stuck, old pending or late delayed jobs, a backlog, dead-letter
//! growth: printed on standard output); 130 interrupted before connecting.
//!
//! Tasks defined in another crate must be linked: if `main.rs` never names
//! that crate, add `use my_tasks as _;`. `run` refuses to start with no tasks.

mod cli;
mod commands;
mod exporter;
mod http;
mod logging;

pub use exporter::{install as install_prometheus_recorder, Renderer};

use std::process::ExitCode;

use clap::Parser;
use rmq::WorkerBuilder;

/// Parses the command line, installs logging, runs the command and returns
/// its exit code: `Cli::new().main()`.
pub fn main() -> ExitCode {
    Cli::new().main()
}

type Configure = Box<dyn FnOnce(WorkerBuilder) -> WorkerBuilder + Send>;

/// The worker command line with a hook to configure the worker of `run`
/// (shared state for `State<T>` parameters, explicit task registration).
///
/// ```no_run
/// struct Db;
///
/// fn main() -> std::process::ExitCode {
///     rmq_worker::Cli::new()
///         .configure(|worker| worker.state(Db))
///         .main()
/// }
/// ```
#[must_use = "call `.main()` to run the command line"]
pub struct Cli {
    configure: Configure,
    layer: Option<logging::ExtraLayer>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli::new()
    }
}

impl Cli {
    /// The command line with an unconfigured worker.
    pub fn new() -> Cli {
        Cli {
            configure: Box::new(|builder| builder),
            layer: None,
        }
    }

    /// Adds a tracing layer beside the worker's log output, e.g. an
    /// OpenTelemetry layer that exports the job spans (with the `otel`
    /// feature of `rmq`: `rmq::otel::install()` plus
    /// `tracing_opentelemetry::layer().with_tracer(tracer)`). `RUST_LOG`
    /// filters it like the log lines.
    pub fn layer(
        self,
        layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    ) -> Cli {
        Cli {
            layer: Some(Box::new(layer)),
            ..self
        }
    }

    /// Adjusts the worker that `run` builds.
    pub fn configure(
        self,
        configure: impl FnOnce(WorkerBuilder) -> WorkerBuilder + Send + 'static,
    ) -> Cli {
        Cli {
            configure: Box::new(configure),
            ..self
        }
    }

    /// Parses the command line, installs logging, runs the command and
    /// returns its exit code.
    pub fn main(self) -> ExitCode {
        let args = cli::CommandLine::parse();
        logging::init(args.global.log_format, self.layer);
        let runtime = match args.global.threads {
            Some(1) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Some(threads) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build(),
            None => tokio::runtime::Runtime::new(),
        };
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(commands::execute(args, self.configure)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(commands::CliError::Rmq(error)) => {
                eprintln!("error: {error}");
                if let rmq::Error::UnknownTopic(_) = error {
                    eprintln!("{}", linked_topics());
                }
                ExitCode::from(exit_code(&error))
            }
            Err(error @ commands::CliError::Input(_)) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
            Err(commands::CliError::Unhealthy(_)) => ExitCode::from(3),
        }
    }
}

/// The hint after an unknown topic: the topics this binary can serve.
fn linked_topics() -> String {
    let topics: Vec<&str> = rmq::Registry::global()
        .map(|registry| registry.topics().collect())
        .unwrap_or_default();
    if topics.is_empty() {
        "hint: this binary links no tasks (see `tasks`)".to_owned()
    } else {
        format!(
            "hint: the tasks linked into this binary serve: {}",
            topics.join(", ")
        )
    }
}

/// 1 for Redis trouble, 2 for anything the user must change (input,
/// configuration, credentials, permissions, TLS).
fn exit_code(error: &rmq::Error) -> u8 {
    if error.is_transient() {
        return 1;
    }
    match error {
        rmq::Error::Redis { .. } | rmq::Error::RedisVersion { .. } => 1,
        _ => 2,
    }
}
