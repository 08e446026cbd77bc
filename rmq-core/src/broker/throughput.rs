//! Per-minute throughput of a topic: the `m<minute>` (completions) and
//! `d<minute>` (dead-letters) counters of its stats hash, which `trim`
//! keeps an hour. Read in one round trip per topic, for charts.

use super::Broker;
use crate::Error;

/// The most minutes the stats hash keeps (see `lua/trim.lua`).
pub const THROUGHPUT_MINUTES: usize = 60;

/// Completions and dead-letters of one topic per minute, as read by
/// [`Broker::throughput`]. Both series are oldest first and end with the
/// current (partial) minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Throughput {
    /// The topic.
    pub topic: String,
    /// The last minute of the series (minutes since the epoch, server
    /// clock): the one in progress.
    pub last_minute: u64,
    /// Jobs completed in each minute.
    pub completed: Vec<u64>,
    /// Jobs dead-lettered (or dropped, with the dead-letter queue off) in
    /// each minute.
    pub dead: Vec<u64>,
}

impl Broker {
    /// The last `minutes` minutes (at most [`THROUGHPUT_MINUTES`]) of
    /// `topic`'s per-minute counters: one pipeline of `TIME` and one
    /// `HMGET`. A missing or non-integer field counts as 0.
    pub async fn throughput(&self, topic: &str, minutes: usize) -> Result<Throughput, Error> {
        let minutes = minutes.clamp(1, THROUGHPUT_MINUTES);
        let keys = self.keys(topic);
        // The fields are named by the server's minute; the clock estimate
        // names them, and the TIME in the same pipeline keeps it fresh.
        let last_minute = self.inner.clock.now_ms() / 60_000;
        let first = last_minute.saturating_sub(minutes as u64 - 1);
        let fields: Vec<String> = (first..=last_minute)
            .map(|m| format!("m{m}"))
            .chain((first..=last_minute).map(|m| format!("d{m}")))
            .collect();
        let mut pipe = redis::pipe();
        pipe.cmd("TIME").cmd("HMGET").arg(&keys.stats).arg(&fields);
        let (time, values): ((u64, u64), Vec<Option<Vec<u8>>>) =
            self.pipe("reading throughput", &pipe).await?;
        self.inner.clock.observe(time.0 * 1000 + time.1 / 1000);
        let count = |value: &Option<Vec<u8>>| {
            value
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
                .map_or(0, |n| n.max(0) as u64)
        };
        let n = (last_minute - first + 1) as usize;
        let (completed, dead) = values.split_at(n.min(values.len()));
        Ok(Throughput {
            topic: topic.to_owned(),
            last_minute,
            completed: completed.iter().map(count).collect(),
            dead: dead.iter().map(count).collect(),
        })
    }
}
