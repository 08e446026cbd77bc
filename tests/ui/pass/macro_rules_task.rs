//! Tasks whose function comes out of a `macro_rules!` macro: the hidden
//! locals of the expansion must resolve whatever the hygiene context of the
//! function's name, its arguments and the attribute.

use std::time::Duration;

use rmq::{JobContext, State, Task, TaskError};

pub struct Db {
    pub url: String,
}

// The attribute and the body come from the macro; the name and topic from
// the caller.
macro_rules! make_task {
    ($name:ident, $topic:literal) => {
        #[rmq::task(topic = $topic)]
        async fn $name(x: u32) -> Result<(), rmq::TaskError> {
            let _ = x;
            Ok(())
        }
    };
}

make_task!(first_generated, "generated.first");
make_task!(second_generated, "generated.second");

// Everything but the argument names and types from the caller, with an
// injected context and state among them.
macro_rules! make_injected_task {
    ($name:ident, $ctx:ident: $ctx_ty:ty, $arg:ident: $arg_ty:ty, $db:ident: $db_ty:ty) => {
        #[rmq::task(topic = "generated.injected", retries = 1)]
        async fn $name($ctx: $ctx_ty, $arg: $arg_ty, $db: $db_ty) -> Result<(), TaskError> {
            let _ = ($ctx.attempt, $arg, &$db.url);
            Ok(())
        }
    };
}

make_injected_task!(injected_generated, ctx: JobContext, order_id: String, db: State<Db>);

// The whole attribute and function come from the caller.
macro_rules! verbatim {
    ($($item:tt)*) => {
        $($item)*
    };
}

verbatim! {
    #[rmq::task(topic = "generated.verbatim")]
    async fn verbatim_task(ctx: JobContext, count: u64, db: State<Db>) -> Result<(), TaskError> {
        let _ = (ctx.id, count, &db.url);
        Ok(())
    }
}

// Every attribute value a fragment: `literal`, `expr` and `ident` fragments
// reach the attribute wrapped in invisible groups.
macro_rules! configured_task {
    (
        $name:ident, $payload:ident, $topic:expr, $retries:literal, [$($delay:literal),*],
        $priority:ident, $timeout:expr, $ttl:literal
    ) => {
        #[rmq::task(
            topic = $topic,
            retries = $retries,
            retry_delays = [$($delay),*],
            priority = $priority,
            timeout = $timeout,
            ttl = $ttl,
            payload = $payload,
        )]
        async fn $name(id: u64) -> Result<(), TaskError> {
            let _ = id;
            Ok(())
        }
    };
}

configured_task!(
    configured,
    ConfiguredJob,
    "generated.configured",
    3,
    ["1s", "10s"],
    High,
    "30s",
    "1h"
);

macro_rules! exponential_task {
    ($name:ident, $base:expr, $max:literal) => {
        #[rmq::task(backoff = exponential(base = $base, max = $max))]
        async fn $name() -> Result<(), TaskError> {
            Ok(())
        }
    };
}

exponential_task!(exponential_generated, "1s", "1m");

// A fixed name and argument from the macro itself.
macro_rules! fixed_task {
    () => {
        #[rmq::task]
        async fn fixed_name(ctx: JobContext, value: i64) -> Result<(), TaskError> {
            let _ = (ctx, value);
            Ok(())
        }
    };
}

fixed_task!();

// A fixed name from the macro; the injected types from the caller, as bare
// identifiers (a `ty` fragment would come wrapped in the macro's own span).
macro_rules! typed_task {
    ($ctx_ty:ident, $state:ident, $db:ident) => {
        #[rmq::task]
        async fn typed_injection(
            ctx: $ctx_ty,
            db: $state<$db>,
            flag: bool,
        ) -> Result<(), TaskError> {
            let _ = (ctx, &db.url, flag);
            Ok(())
        }
    };
}

typed_task!(JobContext, State, Db);

async fn enqueue_all(client: &rmq::Client) -> Result<(), rmq::Error> {
    FirstGenerated { x: 1 }.enqueue(client).await?;
    SecondGenerated { x: 2 }
        .priority(rmq::Priority::High)
        .enqueue(client)
        .await?;
    InjectedGenerated {
        order_id: "o-1".to_owned(),
    }
    .enqueue(client)
    .await?;
    VerbatimTask { count: 3 }.enqueue(client).await?;
    FixedName { value: -1 }.enqueue(client).await?;
    ConfiguredJob { id: 7 }.enqueue(client).await?;
    ExponentialGenerated {}.enqueue(client).await?;
    TypedInjection { flag: true }.enqueue(client).await?;
    Ok(())
}

fn main() {
    let _ = enqueue_all;
    assert_eq!(FirstGenerated::descriptor().topic, "generated.first");
    assert_eq!(SecondGenerated::descriptor().topic, "generated.second");
    assert_eq!(InjectedGenerated::descriptor().topic, "generated.injected");
    assert_eq!(VerbatimTask::descriptor().topic, "generated.verbatim");
    assert_eq!(FixedName::descriptor().topic, "fixed_name");
    let configured = ConfiguredJob::descriptor();
    assert_eq!(configured.topic, "generated.configured");
    assert_eq!(configured.policy.retries, Some(3));
    const DELAYS: &[Duration] = &[Duration::from_secs(1), Duration::from_secs(10)];
    assert_eq!(configured.policy.backoff, Some(rmq::Backoff::Fixed(DELAYS)));
    assert_eq!(configured.policy.priority, rmq::Priority::High);
    assert_eq!(configured.policy.timeout, Some(Duration::from_secs(30)));
    assert_eq!(configured.policy.ttl, Some(Duration::from_secs(3600)));
    assert!(matches!(
        ExponentialGenerated::descriptor().policy.backoff,
        Some(rmq::Backoff::Exponential { .. })
    ));
    let fields: Vec<_> = InjectedGenerated::descriptor()
        .fields
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(fields, ["order_id"]);
}
