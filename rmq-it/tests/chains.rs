//! Chains on real worker processes: a chain of three steps whose worker is
//! SIGKILLed while the middle step runs completes on a second worker, with
//! the middle step recovered (its attempt counted) and no step enqueued or
//! run again.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{drained, eventually, Probe, Worker};
use rmq::broker::{ChainState, StepState};
use rmq::JobState;
use rmq_it::{ChainFirst, ChainLast, ChainMiddle, CHAIN_RUNS, RAN};
use rmq_testkit::RedisServer;

const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

const STEPS: [&str; 3] = ["chain_first", "chain_middle", "chain_last"];

/// How long the middle step works: long enough to be killed in the middle
/// of it on a loaded machine.
const MIDDLE_MS: u64 = 3000;

/// A run of a chain step, as recorded in [`CHAIN_RUNS`].
#[derive(Debug, PartialEq, Eq)]
struct Run {
    id: String,
    attempt: u32,
    enqueued_ms: u128,
}

/// The runs of `topic`'s steps that began, in order.
async fn runs(probe: &Probe, topic: &str) -> Vec<Run> {
    probe
        .list(CHAIN_RUNS)
        .await
        .iter()
        .filter_map(|entry| {
            let fields: Vec<&str> = entry.split('|').collect();
            let [t, id, attempt, enqueued_ms] = fields[..] else {
                panic!("a malformed chain run: {entry}");
            };
            (t == topic).then(|| Run {
                id: id.to_owned(),
                attempt: attempt.parse().expect("attempt"),
                enqueued_ms: enqueued_ms.parse().expect("enqueued_ms"),
            })
        })
        .collect()
}

fn completions(ran: &[String], name: &str) -> usize {
    ran.iter().filter(|entry| *entry == name).count()
}

#[tokio::test]
async fn a_chain_completes_across_a_kill_of_its_middle_step_running_each_step_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let chain = ChainFirst {
        seq: 7,
        millis: MIDDLE_MS,
    }
    .then_result::<ChainMiddle>()
    .then_result::<ChainLast>()
    .chain_id("killed")
    .enqueue(&client)
    .await
    .unwrap();
    let step_id = |i: usize| format!("chain:killed:{i}");

    let mut first = Worker::run(&url, &["--concurrency", "4"], &SHORT_LEASE);
    eventually(
        "the middle step to start",
        Duration::from_secs(30),
        || async { (!runs(&probe, "chain_middle").await.is_empty()).then_some(()) },
    )
    .await;
    // The first step enqueues the middle one before its ack: kill only
    // once that ack is in, so the kill hits the middle step alone.
    eventually("the first step's ack", Duration::from_secs(15), || async {
        (probe.stats("chain_first").await.completed == 1).then_some(())
    })
    .await;
    let before = client
        .status("chain_middle", &step_id(1))
        .await
        .unwrap()
        .expect("the middle step is indexed");
    assert!(
        matches!(before.state, JobState::Processing { .. }),
        "{before:?}"
    );
    assert_eq!(before.attempt, 1, "{before:?}");
    first.kill9().await;

    let ran = probe.list(RAN).await;
    assert_eq!(
        completions(&ran, "chain_middle:7"),
        0,
        "killed while the middle step ran: {ran:?}"
    );
    let status = chain.status().await.unwrap();
    assert_eq!(status.state, ChainState::Running { step: 1 }, "{status:?}");
    assert_eq!(status.steps[2].state, StepState::Waiting, "{status:?}");
    let last = probe.stats("chain_last").await;
    assert_eq!(
        (
            last.pending.iter().sum::<u64>(),
            last.delayed,
            last.processing,
            last.completed
        ),
        (0, 0, 0, 0),
        "the last step is not enqueued yet: {last:?}"
    );

    let _second = Worker::run(&url, &["--concurrency", "4"], &SHORT_LEASE);
    let status = chain
        .wait(Some(Duration::from_secs(60)))
        .await
        .expect("the chain finishes on the second worker");
    assert_eq!(status.state, ChainState::Completed, "{status:?}");
    assert!(
        status.steps.iter().all(|s| s.state == StepState::Completed),
        "{status:?}"
    );
    assert_eq!(chain.result().await.unwrap(), "7^2=49");
    for topic in STEPS {
        drained(&probe, topic, Duration::from_secs(20)).await;
    }
    let status = client.chain_status("killed").await.unwrap();
    assert_eq!(status.state, ChainState::Completed, "{status:?}");

    // Each step ran as its own job id; the first and the last once.
    let enqueued_ms = before
        .enqueued_at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let first_runs = runs(&probe, "chain_first").await;
    assert_eq!(first_runs.len(), 1, "{first_runs:?}");
    assert_eq!(
        (first_runs[0].id.as_str(), first_runs[0].attempt),
        (step_id(0).as_str(), 1)
    );
    let last_runs = runs(&probe, "chain_last").await;
    assert_eq!(last_runs.len(), 1, "{last_runs:?}");
    assert_eq!(
        (last_runs[0].id.as_str(), last_runs[0].attempt),
        (step_id(2).as_str(), 1)
    );
    // The middle step: its run before the kill, and the recovered run, as
    // the next attempt of the same job (enqueued once).
    assert_eq!(
        runs(&probe, "chain_middle").await,
        [1, 2].map(|attempt| Run {
            id: step_id(1),
            attempt,
            enqueued_ms,
        }),
        "recovered after the kill, with the attempt counted"
    );
    let ran = probe.list(RAN).await;
    for step in STEPS {
        assert_eq!(completions(&ran, &format!("{step}:7")), 1, "{ran:?}");
    }

    // Each step's job completed once: a step enqueued again (and skipped
    // as done) would count a second completion.
    for (i, topic) in STEPS.into_iter().enumerate() {
        let stats = probe.stats(topic).await;
        assert_eq!((stats.completed, stats.dead), (1, 0), "{topic}: {stats:?}");
        if i < 2 {
            // Acked and keeping no result: nothing is left of it.
            let left = client.status(topic, &step_id(i)).await.unwrap();
            assert!(left.is_none(), "{topic}: {left:?}");
        }
    }
    assert_eq!(
        client
            .result::<String>("chain_last", &step_id(2))
            .await
            .unwrap()
            .as_deref(),
        Some("7^2=49")
    );
}
