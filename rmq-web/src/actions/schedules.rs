//! `POST /schedules/pause`, `.../resume`, `.../trigger`: act on the cron
//! schedule the form's `topic` and `name` fields name. Pausing lets its
//! occurrences pass without runs on every worker; triggering enqueues one
//! run now, whatever its next fire time or pause.

use axum::extract::rejection::FormRejection;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::Response;
use rmq::broker::RunSpec;
use rmq::{CronClock, Error, Registry};
use serde::Deserialize;

use super::{refusal, Refusal};
use crate::layout::{respond, Ctx};
use crate::pages::schedules;

/// What a schedule button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Pause,
    Resume,
    Trigger,
}

impl Command {
    /// The last segment of its route and the stem of its button class.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Trigger => "trigger",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Command::Pause => "Pause",
            Command::Resume => "Resume",
            Command::Trigger => "Run now",
        }
    }

    pub(crate) fn confirm(self, topic: &str, name: &str) -> String {
        match self {
            Command::Pause => format!(
                "Pause schedule {name} of topic {topic}? Its occurrences pass without runs until it is resumed."
            ),
            Command::Resume => format!(
                "Resume schedule {name} of topic {topic}? It fires from its next occurrence on; missed ones stay missed."
            ),
            Command::Trigger => format!("Enqueue one run of schedule {name} of topic {topic} now?"),
        }
    }
}

/// The form of a schedule action.
#[derive(Deserialize)]
pub(crate) struct Fields {
    topic: String,
    name: String,
}

type Input = Result<Form<Fields>, FormRejection>;

/// `POST /schedules/pause`.
pub(crate) async fn pause(ctx: Ctx, fields: Input) -> Response {
    act(ctx, fields, Command::Pause).await
}

/// `POST /schedules/resume`.
pub(crate) async fn resume(ctx: Ctx, fields: Input) -> Response {
    act(ctx, fields, Command::Resume).await
}

/// `POST /schedules/trigger`.
pub(crate) async fn trigger(ctx: Ctx, fields: Input) -> Response {
    act(ctx, fields, Command::Trigger).await
}

async fn act(ctx: Ctx, fields: Input, command: Command) -> Response {
    let result = match fields {
        Ok(Form(fields)) => run(&ctx, &fields.topic, &fields.name, command).await,
        Err(e) => Err((StatusCode::BAD_REQUEST, e.body_text())),
    };
    if let Ok(message) = &result {
        tracing::info!(action = command.name(), result = %message, "schedule action from the dashboard");
    }
    super::reply(&ctx, result, |flash| async {
        let (table, failed) = schedules::live(&ctx).await;
        respond(schedules::render(&ctx, table, Some(flash)), failed)
    })
    .await
}

/// A schedule error (no such schedule) is a 404.
fn schedule_refusal(error: Error) -> Refusal {
    match error {
        Error::Schedule { .. } => (StatusCode::NOT_FOUND, error.to_string()),
        error => refusal(error),
    }
}

/// How a run of `topic` is enqueued: the linked task's policy, else the
/// configuration's defaults (as `worker cron trigger` does).
fn run_spec(ctx: &Ctx, topic: &str) -> RunSpec {
    let config = ctx.state.client.config();
    let policy = Registry::global()
        .ok()
        .and_then(|r| r.get(topic))
        .map(|d| d.policy)
        .unwrap_or_default();
    RunSpec {
        priority: policy.priority,
        ttl: policy.ttl.or(Some(config.message_ttl)),
        max_retries: policy.retries.unwrap_or(config.max_retries),
    }
}

async fn run(ctx: &Ctx, topic: &str, name: &str, command: Command) -> Result<String, Refusal> {
    let broker = ctx
        .state
        .broker()
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
    Ok(match command {
        Command::Pause => {
            if broker
                .pause_schedule(topic, name)
                .await
                .map_err(schedule_refusal)?
            {
                format!("paused schedule {name} of topic {topic}: its occurrences pass without runs until it is resumed")
            } else {
                format!("schedule {name} of topic {topic} was already paused")
            }
        }
        Command::Resume => {
            if broker
                .resume_schedule(topic, name)
                .await
                .map_err(schedule_refusal)?
            {
                format!("resumed schedule {name} of topic {topic}")
            } else {
                format!("schedule {name} of topic {topic} was not paused")
            }
        }
        Command::Trigger => {
            let id = broker
                .trigger_schedule(topic, name, &run_spec(ctx, topic), CronClock::SERVER)
                .await
                .map_err(schedule_refusal)?;
            format!("enqueued {id} on topic {topic} from schedule {name}")
        }
    })
}
