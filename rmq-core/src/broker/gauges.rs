//! What the queue-wide metrics read of one topic, in one pipeline: depths,
//! the enqueue time of the job at the head of each pending list, the stats
//! hash (counters and the processing-time histogram) and the server time.
//! Not on the hot path: one process reads it per scrape.

use super::Broker;
use crate::envelope::Envelope;
use crate::Error;

/// One topic's queue-wide figures, as read by [`Broker::queue_gauges`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueGauges {
    /// The topic.
    pub topic: String,
    /// Pending jobs per priority (high, normal, low).
    pub pending: [u64; 3],
    /// Leased jobs.
    pub processing: u64,
    /// Delayed jobs and scheduled retries.
    pub delayed: u64,
    /// Dead-letter entries.
    pub dead: u64,
    /// Parse-error entries.
    pub parse_errors: u64,
    /// Whether the topic is paused.
    pub paused: bool,
    /// Per priority, how long the job at the head of the pending list has
    /// been queued (server time minus its enqueue time, ms); `None` for an
    /// empty list or a head that is not an envelope.
    pub oldest_age_ms: [Option<u64>; 3],
    /// Counters of the stats hash: completed, failed, retried, dead,
    /// expired, recovered (0 when absent or not an integer).
    pub counters: [(&'static str, u64); 6],
    /// Processing-time histogram: bucket `i` counts handler times in
    /// `[2^i, 2^(i+1))` microseconds.
    pub histogram: [u64; 41],
    /// Sum of the handler times in the histogram, microseconds.
    pub duration_sum_us: u64,
}

/// The counters of the stats hash that the queue-wide metrics export.
const COUNTERS: [&str; 6] = [
    "completed",
    "failed",
    "retried",
    "dead",
    "expired",
    "recovered",
];

impl Broker {
    /// Reads one topic's queue-wide figures in one round trip.
    pub async fn queue_gauges(&self, topic: &str) -> Result<QueueGauges, Error> {
        let keys = self.keys(topic);
        let mut pipe = redis::pipe();
        for list in &keys.pending {
            pipe.llen(list);
        }
        for list in &keys.pending {
            pipe.lindex(list, 0);
        }
        pipe.zcard(&keys.processing)
            .zcard(&keys.delayed)
            .zcard(&keys.dead)
            .zcard(&keys.errors)
            .hgetall(&keys.stats)
            .cmd("TIME")
            .exists(&keys.paused);
        // One reply more than a tuple reads: the last is taken off first.
        let mut replies: Vec<redis::Value> = self.pipe("queue gauges", &pipe).await?;
        let paused = replies.pop().map(|v| v == redis::Value::Int(1)) == Some(true);
        #[allow(clippy::type_complexity)]
        let (
            high,
            normal,
            low,
            head_high,
            head_normal,
            head_low,
            processing,
            delayed,
            dead,
            errors,
            fields,
            time,
        ): (
            u64,
            u64,
            u64,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            u64,
            u64,
            u64,
            u64,
            Vec<(Vec<u8>, Vec<u8>)>,
            (u64, u64),
        ) = redis::FromRedisValue::from_redis_value(redis::Value::Array(replies))
            .map_err(|e| Error::redis("queue gauges")(e.into()))?;
        let now_ms = time.0 * 1000 + time.1 / 1000;
        let age = |head: Option<Vec<u8>>| {
            let envelope = Envelope::parse(head?).ok()?;
            Some(now_ms.saturating_sub(envelope.enqueued_at_ms()))
        };
        let mut gauges = QueueGauges {
            topic: topic.to_owned(),
            pending: [high, normal, low],
            processing,
            delayed,
            dead,
            parse_errors: errors,
            paused,
            oldest_age_ms: [age(head_high), age(head_normal), age(head_low)],
            counters: COUNTERS.map(|name| (name, 0)),
            histogram: [0; 41],
            duration_sum_us: 0,
        };
        for (field, value) in fields {
            let Some(value) = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
            else {
                continue;
            };
            let value = value.max(0) as u64;
            match &field[..] {
                b"dur_sum" => gauges.duration_sum_us = value,
                // Jobs in fair per-key sub-queues (topics with a `rate_key`)
                // ignore priorities: counted as normal.
                b"keyed" => gauges.pending[1] += value,
                [b'h', digits @ ..] => {
                    if let Some(slot) = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse::<usize>().ok())
                        .and_then(|i| gauges.histogram.get_mut(i))
                    {
                        *slot = value;
                    }
                }
                name => {
                    if let Some(slot) = gauges
                        .counters
                        .iter_mut()
                        .find(|(counter, _)| counter.as_bytes() == name)
                    {
                        slot.1 = value;
                    }
                }
            }
        }
        Ok(gauges)
    }
}
