//! Release (`lua/release.lua`): returns held jobs to the front of their
//! queue, attempt unchanged (graceful shutdown).

use super::{flag, Broker};
use crate::envelope::Envelope;
use crate::{scripts, Error};

impl Broker {
    /// Returns leased jobs this worker will not run to the front of their
    /// pending list, attempt unchanged. Returns how many were still ours.
    pub async fn release(&self, topic: &str, jobs: &[Envelope]) -> Result<usize, Error> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::RELEASE.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.processing)
            .key(&keys.wake)
            .key(&keys.index)
            .key(&keys.cancel)
            .key(&keys.dead)
            .key(&keys.ids)
            .key(&keys.stats)
            .key(&keys.locks)
            .arg(flag(self.inner.dead_letter))
            .arg(self.inner.dead_max);
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        self.run("release", &invocation).await
    }
}
