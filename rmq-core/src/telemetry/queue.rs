//! Queue-wide metrics, read from Redis by one process (`worker exporter`,
//! or a dashboard's server) so that N workers do not export N copies, and
//! written in the Prometheus text format (version 0.0.4).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `rmq_queue_jobs` | gauge | topic, state (pending, processing, delayed, dead, parse_error), priority (pending only) |
//! | `rmq_queue_oldest_job_age_seconds` | gauge | topic, priority |
//! | `rmq_queue_paused` | gauge | topic: 1 while paused |
//! | `rmq_topic_jobs_total` | counter | topic, outcome (completed, failed, retried, dead, expired, recovered) |
//! | `rmq_topic_job_duration_seconds` | histogram | topic |
//! | `rmq_workers` | gauge | topic: live workers (heartbeats) serving it |
//!
//! The histogram comes from the stats hash's log2 buckets: its `le`
//! boundaries are every other power of two microseconds, from 64 µs to
//! about 71 minutes, exact since they fall on the stored bucket edges.

use std::fmt::Write;

use crate::broker::{Broker, QueueGauges};
use crate::{Error, Priority};

/// Jobs per topic and state.
pub const QUEUE_JOBS: &str = "rmq_queue_jobs";
/// Age of the job at the head of each pending list.
pub const QUEUE_OLDEST_AGE: &str = "rmq_queue_oldest_job_age_seconds";
/// 1 while the topic is paused, else 0.
pub const QUEUE_PAUSED: &str = "rmq_queue_paused";
/// The topic's counters, all workers together.
pub const TOPIC_JOBS: &str = "rmq_topic_jobs_total";
/// Handler time, all workers together.
pub const TOPIC_DURATION: &str = "rmq_topic_job_duration_seconds";
/// Live workers (from their heartbeats) serving each topic.
pub const WORKERS: &str = "rmq_workers";

/// Reads every topic known to Redis (and each of `extra`) and writes the
/// queue-wide metrics. Fails if Redis fails; a topic whose keys Redis
/// refuses (a key of another type) is left out and logged.
pub async fn render(broker: &Broker, extra: &[String]) -> Result<String, Error> {
    let mut topics = broker.topics().await?;
    for topic in extra {
        if !topics.contains(topic) {
            topics.push(topic.clone());
        }
    }
    topics.sort();
    // One pipeline per topic, all in flight at once.
    let read = futures_util::future::join_all(topics.iter().map(|t| broker.queue_gauges(t))).await;
    let mut all = Vec::with_capacity(topics.len());
    for (topic, gauges) in topics.iter().zip(read) {
        match gauges {
            Ok(gauges) => all.push(gauges),
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                tracing::warn!(%error, topic, "queue metrics of the topic left out");
            }
        }
    }
    let workers = broker.workers().await?;
    let mut out = render_gauges(&all);
    header(
        &mut out,
        WORKERS,
        "gauge",
        "Live workers (from their heartbeats) serving the topic.",
    );
    for t in &all {
        let serving = workers
            .iter()
            .filter(|w| w.topics.contains(&t.topic))
            .count();
        sample(&mut out, WORKERS, &[("topic", &t.topic)], serving as f64);
    }
    Ok(out)
}

/// Writes the queue-wide metrics of `topics` in the text format.
pub fn render_gauges(topics: &[QueueGauges]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        QUEUE_JOBS,
        "gauge",
        "Jobs in each state (pending per priority).",
    );
    for t in topics {
        for p in Priority::ALL {
            let n = t.pending[usize::from(p.as_u8())];
            sample(
                &mut out,
                QUEUE_JOBS,
                &[
                    ("topic", &t.topic),
                    ("state", "pending"),
                    ("priority", p.as_str()),
                ],
                n as f64,
            );
        }
        for (state, n) in [
            ("processing", t.processing),
            ("delayed", t.delayed),
            ("dead", t.dead),
            ("parse_error", t.parse_errors),
        ] {
            sample(
                &mut out,
                QUEUE_JOBS,
                &[("topic", &t.topic), ("state", state)],
                n as f64,
            );
        }
    }
    header(
        &mut out,
        QUEUE_OLDEST_AGE,
        "gauge",
        "How long the job at the head of each pending list has been queued (0 when the list is empty).",
    );
    for t in topics {
        for p in Priority::ALL {
            let age = t.oldest_age_ms[usize::from(p.as_u8())].unwrap_or(0);
            sample(
                &mut out,
                QUEUE_OLDEST_AGE,
                &[("topic", &t.topic), ("priority", p.as_str())],
                age as f64 / 1000.0,
            );
        }
    }
    header(
        &mut out,
        QUEUE_PAUSED,
        "gauge",
        "1 while the topic is paused (workers lease none of its jobs), else 0.",
    );
    for t in topics {
        let paused = if t.paused { 1.0 } else { 0.0 };
        sample(&mut out, QUEUE_PAUSED, &[("topic", &t.topic)], paused);
    }
    header(
        &mut out,
        TOPIC_JOBS,
        "counter",
        "Jobs per outcome, all workers together (failed counts every failed attempt, including expired leases; dead includes recovered jobs with no attempt left).",
    );
    for t in topics {
        for (outcome, n) in t.counters {
            sample(
                &mut out,
                TOPIC_JOBS,
                &[("topic", &t.topic), ("outcome", outcome)],
                n as f64,
            );
        }
    }
    header(
        &mut out,
        TOPIC_DURATION,
        "histogram",
        "Handler time of completed jobs, all workers together.",
    );
    for t in topics {
        let total: u64 = t.histogram.iter().sum();
        let bucket = format!("{TOPIC_DURATION}_bucket");
        for k in (6..=32).step_by(2) {
            // Bucket i holds [2^i, 2^(i+1)) us: below 2^k are buckets < k.
            let below: u64 = t.histogram[..k.min(41)].iter().sum();
            let le = format_float((1u64 << k) as f64 / 1e6);
            sample(
                &mut out,
                &bucket,
                &[("topic", &t.topic), ("le", &le)],
                below as f64,
            );
        }
        sample(
            &mut out,
            &bucket,
            &[("topic", &t.topic), ("le", "+Inf")],
            total as f64,
        );
        sample(
            &mut out,
            &format!("{TOPIC_DURATION}_sum"),
            &[("topic", &t.topic)],
            t.duration_sum_us as f64 / 1e6,
        );
        sample(
            &mut out,
            &format!("{TOPIC_DURATION}_count"),
            &[("topic", &t.topic)],
            total as f64,
        );
    }
    out
}

pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_float(value));
    out.push('\n');
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub(crate) fn format_float(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> QueueGauges {
        let mut histogram = [0; 41];
        histogram[3] = 2; // 8-16 us
        histogram[10] = 5; // ~1-2 ms
        QueueGauges {
            topic: "or\"ders".to_owned(),
            pending: [1, 2, 3],
            processing: 4,
            delayed: 5,
            dead: 6,
            parse_errors: 7,
            paused: true,
            oldest_age_ms: [Some(1500), None, Some(0)],
            counters: [
                ("completed", 10),
                ("failed", 1),
                ("retried", 2),
                ("dead", 3),
                ("expired", 4),
                ("recovered", 5),
            ],
            histogram,
            duration_sum_us: 7_000,
        }
    }

    #[test]
    fn writes_the_text_format() {
        let text = render_gauges(&[gauges()]);
        assert!(text.contains("# TYPE rmq_queue_jobs gauge\n"), "{text}");
        assert!(text.contains(
            "rmq_queue_jobs{topic=\"or\\\"ders\",state=\"pending\",priority=\"low\"} 3\n"
        ));
        assert!(text.contains("rmq_queue_jobs{topic=\"or\\\"ders\",state=\"parse_error\"} 7\n"));
        assert!(text.contains(
            "rmq_queue_oldest_job_age_seconds{topic=\"or\\\"ders\",priority=\"high\"} 1.5\n"
        ));
        assert!(text.contains("rmq_queue_paused{topic=\"or\\\"ders\"} 1\n"));
        assert!(
            text.contains("rmq_topic_jobs_total{topic=\"or\\\"ders\",outcome=\"completed\"} 10\n")
        );
        // 64 us holds the two 8-16 us runs; 4.096 ms holds all seven.
        assert!(text.contains(
            "rmq_topic_job_duration_seconds_bucket{topic=\"or\\\"ders\",le=\"0.000064\"} 2\n"
        ));
        assert!(text.contains(
            "rmq_topic_job_duration_seconds_bucket{topic=\"or\\\"ders\",le=\"0.001024\"} 2\n"
        ));
        assert!(text.contains(
            "rmq_topic_job_duration_seconds_bucket{topic=\"or\\\"ders\",le=\"0.004096\"} 7\n"
        ));
        assert!(text.contains("rmq_topic_job_duration_seconds_count{topic=\"or\\\"ders\"} 7\n"));
        assert!(text.contains("rmq_topic_job_duration_seconds_sum{topic=\"or\\\"ders\"} 0.007\n"));
    }
}
