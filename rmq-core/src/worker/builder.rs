//! Configuring a [`Worker`]: which tasks, which topics, how many handlers at
//! once, and the shared state handlers receive.

use std::sync::Arc;

use super::{heartbeat::Lifecycle, held::Held, metrics::Metrics, Shared, Topic, Worker};
use crate::{Client, CronClock, Error, Registry, StateMap, Task, TaskDescriptor};

/// Builds a [`Worker`]; made by [`Worker::builder`].
#[must_use = "call `.build()` to get a worker"]
pub struct WorkerBuilder {
    client: Client,
    tasks: Vec<&'static TaskDescriptor>,
    topics: Option<Vec<String>>,
    concurrency: Option<usize>,
    state: StateMap,
    cron_clock: CronClock,
}

impl WorkerBuilder {
    pub(super) fn new(client: Client) -> Self {
        WorkerBuilder {
            client,
            tasks: Vec::new(),
            topics: None,
            concurrency: None,
            state: StateMap::default(),
            cron_clock: CronClock::SERVER,
        }
    }

    /// Registers task `T` explicitly. A worker given any task this way serves
    /// only the tasks given this way, not the link-time registry.
    pub fn task<T: Task>(mut self) -> Self {
        self.tasks.push(T::descriptor());
        self
    }

    /// Serves only these topics (default: every registered task's).
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Handlers run at once (default: the configuration's `max_workers`).
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.concurrency = Some(handlers);
        self
    }

    /// Shared state for handlers that take `State<T>`.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// The clock cron schedules are computed on (default: the Redis server
    /// clock). A shifted clock lets a test run schedules as if it were
    /// another date, a daylight-saving night say; due times still come from
    /// Redis `TIME`, shifted alike.
    pub fn cron_clock(mut self, clock: CronClock) -> Self {
        self.cron_clock = clock;
        self
    }

    /// Checks the set-up and builds the worker.
    pub fn build(self) -> Result<Worker, Error> {
        let broker = self
            .client
            .broker()
            .ok_or(Error::NotRedis("a worker"))?
            .clone();
        let mut config = self.client.config().clone();
        if let Some(handlers) = self.concurrency {
            config.max_workers = handlers;
        }
        config.validate()?;

        let explicit;
        let registry = if self.tasks.is_empty() {
            Registry::global()?
        } else {
            explicit = Registry::from_descriptors(self.tasks)?;
            &explicit
        };
        if registry.is_empty() {
            return Err(Error::NoTasks);
        }
        let selected: Vec<&'static TaskDescriptor> = match &self.topics {
            None => registry.tasks().collect(),
            Some(topics) => topics
                .iter()
                .map(|t| {
                    registry
                        .get(t)
                        .ok_or_else(|| Error::UnknownTopic(t.clone()))
                })
                .collect::<Result<_, _>>()?,
        };
        if selected.is_empty() {
            return Err(Error::Config {
                option: "topics",
                rule: "must name at least one topic; the list is empty".to_owned(),
            });
        }
        for descriptor in &selected {
            if let Some(cron) = descriptor.policy.cron {
                (descriptor.encode_json)(cron.payload_json()).map_err(|reason| Error::Payload {
                    topic: descriptor.topic.to_owned(),
                    reason: format!(
                        "the `cron_payload` of {}: {reason}",
                        descriptor.qualified_name()
                    ),
                })?;
            }
            if let Some(need) = descriptor
                .state
                .iter()
                .find(|need| !need.is_met(&self.state))
            {
                return Err(Error::MissingState {
                    task: descriptor.qualified_name(),
                    type_name: need.type_name(),
                });
            }
        }
        let topics = selected
            .into_iter()
            .map(|descriptor| Topic {
                name: descriptor.topic.to_owned(),
                descriptor,
                timeout: descriptor
                    .policy
                    .timeout
                    .unwrap_or(config.processing_timeout),
            })
            .collect::<Vec<Topic>>();
        let telemetry = super::telemetry::Telemetry::new(
            topics.iter().map(|t| t.name.as_str()),
            config.max_workers,
        );
        let lifecycle = Lifecycle::new();
        // The index records of the jobs it leases name this worker.
        let broker = broker.with_owner(&lifecycle.id);
        Ok(Worker {
            shared: Arc::new(Shared {
                broker,
                config,
                topics,
                state: self.state,
                held: Held::default(),
                metrics: Arc::new(Metrics::default()),
                fatal: Default::default(),
                starts: Default::default(),
                lifecycle,
                telemetry,
                cron_clock: self.cron_clock,
            }),
        })
    }
}
