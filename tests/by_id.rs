//! Jobs by id through the facade: typed status, cancelling running handlers
//! on real workers, and the fake and inline clients.

mod support;

use std::time::Duration;

use rmq::{
    Cancelled, Client, JobContext, JobOutcome, JobState, Priority, State, TaskError, Worker,
};
use support::{run, Env, Probe};

#[rmq::task(topic = "orders", index = true, retries = 3)]
async fn charge(order: String, amount: u64) -> Result<(), TaskError> {
    let _ = (order, amount);
    Ok(())
}

#[tokio::test]
async fn a_queued_job_is_read_back_typed_then_cancelled() {
    let env = Env::new().await;
    let id = Charge {
        order: "o-1".into(),
        amount: 250,
    }
    .priority(Priority::High)
    .enqueue(&env.client)
    .await
    .unwrap();
    let job = env
        .client
        .job::<Charge>(id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.payload.order, "o-1");
    assert_eq!(job.payload.amount, 250);
    assert_eq!(job.max_retries, 3);
    assert_eq!(
        job.state,
        JobState::Pending {
            priority: Priority::High,
            position: Some(0)
        }
    );
    assert_eq!(
        env.client.cancel("orders", id.as_str()).await.unwrap(),
        Cancelled::Removed
    );
    let job = env
        .client
        .job::<Charge>(id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(job.state, JobState::Cancelled { .. }));
    assert_eq!(job.state.name(), "cancelled");
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Started(u32),
    Cancelled,
}

#[rmq::task(topic = "cancellable", index = true, retries = 3, retry_delays = ["10ms"])]
async fn cancellable(
    ctx: JobContext,
    mode: String,
    probe: State<Probe<Seen>>,
) -> Result<(), TaskError> {
    probe.record(Seen::Started(ctx.attempt));
    ctx.cancelled().await;
    probe.record(Seen::Cancelled);
    assert!(ctx.is_cancelled());
    match mode.as_str() {
        "cancelled" => Err(TaskError::cancelled()),
        // An error after the signal: still not retried.
        _ => Err(TaskError::retryable(std::io::Error::other("interrupted"))),
    }
}

async fn cancel_running(mode: &str) {
    let env = Env::with(|config| {
        // Renewal every 300 ms; recovery would only start after 900 ms.
        config.lease = Duration::from_millis(900);
        config.processing_monitor_interval = Duration::from_millis(100);
    })
    .await;
    let probe = Probe::<Seen>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Cancellable>()
        .state(probe.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    let id = Cancellable { mode: mode.into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let client = env.client.clone();
    let stop = {
        let probe = probe.clone();
        async move {
            probe.wait(|seen| seen.contains(&Seen::Started(1))).await;
            assert_eq!(
                client.cancel("cancellable", id.as_str()).await.unwrap(),
                Cancelled::Signalled
            );
            // The worker stops once the job has ended cancelled.
            loop {
                let status = client.status("cancellable", id.as_str()).await.unwrap();
                if matches!(status.map(|s| s.state), Some(JobState::Cancelled { .. })) {
                    break;
                }
                probe.until(|seen| seen.contains(&Seen::Cancelled)).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    run(worker, stop).await;
    assert_eq!(
        probe.records(),
        [Seen::Started(1), Seen::Cancelled],
        "never retried"
    );
    let stats = env.stats("cancellable").await;
    assert_eq!((stats.delayed, stats.dead), (0, 1));
    assert_eq!(stats.processing, 0);
    // Seen through the renewal, before the lease could expire and be
    // recovered.
    assert_eq!(
        env.broker()
            .counter("cancellable", "recovered")
            .await
            .unwrap(),
        0
    );
    assert_eq!(metrics.snapshot().cancelled, 1);
    assert_eq!(metrics.snapshot().retried, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_handler_sees_the_token_and_is_not_retried() {
    cancel_running("cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_error_after_the_signal_ends_the_job_cancelled() {
    cancel_running("error").await;
}

#[rmq::task(topic = "one_at_a_time", index = true, retries = 3)]
async fn one_at_a_time(
    ctx: JobContext,
    name: String,
    probe: State<Probe<String>>,
) -> Result<(), TaskError> {
    probe.record(format!("started {name}"));
    ctx.cancelled().await;
    Err(TaskError::cancelled())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_asked_to_cancel_while_it_waits_for_a_runner_never_runs() {
    let env = Env::with(|config| {
        config.lease = Duration::from_millis(900);
        config.processing_monitor_interval = Duration::from_millis(100);
    })
    .await;
    let probe = Probe::<String>::new();
    // One handler: the second job is fetched and held while the first runs.
    let worker = Worker::builder(env.client.clone())
        .task::<OneAtATime>()
        .concurrency(1)
        .state(probe.clone())
        .build()
        .unwrap();
    let metrics = worker.metrics_handle();
    let first = OneAtATime {
        name: "first".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let second = OneAtATime {
        name: "second".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let client = env.client.clone();
    let stop = {
        let probe = probe.clone();
        async move {
            probe
                .wait(|seen| seen.contains(&"started first".to_owned()))
                .await;
            // The waiting job first: the running one ends only once asked.
            for id in [&second, &first] {
                assert_eq!(
                    client.cancel("one_at_a_time", id.as_str()).await.unwrap(),
                    Cancelled::Signalled
                );
            }
            loop {
                let status = client
                    .status("one_at_a_time", second.as_str())
                    .await
                    .unwrap();
                if matches!(status.map(|s| s.state), Some(JobState::Cancelled { .. })) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    run(worker, stop).await;
    assert_eq!(probe.records(), ["started first"], "the second never ran");
    assert_eq!(metrics.snapshot().cancelled, 2);
    assert_eq!(metrics.snapshot().retried, 0);
}

#[tokio::test]
async fn fake_and_inline_clients() {
    let fake = Client::fake();
    let id = Charge {
        order: "o-2".into(),
        amount: 1,
    }
    .enqueue(&fake)
    .await
    .unwrap();
    let job = fake.job::<Charge>(id.as_str()).await.unwrap().unwrap();
    assert_eq!(job.payload.order, "o-2");
    assert!(matches!(job.state, JobState::Pending { .. }));
    assert_eq!(
        fake.cancel("orders", id.as_str()).await.unwrap(),
        Cancelled::Removed
    );
    assert!(fake.enqueued::<Charge>().is_empty());
    assert_eq!(
        fake.cancel("orders", id.as_str()).await.unwrap(),
        Cancelled::NotFound
    );

    let inline = Client::inline();
    GiveUp {}.enqueue(&inline).await.unwrap();
    let outcomes = inline.outcomes();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].result, JobOutcome::Cancelled);
    assert_eq!(outcomes[0].attempts, 1, "not retried");
    assert_eq!(inline.status("give_up", "1").await.unwrap(), None);
}

#[rmq::task(retries = 5)]
async fn give_up() -> Result<(), TaskError> {
    Err(TaskError::cancelled())
}

#[rmq::task(topic = "tenants", index = true, rate_key = "tenant")]
async fn per_tenant(tenant: String, n: u32) -> Result<(), TaskError> {
    let _ = (tenant, n);
    Ok(())
}

#[tokio::test]
async fn a_job_in_its_keys_sub_queue_is_found_and_cancelled() {
    let env = Env::new().await;
    let first = PerTenant {
        tenant: "acme".into(),
        n: 1,
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let second = PerTenant {
        tenant: "acme".into(),
        n: 2,
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let status = env.client.status("tenants", second.as_str()).await.unwrap();
    assert!(
        matches!(
            status.map(|s| s.state),
            Some(JobState::Pending {
                position: Some(1),
                ..
            })
        ),
        "second in its tenant's sub-queue"
    );
    assert_eq!(
        env.client.cancel("tenants", first.as_str()).await.unwrap(),
        Cancelled::Removed
    );
    let limits = rmq::Limits {
        keyed: true,
        ..rmq::Limits::NONE
    };
    let fetched = env
        .broker()
        .fetch_limited("tenants", 10, Duration::from_secs(30), &limits)
        .await
        .unwrap();
    let ids: Vec<&str> = fetched.jobs.iter().map(|j| j.id()).collect();
    assert_eq!(ids, [second.as_str()], "the cancelled job never runs");
}
