//! Cron schedules (`lua/cron.lua`): kept per topic in the hash
//! `{P:T}:cron`, on the topic's slot, so one script call compares and sets a
//! schedule's next fire time *and* enqueues the occurrence's job, atomically.
//! Any number of workers may tick a schedule; for each occurrence exactly one
//! call finds the next fire time it expects and moves it on, the others are
//! told where it moved. The occurrence's job id `cron:<name>:<utc-ms>` is an
//! explicit id, so the topic's id set guards it a second time.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Value;

use super::{ms, Broker};
use crate::cron::{check_name, CatchUp, CronClock, Expression, Overlap, ON_TIME_GRACE};
use crate::{scripts, Error, JobId, Priority};

/// The definition of a schedule: when it fires and what it does when runs
/// overlap or were missed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleSpec {
    /// The cron expression (5 fields, or 6 with seconds first).
    pub expression: String,
    /// The IANA time zone the expression is read in.
    pub tz: String,
    /// What an occurrence does while the previous run is queued or running.
    #[serde(with = "overlap_text")]
    pub overlap: Overlap,
    /// Which missed occurrences fire after a downtime.
    #[serde(with = "catch_up_text")]
    pub catch_up: CatchUp,
    /// Whether a task's `cron = ...` attribute made it (workers keep such a
    /// schedule in step with the attribute, and remove it when the attribute
    /// goes), rather than [`Broker::set_schedule`].
    #[serde(default)]
    pub from_task: bool,
}

mod overlap_text {
    use crate::cron::Overlap;

    pub(super) fn serialize<S: serde::Serializer>(v: &Overlap, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Overlap, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

mod catch_up_text {
    use crate::cron::CatchUp;

    pub(super) fn serialize<S: serde::Serializer>(v: &CatchUp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CatchUp, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ScheduleSpec {
    /// A schedule of `expression` in `tz`, with the default policies (skip
    /// overlapping runs, catch up one missed occurrence).
    pub fn new(expression: impl Into<String>, tz: impl Into<String>) -> ScheduleSpec {
        ScheduleSpec {
            expression: expression.into(),
            tz: tz.into(),
            overlap: Overlap::default(),
            catch_up: CatchUp::default(),
            from_task: false,
        }
    }

    /// The parsed expression.
    pub fn parse(&self) -> Result<Expression, String> {
        Expression::parse(&self.expression, &self.tz)
    }
}

/// A schedule as stored, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// The topic its runs go to.
    pub topic: String,
    /// Its name (a task's schedule is named after its topic).
    pub name: String,
    /// Its definition; `None` when the stored one does not decode.
    pub spec: Option<ScheduleSpec>,
    /// The next fire instant (ms, UTC, schedule clock).
    pub next_ms: Option<i64>,
    /// The instant of the last run enqueued.
    pub last_ms: Option<i64>,
    /// The job id of the last run enqueued.
    pub last_id: Option<String>,
    /// Whether it is paused.
    pub paused: bool,
    /// The payload its runs carry.
    pub payload: Vec<u8>,
}

/// How a tick went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// The schedule moved on to `next`; `fired` runs were enqueued and
    /// `skipped` due occurrences were not (paused, overlapping, missed).
    Fired {
        /// The new next fire instant.
        next: i64,
        /// Runs enqueued.
        fired: u32,
        /// Due occurrences that were not enqueued.
        skipped: u32,
    },
    /// Not due yet.
    Wait {
        /// The next fire instant, unchanged.
        next: i64,
    },
    /// Another worker (or a changed definition) moved the next fire time.
    Moved {
        /// Where it is now.
        next: i64,
    },
    /// The schedule was removed.
    Gone,
}

/// How the runs of a schedule are enqueued: the task's priority, ttl and
/// retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSpec {
    /// Priority list of the runs.
    pub priority: Priority,
    /// Time to live of a run; `None` never expires.
    pub ttl: Option<Duration>,
    /// Retries after the first attempt (at most 255).
    pub max_retries: u32,
}

/// What [`Broker::fire_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    /// Runs this call enqueued.
    pub fired: u32,
    /// Due occurrences this call passed without a run.
    pub skipped: u32,
    /// Time until the schedule's next fire time (`None`: it never fires
    /// again, or its definition cannot be read).
    pub wait: Option<Duration>,
}

/// Shortest wait after a tick that found its schedule not due yet (the
/// server clock estimate runs a little early).
const MIN_WAIT: Duration = Duration::from_millis(2);

fn until(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn schedule_error(topic: &str, name: &str, reason: impl Into<String>) -> Error {
    Error::Schedule {
        topic: topic.to_owned(),
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

impl Broker {
    /// The server clock as last seen, in ms (an estimate that errs early).
    pub fn server_now_ms(&self) -> i64 {
        i64::try_from(self.inner.clock.now_ms()).unwrap_or(i64::MAX)
    }

    /// Adds schedule `name` to `topic`, or changes it: its runs carry
    /// `payload` (the encoded payload of the topic's task). A new or changed
    /// definition fires first at its first occurrence after now (on
    /// `clock`); an unchanged one keeps its next fire time. Returns it.
    pub async fn set_schedule(
        &self,
        topic: &str,
        name: &str,
        spec: &ScheduleSpec,
        payload: &[u8],
        clock: CronClock,
    ) -> Result<i64, Error> {
        check_name(name).map_err(|r| schedule_error(topic, name, r))?;
        let expression = spec.parse().map_err(|r| schedule_error(topic, name, r))?;
        let now = self.server_now_ms() + clock.offset_ms;
        let next = expression.next_after(now).ok_or_else(|| {
            schedule_error(topic, name, "the expression has no occurrence after now")
        })?;
        let json =
            serde_json::to_string(spec).map_err(|e| schedule_error(topic, name, e.to_string()))?;
        let mut invocation = scripts::CRON.prepare_invoke();
        self.cron_keys(&mut invocation, topic, Priority::Normal);
        invocation
            .arg("set")
            .arg(name)
            .arg(json)
            .arg(payload)
            .arg(next);
        let kept: String = self.run("setting a cron schedule", &invocation).await?;
        kept.parse().map_err(|_| Error::Corrupt {
            op: "setting a cron schedule",
            detail: format!("next fire time `{kept}` is not an integer"),
        })
    }

    /// Removes schedule `name` of `topic`; returns whether it existed. Runs
    /// already enqueued stay.
    pub async fn remove_schedule(&self, topic: &str, name: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&self.keys(topic).cron).arg(name);
        for suffix in crate::cron::FIELD_SUFFIXES {
            cmd.arg(format!("{name}{suffix}"));
        }
        let removed: u64 = self.cmd("removing a cron schedule", &cmd).await?;
        Ok(removed > 0)
    }

    /// Pauses schedule `name` of `topic` on every worker: its occurrences
    /// pass without runs until [`Broker::resume_schedule`]. Returns whether
    /// it was running.
    pub async fn pause_schedule(&self, topic: &str, name: &str) -> Result<bool, Error> {
        self.require_schedule(topic, name).await?;
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(&self.keys(topic).cron)
            .arg(format!("{name}:paused"))
            .arg(1);
        let set: u64 = self.cmd("pausing a cron schedule", &cmd).await?;
        Ok(set == 1)
    }

    /// Resumes a paused schedule from its next occurrence on (missed ones
    /// stay missed); returns whether it was paused.
    pub async fn resume_schedule(&self, topic: &str, name: &str) -> Result<bool, Error> {
        self.require_schedule(topic, name).await?;
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&self.keys(topic).cron)
            .arg(format!("{name}:paused"));
        let removed: u64 = self.cmd("resuming a cron schedule", &cmd).await?;
        Ok(removed == 1)
    }

    async fn require_schedule(&self, topic: &str, name: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("HEXISTS");
        cmd.arg(&self.keys(topic).cron).arg(format!("{name}:spec"));
        let exists: bool = self.cmd("reading a cron schedule", &cmd).await?;
        if exists {
            Ok(())
        } else {
            Err(schedule_error(topic, name, "no such schedule"))
        }
    }

    /// The schedules of `topic`, by name.
    pub async fn schedules(&self, topic: &str) -> Result<Vec<ScheduleInfo>, Error> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&self.keys(topic).cron);
        let fields: BTreeMap<String, Vec<u8>> = self.cmd("listing cron schedules", &cmd).await?;
        let text = |key: &str| {
            fields
                .get(key)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let mut out = Vec::new();
        for (field, spec) in &fields {
            let Some(name) = field.strip_suffix(":spec") else {
                continue;
            };
            let number = |key: String| text(&key).and_then(|v| v.parse().ok());
            out.push(ScheduleInfo {
                topic: topic.to_owned(),
                name: name.to_owned(),
                spec: serde_json::from_slice(spec).ok(),
                next_ms: number(name.to_owned()),
                last_ms: number(format!("{name}:last")),
                last_id: text(&format!("{name}:last_id")),
                paused: fields.contains_key(&format!("{name}:paused")),
                payload: fields
                    .get(&format!("{name}:payload"))
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// One tick of schedule `name`: if its next fire time is still
    /// `expected` and due (Redis `TIME` plus the clock's offset), enqueues
    /// the occurrences its catch-up and overlap policies allow and moves the
    /// next fire time to the first future entry of `occurrences` (which
    /// starts at `expected`, see [`Expression::occurrences`]).
    pub async fn cron_tick(
        &self,
        topic: &str,
        name: &str,
        spec: &ScheduleSpec,
        run: &RunSpec,
        occurrences: &[i64],
        clock: CronClock,
    ) -> Result<Tick, Error> {
        let Some(&expected) = occurrences.first() else {
            return Err(schedule_error(topic, name, "no occurrence to tick"));
        };
        let (mode, bound) = match spec.catch_up {
            CatchUp::None => ("none", ms(ON_TIME_GRACE)),
            CatchUp::One => ("one", 0),
            CatchUp::All { within } => ("all", ms(within)),
        };
        let mut invocation = scripts::CRON.prepare_invoke();
        self.cron_keys(&mut invocation, topic, run.priority);
        invocation
            .arg("tick")
            .arg(name)
            .arg(expected)
            .arg(clock.offset_ms)
            .arg(run.priority.as_u8())
            .arg(run.ttl.map_or(0, ms))
            .arg(run.max_retries.min(255))
            .arg(spec.overlap.as_str())
            .arg(mode)
            .arg(bound);
        for at in occurrences {
            invocation.arg(*at);
        }
        let reply: Vec<Value> = self.run("ticking a cron schedule", &invocation).await?;
        let corrupt = || Error::Corrupt {
            op: "ticking a cron schedule",
            detail: format!("unexpected reply of the cron script: {reply:?}"),
        };
        let status = match reply.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => return Err(corrupt()),
        };
        let field = |i: usize| reply.get(i).and_then(int).ok_or_else(corrupt);
        if let Ok(server) = field(4) {
            self.inner.clock.observe(u64::try_from(server).unwrap_or(0));
        }
        let next = field(1)?;
        Ok(match status.as_str() {
            "fired" => Tick::Fired {
                next,
                fired: u32::try_from(field(2)?).unwrap_or(0),
                skipped: u32::try_from(field(3)?).unwrap_or(0),
            },
            "wait" => Tick::Wait { next },
            "moved" => Tick::Moved { next },
            "gone" => Tick::Gone,
            _ => return Err(corrupt()),
        })
    }

    /// Fires `schedule` (as read by [`Broker::schedules`]) if it is due:
    /// ticks it until its next fire time is in the future, following where
    /// other workers moved it. What the cron loop of every worker does.
    pub async fn fire_due(
        &self,
        schedule: &ScheduleInfo,
        run: &RunSpec,
        clock: CronClock,
    ) -> Result<Fired, Error> {
        let mut out = Fired::default();
        let (Some(spec), Some(mut next)) = (&schedule.spec, schedule.next_ms) else {
            return Ok(out);
        };
        let (topic, name) = (schedule.topic.as_str(), schedule.name.as_str());
        let expression = match spec.parse() {
            Ok(expression) => expression,
            Err(reason) => {
                tracing::warn!(topic, schedule = name, %reason, "cron schedule cannot be read; it does not fire");
                return Ok(out);
            }
        };
        loop {
            let now = self.server_now_ms() + clock.offset_ms;
            if next > now {
                out.wait = Some(until(next - now));
                return Ok(out);
            }
            let occurrences = expression.occurrences(next, now);
            if occurrences.len() < 2 {
                return Ok(out);
            }
            match self
                .cron_tick(topic, name, spec, run, &occurrences, clock)
                .await?
            {
                Tick::Fired {
                    next: moved,
                    fired,
                    skipped,
                } => {
                    if fired > 0 {
                        tracing::info!(
                            topic,
                            schedule = name,
                            occurrence_ms = next,
                            fired,
                            skipped,
                            next_ms = moved,
                            "cron schedule fired"
                        );
                    } else {
                        tracing::debug!(
                            topic,
                            schedule = name,
                            occurrence_ms = next,
                            skipped,
                            next_ms = moved,
                            "cron occurrences passed without a run"
                        );
                    }
                    out.fired += fired;
                    out.skipped += skipped;
                    next = moved;
                }
                Tick::Moved { next: moved } => next = moved,
                Tick::Wait { next: stored } => {
                    let now = self.server_now_ms() + clock.offset_ms;
                    out.wait = Some(until(stored - now).max(MIN_WAIT));
                    return Ok(out);
                }
                Tick::Gone => return Ok(out),
            }
        }
    }

    /// Enqueues one run of schedule `name` now, whatever its next fire time,
    /// pause and overlap policy; its id is `cron:<name>:now:<ms>`.
    pub async fn trigger_schedule(
        &self,
        topic: &str,
        name: &str,
        run: &RunSpec,
        clock: CronClock,
    ) -> Result<JobId, Error> {
        let mut invocation = scripts::CRON.prepare_invoke();
        self.cron_keys(&mut invocation, topic, run.priority);
        invocation
            .arg("trigger")
            .arg(name)
            .arg(clock.offset_ms)
            .arg(run.priority.as_u8())
            .arg(run.ttl.map_or(0, ms))
            .arg(run.max_retries.min(255));
        let reply: Option<String> = self.run("triggering a cron schedule", &invocation).await?;
        reply.map(JobId::new).ok_or_else(|| {
            schedule_error(
                topic,
                name,
                "no such schedule (or a run with its id is queued already)",
            )
        })
    }

    fn cron_keys(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        topic: &str,
        priority: Priority,
    ) {
        let keys = self.keys(topic);
        invocation
            .key(&keys.cron)
            .key(&keys.pending[usize::from(priority.as_u8())])
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.paused)
            .key(&keys.index);
    }
}
