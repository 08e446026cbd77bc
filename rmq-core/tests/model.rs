//! Random interleavings of every transition against one Redis: at every
//! step each job is in exactly one structure, and at the end each job is
//! completed or dead, never lost, never duplicated.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use redis::aio::MultiplexedConnection;
use rmq_core::broker::{EnqueueSpec, FailOutcome, Failure, NewJob};
use rmq_core::envelope::Envelope;
use rmq_core::keys::TopicKeys;
use rmq_core::{Broker, Priority};
use rmq_testkit::RedisServer;

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        n: usize,
        priority: u8,
        delayed: bool,
    },
    Fetch(usize),
    Ack(usize),
    Fail {
        pick: usize,
        permanent: bool,
    },
    Expire(usize),
    Promote,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..4usize, 0..3u8, any::<bool>())
            .prop_map(|(n, priority, delayed)| Op::Enqueue { n, priority, delayed }),
        3 => (1..5usize).prop_map(Op::Fetch),
        2 => any::<usize>().prop_map(Op::Ack),
        2 => (any::<usize>(), any::<bool>())
            .prop_map(|(pick, permanent)| Op::Fail { pick, permanent }),
        1 => any::<usize>().prop_map(Op::Expire),
        1 => Just(Op::Promote),
    ]
}

const LEASE: Duration = Duration::from_secs(30);
const DELAY: Duration = Duration::from_millis(20);

struct Model {
    broker: Broker,
    raw: MultiplexedConnection,
    topic: String,
    keys: TopicKeys,
    held: Vec<Envelope>,
    enqueued: BTreeSet<String>,
    completed: BTreeSet<String>,
    dead: BTreeSet<String>,
}

impl Model {
    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Enqueue {
                n,
                priority,
                delayed,
            } => {
                let spec = EnqueueSpec {
                    priority: Priority::from_u8(priority).unwrap(),
                    delay: if delayed { DELAY } else { Duration::ZERO },
                    ttl: None,
                    max_retries: 2,
                    index: false,
                };
                let jobs = vec![
                    NewJob {
                        payload: b"p",
                        id: None
                    };
                    n
                ];
                let ids = self
                    .broker
                    .enqueue(&self.topic, &spec, &jobs)
                    .await
                    .unwrap();
                for id in ids {
                    assert!(self.enqueued.insert(id.to_string()), "id {id} reused");
                }
            }
            Op::Fetch(max) => {
                let fetched = self.broker.fetch(&self.topic, max, LEASE).await.unwrap();
                assert!(fetched.jobs.len() <= max);
                self.held.extend(fetched.jobs);
            }
            Op::Ack(pick) if !self.held.is_empty() => {
                let job = self.held.remove(pick % self.held.len());
                let lost = self
                    .broker
                    .ack(&self.topic, std::slice::from_ref(&job), &[])
                    .await
                    .unwrap();
                assert!(lost.is_empty());
                assert!(self.completed.insert(job.id().to_owned()));
            }
            Op::Fail { pick, permanent } if !self.held.is_empty() => {
                let job = self.held.remove(pick % self.held.len());
                let failure = Failure {
                    error: "failed",
                    permanent,
                    retry_delay: Duration::ZERO,
                    cancelled: false,
                };
                let outcome = self.broker.fail(&self.topic, &job, &failure).await.unwrap();
                let should_die = permanent || !job.can_retry();
                let expected = if should_die {
                    FailOutcome::Dead
                } else {
                    FailOutcome::Retrying
                };
                assert_eq!(outcome, expected);
                if should_die {
                    self.dead.insert(job.id().to_owned());
                }
            }
            Op::Expire(pick) if !self.held.is_empty() => {
                let job = self.held.remove(pick % self.held.len());
                let short = Duration::from_millis(1);
                let lost = self
                    .broker
                    .extend(&self.topic, std::slice::from_ref(&job), short)
                    .await
                    .unwrap();
                assert!(lost.lost.is_empty());
                tokio::time::sleep(Duration::from_millis(5)).await;
                let recovered = self.broker.recover(&self.topic, 100).await.unwrap();
                assert_eq!(recovered.requeued + recovered.dead, 1);
                if recovered.dead == 1 {
                    assert!(!job.can_retry());
                    self.dead.insert(job.id().to_owned());
                }
                // The stale copy is fenced off.
                let lost = self.broker.ack(&self.topic, &[job], &[]).await.unwrap();
                assert_eq!(lost, [0]);
            }
            Op::Promote => tokio::time::sleep(DELAY + Duration::from_millis(5)).await,
            _ => {}
        }
    }

    /// Where every job is, by id.
    async fn places(&mut self) -> BTreeMap<String, Vec<&'static str>> {
        let mut places: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        let mut note = |bytes: Vec<u8>, place: &'static str| {
            let env = Envelope::parse(bytes).expect("valid envelope");
            places.entry(env.id().to_owned()).or_default().push(place);
        };
        for (list, name) in self.keys.pending.iter().zip(["high", "normal", "low"]) {
            let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
                .arg(list)
                .arg(0)
                .arg(-1)
                .query_async(&mut self.raw)
                .await
                .unwrap();
            items.into_iter().for_each(|b| note(b, name));
        }
        for (key, name) in [
            (&self.keys.delayed, "delayed"),
            (&self.keys.processing, "processing"),
        ] {
            let items: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut self.raw)
                .await
                .unwrap();
            items.into_iter().for_each(|b| note(b, name));
        }
        for dead in self
            .broker
            .dead_letters(&self.topic, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.expect("a readable dead-letter entry"))
        {
            places
                .entry(dead.envelope.id().to_owned())
                .or_default()
                .push("dead");
        }
        places
    }

    async fn check(&mut self) {
        let places = self.places().await;
        for id in &self.enqueued {
            let found = places.get(id).cloned().unwrap_or_default();
            if self.completed.contains(id) {
                assert!(found.is_empty(), "completed job {id} still in {found:?}");
            } else {
                assert_eq!(found.len(), 1, "job {id} is in {found:?}");
            }
            if self.dead.contains(id) {
                assert_eq!(found, ["dead"], "job {id}");
            }
        }
        assert!(places.keys().all(|id| self.enqueued.contains(id)));
        for job in &self.held {
            assert_eq!(places[job.id()], ["processing"], "held job {}", job.id());
        }
    }

    async fn drain(&mut self) {
        let held = std::mem::take(&mut self.held);
        for job in held {
            self.broker
                .ack(&self.topic, std::slice::from_ref(&job), &[])
                .await
                .unwrap();
            self.completed.insert(job.id().to_owned());
        }
        for _ in 0..200 {
            let fetched = self.broker.fetch(&self.topic, 50, LEASE).await.unwrap();
            if fetched.jobs.is_empty() {
                match fetched.next_due {
                    None => break,
                    Some(due) => tokio::time::sleep(due + Duration::from_millis(1)).await,
                }
                continue;
            }
            let lost = self
                .broker
                .ack(&self.topic, &fetched.jobs, &[])
                .await
                .unwrap();
            assert!(lost.is_empty());
            for job in fetched.jobs {
                assert!(self.completed.insert(job.id().to_owned()), "ran twice");
            }
        }
        let stats = self.broker.stats(&self.topic).await.unwrap();
        assert_eq!(stats.pending, [0, 0, 0]);
        assert_eq!((stats.processing, stats.delayed), (0, 0));
        let places = self.places().await;
        for id in &self.enqueued {
            let completed = self.completed.contains(id);
            let dead = places.get(id).is_some_and(|p| p == &["dead"]);
            assert!(
                completed != dead,
                "job {id}: completed {completed}, dead {dead}"
            );
        }
        assert_eq!(stats.completed as usize, self.completed.len());
        assert_eq!(stats.dead as usize, self.dead.len());
    }
}

#[test]
fn every_job_ends_in_exactly_one_place() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let config = support::config(&server.url());
    let (broker, raw) = runtime.block_on(async {
        let broker = Broker::connect(&config).await.unwrap();
        let raw = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        (broker, raw)
    });
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 24,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let topic = format!("case{}", CASE.fetch_add(1, Ordering::Relaxed));
            let mut model = Model {
                broker: broker.clone(),
                raw: raw.clone(),
                keys: TopicKeys::new("", &topic),
                topic,
                held: Vec::new(),
                enqueued: BTreeSet::new(),
                completed: BTreeSet::new(),
                dead: BTreeSet::new(),
            };
            runtime.block_on(async {
                for op in &ops {
                    model.apply(op).await;
                    model.check().await;
                }
                model.drain().await;
            });
            Ok(())
        })
        .unwrap();
}
