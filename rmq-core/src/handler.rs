//! The type-erased call of a task function: decode the payload, inject
//! context and state, run, map the result.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Cause;
use crate::{JobContext, TaskError};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The adapter `#[rmq::task]` generates for each task. On success it gives
/// the function's return value, encoded, when the run asked for it
/// ([`Invocation::keep_output`]), and `None` otherwise.
pub type HandlerFn = fn(Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>>;

/// One run of a handler: the stored payload, the job's context and the shared
/// state registered on the worker (or inline client).
#[derive(Debug)]
pub struct Invocation {
    payload: Bytes,
    context: JobContext,
    state: StateMap,
    keep_output: bool,
}

impl Invocation {
    /// Bundles what one run needs.
    pub fn new(payload: impl Into<Bytes>, context: JobContext, state: StateMap) -> Self {
        Invocation {
            payload: payload.into(),
            context,
            state,
            keep_output: false,
        }
    }

    /// Asks the handler for its return value, encoded (a kept result, or the
    /// payload of a chain's next step). Without it, nothing is encoded.
    pub fn keep_output(mut self, keep: bool) -> Self {
        self.keep_output = keep;
        self
    }

    /// What the adapter returns for the function's return value `value`:
    /// its encoding when the run asked for it, else `None`.
    pub fn output<T: Serialize>(&self, value: &T) -> Result<Option<Vec<u8>>, TaskError> {
        if !self.keep_output {
            return Ok(None);
        }
        crate::codec::encode(value).map(Some).map_err(|e| {
            TaskError::permanent(format!(
                "the return value (`{}`) does not encode: {e}",
                type_name::<T>()
            ))
        })
    }

    /// Decodes the payload into the task's struct; a mismatch is a
    /// [`TaskError::malformed`].
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        crate::codec::decode(&self.payload).map_err(|e| {
            TaskError::malformed(format!(
                "payload does not decode into `{}`: {e}",
                type_name::<T>()
            ))
        })
    }

    /// The job's context.
    pub fn context(&self) -> &JobContext {
        &self.context
    }

    /// The shared state of type `T`, or an error naming the missing type.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<State<T>, TaskError> {
        self.state.get::<T>().ok_or_else(|| {
            TaskError::retryable(format!(
                "no shared state of type `{}` is registered: add it with `.state(value)` on the worker builder (`rmq_worker::Cli::new().configure(|w| w.state(value))` for the worker command line) or on the inline client",
                type_name::<T>()
            ))
        })
    }
}

/// Shared application state handed to handlers, in the manner of axum's
/// `State`: a task function that takes `State<Db>` receives the `Db` registered
/// on the worker with `.state(db)`. Not part of the payload.
#[derive(Debug)]
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        State(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Values registered by type, shared by every handler run.
#[derive(Clone, Default)]
pub struct StateMap(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl StateMap {
    /// Adds (or replaces) the value of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Whether a value of type `T` is registered.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.0.contains_key(&TypeId::of::<T>())
    }

    /// The value of type `T`, if registered.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<State<T>> {
        let value = Arc::clone(self.0.get(&TypeId::of::<T>())?);
        value.downcast::<T>().ok().map(State)
    }
}

/// A `State<T>` parameter of a task function, recorded in its descriptor so
/// a worker can refuse to start without the state its tasks need.
#[derive(Clone, Copy)]
pub struct StateNeed {
    type_name: fn() -> &'static str,
    registered: fn(&StateMap) -> bool,
}

impl StateNeed {
    /// The need for a `State<T>`.
    pub const fn of<T: Send + Sync + 'static>() -> StateNeed {
        StateNeed {
            type_name: type_name::<T>,
            registered: StateMap::contains::<T>,
        }
    }

    /// The type `T` of the `State<T>`.
    pub fn type_name(&self) -> &'static str {
        (self.type_name)()
    }

    /// Whether `state` holds a `T`.
    pub fn is_met(&self, state: &StateMap) -> bool {
        (self.registered)(state)
    }
}

impl std::fmt::Debug for StateNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StateNeed").field(&self.type_name()).finish()
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMap")
            .field("len", &self.0.len())
            .finish()
    }
}

/// Runs one attempt of a handler: a panic becomes a retryable error, and so
/// does running past `timeout` (the handler's future is dropped).
pub async fn run(
    handler: HandlerFn,
    invocation: Invocation,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, TaskError> {
    let attempt = AssertUnwindSafe(handler(invocation)).catch_unwind();
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(TaskError::stopped(
            Cause::Timeout,
            format!("handler timed out after {timeout:?}"),
        )),
        Ok(Err(panic)) => Err(TaskError::stopped(
            Cause::Panic,
            format!("handler panicked: {}", panic_message(&*panic)),
        )),
        Ok(Ok(result)) => result,
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
