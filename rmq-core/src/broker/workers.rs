//! Worker heartbeats: who runs, where, and what, and the `quiet` / `stop`
//! commands sent to a worker through Redis.
//!
//! Each beat is two round trips of single-key commands (see `keys`): one
//! reads the worker's control key and the server time, one writes the
//! heartbeat (a JSON string with a TTL of 3 beats) and the worker's score
//! in the `workers` set (the time its entry expires). A worker that stops
//! beating (crashed, cut off) drops out of [`Broker::workers`] when its
//! score passes, with no cleanup by anyone: readers ignore expired scores
//! and trim them lazily, and Redis expires the heartbeat itself.
//!
//! No script and no command spans two keys, so every key may sit on its
//! own Cluster slot, apart from the topics.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ms, Broker};
use crate::keys::{worker_control_key, worker_key, workers_key};
use crate::Error;

/// Beats a heartbeat lives without being renewed.
pub const BEATS_TO_LIVE: u32 = 3;
/// How long a control command waits for its worker to read it.
const CONTROL_TTL: Duration = Duration::from_secs(86_400);

/// What a worker is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Fetching and running jobs.
    Running,
    /// Told to quiet down (`worker quiet`): runs the jobs it holds, fetches
    /// no more, stays alive.
    Quiet,
    /// Shutting down: its running jobs finish within `shutdown_grace`.
    Stopping,
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkerState::Running => "running",
            WorkerState::Quiet => "quiet",
            WorkerState::Stopping => "stopping",
        })
    }
}

/// A job a worker runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    /// Its topic.
    pub topic: String,
    /// Its id.
    pub id: String,
    /// When its handler started, ms since the epoch (server clock, as the
    /// worker estimates it).
    pub started_at_ms: u64,
}

/// One worker process's heartbeat, as [`Broker::workers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique per process run: `<host>-<pid>-<random>`.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// rmq version of the worker.
    pub version: String,
    /// Topics it serves.
    pub topics: Vec<String>,
    /// Handlers it runs at once (`max_workers`).
    pub concurrency: usize,
    /// Handlers running now.
    pub busy: usize,
    /// The jobs it runs now.
    pub jobs: Vec<RunningJob>,
    /// What it is doing.
    pub state: WorkerState,
    /// When it started, ms since the epoch (server clock).
    pub started_at_ms: u64,
    /// When it last beat, ms since the epoch (server clock).
    pub last_beat_ms: u64,
    /// Its heartbeat interval, ms; the entry expires after 3 of them.
    pub beat_interval_ms: u64,
}

/// A command for a worker, sent through Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerCommand {
    /// Finish the running jobs, fetch no more, stay alive (and listed).
    Quiet,
    /// Shut down gracefully, as on SIGTERM.
    Stop,
}

impl WorkerCommand {
    fn as_str(self) -> &'static str {
        match self {
            WorkerCommand::Quiet => "quiet",
            WorkerCommand::Stop => "stop",
        }
    }
}

impl Broker {
    /// Reads the command waiting for worker `id`, if any, and the server
    /// time (ms): the first half of a beat. Works on a full Redis.
    pub async fn worker_control(&self, id: &str) -> Result<(Option<WorkerCommand>, u64), Error> {
        let mut pipe = redis::pipe();
        pipe.get(worker_control_key(self.prefix(), id)).cmd("TIME");
        let (command, time): (Option<String>, (u64, u64)) =
            self.pipe("reading worker commands", &pipe).await?;
        let now = time.0 * 1000 + time.1 / 1000;
        self.inner.clock.observe(now);
        let command = match command.as_deref() {
            Some("stop") => Some(WorkerCommand::Stop),
            Some("quiet") => Some(WorkerCommand::Quiet),
            _ => None,
        };
        Ok((command, now))
    }

    /// Writes a heartbeat: `info` lives 3 beats (`info.beat_interval_ms`)
    /// from `info.last_beat_ms`. Also trims expired ids from the set.
    pub async fn beat(&self, info: &WorkerInfo) -> Result<(), Error> {
        let ttl = info
            .beat_interval_ms
            .max(1)
            .saturating_mul(u64::from(BEATS_TO_LIVE));
        let json = serde_json::to_string(info).map_err(|e| Error::Corrupt {
            op: "heartbeat",
            detail: e.to_string(),
        })?;
        let set = workers_key(self.prefix());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(worker_key(self.prefix(), &info.id))
            .arg(json)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .zadd(&set, &info.id, info.last_beat_ms.saturating_add(ttl))
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&set)
            .arg("-inf")
            .arg(format!("({}", info.last_beat_ms))
            .ignore();
        self.pipe_any_slot("heartbeat", &pipe).await
    }

    /// Removes worker `id`'s heartbeat and any command for it (graceful
    /// exit).
    pub async fn remove_worker(&self, id: &str) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        pipe.zrem(workers_key(self.prefix()), id)
            .ignore()
            .del(worker_key(self.prefix(), id))
            .ignore()
            .del(worker_control_key(self.prefix(), id))
            .ignore();
        self.pipe_any_slot("removing a worker", &pipe).await
    }

    /// The live workers (beaten within 3 of their intervals), sorted by
    /// host, then id. Expired ids are trimmed from the set on the way.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, Error> {
        let set = workers_key(self.prefix());
        let mut pipe = redis::pipe();
        pipe.cmd("TIME").zrange_withscores(&set, 0, -1);
        let (time, scored): ((u64, u64), Vec<(String, f64)>) =
            self.pipe("listing workers", &pipe).await?;
        let now = time.0 * 1000 + time.1 / 1000;
        let live: Vec<&str> = scored
            .iter()
            .filter(|(_, expires)| *expires >= now as f64)
            .map(|(id, _)| id.as_str())
            .collect();
        if live.len() < scored.len() {
            // Lazy, best effort: a reader without write permission still
            // lists the live workers.
            let mut trim = redis::cmd("ZREMRANGEBYSCORE");
            trim.arg(&set).arg("-inf").arg(format!("({now}"));
            if let Err(error) = self.cmd::<i64>("trimming expired workers", &trim).await {
                tracing::debug!(%error, "could not trim expired worker ids");
            }
        }
        let beats: Vec<Option<Vec<u8>>> = if live.is_empty() {
            Vec::new()
        } else {
            let mut pipe = redis::pipe();
            for id in &live {
                pipe.get(worker_key(self.prefix(), id));
            }
            self.pipe_any_slot("listing workers", &pipe).await?
        };
        let mut workers: Vec<WorkerInfo> = beats
            .into_iter()
            .zip(&live)
            .filter_map(|(beat, id)| {
                // Gone between the two calls: it expired just now.
                let beat = beat?;
                match serde_json::from_slice::<WorkerInfo>(&beat) {
                    Ok(info) => Some(info),
                    Err(error) => {
                        tracing::warn!(%error, id, "a worker heartbeat is not one rmq writes; left out");
                        None
                    }
                }
            })
            .collect();
        workers.sort_by(|a, b| (&a.host, &a.id).cmp(&(&b.host, &b.id)));
        Ok(workers)
    }

    /// Sends `command` to the live worker `id`; it acts on it at its next
    /// beat. [`Error::UnknownWorker`] (with the live ids) when no live
    /// worker has that id. A `quiet` never replaces a `stop` not yet read.
    pub async fn command_worker(&self, id: &str, command: WorkerCommand) -> Result<(), Error> {
        let live = self.workers().await?;
        if !live.iter().any(|w| w.id == id) {
            return Err(Error::UnknownWorker {
                id: id.to_owned(),
                live: live.into_iter().map(|w| w.id).collect(),
            });
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(worker_control_key(self.prefix(), id))
            .arg(command.as_str())
            .arg("PX")
            .arg(ms(CONTROL_TTL));
        if command == WorkerCommand::Quiet {
            cmd.arg("NX");
        }
        self.cmd::<Option<String>>("sending a worker command", &cmd)
            .await?;
        Ok(())
    }
}
