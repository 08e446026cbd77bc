//! A worker with the test tasks of `rmq-it` linked in, recording into the
//! Redis named by `REDIS_URL`. `RMQ_IT_CRON_OFFSET_MS` shifts the clock cron
//! schedules are computed on (see `tests/cron.rs`).

fn main() -> std::process::ExitCode {
    rmq_worker::Cli::new()
        .configure(|worker| {
            let offset_ms = std::env::var("RMQ_IT_CRON_OFFSET_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            worker
                .state(rmq_it::Recorder::from_env())
                .cron_clock(rmq::CronClock { offset_ms })
        })
        .main()
}
