//! The worker runtime end to end, in process: each test starts its own
//! Redis, defines its tasks here, and runs a `Worker` until a condition the
//! handlers signal is met.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use rmq::{Client, Error, JobContext, Priority, State, TaskError, Worker};
use support::{pending, run, Deployment, Env, Probe, LIMIT};

/// A test run twice: on a Redis of its own and on the shared cluster
/// (under a queue prefix of its own). `env` is bound to the environment.
macro_rules! on_both {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn body($env: Env) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn standalone() {
                body(Env::on(Deployment::Standalone).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                body(Env::on(Deployment::Cluster).await).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// 1. End to end

#[rmq::task(topic = "e2e")]
async fn e2e_job(n: u32, ctx: JobContext, probe: State<Probe<String>>) -> Result<(), TaskError> {
    let _ = n;
    probe.record(ctx.id.to_string());
    Ok(())
}

on_both!(every_job_runs_exactly_once, |env| {
    const N: usize = 50;
    let ids = env
        .client
        .enqueue_many((0..N as u32).map(|n| E2eJob { n }))
        .await
        .unwrap();
    let expected: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(expected.len(), N);

    let probe = Probe::<String>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<E2eJob>()
        .concurrency(4)
        .state(probe.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    run(worker, probe.reached(N)).await;

    let ran = probe.records();
    assert_eq!(ran.len(), N, "some job ran twice: {ran:?}");
    assert_eq!(ran.into_iter().collect::<HashSet<_>>(), expected);
    let stats = env.stats("e2e").await;
    assert_eq!(stats.completed, N as u64);
    assert_eq!(pending(&stats), 0);
    assert_eq!(stats.processing, 0);
    assert_eq!(stats.delayed, 0);
    assert_eq!(stats.failed, 0);
    let metrics = metrics.snapshot();
    assert_eq!(metrics.completed, N as u64);
    assert_eq!(metrics.retried + metrics.dead + metrics.lease_lost, 0);
});

// ---------------------------------------------------------------------------
// 2. Strict priority

#[rmq::task(topic = "ranked")]
async fn ranked(
    seq: u32,
    ctx: JobContext,
    probe: State<Probe<(Priority, u32)>>,
) -> Result<(), TaskError> {
    probe.record((ctx.priority, seq));
    Ok(())
}

on_both!(
    pre_filled_queue_runs_high_then_normal_then_low_fifo,
    |env| {
        let cycle = [Priority::Low, Priority::Normal, Priority::High];
        let mut expected: Vec<(Priority, u32)> = Vec::new();
        for seq in 0..15u32 {
            let priority = cycle[(seq as usize * 7 + seq as usize / 3) % 3];
            Ranked { seq }
                .priority(priority)
                .enqueue(&env.client)
                .await
                .unwrap();
            expected.push((priority, seq));
        }
        // High first, then Normal, then Low; enqueue order within each.
        let rank = |p: Priority| match p {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        };
        expected.sort_by_key(|&(p, seq)| (rank(p), seq));

        let probe = Probe::<(Priority, u32)>::new();
        let worker = Worker::builder(env.client.clone())
            .task::<Ranked>()
            .concurrency(1)
            .state(probe.clone())
            .build()
            .unwrap();
        run(worker, probe.reached(expected.len())).await;
        assert_eq!(probe.records(), expected);
    }
);

// ---------------------------------------------------------------------------
// 3. and 4. Delays and wake-ups of an idle worker

#[rmq::task(topic = "later")]
async fn later(
    ctx: JobContext,
    probe: State<Probe<(Instant, SystemTime, SystemTime)>>,
) -> Result<(), TaskError> {
    probe.record((Instant::now(), SystemTime::now(), ctx.enqueued_at));
    Ok(())
}

/// No fallback poll can explain a prompt start: it would take this long.
fn slow_fallback(config: &mut rmq::Config) {
    config.expired_check_interval = Duration::from_secs(30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_job_runs_after_its_delay_and_wakes_an_idle_worker() {
    const DELAY: Duration = Duration::from_millis(700);
    let env = Env::with(slow_fallback).await;
    let probe = Probe::<(Instant, SystemTime, SystemTime)>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Later>()
        .concurrency(1)
        .state(probe.clone())
        .build()
        .unwrap();

    let test = async {
        env.wait_idle(1).await;
        let before = Instant::now();
        Later {}.delay(DELAY).enqueue(&env.client).await.unwrap();
        probe.wait(|r| !r.is_empty()).await;
        before
    };
    let (before, ()) = tokio::join!(test, run(worker, probe.reached(1)));

    let (ran_at, ran_wall, enqueued_at) = probe.records()[0];
    // Server time of the enqueue (ms, rounded down) plus the delay is the
    // earliest a fetch may promote the job.
    let waited = ran_wall
        .duration_since(enqueued_at)
        .expect("the job ran before it was enqueued");
    assert!(
        waited >= DELAY,
        "ran {waited:?} after the enqueue, delay {DELAY:?}"
    );
    let latency = ran_at - before;
    assert!(
        latency >= DELAY - Duration::from_millis(1),
        "ran {latency:?} after the enqueue call, delay {DELAY:?}"
    );
    assert!(
        latency <= DELAY + Duration::from_secs(1),
        "ran {latency:?} after the enqueue call: the idle worker was not woken for the due time"
    );
}

#[rmq::task(topic = "wakeup")]
async fn wakeup(probe: State<Probe<Instant>>) -> Result<(), TaskError> {
    probe.record(Instant::now());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_worker_is_woken_by_an_enqueue() {
    let env = Env::with(slow_fallback).await;
    let probe = Probe::<Instant>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Wakeup>()
        .state(probe.clone())
        .build()
        .unwrap();

    let test = async {
        // A first job, so the worker has fetched, run, and gone idle again.
        Wakeup {}.enqueue(&env.client).await.unwrap();
        probe.wait(|r| r.len() == 1).await;
        env.wait_idle(1).await;
        let before = Instant::now();
        Wakeup {}.enqueue(&env.client).await.unwrap();
        probe.wait(|r| r.len() == 2).await;
        before
    };
    let (before, ()) = tokio::join!(test, run(worker, probe.reached(2)));

    let latency = probe.records()[1] - before;
    assert!(
        latency < Duration::from_secs(1),
        "an idle worker took {latency:?} to pick up a new job"
    );
}

// ---------------------------------------------------------------------------
// 5. Retries, dead letters, permanent errors, panics, timeouts

#[rmq::task(topic = "flaky", retries = 3, retry_delays = ["10ms"])]
async fn flaky(ctx: JobContext, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(ctx.attempt);
    if ctx.attempt < 3 {
        return Err(TaskError::retryable(format!("not yet ({})", ctx.attempt)));
    }
    Ok(())
}

on_both!(
    failing_twice_then_succeeding_completes_on_attempt_three,
    |env| {
        Flaky {}.enqueue(&env.client).await.unwrap();
        let probe = Probe::<u32>::new();
        let worker = Worker::builder(env.client.clone())
            .task::<Flaky>()
            .state(probe.clone())
            .build()
            .unwrap();
        let metrics = worker.metrics_handle();
        run(worker, probe.reached(3)).await;

        assert_eq!(probe.records(), [1, 2, 3]);
        let stats = env.stats("flaky").await;
        assert_eq!((stats.completed, stats.failed, stats.dead), (1, 2, 0));
        assert_eq!(pending(&stats) + stats.processing + stats.delayed, 0);
        let metrics = metrics.snapshot();
        assert_eq!(
            (metrics.completed, metrics.retried, metrics.dead),
            (1, 2, 0)
        );
    }
);

#[rmq::task(topic = "doomed", retries = 3, retry_delays = ["10ms"])]
async fn doomed(ctx: JobContext, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(ctx.attempt);
    Err(TaskError::retryable(format!(
        "boom on attempt {}",
        ctx.attempt
    )))
}

on_both!(
    always_failing_job_is_dead_lettered_with_its_last_error,
    |env| {
        let id = Doomed {}.enqueue(&env.client).await.unwrap();
        let probe = Probe::<u32>::new();
        let worker = Worker::builder(env.client.clone())
            .task::<Doomed>()
            .state(probe.clone())
            .build()
            .unwrap();
        let metrics = worker.metrics_handle();
        run(worker, probe.reached(4)).await;

        assert_eq!(probe.records(), [1, 2, 3, 4]);
        let dead = env
            .broker()
            .dead_letter("doomed", id.as_str())
            .await
            .unwrap();
        assert_eq!(
            dead.envelope.context("doomed").attempt,
            4,
            "1 + retries attempts"
        );
        assert_eq!(dead.error, "boom on attempt 4");
        let listed = env.broker().dead_letters("doomed", 0, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        let stats = env.stats("doomed").await;
        assert_eq!((stats.dead, stats.failed, stats.completed), (1, 4, 0));
        assert_eq!(pending(&stats) + stats.processing + stats.delayed, 0);
        let metrics = metrics.snapshot();
        assert_eq!((metrics.retried, metrics.dead), (3, 1));
    }
);

#[rmq::task(topic = "refused", retries = 3, retry_delays = ["10ms"])]
async fn refused(amount: i64, probe: State<Probe<i64>>) -> Result<(), TaskError> {
    probe.record(amount);
    Err(TaskError::permanent(format!("negative amount {amount}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_error_dies_after_one_attempt() {
    let env = Env::new().await;
    let id = Refused { amount: -5 }.enqueue(&env.client).await.unwrap();
    let probe = Probe::<i64>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Refused>()
        .state(probe.clone())
        .build()
        .unwrap();
    run(worker, probe.reached(1)).await;

    assert_eq!(probe.records(), [-5]);
    let dead = env
        .broker()
        .dead_letter("refused", id.as_str())
        .await
        .unwrap();
    assert_eq!(dead.envelope.context("refused").attempt, 1);
    assert_eq!(dead.error, "negative amount -5");
    let stats = env.stats("refused").await;
    assert_eq!((stats.dead, stats.failed), (1, 1));
    assert_eq!(pending(&stats) + stats.processing + stats.delayed, 0);
}

/// A well-behaved task served next to the failing ones.
#[rmq::task(topic = "steady")]
async fn steady(n: u32, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(n);
    Ok(())
}

/// Marks a handler run that was dropped before it finished.
struct DropProbe(Probe<&'static str>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.record("dropped");
    }
}

#[rmq::task(topic = "panicky", retries = 1, retry_delays = ["10ms"])]
async fn panicky(ctx: JobContext, probe: State<Probe<&'static str>>) -> Result<(), TaskError> {
    if ctx.attempt == 1 {
        probe.record("panicking");
        panic!("kaboom");
    }
    probe.record("recovered");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_failed_attempt_and_the_worker_survives() {
    const STEADY: usize = 10;
    let env = Env::new().await;
    Panicky {}.enqueue(&env.client).await.unwrap();
    env.client
        .enqueue_many((0..STEADY as u32).map(|n| Steady { n }))
        .await
        .unwrap();
    let events = Probe::<&'static str>::new();
    let steady = Probe::<u32>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Panicky>()
        .task::<Steady>()
        .concurrency(1)
        .state(events.clone())
        .state(steady.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    let both = {
        let (events, steady) = (events.clone(), steady.clone());
        async move {
            tokio::join!(events.reached(2), steady.reached(STEADY));
        }
    };
    run(worker, both).await;

    assert_eq!(events.records(), ["panicking", "recovered"]);
    assert_eq!(steady.len(), STEADY);
    let stats = env.stats("panicky").await;
    assert_eq!((stats.completed, stats.failed, stats.dead), (1, 1, 0));
    assert_eq!(env.stats("steady").await.completed, STEADY as u64);
    let metrics = metrics.snapshot();
    assert_eq!((metrics.completed, metrics.retried), (STEADY as u64 + 1, 1));
}

#[rmq::task(topic = "stuck", retries = 0, timeout = "1s")]
async fn stuck(probe: State<Probe<&'static str>>) -> Result<(), TaskError> {
    let guard = DropProbe(Probe::clone(&*probe));
    probe.record("started");
    tokio::time::sleep(Duration::from_secs(60)).await;
    std::mem::forget(guard);
    probe.record("finished");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_over_its_timeout_is_cancelled_and_counted_as_failed() {
    const STEADY: usize = 10;
    let env = Env::new().await;
    let id = Stuck {}.enqueue(&env.client).await.unwrap();
    let events = Probe::<&'static str>::new();
    let steady = Probe::<u32>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Stuck>()
        .task::<Steady>()
        .concurrency(2)
        .state(events.clone())
        .state(steady.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();

    let test = async {
        events.wait(|r| r.contains(&"started")).await;
        // The stuck handler holds one runner; the other keeps working.
        env.client
            .enqueue_many((0..STEADY as u32).map(|n| Steady { n }))
            .await
            .unwrap();
        steady.wait(|r| r.len() == STEADY).await;
        assert!(
            !events.records().contains(&"dropped"),
            "the steady jobs should finish while the stuck one still runs"
        );
    };
    let stop = {
        let (events, steady) = (events.clone(), steady.clone());
        async move {
            tokio::join!(events.reached(2), steady.reached(STEADY));
        }
    };
    let started = Instant::now();
    tokio::join!(test, run(worker, stop));

    assert_eq!(events.records(), ["started", "dropped"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not cut the handler short"
    );
    let dead = env
        .broker()
        .dead_letter("stuck", id.as_str())
        .await
        .unwrap();
    assert!(dead.error.contains("timed out"), "{}", dead.error);
    let stats = env.stats("stuck").await;
    assert_eq!((stats.failed, stats.dead, stats.completed), (1, 1, 0));
    assert_eq!(env.stats("steady").await.completed, STEADY as u64);
    let metrics = metrics.snapshot();
    assert_eq!((metrics.completed, metrics.dead), (STEADY as u64, 1));
}

// ---------------------------------------------------------------------------
// 6. Payloads that do not decode

#[rmq::task(topic = "parsed")]
async fn parsed(n: u32, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(n);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_payload_goes_to_the_parse_error_store() {
    let env = Env::new().await;
    // 0xc1 is never used by MessagePack.
    let bogus: &[u8] = &[0xc1, 0xff, 0x00];
    env.enqueue_raw("parsed", bogus).await;
    Parsed { n: 7 }.enqueue(&env.client).await.unwrap();

    let probe = Probe::<u32>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Parsed>()
        .concurrency(1)
        .state(probe.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    run(worker, probe.reached(1)).await;

    assert_eq!(probe.records(), [7]);
    let errors = env.broker().parse_errors("parsed", 0, 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    let errors: Vec<_> = errors.into_iter().map(Result::unwrap).collect();
    assert!(
        errors[0].raw.ends_with(bogus),
        "raw bytes kept: {:?}",
        errors[0].raw
    );
    assert!(!errors[0].error.is_empty());
    let stats = env.stats("parsed").await;
    assert_eq!((stats.parse_errors, stats.completed, stats.dead), (1, 1, 0));
    assert_eq!(pending(&stats) + stats.processing + stats.delayed, 0);
    let metrics = metrics.snapshot();
    assert_eq!(
        (metrics.malformed, metrics.completed, metrics.retried),
        (1, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_payload_goes_to_the_parse_error_store() {
    let env = Env::new().await;
    // 10,000 nested one-element arrays: a decoder recursing once per level
    // would overflow the worker's stack.
    let mut deep = vec![0x91; 10_000];
    deep.push(0xc0);
    env.enqueue_raw("parsed", &deep).await;
    Parsed { n: 8 }.enqueue(&env.client).await.unwrap();

    let probe = Probe::<u32>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Parsed>()
        .concurrency(1)
        .state(probe.clone())
        .build()
        .unwrap();
    run(worker, probe.reached(1)).await;

    assert_eq!(probe.records(), [8]);
    let errors = env.broker().parse_errors("parsed", 0, 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    let entry = errors[0].as_ref().expect("a readable entry");
    assert!(entry.raw.ends_with(&deep));
    assert!(
        entry.error.contains("depth limit exceeded"),
        "{}",
        entry.error
    );
    let stats = env.stats("parsed").await;
    assert_eq!((stats.parse_errors, stats.completed, stats.dead), (1, 1, 0));
}

// ---------------------------------------------------------------------------
// 7. State and context injection

/// Application state registered on the worker.
struct AppState {
    greeting: String,
}

#[rmq::task(topic = "inspect", retries = 2)]
async fn inspect(
    label: String,
    ctx: JobContext,
    app: State<AppState>,
    probe: State<Probe<(String, String, JobContext)>>,
) -> Result<(), TaskError> {
    probe.record((label, app.greeting.clone(), ctx));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_gets_the_registered_state_and_its_job_context() {
    let env = Env::new().await;
    let generated = Inspect { label: "a".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let explicit = Inspect { label: "b".into() }
        .job_id("job-b")
        .priority(Priority::High)
        .enqueue(&env.client)
        .await
        .unwrap();
    assert_eq!(explicit.as_str(), "job-b");

    let probe = Probe::<(String, String, JobContext)>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Inspect>()
        .concurrency(1)
        .state(AppState {
            greeting: "hello".into(),
        })
        .state(probe.clone())
        .build()
        .unwrap();
    run(worker, probe.reached(2)).await;

    let records = probe.records();
    // High runs first.
    let (label, greeting, ctx) = &records[0];
    assert_eq!((label.as_str(), greeting.as_str()), ("b", "hello"));
    assert_eq!(ctx.id, explicit);
    assert_eq!(ctx.topic, "inspect");
    assert_eq!((ctx.attempt, ctx.max_retries), (1, 2));
    assert_eq!(ctx.priority, Priority::High);
    let (label, greeting, ctx) = &records[1];
    assert_eq!((label.as_str(), greeting.as_str()), ("a", "hello"));
    assert_eq!(ctx.id, generated);
    assert_eq!(ctx.topic, "inspect");
    assert_eq!(ctx.attempt, 1);
    assert_eq!(ctx.priority, Priority::Normal);
    let age = SystemTime::now().duration_since(ctx.enqueued_at).unwrap();
    assert!(age < LIMIT, "enqueued_at is {age:?} ago");
}

// ---------------------------------------------------------------------------
// 8. Lease extension

#[rmq::task(topic = "long")]
async fn long_job(probe: State<Probe<&'static str>>) -> Result<(), TaskError> {
    probe.record("start");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    probe.record("end");
    Ok(())
}

/// Two workers of `long` on separate clients, each with its own probe.
async fn two_long_job_workers(
    env: &Env,
) -> (Probe<&'static str>, Worker, Probe<&'static str>, Worker) {
    let first = Probe::<&'static str>::new();
    let second = Probe::<&'static str>::new();
    let worker_a = Worker::builder(env.client.clone())
        .task::<LongJob>()
        .state(first.clone())
        .build()
        .unwrap();
    let worker_b = Worker::builder(env.second_client().await)
        .task::<LongJob>()
        .state(second.clone())
        .build()
        .unwrap();
    (first, worker_a, second, worker_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_renewed_while_a_long_handler_runs() {
    let env = Env::with(|c| {
        // The handler runs three leases long. The keeper renews every third
        // of a lease, so only a stall of two thirds of one (333 ms) on a
        // starved machine would lose it.
        c.lease = Duration::from_millis(500);
        c.processing_monitor_interval = Duration::from_millis(50);
    })
    .await;
    let (first, worker_a, second, worker_b) = two_long_job_workers(&env).await;
    let (metrics_a, metrics_b) = (worker_a.metrics_handle(), worker_b.metrics_handle());

    LongJob {}.enqueue(&env.client).await.unwrap();
    let done = first.until(|r| r.contains(&"end"));
    let a = tokio::spawn(run(worker_a, done));
    // Worker B (whose monitor recovers expired leases) starts once A runs the job.
    first.wait(|r| r.contains(&"start")).await;
    run(worker_b, first.until(|r| r.contains(&"end"))).await;
    tokio::time::timeout(LIMIT, a).await.unwrap().unwrap();

    assert_eq!(first.records(), ["start", "end"]);
    assert!(
        second.records().is_empty(),
        "the job ran again: {:?}",
        second.records()
    );
    let stats = env.stats("long").await;
    assert_eq!((stats.completed, stats.failed), (1, 0));
    assert_eq!(env.broker().counter("long", "recovered").await.unwrap(), 0);
    assert_eq!(metrics_a.snapshot().completed, 1);
    assert_eq!(metrics_a.snapshot().lease_lost, 0);
    assert_eq!(metrics_b.snapshot().completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_renewed_through_the_shutdown_grace_period() {
    let env = Env::with(|c| {
        c.lease = Duration::from_millis(500);
        c.processing_monitor_interval = Duration::from_millis(50);
        c.shutdown_grace = Duration::from_secs(10);
    })
    .await;
    let (first, worker_a, second, worker_b) = two_long_job_workers(&env).await;

    LongJob {}.enqueue(&env.client).await.unwrap();
    // A is told to stop as soon as the job starts: the handler, three leases
    // long, finishes within A's grace period while B's monitor watches.
    let a = tokio::spawn(run(worker_a, first.until(|r| r.contains(&"start"))));
    first.wait(|r| r.contains(&"start")).await;
    run(worker_b, first.until(|r| r.contains(&"end"))).await;
    tokio::time::timeout(LIMIT, a).await.unwrap().unwrap();

    assert_eq!(first.records(), ["start", "end"]);
    assert!(
        second.records().is_empty(),
        "the job ran again while the stopping worker still ran it: {:?}",
        second.records()
    );
    let stats = env.stats("long").await;
    assert_eq!((stats.completed, stats.failed), (1, 0));
    assert_eq!(env.broker().counter("long", "recovered").await.unwrap(), 0);
}

// ---------------------------------------------------------------------------
// 9. Graceful shutdown

/// (finished, seq): `false` when a run starts, `true` when it ends.
type Runs = Probe<(bool, u32)>;

/// How long each `slow` run takes, set per worker.
#[derive(Clone, Copy)]
struct Pause(Duration);

#[rmq::task(topic = "slow")]
async fn slow(seq: u32, pause: State<Pause>, probe: State<Runs>) -> Result<(), TaskError> {
    probe.record((false, seq));
    let Pause(pause) = *pause;
    tokio::time::sleep(pause).await;
    probe.record((true, seq));
    Ok(())
}

fn started(records: &[(bool, u32)]) -> Vec<u32> {
    records.iter().filter(|r| !r.0).map(|r| r.1).collect()
}

fn finished(records: &[(bool, u32)]) -> Vec<u32> {
    records.iter().filter(|r| r.0).map(|r| r.1).collect()
}

on_both!(stopping_finishes_running_jobs_and_returns_the_rest, |env| {
    const N: u32 = 10;
    env.client
        .enqueue_many((0..N).map(|seq| Slow { seq }))
        .await
        .unwrap();

    let probe = Runs::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Slow>()
        .concurrency(2)
        .state(Pause(Duration::from_millis(400)))
        .state(probe.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    // Stop as soon as two handlers run (each takes 400 ms).
    run(worker, probe.until(|r| started(r).len() == 2)).await;

    let records = probe.records();
    let mut running = started(&records);
    running.sort_unstable();
    assert_eq!(
        running,
        [0, 1],
        "the first two jobs run, nothing else starts"
    );
    let mut done = finished(&records);
    done.sort_unstable();
    assert_eq!(
        done,
        [0, 1],
        "the running jobs finish before the worker stops"
    );
    assert_eq!(metrics.snapshot().completed, 2);
    let stats = env.stats("slow").await;
    assert_eq!(stats.completed, 2);
    assert_eq!(pending(&stats), u64::from(N) - 2);
    assert_eq!((stats.processing, stats.delayed), (0, 0));

    // A second worker runs the rest, in their original order.
    let probe2 = Runs::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Slow>()
        .concurrency(1)
        .state(Pause(Duration::ZERO))
        .state(probe2.clone())
        .build()
        .unwrap();
    run(
        worker,
        probe2.until(|r| finished(r).len() == N as usize - 2),
    )
    .await;
    let records = probe2.records();
    assert_eq!(started(&records), (2..N).collect::<Vec<_>>());
    assert_eq!(finished(&records), (2..N).collect::<Vec<_>>());
    let stats = env.stats("slow").await;
    assert_eq!(stats.completed, u64::from(N));
    assert_eq!(pending(&stats) + stats.processing + stats.delayed, 0);
});

// ---------------------------------------------------------------------------
// 10. Builder errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_rejects_unknown_topics_fake_clients_and_bad_config() {
    let env = Env::new().await;

    // The link-time registry (this file's tasks) has no such topic.
    match Worker::builder(env.client.clone())
        .topics(["no-such-topic"])
        .build()
    {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, "no-such-topic"),
        other => panic!("expected UnknownTopic, got {:?}", other.err()),
    }
    // Explicit tasks limit the topics to theirs.
    match Worker::builder(env.client.clone())
        .task::<E2eJob>()
        .topics(["steady"])
        .build()
    {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, "steady"),
        other => panic!("expected UnknownTopic, got {:?}", other.err()),
    }
    // A task's `State<T>` must be registered before the worker starts.
    match Worker::builder(env.client.clone())
        .topics(["steady"])
        .build()
    {
        Err(error @ Error::MissingState { .. }) => {
            let message = error.to_string();
            assert!(message.contains("Probe<u32>"), "{message}");
            assert!(message.contains(".state("), "{message}");
        }
        other => panic!("expected MissingState, got {:?}", other.err()),
    }
    // The registry serves a selected topic.
    let worker = Worker::builder(env.client.clone())
        .topics(["steady"])
        .state(Probe::<u32>::new())
        .build()
        .unwrap();
    assert_eq!(worker.topics(), ["steady"]);

    match Worker::builder(Client::fake()).task::<E2eJob>().build() {
        Err(error @ Error::NotRedis(_)) => {
            assert!(error.to_string().contains("Redis"), "{error}")
        }
        other => panic!("expected NotRedis, got {:?}", other.err()),
    }

    match Worker::builder(env.client.clone())
        .task::<E2eJob>()
        .concurrency(0)
        .build()
    {
        Err(
            error @ Error::Config {
                option: "max_workers",
                ..
            },
        ) => {
            assert!(error.to_string().contains("max_workers"), "{error}")
        }
        other => panic!("expected a max_workers error, got {:?}", other.err()),
    }
}
