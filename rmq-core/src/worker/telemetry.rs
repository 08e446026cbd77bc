//! The worker's metrics handles (registered once per topic at start, so the
//! hot path only bumps atomics, in batches where it can), its gauges (sampled
//! once a second and on demand) and its liveness for `/healthz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::broker::Throttle;
use crate::telemetry::{self as names, AtomicHistogram, LocalHistogram, Outcome};
use crate::Priority;

/// The worker loops' Redis operations (the `op` label of
/// `rmq_redis_errors_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Leasing a batch.
    Fetch,
    /// Blocking for new work.
    Wait,
    /// Acks, failures, rejections.
    Report,
    /// Lease recovery and retention trimming.
    Monitor,
    /// Lease renewal.
    Extend,
    /// The lease keeper's own connections.
    Connect,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Fetch,
        Op::Wait,
        Op::Report,
        Op::Monitor,
        Op::Extend,
        Op::Connect,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Op::Fetch => "fetch",
            Op::Wait => "wait",
            Op::Report => "report",
            Op::Monitor => "monitor",
            Op::Extend => "extend",
            Op::Connect => "connect",
        }
    }
}

/// The handles of one topic.
pub(super) struct TopicTelemetry {
    fetched: Counter,
    outcomes: [Counter; Outcome::ALL.len()],
    leases_lost: Counter,
    /// Fetches held back by the rate, by the concurrency limit.
    throttled: [Counter; 2],
    duration: JobHistogram,
    wait: [JobHistogram; 3],
    active: Gauge,
    prefetched: Gauge,
    running_max: Gauge,
}

impl TopicTelemetry {
    fn new(topic: &str) -> TopicTelemetry {
        let t = topic.to_owned();
        TopicTelemetry {
            fetched: counter!(names::JOBS_FETCHED, "topic" => t.clone()),
            outcomes: Outcome::ALL.map(
                |o| counter!(names::JOBS_PROCESSED, "topic" => t.clone(), "outcome" => o.as_str()),
            ),
            leases_lost: counter!(names::LEASES_LOST, "topic" => t.clone()),
            throttled: [Throttle::Rate, Throttle::Concurrency].map(
                |l| counter!(names::FETCHES_THROTTLED, "topic" => t.clone(), "limit" => l.as_str()),
            ),
            duration: if names::collecting() {
                JobHistogram::Local(names::register(
                    names::JOB_DURATION,
                    names::JOB_DURATION_HELP,
                    vec![("topic", t.clone())],
                ))
            } else {
                JobHistogram::Facade(histogram!(names::JOB_DURATION, "topic" => t.clone()))
            },
            wait: Priority::ALL.map(|p| {
                if names::collecting() {
                    JobHistogram::Local(names::register(
                        names::JOB_WAIT,
                        names::JOB_WAIT_HELP,
                        vec![("topic", t.clone()), ("priority", p.as_str().to_owned())],
                    ))
                } else {
                    JobHistogram::Facade(
                        histogram!(names::JOB_WAIT, "topic" => t.clone(), "priority" => p.as_str()),
                    )
                }
            }),
            active: gauge!(names::WORKER_JOBS_ACTIVE, "topic" => t.clone()),
            prefetched: gauge!(names::WORKER_PREFETCHED, "topic" => t.clone()),
            running_max: gauge!(names::JOB_RUNNING_MAX, "topic" => t),
        }
    }

    pub(super) fn fetched(&self, n: usize) {
        self.fetched.increment(n as u64);
    }

    pub(super) fn processed(&self, outcome: Outcome, n: usize) {
        let index = Outcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0);
        self.outcomes[index].increment(n as u64);
    }

    pub(super) fn lease_lost(&self, n: usize) {
        self.leases_lost.increment(n as u64);
    }

    pub(super) fn throttled(&self, limit: Throttle) {
        self.throttled[usize::from(limit == Throttle::Concurrency)].increment(1);
    }
}

/// Samples a runner gathers between merges into the shared job histograms
/// (when rmq keeps them itself): no atomic operation per job.
pub(super) struct RunnerSamples {
    topics: Vec<(LocalHistogram, [LocalHistogram; 3])>,
    pending: usize,
}

/// Samples a runner holds at most before merging them.
const MERGE_EVERY: usize = 64;

impl RunnerSamples {
    pub(super) fn new(telemetry: &Telemetry) -> RunnerSamples {
        RunnerSamples {
            topics: vec![Default::default(); telemetry.topics.len()],
            pending: 0,
        }
    }

    /// A handler time of topic index `topic`.
    pub(super) fn duration(&mut self, telemetry: &Telemetry, topic: usize, elapsed: Duration) {
        match &telemetry.topics[topic].duration {
            JobHistogram::Facade(h) => h.record(elapsed.as_secs_f64()),
            JobHistogram::Local(_) => {
                self.topics[topic].0.record(elapsed);
                self.pending += 1;
            }
        }
    }

    /// A wait since due of topic index `topic`.
    pub(super) fn wait(
        &mut self,
        telemetry: &Telemetry,
        topic: usize,
        priority: Priority,
        waited: Duration,
    ) {
        let p = usize::from(priority.as_u8());
        match &telemetry.topics[topic].wait[p] {
            JobHistogram::Facade(h) => h.record(waited.as_secs_f64()),
            JobHistogram::Local(_) => {
                self.topics[topic].1[p].record(waited);
                self.pending += 1;
            }
        }
    }

    /// Merges the samples when enough have gathered, or when the runner is
    /// about to wait (`idle`), so a scrape of an idle worker sees them all.
    pub(super) fn merge_if(&mut self, telemetry: &Telemetry, idle: bool) {
        if self.pending >= MERGE_EVERY || (idle && self.pending > 0) {
            self.merge(telemetry);
        }
    }

    pub(super) fn merge(&mut self, telemetry: &Telemetry) {
        for ((duration, waits), shared) in self.topics.iter_mut().zip(&telemetry.topics) {
            if let JobHistogram::Local(h) = &shared.duration {
                h.merge(duration);
            }
            for (wait, shared) in waits.iter_mut().zip(&shared.wait) {
                if let JobHistogram::Local(h) = shared {
                    h.merge(wait);
                }
            }
        }
        self.pending = 0;
    }
}

/// A job histogram: through the recorder, or kept by rmq for a process that
/// renders it itself ([`crate::telemetry::collect_job_histograms`]).
enum JobHistogram {
    Facade(Histogram),
    Local(Arc<AtomicHistogram>),
}

/// Everything the worker records.
pub(super) struct Telemetry {
    topics: Vec<TopicTelemetry>,
    redis_errors: [Counter; Op::ALL.len()],
    pub(super) health: Health,
}

impl Telemetry {
    pub(super) fn new<'a>(
        topics: impl IntoIterator<Item = &'a str>,
        concurrency: usize,
    ) -> Telemetry {
        gauge!(names::WORKER_CONCURRENCY).set(concurrency as f64);
        gauge!(names::BUILD_INFO, "version" => names::VERSION).set(1.0);
        Telemetry {
            topics: topics.into_iter().map(TopicTelemetry::new).collect(),
            redis_errors: Op::ALL.map(|op| counter!(names::REDIS_ERRORS, "op" => op.as_str())),
            health: Health::new(),
        }
    }

    /// The handles of topic index `topic`.
    pub(super) fn topic(&self, topic: usize) -> &TopicTelemetry {
        &self.topics[topic]
    }

    /// A Redis call of `op` succeeded.
    pub(super) fn redis_ok(&self) {
        self.health.redis_ok();
    }

    /// A Redis call of `op` failed with `error`.
    pub(super) fn redis_error(&self, op: Op, error: &crate::Error) {
        let index = Op::ALL.iter().position(|&o| o == op).unwrap_or(0);
        self.redis_errors[index].increment(1);
        self.health.redis_error(op, error);
    }
}

/// How long Redis calls may keep failing before the worker reports
/// unhealthy (one failed call is retried at once; a dead Redis fails on).
const FAILING_GRACE: Duration = Duration::from_secs(2);
/// How long without any Redis reply the worker still reports healthy: an
/// idle worker's wait returns every 5 s and the monitor passes at least
/// every `processing_monitor_interval`, so this is ample.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

/// The liveness of a worker: are its loops running, did Redis answer lately.
pub(super) struct Health {
    origin: Instant,
    running: AtomicBool,
    stopped: AtomicBool,
    /// Ms since `origin` of the last Redis reply.
    last_ok: AtomicU64,
    /// 1 + ms since `origin` of the first failure since the last reply; 0
    /// when the last call succeeded.
    failing_since: AtomicU64,
    last_error: Mutex<String>,
}

impl Health {
    fn new() -> Health {
        Health {
            origin: Instant::now(),
            running: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            last_ok: AtomicU64::new(0),
            failing_since: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn redis_ok(&self) {
        self.last_ok.store(self.now(), Ordering::Relaxed);
        if self.failing_since.load(Ordering::Relaxed) != 0 {
            self.failing_since.store(0, Ordering::Relaxed);
        }
    }

    fn redis_error(&self, op: Op, error: &crate::Error) {
        let _ = self.failing_since.compare_exchange(
            0,
            self.now() + 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if let Ok(mut last) = self.last_error.lock() {
            *last = format!("{}: {error}", op.as_str());
        }
    }

    /// The loops started (`true`) or the worker began stopping (`false`).
    pub(super) fn set_running(&self, running: bool) {
        if running {
            // Connecting and recording the topics were Redis replies.
            self.redis_ok();
        } else {
            self.stopped.store(true, Ordering::Relaxed);
        }
        self.running.store(running, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err("the worker is shutting down".to_owned());
        }
        if !self.running.load(Ordering::Relaxed) {
            return Err("the worker is starting".to_owned());
        }
        let now = self.now();
        let failing = self.failing_since.load(Ordering::Relaxed);
        if failing != 0 && now.saturating_sub(failing - 1) >= FAILING_GRACE.as_millis() as u64 {
            let last = self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            return Err(format!(
                "Redis calls have been failing for {} s (last: {last})",
                now.saturating_sub(failing - 1) / 1000
            ));
        }
        let silent = now.saturating_sub(self.last_ok.load(Ordering::Relaxed));
        if silent >= SILENCE_LIMIT.as_millis() as u64 {
            return Err(format!("no reply from Redis for {} s", silent / 1000));
        }
        Ok(())
    }
}

/// A handle on a running worker for probes and scrapes: its health and a
/// refresh of its gauges. Made by [`Worker::probe`](super::Worker::probe);
/// it keeps nothing of the worker alive.
#[derive(Clone)]
pub struct Probe {
    shared: Weak<Shared>,
}

impl Probe {
    pub(super) fn new(shared: &Arc<Shared>) -> Probe {
        Probe {
            shared: Arc::downgrade(shared),
        }
    }

    /// `Ok` while the worker's loops run and Redis answered lately; else
    /// why not, in a few words.
    pub fn health(&self) -> Result<(), String> {
        match self.shared.upgrade() {
            Some(shared) => shared.telemetry.health.check(),
            None => Err("the worker has stopped".to_owned()),
        }
    }

    /// Sets the gauges (jobs running and prefetched, longest run) to their
    /// values now; the worker also does so once a second.
    pub fn refresh_gauges(&self) {
        if let Some(shared) = self.shared.upgrade() {
            sample(&shared);
        }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("health", &self.health())
            .finish()
    }
}

/// Sets the gauges from the held jobs.
pub(super) fn sample(shared: &Shared) {
    let now = Instant::now();
    for (topic, counts) in shared.held.counts(shared.topics.len()).iter().enumerate() {
        let t = shared.telemetry.topic(topic);
        t.active.set(counts.running as f64);
        t.prefetched.set(counts.waiting as f64);
        let longest = counts
            .earliest_start
            .map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        t.running_max.set(longest);
    }
}

/// Samples the gauges once a second until `token` is cancelled.
pub(super) async fn run_sampler(shared: Arc<Shared>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => sample(&shared),
        }
    }
}
