//! Fan-out events: one publish, one job per subscriber topic.
//!
//! An event type is declared once with `#[rmq::event]`; tasks in any crate
//! subscribe with `#[rmq::task(on = EventType)]` and take the event as their
//! payload. Subscriptions are collected at link time, like tasks.
//! Publishing encodes the event once and enqueues it on every subscriber's
//! topic, each job with its subscriber's retries, priority, ttl and
//! dead-letter queue, under the id `ev:<event id>`. A publish with an
//! explicit event id is idempotent: while a subscriber's job is queued,
//! delayed or running, its explicit id makes a second enqueue a duplicate;
//! once every subscriber has its job, a record of the event id
//! (`P:event:<event>:<id>`, kept a week) makes a later publish with that id
//! enqueue nothing, even after the jobs ran.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{codec, Client, Error, JobId, JobOptions, Task, TaskDescriptor};

/// What a task can subscribe to with `#[rmq::task(on = T)]`: an event type
/// declared with `#[rmq::event]`, or [`BatchOutcome`](crate::BatchOutcome)
/// for batch callbacks. The subscriber's payload is the value itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event: `on = ...` takes a type declared with `#[rmq::event]` (or `rmq::BatchOutcome` for a batch callback)",
    label = "not declared with `#[rmq::event]`"
)]
pub trait Trigger: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name subscriptions are matched by: `module::Type`.
    const NAME: &'static str;
}

/// An event type, declared with `#[rmq::event]`: published to every task
/// that subscribes to it.
pub trait Event: Trigger {
    /// What the runtime knows about the event type.
    fn descriptor() -> &'static EventDescriptor;
}

/// A task that subscribes to `Event` (`#[rmq::task(on = Event)]`); its
/// payload is the event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not subscribe to an event: declare its task with `#[rmq::task(on = ...)]` (a batch callback with `on = rmq::BatchOutcome`)",
    label = "not a task with `on = ...`"
)]
pub trait Subscriber: Task {
    /// What the task runs on.
    type Event: Trigger;

    /// The payload of a job that runs on `event`.
    fn from_event(event: Self::Event) -> Self;
}

/// An event type, as `#[rmq::event]` registers it.
#[derive(Debug)]
pub struct EventDescriptor {
    /// `module::Type`, the name subscriptions are matched by.
    pub name: &'static str,
    /// The type's name.
    pub type_name: &'static str,
    /// Fields as `(name, type)`, for listings (empty for enums and tuple
    /// structs).
    pub fields: &'static [(&'static str, &'static str)],
}

/// A link-time registration of one event type; `#[rmq::event]` submits
/// these.
#[derive(Debug)]
pub struct EventRegistration(pub &'static EventDescriptor);

inventory::collect!(EventRegistration);

/// A link-time subscription of a task to an event; `#[rmq::task(on = ..)]`
/// submits these.
#[derive(Debug)]
pub struct Subscription {
    /// The [`Trigger::NAME`] of what the task runs on.
    pub event: &'static str,
    /// The subscribing task.
    pub task: &'static TaskDescriptor,
}

impl Subscription {
    /// The subscription of `task`, the task of `S`, to what `S` runs on.
    pub const fn of<S: Subscriber>(task: &'static TaskDescriptor) -> Subscription {
        Subscription {
            event: <S::Event as Trigger>::NAME,
            task,
        }
    }
}

inventory::collect!(Subscription);

/// An event type and the tasks that subscribe to it.
#[derive(Debug)]
pub struct EventInfo {
    /// `module::Type`.
    pub name: &'static str,
    /// The registered type, when it was declared with `#[rmq::event]` in
    /// this binary (not for [`BatchOutcome`](crate::BatchOutcome)).
    pub descriptor: Option<&'static EventDescriptor>,
    /// The subscribers, sorted by topic.
    pub subscribers: Vec<&'static TaskDescriptor>,
}

/// Every event type linked into this binary, and everything tasks subscribe
/// to, with their subscribers; sorted by name.
pub fn events() -> &'static [EventInfo] {
    static EVENTS: OnceLock<Vec<EventInfo>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut by_name: BTreeMap<&'static str, EventInfo> = BTreeMap::new();
        for registration in inventory::iter::<EventRegistration>() {
            let descriptor = registration.0;
            by_name
                .entry(descriptor.name)
                .or_insert_with(|| EventInfo {
                    name: descriptor.name,
                    descriptor: None,
                    subscribers: Vec::new(),
                })
                .descriptor = Some(descriptor);
        }
        for subscription in inventory::iter::<Subscription>() {
            by_name
                .entry(subscription.event)
                .or_insert_with(|| EventInfo {
                    name: subscription.event,
                    descriptor: None,
                    subscribers: Vec::new(),
                })
                .subscribers
                .push(subscription.task);
        }
        let mut events: Vec<EventInfo> = by_name.into_values().collect();
        for event in &mut events {
            event.subscribers.sort_by_key(|task| task.topic);
            event.subscribers.dedup_by_key(|task| task.topic);
        }
        events
    })
}

/// The tasks linked into this binary that subscribe to `E`, sorted by topic.
pub fn subscribers<E: Trigger>() -> &'static [&'static TaskDescriptor] {
    events()
        .iter()
        .find(|event| event.name == E::NAME)
        .map_or(&[], |event| event.subscribers.as_slice())
}

/// The job id of event `event_id` on each subscriber's topic.
pub fn job_id(event_id: &str) -> JobId {
    JobId::new(format!("{JOB_ID_PREFIX}{event_id}"))
}

/// What a subscriber job's id starts with.
pub const JOB_ID_PREFIX: &str = "ev:";

/// Longest event id: the job id (`ev:` and the event id) fits the
/// envelope's 255 bytes.
pub const MAX_EVENT_ID_LEN: usize = 255 - JOB_ID_PREFIX.len();

/// An event with per-publish options, ready to publish. Made by the
/// `event_id` method that `#[rmq::event]` generates.
#[derive(Clone, Debug)]
#[must_use = "nothing is published until `.publish(&client)` is awaited"]
pub struct Publish<E> {
    event: E,
    id: Option<String>,
}

impl<E: Event> Publish<E> {
    /// Wraps an event; its id is generated at publish time.
    pub fn new(event: E) -> Self {
        Publish { event, id: None }
    }

    /// Publishes with the event id `id`: a second publish with the same id
    /// (after a timeout, say) enqueues nothing where the first one's job is
    /// queued, delayed or running, and nothing at all once the first one
    /// reached every subscriber (for a week, on Redis).
    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Enqueues one job per subscriber topic, concurrently (one script call
    /// per topic, on its own shard in a cluster); every subscriber is tried
    /// even if another fails, and the first error is returned. Publishing
    /// again with the same event id after an error is safe. With an
    /// explicit event id, one `EXISTS` before and one `SET` after.
    pub async fn publish(self, client: &Client) -> Result<Published, Error> {
        let explicit = self.id.is_some();
        let event_id = match self.id {
            Some(id) if id.is_empty() || id.len() > MAX_EVENT_ID_LEN => {
                return Err(Error::InvalidJobId {
                    id,
                    rule: "an event id must be 1 to 252 bytes long",
                })
            }
            Some(id) => id,
            None => new_id(),
        };
        let subscribers = subscribers::<E>();
        let record = client.broker().filter(|_| explicit);
        if let Some(broker) = record {
            if broker.event_published(E::NAME, &event_id).await? {
                let jobs = subscribers
                    .iter()
                    .map(|task| PublishedJob {
                        topic: task.topic,
                        id: job_id(&event_id),
                        new: false,
                    })
                    .collect();
                return Ok(Published { event_id, jobs });
            }
        }
        let payload = codec::encode(&self.event).map_err(|e| Error::Payload {
            topic: E::NAME.to_owned(),
            reason: e.to_string(),
        })?;
        let options = JobOptions {
            id: Some(job_id(&event_id)),
            ..JobOptions::default()
        };
        let calls = subscribers.iter().map(|task| {
            let payload = payload.clone();
            let options = &options;
            let event_id = &event_id;
            async move {
                client.check_size(task.topic, &payload)?;
                match client
                    .submit_encoded(task.topic, task, payload, options)
                    .await
                {
                    Ok(enqueued) => Ok(PublishedJob {
                        topic: task.topic,
                        new: enqueued.is_new(),
                        id: enqueued.into_id(),
                    }),
                    Err(Error::DuplicateJobId { .. }) => Ok(PublishedJob {
                        topic: task.topic,
                        new: false,
                        id: job_id(event_id),
                    }),
                    Err(error) => Err(error),
                }
            }
        });
        let results = futures_util::future::join_all(calls).await;
        let mut jobs = Vec::with_capacity(results.len());
        for result in results {
            jobs.push(result?);
        }
        if let Some(broker) = record {
            broker.record_event(E::NAME, &event_id).await?;
        }
        metrics::counter!(crate::telemetry::EVENTS_PUBLISHED, "event" => E::NAME).increment(1);
        tracing::debug!(event = E::NAME, id = %event_id, subscribers = jobs.len(), "event published");
        Ok(Published { event_id, jobs })
    }
}

/// What a publish did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The event id (given, or generated).
    pub event_id: String,
    /// One job per subscriber topic, sorted by topic.
    pub jobs: Vec<PublishedJob>,
}

impl Published {
    /// Jobs this publish enqueued (the others were there already).
    pub fn new_jobs(&self) -> usize {
        self.jobs.iter().filter(|job| job.new).count()
    }
}

/// The job of one subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedJob {
    /// The subscriber's topic.
    pub topic: &'static str,
    /// The job's id: `ev:<event id>`.
    pub id: JobId,
    /// Whether this publish enqueued it (false: a job with its id was
    /// queued, delayed or running already, or the event id was published
    /// before).
    pub new: bool,
}

/// A fresh id: milliseconds since the epoch and 64 random bits, in hex
/// (sortable by time, unique without coordination).
pub(crate) fn new_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{ms:011x}{:016x}", fastrand::u64(..))
}
