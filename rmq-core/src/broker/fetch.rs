//! Fetch (`lua/fetch.lua`): promotes due delayed jobs, then leases a batch.

use std::time::Duration;

use super::{connection, ms, optional_ms, Broker};
use crate::envelope::Envelope;
use crate::{scripts, Error, Limits};

/// The result of one fetch call.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Leased jobs, highest priority first, FIFO within a priority.
    pub jobs: Vec<Envelope>,
    /// Time until the earliest delayed job is due, if any is scheduled.
    pub next_due: Option<Duration>,
    /// Redis server time of the fetch, ms since the epoch.
    pub server_ms: u64,
    /// Jobs found past their TTL and dead-lettered as `expired` by this call.
    pub expired: u64,
    /// The limit that held this batch back, if one did.
    pub throttled: Option<Throttle>,
    /// When a limit held the batch back: how long until the topic may give
    /// out more (fetching it sooner finds it held back again).
    pub wait: Option<Duration>,
}

/// Which limit held a fetch back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Throttle {
    /// The topic's (or a key's) rate.
    Rate,
    /// The topic's concurrency: that many jobs are leased already.
    Concurrency,
}

impl Throttle {
    /// `rate` or `concurrency`, as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Throttle::Rate => "rate",
            Throttle::Concurrency => "concurrency",
        }
    }
}

/// How much earlier than the caller's own timeout a fetch stops being
/// valid on the server, to absorb clock estimate error.
const FETCH_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

impl Broker {
    /// Promotes due delayed jobs, then leases up to `max` jobs.
    pub async fn fetch(&self, topic: &str, max: usize, lease: Duration) -> Result<Fetched, Error> {
        self.fetch_limited(topic, max, lease, &Limits::NONE).await
    }

    /// [`Broker::fetch`] under the topic's rate and concurrency limits:
    /// fewer than `max` jobs (maybe none) when a limit holds them back,
    /// with the time until it lets more through in [`Fetched::wait`].
    pub async fn fetch_limited(
        &self,
        topic: &str,
        max: usize,
        lease: Duration,
        limits: &Limits,
    ) -> Result<Fetched, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::FETCH.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.delayed)
            .key(&keys.processing)
            .key(&keys.dead)
            .key(&keys.errors)
            .key(&keys.ids)
            .key(&keys.stats)
            .key(&keys.wake)
            .key(&keys.paused)
            .key(&keys.index)
            .key(&keys.locks)
            .key(&keys.rate)
            .key(&keys.keyed)
            .arg(max)
            .arg(ms(lease).max(1))
            .arg(self.inner.batch_size.max(max))
            .arg(self.inner.dead_max)
            .arg(self.inner.errors_max);
        // The fetch tells Redis when this caller stops waiting for the
        // reply: one that only runs after that (Redis stalled past the
        // response timeout) leases nothing, so no job is leased to nobody.
        let mut handle = self.inner.pool.get("fetch").await?;
        let deadline = self.inner.clock.now_ms()
            + ms(connection::RESPONSE_TIMEOUT.saturating_sub(FETCH_DEADLINE_MARGIN));
        invocation.arg(deadline).arg(&*self.owner);
        let (interval, burst) = limits
            .rate
            .map_or((0, 0), |rate| (rate.interval_us(), rate.burst()));
        invocation
            .arg(interval)
            .arg(burst)
            .arg(limits.concurrency.unwrap_or(0))
            .arg(u8::from(limits.keyed));
        let result = invocation.invoke_async(&mut handle.conn).await;
        let (raw, next_due, server_ms, expired, wait, held_back): (
            Vec<Vec<u8>>,
            i64,
            u64,
            u64,
            u64,
            u8,
        ) = handle.check(result).map_err(Error::redis("fetch"))?;
        self.inner.clock.observe(server_ms);
        let mut jobs = Vec::with_capacity(raw.len());
        for bytes in raw {
            let bytes = bytes::Bytes::from(bytes);
            match Envelope::parse(bytes.clone()) {
                Ok(env) => jobs.push(env),
                Err(e) => {
                    // The jobs parsed so far are leased to this caller:
                    // never drop them for a failure to file this one.
                    if let Err(error) = self.reject_raw(topic, &bytes, &e.to_string()).await {
                        tracing::warn!(%error, topic, "could not move an undecodable entry to the parse-error store; it is retried when its lease expires");
                    }
                }
            }
        }
        Ok(Fetched {
            jobs,
            next_due: optional_ms(next_due),
            server_ms,
            expired,
            throttled: match held_back {
                1 => Some(Throttle::Rate),
                2 => Some(Throttle::Concurrency),
                _ => None,
            },
            wait: (held_back > 0).then(|| Duration::from_millis(wait.max(1))),
        })
    }
}
