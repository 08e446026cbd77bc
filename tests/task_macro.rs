//! What `#[rmq::task]` generates, exercised through the fake and inline
//! clients (no Redis).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq::{
    Backoff, Client, Error, JobContext, JobId, JobOutcome, Priority, ResultExt, State, Task,
    TaskError, TaskPolicy,
};

/// Handles an order.
#[rmq::task(topic = "orders", retries = 5, priority = High, timeout = "30s")]
async fn handle_order(order_id: String, user_id: u64, amount: f64) -> Result<(), TaskError> {
    if amount < 0.0 {
        return Err(TaskError::permanent(format!(
            "order {order_id} of user {user_id} has a negative amount"
        )));
    }
    Ok(())
}

#[rmq::task]
async fn send_email(to: String, subject: Option<String>) -> Result<(), std::io::Error> {
    let _ = (to, subject);
    Ok(())
}

#[rmq::task(
    topic = "reports",
    retries = 0,
    retry_delays = ["500ms", "10s", "1m"],
    ttl = "1h",
    priority = Low,
    payload = ReportJob
)]
async fn build_report(ctx: JobContext, name: String, pages: Vec<u32>) -> Result<String, TaskError> {
    Ok(format!("{name} ({} pages) in job {}", pages.len(), ctx.id))
}

#[rmq::task(backoff = exponential(base = "1s", max = "10m"), ttl = "2d")]
async fn with_backoff() -> Result<(), TaskError> {
    Ok(())
}

#[rmq::task(index = true)]
async fn indexed() -> Result<(), TaskError> {
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn order(id: &str) -> HandleOrder {
    HandleOrder {
        order_id: id.into(),
        user_id: 42,
        amount: 99.9,
    }
}

#[test]
fn payload_round_trips_through_the_codec() {
    let bytes = rmq::codec::encode(&order("ORD_1")).unwrap();
    let back: HandleOrder = rmq::codec::decode(&bytes).unwrap();
    assert_eq!(back.order_id, "ORD_1");
    assert_eq!(back.user_id, 42);
    assert_eq!(back.amount, 99.9);

    let json = rmq::codec::to_json(&bytes).unwrap();
    assert_eq!(json["order_id"], "ORD_1");

    let stored =
        (HandleOrder::descriptor().encode_json)(r#"{"order_id":"ORD_2","user_id":7,"amount":1.5}"#)
            .unwrap();
    assert_eq!(
        rmq::codec::decode::<HandleOrder>(&stored).unwrap().user_id,
        7
    );
    let error = (HandleOrder::descriptor().encode_json)(r#"{"order_id":"ORD_3"}"#).unwrap_err();
    assert!(error.contains("HandleOrder"), "{error}");
}

#[test]
fn descriptor_reflects_the_attribute() {
    let d = HandleOrder::descriptor();
    assert_eq!(d.topic, "orders");
    assert_eq!(d.function, "handle_order");
    assert_eq!(d.module_path, "task_macro");
    assert_eq!(d.qualified_name(), "task_macro::handle_order");
    assert_eq!(d.payload_type, "HandleOrder");
    assert_eq!(
        d.fields,
        &[
            ("order_id", "String"),
            ("user_id", "u64"),
            ("amount", "f64")
        ]
    );
    assert_eq!(
        d.policy,
        TaskPolicy {
            retries: Some(5),
            backoff: None,
            priority: Priority::High,
            timeout: Some(Duration::from_secs(30)),
            ttl: None,
            ..TaskPolicy::DEFAULT
        }
    );
}

#[test]
fn defaults_topic_name_and_policy() {
    let d = SendEmail::descriptor();
    assert_eq!(d.topic, "send_email");
    assert_eq!(d.function, "send_email");
    assert_eq!(d.payload_type, "SendEmail");
    assert_eq!(d.fields, &[("to", "String"), ("subject", "Option<String>")]);
    assert_eq!(d.policy, TaskPolicy::DEFAULT);
}

#[test]
fn retry_delays_ttl_and_payload_name() {
    let d = ReportJob::descriptor();
    assert_eq!(d.topic, "reports");
    assert_eq!(d.function, "build_report");
    assert_eq!(d.payload_type, "ReportJob");
    // The injected context is not a payload field.
    assert_eq!(d.fields, &[("name", "String"), ("pages", "Vec<u32>")]);
    const DELAYS: &[Duration] = &[
        Duration::from_millis(500),
        Duration::from_secs(10),
        Duration::from_secs(60),
    ];
    assert_eq!(
        d.policy,
        TaskPolicy {
            retries: Some(0),
            backoff: Some(Backoff::Fixed(DELAYS)),
            priority: Priority::Low,
            timeout: None,
            ttl: Some(Duration::from_secs(3600)),
            ..TaskPolicy::DEFAULT
        }
    );
}

#[test]
fn exponential_backoff() {
    let d = WithBackoff::descriptor();
    assert!(d.fields.is_empty());
    assert_eq!(
        d.policy.backoff,
        Some(Backoff::Exponential {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        })
    );
    assert_eq!(d.policy.ttl, Some(Duration::from_secs(2 * 86_400)));
    assert!(!d.policy.index);
}

#[test]
fn index_key() {
    assert!(Indexed::descriptor().policy.index);
}

#[test]
fn the_function_stays_callable() {
    runtime().block_on(async {
        handle_order("ORD_1".into(), 42, 99.9).await.unwrap();
        let error = handle_order("ORD_2".into(), 42, -1.0).await.unwrap_err();
        assert!(error.is_permanent());
        send_email("a@example.com".into(), None).await.unwrap();
    });
}

#[test]
fn fake_client_records_typed_jobs_with_options() {
    runtime().block_on(async {
        let client = Client::fake();
        let first = order("ORD_1").enqueue(&client).await.unwrap();
        let second = order("ORD_2")
            .delay(Duration::from_secs(300))
            .priority(Priority::Low)
            .ttl(Duration::from_secs(60))
            .enqueue(&client)
            .await
            .unwrap();
        let third = order("ORD_3")
            .job_id("order-3")
            .enqueue(&client)
            .await
            .unwrap();
        SendEmail {
            to: "a@example.com".into(),
            subject: Some("hi".into()),
        }
        .enqueue(&client)
        .await
        .unwrap();

        assert_eq!(third, JobId::new("order-3"));
        assert_ne!(first, second);
        assert_eq!(client.enqueued_count(), 4);

        let orders = client.enqueued::<HandleOrder>();
        let ids: Vec<_> = orders.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids, ["ORD_1", "ORD_2", "ORD_3"]);

        let jobs = client.enqueued_jobs::<HandleOrder>();
        assert_eq!(jobs[0].id, first);
        assert_eq!(jobs[0].priority, Priority::High, "the task's default");
        assert_eq!(jobs[0].max_retries, 5);
        assert_eq!(jobs[1].priority, Priority::Low);
        assert_eq!(jobs[1].options.delay, Some(Duration::from_secs(300)));
        assert_eq!(jobs[1].options.ttl, Some(Duration::from_secs(60)));
        assert_eq!(jobs[2].options.id, Some(JobId::new("order-3")));

        let emails = client.enqueued::<SendEmail>();
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0].subject.as_deref(), Some("hi"));

        client
            .enqueue_many(vec![order("ORD_4"), order("ORD_5")])
            .await
            .unwrap();
        assert_eq!(client.enqueued::<HandleOrder>().len(), 5);
    });
}

#[test]
fn fake_client_refuses_a_duplicate_explicit_id() {
    runtime().block_on(async {
        let client = Client::fake();
        order("ORD_1").job_id("same").enqueue(&client).await.unwrap();
        let error = order("ORD_2")
            .job_id("same")
            .enqueue(&client)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::DuplicateJobId { topic, id } if topic == "orders" && id == "same"),
            "{error}"
        );
        assert_eq!(client.enqueued::<HandleOrder>().len(), 1);
    });
}

#[test]
fn inline_client_runs_the_handler() {
    runtime().block_on(async {
        let client = Client::inline();
        let id = order("ORD_1").enqueue(&client).await.unwrap();
        let outcomes = client.outcomes();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].id, id);
        assert_eq!(outcomes[0].topic, "orders");
        assert_eq!(outcomes[0].attempts, 1);
        assert_eq!(outcomes[0].result, JobOutcome::Completed);

        // A return value other than `()` is discarded.
        ReportJob {
            name: "weekly".into(),
            pages: vec![1, 2],
        }
        .enqueue(&client)
        .await
        .unwrap();
        assert_eq!(client.outcomes()[1].result, JobOutcome::Completed);
    });
}

static FLAKY_RUNS: AtomicU32 = AtomicU32::new(0);

#[rmq::task(retries = 3)]
async fn flaky() -> Result<(), TaskError> {
    if FLAKY_RUNS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(TaskError::retryable("not yet"));
    }
    Ok(())
}

#[test]
fn inline_client_retries_until_success() {
    runtime().block_on(async {
        let client = Client::inline();
        Flaky {}.enqueue(&client).await.unwrap();
        let outcome = &client.outcomes()[0];
        assert_eq!(outcome.result, JobOutcome::Completed);
        assert_eq!(outcome.attempts, 3);
        assert_eq!(FLAKY_RUNS.load(Ordering::SeqCst), 3);
    });
}

static BROKEN_RUNS: AtomicU32 = AtomicU32::new(0);

#[rmq::task(retries = 2)]
async fn always_broken(reason: String) -> Result<(), std::io::Error> {
    BROKEN_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(std::io::Error::other(reason))
}

#[test]
fn inline_client_dead_letters_after_the_retries() {
    runtime().block_on(async {
        let client = Client::inline();
        AlwaysBroken {
            reason: "disk full".into(),
        }
        .enqueue(&client)
        .await
        .unwrap();
        let outcome = &client.outcomes()[0];
        assert_eq!(outcome.result, JobOutcome::Dead("disk full".into()));
        assert_eq!(outcome.attempts, 3);
        assert_eq!(BROKEN_RUNS.load(Ordering::SeqCst), 3);
    });
}

static PERMANENT_RUNS: AtomicU32 = AtomicU32::new(0);

#[rmq::task(retries = 5)]
async fn parse_amount(text: String) -> Result<(), TaskError> {
    PERMANENT_RUNS.fetch_add(1, Ordering::SeqCst);
    let _amount: f64 = text.parse().permanent()?;
    Ok(())
}

#[test]
fn a_permanent_error_is_not_retried() {
    runtime().block_on(async {
        let client = Client::inline();
        ParseAmount { text: "12x".into() }
            .enqueue(&client)
            .await
            .unwrap();
        let outcome = &client.outcomes()[0];
        assert!(matches!(outcome.result, JobOutcome::Dead(_)), "{outcome:?}");
        assert_eq!(outcome.attempts, 1);
        assert_eq!(PERMANENT_RUNS.load(Ordering::SeqCst), 1);
    });
}

static PANIC_RUNS: AtomicU32 = AtomicU32::new(0);

#[rmq::task(retries = 1)]
async fn panics() -> Result<(), TaskError> {
    PANIC_RUNS.fetch_add(1, Ordering::SeqCst);
    panic!("handler bug");
}

#[test]
fn a_panic_is_retried_then_dead_and_the_process_survives() {
    runtime().block_on(async {
        let client = Client::inline();
        Panics {}.enqueue(&client).await.unwrap();
        let outcome = &client.outcomes()[0];
        match &outcome.result {
            JobOutcome::Dead(message) => assert!(message.contains("handler bug"), "{message}"),
            other => panic!("expected Dead, got {other:?}"),
        }
        assert_eq!(outcome.attempts, 2);
        assert_eq!(PANIC_RUNS.load(Ordering::SeqCst), 2);
    });
}

/// Shared state for [`record_visit`].
struct Visits {
    pages: Arc<Mutex<Vec<String>>>,
}

#[rmq::task]
async fn record_visit(visits: State<Visits>, page: String) -> Result<(), TaskError> {
    visits.pages.lock().unwrap().push(page);
    Ok(())
}

#[test]
fn state_is_injected_by_the_inline_client() {
    runtime().block_on(async {
        let pages = Arc::new(Mutex::new(Vec::new()));
        let client = Client::inline().with_state(Visits {
            pages: Arc::clone(&pages),
        });
        RecordVisit {
            page: "/home".into(),
        }
        .enqueue(&client)
        .await
        .unwrap();
        assert_eq!(client.outcomes()[0].result, JobOutcome::Completed);
        assert_eq!(*pages.lock().unwrap(), ["/home"]);
    });
}

#[test]
fn missing_state_fails_the_job_with_its_type_name() {
    runtime().block_on(async {
        let client = Client::inline();
        RecordVisit {
            page: "/home".into(),
        }
        .enqueue(&client)
        .await
        .unwrap();
        match &client.outcomes()[0].result {
            JobOutcome::Dead(message) => assert!(message.contains("Visits"), "{message}"),
            other => panic!("expected Dead, got {other:?}"),
        }
    });
}

static SEEN_ATTEMPTS: Mutex<Vec<(u32, u32, bool)>> = Mutex::new(Vec::new());

#[rmq::task(topic = "attempts", retries = 2)]
async fn count_attempts(ctx: JobContext, fail_until: u32) -> Result<(), TaskError> {
    SEEN_ATTEMPTS
        .lock()
        .unwrap()
        .push((ctx.attempt, ctx.max_retries, ctx.is_last_attempt()));
    assert_eq!(ctx.topic, "attempts");
    if ctx.attempt < fail_until {
        return Err(TaskError::retryable("again"));
    }
    Ok(())
}

#[test]
fn the_job_context_carries_attempt_numbers() {
    runtime().block_on(async {
        let client = Client::inline();
        CountAttempts { fail_until: 3 }
            .job_id("ctx-1")
            .enqueue(&client)
            .await
            .unwrap();
        assert_eq!(
            *SEEN_ATTEMPTS.lock().unwrap(),
            [(1, 2, false), (2, 2, false), (3, 2, true)]
        );
        let outcome = &client.outcomes()[0];
        assert_eq!(outcome.id, JobId::new("ctx-1"));
        assert_eq!(outcome.result, JobOutcome::Completed);
    });
}

/// What the tasks of [`recording_task`] saw: `(topic, attempt, value)`.
struct Seen {
    runs: Arc<Mutex<Vec<(String, u32, u64)>>>,
}

// The name, topic and argument names come from the caller, the attribute
// and the function from the macro: the two are in different hygiene
// contexts.
macro_rules! recording_task {
    ($name:ident, $topic:literal, $ctx:ident, $seen:ident, $value:ident) => {
        #[rmq::task(topic = $topic, retries = 0)]
        async fn $name($ctx: JobContext, $seen: State<Seen>, $value: u64) -> Result<(), TaskError> {
            $seen
                .runs
                .lock()
                .unwrap()
                .push(($ctx.topic.clone(), $ctx.attempt, $value));
            Ok(())
        }
    };
}

recording_task!(record_a, "macro_rules.a", ctx, seen, value);
recording_task!(record_b, "macro_rules.b", job, log, n);

#[test]
fn tasks_written_by_macro_rules_run() {
    runtime().block_on(async {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let client = Client::inline().with_state(Seen {
            runs: Arc::clone(&seen),
        });
        RecordA { value: 1 }.enqueue(&client).await.unwrap();
        RecordB { n: 2 }.enqueue(&client).await.unwrap();
        let outcomes = client.outcomes();
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes.iter().all(|o| o.result == JobOutcome::Completed));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("macro_rules.a".to_owned(), 1, 1),
                ("macro_rules.b".to_owned(), 1, 2)
            ]
        );
    });
}

/// Answers like an upstream at its limit.
#[rmq::task(rate = "5/s", concurrency = 2, rate_key = "tenant")]
async fn upstream_call(tenant: String) -> Result<(), TaskError> {
    let _ = tenant;
    Err(TaskError::rate_limited(Duration::from_secs(3)))
}

#[test]
fn limits_are_in_the_policy_and_inline_reports_a_rate_limited_job() {
    let policy = UpstreamCall::descriptor().policy;
    assert_eq!(policy.rate, Some(rmq::Rate::new(5, Duration::from_secs(1))));
    assert_eq!(policy.concurrency, Some(2));
    assert_eq!(policy.rate_key, Some("tenant"));
    runtime().block_on(async {
        let client = Client::inline();
        UpstreamCall {
            tenant: "acme".into(),
        }
        .enqueue(&client)
        .await
        .unwrap();
        let outcome = &client.outcomes()[0];
        // Not retried, not dead: the back-off asked for, once.
        assert_eq!(
            outcome.result,
            JobOutcome::RateLimited(Duration::from_secs(3))
        );
        assert_eq!(outcome.attempts, 1);
        // The fake client records the payload as it is.
        let fake = Client::fake();
        UpstreamCall {
            tenant: "acme".into(),
        }
        .enqueue(&fake)
        .await
        .unwrap();
        assert_eq!(fake.enqueued::<UpstreamCall>()[0].tenant, "acme");
    });
}

static SWEEPS: AtomicU32 = AtomicU32::new(0);

/// A periodic task: its function stays callable, and the fake and inline
/// clients run or record its schedule without Redis.
#[rmq::task(cron = "0 */5 * * * *", tz = "Europe/Berlin", catch_up = None)]
async fn sweep(ctx: JobContext) -> Result<(), TaskError> {
    assert!(ctx.id.as_str().starts_with("cron:sweep:"), "{}", ctx.id);
    SWEEPS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[test]
fn cron_tasks_run_without_redis() {
    runtime().block_on(async {
        let policy = Sweep::descriptor().policy.cron.expect("a cron policy");
        assert_eq!(policy.expression, "0 */5 * * * *");
        assert_eq!(policy.catch_up, rmq::CatchUp::None);

        let fake = Client::fake();
        let id = fake.trigger_schedule::<Sweep>("sweep").await.unwrap();
        assert_eq!(id.as_str(), "cron:sweep:now:0");
        assert_eq!(fake.enqueued::<Sweep>().len(), 1);

        let inline = Client::inline();
        inline.trigger_schedule::<Sweep>("sweep").await.unwrap();
        assert_eq!(inline.outcomes()[0].result, JobOutcome::Completed);
        assert_eq!(SWEEPS.load(Ordering::SeqCst), 1);

        let spec = rmq::broker::ScheduleSpec::new("* * * * *", "UTC");
        assert!(matches!(
            fake.set_schedule("s", &spec, &Sweep {}).await,
            Err(rmq::Error::NotRedis(_))
        ));
    });
}

static EXPORTED: Mutex<Vec<(String, Option<u32>)>> = Mutex::new(Vec::new());

#[rmq::task(cron = "0 0 6 * * *", cron_payload = r#"{"region": "eu"}"#)]
async fn export(region: String, limit: Option<u32>) -> Result<(), TaskError> {
    EXPORTED.lock().unwrap().push((region, limit));
    Ok(())
}

/// `n` is a number: the JSON compiles (its keys are right), its value is
/// refused at run time.
#[rmq::task(cron = "0 0 6 * * *", cron_payload = r#"{"n": "seven"}"#)]
async fn mistyped(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[test]
fn a_cron_payload_is_the_payload_of_every_run() {
    runtime().block_on(async {
        let inline = Client::inline();
        inline.trigger_schedule::<Export>("export").await.unwrap();
        assert_eq!(*EXPORTED.lock().unwrap(), [("eu".to_owned(), None)]);
        assert!(matches!(
            inline.trigger_schedule::<Mistyped>("mistyped").await,
            Err(Error::Payload { .. })
        ));
    });
}
