//! `ps`, `quiet`, `stop`: live workers and commands to them, through Redis.

use std::time::{Duration, SystemTime};

use rmq::broker::{WorkerCommand, WorkerInfo};
use rmq::{Client, Error};

use crate::cli::PsArgs;

/// Most running jobs shown per worker in the table (`--json` has all).
const JOBS_SHOWN: usize = 3;

pub(crate) async fn ps(client: &Client, args: PsArgs) -> Result<(), Error> {
    let workers = super::broker(client).workers().await?;
    if args.json {
        let json = serde_json::to_string_pretty(&workers).expect("workers serialize");
        println!("{json}");
        return Ok(());
    }
    if workers.is_empty() {
        println!("no live worker (none has beaten within 3 heartbeat intervals)");
        return Ok(());
    }
    let now = rmq::envelope::millis(SystemTime::now());
    let rows: Vec<Vec<String>> = workers.iter().map(|w| row(w, now)).collect();
    super::print_table(
        &[
            "id", "host", "pid", "version", "state", "busy", "beat_s", "up_s", "topics", "jobs",
        ],
        &rows,
    );
    Ok(())
}

fn row(w: &WorkerInfo, now: u64) -> Vec<String> {
    let ago = |at: u64| Some(Duration::from_millis(now.saturating_sub(at)));
    let mut jobs: Vec<String> = w
        .jobs
        .iter()
        .take(JOBS_SHOWN)
        .map(|job| {
            format!(
                "{}/{}({}s)",
                job.topic,
                job.id,
                super::secs(ago(job.started_at_ms))
            )
        })
        .collect();
    if w.jobs.len() > JOBS_SHOWN {
        jobs.push(format!("+{}", w.jobs.len() - JOBS_SHOWN));
    }
    vec![
        w.id.clone(),
        w.host.clone(),
        w.pid.to_string(),
        w.version.clone(),
        w.state.to_string(),
        format!("{}/{}", w.busy, w.concurrency),
        super::secs(ago(w.last_beat_ms)),
        super::secs(ago(w.started_at_ms)),
        w.topics.join(","),
        if jobs.is_empty() {
            "-".to_owned()
        } else {
            jobs.join(",")
        },
    ]
}

pub(crate) async fn command(
    client: &Client,
    id: &str,
    command: WorkerCommand,
) -> Result<(), Error> {
    let broker = super::broker(client);
    broker.command_worker(id, command).await?;
    let interval = broker
        .workers()
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .map(|w| Duration::from_millis(w.beat_interval_ms));
    let when = interval.map_or_else(
        || "at its next heartbeat".to_owned(),
        |d| format!("at its next heartbeat (within {}s)", super::secs(Some(d))),
    );
    match command {
        WorkerCommand::Quiet => println!(
            "worker {id} goes quiet {when}: it finishes the jobs it holds and fetches no more"
        ),
        WorkerCommand::Stop => println!(
            "worker {id} stops {when}: running jobs finish within its shutdown_grace, then it exits"
        ),
    }
    Ok(())
}
