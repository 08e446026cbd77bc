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
//! `enqueue <topic> <json>`; `--help` on each. Options come from flags, then
//! the environment (`REDIS_URL`, `REDIS_PASSWORD`, `MQ_*`), then defaults.
//!
//! Exit codes: 0 success; 1 Redis unreachable or failing; 2 bad usage or
//! input (invalid configuration, unknown topic, JSON that does not fit the
//! payload type, unknown job id); 130 interrupted before connecting.
//!
//! Tasks defined in another crate must be linked: if `main.rs` never names
//! that crate, add `use my_tasks as _;`. `run` refuses to start with no tasks.

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, installs logging, runs the command and returns
/// its exit code.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.global.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// 1 for Redis trouble, 2 for anything the user can fix in the input.
fn exit_code(error: &rmq::Error) -> u8 {
    match error {
        rmq::Error::Connect { .. }
        | rmq::Error::Redis { .. }
        | rmq::Error::Pool { .. }
        | rmq::Error::RedisVersion { .. } => 1,
        _ => 2,
    }
}
