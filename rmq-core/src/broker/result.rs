//! Kept results (`lua/result.lua`): the return values of completed jobs of
//! tasks with `keep_result`, read by id, and waits for a job to finish that
//! block on its done list instead of polling.

use std::time::{Duration, Instant};

use super::{connection, ms, Broker, JobState};
use crate::{scripts, Error};

/// Longest a wait for a result blocks before it reads the job's status
/// again: a job that dies inside a script (lease recovery with no attempt
/// left, a TTL running out, a cancel) does not tell waiters, so this bounds
/// how late they learn of it.
pub const RESULT_RECHECK: Duration = Duration::from_secs(1);

/// How long a done list lives: waiters read the result and the status
/// before they block, so it only has to wake those blocked at the time (a
/// done list left by an earlier job of a reused explicit id wakes a new
/// waiter at most this long).
pub const DONE_TTL: Duration = Duration::from_secs(60);

/// Extra time a blocking read allows Redis beyond its own timeout before
/// the connection is considered dead.
const BLOCK_SLACK: Duration = Duration::from_secs(3);

/// Where the result of a job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobResult {
    /// Completed; its return value, encoded (MessagePack).
    Completed(Vec<u8>),
    /// Failed for good (in the dead-letter queue); the last error.
    Dead {
        /// The last error (`expired` for a job not started within its TTL).
        error: String,
    },
    /// Cancelled.
    Cancelled,
    /// Its payload did not decode (in the parse-error store).
    ParseError {
        /// The decoding error.
        error: String,
    },
    /// Not finished yet: where it is.
    Unfinished(JobState),
    /// No such job, or it finished and nothing of it is left: its result
    /// expired (`keep_result`), was never kept (a task without
    /// `keep_result`), or its dead-letter entry is gone.
    Unknown,
}

impl Broker {
    /// Keeps `result` (when given) as the result of job `id`, for its time
    /// to live, and, with `notify`, wakes the job's waiters. One script
    /// call.
    pub async fn store_result(
        &self,
        topic: &str,
        id: &str,
        result: Option<(&[u8], Duration)>,
        notify: bool,
    ) -> Result<(), Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::RESULT.prepare_invoke();
        invocation
            .key(keys.result(id))
            .key(keys.done(id))
            .arg(if notify { ms(DONE_TTL) } else { 0 });
        if let Some((result, ttl)) = result {
            invocation.arg(result).arg(ms(ttl).max(1));
        }
        let _: i64 = self.run("store result", &invocation).await?;
        Ok(())
    }

    /// Where the result of job `id` of `topic` stands, now: its result key,
    /// then (when there is none) its status by id. A job is only reported
    /// [`JobResult::Unknown`] after a second look at its result, so a job
    /// that completes between the two reads is seen completed.
    pub async fn job_result(&self, topic: &str, id: &str) -> Result<JobResult, Error> {
        if let Some(bytes) = self.kept_result(topic, id).await? {
            return Ok(JobResult::Completed(bytes));
        }
        Ok(match self.status(topic, id).await? {
            Some(status) => match status.state {
                JobState::Dead { error, .. } => JobResult::Dead { error },
                JobState::Cancelled { .. } => JobResult::Cancelled,
                JobState::ParseError { error, .. } => JobResult::ParseError { error },
                state => JobResult::Unfinished(state),
            },
            None => match self.kept_result(topic, id).await? {
                Some(bytes) => JobResult::Completed(bytes),
                None => JobResult::Unknown,
            },
        })
    }

    /// The kept result of job `id` of `topic` (encoded), if it completed and
    /// its result is still kept. One `GET`.
    pub async fn kept_result(&self, topic: &str, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = self.keys(topic).result(id);
        self.cmd("read result", redis::cmd("GET").arg(key)).await
    }

    /// Waits until job `id` of `topic` has finished, or `timeout` passes
    /// (`None`: no limit), and returns where its result stands then
    /// ([`JobResult::Unfinished`] at the timeout). It blocks on the job's
    /// done list on a connection of its own (opened for the wait), woken
    /// when the worker keeps the result or reports the job dead or
    /// cancelled, and reads the status again at least every
    /// [`RESULT_RECHECK`] for deaths nobody reports.
    pub async fn wait_result(
        &self,
        topic: &str,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<JobResult, Error> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut waiter = Waiter::default();
        loop {
            let now = self.job_result(topic, id).await?;
            if !matches!(now, JobResult::Unfinished(_)) {
                return Ok(now);
            }
            let left = deadline.map_or(RESULT_RECHECK, |at| {
                at.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(now);
            }
            waiter
                .wait(self, topic, id, left.min(RESULT_RECHECK))
                .await?;
        }
    }
}

/// Blocks on done lists, on a connection of its own.
#[derive(Default)]
pub(crate) struct Waiter {
    conn: Option<connection::Connection>,
    /// The last wait found an element, yet the job was not finished (a done
    /// list left by an earlier job of the same explicit id): wait by time.
    stale: bool,
}

impl Waiter {
    /// Blocks until job `id`'s done list holds an element or `timeout`
    /// passes. True when woken.
    pub(crate) async fn wait(
        &mut self,
        broker: &Broker,
        topic: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<bool, Error> {
        if self.stale {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(broker.blocking_connection().await?),
        };
        let key = broker.keys(topic).done(id);
        let mut cmd = redis::cmd("BLMOVE");
        cmd.arg(&key)
            .arg(&key)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(format!("{:.3}", timeout.as_secs_f64().max(0.001)));
        let watchdog = timeout + BLOCK_SLACK;
        match tokio::time::timeout(watchdog, cmd.query_async::<Option<Vec<u8>>>(conn)).await {
            Ok(Ok(woken)) => {
                // Woken at once next time too, whatever the job does: a
                // done list the job did not write.
                self.stale = woken.is_some();
                Ok(woken.is_some())
            }
            Ok(Err(source)) => {
                self.conn = None;
                Err(Error::Redis {
                    op: "wait for a result",
                    source,
                })
            }
            Err(_) => {
                self.conn = None;
                Err(Error::Timeout {
                    op: "wait for a result",
                    after: watchdog,
                })
            }
        }
    }

    /// A wake-up was followed by progress: the next wait blocks again.
    pub(crate) fn progressed(&mut self) {
        self.stale = false;
    }
}

impl Broker {
    /// A connection without a response timeout, for blocking reads: to the
    /// current master, or a cluster connection that routes each command to
    /// its slot's node.
    pub(crate) async fn blocking_connection(&self) -> Result<connection::Connection, Error> {
        let deployment = &self.inner.deployment;
        if let Some(cluster) = deployment.cluster() {
            return cluster
                .connect_blocking()
                .await
                .map(connection::Connection::Cluster)
                .map_err(Error::redis("wait for a result"));
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connection::CONNECT_TIMEOUT))
            .set_response_timeout(None);
        deployment
            .connect(&config)
            .await
            .map_err(Error::redis("wait for a result"))
    }
}
