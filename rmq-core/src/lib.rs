//! Engine of [rmq](https://docs.rs/rmq): the task model, the client, the
//! Lua-scripted Redis queues and the worker runtime. Use it through the `rmq`
//! crate.

pub mod batch;
pub mod broker;
mod cancellation;
pub mod chain;
mod client;
pub mod codec;
mod config;
pub mod cron;
mod enqueue;
pub mod envelope;
mod error;
pub mod event;
pub mod handler;
mod job;
pub mod keys;
mod priority;
pub mod registry;
mod result;
mod scripts;
mod task;
pub mod telemetry;
pub mod trace;
pub mod unique;
pub mod worker;

pub use batch::{Batch, BatchEnd, BatchId, BatchOutcome, BatchProgress};
pub use broker::{Broker, Cancelled, JobResult, JobState, JobStatus};
pub use cancellation::Cancellation;
pub use chain::{Chain, ChainJob};
pub use client::{Client, FakeJob, JobOutcome, Outcome};
pub use config::Config;
pub use cron::{CatchUp, CronClock, CronPolicy, Overlap};
pub use enqueue::{Enqueue, JobOptions};
pub use error::{BoxError, Error, ResultExt, TaskError, TaskErrorKind};
pub use event::{Event, Publish, Published, PublishedJob, Subscriber, Trigger};
pub use handler::{HandlerFn, Invocation, State, StateMap, StateNeed};
pub use job::{JobContext, JobId};
pub use priority::{ParsePriorityError, Priority};
pub use registry::{Registration, Registry};
pub use result::{Job, ResultError};
pub use task::{Backoff, FromEnqueued, Limits, Rate, Task, TaskDescriptor, TaskPolicy, UniqueTask};
pub use unique::{Enqueued, Unique, UniqueLock, UniqueMode, UniquePolicy, DEFAULT_UNIQUE_TTL};
pub use worker::{Worker, WorkerBuilder};
