//! Unique jobs through the facade: the attribute, the enqueue helpers'
//! receipts, real workers on standalone Redis and Cluster, and the fake and
//! inline clients.

mod support;

use std::time::{Duration, Instant};

use rmq::{Client, Enqueued, JobId, State, Task, TaskError, UniqueMode, Worker};
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

/// One charge per order until it completed; the amount is not part of the
/// key.
#[rmq::task(topic = "u_charge", unique(key = order_id, ttl = "1m"))]
async fn charge(order_id: u64, amount: u32, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    let _ = order_id;
    probe.record(amount);
    Ok(())
}

#[rmq::task(topic = "u_flaky", retries = 1, retry_delays = ["1ms"], unique = "1m")]
async fn flaky(n: u32, probe: State<Probe<u32>>) -> Result<(), TaskError> {
    probe.record(n);
    Err(TaskError::retryable("always"))
}

/// The last query of an index wins; a newer one restarts the wait.
#[rmq::task(topic = "u_search", unique(key = index, mode = debounce, ttl = "2s"))]
async fn reindex(
    index: String,
    query: String,
    probe: State<Probe<String>>,
) -> Result<(), TaskError> {
    let _ = index;
    probe.record(query);
    Ok(())
}

#[rmq::task(topic = "u_digest", unique(key = [user, day], mode = window, ttl = "1h"))]
async fn digest(user: u64, day: u32, note: String) -> Result<(), TaskError> {
    let _ = (user, day, note);
    Ok(())
}

#[rmq::task(topic = "u_started", unique(mode = until_started, ttl = "1m"))]
async fn started(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

#[rmq::task(topic = "u_plain")]
async fn plain(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

/// The lock key a payload of `T` takes with default options.
fn key_of<T: Task>(client: &Client, task: &T) -> String {
    let payload = rmq::codec::encode(task).unwrap();
    client
        .unique_lock(T::descriptor(), &rmq::JobOptions::default(), &payload)
        .unwrap()
        .unwrap()
        .key
}

/// Waits until no job of `topic` holds the lock `key`.
async fn until_free(env: &Env, topic: &str, key: &str) {
    let deadline = Instant::now() + LIMIT;
    while env
        .broker()
        .unique_lock(topic, key)
        .await
        .unwrap()
        .job
        .is_some()
    {
        assert!(Instant::now() < deadline, "the lock {key} was never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

on_both!(
    sixteen_concurrent_enqueues_make_one_job_and_the_ack_frees_the_lock,
    |env| {
        let calls: Vec<_> = (0..16)
            .map(|amount| {
                let client = env.client.clone();
                tokio::spawn(async move {
                    Charge {
                        order_id: 7,
                        amount,
                    }
                    .enqueue(&client)
                    .await
                    .unwrap()
                })
            })
            .collect();
        let mut receipts = Vec::new();
        for call in calls {
            receipts.push(call.await.unwrap());
        }
        let new: Vec<&Enqueued> = receipts.iter().filter(|r| r.is_new()).collect();
        assert_eq!(new.len(), 1, "{receipts:?}");
        assert!(receipts
            .iter()
            .all(|r| r.id() == new[0].id() && (r.is_new() || r.is_duplicate())));
        // Another order is another key.
        assert!(Charge {
            order_id: 8,
            amount: 0
        }
        .enqueue(&env.client)
        .await
        .unwrap()
        .is_new());

        let probe = Probe::<u32>::new();
        let worker = Worker::builder(env.client.clone())
            .task::<Charge>()
            .concurrency(4)
            .state(probe.clone())
            .build()
            .unwrap();
        let key = key_of(
            &env.client,
            &Charge {
                order_id: 7,
                amount: 99,
            },
        );
        let test = async {
            probe.reached(2).await;
            until_free(&env, "u_charge", &key).await;
            let again = Charge {
                order_id: 7,
                amount: 100,
            }
            .enqueue(&env.client)
            .await
            .unwrap();
            assert!(again.is_new(), "{again:?}");
            probe.reached(3).await;
        };
        run(worker, test).await;
        assert_eq!(probe.len(), 3, "{:?}", probe.records());
    }
);

on_both!(death_after_retries_frees_the_lock, |env| {
    let first = Flaky { n: 1 }.enqueue(&env.client).await.unwrap();
    assert!(first.is_new());
    let probe = Probe::<u32>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Flaky>()
        .state(probe.clone())
        .build()
        .unwrap();
    let key = key_of(&env.client, &Flaky { n: 1 });
    let test = async {
        // The first attempt failed and a retry waits: still locked.
        probe.reached(1).await;
        let during = Flaky { n: 1 }.enqueue(&env.client).await.unwrap();
        // Dead-letter counts only grow: none now, none at the enqueue.
        if env.stats("u_flaky").await.dead == 0 {
            assert!(during.is_duplicate(), "{during:?}");
        }
        probe.reached(2).await;
        until_free(&env, "u_flaky", &key).await;
    };
    run(worker, test).await;
    let stats = env.stats("u_flaky").await;
    assert!(stats.dead >= 1, "{stats:?}");
    assert!(Flaky { n: 1 }.enqueue(&env.client).await.unwrap().is_new());
});

on_both!(debounce_runs_the_last_payload_once, |env| {
    let first = Reindex {
        index: "i".into(),
        query: "a".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let second = Reindex {
        index: "i".into(),
        query: "ab".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let third = Reindex {
        index: "i".into(),
        query: "abc".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    assert!(first.is_new());
    assert_eq!(second, Enqueued::Replaced(first.id().clone()));
    assert_eq!(third, Enqueued::Replaced(first.id().clone()));
    assert_eq!(env.stats("u_search").await.delayed, 1);
    let probe = Probe::<String>::new();
    let worker = Worker::builder(env.client.clone())
        .task::<Reindex>()
        .state(probe.clone())
        .build()
        .unwrap();
    run(worker, probe.reached(1)).await;
    assert_eq!(probe.records(), ["abc"]);
});

#[tokio::test]
async fn plain_tasks_still_return_a_job_id() {
    let client = Client::fake();
    let id: JobId = Plain { n: 1 }.enqueue(&client).await.unwrap();
    let again: JobId = Plain { n: 1 }.enqueue(&client).await.unwrap();
    assert_ne!(id, again);
    let delayed: JobId = Plain { n: 1 }
        .delay(Duration::from_secs(1))
        .enqueue(&client)
        .await
        .unwrap();
    assert_ne!(delayed, id);
}

#[tokio::test]
async fn the_fake_client_honours_locks() {
    let client = Client::fake();
    let first = Digest {
        user: 1,
        day: 5,
        note: "a".into(),
    }
    .enqueue(&client)
    .await
    .unwrap();
    assert!(first.is_new());
    // Same user and day, another note: the key has only `user` and `day`.
    let second = Digest {
        user: 1,
        day: 5,
        note: "b".into(),
    }
    .enqueue(&client)
    .await
    .unwrap();
    assert_eq!(second, Enqueued::Duplicate(first.id().clone()));
    let other_day = Digest {
        user: 1,
        day: 6,
        note: "a".into(),
    }
    .enqueue(&client)
    .await
    .unwrap();
    assert!(other_day.is_new());
    assert_eq!(client.enqueued::<Digest>().len(), 2);

    // A per-call key groups what the payload would not.
    let a = Digest {
        user: 2,
        day: 1,
        note: String::new(),
    }
    .unique_key("weekly")
    .enqueue(&client)
    .await
    .unwrap();
    let b = Digest {
        user: 3,
        day: 1,
        note: String::new(),
    }
    .unique_key("weekly")
    .enqueue(&client)
    .await
    .unwrap();
    assert!(a.is_new() && b.is_duplicate());

    // Debounce replaces the recorded payload.
    let r1 = Reindex {
        index: "i".into(),
        query: "x".into(),
    }
    .enqueue(&client)
    .await
    .unwrap();
    let r2 = Reindex {
        index: "i".into(),
        query: "xy".into(),
    }
    .enqueue(&client)
    .await
    .unwrap();
    assert_eq!(r2, Enqueued::Replaced(r1.id().clone()));
    let recorded: Vec<String> = client
        .enqueued::<Reindex>()
        .into_iter()
        .map(|r| r.query)
        .collect();
    assert_eq!(recorded, ["xy"]);

    client.clear_enqueued();
    assert!(Digest {
        user: 1,
        day: 5,
        note: "a".into(),
    }
    .enqueue(&client)
    .await
    .unwrap()
    .is_new());
}

#[tokio::test]
async fn the_inline_client_releases_as_a_worker_would() {
    let client = Client::inline();
    // Until started: run at once, so a second one runs too.
    assert!(Started { n: 1 }.enqueue(&client).await.unwrap().is_new());
    assert!(Started { n: 1 }.enqueue(&client).await.unwrap().is_new());
    // A window holds after the run.
    let note = || Digest {
        user: 1,
        day: 1,
        note: String::new(),
    };
    assert!(note().enqueue(&client).await.unwrap().is_new());
    assert!(note().enqueue(&client).await.unwrap().is_duplicate());
    // Per call, the mode can change: a window of its own key.
    let per_call = note()
        .unique_key("k")
        .unique(UniqueMode::UntilCompleted, Duration::from_secs(60))
        .enqueue(&client)
        .await
        .unwrap();
    assert!(per_call.is_new());
    assert_eq!(client.outcomes().len(), 4);
}
