//! Typed results through the facade: `keep_result` tasks on real workers
//! (standalone Redis and Cluster), read by id from other clients, their
//! time to live, dead and cancelled outcomes, and the fake and inline
//! clients.

mod support;

use std::time::{Duration, Instant};

use rmq::broker::RESULT_RECHECK;
use rmq::{Cancelled, Client, Job, JobContext, ResultError, State, TaskError, Worker};
use support::{run, Deployment, Env, Probe, LIMIT};

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

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Priced {
    total: u64,
    text: String,
}

#[rmq::task(topic = "r_quote", keep_result = "1h")]
async fn quote(items: Vec<u64>, probe: State<Probe<u64>>) -> Result<Priced, TaskError> {
    let total = items.iter().sum();
    probe.record(total);
    Ok(Priced {
        total,
        text: format!("{} items", items.len()),
    })
}

on_both!(a_result_is_read_by_id_from_other_clients, |env| {
    // The producer, the worker and the reader each have a client of their
    // own, as three processes would.
    let worker_client = env.second_client().await;
    let reader = env.second_client().await;
    let probe = Probe::<u64>::new();
    let job: Job<Priced> = Quote {
        items: vec![1, 2, 3],
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    assert_eq!(job.topic(), "r_quote");
    assert_eq!(job.try_result().await.unwrap(), None, "not run yet");
    assert!(job.status().await.unwrap().is_some(), "indexed");

    let worker = Worker::builder(worker_client)
        .task::<Quote>()
        .state(probe.clone())
        .build()
        .unwrap();
    let waiting = job.clone();
    let got = tokio::spawn(async move { waiting.result_timeout(LIMIT).await });
    run(worker, async {
        probe.wait(|runs| runs.len() == 1).await;
    })
    .await;
    let expected = Priced {
        total: 6,
        text: "3 items".into(),
    };
    assert_eq!(got.await.unwrap().unwrap(), expected);
    assert_eq!(
        reader
            .result::<Priced>("r_quote", job.id().as_str())
            .await
            .unwrap(),
        Some(expected.clone())
    );
    let by_handle: Job<Priced> = reader.handle::<Quote>(job.id().clone());
    assert_eq!(by_handle.result().await.unwrap(), expected);
    assert_eq!(probe.records(), [6], "ran once");
    // A completed job leaves its index; its result stays.
    assert!(job.status().await.unwrap().is_none());
});

#[rmq::task(topic = "r_short", keep_result = "300ms")]
async fn short_lived(n: u32) -> Result<u32, TaskError> {
    Ok(n + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_result_expires_after_its_time_to_live() {
    let env = Env::new().await;
    let job = ShortLived { n: 1 }.enqueue(&env.client).await.unwrap();
    let worker = Worker::builder(env.second_client().await)
        .task::<ShortLived>()
        .build()
        .unwrap();
    let waiting = job.clone();
    run(worker, async move {
        assert_eq!(waiting.result_timeout(LIMIT).await.unwrap(), 2);
    })
    .await;
    let mut raw = env.raw().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{{r_short}}:result:{}", job.id()))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((1..=300).contains(&ttl), "the result lives 300 ms: {ttl}");
    // Expiry is Redis's clock: look until it is gone.
    let deadline = Instant::now() + LIMIT;
    loop {
        match job.try_result().await {
            Ok(Some(2)) => {}
            Err(ResultError::Unknown { id, .. }) => {
                assert_eq!(&id, job.id());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline, "the result never expired");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(matches!(
        job.result().await,
        Err(ResultError::Unknown { .. })
    ));
}

#[rmq::task(topic = "r_fails", keep_result = "1h", retries = 1, retry_delays = ["10ms"])]
async fn fails(ctx: JobContext, probe: State<Probe<u32>>) -> Result<String, TaskError> {
    probe.record(ctx.attempt);
    Err(TaskError::retryable(std::io::Error::other(
        "upstream is down",
    )))
}

on_both!(a_dead_job_yields_its_error_without_a_hang, |env| {
    let probe = Probe::<u32>::new();
    let job: Job<String> = Fails {}.enqueue(&env.client).await.unwrap();
    let worker = Worker::builder(env.second_client().await)
        .task::<Fails>()
        .state(probe.clone())
        .build()
        .unwrap();
    let waiting = job.clone();
    let mut got = tokio::spawn(async move { waiting.result_timeout(LIMIT).await });
    let mut outcome = None;
    run(worker, async {
        probe.wait(|attempts| attempts.len() == 2).await;
        // Reported by the worker that saw it die: the waiter is woken, well
        // before its next re-check of the status.
        outcome = Some(
            tokio::time::timeout(RESULT_RECHECK / 2, &mut got)
                .await
                .expect("the waiter was woken when the job died")
                .unwrap(),
        );
    })
    .await;
    match outcome.unwrap() {
        Err(ResultError::Dead { topic, id, error }) => {
            assert_eq!(topic, "r_fails");
            assert_eq!(&id, job.id());
            assert!(error.contains("upstream is down"), "{error}");
        }
        other => panic!("expected a dead job, got {other:?}"),
    }
    assert_eq!(probe.records(), [1, 2]);
});

#[rmq::task(topic = "r_cancel", keep_result = "1h")]
async fn waits_for_cancel(ctx: JobContext, probe: State<Probe<u32>>) -> Result<u64, TaskError> {
    probe.record(ctx.attempt);
    ctx.cancelled().await;
    Err(TaskError::cancelled())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_cancelled_yields_cancelled() {
    let env = Env::new().await;
    let job = WaitsForCancel {}.enqueue(&env.client).await.unwrap();
    let waiting = job.clone();
    let got = tokio::spawn(async move { waiting.result_timeout(LIMIT).await });
    assert_eq!(
        env.client
            .cancel("r_cancel", job.id().as_str())
            .await
            .unwrap(),
        Cancelled::Removed
    );
    // Cancelled inside a script, which tells no waiter: seen at the next
    // re-check of the status.
    let outcome = tokio::time::timeout(RESULT_RECHECK * 3, got)
        .await
        .expect("the waiter saw the cancel within its re-check")
        .unwrap();
    assert!(
        matches!(outcome, Err(ResultError::Cancelled { ref topic, .. }) if topic == "r_cancel"),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_cancelled_yields_cancelled() {
    let env = Env::with(|config| {
        config.lease = Duration::from_millis(900);
    })
    .await;
    let probe = Probe::<u32>::new();
    let job = WaitsForCancel {}.enqueue(&env.client).await.unwrap();
    let worker = Worker::builder(env.second_client().await)
        .task::<WaitsForCancel>()
        .state(probe.clone())
        .build()
        .unwrap();
    let waiting = job.clone();
    let got = tokio::spawn(async move { waiting.result_timeout(LIMIT).await });
    let client = env.client.clone();
    let id = job.id().clone();
    run(worker, async move {
        probe.wait(|runs| runs.len() == 1).await;
        assert_eq!(
            client.cancel("r_cancel", id.as_str()).await.unwrap(),
            Cancelled::Signalled
        );
        let outcome = got.await.unwrap();
        assert!(
            matches!(outcome, Err(ResultError::Cancelled { .. })),
            "{outcome:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_times_out_while_the_job_is_queued() {
    let env = Env::new().await;
    let job = ShortLived { n: 1 }.enqueue(&env.client).await.unwrap();
    let started = Instant::now();
    let outcome = job.result_timeout(Duration::from_millis(200)).await;
    assert!(
        matches!(outcome, Err(ResultError::Timeout { after, .. }) if after == Duration::from_millis(200)),
        "{outcome:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[rmq::task(topic = "r_double", keep_result = "1m")]
async fn double(n: u64) -> Result<u64, TaskError> {
    Ok(n * 2)
}

#[tokio::test]
async fn inline_and_fake_clients_have_results() {
    let inline = Client::inline();
    let job = Double { n: 21 }.enqueue(&inline).await.unwrap();
    assert_eq!(job.result().await.unwrap(), 42);
    assert_eq!(
        inline
            .result::<u64>("r_double", job.id().as_str())
            .await
            .unwrap(),
        Some(42)
    );

    let fake = Client::fake();
    let job = Double { n: 1 }.enqueue(&fake).await.unwrap();
    assert_eq!(
        job.try_result().await.unwrap(),
        None,
        "a fake job never runs"
    );
    assert!(matches!(
        job.result().await,
        Err(ResultError::Timeout { .. })
    ));
    fake.complete_fake::<Double>(job.id().as_str(), &7);
    assert_eq!(job.result().await.unwrap(), 7);
}
