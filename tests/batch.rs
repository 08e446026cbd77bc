//! Batches through the facade: a thousand children over two topics on real
//! workers, some dying, and one callback with the right counts; children
//! ended without a worker (cancelled while queued, dead at lease recovery)
//! and one cancelled while it runs;
//! counting each child once; a batch on a cluster, its children on other
//! shards than its record; the fake and inline clients.

mod support;

use std::time::Duration;

use rmq::{Batch, BatchOutcome, Client, JobOutcome, State, TaskError, Worker};
use support::{pending, run, Deployment, Env, Probe};

#[rmq::task(topic = "batch.resize", retries = 1, retry_delays = ["10ms"])]
async fn resize(n: u32, fail: bool) -> Result<(), TaskError> {
    let _ = n;
    match fail {
        false => Ok(()),
        // Fails retryably on both attempts: dead once the retry is used.
        true => Err(TaskError::retryable("resize failed")),
    }
}

#[rmq::task(topic = "batch.upload")]
async fn upload(n: u32, broken: bool) -> Result<(), TaskError> {
    match broken {
        false => Ok(()),
        true => Err(TaskError::permanent(format!("file {n} is broken"))),
    }
}

#[rmq::task(topic = "batch.report", on = BatchOutcome)]
async fn report(
    outcome: BatchOutcome,
    reports: State<Probe<BatchOutcome>>,
) -> Result<(), TaskError> {
    reports.record(outcome);
    Ok(())
}

#[rmq::task(topic = "batch.once", retries = 0)]
async fn once(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[rmq::task(topic = "batch.waits")]
async fn waits(ctx: rmq::JobContext, started: State<Probe<String>>) -> Result<(), TaskError> {
    started.record(ctx.id.to_string());
    ctx.cancelled().await;
    Err(TaskError::cancelled())
}

fn worker(client: &Client, reports: &Probe<BatchOutcome>) -> Worker {
    Worker::builder(client.clone())
        .task::<Resize>()
        .task::<Upload>()
        .task::<Report>()
        .state(reports.clone())
        .concurrency(32)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_thousand_children_over_two_topics_fire_the_callback_once_with_their_counts() {
    let env = Env::new().await;
    let mut batch = Batch::new();
    for n in 0..600 {
        batch = batch.push(Resize {
            n,
            fail: n % 40 == 0,
        });
    }
    for n in 0..400 {
        batch = batch.push(Upload {
            n,
            broken: n % 50 == 7,
        });
    }
    let id = batch
        .on_complete::<Report>()
        .enqueue(&env.client)
        .await
        .unwrap();
    let progress = env.client.batch(id.as_str()).await.unwrap().unwrap();
    assert_eq!((progress.outcome.total, progress.pending()), (1000, 1000));
    assert!(!progress.fired);

    let reports = Probe::<BatchOutcome>::new();
    let client = env.client.clone();
    let waiting = reports.clone();
    run(worker(&env.client, &reports), async move {
        waiting.reached(1).await;
        // Every callback job that could exist has run by the time its
        // topic has nothing queued or running.
        support::wait_for(|| {
            let client = client.clone();
            async move {
                let stats = client
                    .broker()
                    .unwrap()
                    .stats("batch.report")
                    .await
                    .unwrap();
                pending(&stats) + stats.processing + stats.delayed == 0
            }
        })
        .await;
    })
    .await;

    let expected = BatchOutcome {
        id: id.to_string(),
        total: 1000,
        succeeded: 1000 - 15 - 8,
        dead: 15 + 8,
        cancelled: 0,
    };
    assert_eq!(
        reports.records(),
        std::slice::from_ref(&expected),
        "exactly one callback"
    );
    let progress = env.client.batch(id.as_str()).await.unwrap().unwrap();
    assert_eq!(progress.outcome, expected);
    assert!(progress.fired && progress.is_complete());
    assert_eq!(progress.callback.as_deref(), Some("batch.report"));
    assert_eq!(env.stats("batch.resize").await.dead, 15);
    assert_eq!(env.stats("batch.upload").await.dead, 8);
    assert_eq!(env.stats("batch.report").await.completed, 1);
}

#[tokio::test]
async fn on_a_cluster_children_on_other_shards_than_the_record_are_counted() {
    let cluster = tokio::task::spawn_blocking(rmq_testkit::Cluster::shared)
        .await
        .unwrap();
    // The prefix decides the slots: take one under which the children's
    // topics live on two shards, so at least one is not the record's.
    let env = loop {
        let env = Env::on(Deployment::Cluster).await;
        let prefix = env.client.config().queue_prefix.clone();
        let shards: std::collections::HashSet<u16> = ["batch.resize", "batch.upload"]
            .iter()
            .map(|topic| cluster.primary_of_key(&format!("{{{prefix}:{topic}}}:high")))
            .collect();
        if shards.len() == 2 {
            break env;
        }
    };
    let mut batch = Batch::new();
    for n in 0..60 {
        batch = batch
            .push(Resize { n, fail: n == 7 })
            .push(Upload { n, broken: false });
    }
    let id = batch
        .on_complete::<Report>()
        .enqueue(&env.client)
        .await
        .unwrap();
    let reports = Probe::<BatchOutcome>::new();
    let waiting = reports.clone();
    run(worker(&env.client, &reports), async move {
        waiting.reached(1).await;
    })
    .await;
    assert_eq!(
        reports.records(),
        [BatchOutcome {
            id: id.to_string(),
            total: 120,
            succeeded: 119,
            dead: 1,
            cancelled: 0,
        }]
    );
}

#[tokio::test]
async fn a_child_reported_twice_is_counted_once() {
    let env = Env::new().await;
    let id = Batch::new()
        .push(Once { n: 1 })
        .push(Once { n: 2 })
        .on_complete::<Report>()
        .enqueue(&env.client)
        .await
        .unwrap();
    let first = id.child(0);
    let broker = env.broker();
    for _ in 0..3 {
        // As a retried ack, or a child re-run after a crash, would report it.
        broker
            .batch_jobs_ended(&[(first.as_str(), rmq::BatchEnd::Succeeded)])
            .await
            .unwrap();
    }
    broker
        .batch_jobs_ended(&[(first.as_str(), rmq::BatchEnd::Dead)])
        .await
        .unwrap();
    let progress = env.client.batch(id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (
            progress.outcome.succeeded,
            progress.outcome.dead,
            progress.pending()
        ),
        (1, 0, 1)
    );
    assert!(!progress.fired);
    assert_eq!(pending(&env.stats("batch.report").await), 0);

    // The last child: the callback is enqueued once, however often the
    // completion is reported.
    let second = id.child(1);
    for _ in 0..2 {
        broker
            .batch_jobs_ended(&[(second.as_str(), rmq::BatchEnd::Succeeded)])
            .await
            .unwrap();
    }
    let progress = env.client.batch(id.as_str()).await.unwrap().unwrap();
    assert!(progress.fired && progress.is_complete());
    assert_eq!(pending(&env.stats("batch.report").await), 1);
    let callback = env
        .client
        .job::<Report>(id.callback().as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        callback.payload.outcome,
        BatchOutcome {
            id: id.to_string(),
            total: 2,
            succeeded: 2,
            dead: 0,
            cancelled: 0,
        }
    );
}

#[tokio::test]
async fn children_ended_without_a_worker_are_counted() {
    let env = Env::with(|config| config.max_retries = 0).await;
    let id = Batch::new()
        .push(Once { n: 1 })
        .push(Once { n: 2 })
        .on_complete::<Report>()
        .enqueue(&env.client)
        .await
        .unwrap();
    // Child 0: cancelled while queued.
    assert_eq!(
        env.client
            .cancel("batch.once", id.child(0).as_str())
            .await
            .unwrap(),
        rmq::Cancelled::Removed
    );
    // Child 1: leased by a worker that vanished, on its last attempt; lease
    // recovery dead-letters it.
    let broker = env.broker();
    let lease = Duration::from_millis(20);
    let fetched = broker.fetch("batch.once", 10, lease).await.unwrap();
    assert_eq!(fetched.jobs.len(), 1);
    tokio::time::sleep(lease * 2).await; // the lease has to run out
    let recovered = broker.recover("batch.once", 10).await.unwrap();
    assert_eq!(recovered.dead, 1);

    let progress = env.client.batch(id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        (
            progress.outcome.cancelled,
            progress.outcome.dead,
            progress.pending()
        ),
        (1, 1, 0)
    );
    assert!(progress.fired);
    assert_eq!(pending(&env.stats("batch.report").await), 1);
}

#[tokio::test]
async fn a_child_cancelled_while_it_runs_is_counted_cancelled() {
    let env = Env::with(|config| {
        // Renewal, which carries the cancellation, every 300 ms.
        config.lease = Duration::from_millis(900);
    })
    .await;
    let id = Batch::new()
        .push(Waits {})
        .push(Upload {
            n: 1,
            broken: false,
        })
        .on_complete::<Report>()
        .enqueue(&env.client)
        .await
        .unwrap();
    let reports = Probe::<BatchOutcome>::new();
    let started = Probe::<String>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Waits>()
        .task::<Upload>()
        .task::<Report>()
        .state(reports.clone())
        .state(started.clone())
        .build()
        .unwrap();
    let client = env.client.clone();
    let child = id.child(0);
    let waiting = reports.clone();
    run(worker, async move {
        started.reached(1).await;
        assert_eq!(
            client.cancel("batch.waits", child.as_str()).await.unwrap(),
            rmq::Cancelled::Signalled
        );
        waiting.reached(1).await;
    })
    .await;
    assert_eq!(
        reports.records(),
        [BatchOutcome {
            id: id.to_string(),
            total: 2,
            succeeded: 1,
            dead: 0,
            cancelled: 1,
        }]
    );
}

#[tokio::test]
async fn the_inline_client_runs_children_then_the_callback() {
    let reports = Probe::<BatchOutcome>::new();
    let client = Client::inline().with_state(reports.clone());
    let id = Batch::new()
        .push(Upload {
            n: 1,
            broken: false,
        })
        .push(Upload { n: 2, broken: true })
        .push(Resize { n: 3, fail: false })
        .on_complete::<Report>()
        .enqueue(&client)
        .await
        .unwrap();
    assert_eq!(
        reports.records(),
        [BatchOutcome {
            id: id.to_string(),
            total: 3,
            succeeded: 2,
            dead: 1,
            cancelled: 0,
        }]
    );
    let last = client.outcomes().pop().unwrap();
    assert_eq!(
        (last.topic.as_str(), last.result),
        ("batch.report", JobOutcome::Completed)
    );
    assert_eq!(last.id, id.callback());
}

#[tokio::test]
async fn the_fake_client_records_the_children_with_their_batch_ids() {
    let client = Client::fake();
    let id = Batch::new()
        .extend((0..3).map(|n| Once { n }))
        .on_complete::<Report>()
        .enqueue(&client)
        .await
        .unwrap();
    let ids: Vec<_> = client
        .enqueued_jobs::<Once>()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, [id.child(0), id.child(1), id.child(2)]);
    assert!(
        client.enqueued::<Report>().is_empty(),
        "no child has finished"
    );
}

#[tokio::test]
async fn an_empty_batch_is_refused() {
    let client = Client::fake();
    let error = Batch::new().enqueue(&client).await.unwrap_err();
    assert!(error.to_string().contains("at least one job"), "{error}");
}
