//! Ack (`lua/ack.lua`): completes a batch of leased jobs and feeds the
//! processing-time histogram.

use std::time::Duration;

use super::Broker;
use crate::envelope::Envelope;
use crate::{scripts, Error};

/// The histogram bucket of a handler time: floor(log2(microseconds)), 0..=40.
pub fn duration_bucket(duration: Duration) -> u32 {
    let us = u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    (63 - us.leading_zeros()).min(40)
}

impl Broker {
    /// Completes jobs; returns the indexes (into `jobs`) whose lease was lost.
    /// `durations` (same order) feed the processing-time histogram.
    pub async fn ack(
        &self,
        topic: &str,
        jobs: &[Envelope],
        durations: &[Duration],
    ) -> Result<Vec<usize>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::ACK.prepare_invoke();
        // The histogram is summed here, so the script gets one argument per
        // job (its envelope) plus a few buckets.
        let mut buckets = [0u32; 41];
        let mut sum_us: u64 = 0;
        for duration in durations {
            buckets[duration_bucket(*duration) as usize] += 1;
            sum_us = sum_us.saturating_add(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
        }
        let used: Vec<(usize, u32)> = buckets
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(bucket, &count)| (bucket, count))
            .collect();
        invocation
            .key(&keys.processing)
            .key(&keys.ids)
            .key(&keys.stats)
            .key(&keys.index)
            .key(&keys.cancel)
            .key(&keys.locks)
            .arg(jobs.iter().fold(0u8, |flags, job| flags | job.flags()))
            .arg(sum_us)
            .arg(used.len());
        for (bucket, count) in used {
            invocation.arg(bucket).arg(count);
        }
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        let Some((wanted, timeout_ms)) = self.inner.replicas else {
            return self.run("ack", &invocation).await;
        };
        // With `min_replicas_acked`, a completion also waits for replicas, so
        // a failover does not run the job again.
        let mut handle = self.inner.pool.get("ack").await?;
        let result =
            super::enqueue::invoke_and_wait(&mut handle.conn, &invocation, wanted, timeout_ms)
                .await;
        let (reply, acked) = handle.check(result).map_err(Error::redis("ack"))?;
        if acked < wanted {
            tracing::warn!(
                topic,
                jobs = jobs.len(),
                acked,
                wanted,
                "completions not confirmed by enough replicas in time; a failover now could run these jobs again"
            );
        }
        redis::FromRedisValue::from_redis_value(reply).map_err(|e| Error::Corrupt {
            op: "ack",
            detail: format!("unexpected reply of the ack script: {e}"),
        })
    }
}
