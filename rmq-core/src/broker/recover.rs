//! Recover (`lua/recover.lua`): returns jobs whose lease expired to their
//! queue, counting the attempt, or dead-letters them.

use std::time::Duration;

use super::{flag, optional_ms, Broker};
use crate::{scripts, BatchEnd, Error};

/// The result of one recovery pass over expired leases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Returned to pending with the attempt counted.
    pub requeued: usize,
    /// Dead-lettered because no attempt was left.
    pub dead: usize,
    /// Time until the earliest remaining lease deadline.
    pub next_deadline: Option<Duration>,
}

impl Broker {
    /// Returns jobs whose lease expired to pending (attempt counted) or to
    /// the dead-letter queue.
    pub async fn recover(&self, topic: &str, max: usize) -> Result<Recovered, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::RECOVER.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.processing)
            .key(&keys.dead)
            .key(&keys.stats)
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.errors)
            .key(&keys.index)
            .key(&keys.cancel)
            .key(&keys.locks)
            .arg(max.max(1))
            .arg(flag(self.inner.dead_letter))
            .arg(self.inner.dead_max)
            .arg(self.inner.errors_max);
        let (requeued, dead, next, ended): (usize, usize, i64, Vec<(String, String)>) =
            self.run("recover", &invocation).await?;
        if !ended.is_empty() {
            // Batch children that died or were cancelled here, with no
            // worker to count them.
            let ends: Vec<(&str, BatchEnd)> = ended
                .iter()
                .map(|(id, outcome)| {
                    let end = if outcome == "c" {
                        BatchEnd::Cancelled
                    } else {
                        BatchEnd::Dead
                    };
                    (id.as_str(), end)
                })
                .collect();
            self.batch_jobs_ended(&ends).await?;
        }
        Ok(Recovered {
            requeued,
            dead,
            next_deadline: optional_ms(next),
        })
    }
}
