//! Pausing a topic: while `{P:T}:paused` exists, fetch leases nothing and
//! promotes nothing on any worker (it checks the key in the same script
//! that would lease), and enqueue wakes nobody. Jobs keep arriving,
//! running jobs finish, expired leases are still recovered.

use super::Broker;
use crate::Error;

impl Broker {
    /// Pauses `topic` on every worker; returns whether it was running.
    pub async fn pause(&self, topic: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.keys(topic).paused).arg(1).arg("NX");
        let set: Option<String> = self.cmd("pause", &cmd).await?;
        Ok(set.is_some())
    }

    /// Resumes a paused `topic` and wakes an idle worker; returns whether it
    /// was paused.
    pub async fn resume(&self, topic: &str) -> Result<bool, Error> {
        let keys = self.keys(topic);
        let mut pipe = redis::pipe();
        // The token wakes one idle worker, which passes the wake-up on when
        // it finds more than a batch (see `lua/fetch.lua`).
        pipe.atomic()
            .del(&keys.paused)
            .rpush(&keys.wake, 1)
            .ltrim(&keys.wake, 0, 0)
            .ignore();
        let (deleted, _): (u64, u64) = self.pipe("resume", &pipe).await?;
        Ok(deleted == 1)
    }

    /// Whether `topic` is paused.
    pub async fn is_paused(&self, topic: &str) -> Result<bool, Error> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&self.keys(topic).paused);
        self.cmd("pause", &cmd).await
    }
}
