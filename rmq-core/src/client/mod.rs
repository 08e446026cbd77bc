//! [`Client`]: enqueue jobs into Redis, or, in tests, into a fake that records
//! them or an inline runner that executes them at once.

mod batch;
mod by_id;
mod chain;
mod fake;
mod inline;

use std::sync::Arc;

use tracing::Instrument;

pub use fake::FakeJob;
pub use inline::{JobOutcome, Outcome};

use crate::broker::{Broker, EnqueueSpec, NewJob};
use crate::envelope::{FLAG_KEYED, FLAG_TRACE_CONTEXT};
use crate::telemetry::EnqueueCounters;
use crate::unique::{self, UniqueLock};
use crate::{
    codec, Config, Enqueued, Error, JobId, JobOptions, Task, TaskDescriptor, UniqueMode,
    DEFAULT_UNIQUE_TTL,
};
use std::time::Duration;

/// The handle producers enqueue through. Cheap to clone; clones share one
/// connection pool (or one fake store).
#[derive(Clone)]
pub struct Client {
    backend: Arc<Backend>,
    config: Arc<Config>,
    enqueued: Arc<EnqueueCounters>,
}

enum Backend {
    Redis(Broker),
    Fake(fake::FakeStore),
    Inline(inline::InlineRunner),
}

impl Client {
    /// Connects to Redis with `config` (checks the server version, AUTH and
    /// database selection at once).
    pub async fn connect(config: Config) -> Result<Client, Error> {
        config.validate()?;
        let broker = Broker::connect(&config).await?;
        Ok(Client {
            backend: Arc::new(Backend::Redis(broker)),
            config: Arc::new(config),
            enqueued: Arc::default(),
        })
    }

    /// Connects with [`Config::from_env`].
    pub async fn from_env() -> Result<Client, Error> {
        Client::connect(Config::from_env()?).await
    }

    /// A client that records enqueued jobs instead of sending them anywhere;
    /// read them back with [`Client::enqueued`]. Needs no Redis.
    pub fn fake() -> Client {
        Client::local(Backend::Fake(fake::FakeStore::default()))
    }

    /// A client that runs each job's handler at enqueue time, with the task's
    /// retries (without their delays), permanent errors and panic handling;
    /// [`Client::outcomes`] reports what happened. Needs no Redis.
    pub fn inline() -> Client {
        Client::local(Backend::Inline(inline::InlineRunner::default()))
    }

    fn local(backend: Backend) -> Client {
        Client {
            backend: Arc::new(backend),
            config: Arc::new(Config::default()),
            enqueued: Arc::default(),
        }
    }

    /// Registers shared state for handlers run by an inline client (the
    /// `State<T>` parameters of task functions).
    ///
    /// # Panics
    /// On a client that is not inline, or one that has been cloned already.
    pub fn with_state<T: Send + Sync + 'static>(mut self, value: T) -> Client {
        match Arc::get_mut(&mut self.backend) {
            Some(Backend::Inline(runner)) => runner.state.insert(value),
            _ => panic!("Client::with_state applies to a fresh Client::inline() only"),
        }
        self
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Redis engine behind this client, if it is Redis-backed.
    pub fn broker(&self) -> Option<&Broker> {
        match &*self.backend {
            Backend::Redis(broker) => Some(broker),
            _ => None,
        }
    }

    /// Enqueues one job with default options and returns its id (for a
    /// unique task, an [`Enqueued`] that says whether it was a duplicate).
    pub async fn enqueue<T: Task>(&self, task: T) -> Result<T::Receipt, Error> {
        self.enqueue_with(task, JobOptions::default()).await
    }

    /// Enqueues one job with `options`.
    pub async fn enqueue_with<T: Task>(
        &self,
        task: T,
        options: JobOptions,
    ) -> Result<T::Receipt, Error> {
        let enqueued = self.submit(task, options).await?;
        Ok(crate::task::FromEnqueued::from_enqueued(
            enqueued,
            T::descriptor().topic,
            self,
        ))
    }

    /// Enqueues one job with `options` and says what happened: a new job,
    /// or, for a unique job, a duplicate of the job holding its lock (or a
    /// debounced job that took this payload).
    pub async fn submit<T: Task>(&self, task: T, options: JobOptions) -> Result<Enqueued, Error> {
        let descriptor = T::descriptor();
        let payload = self.encode(descriptor, &task)?;
        self.submit_encoded(descriptor.topic, descriptor, payload, &options)
            .await
    }

    /// One job, unique or not.
    pub(crate) async fn submit_encoded(
        &self,
        topic: &str,
        descriptor: &'static TaskDescriptor,
        payload: Vec<u8>,
        options: &JobOptions,
    ) -> Result<Enqueued, Error> {
        match self.unique_lock(descriptor, options, &payload)? {
            Some(lock) => {
                self.enqueue_unique(topic, descriptor, payload, options, lock)
                    .await
            }
            None => {
                let mut ids = self
                    .enqueue_encoded(topic, descriptor, vec![payload], options)
                    .await?;
                Ok(Enqueued::New(ids.remove(0)))
            }
        }
    }

    /// Enqueues many jobs of one task, one round trip per 1,000 jobs
    /// (Redis), and returns their ids in order. A batch is not atomic: on an
    /// error, the chunks before the failing one are enqueued.
    pub async fn enqueue_many<T: Task>(
        &self,
        tasks: impl IntoIterator<Item = T>,
    ) -> Result<Vec<JobId>, Error> {
        let descriptor = T::descriptor();
        let payloads = tasks
            .into_iter()
            .map(|task| self.encode(descriptor, &task))
            .collect::<Result<Vec<_>, _>>()?;
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        if descriptor.policy.unique.is_some() {
            // One lock per job: one script call each, sent together.
            let options = JobOptions::default();
            let calls = payloads.into_iter().map(|payload| {
                self.submit_encoded(descriptor.topic, descriptor, payload, &options)
            });
            let done = futures_util::future::try_join_all(calls).await?;
            return Ok(done.into_iter().map(Enqueued::into_id).collect());
        }
        self.enqueue_encoded(
            descriptor.topic,
            descriptor,
            payloads,
            &JobOptions::default(),
        )
        .await
    }

    /// Enqueues a job given as JSON for `topic`, checked against the payload
    /// type of the task registered for it (the CLI's `enqueue`).
    pub async fn enqueue_json(
        &self,
        topic: &str,
        json: &str,
        options: &JobOptions,
    ) -> Result<JobId, Error> {
        self.submit_json(topic, json, options)
            .await
            .map(Enqueued::into_id)
    }

    /// [`Client::enqueue_json`], saying whether the job was a duplicate of a
    /// unique job.
    pub async fn submit_json(
        &self,
        topic: &str,
        json: &str,
        options: &JobOptions,
    ) -> Result<Enqueued, Error> {
        let registry = crate::Registry::global()?;
        let descriptor = registry
            .get(topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        let payload = (descriptor.encode_json)(json).map_err(|reason| Error::Payload {
            topic: topic.to_owned(),
            reason,
        })?;
        self.check_size(topic, &payload)?;
        self.submit_encoded(topic, descriptor, payload, options)
            .await
    }

    /// The unique lock a job of `descriptor` with `options` and `payload`
    /// takes, if any: the call's mode and time to live over the task's, the
    /// call's key over the one made of the payload.
    pub fn unique_lock(
        &self,
        descriptor: &TaskDescriptor,
        options: &JobOptions,
        payload: &[u8],
    ) -> Result<Option<UniqueLock>, Error> {
        let policy = descriptor.policy.unique;
        let (mode, ttl) = match (options.unique, policy) {
            (Some(unique), _) => (unique.mode, unique.ttl),
            (None, Some(policy)) => (policy.mode, policy.ttl),
            (None, None) if options.unique_key.is_some() => {
                (UniqueMode::UntilCompleted, DEFAULT_UNIQUE_TTL)
            }
            (None, None) => return Ok(None),
        };
        if ttl.is_zero() {
            return Err(Error::InvalidOption {
                option: "unique ttl",
                rule: "must be greater than zero".to_owned(),
            });
        }
        let key =
            match &options.unique_key {
                Some(key) if key.is_empty() => {
                    return Err(Error::InvalidOption {
                        option: "unique_key",
                        rule: "must not be empty".to_owned(),
                    })
                }
                Some(key) => unique::explicit_key(key),
                None => unique::payload_key(payload, policy.and_then(|p| p.fields)).map_err(
                    |reason| Error::Payload {
                        topic: descriptor.topic.to_owned(),
                        reason: format!("no unique key: {reason}"),
                    },
                )?,
            };
        // Window locks last exactly the window; the others from when the
        // job is due.
        let delay = self.unique_delay(mode, ttl, options);
        let ttl = match mode {
            UniqueMode::Window => ttl,
            _ => delay.saturating_add(ttl),
        };
        Ok(Some(UniqueLock { mode, key, ttl }))
    }

    /// The delay of a unique job: a debounced job waits its ttl unless the
    /// call gives a delay.
    fn unique_delay(&self, mode: UniqueMode, ttl: Duration, options: &JobOptions) -> Duration {
        match (mode, options.delay) {
            (_, Some(delay)) => delay,
            (UniqueMode::Debounce, None) => ttl,
            _ => Duration::ZERO,
        }
    }

    /// One unique job, through the backend.
    async fn enqueue_unique(
        &self,
        topic: &str,
        descriptor: &'static TaskDescriptor,
        payload: Vec<u8>,
        options: &JobOptions,
        lock: UniqueLock,
    ) -> Result<Enqueued, Error> {
        let mut spec = self.spec(descriptor, options);
        let unique_ttl = options
            .unique
            .map(|u| u.ttl)
            .or(descriptor.policy.unique.map(|p| p.ttl))
            .unwrap_or(DEFAULT_UNIQUE_TTL);
        spec.delay = self.unique_delay(lock.mode, unique_ttl, options);
        match &*self.backend {
            Backend::Redis(broker) => {
                let mut payload = payload;
                let mut traced = false;
                let span = crate::trace::propagator().map(|propagator| {
                    let span = propagator.send_span(topic, 1);
                    if let Some(context) = propagator.inject(&span) {
                        context.append_trailer(&mut payload);
                        traced = true;
                    }
                    span
                });
                let job = NewJob {
                    payload: &payload,
                    id: options.id.as_ref().map(JobId::as_str),
                };
                let call = broker.enqueue_unique(topic, &spec, job, traced, &lock);
                let enqueued = match span {
                    Some(span) => call.instrument(span).await,
                    None => call.await,
                }?;
                if enqueued.is_duplicate() {
                    metrics::counter!(crate::telemetry::JOBS_DUPLICATE, "topic" => topic.to_owned())
                        .increment(1);
                } else if enqueued.is_new() {
                    self.enqueued.add(topic, spec.priority, 1);
                }
                tracing::debug!(topic, id = %enqueued.id(), outcome = %enqueued, unique_key = %lock.key, "unique job enqueued");
                Ok(enqueued)
            }
            Backend::Fake(store) => store.record_unique(topic, payload, options, &spec, &lock),
            Backend::Inline(runner) => {
                runner
                    .run_unique(descriptor, payload, options, &spec, &self.config, &lock)
                    .await
            }
        }
    }

    /// Adds (or changes) the cron schedule `name` of `T`'s topic: at each
    /// occurrence of `spec` a worker serving the topic enqueues a run
    /// carrying `payload`. An unchanged definition keeps its next fire time;
    /// returns it (ms since the epoch, UTC). Redis only.
    pub async fn set_schedule<T: Task>(
        &self,
        name: &str,
        spec: &crate::broker::ScheduleSpec,
        payload: &T,
    ) -> Result<i64, Error> {
        let descriptor = T::descriptor();
        let payload = self.encode(descriptor, payload)?;
        let broker = self.broker().ok_or(Error::NotRedis("a cron schedule"))?;
        broker
            .set_schedule(
                descriptor.topic,
                name,
                spec,
                &payload,
                crate::CronClock::SERVER,
            )
            .await
    }

    /// Removes the cron schedule `name` of `T`'s topic; returns whether it
    /// existed. Redis only.
    pub async fn remove_schedule<T: Task>(&self, name: &str) -> Result<bool, Error> {
        let broker = self.broker().ok_or(Error::NotRedis("a cron schedule"))?;
        broker.remove_schedule(T::descriptor().topic, name).await
    }

    /// Runs the cron schedule `name` of `T`'s topic once, now (a task's
    /// `cron = ...` schedule is named after its topic). On Redis the run
    /// carries the schedule's payload; a fake client records, and an inline
    /// client runs, a job of `T` with the task's `cron_payload` (or an empty
    /// one), with the id `cron:<name>:now:0`.
    pub async fn trigger_schedule<T: Task>(&self, name: &str) -> Result<JobId, Error> {
        let descriptor = T::descriptor();
        let options = JobOptions::default();
        match &*self.backend {
            Backend::Redis(broker) => {
                let spec = self.spec(descriptor, &options);
                let run = crate::broker::RunSpec {
                    priority: spec.priority,
                    ttl: spec.ttl,
                    max_retries: spec.max_retries,
                };
                broker
                    .trigger_schedule(descriptor.topic, name, &run, crate::CronClock::SERVER)
                    .await
            }
            _ => {
                let json = descriptor.policy.cron.map_or("{}", |c| c.payload_json());
                let payload = (descriptor.encode_json)(json).map_err(|reason| Error::Payload {
                    topic: descriptor.topic.to_owned(),
                    reason,
                })?;
                let options = JobOptions {
                    id: Some(JobId::new(format!("cron:{name}:now:0"))),
                    ..options
                };
                let mut ids = self
                    .enqueue_encoded(descriptor.topic, descriptor, vec![payload], &options)
                    .await?;
                Ok(ids.remove(0))
            }
        }
    }

    fn encode<T: Task>(&self, descriptor: &TaskDescriptor, task: &T) -> Result<Vec<u8>, Error> {
        let payload = codec::encode(task).map_err(|e| Error::Payload {
            topic: descriptor.topic.to_owned(),
            reason: e.to_string(),
        })?;
        self.check_size(descriptor.topic, &payload)?;
        Ok(payload)
    }

    pub(crate) fn check_size(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        let limit = self.config.max_payload_bytes;
        if payload.len() > limit {
            return Err(Error::PayloadTooLarge {
                topic: topic.to_owned(),
                size: payload.len(),
                limit,
            });
        }
        Ok(())
    }

    async fn enqueue_encoded(
        &self,
        topic: &str,
        descriptor: &'static TaskDescriptor,
        payloads: Vec<Vec<u8>>,
        options: &JobOptions,
    ) -> Result<Vec<JobId>, Error> {
        let spec = self.spec(descriptor, options);
        match &*self.backend {
            Backend::Redis(broker) => {
                let (payloads, keyed) = match descriptor.policy.rate_key {
                    Some(field) => (
                        payloads
                            .into_iter()
                            .map(|payload| keyed_payload(field, payload))
                            .collect(),
                        FLAG_KEYED,
                    ),
                    None => (payloads, 0),
                };
                let ids = match crate::trace::propagator() {
                    None => enqueue_redis(broker, topic, &spec, payloads, options, keyed).await,
                    Some(propagator) => {
                        let mut payloads = payloads;
                        let span = propagator.send_span(topic, payloads.len());
                        let flags = match propagator.inject(&span) {
                            Some(context) => {
                                for payload in &mut payloads {
                                    context.append_trailer(payload);
                                }
                                keyed | FLAG_TRACE_CONTEXT
                            }
                            None => keyed,
                        };
                        enqueue_redis(broker, topic, &spec, payloads, options, flags)
                            .instrument(span)
                            .await
                    }
                }?;
                self.enqueued.add(topic, spec.priority, ids.len());
                if tracing::enabled!(tracing::Level::DEBUG) {
                    for id in &ids {
                        tracing::debug!(topic, %id, priority = %spec.priority.as_str(), delay = ?spec.delay, "job enqueued");
                    }
                }
                Ok(ids)
            }
            Backend::Fake(store) => store.record(topic, payloads, options, &spec),
            Backend::Inline(runner) => {
                runner
                    .run(descriptor, payloads, options, &spec, &self.config)
                    .await
            }
        }
    }

    pub(crate) fn spec(&self, descriptor: &TaskDescriptor, options: &JobOptions) -> EnqueueSpec {
        let policy = &descriptor.policy;
        EnqueueSpec {
            priority: options.priority.unwrap_or(policy.priority),
            delay: options.delay.unwrap_or_default(),
            ttl: options.ttl.or(policy.ttl).or(Some(self.config.message_ttl)),
            max_retries: policy.retries.unwrap_or(self.config.max_retries),
            // A kept result's handle must also see the job die or be
            // cancelled: its status by id.
            index: policy.index || policy.keep_result.is_some(),
        }
    }

    /// The jobs of task `T` recorded by a fake client, in enqueue order.
    ///
    /// # Panics
    /// On a client that is not [`Client::fake`].
    pub fn enqueued<T: Task>(&self) -> Vec<T> {
        self.enqueued_jobs::<T>()
            .into_iter()
            .map(|job| job.payload)
            .collect()
    }

    /// The jobs of task `T` recorded by a fake client, with ids and options.
    ///
    /// # Panics
    /// On a client that is not [`Client::fake`].
    pub fn enqueued_jobs<T: Task>(&self) -> Vec<FakeJob<T>> {
        self.fake_store("enqueued_jobs").jobs::<T>()
    }

    /// How many jobs, of any task, a fake client has recorded.
    pub fn enqueued_count(&self) -> usize {
        self.fake_store("enqueued_count").len()
    }

    /// Forgets the jobs a fake client recorded, and their unique locks.
    pub fn clear_enqueued(&self) {
        self.fake_store("clear_enqueued").clear()
    }

    fn fake_store(&self, method: &str) -> &fake::FakeStore {
        match &*self.backend {
            Backend::Fake(store) => store,
            _ => panic!(
                "Client::{method} reads what a Client::fake() recorded; this client is not fake"
            ),
        }
    }

    /// What each job run by an inline client came to, in run order.
    ///
    /// # Panics
    /// On a client that is not [`Client::inline`].
    pub fn outcomes(&self) -> Vec<Outcome> {
        match &*self.backend {
            Backend::Inline(runner) => runner.outcomes(),
            _ => panic!(
                "Client::outcomes reports what a Client::inline() ran; this client is not inline"
            ),
        }
    }
}

/// `payload` with its fair-queueing key in front, as the enqueue script
/// reads it with [`FLAG_KEYED`]: the key's length, the key (the value of payload field `field`: a string as it is,
/// anything else as JSON; cut to 255 bytes).
pub(crate) fn keyed_payload(field: &str, payload: Vec<u8>) -> Vec<u8> {
    let key = fair_key(field, &payload);
    let key = &key.as_bytes()[..key.len().min(255)];
    let mut out = Vec::with_capacity(payload.len() + key.len() + 1);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&payload);
    out
}

/// The value of field `field` of an encoded payload (a MessagePack map), as
/// text; empty when there is no such field.
pub(crate) fn fair_key(field: &str, payload: &[u8]) -> String {
    let Ok(rmpv::Value::Map(entries)) = codec::decode::<rmpv::Value>(payload) else {
        return String::new();
    };
    let value = entries
        .into_iter()
        .find(|(name, _)| name.as_str() == Some(field))
        .map(|(_, value)| value);
    match value {
        Some(rmpv::Value::String(text)) => text.into_str().unwrap_or_default(),
        Some(rmpv::Value::Nil) | None => String::new(),
        Some(other) => serde_json::to_string(&other).unwrap_or_default(),
    }
}

/// Enqueues encoded payloads into Redis: a single job with a generated id
/// through the coalescer, anything else in batches. `flags` are envelope
/// flags: with [`FLAG_TRACE_CONTEXT`], every payload ends in a trace
/// context trailer; with [`FLAG_KEYED`], it starts with its fair-queueing
/// key.
async fn enqueue_redis(
    broker: &Broker,
    topic: &str,
    spec: &EnqueueSpec,
    payloads: Vec<Vec<u8>>,
    options: &JobOptions,
    flags: u8,
) -> Result<Vec<JobId>, Error> {
    if payloads.len() == 1 && options.id.is_none() {
        let payload = payloads.into_iter().next().unwrap_or_default();
        return Ok(vec![
            broker
                .enqueue_one_traced(topic, spec, payload, flags)
                .await?,
        ]);
    }
    let jobs: Vec<NewJob<'_>> = payloads
        .iter()
        .map(|payload| NewJob {
            payload,
            id: options.id.as_ref().map(JobId::as_str),
        })
        .collect();
    broker.enqueue_jobs(topic, spec, &jobs, flags).await
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.backend {
            Backend::Redis(_) => "redis",
            Backend::Fake(_) => "fake",
            Backend::Inline(_) => "inline",
        };
        f.debug_struct("Client").field("backend", &kind).finish()
    }
}
