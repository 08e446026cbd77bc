//! `job`, `cancel`: one job by id (indexed jobs: explicit ids, tasks with
//! `index = true`, or `MQ_INDEX_JOBS`).

use std::time::{SystemTime, UNIX_EPOCH};

use rmq::{Cancelled, Client, Error, JobState};

use super::{payload_json, timestamp};

/// Why a job may not be found by id.
const NOT_INDEXED: &str = "the job completed, was dropped, or is not indexed: only jobs with an explicit id, of tasks with `index = true`, or enqueued with MQ_INDEX_JOBS=true are found by id";

/// Prints where job `id` is, its header and its payload as JSON.
pub(crate) async fn show(client: &Client, topic: &str, id: &str) -> Result<(), Error> {
    super::known_topic(super::broker(client), topic).await?;
    let Some(status) = client.status(topic, id).await? else {
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
