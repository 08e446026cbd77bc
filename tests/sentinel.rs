//! Redis Sentinel end to end: discovery through the sentinels, `WAIT`
//! durability, and a real `Worker` with producers through a manual
//! failover and through the death (SIGKILL) of the master. One
//! `SentinelSet` (master, replica, three sentinels) serves the cases in
//! turn, as starting one takes seconds.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq::{Client, Config, Error, JobContext, State, TaskError, Worker};
use rmq_testkit::{free_port, SentinelSet};

/// Completion times of jobs, by id.
#[derive(Clone, Default)]
struct Done(Arc<Mutex<Vec<(String, Instant)>>>);

impl Done {
    fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (id, _) in self.0.lock().unwrap().iter() {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
        counts
    }
}

#[rmq::task(topic = "sentinel-jobs", retries = 10, retry_delays = ["10ms"])]
async fn sentinel_job(n: u64, ctx: JobContext, done: State<Done>) -> Result<(), TaskError> {
    let _ = n;
    // Slow enough that a backlog is still draining when the master changes.
    tokio::time::sleep(Duration::from_millis(2)).await;
    done.0
         .0
        .lock()
        .unwrap()
        .push((ctx.id.to_string(), Instant::now()));
    Ok(())
}

fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.redis_url = url.to_owned();
    config.connection_pool_size = 4;
    config.lease = Duration::from_secs(2);
    config.shutdown_grace = Duration::from_secs(2);
    config.retry_delays = vec![Duration::from_millis(10)];
    config
}

fn durable(url: &str, replicas: u32) -> Config {
    let mut config = config(url);
    config.min_replicas_acked = replicas;
    config.replicas_ack_timeout = Duration::from_millis(500);
    config
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// What the producer saw: ids acknowledged (`Ok`) with when, ids enqueued on
/// the master but not confirmed by a replica, and other errors.
#[derive(Default)]
struct Produced {
    ok: Vec<(String, Instant)>,
    not_replicated: Vec<(String, Instant)>,
    failed: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_deployment_discovers_waits_and_follows_failovers() {
    let started = Instant::now();
    let set = Arc::new(Mutex::new(blocking(SentinelSet::start).await));
    let url = set.lock().unwrap().url();
    eprintln!("sentinel set up in {:?}", started.elapsed());

    // 1. Discovery: the client writes to the master the sentinels name.
    let client = Client::connect(durable(&url, 1)).await.unwrap();
    let master = set.lock().unwrap().master_port();
    let ids = client
        .enqueue_many((0..20).map(|n| SentinelJob { n }))
        .await
        .unwrap();
    let mut raw = redis::Client::open(format!("redis://127.0.0.1:{master}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let queued: u64 = redis::cmd("LLEN")
        .arg("{sentinel-jobs}:normal")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(queued, 20, "the jobs are on the master");
    let done = Done::default();
    let expected: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    run_until_done(&client, &done, &expected, Duration::from_secs(10)).await;
    // With `min_replicas_acked`, completions wait for the replica too: one
    // WAIT for the enqueue call, at least one more for the acks.
    let commands: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let waits: u64 = commands
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_wait:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(waits >= 2, "{waits} WAIT calls: {commands}");

    // 2. WAIT: one replica acknowledges; asking for two fails, and says the
    //    job is enqueued all the same.
    let err = Client::connect(durable(&url, 2))
        .await
        .unwrap()
        .enqueue(SentinelJob { n: 1 })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotReplicated {
                acked: 1,
                wanted: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("enqueued"), "{err}");
    let stats = client
        .broker()
        .unwrap()
        .stats("sentinel-jobs")
        .await
        .unwrap();
    assert_eq!(
        stats.pending.iter().sum::<u64>(),
        1,
        "the job is on the master"
    );
    let done = Done::default();
    run_until(
        &client,
        &done,
        |d| d.counts().len() == 1,
        Duration::from_secs(10),
    )
    .await;

    // 3. A manual failover, then 4. the master killed, each while a worker
    //    drains a backlog and a producer enqueues.
    for kill in [false, true] {
        failover_under_load(&set, &url, kill).await;
    }
    eprintln!("sentinel test took {:?}", started.elapsed());
    blocking(move || drop(set)).await;
}

async fn run_until_done(client: &Client, done: &Done, expected: &HashSet<String>, limit: Duration) {
    let expected = expected.clone();
    run_until(
        client,
        done,
        move |d| {
            let counts = d.counts();
            expected.iter().all(|id| counts.contains_key(id))
        },
        limit,
    )
    .await;
}

async fn run_until(
    client: &Client,
    done: &Done,
    condition: impl Fn(&Done) -> bool + Send + 'static,
    limit: Duration,
) {
    let worker = Worker::builder(client.clone())
        .task::<SentinelJob>()
        .concurrency(4)
        .state(done.clone())
        .build()
        .unwrap();
    let done = done.clone();
    let stop = async move {
        let deadline = Instant::now() + limit;
        while !condition(&done) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    worker.run_until(stop).await.unwrap();
}

async fn failover_under_load(set: &Arc<Mutex<SentinelSet>>, url: &str, kill: bool) {
    let what = if kill {
        "SIGKILL of the master"
    } else {
        "SENTINEL FAILOVER"
    };
    let client = Client::connect(durable(url, 1)).await.unwrap();
    let backlog: Vec<String> = client
        .enqueue_many((0..1500).map(|n| SentinelJob { n }))
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();

    let done = Done::default();
    // The worker does not wait for replicas: right after a failover there is
    // none, and every batch of completions would wait out the timeout.
    let worker = Worker::builder(Client::connect(config(url)).await.unwrap())
        .task::<SentinelJob>()
        .concurrency(4)
        .state(done.clone())
        .build()
        .unwrap();
    let stop = tokio_util_stop();
    let worker = tokio::spawn(worker.run_until(stop.wait()));

    let produced = Arc::new(Mutex::new(Produced::default()));
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let producer = {
        let client = Client::connect(durable(url, 1)).await.unwrap();
        let produced = produced.clone();
        let producing = producing.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while producing.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                match client.enqueue(SentinelJob { n }).await {
                    Ok(id) => produced
                        .lock()
                        .unwrap()
                        .ok
                        .push((id.to_string(), Instant::now())),
                    Err(Error::NotReplicated { ids, .. }) => produced
                        .lock()
                        .unwrap()
                        .not_replicated
                        .extend(ids.iter().map(|id| (id.to_string(), Instant::now()))),
                    Err(_) => {
                        produced.lock().unwrap().failed += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    // Let the worker start on the backlog.
    while done.counts().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let old = set.lock().unwrap().master_port();
    let t0 = Instant::now();
    let killed = {
        let set = set.clone();
        blocking(move || {
            let mut set = set.lock().unwrap();
            if kill {
                Some(set.kill_master())
            } else {
                set.failover();
                None
            }
        })
        .await
    };
    let new = {
        let set = set.clone();
        blocking(move || {
            set.lock()
                .unwrap()
                .wait_for_new_master(old, Duration::from_secs(20))
        })
        .await
    };
    let elected = Instant::now();
    assert_ne!(new, old);
    if let Some(port) = killed {
        // Back as a replica of the new master, so WAIT can succeed again.
        let set = set.clone();
        blocking(move || set.lock().unwrap().restart_node(port)).await;
    }

    // Produce until a hundred jobs were acknowledged after the election.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let after = produced
            .lock()
            .unwrap()
            .ok
            .iter()
            .filter(|(_, at)| *at > elected)
            .count();
        if after >= 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {after} enqueues confirmed after the election"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producing.store(false, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();

    let produced = std::mem::take(&mut *produced.lock().unwrap());
    let mut acknowledged: HashSet<String> = backlog.into_iter().collect();
    acknowledged.extend(produced.ok.iter().map(|(id, _)| id.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let counts = done.counts();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.fire();
    worker.await.unwrap().unwrap();

    let counts = done.counts();
    let twice = acknowledged
        .iter()
        .filter(|id| counts.get(*id).copied().unwrap_or(0) > 1)
        .count();
    // The worker follows: the first job enqueued after the election (on
    // the new master, confirmed by a replica or not) completes this long
    // after the election.
    let completions: HashMap<String, Instant> = done
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(id, at)| (id.clone(), *at))
        .collect();
    let followed = produced
        .ok
        .iter()
        .chain(&produced.not_replicated)
        .filter(|(_, at)| *at > elected)
        .filter_map(|(id, _)| completions.get(id))
        .min()
        .map(|at| at.duration_since(elected));
    eprintln!(
        "{what}: new master elected {:?} after the trigger; the first job enqueued after the election completed {followed:?} after it; \
         {} jobs acknowledged ({} by the producer), {missing} lost, {twice} ran twice; {} enqueues unconfirmed by a replica, {} failed",
        elected.duration_since(t0),
        acknowledged.len(),
        produced.ok.len(),
        produced.not_replicated.len(),
        produced.failed,
    );
    assert_eq!(missing, 0, "{what}: {missing} acknowledged jobs were lost");
    assert!(
        followed.is_some_and(|f| f < Duration::from_secs(5)),
        "{what}: the worker did not follow the new master in time: {followed:?}"
    );
}

/// A one-shot stop signal for `Worker::run_until`.
#[derive(Clone)]
struct Stop(Arc<tokio::sync::Notify>, Arc<std::sync::atomic::AtomicBool>);

fn tokio_util_stop() -> Stop {
    Stop(Arc::default(), Arc::default())
}

impl Stop {
    fn fire(&self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify_waiters();
    }

    fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stop = self.clone();
        async move {
            loop {
                let notified = stop.0.notified();
                if stop.1.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                notified.await;
            }
        }
    }
}

#[tokio::test]
async fn malformed_sentinel_urls_are_configuration_errors() {
    for url in [
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:notaport/mymaster",
        "redis+sentinel://:secret@127.0.0.1:1,,127.0.0.1:2/mymaster",
        "redis+sentinel://127.0.0.1:1/mymaster/notadb",
    ] {
        let err = Client::connect(config(url)).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                Error::Config {
                    option: "redis_url",
                    ..
                }
            ),
            "{url}: {text}"
        );
        assert!(!err.is_transient(), "{text}");
        assert!(
            text.contains("redis+sentinel://[[user]:password@]host"),
            "{text}"
        );
        assert!(!text.contains("secret"), "password leaked: {text}");
    }
    // Sentinel credentials with a standalone URL: refused, named.
    let mut c = config("redis://127.0.0.1:1");
    c.sentinel_password = Some("x".into());
    let err = Client::connect(c).await.unwrap_err();
    assert!(err.to_string().contains("sentinel_password"), "{err}");
}

#[tokio::test]
async fn unreachable_sentinels_are_a_transient_error_naming_each() {
    let (a, b) = (free_port(), free_port());
    let url = format!("redis+sentinel://:secret@127.0.0.1:{a},127.0.0.1:{b}/mymaster");
    let started = Instant::now();
    let err = Client::connect(config(&url)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(err.is_transient(), "{text}");
    for port in [a, b] {
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }
    assert!(text.contains("sentinel"), "{text}");
    assert!(!text.contains("secret"), "password leaked: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
