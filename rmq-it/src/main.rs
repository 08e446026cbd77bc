//! A worker with the test tasks of `rmq-it` linked in, recording into the
//! Redis named by `REDIS_URL`.

fn main() -> std::process::ExitCode {
    rmq_worker::Cli::new()
        .configure(|worker| worker.state(rmq_it::Recorder::from_env()))
        .main()
}
