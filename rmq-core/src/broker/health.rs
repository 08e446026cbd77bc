//! Queue health: what a monitor loop or a probe wants to know about each
//! topic, measured in one pipeline of plain reads per topic, and the
//! findings it gives under thresholds ([`HealthOptions`]).
//!
//! - the age of the oldest pending job per priority (from the `enqueued_at`
//!   of the envelope at the head of each list: `LINDEX list 0`);
//! - how late the oldest *due* delayed job is (delayed jobs are promoted
//!   by fetching workers: a late one means no worker fetched the topic);
//! - jobs waiting while no live, fetching worker serves the topic (from the
//!   heartbeats);
//! - stuck: jobs pending and no completion for `stuck_after`
//!   (`last_completed_ms`, which every ack writes into the stats hash);
//! - dead-letter growth: jobs that died in the last `dead_window` (the
//!   per-minute `d<minute>` counters of the stats hash, kept an hour).
//!
//! A paused topic waits on purpose: it gives no finding of a missing
//! worker, of being stuck or of late delayed jobs; the thresholds on
//! pending age and backlog still apply, so one paused too long is seen.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::workers::{WorkerInfo, WorkerState};
use super::{ms, Broker};
use crate::envelope::Envelope;
use crate::{Error, Priority};

/// Longest dead-letter window: `trim.lua` keeps an hour of `d<minute>`
/// counters.
const MAX_DEAD_WINDOW: Duration = Duration::from_secs(3600);

/// Thresholds of [`Broker::health`]. The defaults suit a probe run every
/// minute; every field may be changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthOptions {
    /// Topics to check; empty: every topic known to Redis.
    pub topics: Vec<String>,
    /// Stuck: jobs pending and no completion for this long (default 5 min).
    pub stuck_after: Duration,
    /// The oldest pending job of a priority is older than this (counted
    /// from its enqueue; default 10 min). `None`: not checked.
    pub max_pending_age: Option<Duration>,
    /// The oldest due delayed job is later than this (default 1 min).
    /// `None`: not checked.
    pub max_delayed_lateness: Option<Duration>,
    /// More than this many pending jobs in a topic (default: not checked).
    pub max_pending: Option<u64>,
    /// The window of [`HealthOptions::max_dead`], in whole minutes, at most
    /// an hour (default 5 min).
    pub dead_window: Duration,
    /// More than this many jobs dead-lettered within `dead_window`
    /// (default 10). `None`: not checked.
    pub max_dead: Option<u64>,
    /// Report topics with jobs waiting and no live worker fetching them
    /// (default true).
    pub require_worker: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            topics: Vec::new(),
            stuck_after: Duration::from_secs(300),
            max_pending_age: Some(Duration::from_secs(600)),
            max_delayed_lateness: Some(Duration::from_secs(60)),
            max_pending: None,
            dead_window: Duration::from_secs(300),
            max_dead: Some(10),
            require_worker: true,
        }
    }
}

/// What [`Broker::topic_health`] measured about one topic. Times are
/// milliseconds, ages and lateness measured against the server clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopicHealth {
    /// Topic name.
    pub topic: String,
    /// Pending jobs per priority: high, normal, low.
    pub pending: [u64; 3],
    /// Age of the oldest pending job per priority (since its enqueue; a
    /// retried job keeps its first enqueue time). `None`: the list is empty
    /// (or its head is not a job rmq can read).
    pub oldest_pending_ms: [Option<u64>; 3],
    /// How late the oldest due delayed job is; `None`: none is due.
    pub delayed_late_ms: Option<u64>,
    /// Leased jobs.
    pub processing: u64,
    /// When a job of the topic last completed (server clock); `None`: never
    /// (since this version).
    pub last_completed_at_ms: Option<u64>,
    /// Jobs dead-lettered (or dropped, with the dead-letter queue off)
    /// within `dead_window_ms`.
    pub dead_in_window: u64,
    /// The window of `dead_in_window`.
    pub dead_window_ms: u64,
    /// Live workers fetching this topic (not quiet, not stopping).
    pub workers: usize,
    /// Whether the topic is paused ([`Broker::pause`]).
    pub paused: bool,
    /// Server time of the measurement.
    pub now_ms: u64,
}

impl TopicHealth {
    /// Pending jobs of every priority.
    pub fn pending_total(&self) -> u64 {
        self.pending.iter().sum()
    }

    /// Age of the oldest pending job of any priority.
    pub fn oldest_pending(&self) -> Option<Duration> {
        self.oldest_pending_ms
            .iter()
            .flatten()
            .max()
            .map(|&ms| Duration::from_millis(ms))
    }

    /// Time since the last completion.
    pub fn since_completion(&self) -> Option<Duration> {
        self.last_completed_at_ms
            .map(|at| Duration::from_millis(self.now_ms.saturating_sub(at)))
    }
}

/// Something wrong with a topic, found by [`Broker::health`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// Jobs wait and no live worker fetches the topic.
    NoWorker {
        /// The topic.
        topic: String,
        /// Pending jobs.
        pending: u64,
    },
    /// Jobs are pending and none completed for `idle_ms` (`None`: no job
    /// of the topic ever completed).
    Stuck {
        /// The topic.
        topic: String,
        /// Pending jobs.
        pending: u64,
        /// Time since the last completion.
        idle_ms: Option<u64>,
        /// The threshold.
        stuck_after_ms: u64,
    },
    /// The oldest pending job of a priority is older than the threshold.
    OldPending {
        /// The topic.
        topic: String,
        /// The priority list.
        priority: Priority,
        /// Its age.
        age_ms: u64,
        /// The threshold.
        max_ms: u64,
    },
    /// A due delayed job is later than the threshold.
    LateDelayed {
        /// The topic.
        topic: String,
        /// How late the oldest due job is.
        late_ms: u64,
        /// The threshold.
        max_ms: u64,
    },
    /// More jobs pending than the threshold.
    Backlog {
        /// The topic.
        topic: String,
        /// Pending jobs.
        pending: u64,
        /// The threshold.
        max: u64,
    },
    /// More jobs died within the window than the threshold.
    DeadGrowth {
        /// The topic.
        topic: String,
        /// Jobs dead-lettered within the window.
        dead: u64,
        /// The window.
        window_ms: u64,
        /// The threshold.
        max: u64,
    },
}

impl Finding {
    /// The topic it is about.
    pub fn topic(&self) -> &str {
        match self {
            Finding::NoWorker { topic, .. }
            | Finding::Stuck { topic, .. }
            | Finding::OldPending { topic, .. }
            | Finding::LateDelayed { topic, .. }
            | Finding::Backlog { topic, .. }
            | Finding::DeadGrowth { topic, .. } => topic,
        }
    }
}

/// A duration in ms, for people: `1.5s`, `12m 3s`.
fn human(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NoWorker { topic, pending } => write!(
                f,
                "{topic}: no live worker fetches this topic, and {pending} job(s) wait"
            ),
            Finding::Stuck {
                topic,
                pending,
                idle_ms,
                stuck_after_ms,
            } => match idle_ms {
                Some(idle) => write!(
                    f,
                    "{topic}: stuck: {pending} job(s) pending and no completion for {} (threshold {})",
                    human(*idle),
                    human(*stuck_after_ms)
                ),
                None => write!(
                    f,
                    "{topic}: stuck: {pending} job(s) pending for over {} and no job ever completed",
                    human(*stuck_after_ms)
                ),
            },
            Finding::OldPending {
                topic,
                priority,
                age_ms,
                max_ms,
            } => write!(
                f,
                "{topic}: the oldest {priority} job waits for {} (threshold {})",
                human(*age_ms),
                human(*max_ms)
            ),
            Finding::LateDelayed {
                topic,
                late_ms,
                max_ms,
            } => write!(
                f,
                "{topic}: a due delayed job is {} late (threshold {})",
                human(*late_ms),
                human(*max_ms)
            ),
            Finding::Backlog {
                topic,
                pending,
                max,
            } => write!(f, "{topic}: {pending} jobs pending (threshold {max})"),
            Finding::DeadGrowth {
                topic,
                dead,
                window_ms,
                max,
            } => write!(
                f,
                "{topic}: {dead} job(s) dead-lettered in the last {} (threshold {max})",
                human(*window_ms)
            ),
        }
    }
}

/// Everything [`Broker::health_report`] measured, and what it found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// One entry per checked topic, sorted.
    pub topics: Vec<TopicHealth>,
    /// Live workers (any state).
    pub workers: usize,
    /// What is wrong; empty when healthy.
    pub findings: Vec<Finding>,
}

impl HealthReport {
    /// No finding.
    pub fn is_healthy(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Whole minutes of a dead-letter window, 1 to 60.
fn window_minutes(window: Duration) -> u64 {
    (window.min(MAX_DEAD_WINDOW).as_secs() / 60).max(1)
}

/// The findings for one topic's measurements under `options`.
pub(super) fn evaluate(health: &TopicHealth, options: &HealthOptions) -> Vec<Finding> {
    let topic = &health.topic;
    let pending = health.pending_total();
    let mut findings = Vec::new();
    if options.require_worker
        && !health.paused
        && health.workers == 0
        && (pending > 0 || health.delayed_late_ms.is_some())
    {
        findings.push(Finding::NoWorker {
            topic: topic.clone(),
            pending,
        });
    }
    if pending > 0 && !health.paused {
        let stuck_after = ms(options.stuck_after);
        let oldest_enqueue = health
            .oldest_pending()
            .map(|age| health.now_ms.saturating_sub(ms(age)));
        // An idle topic that just got a job is not stuck: count from the
        // later of the last completion and the oldest pending enqueue.
        let since = health
            .last_completed_at_ms
            .max(oldest_enqueue)
            .map(|at| health.now_ms.saturating_sub(at));
        if since.is_some_and(|since| since > stuck_after) {
            findings.push(Finding::Stuck {
                topic: topic.clone(),
                pending,
                idle_ms: health.since_completion().map(ms),
                stuck_after_ms: stuck_after,
            });
        }
    }
    if let Some(max) = options.max_pending_age {
        for (priority, age) in Priority::ALL.iter().zip(health.oldest_pending_ms) {
            if let Some(age) = age.filter(|&age| age > ms(max)) {
                findings.push(Finding::OldPending {
                    topic: topic.clone(),
                    priority: *priority,
                    age_ms: age,
                    max_ms: ms(max),
                });
            }
        }
    }
    if let (Some(max), Some(late)) = (options.max_delayed_lateness, health.delayed_late_ms) {
        if late > ms(max) && !health.paused {
            findings.push(Finding::LateDelayed {
                topic: topic.clone(),
                late_ms: late,
                max_ms: ms(max),
            });
        }
    }
    if let Some(max) = options.max_pending.filter(|&max| pending > max) {
        findings.push(Finding::Backlog {
            topic: topic.clone(),
            pending,
            max,
        });
    }
    if let Some(max) = options.max_dead.filter(|&max| health.dead_in_window > max) {
        findings.push(Finding::DeadGrowth {
            topic: topic.clone(),
            dead: health.dead_in_window,
            window_ms: health.dead_window_ms,
            max,
        });
    }
    findings
}

fn integer(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

impl Broker {
    /// Measures one topic's health (see the module docs); `workers` are the
    /// live workers (from [`Broker::workers`]). One pipeline of reads.
    pub async fn topic_health(
        &self,
        topic: &str,
        workers: &[WorkerInfo],
        dead_window: Duration,
    ) -> Result<TopicHealth, Error> {
        let keys = self.keys(topic);
        let mut pipe = redis::pipe();
        for list in &keys.pending {
            pipe.llen(list).cmd("LINDEX").arg(list).arg(0);
        }
        pipe.zrange_withscores(&keys.delayed, 0, 0)
            .zcard(&keys.processing)
            .hgetall(&keys.stats)
            .cmd("TIME")
            .exists(&keys.paused);
        #[allow(clippy::type_complexity)]
        let (
            high,
            high_head,
            normal,
            normal_head,
            low,
            low_head,
            delayed,
            processing,
            fields,
            time,
            paused,
        ): (
            u64,
            Option<Vec<u8>>,
            u64,
            Option<Vec<u8>>,
            u64,
            Option<Vec<u8>>,
            Vec<(Vec<u8>, f64)>,
            u64,
            Vec<(Vec<u8>, Vec<u8>)>,
            (u64, u64),
            bool,
        ) = self.pipe("measuring queue health", &pipe).await?;
        let now = time.0 * 1000 + time.1 / 1000;
        let age = |head: Option<Vec<u8>>| {
            let envelope = Envelope::parse(head?).ok()?;
            Some(now.saturating_sub(envelope.enqueued_at_ms()))
        };
        let hash: HashMap<String, i64> = fields
            .into_iter()
            .filter_map(|(field, value)| Some((String::from_utf8(field).ok()?, integer(&value)?)))
            .collect();
        let minute = now / 60_000;
        let minutes = window_minutes(dead_window);
        let dead_in_window = (0..minutes)
            .filter_map(|back| hash.get(&format!("d{}", minute.saturating_sub(back))))
            .map(|&n| n.max(0) as u64)
            .sum();
        Ok(TopicHealth {
            topic: topic.to_owned(),
            pending: [high, normal, low],
            oldest_pending_ms: [age(high_head), age(normal_head), age(low_head)],
            delayed_late_ms: delayed
                .first()
                .map(|(_, due)| *due as u64)
                .filter(|&due| due <= now)
                .map(|due| now - due),
            processing,
            last_completed_at_ms: hash
                .get("last_completed_ms")
                .and_then(|&at| u64::try_from(at).ok()),
            dead_in_window,
            dead_window_ms: minutes * 60_000,
            workers: workers
                .iter()
                .filter(|w| w.state == WorkerState::Running && w.topics.iter().any(|t| t == topic))
                .count(),
            paused,
            now_ms: now,
        })
    }

    /// Measures every topic of `options.topics` (empty: every known topic)
    /// and returns what is wrong: the API behind `worker health`. Run it
    /// from a monitor loop and alert on a non-empty answer:
    ///
    /// ```no_run
    /// # async fn demo(broker: rmq_core::Broker) -> Result<(), rmq_core::Error> {
    /// use std::time::Duration;
    /// use rmq_core::broker::HealthOptions;
    ///
    /// let mut options = HealthOptions::default();
    /// options.stuck_after = Duration::from_secs(120);
    /// options.max_pending = Some(100);
    /// loop {
    ///     for finding in broker.health(&options).await? {
    ///         eprintln!("ALERT {finding}");
    ///     }
    ///     tokio::time::sleep(Duration::from_secs(10)).await;
    /// }
    /// # }
    /// ```
    pub async fn health(&self, options: &HealthOptions) -> Result<Vec<Finding>, Error> {
        Ok(self.health_report(options).await?.findings)
    }

    /// [`Broker::health`] with the measurements behind the findings.
    pub async fn health_report(&self, options: &HealthOptions) -> Result<HealthReport, Error> {
        let mut topics = if options.topics.is_empty() {
            self.topics().await?
        } else {
            options.topics.clone()
        };
        topics.sort();
        topics.dedup();
        let workers = self.workers().await?;
        let mut report = HealthReport {
            workers: workers.len(),
            ..HealthReport::default()
        };
        for topic in &topics {
            let health = self
                .topic_health(topic, &workers, options.dead_window)
                .await?;
            report.findings.extend(evaluate(&health, options));
            report.topics.push(health);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(pending: u64) -> TopicHealth {
        TopicHealth {
            topic: "t".to_owned(),
            pending: [0, pending, 0],
            oldest_pending_ms: [None, (pending > 0).then_some(1_000), None],
            workers: 1,
            now_ms: 10_000_000,
            dead_window_ms: 300_000,
            last_completed_at_ms: Some(10_000_000 - 1_000),
            ..TopicHealth::default()
        }
    }

    #[test]
    fn a_served_topic_that_completes_is_healthy() {
        assert!(evaluate(&topic(5), &HealthOptions::default()).is_empty());
        assert!(evaluate(&topic(0), &HealthOptions::default()).is_empty());
    }

    #[test]
    fn pending_without_a_worker() {
        let mut t = topic(3);
        t.workers = 0;
        let found = evaluate(&t, &HealthOptions::default());
        assert_eq!(
            found,
            vec![Finding::NoWorker {
                topic: "t".into(),
                pending: 3
            }]
        );
        assert!(found[0].to_string().contains("no live worker"));
        // Nothing waits: no finding.
        let mut idle = topic(0);
        idle.workers = 0;
        assert!(evaluate(&idle, &HealthOptions::default()).is_empty());
    }

    #[test]
    fn a_paused_topic_waits_on_purpose_but_thresholds_still_apply() {
        let mut t = topic(3);
        t.workers = 0;
        t.paused = true;
        t.last_completed_at_ms = None;
        t.oldest_pending_ms[1] = Some(400_000);
        t.delayed_late_ms = Some(400_000);
        assert!(evaluate(&t, &HealthOptions::default()).is_empty());
        let options = HealthOptions {
            max_pending: Some(1),
            ..HealthOptions::default()
        };
        assert!(matches!(
            &evaluate(&t, &options)[..],
            [Finding::Backlog { pending: 3, .. }]
        ));
    }

    #[test]
    fn stuck_counts_from_the_later_of_completion_and_enqueue() {
        let options = HealthOptions {
            stuck_after: Duration::from_secs(60),
            ..HealthOptions::default()
        };
        let mut t = topic(2);
        t.last_completed_at_ms = Some(t.now_ms - 3_600_000);
        // The job came 1 s ago to a topic idle for an hour: not stuck yet.
        assert!(evaluate(&t, &options).is_empty());
        t.oldest_pending_ms[1] = Some(120_000);
        let found = evaluate(&t, &options);
        assert!(
            matches!(
                &found[..],
                [Finding::Stuck {
                    idle_ms: Some(3_600_000),
                    ..
                }]
            ),
            "{found:?}"
        );
        t.last_completed_at_ms = None;
        assert!(evaluate(&t, &options)[0]
            .to_string()
            .contains("no job ever completed"));
    }

    #[test]
    fn thresholds() {
        let mut t = topic(200);
        t.oldest_pending_ms = [Some(700_000), None, Some(5)];
        t.delayed_late_ms = Some(90_000);
        t.dead_in_window = 11;
        let options = HealthOptions {
            max_pending: Some(100),
            ..HealthOptions::default()
        };
        let kinds: Vec<String> = evaluate(&t, &options)
            .iter()
            .map(|f| {
                serde_json::to_value(f).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            ["old_pending", "late_delayed", "backlog", "dead_growth"]
        );
        assert_eq!(window_minutes(Duration::from_secs(10)), 1);
        assert_eq!(window_minutes(Duration::from_secs(86_400)), 60);
    }
}
