//! rmq: typed async tasks on Redis.
//!
//! Mark an async function with [`task`]; rmq generates a typed payload
//! struct and enqueue helpers, registers the task at link time, and runs it
//! in a worker that pulls jobs from Lua-scripted Redis queues.

pub use rmq_core::{
    batch, broker, codec, cron, envelope, event, registry, telemetry, trace, unique, worker,
};
pub use rmq_core::{chain, Chain, ChainJob, FromEnqueued, Job, JobResult, ResultError};
pub use rmq_core::{
    Backoff, Broker, Cancellation, Cancelled, Client, Config, Enqueue, Error, FakeJob, JobContext,
    JobId, JobOptions, JobOutcome, JobState, JobStatus, Limits, Outcome, Priority, Rate, Registry,
    ResultExt, State, Task, TaskDescriptor, TaskError, TaskErrorKind, TaskPolicy, Worker,
    WorkerBuilder,
};
pub use rmq_core::{Batch, BatchEnd, BatchId, BatchOutcome, BatchProgress};
pub use rmq_core::{CatchUp, CronClock, CronPolicy, Overlap};
pub use rmq_core::{Enqueued, Unique, UniqueMode, UniquePolicy, UniqueTask, DEFAULT_UNIQUE_TTL};
pub use rmq_core::{Event, Published, Subscriber};

/// OpenTelemetry trace context through jobs (feature `otel`): call
/// `rmq::otel::install()` in producers and workers.
#[cfg(feature = "otel")]
pub use rmq_otel as otel;

#[doc = include_str!("../docs/task.md")]
pub use rmq_macros::task;

#[doc = include_str!("../docs/event.md")]
pub use rmq_macros::event;

// Not public API: what `#[rmq::task]` expands to.
#[doc(hidden)]
pub mod __private {
    pub use core::{
        clone::Clone, convert::Into, fmt::Debug, option::Option, result::Result, time::Duration,
    };
    pub use inventory;
    pub use rmq_core::codec::encode_json;
    pub use rmq_core::handler::{BoxFuture, HandlerFn, Invocation, StateNeed};
    pub use rmq_core::Registration;
    pub use serde;
    pub use std::boxed::Box;
    pub use std::string::String;
    pub use std::vec::Vec;
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
