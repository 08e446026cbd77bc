//! The cron loop: fires the cron schedules of the topics this worker serves.
//!
//! Leaderless: every worker runs it, sleeps until the earliest next fire time
//! of its topics' schedules (server clock) and then ticks each due schedule
//! with one `lua/cron.lua` call. The call compares and sets the schedule's
//! next fire time and enqueues the occurrence in one atomic step, so
//! whichever worker comes first fires it and the others learn where it
//! moved. A worker that dies between ticks loses nothing: the next fire time
//! stays due until someone ticks it.
//!
//! At start, each served task with a `cron = ...` attribute has its
//! schedule (named after its topic) set to the attribute's definition; a
//! task schedule whose attribute is gone is removed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::dispatch::Backoff;
use super::{Shared, Topic};
use crate::broker::{RunSpec, ScheduleSpec};
use crate::Error;

/// Longest sleep between passes: a schedule added at run time by another
/// process (or a changed definition) is picked up within this.
const REFRESH: Duration = Duration::from_secs(30);

pub(super) async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut registered: Vec<bool> = shared
        .topics
        .iter()
        .map(|t| t.descriptor.policy.cron.is_none())
        .collect();
    // When each topic is next read: only a topic whose earliest schedule is
    // due (or whose refresh is) costs a round trip at a wake-up.
    let mut due_at: Vec<Instant> = shared.topics.iter().map(|_| Instant::now()).collect();
    let mut backoff = Backoff::default();
    loop {
        let mut failed = Vec::new();
        for (index, ((topic, registered), due_at)) in shared
            .topics
            .iter()
            .zip(registered.iter_mut())
            .zip(due_at.iter_mut())
            .enumerate()
        {
            if *due_at > Instant::now() {
                continue;
            }
            let result = async {
                if !*registered {
                    register(&shared, topic).await?;
                    *registered = true;
                }
                topic_pass(&shared, topic).await
            }
            .await;
            match result {
                Ok(next) => *due_at = Instant::now() + next,
                Err(error) => {
                    failed.push(index);
                    if shared.fatal.raise(&shared.config, &error) {
                        return;
                    }
                    tracing::warn!(%error, topic = %topic.name, "firing the topic's cron schedules failed; retrying");
                }
            }
        }
        let now = Instant::now();
        if failed.is_empty() {
            backoff.reset();
        } else {
            let retry = now + backoff.next();
            for index in failed {
                due_at[index] = retry;
            }
        }
        let wait = due_at
            .iter()
            .map(|at| at.saturating_duration_since(now))
            .min()
            .unwrap_or(REFRESH);
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sets the schedule of a task with a `cron = ...` attribute.
async fn register(shared: &Shared, topic: &Topic) -> Result<(), Error> {
    let Some(policy) = topic.descriptor.policy.cron else {
        return Ok(());
    };
    let payload =
        (topic.descriptor.encode_json)(policy.payload_json()).map_err(|reason| Error::Payload {
            topic: topic.name.clone(),
            reason,
        })?;
    let spec = ScheduleSpec {
        expression: policy.expression.to_owned(),
        tz: policy.tz.to_owned(),
        overlap: policy.overlap,
        catch_up: policy.catch_up,
        from_task: true,
    };
    let next = shared
        .broker
        .set_schedule(&topic.name, &topic.name, &spec, &payload, shared.cron_clock)
        .await?;
    tracing::info!(topic = %topic.name, expression = policy.expression, tz = policy.tz, next_ms = next, "cron schedule set");
    Ok(())
}

/// How the runs of `topic`'s schedules are enqueued.
fn run_spec(shared: &Shared, topic: &Topic) -> RunSpec {
    let policy = &topic.descriptor.policy;
    RunSpec {
        priority: policy.priority,
        ttl: policy.ttl.or(Some(shared.config.message_ttl)),
        max_retries: policy.retries.unwrap_or(shared.config.max_retries),
    }
}

/// Ticks every due schedule of `topic`; returns the time until the earliest
/// next fire time.
async fn topic_pass(shared: &Shared, topic: &Topic) -> Result<Duration, Error> {
    let schedules = shared.broker.schedules(&topic.name).await?;
    let mut wait = REFRESH;
    for schedule in schedules {
        if schedule.name == topic.name
            && topic.descriptor.policy.cron.is_none()
            && schedule.spec.as_ref().is_some_and(|s| s.from_task)
        {
            shared
                .broker
                .remove_schedule(&topic.name, &schedule.name)
                .await?;
            tracing::info!(topic = %topic.name, "removed the cron schedule of a task that no longer has a `cron` attribute");
            continue;
        }
        let run = run_spec(shared, topic);
        let fired = shared
            .broker
            .fire_due(&schedule, &run, shared.cron_clock)
            .await?;
        if let Some(next) = fired.wait {
            wait = wait.min(next);
        }
    }
    Ok(wait)
}
