//! Chains through the facade: steps on different topics (standalone Redis
//! and Cluster), a step's result as the next step's payload, each step once
//! despite retries and repeated completions, and a chain that stops when a
//! step dies.

mod support;

use rmq::broker::{ChainState, StepState};
use rmq::{Chain, Client, Job, JobContext, JobId, ResultError, State, TaskError, Worker};
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

/// Which step ran, and as which attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ran {
    Fetch(u32),
    Parse(u32),
    Store(u32),
}

/// The first step: its result is the second step's payload.
#[rmq::task(topic = "c_fetch")]
async fn fetch(url: String, ctx: JobContext, probe: State<Probe<Ran>>) -> Result<Parse, TaskError> {
    probe.record(Ran::Fetch(ctx.attempt));
    Ok(Parse {
        body: format!("<{url}>"),
    })
}

/// Fails its first attempt, then succeeds.
#[rmq::task(topic = "c_parse", retries = 2, retry_delays = ["10ms"])]
async fn parse(body: String, ctx: JobContext, probe: State<Probe<Ran>>) -> Result<(), TaskError> {
    probe.record(Ran::Parse(ctx.attempt));
    if ctx.attempt == 1 {
        return Err(TaskError::retryable(std::io::Error::other("flaky")));
    }
    assert!(body.starts_with('<'));
    Ok(())
}

/// The last step keeps its result.
#[rmq::task(topic = "c_store", keep_result = "1h")]
async fn store(
    key: String,
    ctx: JobContext,
    probe: State<Probe<Ran>>,
) -> Result<String, TaskError> {
    probe.record(Ran::Store(ctx.attempt));
    Ok(format!("stored {key}"))
}

fn worker(client: Client, probe: &Probe<Ran>) -> Worker {
    Worker::builder(client)
        .task::<Fetch>()
        .task::<Parse>()
        .task::<Store>()
        .state(probe.clone())
        .build()
        .unwrap()
}

on_both!(
    a_chain_of_three_runs_each_step_once_through_a_retry,
    |env| {
        let probe = Probe::<Ran>::new();
        let chain = Fetch {
            url: "a.example".into(),
        }
        .then_result::<Parse>()
        .then(Store { key: "k1".into() })
        .chain_id("order-7")
        .enqueue(&env.client)
        .await
        .unwrap();
        assert_eq!(chain.id(), "order-7");
        let status = chain.status().await.unwrap();
        assert_eq!(status.state, ChainState::Running { step: 0 });
        assert_eq!(status.steps[1].state, StepState::Waiting);
        assert_eq!(status.steps[2].id.as_str(), "chain:order-7:2");

        let waiting = env.second_client().await;
        run(worker(env.second_client().await, &probe), async {
            let status = tokio::time::timeout(LIMIT, chain.wait(None))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(status.state, ChainState::Completed);
            assert!(status.steps.iter().all(|s| s.state == StepState::Completed));
        })
        .await;
        assert_eq!(
            probe.records(),
            [Ran::Fetch(1), Ran::Parse(1), Ran::Parse(2), Ran::Store(1)]
        );
        assert_eq!(chain.result().await.unwrap(), "stored k1");
        assert_eq!(
            waiting
                .result::<String>("c_store", "chain:order-7:2")
                .await
                .unwrap()
                .as_deref(),
            Some("stored k1")
        );

        // A step that runs again (its worker died before the ack, say)
        // enqueues its next step again: that step is not run twice. Both
        // repeats are enqueued by hand here, as such a worker would.
        let broker = env.broker();
        let record = broker.chain("order-7").await.unwrap().unwrap();
        assert_eq!(record.done, Some(2));
        let payload = record.steps[0].payload.clone().unwrap();
        broker
            .enqueue_chain_step(&record, 0, &payload)
            .await
            .unwrap();
        let payload = rmq::codec::encode(&Parse { body: "<x>".into() }).unwrap();
        broker
            .enqueue_chain_step(&record, 1, &payload)
            .await
            .unwrap();
        run(worker(env.second_client().await, &probe), async {
            for (topic, id) in [
                ("c_fetch", "chain:order-7:0"),
                ("c_parse", "chain:order-7:1"),
            ] {
                // Keeps no result: once acked, nothing is left of it.
                let job = Job::<()>::new(env.client.clone(), topic, JobId::new(id));
                let outcome = job.result_timeout(LIMIT).await;
                assert!(
                    matches!(outcome, Err(ResultError::Unknown { .. })),
                    "{outcome:?}"
                );
            }
        })
        .await;
        assert_eq!(probe.records().len(), 4, "no step ran again");
        assert_eq!(env.stats("c_fetch").await.completed, 2);
        assert_eq!(env.stats("c_parse").await.completed, 2);
        assert_eq!(env.stats("c_store").await.completed, 1);
    }
);

on_both!(a_chain_stops_when_a_step_dies, |env| {
    let probe = Probe::<Ran>::new();
    let chain = Fetch {
        url: "b.example".into(),
    }
    .then(Refuse {})
    .then(Store {
        key: "never".into(),
    })
    .enqueue(&env.client)
    .await
    .unwrap();
    run(
        Worker::builder(env.second_client().await)
            .task::<Fetch>()
            .task::<Refuse>()
            .task::<Store>()
            .state(probe.clone())
            .build()
            .unwrap(),
        async {
            let status = tokio::time::timeout(LIMIT, chain.wait(None))
                .await
                .unwrap()
                .unwrap();
            match &status.state {
                ChainState::Stopped { step: 1, reason } => {
                    assert!(reason.contains("no such order"), "{reason}")
                }
                other => panic!("expected a stop at step 1, got {other:?}"),
            }
            assert_eq!(status.steps[0].state, StepState::Completed);
            assert!(matches!(status.steps[1].state, StepState::Dead { .. }));
            assert_eq!(status.steps[2].state, StepState::Waiting);
        },
    )
    .await;
    assert_eq!(probe.records(), [Ran::Fetch(1)], "the last step never ran");
    match chain.result().await {
        Err(ResultError::Dead { topic, id, error }) => {
            assert_eq!(topic, "c_refuse");
            assert_eq!(id.as_str(), format!("chain:{}:1", chain.id()));
            assert!(error.contains("no such order"));
        }
        other => panic!("expected the dead step, got {other:?}"),
    }
});

#[rmq::task(topic = "c_refuse")]
async fn refuse() -> Result<(), TaskError> {
    Err(TaskError::permanent("no such order"))
}

#[tokio::test]
async fn an_existing_chain_id_enqueues_nothing_new() {
    let env = Env::new().await;
    for _ in 0..2 {
        Refuse {}
            .then(Refuse {})
            .chain_id("once")
            .enqueue(&env.client)
            .await
            .unwrap();
    }
    assert_eq!(support::pending(&env.stats("c_refuse").await), 1);
}

#[tokio::test]
async fn a_chain_step_takes_no_job_id() {
    let fake = Client::fake();
    let error = Chain::new(Refuse {})
        .then_with(Refuse {}.job_id("mine"))
        .enqueue(&fake)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("chain_id"), "{error}");
}

#[tokio::test]
async fn inline_chains_run_at_once_and_fake_ones_record_their_first_step() {
    let probe = Probe::<Ran>::new();
    let inline = Client::inline().with_state(probe.clone());
    let chain = Fetch { url: "c".into() }
        .then_result::<Parse>()
        .then(Store { key: "k".into() })
        .enqueue(&inline)
        .await
        .unwrap();
    // The flaky step is retried inline too.
    assert_eq!(
        probe.records(),
        [Ran::Fetch(1), Ran::Parse(1), Ran::Parse(2), Ran::Store(1)]
    );
    assert_eq!(chain.result().await.unwrap(), "stored k");

    let fake = Client::fake();
    let chain = Fetch { url: "d".into() }
        .then_result::<Parse>()
        .enqueue(&fake)
        .await
        .unwrap();
    let jobs = fake.enqueued_jobs::<Fetch>();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id.as_str(), format!("chain:{}:0", chain.id()));
    assert_eq!(fake.enqueued_count(), 1);
}
