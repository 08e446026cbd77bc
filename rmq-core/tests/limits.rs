//! Rate and concurrency limits across workers, and `TaskError::rate_limited`,
//! against a real Redis (standalone and Cluster) with real workers.
//!
//! Counts with tolerance, never timing assertions: start times come from
//! Redis `TIME`, so a slow host changes how long a test takes, not whether
//! it passes.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use rmq_core::broker::{FailOutcome, Throttle};
use rmq_core::handler::BoxFuture;
use rmq_core::{
    Client, Invocation, Limits, Priority, Rate, Task, TaskDescriptor, TaskError, TaskPolicy, Worker,
};
use support::{payloads, spec, Deployment, Env, Raw};

const SECOND: Duration = Duration::from_secs(1);

/// What the handlers of one test share.
struct Probe {
    /// Redis connection for `TIME`.
    raw: tokio::sync::Mutex<Raw>,
    /// Server time (µs) at each start.
    starts: Mutex<Vec<u64>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Rate-limited answers still to give (the `limited` task).
    limit_left: AtomicU32,
    /// Attempt numbers seen by the `limited` task.
    attempts: Mutex<Vec<u32>>,
}

impl Probe {
    async fn new(env: &Env) -> Arc<Probe> {
        Arc::new(Probe {
            raw: tokio::sync::Mutex::new(env.raw().await),
            starts: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            limit_left: AtomicU32::new(0),
            attempts: Mutex::new(Vec::new()),
        })
    }

    async fn server_us(&self) -> u64 {
        let mut raw = self.raw.lock().await;
        let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut *raw).await.unwrap();
        s * 1_000_000 + us
    }
}

macro_rules! task {
    ($payload:ident, $descriptor:ident, $topic:literal, $handler:ident, $policy:expr) => {
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct $payload {
            n: u64,
        }
        static $descriptor: TaskDescriptor = TaskDescriptor {
            topic: $topic,
            function: $topic,
            module_path: "limits",
            payload_type: stringify!($payload),
            fields: &[("n", "u64")],
            policy: $policy,
            handler: $handler,
            state: &[],
            encode_json: rmq_core::codec::encode_json::<$payload>,
        };
        impl Task for $payload {
            type Receipt = rmq_core::JobId;
            type Output = ();

            fn descriptor() -> &'static TaskDescriptor {
                &$descriptor
            }
        }
    };
}

/// Records its start time (Redis `TIME`).
fn run_timed(invocation: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async move {
        let probe = invocation.state::<Arc<Probe>>()?;
        let at = probe.server_us().await;
        probe.starts.lock().unwrap().push(at);
        Ok(None)
    })
}

/// Runs for 30 ms, counting how many run at once.
fn run_slow(invocation: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async move {
        let probe = invocation.state::<Arc<Probe>>()?;
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        probe.running.fetch_sub(1, Ordering::SeqCst);
        Ok(None)
    })
}

/// Answers "rate limited" while `limit_left` lasts, then succeeds.
fn run_limited(invocation: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async move {
        let probe = invocation.state::<Arc<Probe>>()?;
        probe
            .attempts
            .lock()
            .unwrap()
            .push(invocation.context().attempt);
        let left = probe.limit_left.load(Ordering::SeqCst);
        if left > 0 {
            probe.limit_left.store(left - 1, Ordering::SeqCst);
            return Err(TaskError::rate_limited(Duration::from_millis(20)));
        }
        Ok(None)
    })
}

task!(
    Rated,
    RATED,
    "rated",
    run_timed,
    TaskPolicy {
        rate: Some(Rate::new(50, SECOND)),
        ..TaskPolicy::DEFAULT
    }
);
task!(
    Capped,
    CAPPED,
    "capped",
    run_slow,
    TaskPolicy {
        concurrency: Some(5),
        ..TaskPolicy::DEFAULT
    }
);
task!(
    Limited,
    LIMITED,
    "limited",
    run_limited,
    TaskPolicy {
        retries: Some(1),
        ..TaskPolicy::DEFAULT
    }
);

/// `n` workers of task `T`, each on a client of its own, running until the
/// returned sender is dropped or sent to.
async fn workers<T: Task>(
    env: &Env,
    n: usize,
    handlers: usize,
    probe: &Arc<Probe>,
) -> (
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for _ in 0..n {
        let client = Client::connect(env.config.clone()).await.unwrap();
        let worker = Worker::builder(client)
            .task::<T>()
            .concurrency(handlers)
            .state(Arc::clone(probe))
            .build()
            .unwrap();
        let mut stop = stop_rx.clone();
        handles.push(tokio::spawn(async move {
            worker
                .run_until(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .unwrap();
        }));
    }
    (stop_tx, handles)
}

async fn stop(stop: tokio::sync::watch::Sender<bool>, handles: Vec<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    for handle in handles {
        handle.await.unwrap();
    }
}

on_both!(
    a_rate_of_50_per_second_holds_over_3_workers,
    ["rated"],
    |env| {
        let probe = Probe::new(&env).await;
        let client = Client::connect(env.config.clone()).await.unwrap();
        client
            .enqueue_many((0..900).map(|n| Rated { n }))
            .await
            .unwrap();
        let (stop_tx, handles) = workers::<Rated>(&env, 3, 8, &probe).await;
        // 1 s to settle (the burst, three workers starting), then 10 s counted.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let starts = probe.starts.lock().unwrap().clone();
            if let (Some(first), Some(last)) = (starts.iter().min(), starts.iter().max()) {
                if last - first >= 11_200_000 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{} starts", starts.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop(stop_tx, handles).await;
        let mut starts = probe.starts.lock().unwrap().clone();
        starts.sort_unstable();
        let from = starts[0] + 1_000_000;
        let to = from + 10_000_000;
        let counted = starts.iter().filter(|&&t| t >= from && t < to).count();
        assert!(
            (450..=550).contains(&counted),
            "{counted} jobs started in 10 s at 50/s (expected 500 ± 10%)"
        );
        // Every second on its own stays near 50 too (no burst pile-up).
        for second in 0..10 {
            let from = from + second * 1_000_000;
            let n = starts
                .iter()
                .filter(|&&t| t >= from && t < from + 1_000_000)
                .count();
            assert!(n <= 60, "{n} starts in second {second}");
        }
        let stats = env.broker.stats("rated").await.unwrap();
        assert!(stats.throttled_rate > 0);
    }
);

on_both!(concurrency_5_holds_across_3_workers, ["capped"], |env| {
    let probe = Probe::new(&env).await;
    let client = Client::connect(env.config.clone()).await.unwrap();
    client
        .enqueue_many((0..120).map(|n| Capped { n }))
        .await
        .unwrap();
    // 3 workers of 4 handlers each: 12 could run, 5 may.
    let (stop_tx, handles) = workers::<Capped>(&env, 3, 4, &probe).await;
    let keys = env.keys("capped");
    let mut raw = env.raw().await;
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let leased: usize = raw.zcard(&keys.processing).await.unwrap();
        most = most.max(leased);
        assert!(leased <= 5, "{leased} jobs leased at once");
        let stats = env.broker.stats("capped").await.unwrap();
        if stats.completed == 120 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop(stop_tx, handles).await;
    assert!(probe.max_running.load(Ordering::SeqCst) <= 5);
    // The limit was reached, not merely respected by an idle system.
    assert_eq!(most, 5);
    let stats = env.broker.stats("capped").await.unwrap();
    assert!(stats.throttled_concurrency > 0, "{stats:?}");
});

on_both!(
    rate_limited_redelays_without_consuming_an_attempt,
    ["limited"],
    |env| {
        let probe = Probe::new(&env).await;
        // Five 429s in a row, with one retry allowed: a counted attempt
        // would have dead-lettered the job after the second.
        probe.limit_left.store(5, Ordering::SeqCst);
        let client = Client::connect(env.config.clone()).await.unwrap();
        client.enqueue(Limited { n: 1 }).await.unwrap();
        let (stop_tx, handles) = workers::<Limited>(&env, 1, 2, &probe).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while env.broker.stats("limited").await.unwrap().completed < 1 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop(stop_tx, handles).await;
        assert_eq!(*probe.attempts.lock().unwrap(), [1, 1, 1, 1, 1, 1]);
        let stats = env.broker.stats("limited").await.unwrap();
        assert_eq!(stats.rate_limited, 5);
        assert_eq!((stats.failed, stats.dead), (0, 0));
    }
);

on_both!(redelay_keeps_the_envelope_and_its_attempt, ["t"], |env| {
    let mut s = spec(Priority::Normal);
    s.max_retries = 0;
    env.push("t", &["a"], &s).await;
    let job = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    let outcome = env
        .broker
        .redelay("t", &job[0], Duration::from_millis(30))
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Redelayed);
    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!((stats.delayed, stats.processing, stats.dead), (1, 0, 0));
    // A second report of the same lease finds nothing.
    let again = env
        .broker
        .redelay("t", &job[0], Duration::from_millis(30))
        .await
        .unwrap();
    assert_eq!(again, FailOutcome::LeaseLost);
    let back = env.fetch_until("t", 1, LEASE, Duration::from_secs(5)).await;
    assert_eq!(payloads(&back), ["a"]);
    assert_eq!(back[0].retries_used(), 0);
    assert_eq!(back[0].id(), job[0].id());
    assert!(back[0].was_delayed());
});

const LEASE: Duration = Duration::from_secs(30);

on_both!(
    gcra_spaces_fetches_and_says_how_long_to_wait,
    ["t"],
    |env| {
        let names: Vec<String> = (0..20).map(|i| format!("j{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        env.push("t", &refs, &spec(Priority::Normal)).await;
        // 10/s: one every 100 ms, a burst of one.
        let limits = Limits {
            rate: Some(Rate::new(10, SECOND)),
            ..Limits::NONE
        };
        let first = env
            .broker
            .fetch_limited("t", 10, LEASE, &limits)
            .await
            .unwrap();
        assert_eq!(first.jobs.len(), 1);
        assert_eq!(first.throttled, Some(Throttle::Rate));
        let wait = first.wait.unwrap();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        let second = env
            .broker
            .fetch_limited("t", 10, LEASE, &limits)
            .await
            .unwrap();
        assert!(second.jobs.len() <= 1);
        // Waiting as told lets the next one through.
        let mut got = first.jobs.len() + second.jobs.len();
        let started = Instant::now();
        while got < 4 {
            let fetched = env
                .broker
                .fetch_limited("t", 10, LEASE, &limits)
                .await
                .unwrap();
            assert!(fetched.jobs.len() <= 1);
            got += fetched.jobs.len();
            if let Some(wait) = fetched.wait {
                tokio::time::sleep(wait).await;
            }
            assert!(started.elapsed() < Duration::from_secs(10));
        }
        // No limit: the rest at once.
        let rest = env.broker.fetch("t", 100, LEASE).await.unwrap();
        assert_eq!(rest.jobs.len(), 20 - got);
        assert_eq!(rest.throttled, None);
    }
);

on_both!(an_expired_lease_frees_its_concurrency_slot, ["t"], |env| {
    env.push("t", &["a", "b", "c"], &spec(Priority::Normal))
        .await;
    let limits = Limits {
        concurrency: Some(2),
        ..Limits::NONE
    };
    let short = Duration::from_millis(300);
    // A worker leases two jobs and dies: nobody acks or renews them.
    let crashed = env
        .broker
        .fetch_limited("t", 10, short, &limits)
        .await
        .unwrap();
    assert_eq!(crashed.jobs.len(), 2);
    assert_eq!(crashed.throttled, Some(Throttle::Concurrency));
    let held = env
        .broker
        .fetch_limited("t", 10, short, &limits)
        .await
        .unwrap();
    assert!(held.jobs.is_empty());
    assert_eq!(held.throttled, Some(Throttle::Concurrency));
    assert!(held.wait.unwrap() <= Duration::from_millis(300));
    // Once the leases expire (no recovery has run), the slots are free.
    let deadline = Instant::now() + Duration::from_secs(10);
    let freed = loop {
        let fetched = env
            .broker
            .fetch_limited("t", 10, LEASE, &limits)
            .await
            .unwrap();
        if !fetched.jobs.is_empty() {
            break fetched;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(fetched.wait.unwrap_or(Duration::from_millis(10))).await;
    };
    assert_eq!(payloads(&freed.jobs), ["c"]);
});

#[tokio::test]
async fn a_plain_topic_is_never_throttled() {
    let env = Env::new().await;
    let names: Vec<String> = (0..50).map(|i| format!("j{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    env.push("t", &refs, &spec(Priority::Normal)).await;
    let fetched = env.broker.fetch("t", 50, LEASE).await.unwrap();
    assert_eq!(fetched.jobs.len(), 50);
    assert_eq!((fetched.throttled, fetched.wait), (None, None));
    let mut raw = env.raw().await;
    let exists: bool = raw.exists(&env.keys("t").rate).await.unwrap();
    assert!(!exists);
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Tenanted {
    tenant: String,
    n: u64,
}

fn run_nothing(_: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async { Ok(None) })
}

static TENANTED: TaskDescriptor = TaskDescriptor {
    topic: "fair",
    function: "fair",
    module_path: "limits",
    payload_type: "Tenanted",
    fields: &[("tenant", "String"), ("n", "u64")],
    policy: TaskPolicy {
        rate_key: Some("tenant"),
        ..TaskPolicy::DEFAULT
    },
    handler: run_nothing,
    state: &[],
    encode_json: rmq_core::codec::encode_json::<Tenanted>,
};

impl Task for Tenanted {
    type Receipt = rmq_core::JobId;
    type Output = ();

    fn descriptor() -> &'static TaskDescriptor {
        &TENANTED
    }
}

fn tenants(jobs: &[rmq_core::envelope::Envelope]) -> Vec<String> {
    jobs.iter()
        .map(|job| {
            let t: Tenanted = rmq_core::codec::decode(job.payload()).unwrap();
            assert_eq!(job.fair_key(), Some(t.tenant.as_bytes()));
            t.tenant
        })
        .collect()
}

const KEYED: Limits = Limits {
    rate: None,
    concurrency: None,
    keyed: true,
};

on_both!(
    a_tenant_backlog_does_not_delay_another_tenant,
    ["fair"],
    |env| {
        let client = Client::connect(env.config.clone()).await.unwrap();
        client
            .enqueue_many((0..10_000).map(|n| Tenanted {
                tenant: "big".into(),
                n,
            }))
            .await
            .unwrap();
        client
            .enqueue(Tenanted {
                tenant: "small".into(),
                n: 0,
            })
            .await
            .unwrap();
        let stats = env.broker.stats("fair").await.unwrap();
        assert_eq!((stats.keyed, stats.pending), (10_001, [0, 0, 0]));
        // One fetch round: the small tenant's job is in it, right after the
        // first of the big tenant's.
        let first = env
            .broker
            .fetch_limited("fair", 10, LEASE, &KEYED)
            .await
            .unwrap();
        assert_eq!(
            tenants(&first.jobs),
            ["big", "small", "big", "big", "big", "big", "big", "big", "big", "big"]
        );
        // FIFO within a tenant.
        let ns: Vec<u64> = first
            .jobs
            .iter()
            .map(|j| rmq_core::codec::decode::<Tenanted>(j.payload()).unwrap().n)
            .collect();
        assert_eq!(ns, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(env.broker.stats("fair").await.unwrap().keyed, 9_991);
        // A later arrival is served within one round too.
        client
            .enqueue(Tenanted {
                tenant: "late".into(),
                n: 0,
            })
            .await
            .unwrap();
        let next = env
            .broker
            .fetch_limited("fair", 2, LEASE, &KEYED)
            .await
            .unwrap();
        assert_eq!(tenants(&next.jobs), ["big", "late"]);
    }
);

on_both!(
    keyed_jobs_survive_delay_release_and_recovery,
    ["fair"],
    |env| {
        let client = Client::connect(env.config.clone()).await.unwrap();
        client
            .enqueue_with(
                Tenanted {
                    tenant: "a".into(),
                    n: 1,
                },
                rmq_core::JobOptions {
                    delay: Some(Duration::from_millis(30)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // Promoted into its key's sub-queue when due.
        let deadline = Instant::now() + Duration::from_secs(10);
        let job = loop {
            let fetched = env
                .broker
                .fetch_limited("fair", 5, LEASE, &KEYED)
                .await
                .unwrap();
            if !fetched.jobs.is_empty() {
                break fetched.jobs;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(tenants(&job), ["a"]);
        // Given back (shutdown): to the pending list, then to its sub-queue.
        env.broker.release("fair", &job).await.unwrap();
        let again = env
            .broker
            .fetch_limited("fair", 5, LEASE, &KEYED)
            .await
            .unwrap();
        assert_eq!(tenants(&again.jobs), ["a"]);
        assert_eq!(again.jobs[0].retries_used(), 0);
        let stats = env.broker.stats("fair").await.unwrap();
        assert_eq!((stats.keyed, stats.processing), (0, 1));
    }
);

on_both!(a_rate_per_key_holds_each_key_apart, ["fair"], |env| {
    let client = Client::connect(env.config.clone()).await.unwrap();
    for tenant in ["a", "b"] {
        client
            .enqueue_many((0..5).map(|n| Tenanted {
                tenant: tenant.into(),
                n,
            }))
            .await
            .unwrap();
    }
    // 10/s per key: a burst of one each.
    let limits = Limits {
        rate: Some(Rate::new(10, SECOND)),
        ..KEYED
    };
    let first = env
        .broker
        .fetch_limited("fair", 10, LEASE, &limits)
        .await
        .unwrap();
    assert_eq!(tenants(&first.jobs), ["a", "b"]);
    assert_eq!(first.throttled, Some(Throttle::Rate));
    let wait = first.wait.unwrap();
    assert!(wait <= Duration::from_millis(100), "{wait:?}");
    let mut got = first.jobs.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < 10 {
        let fetched = env
            .broker
            .fetch_limited("fair", 10, LEASE, &limits)
            .await
            .unwrap();
        // Never more than one job per key per interval.
        assert!(fetched.jobs.len() <= 2);
        got += fetched.jobs.len();
        tokio::time::sleep(fetched.wait.unwrap_or(Duration::from_millis(5))).await;
        assert!(Instant::now() < deadline);
    }
    assert_eq!(env.broker.stats("fair").await.unwrap().keyed, 0);
});
