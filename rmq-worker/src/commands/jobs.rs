//! `job`, `cancel`, `chain`: one job by id (indexed jobs: explicit ids,
//! tasks with `index = true` or `keep_result`, or `MQ_INDEX_JOBS`), with
//! its kept result; a chain's steps.

use std::time::{SystemTime, UNIX_EPOCH};

use rmq::broker::{parse_chain_step_id, ChainState, StepState};
use rmq::{Cancelled, Client, Error, JobResult, JobState};

use super::{payload_json, timestamp};

/// Why a job may not be found by id.
const NOT_INDEXED: &str = "the job completed (and keeps no result, or its result expired), was dropped, or is not indexed: only jobs with an explicit id, of tasks with `index = true` or `keep_result`, or enqueued with MQ_INDEX_JOBS=true are found by id";

/// Prints where job `id` is, its header and its payload as JSON; for a
/// completed job, its kept result.
pub(crate) async fn show(client: &Client, topic: &str, id: &str) -> Result<(), Error> {
    super::known_topic(super::broker(client), topic).await?;
    if let Some((chain, step)) = parse_chain_step_id(id) {
        println!("chain:       {chain}, step {step} (`chain {chain}` shows every step)");
    }
    let status = client.status(topic, id).await?;
    if status.is_none() {
        if let JobResult::Completed(result) = client.job_result(topic, id).await? {
            println!("job:         {id}");
            println!("topic:       {topic}");
            println!("state:       completed");
            println!("result:\n{}", payload_json(&result));
            return Ok(());
        }
    }
    let Some(status) = status else {
        eprintln!("{NOT_INDEXED}; `search --id {id}` scans every state for the others");
        return Err(Error::JobNotFound {
            topic: topic.to_owned(),
            id: id.to_owned(),
            place: "status index",
        });
    };
    println!("job:         {}", status.id);
    println!("topic:       {}", status.topic);
    println!("state:       {}", status.state.name());
    for (name, value) in details(&status.state) {
        println!("{name:<12} {value}");
    }
    println!(
        "attempt:     {} of {}",
        status.attempt,
        status.max_retries + 1
    );
    println!("priority:    {}", status.priority);
    println!("enqueued at: {}", time(status.enqueued_at));
    if let Some(error) = &status.last_error {
        println!("last error:  {error}");
    }
    println!("payload:\n{}", payload_json(&status.payload));
    Ok(())
}

/// The state's own fields, as (label, value).
fn details(state: &JobState) -> Vec<(&'static str, String)> {
    match state {
        JobState::Pending { position, .. } => vec![(
            "position:",
            position.map_or_else(|| "past the first 10,000".to_owned(), |p| p.to_string()),
        )],
        JobState::Delayed { due } => vec![("due at:", time(*due))],
        JobState::Retrying { due, error, .. } => {
            vec![("retry at:", time(*due)), ("failed with:", error.clone())]
        }
        JobState::Processing {
            deadline,
            worker,
            cancel_requested,
        } => {
            let mut rows = vec![
                ("worker:", worker.clone().unwrap_or_else(|| "-".to_owned())),
                ("lease until:", time(*deadline)),
            ];
            if *cancel_requested {
                rows.push(("cancel:", "requested".to_owned()));
            }
            rows
        }
        JobState::Dead { error, at } => vec![("died at:", time(*at)), ("error:", error.clone())],
        JobState::Cancelled { at } => vec![("cancelled:", time(*at))],
        JobState::ParseError { error, at } => {
            vec![("found at:", time(*at)), ("error:", error.clone())]
        }
    }
}

fn time(at: SystemTime) -> String {
    timestamp(
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

/// Prints chain `id`: where it stands and each step's job and state.
pub(crate) async fn chain(client: &Client, id: &str) -> Result<(), Error> {
    let status = client.chain_status(id).await?;
    let state = match &status.state {
        ChainState::Running { step } => format!("running (step {step} is due)"),
        ChainState::Completed => "completed".to_owned(),
        ChainState::Stopped { step, reason } => format!("stopped at step {step}: {reason}"),
    };
    println!("chain:       {}", status.id);
    println!("state:       {state}");
    println!("{:<5} {:<20} {:<28} state", "step", "topic", "job");
    for (i, step) in status.steps.iter().enumerate() {
        let state = match &step.state {
            StepState::Waiting => "waiting".to_owned(),
            StepState::Running(state) => state.name().to_owned(),
            StepState::Completed => "completed".to_owned(),
            StepState::Dead { error } => format!("dead: {error}"),
            StepState::Cancelled => "cancelled".to_owned(),
            StepState::Unknown => {
                "unknown (being enqueued, or gone from the dead-letter queue)".to_owned()
            }
        };
        println!("{i:<5} {:<20} {:<28} {state}", step.topic, step.id);
    }
    Ok(())
}

/// Cancels job `id` and says what became of it.
pub(crate) async fn cancel(client: &Client, topic: &str, id: &str) -> Result<(), Error> {
    super::known_topic(super::broker(client), topic).await?;
    match client.cancel(topic, id).await? {
        Cancelled::Removed => println!("cancelled job {id} of `{topic}`: it will not run"),
        Cancelled::Signalled => println!(
            "job {id} of `{topic}` is running: its worker cancels it at the next lease renewal, and it will not be retried"
        ),
        Cancelled::AlreadySignalled => {
            println!("job {id} of `{topic}` is running and was already asked to cancel")
        }
        Cancelled::AlreadyEnded => println!(
            "job {id} of `{topic}` had ended already (dead, cancelled or a parse error); see `job {topic} {id}`"
        ),
        Cancelled::NotFound => {
            eprintln!("{NOT_INDEXED}; a running job is found either way");
            return Err(Error::JobNotFound {
                topic: topic.to_owned(),
                id: id.to_owned(),
                place: "status index or among the running jobs",
            });
        }
    }
    Ok(())
}
